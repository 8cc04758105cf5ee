"""A running directive defers new ones of equal or lower priority until it is reported done."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ros_harness import NodeProcess, RosClient

WAIT = 15.0
PLAN = ["find Mug", "pick Mug", "find CounterTop", "put CounterTop"]


def test_running_task_defers_until_done(
    ros_env: dict[str, str], ros_client: RosClient, tmp_path: Path
) -> None:
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from std_msgs.msg import String

    node = NodeProcess.safety_node(
        ros_env,
        tmp_path / "node.log",
        params={"directives.enabled": True, "directives.running_task_timeout_s": 60.0},
    )
    try:
        reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        directives = ros_client.node.create_publisher(String, "directive_in", reliable)
        done = ros_client.node.create_publisher(String, "directive_done", reliable)
        accepted: list[str] = []
        refused: dict[str, dict[str, Any]] = {}
        ros_client.node.create_subscription(
            String,
            "directive_out",
            lambda m: accepted.append(json.loads(m.data)["directive"]["id"]),
            reliable,
        )
        ros_client.node.create_subscription(
            String,
            "/nc_safety/refusals",
            lambda m: refused.setdefault(json.loads(m.data)["command"]["id"], json.loads(m.data)),
            QoSProfile(depth=50),
        )
        ros_client.wait_for_subscribers(directives, 1, 30.0)
        ros_client.wait_for_subscribers(done, 1, 30.0)

        def send(directive_id: str, priority: int) -> None:
            payload = {
                "id": directive_id,
                "requester": {"id": "ops", "role": "user"},
                "priority": priority,
                "plan": PLAN,
            }
            directives.publish(String(data=json.dumps(payload)))

        send("first", 50)
        ros_client.spin_until(lambda: "first" in accepted, WAIT)
        send("second", 50)
        deferred = ros_client.spin_until(lambda: refused.get("second"), WAIT)
        send("urgent", 90)
        ros_client.spin_until(lambda: "urgent" in accepted, WAIT)
        done.publish(String(data="urgent"))
        ros_client.spin_for(0.3)
        send("third", 50)
        ros_client.spin_until(lambda: "third" in accepted, WAIT)
    finally:
        node.stop()

    assert deferred["verdict"] == "defer"
    assert "first" in deferred["reasons"][0]["message"]
    assert accepted == ["first", "urgent", "third"]
