"""Launch the nc_safety node on a robot with a full ROS 2 install (launch and launch_ros).

    ros2 launch nc_safety nc_safety.launch.py params_file:=/path/to/robot.yaml

Remap the command topics to sit between the commander and the base controller, e.g.
cmd_vel_in:=/cmd_vel_nav cmd_vel_out:=/cmd_vel. This file keeps DDS settings to the
environment: set ROS_AUTOMATIC_DISCOVERY_RANGE and FASTDDS_DEFAULT_PROFILES_FILE for your
robot before launching.
"""

from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription


def generate_launch_description() -> LaunchDescription:
    default_params = PathJoinSubstitution([FindPackageShare("nc_safety"), "config", "nc_safety.yaml"])
    arguments = [
        DeclareLaunchArgument(
            "params_file", default_value=default_params, description="node parameters (YAML)"
        ),
        DeclareLaunchArgument("use_sim_time", default_value="false", description="use /clock (simulation)"),
        DeclareLaunchArgument("cmd_vel_in", default_value="cmd_vel_in", description="commands to check"),
        DeclareLaunchArgument("cmd_vel_out", default_value="cmd_vel_out", description="checked commands"),
        DeclareLaunchArgument(
            "namespace", default_value="", description="namespace of the node and its topics"
        ),
    ]
    node = Node(
        package="nc_safety",
        executable="nc_safety_node",
        name="nc_safety",
        namespace=LaunchConfiguration("namespace"),
        parameters=[
            LaunchConfiguration("params_file"),
            {"use_sim_time": ParameterValue(LaunchConfiguration("use_sim_time"), value_type=bool)},
        ],
        remappings=[
            ("cmd_vel_in", LaunchConfiguration("cmd_vel_in")),
            ("cmd_vel_out", LaunchConfiguration("cmd_vel_out")),
        ],
        output="screen",
        emulate_tty=True,
    )
    return LaunchDescription([*arguments, node])
