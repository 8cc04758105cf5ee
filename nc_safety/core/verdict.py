"""Verdicts, reason kinds, severities and refutability: the enums every decision uses."""

from __future__ import annotations

from enum import Enum


class Verdict(str, Enum):
    """Outcome of one decision, ordered from least to most restrictive by `rank`."""

    COMPLY = "comply"
    """Safe as requested: forwarded unchanged."""
    MODIFY = "modify"
    """Made safe (clamped, slowed), then forwarded."""
    DEFER = "defer"
    """Not now: timing or priority. Not forwarded, and the remedy states when it could run."""
    UNABLE = "unable"
    """Cannot: no skill, no capacity or infeasible. Not forwarded."""
    UNAUTHORIZED = "unauthorized"
    """Not you: the requester may not ask for this. Not forwarded."""
    REFUSE = "refuse"
    """Will not: it would cause harm or break a norm. Stop or not forwarded."""
    FAULT = "fault"
    """The layer cannot decide (stale or missing data, internal error): fail-safe stop."""

    @property
    def rank(self) -> int:
        """Restrictiveness: when constraints combine, the highest rank wins."""
        return _RANK[self]

    @property
    def forwards(self) -> bool:
        """Whether a command with this verdict reaches the actuators (possibly changed)."""
        return self in (Verdict.COMPLY, Verdict.MODIFY)


_RANK = {verdict: index for index, verdict in enumerate(Verdict)}


class ReasonKind(str, Enum):
    """Category of the reason a rule fired."""

    SAFETY = "safety"
    NORMATIVE = "normative"
    FEASIBILITY = "feasibility"
    EFFICIENCY = "efficiency"
    AUTHORITY = "authority"
    TIMING = "timing"
    INTEGRITY = "integrity"


class Severity(str, Enum):
    """Seriousness of the predicted consequence. Reasons are listed most severe first."""

    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {severity: index for index, severity in enumerate(Severity)}


class RefutableBy(str, Enum):
    """Role that may override a rule with a signed request."""

    NONE = "none"
    """A hard rule: no override lifts it."""
    OPERATOR = "operator"
    SUPERVISOR = "supervisor"
    TWO_SUPERVISORS = "two_supervisors"

    @property
    def overridable(self) -> bool:
        return self is not RefutableBy.NONE


def most_restrictive(verdicts: list[Verdict] | tuple[Verdict, ...]) -> Verdict:
    """Return the most restrictive verdict, or `COMPLY` for an empty sequence."""
    if not verdicts:
        return Verdict.COMPLY
    return max(verdicts, key=_RANK.__getitem__)
