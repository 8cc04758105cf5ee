"""The e-stop board's rules as a state machine driven by the caller's clock.

The relay opens when no valid heartbeat arrives within the watchdog period, on TRIP, on a
heartbeat with state stop, on the button and on a board fault. Once open it is latched. It
closes again only when the button is up, no fault is present, a RESET_REQUEST released the
latch, and the most recent heartbeat is fresh and has state run.

The class does no I/O and never reads a clock: every method takes `now` in seconds, so the
emulator drives it with `time.monotonic()` and tests drive it with chosen instants.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from nc_safety.estop.errors import EstopError
from nc_safety.estop.protocol import (
    SEQ_MODULO,
    Heartbeat,
    Hello,
    HostState,
    Message,
    ResetRequest,
    Status,
    StopCause,
    Trip,
)

MAX_TRANSITIONS = 4096
"""Relay transitions kept for inspection; older ones are dropped so a long run stays bounded."""


@dataclass(frozen=True, slots=True)
class BoardConfig:
    """Fixed settings of one board."""

    watchdog_s: float = 0.1
    """Longest gap between valid heartbeats before the relay opens, in seconds."""
    status_period_s: float = 0.02
    """Interval between STATUS frames, in seconds (used by the emulator and the firmware)."""
    firmware_major: int = 1
    firmware_minor: int = 0

    def __post_init__(self) -> None:
        problems = []
        if not (math.isfinite(self.watchdog_s) and 0.005 <= self.watchdog_s <= 60.0):
            problems.append(f"watchdog period {self.watchdog_s!r} s is outside 0.005..60 s")
        if not (math.isfinite(self.status_period_s) and 0.001 <= self.status_period_s <= 10.0):
            problems.append(f"STATUS period {self.status_period_s!r} s is outside 0.001..10 s")
        for name, value in (("firmware_major", self.firmware_major), ("firmware_minor", self.firmware_minor)):
            if not 0 <= value <= 0xFF:
                problems.append(f"{name} {value} is outside 0..255")
        if problems:
            raise EstopError("invalid board configuration: " + "; ".join(problems))


@dataclass(frozen=True, slots=True)
class RelayTransition:
    """The relay opened or closed at `time` (seconds on the caller's clock)."""

    time: float
    relay_open: bool
    cause: StopCause
    """Why it opened, or StopCause.NONE when it closed."""


class Board:
    """The board rules. Not thread-safe: the owner serialises calls."""

    def __init__(self, config: BoardConfig, now: float) -> None:
        self.config = config
        self.relay_open = True
        self.latched = True
        self.cause = StopCause.POWER_ON
        self.button_pressed = False
        self.board_fault = False
        self.trip_reason = 0
        self.watchdog_expirations = 0
        self.bad_frames = 0
        self.rejected_resets = 0
        self.duplicate_heartbeats = 0
        self.last_heartbeat_seq: int | None = None
        self.last_heartbeat_state = HostState.STOP
        self._last_heartbeat_time: float | None = None
        self._heartbeat_fresh = False
        self.transitions: deque[RelayTransition] = deque(maxlen=MAX_TRANSITIONS)
        self.transitions.append(RelayTransition(now, True, StopCause.POWER_ON))

    def handle(self, message: Message, seq: int, now: float) -> None:
        """Apply one message received in a valid frame with sequence number `seq`."""
        self.tick(now)
        if isinstance(message, Heartbeat):
            self._on_heartbeat(message.state, seq, now)
        elif isinstance(message, Trip):
            self.trip_reason = message.reason
            self._open(StopCause.TRIP, now)
        elif isinstance(message, ResetRequest):
            self._on_reset_request(now)
        elif isinstance(message, Hello):
            # The frame header already carried a version this board speaks; the owner
            # answers with a STATUS right away.
            pass
        else:
            # A board never acts on a STATUS; count it like any other invalid frame.
            self.bad_frames += 1

    def count_bad_frame(self) -> None:
        """Record a frame dropped for its CRC, version, length or payload."""
        self.bad_frames += 1

    def tick(self, now: float) -> None:
        """Open the relay if the watchdog period passed without a valid heartbeat."""
        deadline = self.watchdog_deadline()
        if deadline is not None and now > deadline:
            self._heartbeat_fresh = False
            self.watchdog_expirations += 1
            self._open(StopCause.WATCHDOG, now)

    def watchdog_deadline(self) -> float | None:
        """When the watchdog expires unless a heartbeat arrives, or None when it is not running."""
        if self._heartbeat_fresh and self._last_heartbeat_time is not None:
            return self._last_heartbeat_time + self.config.watchdog_s
        return None

    def press_button(self, now: float) -> None:
        self.tick(now)
        self.button_pressed = True
        self._open(StopCause.BUTTON, now)

    def release_button(self, now: float) -> None:
        """Release the button. The relay stays open: only a reset releases the latch."""
        self.tick(now)
        self.button_pressed = False

    def set_fault(self, fault: bool, now: float) -> None:
        """Raise or clear a board fault (for example a welded relay contact)."""
        self.tick(now)
        self.board_fault = fault
        if fault:
            self._open(StopCause.BOARD_FAULT, now)

    def status(self) -> Status:
        return Status(
            relay_open=self.relay_open,
            button_pressed=self.button_pressed,
            latched=self.latched,
            board_fault=self.board_fault,
            cause=self.cause,
            trip_reason=self.trip_reason,
            watchdog_expirations=self.watchdog_expirations % SEQ_MODULO,
            bad_frames=self.bad_frames % SEQ_MODULO,
            heartbeat_seq=self.last_heartbeat_seq or 0,
            firmware_major=self.config.firmware_major,
            firmware_minor=self.config.firmware_minor,
            watchdog_ms=round(self.config.watchdog_s * 1000.0),
        )

    def _on_heartbeat(self, state: HostState, seq: int, now: float) -> None:
        if seq == self.last_heartbeat_seq:
            # A repeated frame (a stuck transmitter, a replayed buffer) proves nothing about
            # the host being alive, so it does not feed the watchdog.
            self.duplicate_heartbeats += 1
            return
        self.last_heartbeat_seq = seq
        self.last_heartbeat_state = state
        self._last_heartbeat_time = now
        self._heartbeat_fresh = True
        if state is HostState.STOP:
            self._open(StopCause.HOST_STOP, now)
        else:
            self._close_if_allowed(now)

    def _on_reset_request(self, now: float) -> None:
        if self.button_pressed or self.board_fault:
            self.rejected_resets += 1
            return
        self.latched = False
        self._close_if_allowed(now)

    def _open(self, cause: StopCause, now: float) -> None:
        self.latched = True
        if not self.relay_open:
            self.relay_open = True
            self.cause = cause
            self.transitions.append(RelayTransition(now, True, cause))

    def _close_if_allowed(self, now: float) -> None:
        if not self.relay_open or self.latched or self.button_pressed or self.board_fault:
            return
        if not self._heartbeat_fresh or self.last_heartbeat_state is not HostState.RUN:
            return
        self.relay_open = False
        self.cause = StopCause.NONE
        self.trip_reason = 0
        self.transitions.append(RelayTransition(now, False, StopCause.NONE))
