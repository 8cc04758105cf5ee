"""Audit trail and risk tracking in the real safety node over loopback DDS."""

from __future__ import annotations

import json
import math
import random
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from geometry_msgs.msg import Twist
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from ros_harness import NodeProcess, RosClient, format_param
from std_msgs.msg import String

from nc_safety.core.audit import AuditReader, verify_file

NODE = "nc_safety"


class Watcher:
    """Collects the node's latched `~/state` and `~/risk` messages."""

    def __init__(self, client: RosClient) -> None:
        latched = QoSProfile(
            depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE
        )
        self.client = client
        self.state: dict[str, Any] = {}
        self.risk: dict[str, Any] = {}
        client.node.create_subscription(String, f"/{NODE}/state", self._on_state, latched)
        client.node.create_subscription(String, f"/{NODE}/risk", self._on_risk, latched)
        self.cmd = client.node.create_publisher(Twist, "/cmd_vel_in", 10)

    def _on_state(self, msg: String) -> None:
        self.state = json.loads(msg.data)

    def _on_risk(self, msg: String) -> None:
        self.risk = json.loads(msg.data)

    def hold_ids(self) -> list[str]:
        return [hold["hold_id"] for hold in self.state.get("holds", [])]

    def wait_for_hold(self, prefix: str, timeout: float = 20.0) -> dict[str, Any]:
        return self.client.spin_until(
            lambda: next((h for h in self.state.get("holds", []) if h["hold_id"].startswith(prefix)), None),
            timeout,
        )


def start_node(env: dict[str, str], log: Path, params: dict[str, Any]) -> NodeProcess:
    return NodeProcess.safety_node(env, log, params=params, name=NODE)


def audit_params(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "audit.enabled": True,
        "audit.path": str(tmp_path / "audit.sqlite3"),
        "risk.enabled": True,
        "risk.path": str(tmp_path / "risk.sqlite3"),
        # One refusal episode locks out, so the test needs a single bad command.
        "risk.weight.refused_motion": 100.0,
    }
    params.update(extra)
    return params


def send_nan(watcher: Watcher) -> None:
    watcher.client.wait_for_subscribers(watcher.cmd, timeout=20.0)
    twist = Twist()
    twist.linear.x = math.nan
    watcher.cmd.publish(twist)


def test_node_audits_and_locks_out(ros_env: dict[str, str], ros_client: RosClient, tmp_path: Path) -> None:
    watcher = Watcher(ros_client)
    node = start_node(ros_env, tmp_path / "node.log", audit_params(tmp_path))
    try:
        send_nan(watcher)
        hold = watcher.wait_for_hold("risk.locked_out")
        ros_client.spin_until(
            lambda: any(r["level"] == "locked_out" for r in watcher.risk.get("requesters", [])), timeout=10.0
        )
    finally:
        code = node.stop()

    assert code == 0, (tmp_path / "node.log").read_text()[-3000:]
    assert "locked out" in hold["message"]
    result = verify_file(tmp_path / "audit.sqlite3")
    assert result.ok, result.problem
    with AuditReader(tmp_path / "audit.sqlite3") as reader:
        kinds = [record.kind for record in reader.records()]
    assert kinds[0] == "start"
    assert kinds[1] == "config"
    assert "decision" in kinds
    assert "risk" in kinds
    assert "hold_set" in kinds
    assert kinds[-1] == "stop"


def test_lockout_survives_node_restart(
    ros_env: dict[str, str], ros_client: RosClient, tmp_path: Path
) -> None:
    watcher = Watcher(ros_client)
    first = start_node(ros_env, tmp_path / "first.log", audit_params(tmp_path))
    try:
        send_nan(watcher)
        watcher.wait_for_hold("risk.locked_out")
    finally:
        first.stop()

    watcher.state = {}
    second = start_node(ros_env, tmp_path / "second.log", audit_params(tmp_path))
    try:
        hold = watcher.wait_for_hold("risk.locked_out")
    finally:
        second.stop()

    assert "still locked out" in (tmp_path / "second.log").read_text()
    assert hold["hold_id"].startswith("risk.locked_out:")


def test_node_stops_when_audit_unwritable(
    ros_env: dict[str, str], ros_client: RosClient, tmp_path: Path
) -> None:
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the audit folder should be")
    watcher = Watcher(ros_client)
    node = start_node(
        ros_env,
        tmp_path / "node.log",
        audit_params(tmp_path, **{"audit.path": str(blocker / "audit.sqlite3")}),
    )
    try:
        hold = watcher.wait_for_hold("audit.write_failed")
    finally:
        node.stop()

    assert "cannot be written" in hold["message"]
    assert "cannot open the audit trail" in (tmp_path / "node.log").read_text()


def test_node_degrades_when_configured(
    ros_env: dict[str, str], ros_client: RosClient, tmp_path: Path
) -> None:
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the audit folder should be")
    watcher = Watcher(ros_client)
    params = audit_params(
        tmp_path, **{"audit.path": str(blocker / "audit.sqlite3"), "audit.on_failure": "degrade"}
    )
    node = start_node(ros_env, tmp_path / "node.log", params)
    try:
        ros_client.spin_until(lambda: watcher.state.get("audit", {}).get("last_error"), timeout=20.0)
        holds = watcher.hold_ids()
    finally:
        node.stop()

    assert "audit.write_failed" not in holds
    assert "motion continues unrecorded" in (tmp_path / "node.log").read_text()


def test_node_file_size_limit_stops(ros_env: dict[str, str], ros_client: RosClient, tmp_path: Path) -> None:
    params = audit_params(tmp_path, **{"audit.record_all_decisions": True, "risk.enabled": False})
    node_argv = [sys.executable, "-m", "nc_safety.ros.node", "--ros-args", "-r", f"__node:={NODE}"]
    for key, value in params.items():
        node_argv += ["-p", f"{key}:={format_param(value)}"]
    # The limit applies to the process after exec; SIGXFSZ is ignored so writes fail with EFBIG instead.
    prelude = (
        "import os, resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({128 * 1024}, {128 * 1024})); "
        "os.execv(sys.argv[1], sys.argv[1:])"
    )
    watcher = Watcher(ros_client)
    node = NodeProcess([sys.executable, "-c", prelude, *node_argv], ros_env, tmp_path / "node.log")
    try:
        hold = watcher.wait_for_hold("audit.write_failed", timeout=40.0)
    finally:
        node.stop()

    assert "cannot be written" in hold["message"]
    result = verify_file(tmp_path / "audit.sqlite3")
    assert result.ok, result.problem


@pytest.mark.slow
def test_node_sigkill_keeps_chain(ros_env: dict[str, str], ros_client: RosClient, tmp_path: Path) -> None:
    chooser = random.Random(7)
    path = tmp_path / "audit.sqlite3"
    params = audit_params(tmp_path, **{"audit.record_all_decisions": True, "risk.enabled": False})
    watcher = Watcher(ros_client)
    for attempt in range(20):
        watcher.state = {}
        node = start_node(ros_env, tmp_path / f"node{attempt}.log", params)
        ros_client.spin_until(lambda: watcher.state.get("audit", {}).get("head_seq", 0) > 5, timeout=30.0)
        time.sleep(chooser.uniform(0.0, 0.5))  # kill at a random point of the write stream
        node.process.send_signal(signal.SIGKILL)
        node.process.wait(timeout=10.0)
        node.stop()
        result = verify_file(path)
        assert result.ok, f"attempt {attempt}: {result.problem}"
