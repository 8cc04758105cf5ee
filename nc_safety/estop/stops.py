"""Software stops required by the e-stop link, and the conditions for releasing them.

`StopLatch` turns link snapshots into stop reasons with the rule ids `estop.button`,
`estop.link_lost` and `estop.board_latched`. A reason, once set, stays set until an
authenticated reset completes: the board reports its relay closed, its latch released and
its button up. A button released on its own, or a link that comes back, releases nothing.
The only exception is the first connection after start-up: `estop.link_lost` then only
means "not connected yet" and clears when the first STATUS arrives.

The class does no I/O, reads no clock and is not thread-safe: the owner serialises calls.
"""

from __future__ import annotations

from dataclasses import dataclass

from nc_safety.core.justification import Evidence, Reason
from nc_safety.core.verdict import ReasonKind, RefutableBy, Severity, Verdict
from nc_safety.estop.errors import EstopError
from nc_safety.estop.link import LinkSnapshot
from nc_safety.estop.protocol import Status, StopCause, TripReason

BUTTON = "estop.button"
LINK_LOST = "estop.link_lost"
BOARD_LATCHED = "estop.board_latched"
RULE_IDS = (BUTTON, LINK_LOST, BOARD_LATCHED)

_RESET_REMEDY = (
    "an operator sends a signed e-stop reset; motion resumes only after a zero command "
    "or a command sent after the reset"
)


@dataclass(frozen=True, slots=True)
class PendingReset:
    """A reset sent to the board and not yet confirmed by a STATUS."""

    operator_id: str
    requested_at: float
    """Time of the request, in seconds on the owner's clock."""


@dataclass(frozen=True, slots=True)
class LatchChange:
    """Reasons set and cleared by one update, and the outcome of a pending reset."""

    set_reasons: tuple[Reason, ...] = ()
    cleared: tuple[str, ...] = ()
    reset_completed: PendingReset | None = None
    reset_expired: PendingReset | None = None


class StopLatch:
    """The host-side latch of e-stop stops."""

    def __init__(self, port: str, reset_timeout_s: float) -> None:
        if not reset_timeout_s > 0:
            raise EstopError(f"reset timeout {reset_timeout_s!r} s must be positive")
        self.port = port
        self.reset_timeout_s = reset_timeout_s
        self.active: dict[str, Reason] = {LINK_LOST: _link_reason(port, "no STATUS from the board yet", None)}
        self.link_failed = False
        """Whether the link failed after start-up, so its stop waits for a reset."""
        self.pending: PendingReset | None = None
        self.trip_cause = ""
        """What made the host trip the board, for the board_latched message."""

    def update(self, snapshot: LinkSnapshot, now: float) -> LatchChange:
        """Apply a new snapshot; return the reasons to set and the rule ids to clear."""
        if not snapshot.up or snapshot.status is None:
            if snapshot.ever_up or snapshot.lost_reason:
                self.link_failed = True
            reason = _link_reason(self.port, snapshot.lost_reason or "not connected", snapshot.status_age_s)
            expired = self._cancel_pending()
            return LatchChange(set_reasons=tuple(self._add(LINK_LOST, reason)), reset_expired=expired)

        status = snapshot.status
        set_reasons: list[Reason] = []
        cleared: list[str] = []
        if not self.link_failed and LINK_LOST in self.active:
            del self.active[LINK_LOST]
            cleared.append(LINK_LOST)
        if status.button_pressed or (status.stopped and status.cause is StopCause.BUTTON):
            set_reasons += self._add(BUTTON, _button_reason(status))
        if status.board_fault or (status.stopped and status.cause is not StopCause.BUTTON):
            set_reasons += self._add(
                BOARD_LATCHED, _board_reason(status, snapshot.trip_reason, self.trip_cause)
            )

        completed = expired = None
        if self.pending is not None:
            if set_reasons:
                expired = self._cancel_pending()
            elif not status.stopped:
                completed, self.pending = self.pending, None
                cleared += list(self.active)
                self.active.clear()
                self.link_failed = False
                self.trip_cause = ""
            elif now - self.pending.requested_at > self.reset_timeout_s:
                expired = self._cancel_pending()
        return LatchChange(tuple(set_reasons), tuple(cleared), completed, expired)

    def begin_reset(self, operator_id: str, snapshot: LinkSnapshot, now: float) -> PendingReset:
        """Check that a reset can succeed now and record it as pending.

        Raises EstopError naming the obstacle: an empty operator id, a link that is not up,
        a pressed button or a board fault. The caller then sends RESET_REQUEST.
        """
        if not operator_id.strip():
            raise EstopError("reset rejected: the operator id is empty; pass the verified operator's id")
        if not snapshot.up or snapshot.status is None:
            raise EstopError(
                f"reset rejected: the e-stop link on {self.port} is {snapshot.state.value}; restore it first"
            )
        if snapshot.status.button_pressed:
            raise EstopError("reset rejected: the e-stop button is still pressed; release it first")
        if snapshot.status.board_fault:
            raise EstopError("reset rejected: the e-stop board reports a fault; repair the board first")
        self.pending = PendingReset(operator_id, now)
        return self.pending

    def _add(self, rule_id: str, reason: Reason) -> list[Reason]:
        if rule_id in self.active:
            return []
        self.active[rule_id] = reason
        return [reason]

    def _cancel_pending(self) -> PendingReset | None:
        pending, self.pending = self.pending, None
        return pending


def _link_reason(port: str, why: str, status_age_s: float | None) -> Reason:
    return Reason(
        rule_id=LINK_LOST,
        kind=ReasonKind.INTEGRITY,
        verdict=Verdict.FAULT,
        severity=Severity.CRITICAL,
        message=f"The e-stop link on {port} is down ({why}), so every output is held at zero.",
        evidence=(
            Evidence("estop link", "down", source=port, age_s=status_age_s),
            Evidence("cause", why, source=port),
        ),
        consequence="Without the link nobody can confirm that the hardware e-stop would cut motor power.",
        refutable_by=RefutableBy.NONE,
        remedy=f"Restore the serial connection to the e-stop board; once it is back, {_RESET_REMEDY}.",
    )


def _button_reason(status: Status) -> Reason:
    return Reason(
        rule_id=BUTTON,
        kind=ReasonKind.SAFETY,
        verdict=Verdict.REFUSE,
        severity=Severity.CRITICAL,
        message="The e-stop button was pressed, so every output is held at zero until a reset.",
        evidence=_status_evidence(status),
        consequence="Motor power is cut by the relay; a command forwarded now would jump when power returns.",
        refutable_by=RefutableBy.NONE,
        remedy=f"Release the e-stop button, then {_RESET_REMEDY}.",
    )


def _board_reason(status: Status, host_trip: TripReason | None, trip_cause: str) -> Reason:
    if status.board_fault:
        return Reason(
            rule_id=BOARD_LATCHED,
            kind=ReasonKind.INTEGRITY,
            verdict=Verdict.FAULT,
            severity=Severity.CRITICAL,
            message="The e-stop board reports a fault and has cut motor power.",
            evidence=_status_evidence(status),
            consequence="The board cannot guarantee that it would cut motor power on demand.",
            refutable_by=RefutableBy.NONE,
            remedy=f"Repair or replace the e-stop board, then {_RESET_REMEDY}.",
        )
    why = status.cause.name.lower().replace("_", "-")
    if status.cause is StopCause.TRIP and trip_cause:
        why = f"tripped by the safety node: {trip_cause}"
    elif status.cause is StopCause.TRIP:
        why = f"tripped, reason {_trip_name(status.trip_reason)}"
    elif host_trip is not None:
        why = f"{why}; the safety node sends stop heartbeats ({host_trip.name.lower()})"
    return Reason(
        rule_id=BOARD_LATCHED,
        kind=ReasonKind.SAFETY,
        verdict=Verdict.REFUSE,
        severity=Severity.CRITICAL,
        message=f"The e-stop board has cut motor power and is latched ({why}).",
        evidence=_status_evidence(status),
        consequence="Motor power is cut by the relay; a command forwarded now would jump when power returns.",
        refutable_by=RefutableBy.NONE,
        remedy=f"Remove the cause of the stop, then {_RESET_REMEDY}.",
    )


def _trip_name(code: int) -> str:
    try:
        return TripReason(code).name.lower()
    except ValueError:
        return f"code {code}"


def _status_evidence(status: Status) -> tuple[Evidence, ...]:
    source = "e-stop board STATUS"
    return (
        Evidence("relay", "open" if status.relay_open else "closed", source=source),
        Evidence("button", "pressed" if status.button_pressed else "up", source=source),
        Evidence("latched", status.latched, source=source),
        Evidence("stop cause", status.cause.name.lower(), source=source),
        Evidence("watchdog period", float(status.watchdog_ms), unit="ms", source=source),
    )
