"""Restricted zones in the motion path, through the node over DDS."""

from __future__ import annotations

from pathlib import Path

from nav_msgs.msg import Odometry
from ros_harness import REPO_ROOT, NodeProcess, RosClient, SafetyProbe

WAIT = 15.0

ZONES = """\
zones:
  - name: lab_office
    description: a private office
    polygon: [[1.0, -1.0], [3.0, -1.0], [3.0, 1.0], [1.0, 1.0]]
    allowed_roles: [supervisor]
    refutable_by: supervisor
"""


def test_motion_into_zone_refused(ros_env: dict[str, str], ros_client: RosClient, tmp_path: Path) -> None:
    zones = tmp_path / "zones.yaml"
    zones.write_text(ZONES)
    node = NodeProcess.safety_node(
        ros_env, tmp_path / "node.log", REPO_ROOT / "config" / "tb3_burger.yaml", {"zones.file": str(zones)}
    )
    try:
        probe = SafetyProbe(ros_client)
        probe.wait_ready(30.0)

        def odom_at(x: float) -> None:
            msg = Odometry()
            msg.header.stamp = probe.now_msg()
            msg.header.frame_id = "odom"
            msg.pose.pose.position.x = x
            msg.pose.pose.orientation.w = 1.0
            probe.odom_pub.publish(msg)

        def toward_zone() -> None:
            probe.scan()
            odom_at(0.98)
            probe.send(0.2)

        probe.stream_until(lambda: probe.refusals_with("motion.zone.lab_office"), WAIT, 0.05, toward_zone)
        probe.stream(0.3, 0.05, toward_zone)
        refusal = probe.refusals_with("motion.zone.lab_office")[0]
        reason = next(r for r in refusal["reasons"] if r["rule_id"] == "motion.zone.lab_office")

        def away_from_zone() -> None:
            probe.scan()
            odom_at(0.98)
            probe.send(-0.1)

        probe.stream_until(lambda: probe.last_output().linear.x < 0.0, WAIT, 0.05, away_from_zone)

        assert reason["kind"] == "normative"
        assert reason["refutable_by"] == "supervisor"
        assert probe.last_output().linear.x < 0.0
    finally:
        node.stop()


def test_bad_zones_file_stops_start(ros_env: dict[str, str], tmp_path: Path) -> None:
    zones = tmp_path / "zones.yaml"
    zones.write_text("zones:\n  - name: x\n    polygon: [[0, 0], [1, 0]]\n")
    node = NodeProcess.safety_node(
        ros_env, tmp_path / "node.log", REPO_ROOT / "config" / "tb3_burger.yaml", {"zones.file": str(zones)}
    )
    code = node.process.wait(timeout=30.0)
    output = node.output
    node.stop()
    assert code == 2
    assert "polygon" in output
