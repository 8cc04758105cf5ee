"""The justification record: one per decision, the same for motion, joints and directives.

The JSON form is documented in docs/messages.md and docs/schemas/justification.schema.json.
Bump `JUSTIFICATION_VERSION` when a field changes meaning or disappears; adding an
optional field keeps the version.
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Union

from nc_safety.core.verdict import ReasonKind, RefutableBy, Severity, Verdict, most_restrictive

JUSTIFICATION_SCHEMA = "nc_safety/justification"
# Bits of a 128-bit UUID that RFC 4122 fixes for version 4 (random) UUIDs.
_UUID_VERSION_MASK = 0xF000 << 64
_UUID_VERSION_4 = 0x4000 << 64
_UUID_VARIANT_MASK = 0xC000 << 48
_UUID_VARIANT_RFC_4122 = 0x8000 << 48
JUSTIFICATION_VERSION = 1

JsonScalar = Union[str, int, float, bool, None]
JsonValue = Union[JsonScalar, Sequence["JsonValue"], Mapping[str, "JsonValue"]]


def _json_number(value: float | None) -> float | None:
    """Map a float to something JSON can carry: non-finite values become None."""
    if value is None or not math.isfinite(value):
        return None
    return value


@dataclass(frozen=True, slots=True)
class Evidence:
    """One measured fact behind a reason: a value, the limit it broke, and where it came from."""

    quantity: str
    """Name of the measured quantity, for example `linear.x`, `clearance`, `scan age`."""
    value: float | str | bool | None
    unit: str = ""
    limit: float | str | None = None
    source: str = ""
    """Topic, sensor or plan step that produced the value."""
    age_s: float | None = None
    """Age of the source data when the decision was made, in seconds."""

    def to_json(self) -> dict[str, JsonValue]:
        value: JsonValue = _json_number(self.value) if isinstance(self.value, float) else self.value
        limit: JsonValue = _json_number(self.limit) if isinstance(self.limit, float) else self.limit
        record: dict[str, JsonValue] = {"quantity": self.quantity, "value": value, "unit": self.unit}
        if isinstance(self.value, float) and not math.isfinite(self.value):
            # JSON cannot carry NaN or infinities, so the text form keeps what was seen.
            record["value_text"] = repr(self.value)
        if self.limit is not None:
            record["limit"] = limit
        if self.source:
            record["source"] = self.source
        if self.age_s is not None:
            record["age_s"] = _json_number(self.age_s)
        return record


@dataclass(frozen=True, slots=True)
class Reason:
    """One rule that fired: its evidence, the predicted consequence and the remedy."""

    rule_id: str
    """Dotted, stable id such as `motion.obstacle.braking`; overrides and the audit use it."""
    kind: ReasonKind
    verdict: Verdict
    """The verdict this rule alone would give."""
    severity: Severity
    message: str
    """One sentence a person can act on."""
    evidence: tuple[Evidence, ...] = ()
    consequence: str = ""
    """Predicted consequence of executing the request as asked."""
    refutable_by: RefutableBy = RefutableBy.NONE
    remedy: str = ""
    """Change that would make the request acceptable."""
    remedy_values: Mapping[str, float] = field(default_factory=dict)
    """Machine-readable remedy, for example `{"max_linear_x": 0.12}` in m/s."""
    step: int | None = None
    """Plan step (0-based) for directive reasons."""
    facts: Mapping[str, JsonValue] = field(default_factory=dict)
    """World-state facts for directive reasons."""

    def to_json(self) -> dict[str, JsonValue]:
        record: dict[str, JsonValue] = {
            "rule_id": self.rule_id,
            "kind": self.kind.value,
            "verdict": self.verdict.value,
            "severity": self.severity.value,
            "message": self.message,
            "evidence": [item.to_json() for item in self.evidence],
            "consequence": self.consequence,
            "refutable_by": self.refutable_by.value,
            "remedy": self.remedy,
        }
        if self.remedy_values:
            record["remedy_values"] = {key: _json_number(value) for key, value in self.remedy_values.items()}
        if self.step is not None:
            record["step"] = self.step
        if self.facts:
            record["facts"] = dict(self.facts)
        return record


@dataclass(frozen=True, slots=True)
class OverrideNote:
    """An active override that let a decision through: who took responsibility, why, until when."""

    override_id: str
    operator_id: str
    role: str
    reason: str
    expires_at: float
    """ROS time, in seconds."""
    rule_ids: tuple[str, ...]

    def to_json(self) -> dict[str, JsonValue]:
        return {
            "override_id": self.override_id,
            "operator_id": self.operator_id,
            "role": self.role,
            "reason": self.reason,
            "expires_at": self.expires_at,
            "rule_ids": list(self.rule_ids),
        }


def _reason_order(reason: Reason) -> tuple[int, int, str]:
    return (-reason.severity.rank, -reason.verdict.rank, reason.rule_id)


def sort_reasons(reasons: Sequence[Reason]) -> tuple[Reason, ...]:
    """Order reasons most severe first, then most restrictive verdict first, then by rule id."""
    if len(reasons) < 2:
        return tuple(reasons)
    return tuple(sorted(reasons, key=_reason_order))


# Decision ids only need to be unique, not unpredictable, so they come from a generator
# seeded from the operating system instead of one system call per decision. A forked
# child gets a new seed, or it would repeat its parent's ids.
_ID_RANDOM = random.Random(os.urandom(32))
os.register_at_fork(after_in_child=lambda: _ID_RANDOM.seed(os.urandom(32)))


def new_decision_id() -> str:
    """Return a random UUID (version 4) as 32 hex digits, in the form of uuid.uuid4().hex."""
    value = _ID_RANDOM.getrandbits(128)
    value = (value & ~_UUID_VERSION_MASK) | _UUID_VERSION_4
    value = (value & ~_UUID_VARIANT_MASK) | _UUID_VARIANT_RFC_4122
    return f"{value:032x}"


@dataclass(frozen=True, slots=True)
class Decision:
    """One decision about one command, with the reasons that shaped it."""

    decision_id: str
    stamp: float
    """ROS time of the decision, in seconds (sim time when the node uses it)."""
    wall_time: float
    """Wall-clock time of the decision, in seconds since the Unix epoch."""
    command_kind: str
    """`twist`, `trajectory` or `directive`."""
    command_id: str
    requester: str
    verdict: Verdict
    reasons: tuple[Reason, ...] = ()
    policy_hash: str = ""
    overrides: tuple[OverrideNote, ...] = ()
    """Active overrides that waived some reasons of this decision."""
    overridden: tuple[Reason, ...] = ()
    """Reasons that fired but were waived by an override in `overrides`."""
    output: Mapping[str, JsonValue] = field(default_factory=dict)
    """Command that was forwarded, for example the clamped twist."""

    @property
    def rule_ids(self) -> tuple[str, ...]:
        return tuple(reason.rule_id for reason in self.reasons)

    @property
    def signature(self) -> tuple[str, tuple[str, ...]]:
        """Verdict and rule ids: what changes when the decision or its reason changes."""
        return (self.verdict.value, self.rule_ids)

    def with_policy_hash(self, policy_hash: str) -> Decision:
        return replace(self, policy_hash=policy_hash)

    def to_json(self) -> dict[str, JsonValue]:
        return {
            "schema": JUSTIFICATION_SCHEMA,
            "version": JUSTIFICATION_VERSION,
            "decision_id": self.decision_id,
            "stamp": self.stamp,
            "wall_time": self.wall_time,
            "command": {"kind": self.command_kind, "id": self.command_id, "requester": self.requester},
            "verdict": self.verdict.value,
            "reasons": [reason.to_json() for reason in self.reasons],
            "policy_hash": self.policy_hash,
            "overrides": [note.to_json() for note in self.overrides],
            "overridden": [reason.to_json() for reason in self.overridden],
            "output": dict(self.output),
        }


def combine(
    *,
    stamp: float,
    wall_time: float,
    command_kind: str,
    command_id: str,
    requester: str,
    reasons: Sequence[Reason],
    policy_hash: str = "",
    overrides: Sequence[OverrideNote] = (),
    overridden: Sequence[Reason] = (),
    output: Mapping[str, JsonValue] | None = None,
    decision_id: str | None = None,
) -> Decision:
    """Build a decision whose verdict is the most restrictive of its reasons' verdicts."""
    ordered = sort_reasons(reasons)
    return Decision(
        decision_id=decision_id or new_decision_id(),
        stamp=stamp,
        wall_time=wall_time,
        command_kind=command_kind,
        command_id=command_id,
        requester=requester,
        verdict=most_restrictive([reason.verdict for reason in ordered]),
        reasons=ordered,
        policy_hash=policy_hash,
        overrides=tuple(overrides),
        overridden=sort_reasons(overridden),
        output=dict(output or {}),
    )
