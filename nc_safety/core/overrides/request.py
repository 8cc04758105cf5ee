"""Signed operator requests: overrides, stop resets, risk clears and revokes.

The wire form is one JSON object (docs/schemas/override.schema.json). Every signature in
`signatures` covers the canonical JSON encoding (nc_safety/core/canonical.py) of the
object without its `signatures` field, so adding a co-signature leaves the signed bytes
unchanged and a change to any other field breaks every signature.
"""

from __future__ import annotations

import math
import re
import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

from nc_safety.core.canonical import canonical_bytes
from nc_safety.core.justification import JsonValue
from nc_safety.core.overrides.errors import OverrideError
from nc_safety.core.overrides.keys import (
    IDENTIFIER_PATTERN,
    SIGNATURE_BYTES,
    SigningIdentity,
    decode_base64,
    encode_base64,
)

REQUEST_SCHEMA = "nc_safety/override_request"
REQUEST_VERSION = 1
MAX_SIGNATURES = 4
MAX_TARGETS = 32
NONCE_PATTERN = re.compile(r"^[0-9a-f]{32,128}$")
"""At least 128 random bits, as lower-case hex."""
RULE_ID_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.<>:-]{0,127}$")

BODY_FIELDS = frozenset(
    {
        "schema",
        "version",
        "kind",
        "request_id",
        "operator_id",
        "key_id",
        "issued_at",
        "expires_at",
        "nonce",
        "reason",
        "decision_id",
        "rule_ids",
        "constraints",
        "targets",
    }
)
REQUIRED_FIELDS = frozenset(
    {"schema", "version", "kind", "request_id", "operator_id", "key_id", "issued_at", "expires_at", "nonce"}
)
CONSTRAINT_FIELDS = frozenset({"max_linear_speed", "max_angular_speed"})

RESET_TARGETS = frozenset({"estop.software", "estop.board"})
"""Stops a reset request may release: the software e-stop hold and the e-stop board latch."""


class RequestKind(str, Enum):
    """Kind of action a signed request requests."""

    OVERRIDE = "override"
    """Waive overridable rules of a refused decision, or named rules, until `expires_at`."""
    RESET = "reset"
    """Release the software e-stop and/or reset the latched e-stop board (`targets`)."""
    RISK_CLEAR = "risk_clear"
    """Clear the risk lockout of the requesters in `targets`; supervisors only."""
    REVOKE = "revoke"
    """End the active overrides whose ids are in `targets` before they expire."""


@dataclass(frozen=True, slots=True)
class Constraints:
    """Limits that still apply while an override is active."""

    max_linear_speed: float | None = None
    """m/s."""
    max_angular_speed: float | None = None
    """rad/s."""

    def to_json(self) -> dict[str, JsonValue]:
        record: dict[str, JsonValue] = {}
        if self.max_linear_speed is not None:
            record["max_linear_speed"] = self.max_linear_speed
        if self.max_angular_speed is not None:
            record["max_angular_speed"] = self.max_angular_speed
        return record


@dataclass(frozen=True, slots=True)
class Signature:
    key_id: str
    signature: bytes
    """64-byte Ed25519 signature over `OverrideRequest.signed_bytes`."""

    def to_json(self) -> dict[str, JsonValue]:
        return {"key_id": self.key_id, "signature": encode_base64(self.signature)}


@dataclass(frozen=True, slots=True)
class OverrideRequest:
    """A parsed request; `signed_bytes` are exactly the bytes its signatures cover."""

    kind: RequestKind
    request_id: str
    """Unique id; an accepted override keeps it as its override id."""
    operator_id: str
    key_id: str
    issued_at: float
    """Wall clock of the signer, seconds since the Unix epoch."""
    expires_at: float
    """Wall clock, seconds since the Unix epoch."""
    nonce: str
    reason: str
    decision_id: str | None = None
    rule_ids: tuple[str, ...] = ()
    constraints: Constraints = field(default_factory=Constraints)
    targets: tuple[str, ...] = ()
    signatures: tuple[Signature, ...] = ()
    signed_bytes: bytes = field(default=b"", repr=False)

    def body(self) -> dict[str, JsonValue]:
        """Return the signed fields as they go on the wire, optional fields only when set."""
        record: dict[str, JsonValue] = {
            "schema": REQUEST_SCHEMA,
            "version": REQUEST_VERSION,
            "kind": self.kind.value,
            "request_id": self.request_id,
            "operator_id": self.operator_id,
            "key_id": self.key_id,
            "issued_at": self.issued_at,
            "expires_at": self.expires_at,
            "nonce": self.nonce,
            "reason": self.reason,
        }
        if self.decision_id is not None:
            record["decision_id"] = self.decision_id
        if self.rule_ids:
            record["rule_ids"] = list(self.rule_ids)
        constraints = self.constraints.to_json()
        if constraints:
            record["constraints"] = constraints
        if self.targets:
            record["targets"] = list(self.targets)
        return record

    def to_json(self) -> dict[str, JsonValue]:
        record = self.body()
        record["signatures"] = [signature.to_json() for signature in self.signatures]
        return record

    def signed_by(self, identity: SigningIdentity) -> OverrideRequest:
        """Return a copy with `identity`'s signature appended (the first one must be the requester's)."""
        if not self.signatures and identity.key_id != self.key_id:
            raise OverrideError(
                f"the first signature must come from the requester's key {self.key_id!r}, "
                f"not {identity.key_id!r}"
            )
        message = self.signed_bytes or canonical_bytes(self.body())
        signature = Signature(key_id=identity.key_id, signature=identity.sign(message))
        return replace(self, signatures=(*self.signatures, signature), signed_bytes=message)


def new_request(
    kind: RequestKind,
    identity: SigningIdentity,
    *,
    now: float,
    lifetime_s: float,
    reason: str,
    decision_id: str | None = None,
    rule_ids: Sequence[str] = (),
    constraints: Constraints | None = None,
    targets: Sequence[str] = (),
) -> OverrideRequest:
    """Build and sign a request with a fresh request id and a 128-bit random nonce.

    `now` is the signer's wall clock in seconds since the Unix epoch.
    """
    request = OverrideRequest(
        kind=kind,
        request_id=uuid.uuid4().hex,
        operator_id=identity.operator_id,
        key_id=identity.key_id,
        issued_at=float(now),
        expires_at=float(now + lifetime_s),
        nonce=secrets.token_hex(16),
        reason=reason,
        decision_id=decision_id,
        rule_ids=tuple(rule_ids),
        constraints=constraints or Constraints(),
        targets=tuple(targets),
    )
    return request.signed_by(identity)


def _shape_error(message: str) -> OverrideError:
    return OverrideError(message, code="invalid_shape")


def _identifier(document: Mapping[str, Any], name: str, pattern: re.Pattern[str] = IDENTIFIER_PATTERN) -> str:
    value = document[name]
    if not isinstance(value, str) or not pattern.match(value):
        raise _shape_error(f"field {name!r} = {value!r} must be a string matching {pattern.pattern}")
    return value


def _time(document: Mapping[str, Any], name: str) -> float:
    value = document[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _shape_error(
            f"field {name!r} = {value!r} must be a finite number of seconds since the Unix epoch"
        )
    return float(value)


def _string_list(document: Mapping[str, Any], name: str, pattern: re.Pattern[str]) -> tuple[str, ...]:
    if name not in document:
        return ()
    values = document[name]
    if not isinstance(values, list) or not values or len(values) > MAX_TARGETS:
        raise _shape_error(f"field {name!r} = {values!r} must be a list of 1 to {MAX_TARGETS} strings")
    for value in values:
        if not isinstance(value, str) or not pattern.match(value):
            raise _shape_error(f"field {name!r} contains {value!r}, which does not match {pattern.pattern}")
    if len(set(values)) != len(values):
        raise _shape_error(f"field {name!r} = {values!r} lists an entry twice")
    return tuple(values)


def _constraints(document: Mapping[str, Any]) -> Constraints:
    if "constraints" not in document:
        return Constraints()
    record = document["constraints"]
    if not isinstance(record, dict):
        raise _shape_error(f"field 'constraints' = {record!r} must be an object")
    unknown = sorted(set(record) - CONSTRAINT_FIELDS)
    if unknown:
        raise _shape_error(
            f"constraints has unknown field(s) {unknown}; expected {sorted(CONSTRAINT_FIELDS)}"
        )
    values: dict[str, float] = {}
    for name, value in record.items():
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not (math.isfinite(value) and value > 0)
        ):
            raise _shape_error(f"constraints.{name} = {value!r} must be a finite number > 0")
        values[name] = float(value)
    return Constraints(
        max_linear_speed=values.get("max_linear_speed"), max_angular_speed=values.get("max_angular_speed")
    )


def _signatures(document: Mapping[str, Any]) -> tuple[Signature, ...]:
    records = document.get("signatures")
    if not isinstance(records, list) or not 1 <= len(records) <= MAX_SIGNATURES:
        raise _shape_error(
            f"field 'signatures' = {records!r} must be a list of 1 to {MAX_SIGNATURES} signatures"
        )
    signatures: list[Signature] = []
    for index, record in enumerate(records):
        if not isinstance(record, dict) or set(record) != {"key_id", "signature"}:
            raise _shape_error(
                f"signatures[{index}] = {record!r} must be an object with key_id and signature"
            )
        key_id = _identifier(record, "key_id")
        text = record["signature"]
        if not isinstance(text, str):
            raise _shape_error(f"signatures[{index}].signature = {text!r} must be a base64 string")
        try:
            raw = decode_base64(text, expected_bytes=SIGNATURE_BYTES, what=f"signatures[{index}].signature")
        except OverrideError as error:
            raise _shape_error(str(error)) from error
        signatures.append(Signature(key_id=key_id, signature=raw))
    return tuple(signatures)


def _check_kind_fields(kind: RequestKind, document: Mapping[str, Any], targets: tuple[str, ...]) -> None:
    """Check which optional fields each kind needs or forbids."""
    has_target = "decision_id" in document or "rule_ids" in document
    if kind is RequestKind.OVERRIDE:
        if not has_target:
            raise _shape_error("an override request needs 'decision_id', 'rule_ids' or both")
        if targets:
            raise _shape_error(f"an override request takes no 'targets', got {list(targets)}")
        return
    if has_target or "constraints" in document:
        raise _shape_error(f"a {kind.value} request takes no decision_id, rule_ids or constraints")
    if not targets:
        raise _shape_error(f"a {kind.value} request needs a non-empty 'targets' list")
    if kind is RequestKind.RESET:
        unknown = sorted(set(targets) - RESET_TARGETS)
        if unknown:
            raise _shape_error(
                f"reset targets {unknown} are unknown; expected some of {sorted(RESET_TARGETS)}"
            )


def parse_request(document: object, *, max_reason_chars: int) -> OverrideRequest:
    """Validate the shape of a decoded request and return it with its signed bytes.

    Raises OverrideError with code `invalid_shape`, or `missing_reason` when the reason is
    absent or blank. Signatures are not checked here.
    """
    if not isinstance(document, dict):
        raise _shape_error(f"a request must be a JSON object, got {type(document).__name__}")
    unknown = sorted(str(name) for name in set(document) - BODY_FIELDS - {"signatures"})
    if unknown:
        raise _shape_error(f"unknown field(s) {unknown}")
    missing = sorted(REQUIRED_FIELDS - set(document))
    if missing:
        raise _shape_error(f"missing field(s) {missing}")
    if document["schema"] != REQUEST_SCHEMA or document["version"] != REQUEST_VERSION:
        raise _shape_error(
            f"schema {document['schema']!r} version {document['version']!r} is not supported; "
            f"expected {REQUEST_SCHEMA!r} version {REQUEST_VERSION}"
        )
    try:
        kind = RequestKind(document["kind"])
    except ValueError as error:
        raise _shape_error(
            f"kind {document['kind']!r} must be one of {[k.value for k in RequestKind]}"
        ) from error
    reason = document.get("reason")
    if reason is None or (isinstance(reason, str) and not reason.strip()):
        raise OverrideError("the request has no reason; state why in 'reason'", code="missing_reason")
    if not isinstance(reason, str) or len(reason) > max_reason_chars:
        raise _shape_error(
            f"reason must be a string of at most {max_reason_chars} characters, got {reason!r:.80}"
        )
    issued_at = _time(document, "issued_at")
    expires_at = _time(document, "expires_at")
    if expires_at <= issued_at:
        raise _shape_error(f"expires_at {expires_at!r} must be later than issued_at {issued_at!r}")
    nonce = document["nonce"]
    if not isinstance(nonce, str) or not NONCE_PATTERN.match(nonce):
        raise _shape_error(f"nonce {nonce!r} must be 32 to 128 lower-case hex digits")
    decision_id = _identifier(document, "decision_id") if "decision_id" in document else None
    targets = _string_list(document, "targets", RULE_ID_PATTERN)
    _check_kind_fields(kind, document, targets)
    signatures = _signatures(document)
    if signatures[0].key_id != document["key_id"]:
        raise _shape_error(
            f"signatures[0] is by key {signatures[0].key_id!r}; "
            f"the requester's key {document['key_id']!r} must sign first"
        )
    body = {name: value for name, value in document.items() if name != "signatures"}
    return OverrideRequest(
        kind=kind,
        request_id=_identifier(document, "request_id"),
        operator_id=_identifier(document, "operator_id"),
        key_id=_identifier(document, "key_id"),
        issued_at=issued_at,
        expires_at=expires_at,
        nonce=nonce,
        reason=reason,
        decision_id=decision_id,
        rule_ids=_string_list(document, "rule_ids", RULE_ID_PATTERN),
        constraints=_constraints(document),
        targets=targets,
        signatures=signatures,
        signed_bytes=canonical_bytes(body),
    )
