"""Launch Gazebo Harmonic with a TurtleBot3 burger behind the nc_safety node.

    ros2 launch nc_safety gazebo.launch.py [world:=<sdf>] [x_pose:=0.0] [y_pose:=0.0]

Starts the Gazebo server and GUI (ros_gz_sim), spawns the burger model from
turtlebot3_gazebo, bridges /clock, scan, odom and cmd_vel_out with ros_gz_bridge
(config/gz_bridge.yaml) and runs the safety node on sim time with config/nc_safety.yaml
and config/tb3_burger.yaml. Drive it by publishing on cmd_vel_in, for example with
`ros2 run teleop_twist_keyboard teleop_twist_keyboard --ros-args -r cmd_vel:=cmd_vel_in`.
Step-by-step setup: docs/gazebo.md.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription


def generate_launch_description():
    nc_safety_share = get_package_share_directory("nc_safety")
    ros_gz_sim_share = get_package_share_directory("ros_gz_sim")
    turtlebot3_gazebo_share = get_package_share_directory("turtlebot3_gazebo")

    world = LaunchConfiguration("world")
    x_pose = LaunchConfiguration("x_pose")
    y_pose = LaunchConfiguration("y_pose")

    gazebo = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(os.path.join(ros_gz_sim_share, "launch", "gz_sim.launch.py")),
        launch_arguments={"gz_args": ["-r -v2 ", world], "on_exit_shutdown": "true"}.items(),
    )

    spawn_robot = Node(
        package="ros_gz_sim",
        executable="create",
        arguments=[
            "-name",
            "burger",
            "-file",
            os.path.join(turtlebot3_gazebo_share, "models", "turtlebot3_burger", "model.sdf"),
            "-x",
            x_pose,
            "-y",
            y_pose,
            "-z",
            "0.01",
        ],
        output="screen",
    )

    bridge = Node(
        package="ros_gz_bridge",
        executable="parameter_bridge",
        parameters=[{"config_file": os.path.join(nc_safety_share, "config", "gz_bridge.yaml")}],
        output="screen",
    )

    safety_node = Node(
        package="nc_safety",
        executable="nc_safety_node",
        name="nc_safety",
        parameters=[
            os.path.join(nc_safety_share, "config", "nc_safety.yaml"),
            os.path.join(nc_safety_share, "config", "tb3_burger.yaml"),
            {"use_sim_time": True},
        ],
        output="screen",
    )

    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "world",
                default_value=os.path.join(turtlebot3_gazebo_share, "worlds", "turtlebot3_world.world"),
                description="SDF world file for Gazebo",
            ),
            DeclareLaunchArgument("x_pose", default_value="-2.0", description="spawn x of the robot, in m"),
            DeclareLaunchArgument("y_pose", default_value="-0.5", description="spawn y of the robot, in m"),
            gazebo,
            spawn_robot,
            bridge,
            safety_node,
        ]
    )
