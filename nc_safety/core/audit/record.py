"""Audit records: their fields, their hash chain and the columns derived for queries."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from nc_safety.core.canonical import canonical_json, sha256_hex
from nc_safety.core.errors import NcSafetyError
from nc_safety.core.justification import JsonValue

AUDIT_FORMAT = "nc_safety/audit"
AUDIT_FORMAT_VERSION = 1

STANDARD_KINDS = (
    "start",
    "stop",
    "config",
    "decision",
    "override.request",
    "override.outcome",
    "estop",
    "fault",
    "risk",
)
"""Kinds the node records; extensions may add their own dotted kinds."""

_KIND_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")


class AuditError(NcSafetyError):
    """Raised when the audit trail cannot be opened, written or read, or a request to it is invalid."""


class JsonEncodable(Protocol):
    """A value that encodes itself, such as `Decision`; encoded on the writer thread."""

    def to_json(self) -> dict[str, JsonValue]: ...


AuditPayload = Mapping[str, Any] | JsonEncodable


def validate_kind(kind: str) -> str:
    """Return `kind` when it is a dotted lowercase identifier such as `override.request`."""
    if not isinstance(kind, str) or not _KIND_PATTERN.match(kind):
        raise AuditError(
            f"invalid audit record kind {kind!r}: use dotted lowercase words, for example 'override.request'"
        )
    return kind


def genesis_hash(file_id: str) -> str:
    """Return the `prev_hash` of record 1, which binds the chain to the file's id."""
    return sha256_hex({"format": AUDIT_FORMAT, "version": AUDIT_FORMAT_VERSION, "file_id": file_id})


def record_hash(
    *, seq: int, wall_time: float, ros_time: float | None, kind: str, payload: JsonValue, prev_hash: str
) -> str:
    """Return the SHA-256 over the canonical JSON of every stored field except the hash itself."""
    return sha256_hex(
        {
            "seq": seq,
            "wall_time": wall_time,
            "ros_time": ros_time,
            "kind": kind,
            "payload": payload,
            "prev_hash": prev_hash,
        }
    )


def finite_or_none(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(value)


@dataclass(frozen=True, slots=True)
class DerivedColumns:
    """Query columns taken from the payload; `verify` checks they still match it."""

    requester: str | None
    operators: tuple[str, ...]
    rule_ids: tuple[str, ...]


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [item for item in value if isinstance(item, str)]
    return []


def _rule_ids_of(reasons: object) -> list[str]:
    if not isinstance(reasons, (list, tuple)):
        return []
    return [str(item["rule_id"]) for item in reasons if isinstance(item, Mapping) and "rule_id" in item]


def derive_columns(payload: JsonValue) -> DerivedColumns:
    """Find requester, operators and rule ids in a payload.

    Looks at the fields of a decision (`command.requester`, `reasons`, `overridden`,
    `overrides`) and at the flat fields `requester`, `operator_id`, `operator_ids`,
    `rule_id` and `rule_ids` that other records use.
    """
    if not isinstance(payload, Mapping):
        return DerivedColumns(None, (), ())
    requester: str | None = None
    command = payload.get("command")
    if isinstance(command, Mapping) and isinstance(command.get("requester"), str):
        requester = str(command["requester"])
    elif isinstance(payload.get("requester"), str):
        requester = str(payload["requester"])

    operators = _strings(payload.get("operator_id")) + _strings(payload.get("operator_ids"))
    overrides = payload.get("overrides")
    if isinstance(overrides, (list, tuple)):
        for note in overrides:
            if isinstance(note, Mapping):
                operators += _strings(note.get("operator_id"))

    rules = _strings(payload.get("rule_id")) + _strings(payload.get("rule_ids"))
    rules += _rule_ids_of(payload.get("reasons")) + _rule_ids_of(payload.get("overridden"))
    return DerivedColumns(
        requester=requester,
        operators=tuple(sorted(set(operators))),
        rule_ids=tuple(sorted(set(rules))),
    )


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One stored record of the audit trail."""

    seq: int
    """Sequence number, 1 for the first record of a file, without gaps."""
    wall_time: float
    """Wall-clock time the record was queued, in seconds since the Unix epoch."""
    ros_time: float | None
    """ROS time the record was queued, in seconds; None when no ROS clock was given."""
    kind: str
    payload: JsonValue
    prev_hash: str
    hash: str

    @property
    def payload_text(self) -> str:
        return canonical_json(self.payload)

    def expected_hash(self) -> str:
        return record_hash(
            seq=self.seq,
            wall_time=self.wall_time,
            ros_time=self.ros_time,
            kind=self.kind,
            payload=self.payload,
            prev_hash=self.prev_hash,
        )

    def to_json(self) -> dict[str, JsonValue]:
        return {
            "seq": self.seq,
            "wall_time": self.wall_time,
            "ros_time": self.ros_time,
            "kind": self.kind,
            "payload": self.payload,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }
