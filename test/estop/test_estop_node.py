"""The e-stop link inside the safety node, over real DDS on loopback and a real pty.

The SIGKILL test runs the node as a child process. The others host the node in the test
process, so they can call `reset(operator_id)` on the extension directly, exactly as the
override verifier does after checking a signed request.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from geometry_msgs.msg import Twist
from ros_harness import HostedSafetyNode, NodeProcess, RosClient
from sensor_msgs.msg import LaserScan
from std_msgs.msg import String

from nc_safety.estop.board import BoardConfig
from nc_safety.estop.emulator import BoardEmulator
from nc_safety.estop.protocol import StopCause

WATCHDOG_S = 0.1
TIMEOUT = 10.0
SPEED = 0.1
"""Commanded forward speed in m/s, inside the default limits."""


@pytest.fixture
def board(tmp_path: Path) -> Iterator[BoardEmulator]:
    emulator = BoardEmulator(BoardConfig(watchdog_s=WATCHDOG_S), link_path=tmp_path / "estop-board")
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()


def estop_parameters(board: BoardEmulator) -> dict[str, Any]:
    return {
        "estop.enabled": True,
        "estop.port": board.port,
        "estop.reset_on_startup": True,
        "estop.reconnect_min": 0.05,
        "estop.reconnect_max": 0.2,
    }


class Traffic:
    """Publishes commands and clear scans; records cmd_vel_out and refusals with arrival times."""

    def __init__(self, client: RosClient) -> None:
        self.client = client
        self.speed = SPEED
        self.outputs: list[tuple[float, float]] = []
        self.refusals: list[dict[str, Any]] = []
        self._twist_type = Twist
        self._commands = client.node.create_publisher(Twist, "cmd_vel_in", 10)
        self._scans = client.node.create_publisher(LaserScan, "scan", 10)
        client.node.create_subscription(Twist, "cmd_vel_out", self._on_output, 50)
        client.node.create_subscription(String, "nc_safety/refusals", self._on_refusal, 50)
        self._scan = LaserScan()
        self._scan.header.frame_id = "base_scan"
        self._scan.angle_min, self._scan.angle_max = -3.14159, 3.14159
        self._scan.angle_increment = 2 * 3.14159 / 360
        self._scan.range_min, self._scan.range_max = 0.12, 3.5
        self._scan.ranges = [3.0] * 360
        client.node.create_timer(0.05, self._publish)

    def _publish(self) -> None:
        self._scan.header.stamp = self.client.node.get_clock().now().to_msg()
        self._scans.publish(self._scan)
        command = self._twist_type()
        command.linear.x = self.speed
        self._commands.publish(command)

    def _on_output(self, message: Any) -> None:
        self.outputs.append((time.monotonic(), message.linear.x))

    def _on_refusal(self, message: Any) -> None:
        self.refusals.append(json.loads(message.data))

    def moving(self) -> bool:
        return bool(self.outputs) and self.outputs[-1][1] > 0.0

    def outputs_since(self, instant: float) -> list[float]:
        return [speed for stamp, speed in self.outputs if stamp >= instant]

    def refusal_rules(self) -> set[str]:
        return {reason["rule_id"] for refusal in self.refusals for reason in refusal["reasons"]}


@pytest.fixture
def hosted(ros_domain: int, board: BoardEmulator) -> Iterator[HostedSafetyNode]:
    node = HostedSafetyNode(ros_domain, estop_parameters(board))
    try:
        yield node
    finally:
        node.close()


def test_node_sigkill_opens_relay(board: BoardEmulator, ros_env: dict[str, str], tmp_path: Path) -> None:
    node = NodeProcess.safety_node(ros_env, tmp_path / "node.log", params=estop_parameters(board))
    try:
        # reset_on_startup closes the relay once the node's link is up.
        board.wait_for(lambda status: not status.relay_open, 30.0)
        killed_at = time.monotonic()
        node.kill()
        opening = board.wait_relay_open(killed_at, TIMEOUT)
    finally:
        node.kill()
        node.stop()
    assert opening.cause is StopCause.WATCHDOG
    # The watchdog period plus a generous allowance for a shared 2-core machine; the
    # benchmark measures the real figure.
    assert opening.time - killed_at < WATCHDOG_S + 0.5


def test_node_button_zeroes_output(
    hosted: HostedSafetyNode, board: BoardEmulator, ros_client: RosClient
) -> None:
    traffic = Traffic(ros_client)
    ros_client.spin_until(traffic.moving, TIMEOUT)
    pressed_at = board.press_button()
    ros_client.spin_until(lambda: 0.0 in traffic.outputs_since(pressed_at), TIMEOUT)
    first_zero = next(stamp for stamp, speed in traffic.outputs if stamp >= pressed_at and speed == 0.0)
    ros_client.spin_for(0.5)
    assert [speed for speed in traffic.outputs_since(first_zero) if speed != 0.0] == []
    assert "estop.button" in traffic.refusal_rules()


def test_node_release_alone_stays_zero(
    hosted: HostedSafetyNode, board: BoardEmulator, ros_client: RosClient
) -> None:
    traffic = Traffic(ros_client)
    ros_client.spin_until(traffic.moving, TIMEOUT)
    board.press_button()
    ros_client.spin_until(lambda: "estop.button" in hosted.estop.active_rule_ids(), TIMEOUT)
    # Outputs published before the stop may still be in flight. cmd_vel_out is reliable and
    # in order, so once a zero has arrived every earlier output has arrived too.
    ros_client.spin_until(lambda: traffic.outputs and traffic.outputs[-1][1] == 0.0, TIMEOUT)
    released_at = board.release_button()
    ros_client.spin_for(0.6)
    assert set(traffic.outputs_since(released_at)) == {0.0}
    assert board.status().relay_open


def test_node_reset_then_fresh_command_moves(
    hosted: HostedSafetyNode, board: BoardEmulator, ros_client: RosClient
) -> None:
    traffic = Traffic(ros_client)
    ros_client.spin_until(traffic.moving, TIMEOUT)
    board.press_button()
    ros_client.spin_until(lambda: "estop.button" in hosted.estop.active_rule_ids(), TIMEOUT)
    board.release_button()
    ros_client.spin_until(lambda: not hosted.estop.link.snapshot().status.button_pressed, TIMEOUT)
    hosted.estop.reset("operator-1")
    ros_client.spin_until(lambda: not hosted.estop.active_rule_ids(), TIMEOUT)
    reset_at = time.monotonic()
    # Commands keep arriving after the reset, so a fresh one releases the output.
    ros_client.spin_until(lambda: any(speed > 0.0 for speed in traffic.outputs_since(reset_at)), TIMEOUT)
    assert not board.status().relay_open
    assert hosted.estop.state()["last_reset"]["operator_id"] == "operator-1"


def test_node_pty_closed_faults_then_reconnects(
    hosted: HostedSafetyNode, board: BoardEmulator, ros_client: RosClient
) -> None:
    traffic = Traffic(ros_client)
    ros_client.spin_until(traffic.moving, TIMEOUT)
    closed_at = time.monotonic()
    board.close_port()
    ros_client.spin_until(lambda: "estop.link_lost" in traffic.refusal_rules(), TIMEOUT)
    lost = next(
        reason
        for refusal in traffic.refusals
        for reason in refusal["reasons"]
        if reason["rule_id"] == "estop.link_lost"
    )
    assert lost["verdict"] == "fault"
    assert board.port in lost["message"]
    ros_client.spin_until(lambda: 0.0 in traffic.outputs_since(closed_at), TIMEOUT)

    board.open_port()
    ros_client.spin_until(lambda: hosted.estop.link.snapshot().up, TIMEOUT)
    reconnected_at = time.monotonic()
    ros_client.spin_for(0.6)
    assert set(traffic.outputs_since(reconnected_at)) == {0.0}
    assert "estop.link_lost" in hosted.estop.active_rule_ids()
