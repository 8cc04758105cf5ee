"""Board rules, driven with chosen instants instead of a clock."""

from __future__ import annotations

import pytest

from nc_safety.estop.board import MAX_TRANSITIONS, Board, BoardConfig
from nc_safety.estop.errors import EstopError
from nc_safety.estop.protocol import Heartbeat, Hello, HostState, ResetRequest, StopCause, Trip

WATCHDOG = 0.1


class Driver:
    """Feeds a board heartbeats with increasing sequence numbers."""

    def __init__(self) -> None:
        self.board = Board(BoardConfig(watchdog_s=WATCHDOG), now=0.0)
        self.seq = 0

    def heartbeat(self, now: float, state: HostState = HostState.RUN) -> None:
        self.seq += 1
        self.board.handle(Heartbeat(state), self.seq, now)

    def reset(self, now: float) -> None:
        self.seq += 1
        self.board.handle(ResetRequest(), self.seq, now)

    def run_closed(self) -> float:
        """Bring the relay to closed; return the current instant."""
        self.heartbeat(0.01)
        self.reset(0.02)
        return 0.02


def test_board_starts_latched() -> None:
    board = Board(BoardConfig(), now=0.0)
    assert board.relay_open
    assert board.latched
    assert board.cause is StopCause.POWER_ON


def test_heartbeats_alone_do_not_close() -> None:
    driver = Driver()
    for step in range(10):
        driver.heartbeat(0.01 * step)
    assert driver.board.relay_open


def test_reset_with_run_heartbeats_closes() -> None:
    driver = Driver()
    driver.run_closed()
    assert not driver.board.relay_open
    assert not driver.board.latched


def test_reset_before_heartbeats_closes_on_first_run_heartbeat() -> None:
    driver = Driver()
    driver.reset(0.0)
    assert driver.board.relay_open
    driver.heartbeat(0.01)
    assert not driver.board.relay_open


def test_watchdog_opens_relay() -> None:
    driver = Driver()
    driver.run_closed()
    # The last heartbeat arrived at 0.01 s.
    driver.board.tick(0.01 + WATCHDOG - 0.001)
    assert not driver.board.relay_open
    driver.board.tick(0.01 + WATCHDOG + 0.001)
    assert driver.board.relay_open
    assert driver.board.cause is StopCause.WATCHDOG
    assert driver.board.watchdog_expirations == 1


def test_watchdog_transition_time_recorded() -> None:
    driver = Driver()
    driver.run_closed()
    driver.board.tick(0.2)
    last = driver.board.transitions[-1]
    assert last.relay_open
    assert last.time == 0.2


def test_late_heartbeat_opens_before_feeding() -> None:
    driver = Driver()
    driver.run_closed()
    driver.heartbeat(0.5)
    assert driver.board.relay_open
    assert driver.board.cause is StopCause.WATCHDOG


def test_duplicate_sequence_does_not_feed_watchdog() -> None:
    driver = Driver()
    driver.run_closed()
    driver.heartbeat(0.03)
    for step in range(1, 20):
        driver.board.handle(Heartbeat(HostState.RUN), driver.seq, 0.03 + 0.01 * step)
    assert driver.board.relay_open
    assert driver.board.duplicate_heartbeats == 19


def test_trip_opens_and_records_reason() -> None:
    driver = Driver()
    driver.run_closed()
    driver.board.handle(Trip(4), 99, 0.03)
    assert driver.board.relay_open
    assert driver.board.cause is StopCause.TRIP
    assert driver.board.status().trip_reason == 4


def test_stop_heartbeat_opens() -> None:
    driver = Driver()
    driver.run_closed()
    driver.heartbeat(0.03, HostState.STOP)
    assert driver.board.relay_open
    assert driver.board.cause is StopCause.HOST_STOP


def test_release_alone_keeps_relay_open() -> None:
    driver = Driver()
    driver.run_closed()
    driver.board.press_button(0.03)
    driver.heartbeat(0.04)
    driver.board.release_button(0.05)
    driver.heartbeat(0.06)
    assert driver.board.relay_open
    assert driver.board.latched


def test_reset_while_pressed_rejected() -> None:
    driver = Driver()
    driver.run_closed()
    driver.board.press_button(0.03)
    driver.reset(0.04)
    driver.heartbeat(0.05)
    assert driver.board.relay_open
    assert driver.board.rejected_resets == 1


def test_reset_after_release_closes() -> None:
    driver = Driver()
    driver.run_closed()
    driver.board.press_button(0.03)
    driver.board.release_button(0.04)
    driver.heartbeat(0.05)
    driver.reset(0.06)
    assert not driver.board.relay_open


def test_reset_with_stop_heartbeats_stays_open() -> None:
    driver = Driver()
    driver.heartbeat(0.01, HostState.STOP)
    driver.reset(0.02)
    assert driver.board.relay_open


def test_fault_blocks_reset() -> None:
    driver = Driver()
    driver.run_closed()
    driver.board.set_fault(True, 0.03)
    driver.heartbeat(0.04)
    driver.reset(0.05)
    assert driver.board.relay_open
    assert driver.board.status().board_fault


def test_hello_changes_nothing() -> None:
    driver = Driver()
    driver.run_closed()
    driver.board.handle(Hello(), 50, 0.03)
    assert not driver.board.relay_open


def test_transitions_bounded() -> None:
    driver = Driver()
    now = 0.0
    for _ in range(MAX_TRANSITIONS):
        now += 0.01
        driver.heartbeat(now)
        driver.reset(now)
        driver.heartbeat(now, HostState.STOP)
    assert len(driver.board.transitions) == MAX_TRANSITIONS


def test_config_rejects_bad_watchdog() -> None:
    with pytest.raises(EstopError, match=r"watchdog period 0\.0 s is outside 0\.005\.\.60 s"):
        BoardConfig(watchdog_s=0.0)


def test_config_rejects_nan_status_period() -> None:
    with pytest.raises(EstopError, match="STATUS period nan s is outside"):
        BoardConfig(status_period_s=float("nan"))
