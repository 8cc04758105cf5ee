"""Directives, risk tracking and overrides working together in one node over DDS."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ros_harness import NodeProcess, RosClient

WAIT = 15.0
UNSAFE_PLANS = [
    [
        "find Fork",
        "pick Fork",
        "find Microwave",
        "open Microwave",
        "put Microwave",
        "close Microwave",
        "turn_on Microwave",
    ],
    [
        "find Microwave",
        "open Microwave",
        "find Fork",
        "pick Fork",
        "put Microwave",
        "close Microwave",
        "turn_on Microwave",
    ],
    [
        "find  fork",
        "pick fork",
        "find microwave",
        "open microwave",
        "put microwave",
        "close microwave",
        "turn_on microwave",
    ],
    [
        "find Fork",
        "pick Fork",
        "find Microwave",
        "open Microwave",
        "put Microwave",
        "close Microwave",
        "turn_on Microwave",
    ],
]
SAFE_PLAN = ["find Mug", "pick Mug", "find CounterTop", "put CounterTop"]


class Directives:
    def __init__(self, client: RosClient) -> None:
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from std_msgs.msg import String

        self.client = client
        self.string = String
        reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        self.publisher = client.node.create_publisher(String, "directive_in", reliable)
        self.decisions: dict[str, dict[str, Any]] = {}
        self.accepted: list[str] = []

        def on_refusal(message: Any) -> None:
            record = json.loads(message.data)
            if record["command"]["kind"] == "directive":
                self.decisions[record["command"]["id"]] = record

        def on_accepted(message: Any) -> None:
            self.accepted.append(json.loads(message.data)["directive"]["id"])

        client.node.create_subscription(String, "/nc_safety/refusals", on_refusal, QoSProfile(depth=100))
        client.node.create_subscription(String, "directive_out", on_accepted, reliable)
        client.wait_for_subscribers(self.publisher, 1, 30.0)
        client.wait_for_publishers("/nc_safety/refusals", 1, 30.0)

    def send(self, directive_id: str, requester: str, plan: list[str]) -> None:
        payload = {"id": directive_id, "requester": {"id": requester, "role": "user"}, "plan": plan}
        self.publisher.publish(self.string(data=json.dumps(payload)))

    def outcome(self, directive_id: str) -> str:
        """`accepted` or the verdict of the refusal, waiting for whichever arrives."""
        return self.client.spin_until(
            lambda: (
                "accepted"
                if directive_id in self.accepted
                else (self.decisions[directive_id]["verdict"] if directive_id in self.decisions else None)
            ),
            WAIT,
        )


def test_rephrasing_requester_locked_out(
    ros_env: dict[str, str], ros_client: RosClient, tmp_path: Path
) -> None:
    node = NodeProcess.safety_node(
        ros_env,
        tmp_path / "node.log",
        params={
            "directives.enabled": True,
            "risk.enabled": True,
            "risk.path": str(tmp_path / "risk.sqlite3"),
            "directives.shared_state_window_s": 0.0,
        },
    )
    try:
        directives = Directives(ros_client)
        verdicts = []
        for index, plan in enumerate(UNSAFE_PLANS):
            directives.send(f"m{index}", "mallory", plan)
            verdicts.append(directives.outcome(f"m{index}"))
            directives.send(f"b{index}", "bob", SAFE_PLAN)
            assert directives.outcome(f"b{index}") == "accepted", node.output
        directives.send("m-benign", "mallory", SAFE_PLAN)
        locked = directives.outcome("m-benign")
        locked_reason = directives.decisions["m-benign"]["reasons"][0]
        directives.send("b-last", "bob", SAFE_PLAN)
        bob_last = directives.outcome("b-last")
    finally:
        node.stop()

    assert verdicts[0] == "refuse"
    assert locked == "unauthorized"
    assert locked_reason["rule_id"] == "risk.locked_out"
    assert bob_last == "accepted"
