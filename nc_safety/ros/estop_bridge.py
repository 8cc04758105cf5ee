"""Node extension that connects the safety node to the hardware e-stop board.

It declares the `estop.*` parameters, owns the serial link and its heartbeat thread, turns
board stops and link loss into holds, and trips the board on configured decisions, on
shutdown, on uncaught exceptions and on termination signals. Releasing a stop takes
`reset(operator_id)`, which only the override verifier calls after checking a signed
request. This module offers no reset service or topic of its own.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import ParameterUninitializedException
from rclpy.parameter import Parameter
from rclpy.signals import SignalHandlerOptions, get_current_signal_handlers_options

from nc_safety.core.errors import ConfigError
from nc_safety.core.holds import Hold
from nc_safety.core.justification import Decision, combine
from nc_safety.core.verdict import Verdict
from nc_safety.estop.errors import EstopError
from nc_safety.estop.link import EstopLink, LinkConfig, LinkSnapshot
from nc_safety.estop.protocol import TripReason
from nc_safety.estop.stops import RULE_IDS, LatchChange, StopLatch

if TYPE_CHECKING:
    from rclpy.node import Node

    from nc_safety.ros.extension import NodeServices

_LOG = logging.getLogger(__name__)
PREFIX = "estop."
FEED_PERIOD_S = 0.05
"""Interval of the executor timer that proves to the link that the executor runs, in seconds."""


@dataclass(frozen=True, slots=True)
class _Spec:
    name: str
    default: Any
    description: str
    bounds: tuple[float, float] | None = None


PARAMETERS = (
    _Spec("port", "", "serial device file of the e-stop board, for example /dev/ttyACM0 (required)"),
    _Spec("baudrate", 115200, "serial baud rate, in bit/s", (50, 4_000_000)),
    _Spec(
        "heartbeat_rate",
        50.0,
        "HEARTBEAT frames per second; keep the period below half the board watchdog, in Hz",
        (1.0, 1000.0),
    ),
    _Spec(
        "status_timeout",
        0.25,
        "link counts as lost when no valid STATUS arrives for this long, in s",
        (0.005, 60.0),
    ),
    _Spec(
        "write_timeout", 0.05, "link counts as lost when a write blocks for this long, in s", (0.001, 10.0)
    ),
    _Spec(
        "reconnect_min",
        0.1,
        "first wait before reopening a lost port, doubled per failure, in s",
        (0.001, 60.0),
    ),
    _Spec("reconnect_max", 2.0, "longest wait between attempts to reopen a lost port, in s", (0.001, 600.0)),
    _Spec(
        "executor_timeout",
        1.0,
        "trip the board when the ROS executor is silent this long, in s; 0 disables",
        (0.0, 600.0),
    ),
    _Spec(
        "reset_timeout",
        2.0,
        "a reset not confirmed by the board within this time is dropped, in s",
        (0.01, 60.0),
    ),
    _Spec(
        "trip_on_verdicts",
        [],
        "trip the board when a decision has a reason with one of these verdicts, for example [fault]; "
        "empty by default because stale sensor data at start-up is a fault",
    ),
    _Spec(
        "trip_on_rules",
        ["motion.non_finite", "node.internal_error"],
        "trip the board when a decision has a reason with one of these "
        "rule ids; an entry ending in '.*' matches a prefix",
    ),
    _Spec(
        "reset_on_startup",
        False,
        "send one reset when the link first comes up, if the button is up and the "
        "board has no fault; for benches and demos, not for machines that need a deliberate start",
    ),
)


class EstopBridge:
    """The `estop` node extension. Construct it from the executor thread after node start-up."""

    name = "estop"

    def __init__(self, services: NodeServices, *, install_process_hooks: bool = True) -> None:
        self._services = services
        node = services.ros_node
        values = declare_parameters(node)
        try:
            self.link_config, self.trip_verdicts, self.trip_rules = parse_parameters(values)
        except EstopError as error:
            # ConfigError is what the node reports as a configuration problem at start-up.
            raise ConfigError([str(error)], source="estop parameters") from error
        self.reset_on_startup = bool(values["reset_on_startup"])
        self._latch = StopLatch(self.link_config.port, float(values["reset_timeout"]))
        self._lock = threading.Lock()
        """Serialises latch updates coming from the link thread and from reset()."""
        self._last_reset: dict[str, Any] | None = None
        self._startup_reset_done = False
        self._shut_down = False
        for reason in self._latch.active.values():
            services.set_hold(Hold(reason.rule_id, reason, services.now_s()))

        self._link = EstopLink(self.link_config, on_change=self._on_link_change)
        self._timer = None
        if self.link_config.executor_timeout_s > 0:
            self._timer = node.create_timer(FEED_PERIOD_S, self._link.feed_executor)
        self._log_handler = _RosLogHandler(node)
        for name in _FORWARDED_LOGGERS:
            logging.getLogger(name).addHandler(self._log_handler)
            logging.getLogger(name).setLevel(logging.INFO)
        self._hooks = _ProcessHooks(self._trip_from_process) if install_process_hooks else None
        self._link.start()
        _LOG.info(
            "e-stop bridge on %s: %d baud, heartbeat %.1f Hz, STATUS timeout %.3f s, executor timeout %.2f s, "
            "trip on verdicts %s and rules %s",
            self.link_config.port,
            self.link_config.baudrate,
            self.link_config.heartbeat_rate_hz,
            self.link_config.status_timeout_s,
            self.link_config.executor_timeout_s,
            sorted(self.trip_verdicts),
            sorted(self.trip_rules),
        )

    def reset(self, operator_id: str) -> None:
        """Request the release of every e-stop hold on behalf of a verified operator.

        Call only after the operator's signed request has been verified. The holds clear
        when the board confirms relay closed and latch released; outputs then stay zero
        until a zero or fresh command arrives. Raises EstopError when the reset cannot
        work now (link down, button pressed, board fault, empty operator id).
        """
        with self._lock:
            pending = self._latch.begin_reset(operator_id, self._link.snapshot(), self._services.now_s())
        # Outside the lock: request_reset() reports the new link state to _on_link_change,
        # which takes the lock itself.
        try:
            self._link.request_reset()
        except EstopError:
            with self._lock:
                self._latch.pending = None
            raise
        _LOG.info("e-stop reset requested by operator %s", operator_id)
        self._services.audit(
            "estop.reset_requested",
            {"operator_id": pending.operator_id, "requested_at": pending.requested_at},
        )

    def on_decision(self, decision: Decision) -> None:
        cause = self._trip_condition(decision)
        if cause is None or self._link.snapshot().trip_reason is not None:
            return
        with self._lock:
            self._latch.trip_cause = cause
        _LOG.error("tripping the e-stop board: decision %s has %s", decision.decision_id, cause)
        self._link.trip(TripReason.DECISION)
        self._services.audit("estop.trip", {"decision_id": decision.decision_id, "cause": cause})

    def diagnostics(self) -> list[DiagnosticStatus]:
        snapshot = self._link.snapshot()
        status = snapshot.status
        holds = self.active_rule_ids()
        if not snapshot.up:
            level, message = (
                DiagnosticStatus.ERROR,
                f"link {snapshot.state.value}: {snapshot.lost_reason or '-'}",
            )
        elif holds:
            level, message = DiagnosticStatus.WARN, "motion stopped by " + ", ".join(holds)
        else:
            level, message = DiagnosticStatus.OK, "link up, relay closed"
        values = {key: _text(value) for key, value in self._flat_state(snapshot).items()}
        return [
            DiagnosticStatus(
                level=level,
                name="nc_safety: e-stop link",
                message=message,
                hardware_id=self.link_config.port
                if status is None
                else f"{self.link_config.port} firmware {status.firmware_major}.{status.firmware_minor}",
                values=[KeyValue(key=key, value=value) for key, value in values.items()],
            )
        ]

    def state(self) -> dict[str, Any]:
        snapshot = self._link.snapshot()
        state = self._flat_state(snapshot)
        state["holds"] = list(self.active_rule_ids())
        with self._lock:
            pending = self._latch.pending
            state["reset_pending"] = None if pending is None else pending.operator_id
            state["last_reset"] = self._last_reset
        return state

    def shutdown(self) -> None:
        """Trip the board, stop the link thread and remove the process hooks. Idempotent."""
        if self._shut_down:
            return
        self._shut_down = True
        if self._timer is not None:
            with contextlib.suppress(Exception):
                self._services.ros_node.destroy_timer(self._timer)
        self._link.close(trip=TripReason.SHUTDOWN)
        if self._hooks is not None:
            self._hooks.uninstall()
        _LOG.info("e-stop bridge stopped; board tripped for shutdown")
        for name in _FORWARDED_LOGGERS:
            logging.getLogger(name).removeHandler(self._log_handler)

    def active_rule_ids(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(rule for rule in RULE_IDS if rule in self._latch.active)

    @property
    def link(self) -> EstopLink:
        return self._link

    def _trip_condition(self, decision: Decision) -> str | None:
        for reason in decision.reasons:
            if reason.rule_id.startswith(PREFIX):
                # Reasons of the e-stop's own rules must not trip the board again, because
                # a reset could never complete while they are still reported.
                continue
            if reason.verdict.value in self.trip_verdicts:
                return f"{reason.rule_id} ({reason.verdict.value})"
            if _rule_matches(reason.rule_id, self.trip_rules):
                return reason.rule_id
        return None

    def _trip_from_process(self, reason: TripReason) -> None:
        self._link.trip(reason)

    def _on_link_change(self, snapshot: LinkSnapshot) -> None:
        if self._shut_down:
            # Closing the link reports it down; that is the shutdown itself, not a fault.
            return
        now = self._services.now_s()
        with self._lock:
            change = self._latch.update(snapshot, now)
            startup_reset = self._startup_reset_wanted(snapshot)
        self._apply(change, now)
        if startup_reset:
            try:
                self.reset("startup")
            except EstopError as error:
                _LOG.warning("e-stop start-up reset failed: %s", error)

    def _startup_reset_wanted(self, snapshot: LinkSnapshot) -> bool:
        if (
            not self.reset_on_startup
            or self._startup_reset_done
            or not snapshot.up
            or snapshot.status is None
        ):
            return False
        self._startup_reset_done = True
        return not (snapshot.status.button_pressed or snapshot.status.board_fault)

    def _apply(self, change: LatchChange, now: float) -> None:
        for reason in change.set_reasons:
            self._services.set_hold(Hold(reason.rule_id, reason, now))
            self._services.publish_decision(
                combine(
                    stamp=now,
                    wall_time=time.time(),
                    command_kind="estop",
                    command_id=reason.rule_id,
                    requester="estop",
                    reasons=[reason],
                    policy_hash=self._services.policy_hash,
                )
            )
            self._services.audit("estop.hold", {"rule_id": reason.rule_id, "message": reason.message})
        for rule_id in change.cleared:
            self._services.clear_hold(rule_id)
        if change.reset_completed is not None:
            operator = change.reset_completed.operator_id
            self._last_reset = {"operator_id": operator, "completed_at": now, "cleared": list(change.cleared)}
            _LOG.info(
                "e-stop reset by %s completed; cleared %s; motion resumes after a zero or fresh command",
                operator,
                ", ".join(change.cleared) or "nothing",
            )
            self._services.audit(
                "estop.reset_completed", {"operator_id": operator, "cleared": list(change.cleared)}
            )
        elif change.cleared:
            _LOG.info("e-stop link connected; cleared %s", ", ".join(change.cleared))
        if change.reset_expired is not None:
            _LOG.warning(
                "e-stop reset by %s was not confirmed by the board; the stop stays latched",
                change.reset_expired.operator_id,
            )

    def _flat_state(self, snapshot: LinkSnapshot) -> dict[str, Any]:
        status = snapshot.status
        state: dict[str, Any] = {
            "port": self.link_config.port,
            "link": snapshot.state.value,
            "lost_reason": snapshot.lost_reason,
            "host_trip": None if snapshot.trip_reason is None else snapshot.trip_reason.name.lower(),
            "status_age_s": None if snapshot.status_age_s is None else round(snapshot.status_age_s, 4),
            "heartbeats_sent": snapshot.heartbeats_sent,
            "statuses_received": snapshot.statuses_received,
            "status_gaps": snapshot.status_gaps,
            "bad_frames_received": snapshot.decoder.bad_frames + snapshot.bad_payloads,
            "garbage_bytes": snapshot.decoder.garbage_bytes,
            "connects": snapshot.connects,
            "lost_count": snapshot.lost_count,
        }
        if status is not None:
            state.update(
                relay_open=status.relay_open,
                button_pressed=status.button_pressed,
                latched=status.latched,
                board_fault=status.board_fault,
                stop_cause=status.cause.name.lower(),
                board_trip_reason=status.trip_reason,
                watchdog_ms=status.watchdog_ms,
                watchdog_expirations=status.watchdog_expirations,
                board_bad_frames=status.bad_frames,
                firmware=f"{status.firmware_major}.{status.firmware_minor}",
            )
        return state


def declare_parameters(node: Node) -> dict[str, Any]:
    """Declare every `estop.*` parameter with its descriptor; return the values by short name."""
    values: dict[str, Any] = {}
    for spec in PARAMETERS:
        full_name = PREFIX + spec.name
        if not node.has_parameter(full_name):
            # rclpy types an empty list as a byte array, so an empty string list is declared
            # by type alone and reads back as unset.
            default = Parameter.Type.STRING_ARRAY if spec.default == [] else spec.default
            node.declare_parameter(full_name, default, _descriptor(spec))
        try:
            values[spec.name] = node.get_parameter(full_name).value
        except ParameterUninitializedException:
            values[spec.name] = spec.default
    return values


def parse_parameters(values: dict[str, Any]) -> tuple[LinkConfig, frozenset[str], frozenset[str]]:
    """Validate parameter values. Raises EstopError listing every bad parameter at once."""
    problems: list[str] = []
    known_verdicts = {verdict.value for verdict in Verdict}
    verdicts = frozenset(str(item) for item in values["trip_on_verdicts"] if str(item))
    for verdict in sorted(verdicts - known_verdicts):
        problems.append(f"estop.trip_on_verdicts entry {verdict!r} is not one of {sorted(known_verdicts)}")
    forwarding = sorted(v for v in verdicts & known_verdicts if Verdict(v).forwards)
    if forwarding:
        problems.append(f"estop.trip_on_verdicts {forwarding} would trip the board on forwarded commands")
    rules = frozenset(str(item) for item in values["trip_on_rules"] if str(item))
    for rule in sorted(rules):
        if rule.startswith(PREFIX):
            problems.append(
                f"estop.trip_on_rules entry {rule!r} names an e-stop rule, which never trips the board"
            )
    config: LinkConfig | None = None
    try:
        config = LinkConfig(
            port=str(values["port"]),
            baudrate=int(values["baudrate"]),
            heartbeat_rate_hz=float(values["heartbeat_rate"]),
            status_timeout_s=float(values["status_timeout"]),
            write_timeout_s=float(values["write_timeout"]),
            reconnect_min_s=float(values["reconnect_min"]),
            reconnect_max_s=float(values["reconnect_max"]),
            executor_timeout_s=float(values["executor_timeout"]),
        )
    except EstopError as error:
        problems.append(str(error))
    if problems or config is None:
        raise EstopError("invalid estop parameters: " + "; ".join(problems))
    return config, verdicts, rules


def _descriptor(spec: _Spec) -> ParameterDescriptor:
    descriptor = ParameterDescriptor(description=spec.description, read_only=True)
    if spec.bounds is not None and isinstance(spec.default, int) and not isinstance(spec.default, bool):
        descriptor.integer_range = [
            IntegerRange(from_value=int(spec.bounds[0]), to_value=int(spec.bounds[1]))
        ]
    elif spec.bounds is not None:
        descriptor.floating_point_range = [
            FloatingPointRange(from_value=float(spec.bounds[0]), to_value=float(spec.bounds[1]))
        ]
    if isinstance(spec.default, list):
        descriptor.type = Parameter.Type.STRING_ARRAY.value
    return descriptor


def _rule_matches(rule_id: str, patterns: frozenset[str]) -> bool:
    if rule_id in patterns:
        return True
    return any(pattern.endswith(".*") and rule_id.startswith(pattern[:-1]) for pattern in patterns)


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return "" if value is None else str(value)


_FORWARDED_LOGGERS = ("nc_safety.estop", __name__)


class _RosLogHandler(logging.Handler):
    """Forwards Python log records of the e-stop modules to the node's ROS logger."""

    def __init__(self, node: Node) -> None:
        super().__init__(logging.INFO)
        self._logger = node.get_logger()

    def emit(self, record: logging.LogRecord) -> None:
        text = self.format(record)
        if record.levelno >= logging.ERROR:
            self._logger.error(text)
        elif record.levelno >= logging.WARNING:
            self._logger.warning(text)
        else:
            self._logger.info(text)


class _ProcessHooks:
    """Trips the board on interpreter exit, uncaught exceptions and termination signals.

    SIGINT and SIGTERM are left to rclpy when its signal handlers are installed: they end
    the executor, and the node's shutdown path calls EstopBridge.shutdown(), which trips.
    SIGKILL cannot be caught; the board's watchdog opens the relay instead.
    """

    SIGNALS = ("SIGHUP", "SIGQUIT", "SIGINT", "SIGTERM")

    def __init__(self, trip: Callable[[TripReason], None]) -> None:
        self._trip = trip
        self._previous_excepthook = sys.excepthook
        self._previous_thread_hook = threading.excepthook
        self._previous_signals: dict[int, Any] = {}
        sys.excepthook = self._excepthook
        threading.excepthook = self._thread_excepthook
        atexit.register(self._at_exit)
        if threading.current_thread() is threading.main_thread():
            for name in self.SIGNALS:
                self._install_signal(getattr(signal, name))

    def uninstall(self) -> None:
        if sys.excepthook == self._excepthook:
            sys.excepthook = self._previous_excepthook
        if threading.excepthook == self._thread_excepthook:
            threading.excepthook = self._previous_thread_hook
        atexit.unregister(self._at_exit)
        if threading.current_thread() is threading.main_thread():
            for signum, previous in self._previous_signals.items():
                if signal.getsignal(signum) == self._on_signal:
                    signal.signal(signum, previous)
        self._previous_signals.clear()

    def _install_signal(self, signum: int) -> None:
        if _rclpy_handles(signum):
            return
        previous = signal.getsignal(signum)
        if previous in (signal.SIG_IGN, None):
            return
        self._previous_signals[signum] = previous
        signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._trip(TripReason.SIGNAL)
        previous = self._previous_signals.get(signum, signal.SIG_DFL)
        if callable(previous):
            previous(signum, frame)
            return
        # Default action (terminate): restore it and deliver the signal again.
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    def _excepthook(
        self, kind: type[BaseException], value: BaseException, traceback: TracebackType | None
    ) -> None:
        self._trip(TripReason.EXCEPTION)
        self._previous_excepthook(kind, value, traceback)

    def _thread_excepthook(self, arguments: threading.ExceptHookArgs) -> None:
        self._trip(TripReason.EXCEPTION)
        self._previous_thread_hook(arguments)

    def _at_exit(self) -> None:
        self._trip(TripReason.SHUTDOWN)


def _rclpy_handles(signum: int) -> bool:
    """Whether rclpy's own handler (installed by rclpy.init) takes this signal."""
    options = get_current_signal_handlers_options()  # type: ignore[no-untyped-call]
    if signum == signal.SIGINT:
        return bool(options in (SignalHandlerOptions.SIGINT, SignalHandlerOptions.ALL))
    if signum == signal.SIGTERM:
        return bool(options in (SignalHandlerOptions.SIGTERM, SignalHandlerOptions.ALL))
    return False
