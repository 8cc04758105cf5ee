"""Joint trajectories through the node over DDS."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ros_harness import NodeProcess, RosClient

PARAMS = {
    "trajectory.enabled": True,
    "trajectory.joints": ["shoulder", "elbow"],
    "trajectory.min_positions": [-1.0, -2.0],
    "trajectory.max_positions": [1.0, 2.0],
    "trajectory.max_velocities": [0.5, 1.0],
}


def trajectory(shoulder: float, seconds: float) -> Any:
    from builtin_interfaces.msg import Duration
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

    message = JointTrajectory()
    message.joint_names = ["shoulder", "elbow"]
    point = JointTrajectoryPoint()
    point.positions = [shoulder, 0.0]
    point.time_from_start = Duration(sec=int(seconds), nanosec=int((seconds % 1) * 1e9))
    message.points.append(point)
    return message


def test_trajectories_checked_over_dds(
    ros_env: dict[str, str], ros_client: RosClient, tmp_path: Path
) -> None:
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from std_msgs.msg import String
    from trajectory_msgs.msg import JointTrajectory

    node = NodeProcess.safety_node(ros_env, tmp_path / "node.log", params=PARAMS)
    try:
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        publisher = ros_client.node.create_publisher(JointTrajectory, "trajectory_in", reliable)
        forwarded: list[Any] = []
        refusals: list[dict[str, Any]] = []
        ros_client.node.create_subscription(JointTrajectory, "trajectory_out", forwarded.append, reliable)
        ros_client.node.create_subscription(
            String, "/nc_safety/refusals", lambda m: refusals.append(json.loads(m.data)), QoSProfile(depth=50)
        )
        from sensor_msgs.msg import JointState

        states = ros_client.node.create_publisher(JointState, "joint_states", 10)
        ros_client.wait_for_subscribers(publisher, 1, 30.0)
        ros_client.wait_for_subscribers(states, 1, 30.0)
        ros_client.wait_for_publishers("trajectory_out", 1, 30.0)

        publisher.publish(trajectory(0.5, 2.0))
        ros_client.spin_until(lambda: forwarded, 15.0)
        states.publish(JointState(name=["shoulder", "elbow"], position=[0.0, 0.0]))
        ros_client.spin_for(0.3)
        publisher.publish(trajectory(0.5, 0.5))
        ros_client.spin_until(lambda: len(forwarded) >= 2, 15.0)
        publisher.publish(trajectory(1.5, 10.0))
        refused = ros_client.spin_until(
            lambda: next((r for r in refusals if r["verdict"] == "refuse"), None), 15.0
        )
    finally:
        node.stop()

    slowed = forwarded[1].points[0].time_from_start
    assert forwarded[0].points[0].time_from_start.sec == 2
    assert slowed.sec + slowed.nanosec * 1e-9 > 0.99
    assert refused["reasons"][0]["rule_id"] == "trajectory.limit.position.shoulder"
    assert len(forwarded) == 2
