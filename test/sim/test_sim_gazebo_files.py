"""Static checks of the Gazebo launch file and bridge configuration.

Gazebo, `launch` and `ros_gz_bridge` are not installable here, so the launch file is
parsed with `ast` instead of being run.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import yaml

from nc_safety.core.motion_config import parameter_specs
from nc_safety.sim.scenario import read_ros_params

REPO = Path(__file__).resolve().parents[2]
LAUNCH = REPO / "launch" / "gazebo.launch.py"
BRIDGE = REPO / "config" / "gz_bridge.yaml"

# What the safety node subscribes and publishes, with the ROS type and the direction the
# bridge must carry it in: Gazebo produces the robot's data, the node's output drives it.
NODE_TOPICS = {
    "/clock": ("rosgraph_msgs/msg/Clock", "GZ_TO_ROS"),
    "scan": ("sensor_msgs/msg/LaserScan", "GZ_TO_ROS"),
    "odom": ("nav_msgs/msg/Odometry", "GZ_TO_ROS"),
    "cmd_vel_out": ("geometry_msgs/msg/Twist", "ROS_TO_GZ"),
}


def declared_parameters() -> set[str]:
    """Parameter names the node declares: its motion parameters, the shipped file's keys, sim time."""
    names = {spec.name for spec in parameter_specs()}
    names |= set(read_ros_params(REPO / "config" / "nc_safety.yaml"))
    names.add("use_sim_time")
    return names


def safety_node_call(tree: ast.Module) -> ast.Call:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Node":
            keywords = {keyword.arg: keyword.value for keyword in node.keywords}
            package = keywords.get("package")
            if isinstance(package, ast.Constant) and package.value == "nc_safety":
                return node
    raise AssertionError(f"{LAUNCH} has no Node(package='nc_safety', ...)")


def keyword(call: ast.Call, name: str) -> Any:
    for item in call.keywords:
        if item.arg == name:
            return item.value
    raise AssertionError(f"Node call has no {name}= argument")


def test_launch_file_parses() -> None:
    tree = ast.parse(LAUNCH.read_text(encoding="utf-8"), filename=str(LAUNCH))
    functions = [node.name for node in tree.body if isinstance(node, ast.FunctionDef)]
    assert functions == ["generate_launch_description"]


def test_launch_passes_only_declared_parameters() -> None:
    call = safety_node_call(ast.parse(LAUNCH.read_text(encoding="utf-8")))
    parameters = keyword(call, "parameters")
    assert isinstance(parameters, ast.List)
    inline = [item for item in parameters.elts if isinstance(item, ast.Dict)]
    names = {ast.literal_eval(key) for item in inline for key in item.keys if key is not None}
    assert names == {"use_sim_time"}
    assert names <= declared_parameters()


def test_launch_loads_shipped_parameter_files() -> None:
    call = safety_node_call(ast.parse(LAUNCH.read_text(encoding="utf-8")))
    source = ast.unparse(keyword(call, "parameters"))
    assert "'nc_safety.yaml'" in source
    assert "'tb3_burger.yaml'" in source
    assert ast.literal_eval(keyword(call, "executable")) == "nc_safety_node"
    assert ast.literal_eval(keyword(call, "name")) == "nc_safety"


def test_shipped_parameter_files_are_declared() -> None:
    declared = declared_parameters()
    for path in (REPO / "config" / "nc_safety.yaml", REPO / "config" / "tb3_burger.yaml"):
        unknown = set(read_ros_params(path)) - declared
        assert not unknown, f"{path.name}: {sorted(unknown)}"


def test_bridge_maps_exactly_node_topics() -> None:
    entries = yaml.safe_load(BRIDGE.read_text(encoding="utf-8"))
    mapped = {entry["ros_topic_name"]: (entry["ros_type_name"], entry["direction"]) for entry in entries}
    assert mapped == NODE_TOPICS


def test_bridge_gazebo_types_match_ros_types() -> None:
    gz_types = {
        "rosgraph_msgs/msg/Clock": "gz.msgs.Clock",
        "sensor_msgs/msg/LaserScan": "gz.msgs.LaserScan",
        "nav_msgs/msg/Odometry": "gz.msgs.Odometry",
        "geometry_msgs/msg/Twist": "gz.msgs.Twist",
    }
    for entry in yaml.safe_load(BRIDGE.read_text(encoding="utf-8")):
        assert entry["gz_type_name"] == gz_types[entry["ros_type_name"]], entry


def test_bridge_never_drives_base_from_cmd_vel_in() -> None:
    entries = yaml.safe_load(BRIDGE.read_text(encoding="utf-8"))
    to_gazebo = [entry["ros_topic_name"] for entry in entries if entry["direction"] != "GZ_TO_ROS"]
    assert to_gazebo == ["cmd_vel_out"]


def test_bridge_command_type_matches_node_config() -> None:
    params = read_ros_params(REPO / "config" / "tb3_burger.yaml")
    expected = {"twist": "geometry_msgs/msg/Twist", "twist_stamped": "geometry_msgs/msg/TwistStamped"}
    command = next(
        entry
        for entry in yaml.safe_load(BRIDGE.read_text(encoding="utf-8"))
        if entry["ros_topic_name"] == "cmd_vel_out"
    )
    assert command["ros_type_name"] == expected[params.get("command.type", "twist")]
