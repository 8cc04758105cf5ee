"""Directives through the real safety node over DDS: accepted ones forwarded, others on ~/refusals."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ros_harness import NodeProcess, RosClient

RELIABLE_DEPTH = 50


@pytest.fixture
def node(ros_env: dict[str, str], tmp_path: Path) -> Iterator[NodeProcess]:
    process = NodeProcess.safety_node(
        ros_env,
        tmp_path / "node.log",
        params={
            "directives.enabled": True,
            "directives.payload_kg": 1.5,
            "directives.shared_state_window_s": 60.0,
        },
    )
    try:
        yield process
    finally:
        process.stop()


class DirectiveProbe:
    """Publishes directives and records `directive_out` and `~/refusals`."""

    def __init__(self, client: RosClient) -> None:
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from std_msgs.msg import String

        self.client = client
        self.string = String
        reliable = QoSProfile(depth=RELIABLE_DEPTH, reliability=ReliabilityPolicy.RELIABLE)
        self.publisher = client.node.create_publisher(String, "directive_in", reliable)
        self.accepted: list[dict[str, Any]] = []
        self.refusals: list[dict[str, Any]] = []
        client.node.create_subscription(
            String, "directive_out", lambda m: self.accepted.append(json.loads(m.data)), reliable
        )
        client.node.create_subscription(
            String,
            "/nc_safety/refusals",
            lambda m: self.refusals.append(json.loads(m.data)),
            QoSProfile(depth=50),
        )

    def wait_ready(self, timeout: float = 30.0) -> None:
        self.client.wait_for_subscribers(self.publisher, 1, timeout)
        self.client.wait_for_publishers("directive_out", 1, timeout)
        self.client.wait_for_publishers("/nc_safety/refusals", 1, timeout)

    def send(self, directive_id: str, plan: list[Any], role: str = "user") -> None:
        payload = {"id": directive_id, "requester": {"id": "alice", "role": role}, "plan": plan}
        self.publisher.publish(self.string(data=json.dumps(payload)))

    def send_raw(self, text: str) -> None:
        self.publisher.publish(self.string(data=text))

    def refusal(self, directive_id: str, timeout: float = 15.0) -> dict[str, Any]:
        return self.client.spin_until(
            lambda: next((r for r in self.refusals if r["command"]["id"] == directive_id), None), timeout
        )


def test_directives_over_dds(node: NodeProcess, ros_client: RosClient) -> None:
    probe = DirectiveProbe(ros_client)
    probe.wait_ready()

    probe.send("d-setup", ["find Fork", "pick Fork", "find Toaster", "put Toaster"])
    accepted = ros_client.spin_until(lambda: next(iter(probe.accepted), None), 15.0)
    assert accepted["schema"] == "nc_safety/accepted_directive", node.output
    assert accepted["directive"]["id"] == "d-setup"
    assert accepted["directive"]["plan"][3] == {"action": "put", "target": "Toaster"}

    probe.send("d-trigger", ["find Toaster", "turn_on Toaster"])
    refusal = probe.refusal("d-trigger")
    reason = refusal["reasons"][0]
    assert refusal["verdict"] == "refuse"
    assert reason["rule_id"] == "directive.norm.metal_in_heater"
    assert reason["step"] == 1
    assert "earlier directive 'd-setup'" in reason["message"]
    assert refusal["output"]["first_failed"]["condition"] == "normative"

    probe.send("d-heavy", ["find Laptop", "pick Laptop"])
    heavy = probe.refusal("d-heavy")
    assert heavy["verdict"] == "unable"
    assert heavy["reasons"][0]["rule_id"] == "directive.felicity.capacity"
    assert "more than the 1.5 kg payload" in heavy["reasons"][0]["message"]

    probe.send("d-guest", ["find StoveKnob", "turn_on StoveKnob", "turn_off StoveKnob"], role="guest")
    assert probe.refusal("d-guest")["verdict"] == "unauthorized"

    probe.send_raw('{"id": "d-bad", "plan": [')
    bad = ros_client.spin_until(
        lambda: next((r for r in probe.refusals if r["reasons"][0]["rule_id"] == "directive.invalid"), None),
        15.0,
    )
    assert bad["verdict"] == "unable"
    assert len(probe.accepted) == 1
    assert node.alive(), node.output
