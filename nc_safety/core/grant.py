"""An accepted override, as the decision pipelines consume it.

Verifying a signed request (keys, signature, time window, nonce, rate, role) happens
before a grant exists; a grant only says which rules are waived, for whom and until when.
"""

from __future__ import annotations

from dataclasses import dataclass

from nc_safety.core.justification import OverrideNote


@dataclass(frozen=True, slots=True)
class OverrideGrant:
    """Permission, taken by a named operator, to waive the listed overridable rules."""

    override_id: str
    rule_ids: frozenset[str]
    operator_id: str
    role: str
    reason: str
    issued_at: float
    """ROS time, in seconds."""
    expires_at: float
    """ROS time, in seconds; the grant lapses at this instant."""
    max_linear_speed: float | None = None
    """Speed cap in m/s that still applies while the override is active."""
    max_angular_speed: float | None = None
    """Yaw-rate cap in rad/s that still applies while the override is active."""
    decision_id: str | None = None
    """The refused decision the operator was shown, when the request named one."""

    def active(self, now: float) -> bool:
        return self.issued_at <= now < self.expires_at

    def covers(self, rule_id: str, now: float) -> bool:
        return rule_id in self.rule_ids and self.active(now)

    def to_note(self) -> OverrideNote:
        return OverrideNote(
            override_id=self.override_id,
            operator_id=self.operator_id,
            role=self.role,
            reason=self.reason,
            expires_at=self.expires_at,
            rule_ids=tuple(sorted(self.rule_ids)),
        )
