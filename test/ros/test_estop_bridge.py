"""The `estop` node extension: parameters, trips from decisions, resets, state and diagnostics.

The safety node runs in the test process on the test's own ROS domain, with the board
emulator on a real pty.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ros_harness import HostedSafetyNode, wait_until

from nc_safety.core.errors import ConfigError
from nc_safety.core.justification import Reason, combine
from nc_safety.core.verdict import ReasonKind, Severity, Verdict
from nc_safety.estop.board import BoardConfig
from nc_safety.estop.emulator import BoardEmulator
from nc_safety.estop.errors import EstopError
from nc_safety.estop.protocol import StopCause, TripReason
from nc_safety.ros.estop_bridge import parse_parameters

TIMEOUT = 10.0
DEFAULTS: dict[str, Any] = {
    "port": "/dev/ttyACM0",
    "baudrate": 115200,
    "heartbeat_rate": 50.0,
    "status_timeout": 0.25,
    "write_timeout": 0.05,
    "reconnect_min": 0.1,
    "reconnect_max": 2.0,
    "executor_timeout": 1.0,
    "reset_timeout": 2.0,
    "trip_on_verdicts": [],
    "trip_on_rules": ["motion.non_finite"],
    "reset_on_startup": False,
}


@pytest.fixture
def board(tmp_path: Path) -> Iterator[BoardEmulator]:
    with BoardEmulator(BoardConfig(watchdog_s=0.1), link_path=tmp_path / "bridge-board") as emulator:
        yield emulator


@pytest.fixture
def hosted(ros_domain: int, board: BoardEmulator) -> Iterator[HostedSafetyNode]:
    node = HostedSafetyNode(
        ros_domain,
        {"estop.enabled": True, "estop.port": board.port, "estop.reset_on_startup": True},
    )
    try:
        wait_until(lambda: not board.status().relay_open, TIMEOUT)
        wait_until(lambda: not node.estop.active_rule_ids(), TIMEOUT)
        yield node
    finally:
        node.close()


def decision_with(rule_id: str, verdict: Verdict) -> Any:
    reason = Reason(rule_id, ReasonKind.SAFETY, verdict, Severity.HIGH, f"{rule_id} fired.")
    return combine(
        stamp=0.0, wall_time=0.0, command_kind="twist", command_id="1", requester="test", reasons=[reason]
    )


def test_parse_rejects_unknown_verdict() -> None:
    with pytest.raises(EstopError, match=r"estop\.trip_on_verdicts entry 'fatal' is not one of"):
        parse_parameters({**DEFAULTS, "trip_on_verdicts": ["fatal"]})


def test_parse_rejects_forwarding_verdict() -> None:
    with pytest.raises(EstopError, match=r"estop.trip_on_verdicts \['modify'\] would trip the board"):
        parse_parameters({**DEFAULTS, "trip_on_verdicts": ["modify"]})


def test_parse_rejects_estop_rule() -> None:
    with pytest.raises(EstopError, match=r"entry 'estop\.button' names an e-stop rule"):
        parse_parameters({**DEFAULTS, "trip_on_rules": ["estop.button"]})


def test_parse_lists_link_problems() -> None:
    with pytest.raises(EstopError, match=r"port is empty.*heartbeat_rate_hz 0\.0 Hz is outside"):
        parse_parameters({**DEFAULTS, "port": "", "heartbeat_rate": 0.0})


def test_node_refuses_missing_port(ros_domain: int) -> None:
    with pytest.raises(ConfigError, match=r"invalid estop parameters.*port is empty"):
        HostedSafetyNode(ros_domain, {"estop.enabled": True})


def test_parameters_have_bounds(hosted: HostedSafetyNode) -> None:
    descriptor = hosted.node.describe_parameter("estop.heartbeat_rate")
    assert descriptor.floating_point_range[0].to_value == 1000.0
    assert descriptor.read_only


def test_non_finite_decision_trips_board(hosted: HostedSafetyNode, board: BoardEmulator) -> None:
    hosted.estop.on_decision(decision_with("motion.non_finite", Verdict.FAULT))
    status = board.wait_for(lambda s: s.relay_open, TIMEOUT)
    assert status.cause is StopCause.TRIP
    assert status.trip_reason == TripReason.DECISION
    wait_until(lambda: "estop.board_latched" in hosted.estop.active_rule_ids(), TIMEOUT)
    hold = next(h for h in hosted.node.holds() if h.hold_id == "estop.board_latched")
    assert "motion.non_finite" in hold.reason.message


def test_estop_reason_never_trips(hosted: HostedSafetyNode, board: BoardEmulator) -> None:
    hosted.estop.on_decision(decision_with("estop.link_lost", Verdict.FAULT))
    hosted.estop.on_decision(decision_with("motion.limit.linear_x", Verdict.REFUSE))
    assert hosted.estop.link.snapshot().trip_reason is None
    assert not board.status().relay_open


def test_reset_refused_while_pressed(hosted: HostedSafetyNode, board: BoardEmulator) -> None:
    board.press_button()
    wait_until(lambda: "estop.button" in hosted.estop.active_rule_ids(), TIMEOUT)
    with pytest.raises(EstopError, match="the e-stop button is still pressed; release it first"):
        hosted.estop.reset("operator-1")


def test_reset_refused_without_operator(hosted: HostedSafetyNode) -> None:
    with pytest.raises(EstopError, match="the operator id is empty"):
        hosted.estop.reset(" ")


def test_state_reports_board(hosted: HostedSafetyNode) -> None:
    state = hosted.estop.state()
    assert state["link"] == "up"
    assert state["relay_open"] is False
    assert state["holds"] == []
    assert state["last_reset"]["operator_id"] == "startup"


def test_diagnostics_error_when_link_lost(hosted: HostedSafetyNode, board: BoardEmulator) -> None:
    board.close_port()
    wait_until(lambda: not hosted.estop.link.snapshot().up, TIMEOUT)
    status = hosted.estop.diagnostics()[0]
    assert status.level == status.ERROR
    assert status.message.startswith("link lost")


def test_shutdown_trips_board(ros_domain: int, board: BoardEmulator) -> None:
    node = HostedSafetyNode(
        ros_domain, {"estop.enabled": True, "estop.port": board.port, "estop.reset_on_startup": True}
    )
    try:
        wait_until(lambda: not board.status().relay_open, TIMEOUT)
    finally:
        node.close()
    status = board.wait_for(lambda s: s.relay_open, TIMEOUT)
    assert status.trip_reason == TripReason.SHUTDOWN
