"""A fed robot and a node started with overrides, shared by the override tests over DDS."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path
from typing import Any

from geometry_msgs.msg import Twist
from nav_msgs.msg import Odometry
from override_helpers import OverrideWorld
from ros_harness import REPO_ROOT, NodeProcess, RosClient
from sensor_msgs.msg import LaserScan
from std_msgs.msg import String

PARAMS_FILE = REPO_ROOT / "config" / "nc_safety.yaml"
OBSTACLE_RANGE_M = 0.15
"""Inside the default stop zone: 0.08 m ahead of the footprint's front edge."""
FORWARD_SPEED = 0.1


class Robot:
    """Feeds the node a scan with an obstacle ahead, odometry and (optionally) a forward command at 20 Hz."""

    def __init__(self, client: RosClient, *, command: bool = True) -> None:
        node = client.node
        self.client = client
        self.scan = node.create_publisher(LaserScan, "/scan", 10)
        self.odom = node.create_publisher(Odometry, "/odom", 10)
        # Only one publisher may exist on cmd_vel_in, or the node stops (source.multiple_publishers).
        self.cmd = node.create_publisher(Twist, "/cmd_vel_in", 10) if command else None
        self.outputs: list[float] = []
        self.refusals: list[dict[str, Any]] = []
        self.statuses: list[dict[str, Any]] = []
        node.create_subscription(Twist, "/cmd_vel_out", lambda m: self.outputs.append(m.linear.x), 10)
        node.create_subscription(
            String, "/nc_safety/refusals", lambda m: self.refusals.append(json.loads(m.data)), 50
        )
        node.create_subscription(
            String, "/nc_safety/override_status", lambda m: self.statuses.append(json.loads(m.data)), 50
        )
        self.timer = node.create_timer(0.05, self.tick)

    def tick(self) -> None:
        now = self.client.node.get_clock().now().to_msg()
        scan = LaserScan()
        scan.header.stamp = now
        scan.header.frame_id = "base_scan"
        count = 360
        scan.angle_min = -math.pi
        scan.angle_increment = 2 * math.pi / count
        scan.angle_max = scan.angle_min + scan.angle_increment * (count - 1)
        scan.range_min = 0.12
        scan.range_max = 3.5
        scan.ranges = [
            OBSTACLE_RANGE_M if abs(scan.angle_min + i * scan.angle_increment) < math.radians(15) else 3.0
            for i in range(count)
        ]
        self.scan.publish(scan)
        odom = Odometry()
        odom.header.stamp = now
        odom.header.frame_id = "odom"
        odom.pose.pose.orientation.w = 1.0
        self.odom.publish(odom)
        if self.cmd is not None:
            twist = Twist()
            twist.linear.x = FORWARD_SPEED
            self.cmd.publish(twist)

    def wait_refusal(self, rule_id: str, timeout: float = 20.0) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            for record in reversed(self.refusals):
                if rule_id in [reason["rule_id"] for reason in record["reasons"]] and not record["overrides"]:
                    return record
            return None

        return self.client.spin_until(found, timeout)

    def run(
        self, argv: list[str], env: dict[str, str], timeout: float = 30.0
    ) -> subprocess.CompletedProcess[str]:
        """Run a CLI while this thread keeps feeding the node."""
        process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.client.spin_until(lambda: process.poll() is not None, timeout)
        stdout, stderr = process.communicate(timeout=5.0)
        return subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)


def start_node(world: OverrideWorld, env: dict[str, str], log: Path) -> NodeProcess:
    return NodeProcess.safety_node(
        env,
        log,
        params_file=PARAMS_FILE,
        params={
            "overrides.enabled": True,
            "overrides.keyring_path": str(world.keyring_path),
            "overrides.nonce_db_path": str(world.nonce_path),
        },
    )
