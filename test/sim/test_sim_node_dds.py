"""The simulation node over real DDS, without the safety layer (open loop)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

from ros_harness import NodeProcess, RosClient

CLI = [sys.executable, "-m", "nc_safety.console.cli", "sim"]


def test_open_loop_wall_run_hits_wall(ros_env: dict[str, str], tmp_path: Path) -> None:
    completed = subprocess.run(
        [*CLI, "run", "wall_run", "--no-safety", "--real-time-factor", "0", "--out", str(tmp_path)],
        env=ros_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    record = json.loads((tmp_path / "wall_run-without.json").read_text())
    assert record["contact_count"] == 1
    assert record["contacted"] == ["wall_east"]
    assert record["min_obstacle_clearance"] <= 0.0
    assert record["safety"] is False


def matching_stamp(received: dict[str, list[Any]]) -> tuple[Any, Any] | None:
    """A people message and the odometry message published in the same simulation step."""
    odom_by_stamp = {(m.header.stamp.sec, m.header.stamp.nanosec): m for m in received["odom"]}
    for people in received["people"]:
        odom = odom_by_stamp.get((people.header.stamp.sec, people.header.stamp.nanosec))
        if odom is not None:
            return people, odom
    return None


def test_sim_publishes_robot_topics(ros_env: dict[str, str], ros_client: RosClient, tmp_path: Path) -> None:
    from geometry_msgs.msg import PoseArray
    from nav_msgs.msg import Odometry
    from rclpy.qos import QoSProfile, qos_profile_sensor_data
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import LaserScan

    received: dict[str, list[Any]] = {"clock": [], "scan": [], "odom": [], "people": []}
    node = ros_client.node
    node.create_subscription(Clock, "/clock", received["clock"].append, QoSProfile(depth=100))
    node.create_subscription(LaserScan, "scan", received["scan"].append, qos_profile_sensor_data)
    node.create_subscription(Odometry, "odom", received["odom"].append, QoSProfile(depth=10))
    node.create_subscription(PoseArray, "people", received["people"].append, QoSProfile(depth=10))

    sim = NodeProcess([*CLI, "run", "person_standing_crossing", "--no-safety"], ros_env, tmp_path / "sim.log")
    try:
        ros_client.spin_until(
            lambda: all(len(messages) >= 3 for messages in received.values()) and matching_stamp(received),
            timeout=60.0,
        )
    finally:
        sim.stop()

    scan = received["scan"][0]
    assert scan.header.frame_id == "base_scan"
    assert len(scan.ranges) == 360
    assert math.isclose(scan.range_min, 0.12, rel_tol=1e-6)
    assert math.isclose(scan.range_max, 3.5, rel_tol=1e-6)
    assert math.isclose(scan.angle_increment, 2.0 * math.pi / 360, rel_tol=1e-6)

    odom = received["odom"][0]
    assert odom.header.frame_id == "odom"
    assert odom.child_frame_id == "base_footprint"
    # The commander drives straight ahead, so odometry stays on its x axis.
    assert abs(odom.pose.pose.position.y) < 1e-6

    people, odom_then = matching_stamp(received)
    assert people.header.frame_id == "base_footprint"
    ahead = [pose for pose in people.poses if abs(pose.position.y) < 0.01]
    assert len(ahead) == 1
    # The standing person is 3.0 m ahead of the start; odometry at the same stamp gives the distance driven.
    assert math.isclose(ahead[0].position.x, 3.0 - odom_then.pose.pose.position.x, abs_tol=0.01)

    stamps = [message.clock.sec + message.clock.nanosec * 1e-9 for message in received["clock"]]
    assert stamps == sorted(stamps)
    assert stamps[-1] > stamps[0]


def test_sim_run_unknown_scenario_fails(ros_env: dict[str, str]) -> None:
    completed = subprocess.run(
        [*CLI, "run", "no_such_scenario"],
        env=ros_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 2
    assert "scenario 'no_such_scenario' not found" in completed.stderr
