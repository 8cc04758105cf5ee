"""Motion constraints: each turns a proposed twist and the latest sensor data into outcomes.

An outcome carries a reason and the speed factor it demands; the motion guard applies the
smallest factor of the outcomes that were not waived by an override, so the most
restrictive constraint wins.
"""

from __future__ import annotations

from dataclasses import dataclass

from nc_safety.core.justification import Evidence, Reason
from nc_safety.core.policy import MOTION_RULES, rule_info
from nc_safety.core.verdict import Verdict


@dataclass(frozen=True, slots=True)
class Outcome:
    """One constraint that fired: its reason and the factor it applies to the twist."""

    reason: Reason
    scale: float
    """0 stops the motion, 1 leaves the speed as it is."""


def make_reason(
    rule_id: str,
    verdict: Verdict,
    message: str,
    *,
    evidence: tuple[Evidence, ...] = (),
    consequence: str = "",
    remedy: str = "",
    remedy_values: dict[str, float] | None = None,
) -> Reason:
    """Build a reason with the kind, severity and refutability the rule table gives `rule_id`."""
    info = rule_info(rule_id) or MOTION_RULES["node.internal_error"]
    return Reason(
        rule_id=rule_id,
        kind=info.kind,
        verdict=verdict,
        severity=info.severity,
        message=message,
        evidence=evidence,
        consequence=consequence,
        refutable_by=info.refutable_by,
        remedy=remedy,
        remedy_values=remedy_values or {},
    )
