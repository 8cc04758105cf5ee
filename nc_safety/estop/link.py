"""Host side of the e-stop serial link, with its own heartbeat thread.

The thread opens the port with pyserial, sends HELLO, then sends a HEARTBEAT at a fixed
rate and reads STATUS frames. Because the thread does not depend on the ROS executor, a
busy executor cannot starve the board's watchdog. A stalled executor is still caught: when
`executor_timeout_s` is set and `feed_executor()` is not called within it, the link trips
the board. The check starts with the first `feed_executor()` call, so a slow start-up of
the node before its executor spins is not taken for a stall.

The link is lost when no valid STATUS arrives within `status_timeout_s` or the port
raises an error or disappears. The thread then closes the port and keeps trying to reopen
it, doubling the wait from `reconnect_min_s` up to `reconnect_max_s`. The link never
releases a stop itself: that takes `request_reset()`, which only an authenticated caller
may reach.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import select
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import Enum

import serial  # type: ignore[import-untyped]

from nc_safety.estop.errors import EstopError
from nc_safety.estop.protocol import (
    SEQ_MODULO,
    DecoderStats,
    FrameDecoder,
    Heartbeat,
    Hello,
    HostState,
    Message,
    ResetRequest,
    Status,
    Trip,
    TripReason,
    decode_message,
    encode,
)

_LOG = logging.getLogger(__name__)
READ_SIZE = 4096


class LinkState(str, Enum):
    CONNECTING = "connecting"
    """The port is not open yet, or it is open and no STATUS has arrived yet."""
    UP = "up"
    """A valid STATUS arrived within the status timeout."""
    LOST = "lost"
    """The link was up or being opened and failed; the thread is trying to reconnect."""
    CLOSED = "closed"
    """close() was called; the thread has ended."""


@dataclass(frozen=True, slots=True)
class LinkConfig:
    """Settings of the host link; the constructor raises EstopError listing every bad value."""

    port: str
    """Serial device file, for example /dev/ttyACM0 or /dev/serial/by-id/..."""
    baudrate: int = 115200
    heartbeat_rate_hz: float = 50.0
    status_timeout_s: float = 0.25
    """Maximum wait for a valid STATUS before the link counts as lost, in seconds."""
    write_timeout_s: float = 0.05
    """Maximum time a write may block before the link counts as lost, in seconds."""
    reconnect_min_s: float = 0.1
    reconnect_max_s: float = 2.0
    executor_timeout_s: float = 0.0
    """Trip the board when `feed_executor()` is not called for this long, in seconds; 0 disables."""

    def __post_init__(self) -> None:
        problems: list[str] = []
        if not self.port:
            problems.append("port is empty; set it to the board's device file, for example /dev/ttyACM0")
        if not 50 <= self.baudrate <= 4_000_000:
            problems.append(f"baudrate {self.baudrate} is outside 50..4000000")
        _check_range(problems, "heartbeat_rate_hz", self.heartbeat_rate_hz, (1.0, 1000.0), "Hz")
        _check_range(problems, "status_timeout_s", self.status_timeout_s, (0.005, 60.0), "s")
        _check_range(problems, "write_timeout_s", self.write_timeout_s, (0.001, 10.0), "s")
        _check_range(problems, "reconnect_min_s", self.reconnect_min_s, (0.001, 60.0), "s")
        _check_range(problems, "reconnect_max_s", self.reconnect_max_s, (0.001, 600.0), "s")
        _check_range(problems, "executor_timeout_s", self.executor_timeout_s, (0.0, 600.0), "s")
        if self.reconnect_max_s < self.reconnect_min_s:
            problems.append(
                f"reconnect_max_s {self.reconnect_max_s} s is below reconnect_min_s {self.reconnect_min_s} s"
            )
        if math.isfinite(self.heartbeat_rate_hz) and self.heartbeat_rate_hz > 0:
            period = 1.0 / self.heartbeat_rate_hz
            if 0 < self.executor_timeout_s < period:
                problems.append(
                    f"executor_timeout_s {self.executor_timeout_s} s is shorter than the heartbeat period "
                    f"{period:.3f} s; raise it or set 0 to disable"
                )
        if problems:
            raise EstopError("invalid e-stop link configuration: " + "; ".join(problems))

    @property
    def heartbeat_period_s(self) -> float:
        return 1.0 / self.heartbeat_rate_hz


def _check_range(
    problems: list[str], name: str, value: float, bounds: tuple[float, float], unit: str
) -> None:
    low, high = bounds
    if not (math.isfinite(value) and low <= value <= high):
        problems.append(f"{name} {value!r} {unit} is outside {low:g}..{high:g} {unit}")


@dataclass(frozen=True, slots=True)
class LinkSnapshot:
    """The link and the last board status at one instant."""

    state: LinkState
    status: Status | None
    """Last STATUS received; kept after the link is lost, so check `state` first."""
    status_age_s: float | None
    lost_reason: str
    """Why the link went down most recently; empty while it has never failed."""
    ever_up: bool
    """Whether any STATUS has arrived since the link was created."""
    trip_reason: TripReason | None
    """Reason the host tripped the board and sends stop heartbeats, or None while it sends run."""
    heartbeats_sent: int = 0
    statuses_received: int = 0
    status_gaps: int = 0
    """STATUS frames missed, judged by gaps in the board's sequence numbers."""
    bad_payloads: int = 0
    """Frames with a valid CRC whose type or payload was invalid."""
    connects: int = 0
    """Times the port was opened."""
    failed_attempts: int = 0
    """Connections that failed or ended, including failed reopen attempts."""
    lost_count: int = 0
    """Times the link went from connecting or up to lost."""
    decoder: DecoderStats = field(default_factory=DecoderStats)

    @property
    def up(self) -> bool:
        return self.state is LinkState.UP

    @property
    def board_stopped(self) -> bool:
        """Whether motion must stop because of the board: it reports a stop or cannot be trusted."""
        return not self.up or self.status is None or self.status.stopped


class _LinkDown(Exception):
    """Ends one connection; the message is the reason recorded as `lost_reason`."""


class EstopLink:
    """Owns the serial port and the heartbeat thread. Every public method is thread-safe."""

    def __init__(
        self,
        config: LinkConfig,
        on_change: Callable[[LinkSnapshot], None] | None = None,
        serial_factory: Callable[..., serial.Serial] = serial.Serial,
    ) -> None:
        self.config = config
        self._on_change = on_change
        self._serial_factory = serial_factory
        self._lock = threading.RLock()
        """Guards the port, the counters and every write, so frames never interleave."""
        self._port: serial.Serial | None = None
        self._decoder = FrameDecoder()
        self._seq = 0
        self._state = LinkState.CONNECTING
        self._status: Status | None = None
        self._status_time: float | None = None
        self._status_seq: int | None = None
        self._lost_reason = ""
        self._ever_up = False
        self._trip_reason: TripReason | None = None
        self._executor_fed: float | None = None
        """Last proof that the executor runs; None until the first feed arms the check."""
        self._heartbeats_sent = 0
        self._statuses_received = 0
        self._status_gaps = 0
        self._bad_payloads = 0
        self._connects = 0
        self._lost_count = 0
        self._failed_attempts = 0
        self._session_status = False
        """Whether a STATUS arrived since the port was last opened."""
        self._opened_at = time.monotonic()
        self._last_emitted: tuple[object, ...] | None = None
        self._emit_lock = threading.RLock()
        """Serialises on_change calls, so observers see snapshots in order. Reentrant, because
        an observer may call request_reset(), which reports the change at once."""
        self._stopping = threading.Event()
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_write, False)
        self._thread = threading.Thread(target=self._run, name="estop-link", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self, trip: TripReason | None = TripReason.SHUTDOWN) -> None:
        """Stop the thread and close the port, tripping the board first unless `trip` is None.

        Safe to call more than once.
        """
        if trip is not None:
            self.trip(trip)
        self._stopping.set()
        self._wake()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=2.0 + self.config.write_timeout_s * 4)
        with self._lock:
            self._close_port()
            self._state = LinkState.CLOSED
        for fd in (self._wake_read, self._wake_write):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._wake_read = self._wake_write = -1

    def snapshot(self) -> LinkSnapshot:
        with self._lock:
            age = None if self._status_time is None else time.monotonic() - self._status_time
            return LinkSnapshot(
                state=self._state,
                status=self._status,
                status_age_s=age,
                lost_reason=self._lost_reason,
                ever_up=self._ever_up,
                trip_reason=self._trip_reason,
                heartbeats_sent=self._heartbeats_sent,
                statuses_received=self._statuses_received,
                status_gaps=self._status_gaps,
                bad_payloads=self._bad_payloads,
                connects=self._connects,
                failed_attempts=self._failed_attempts,
                lost_count=self._lost_count,
                decoder=self._decoder.stats,
            )

    def trip(self, reason: TripReason) -> bool:
        """Open the board's relay: send TRIP now and send stop heartbeats until a reset.

        Callable from any thread and from a signal handler. Returns whether the TRIP frame
        was written. When it was not (port closed, write failed), the stop heartbeats or the
        board's watchdog open the relay instead.
        """
        with self._lock:
            if self._trip_reason is None:
                self._trip_reason = reason
            written = self._write(Trip(int(reason))) and self._write(Heartbeat(HostState.STOP))
        self._wake()
        return written

    def request_reset(self) -> None:
        """Ask the board to release its latch; heartbeats switch back to run first.

        Only an authenticated operator request may lead here. The board closes the relay
        only when its button is up and no fault is present, so a reset never overrides the
        button. Raises EstopError when the link is not up, because the request cannot reach
        the board.
        """
        with self._lock:
            if self._state is not LinkState.UP:
                raise EstopError(
                    f"cannot send a reset: the e-stop link on {self.config.port} is {self._state.value}"
                    f"{' (' + self._lost_reason + ')' if self._lost_reason else ''}; restore the link first"
                )
            self._trip_reason = None
            if self._executor_fed is not None:
                self._executor_fed = time.monotonic()
            if not (self._write(Heartbeat(HostState.RUN)) and self._write(ResetRequest())):
                raise EstopError(f"writing the reset request to {self.config.port} failed; retry")
        self._emit()

    def feed_executor(self) -> None:
        """Record that the ROS executor is alive (call it from an executor timer)."""
        self._executor_fed = time.monotonic()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._wake_write, b"\0")

    def _run(self) -> None:
        delay = self.config.reconnect_min_s
        while not self._stopping.is_set():
            try:
                self._open()
                self._serve()
            except _LinkDown as down:
                self._mark_lost(str(down), delay)
            if self._stopping.is_set():
                break
            if self._session_status:
                delay = self.config.reconnect_min_s
            self._stopping.wait(delay)
            delay = min(delay * 2.0, self.config.reconnect_max_s)
        with self._lock:
            self._close_port()
            self._state = LinkState.CLOSED
        self._emit()

    def _mark_lost(self, reason: str, retry_in: float) -> None:
        with self._lock:
            self._close_port()
            if self._stopping.is_set():
                return
            was = self._state
            self._state = LinkState.LOST
            self._lost_reason = reason
            self._failed_attempts += 1
            if was is not LinkState.LOST:
                self._lost_count += 1
        if was is not LinkState.LOST:
            _LOG.warning(
                "e-stop link on %s lost: %s; reconnecting, first retry in %.2f s",
                self.config.port,
                reason,
                retry_in,
            )
        else:
            # Repeated failures while reconnecting are counted in the snapshot, not logged each time.
            _LOG.debug("e-stop link on %s still down: %s", self.config.port, reason)
        self._emit()

    def _open(self) -> None:
        with self._lock:
            self._session_status = False
            try:
                port = self._serial_factory(
                    port=self.config.port,
                    baudrate=self.config.baudrate,
                    timeout=0,
                    write_timeout=self.config.write_timeout_s,
                    exclusive=True,
                )
            except (serial.SerialException, OSError, ValueError) as error:
                raise _LinkDown(f"cannot open {self.config.port}: {error}") from error
            self._port = port
            self._decoder.reset()
            self._status_seq = None
            self._connects += 1
            self._opened_at = time.monotonic()
            with contextlib.suppress(serial.SerialException, OSError):
                port.reset_input_buffer()
            if not self._write(Hello()):
                raise _LinkDown(f"writing HELLO to {self.config.port} failed")
            if self._state is not LinkState.LOST:
                self._state = LinkState.CONNECTING
        _LOG.info("e-stop link opened %s at %d baud", self.config.port, self.config.baudrate)

    def _serve(self) -> None:
        period = self.config.heartbeat_period_s
        next_heartbeat = time.monotonic()
        while not self._stopping.is_set():
            now = time.monotonic()
            if now >= next_heartbeat:
                self._send_heartbeat(now)
                next_heartbeat = next_heartbeat + period if now - next_heartbeat < period else now + period
            with self._lock:
                last = self._status_time if self._session_status and self._status_time else self._opened_at
                port = self._port
            if port is None:
                raise _LinkDown(f"{self.config.port} was closed")
            if now - last > self.config.status_timeout_s:
                raise _LinkDown(f"no valid STATUS within {self.config.status_timeout_s:g} s")
            wait = max(0.0, min(next_heartbeat, last + self.config.status_timeout_s + 0.001) - now)
            try:
                readable, _, _ = select.select([port.fileno(), self._wake_read], [], [], wait)
            except (OSError, ValueError, serial.SerialException) as error:
                raise _LinkDown(f"waiting on {self.config.port} failed: {error}") from error
            if self._wake_read in readable:
                with contextlib.suppress(OSError):
                    os.read(self._wake_read, READ_SIZE)
            if port.fileno() in readable:
                self._receive(port)

    def _send_heartbeat(self, now: float) -> None:
        with self._lock:
            timeout = self.config.executor_timeout_s
            fed = self._executor_fed
            if timeout > 0 and self._trip_reason is None and fed is not None and now - fed > timeout:
                _LOG.error(
                    "ROS executor silent for %.2f s (limit %.2f s); tripping the e-stop board",
                    now - fed,
                    timeout,
                )
                self._trip_reason = TripReason.EXECUTOR_STALLED
                self._write(Trip(int(TripReason.EXECUTOR_STALLED)))
            state = HostState.RUN if self._trip_reason is None else HostState.STOP
            if not self._write(Heartbeat(state)):
                raise _LinkDown(f"writing a heartbeat to {self.config.port} failed")
            self._heartbeats_sent += 1

    def _receive(self, port: serial.Serial) -> None:
        try:
            data = port.read(max(port.in_waiting, 1))
        except (serial.SerialException, OSError) as error:
            raise _LinkDown(f"reading {self.config.port} failed: {error}") from error
        frames = self._decoder.feed(data)
        changed = False
        for frame in frames:
            try:
                message = decode_message(frame)
            except EstopError as error:
                with self._lock:
                    self._bad_payloads += 1
                _LOG.debug("e-stop link dropped a frame: %s", error)
                continue
            if isinstance(message, Status):
                changed = self._on_status(message, frame.seq) or changed
            else:
                with self._lock:
                    self._bad_payloads += 1
        if changed:
            self._emit()

    def _on_status(self, status: Status, seq: int) -> bool:
        with self._lock:
            if self._status_seq is not None:
                self._status_gaps += (seq - self._status_seq - 1) % SEQ_MODULO
            self._status_seq = seq
            self._statuses_received += 1
            self._status_time = time.monotonic()
            self._session_status = True
            first = self._state is not LinkState.UP
            self._state = LinkState.UP
            self._ever_up = True
            self._status = status
        if first:
            _LOG.info(
                "e-stop link up on %s: firmware %d.%d, watchdog %d ms",
                self.config.port,
                status.firmware_major,
                status.firmware_minor,
                status.watchdog_ms,
            )
        return True

    def _write(self, message: Message) -> bool:
        """Write one frame; return False when the port is closed or the write failed."""
        with self._lock:
            port = self._port
            if port is None:
                return False
            frame = encode(message, self._seq)
            self._seq = (self._seq + 1) % SEQ_MODULO
            try:
                port.write(frame)
            except (serial.SerialException, OSError) as error:
                _LOG.debug("e-stop link write failed on %s: %s", self.config.port, error)
                return False
            return True

    def _close_port(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            with contextlib.suppress(serial.SerialException, OSError):
                port.close()

    def _emit(self) -> None:
        """Call on_change when the state, the stop flags or the trip changed."""
        if self._on_change is None:
            return
        with self._emit_lock:
            snapshot = self.snapshot()
            status = snapshot.status
            counters_cleared = (
                None
                if status is None
                else replace(status, watchdog_expirations=0, bad_frames=0, heartbeat_seq=0)
            )
            key = (snapshot.state, snapshot.trip_reason, counters_cleared)
            if key == self._last_emitted:
                return
            self._last_emitted = key
            try:
                self._on_change(snapshot)
            except Exception:
                # A failing observer must not end the heartbeat thread: the board would trip,
                # which is safe but hides the observer's bug behind a watchdog stop.
                _LOG.exception("e-stop link state observer raised; the link keeps running")
