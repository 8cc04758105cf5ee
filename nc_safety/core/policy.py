"""The motion rules' identities: rule id, reason kind, severity and who may override.

Rule ids are stable: overrides, risk tracking and the audit trail refer to them. Hard
rules (`RefutableBy.NONE`) are never lifted by an override: non-finite commands, people
inside the protective separation distance, engaged e-stops, stale or missing data, the
robot's rated velocity limits and invalid time steps.
"""

from __future__ import annotations

from dataclasses import dataclass

from nc_safety.core.canonical import sha256_hex
from nc_safety.core.justification import JsonValue
from nc_safety.core.verdict import ReasonKind, RefutableBy, Severity


@dataclass(frozen=True, slots=True)
class RuleInfo:
    rule_id: str
    kind: ReasonKind
    severity: Severity
    refutable_by: RefutableBy
    description: str


def _rule(
    rule_id: str, kind: ReasonKind, severity: Severity, refutable_by: RefutableBy, text: str
) -> RuleInfo:
    return RuleInfo(rule_id, kind, severity, refutable_by, text)


_S, _I, _T = ReasonKind.SAFETY, ReasonKind.INTEGRITY, ReasonKind.TIMING
_NONE, _OP, _SUP = RefutableBy.NONE, RefutableBy.OPERATOR, RefutableBy.SUPERVISOR

MOTION_RULES: dict[str, RuleInfo] = {
    rule.rule_id: rule
    for rule in (
        _rule("motion.non_finite", _S, Severity.CRITICAL, _NONE, "NaN or infinite velocity command"),
        _rule("motion.limit.linear_x", _S, Severity.MEDIUM, _NONE, "forward or reverse speed limit"),
        _rule("motion.limit.linear_y", _S, Severity.MEDIUM, _NONE, "sideways speed limit"),
        _rule("motion.limit.linear_z", _S, Severity.MEDIUM, _NONE, "vertical speed limit"),
        _rule("motion.limit.angular_x", _S, Severity.MEDIUM, _NONE, "roll rate limit"),
        _rule("motion.limit.angular_y", _S, Severity.MEDIUM, _NONE, "pitch rate limit"),
        _rule("motion.limit.angular_z", _S, Severity.MEDIUM, _NONE, "yaw rate limit"),
        _rule("motion.limit.accel_linear", _S, Severity.LOW, _NONE, "linear acceleration limit"),
        _rule("motion.limit.accel_angular", _S, Severity.LOW, _NONE, "angular acceleration limit"),
        _rule("motion.time_step", _I, Severity.HIGH, _NONE, "invalid time step between decisions"),
        _rule(
            "motion.obstacle.stop", _S, Severity.HIGH, _SUP, "motion toward an obstacle inside the stop zone"
        ),
        _rule(
            "motion.obstacle.slowdown",
            _S,
            Severity.LOW,
            _OP,
            "motion toward an obstacle in the slowdown zone",
        ),
        _rule(
            "motion.obstacle.braking", _S, Severity.HIGH, _SUP, "speed above what can stop before an obstacle"
        ),
        _rule("motion.people.separation", _S, Severity.CRITICAL, _NONE, "protective separation distance"),
        _rule("motion.geofence.keep_in", _S, Severity.HIGH, _SUP, "stopping point outside the keep-in area"),
        _rule("motion.geofence.keep_out", _S, Severity.HIGH, _SUP, "stopping point inside a keep-out area"),
        _rule(
            "motion.restart_interlock",
            _S,
            Severity.MEDIUM,
            _NONE,
            "no restart after a reset until a new command",
        ),
        _rule("source.silent.cmd_vel_in", _T, Severity.LOW, _NONE, "command input silent"),
        _rule("source.stale", _I, Severity.HIGH, _NONE, "required sensor data missing or stale"),
        _rule("source.future", _I, Severity.HIGH, _NONE, "sensor data stamped in the future"),
        _rule("source.invalid", _I, Severity.HIGH, _NONE, "malformed sensor data"),
        _rule("source.clock_mismatch", _I, Severity.HIGH, _NONE, "stamps far from the node's clock"),
        _rule(
            "source.multiple_publishers", _I, Severity.HIGH, _NONE, "more than one publisher on cmd_vel_in"
        ),
        _rule("source.qos_incompatible", _I, Severity.MEDIUM, _NONE, "publisher QoS incompatible with ours"),
        _rule("node.internal_error", _I, Severity.CRITICAL, _NONE, "the safety node failed internally"),
    )
}


def rule_info(rule_id: str) -> RuleInfo | None:
    """Look up a motion rule, including per-source ids such as `source.stale.scan`."""
    info = MOTION_RULES.get(rule_id)
    if info is not None:
        return info
    for prefix in ("source.stale", "source.future", "source.invalid", "source.clock_mismatch", "motion.zone"):
        if rule_id.startswith(prefix + "."):
            return MOTION_RULES.get(prefix)
    return None


def policy_hash(configuration: JsonValue) -> str:
    """SHA-256 over the effective configuration and the rule table, so a change shows."""
    rules: JsonValue = {
        rule.rule_id: [rule.kind.value, rule.severity.value, rule.refutable_by.value]
        for rule in MOTION_RULES.values()
    }
    return sha256_hex({"configuration": configuration, "rules": rules})
