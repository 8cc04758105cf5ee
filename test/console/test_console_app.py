"""The operator console, headless with Textual's pilot, against the real safety node over DDS."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from override_helpers import OverrideWorld, make_world
from override_robot import Robot, start_node
from ros_harness import NodeProcess, RosClient
from textual.widgets import DataTable, Static

from nc_safety.console.app import ConsoleApp, format_justification
from nc_safety.console.override_cli import OperatorLink

PILOT_TIMEOUT_S = 20.0


@pytest.fixture
def world(tmp_path: Path) -> OverrideWorld:
    return make_world(tmp_path)


@pytest.fixture
def node(world: OverrideWorld, ros_env: dict[str, str], tmp_path: Path) -> Iterator[NodeProcess]:
    process = start_node(world, ros_env, tmp_path / "node.log")
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def robot(ros_client: RosClient) -> Iterator[Robot]:
    """Scan and odometry only: the console is the one publisher on cmd_vel_in."""
    robot = Robot(ros_client, command=False)
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            ros_client.spin_once(0.01)

    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    try:
        yield robot
    finally:
        stop.set()
        thread.join(timeout=5.0)


async def until(predicate: Callable[[], object], pilot: object, timeout: float = PILOT_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout:.1f} s")
        await pilot.pause(0.05)  # type: ignore[attr-defined]


def response_text(app: ConsoleApp) -> str:
    return str(app.query_one("#response", Static).render())


def test_console_drive_override_and_estop(
    node: NodeProcess, world: OverrideWorld, robot: Robot, ros_domain: int
) -> None:
    link = OperatorLink("/nc_safety", client_name="console_under_test", domain_id=ros_domain)
    app = ConsoleApp(link, world.identity("bob"), linear_speed=0.1)

    async def scenario() -> None:
        async with app.run_test(size=(160, 48)) as pilot:
            await until(link.connected, pilot)
            await pilot.press("i")
            assert app.drive == (1, 0)
            await until(
                lambda: any(
                    "motion.obstacle.stop" in [r["rule_id"] for r in record["reasons"]]
                    for record in app.refusals.values()
                ),
                pilot,
            )
            table = app.query_one("#refusals", DataTable)
            decision_id = next(
                key
                for key, record in app.refusals.items()
                if "motion.obstacle.stop" in [r["rule_id"] for r in record["reasons"]]
            )
            table.move_cursor(row=table.get_row_index(decision_id))
            await pilot.pause(0.05)
            assert "motion.obstacle.stop" in str(app.query_one("#justification", Static).render())
            await pilot.click("#reason")
            # Each pilot key press waits for the busy UI to settle (about 2 s here), so the reason is short.
            await pilot.press(*"box")
            app.query_one("#duration").value = "30"  # type: ignore[attr-defined]
            await pilot.press("ctrl+o")
            await until(lambda: "accepted" in response_text(app), pilot)
            assert len(app.overrides) == 1
            robot.outputs.clear()
            await until(lambda: any(value > 0.0 for value in robot.outputs), pilot, timeout=5.0)
            await pilot.press("f1")
            await until(lambda: "engaged" in response_text(app), pilot)
            assert app.drive == (0, 0)
            robot.outputs.clear()
            await until(lambda: len(robot.outputs) >= 5, pilot, timeout=5.0)
            assert robot.outputs[-1] == 0.0

    try:
        asyncio.run(scenario())
    finally:
        link.close()
    assert "software e-stop engaged" in node.output


def test_typing_reason_does_not_drive(node: NodeProcess, world: OverrideWorld, ros_domain: int) -> None:
    link = OperatorLink("/nc_safety", client_name="console_typing", domain_id=ros_domain)
    app = ConsoleApp(link, world.identity("alice"))

    async def scenario() -> None:
        async with app.run_test(size=(160, 48)) as pilot:
            await pilot.click("#reason")
            await pilot.press(*"jikl")
            assert app.drive == (0, 0)
            assert app.query_one("#reason").value == "jikl"  # type: ignore[attr-defined]

    try:
        asyncio.run(scenario())
    finally:
        link.close()


def test_override_without_reason_not_sent(node: NodeProcess, world: OverrideWorld, ros_domain: int) -> None:
    link = OperatorLink("/nc_safety", client_name="console_no_reason", domain_id=ros_domain)
    app = ConsoleApp(link, world.identity("alice"))

    async def scenario() -> None:
        async with app.run_test(size=(160, 48)) as pilot:
            app.add_refusal({"decision_id": "d1", "verdict": "refuse", "reasons": [], "command": {}})
            await pilot.press("ctrl+o")
            assert "type a reason first" in response_text(app)

    try:
        asyncio.run(scenario())
    finally:
        link.close()


def test_justification_lists_evidence_and_remedy() -> None:
    record = {
        "decision_id": "d1",
        "verdict": "refuse",
        "command": {"kind": "twist", "id": "7", "requester": "cmd_vel_in"},
        "reasons": [
            {
                "rule_id": "motion.obstacle.stop",
                "kind": "safety",
                "severity": "high",
                "refutable_by": "supervisor",
                "message": "Obstacle 0.08 m ahead, inside the stop zone.",
                "evidence": [
                    {"quantity": "clearance", "value": 0.08, "unit": "m", "limit": 0.1, "source": "scan"}
                ],
                "consequence": "Collision within 1 s.",
                "remedy": "Drive away from the obstacle.",
            }
        ],
    }
    text = format_justification(record)
    assert "evidence: clearance = 0.08 m (limit 0.1) from scan" in text
    assert "remedy: Drive away from the obstacle." in text
    assert "refutable by supervisor" in text
