"""Verification of signed operator requests, in a fixed order with one reject code per check.

Order (the first failing check decides the code):

 1. size limit, before any parsing                  too_large
 2. JSON syntax, then shape                         malformed_json, invalid_shape, missing_reason
 3. every signing key is in the keyring             unknown_key, key_operator_mismatch
 4. no signing key is revoked                       revoked_key
 5. every signature verifies                        bad_signature
 6. time window, wall clock                         not_yet_valid, expired, lifetime_too_long
 7. nonce never used before (persisted)             nonce_reused
 8. rate limit per operator                         rate_limited
 9. what the request targets                        unknown_decision, nothing_to_override,
                                                    rule_not_in_decision, unknown_rule, hard_rule
10. role allowed by the rules' refutable_by         role_not_allowed, duplicate_signer,
                                                    second_supervisor_missing

A request that reaches step 7 uses up its nonce there, even if a later check rejects it,
so a signed request can be tried once only.
"""

from __future__ import annotations

import json
import math
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from nc_safety.core.grant import OverrideGrant
from nc_safety.core.justification import Decision, JsonValue
from nc_safety.core.overrides.errors import OverrideError
from nc_safety.core.overrides.keys import Keyring, OperatorKey, Role
from nc_safety.core.overrides.nonces import NonceStore
from nc_safety.core.overrides.request import OverrideRequest, RequestKind, parse_request
from nc_safety.core.verdict import RefutableBy


class RejectCode(str, Enum):
    """Reason code of a rejected request, published on `~/override_status` and audited."""

    TOO_LARGE = "too_large"
    MALFORMED_JSON = "malformed_json"
    INVALID_SHAPE = "invalid_shape"
    MISSING_REASON = "missing_reason"
    UNKNOWN_KEY = "unknown_key"
    KEY_OPERATOR_MISMATCH = "key_operator_mismatch"
    """The key exists but belongs to another operator than the request's `operator_id`."""
    REVOKED_KEY = "revoked_key"
    BAD_SIGNATURE = "bad_signature"
    NOT_YET_VALID = "not_yet_valid"
    EXPIRED = "expired"
    LIFETIME_TOO_LONG = "lifetime_too_long"
    NONCE_REUSED = "nonce_reused"
    RATE_LIMITED = "rate_limited"
    UNKNOWN_DECISION = "unknown_decision"
    """The decision id is not among the node's recent decisions (wrong id or too old)."""
    NOTHING_TO_OVERRIDE = "nothing_to_override"
    """The named decision has no reason that fired."""
    RULE_NOT_IN_DECISION = "rule_not_in_decision"
    UNKNOWN_RULE = "unknown_rule"
    HARD_RULE = "hard_rule"
    """A targeted rule has refutable_by `none`: no override lifts it."""
    ROLE_NOT_ALLOWED = "role_not_allowed"
    DUPLICATE_SIGNER = "duplicate_signer"
    SECOND_SUPERVISOR_MISSING = "second_supervisor_missing"
    NONCE_STORE_FAILED = "nonce_store_failed"
    """The nonce could not be recorded, so the request is rejected (fail-safe)."""


@dataclass(frozen=True, slots=True)
class VerifierLimits:
    """Limits of the verifier; every value is checked when the object is created."""

    max_request_bytes: int = 16384
    """Requests longer than this (UTF-8 bytes) are rejected before parsing."""
    max_reason_chars: int = 500
    clock_skew_s: float = 5.0
    """How far `issued_at` may lie in the future of the node's wall clock, in seconds."""
    max_lifetime_s: float = 900.0
    """Longest allowed `expires_at - issued_at`, in seconds."""
    rate_limit_count: int = 5
    """Authenticated requests allowed per operator within `rate_limit_window_s`."""
    rate_limit_window_s: float = 60.0

    def __post_init__(self) -> None:
        problems: list[str] = []
        if not 256 <= self.max_request_bytes <= 1_048_576:
            problems.append(f"max_request_bytes {self.max_request_bytes!r} must be in [256, 1048576] bytes")
        if not 1 <= self.max_reason_chars <= 10_000:
            problems.append(f"max_reason_chars {self.max_reason_chars!r} must be in [1, 10000]")
        if not (math.isfinite(self.clock_skew_s) and 0.0 <= self.clock_skew_s <= 300.0):
            problems.append(f"clock_skew_s {self.clock_skew_s!r} must be in [0, 300] s")
        if not (math.isfinite(self.max_lifetime_s) and 1.0 <= self.max_lifetime_s <= 86400.0):
            problems.append(f"max_lifetime_s {self.max_lifetime_s!r} must be in [1, 86400] s")
        if not 1 <= self.rate_limit_count <= 1000:
            problems.append(f"rate_limit_count {self.rate_limit_count!r} must be in [1, 1000]")
        if not (math.isfinite(self.rate_limit_window_s) and 0.1 <= self.rate_limit_window_s <= 86400.0):
            problems.append(f"rate_limit_window_s {self.rate_limit_window_s!r} must be in [0.1, 86400] s")
        if problems:
            raise OverrideError("invalid override verifier limits", problems=problems)


@dataclass(frozen=True, slots=True)
class Rejection:
    """A rejected request, with what could be read of it before the failing check."""

    code: RejectCode
    message: str
    """One sentence naming the value that failed and what to do."""
    request_id: str | None = None
    operator_id: str | None = None
    kind: RequestKind | None = None
    authenticated: bool = False
    """Whether the signatures had verified before the rejection."""

    def to_json(self) -> dict[str, JsonValue]:
        return {
            "outcome": "rejected",
            "code": self.code.value,
            "message": self.message,
            "request_id": self.request_id,
            "operator_id": self.operator_id,
            "kind": self.kind.value if self.kind else None,
            "authenticated": self.authenticated,
        }


@dataclass(frozen=True, slots=True)
class Acceptance:
    """A request that passed every check."""

    request: OverrideRequest
    signers: tuple[OperatorKey, ...]
    """Keys whose signatures verified, the requester's first."""
    grant: OverrideGrant | None = None
    """The grant to activate, for override requests."""
    not_waived: tuple[str, ...] = ()
    """Hard rules of the named decision that the override leaves in force."""
    decision: Decision | None = None
    """The refused decision the operator was shown, when the request named one."""

    def to_json(self) -> dict[str, JsonValue]:
        record: dict[str, JsonValue] = {
            "outcome": "accepted",
            "code": "accepted",
            "message": self.summary(),
            "request_id": self.request.request_id,
            "operator_id": self.request.operator_id,
            "kind": self.request.kind.value,
            "authenticated": True,
            "signers": [key.operator_id for key in self.signers],
        }
        if self.grant is not None:
            record["rule_ids"] = sorted(self.grant.rule_ids)
            record["expires_at"] = self.grant.expires_at
            record["not_waived"] = list(self.not_waived)
        else:
            record["targets"] = list(self.request.targets)
        return record

    def summary(self) -> str:
        request = self.request
        if self.grant is not None:
            rules = ", ".join(sorted(self.grant.rule_ids))
            lifetime = self.grant.expires_at - self.grant.issued_at
            return (
                f"override {request.request_id} by {request.operator_id} waives {rules} for {lifetime:.1f} s"
            )
        return f"{request.kind.value} of {', '.join(request.targets)} by {request.operator_id} verified"


Outcome = Acceptance | Rejection
RefutableByLookup = Callable[[str], RefutableBy | None]
DecisionLookup = Callable[[str], Decision | None]

_ROLE_RANK = {Role.OPERATOR: 0, Role.SUPERVISOR: 1}


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    names = [name for name, _value in pairs]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"duplicate field(s) {duplicates}")
    return dict(pairs)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def decode_json(raw: bytes) -> Any:
    """Decode strict JSON: UTF-8, no NaN or Infinity, no field twice. Raises ValueError."""
    return json.loads(
        raw.decode("utf-8"), object_pairs_hook=_reject_duplicate_keys, parse_constant=_reject_constant
    )


class _Rejected(Exception):
    """Internal: carries a rejection out of a check."""

    def __init__(self, rejection: Rejection) -> None:
        super().__init__(rejection.message)
        self.rejection = rejection


class OverrideVerifier:
    """Verify signed requests against a keyring, a nonce store and the node's policy.

    `refutable_by` and `recent_decision` look up the current policy and the node's recent
    decisions. `verify` is thread-safe; the keyring can be swapped with `replace_keyring`.
    """

    def __init__(
        self,
        keyring: Keyring,
        nonces: NonceStore,
        *,
        refutable_by: RefutableByLookup,
        recent_decision: DecisionLookup,
        limits: VerifierLimits | None = None,
        requester_elevated: Callable[[str], bool] | None = None,
    ) -> None:
        self._keyring = keyring
        # A requester with elevated security risk may have its refused commands overridden
        # only by a supervisor, whatever the rule's own refutable_by says.
        self._requester_elevated = requester_elevated
        self.nonces = nonces
        self.limits = limits or VerifierLimits()
        self._refutable_by = refutable_by
        self._recent_decision = recent_decision
        self._lock = threading.Lock()
        self._recent_requests: dict[str, deque[float]] = {}

    @property
    def keyring(self) -> Keyring:
        return self._keyring

    def replace_keyring(self, keyring: Keyring) -> None:
        with self._lock:
            self._keyring = keyring

    def verify(self, raw: bytes | str, *, wall_now: float, ros_now: float) -> Outcome:
        """Run every check in order; return an Acceptance or the first Rejection.

        `wall_now` (seconds since the Unix epoch) is compared with the request's time window;
        `ros_now` is the node's ROS time, in which the grant's window is expressed.
        """
        with self._lock:
            try:
                return self._verify(raw, wall_now=wall_now, ros_now=ros_now)
            except _Rejected as rejected:
                return rejected.rejection

    def _verify(self, raw: bytes | str, *, wall_now: float, ros_now: float) -> Acceptance:
        data = raw.encode("utf-8") if isinstance(raw, str) else raw
        limit = self.limits.max_request_bytes
        if len(data) > limit:
            raise _Rejected(
                Rejection(
                    RejectCode.TOO_LARGE,
                    f"request is {len(data)} bytes, above the limit of {limit} bytes; shorten the reason",
                )
            )
        request = self._parse(data)
        signers = self._check_keys(request)
        self._check_signatures(request, signers)
        self._check_window(request, wall_now)
        self._check_nonce(request, wall_now)
        self._check_rate(request, wall_now)
        if request.kind is RequestKind.OVERRIDE:
            return self._override(request, signers, wall_now=wall_now, ros_now=ros_now)
        required = RefutableBy.SUPERVISOR if request.kind is RequestKind.RISK_CLEAR else RefutableBy.OPERATOR
        self._check_role(request, signers, required)
        return Acceptance(request=request, signers=signers)

    def _reject(
        self, code: RejectCode, message: str, request: OverrideRequest, *, authenticated: bool
    ) -> _Rejected:
        return _Rejected(
            Rejection(
                code,
                message,
                request_id=request.request_id,
                operator_id=request.operator_id,
                kind=request.kind,
                authenticated=authenticated,
            )
        )

    def _parse(self, data: bytes) -> OverrideRequest:
        try:
            document = decode_json(data)
        except (UnicodeDecodeError, ValueError) as error:
            raise _Rejected(
                Rejection(
                    RejectCode.MALFORMED_JSON, f"request is not valid JSON: {error}; send one JSON object"
                )
            ) from error
        try:
            return parse_request(document, max_reason_chars=self.limits.max_reason_chars)
        except OverrideError as error:
            code = RejectCode(error.code) if error.code else RejectCode.INVALID_SHAPE
            request_id = document.get("request_id") if isinstance(document, dict) else None
            operator_id = document.get("operator_id") if isinstance(document, dict) else None
            raise _Rejected(
                Rejection(
                    code,
                    f"invalid request: {error}",
                    request_id=request_id if isinstance(request_id, str) else None,
                    operator_id=operator_id if isinstance(operator_id, str) else None,
                )
            ) from error

    def _check_keys(self, request: OverrideRequest) -> tuple[OperatorKey, ...]:
        signers: list[OperatorKey] = []
        for signature in request.signatures:
            key = self._keyring.get(signature.key_id)
            if key is None:
                raise self._reject(
                    RejectCode.UNKNOWN_KEY,
                    f"key {signature.key_id!r} is not in the keyring {self._keyring.source}; "
                    "add its public key line or sign with a listed key",
                    request,
                    authenticated=False,
                )
            signers.append(key)
        if signers[0].operator_id != request.operator_id:
            raise self._reject(
                RejectCode.KEY_OPERATOR_MISMATCH,
                f"key {signers[0].key_id!r} belongs to operator {signers[0].operator_id!r}, "
                f"not to {request.operator_id!r}",
                request,
                authenticated=False,
            )
        for key in signers:
            if self._keyring.is_revoked(key.key_id):
                raise self._reject(
                    RejectCode.REVOKED_KEY,
                    f"key {key.key_id!r} of operator {key.operator_id!r} is revoked; "
                    "create a new key with nc-safety keygen",
                    request,
                    authenticated=False,
                )
        return tuple(signers)

    def _check_signatures(self, request: OverrideRequest, signers: tuple[OperatorKey, ...]) -> None:
        for index, (key, signature) in enumerate(zip(signers, request.signatures, strict=True)):
            if not key.verify(request.signed_bytes, signature.signature):
                raise self._reject(
                    RejectCode.BAD_SIGNATURE,
                    f"signatures[{index}] by key {key.key_id!r} does not verify over the request; "
                    "the request was changed after signing or signed with another key",
                    request,
                    authenticated=False,
                )

    def _check_window(self, request: OverrideRequest, wall_now: float) -> None:
        limits = self.limits
        if request.issued_at > wall_now + limits.clock_skew_s:
            raise self._reject(
                RejectCode.NOT_YET_VALID,
                f"issued_at {request.issued_at:.3f} is {request.issued_at - wall_now:.3f} s ahead of "
                f"the node's clock, beyond the {limits.clock_skew_s:.3f} s skew tolerance; "
                "check the signer's clock",
                request,
                authenticated=True,
            )
        if request.expires_at <= wall_now:
            raise self._reject(
                RejectCode.EXPIRED,
                f"expires_at {request.expires_at:.3f} passed {wall_now - request.expires_at:.3f} s ago; "
                "sign a new request",
                request,
                authenticated=True,
            )
        lifetime = request.expires_at - request.issued_at
        if lifetime > limits.max_lifetime_s:
            raise self._reject(
                RejectCode.LIFETIME_TOO_LONG,
                f"lifetime {lifetime:.3f} s exceeds the maximum of {limits.max_lifetime_s:.3f} s; "
                "request a shorter duration",
                request,
                authenticated=True,
            )

    def _check_nonce(self, request: OverrideRequest, wall_now: float) -> None:
        try:
            fresh = self.nonces.consume(
                request.nonce, key_id=request.key_id, expires_at=request.expires_at, now=wall_now
            )
        except Exception as error:
            # Any storage failure rejects: without a recorded nonce the request could be replayed.
            raise self._reject(
                RejectCode.NONCE_STORE_FAILED,
                f"nonce {request.nonce} could not be recorded in {self.nonces.path}: {error}",
                request,
                authenticated=True,
            ) from error
        if not fresh:
            raise self._reject(
                RejectCode.NONCE_REUSED,
                f"nonce {request.nonce} was used before; this is a replay, sign a new request",
                request,
                authenticated=True,
            )

    def _check_rate(self, request: OverrideRequest, wall_now: float) -> None:
        window = self._recent_requests.setdefault(request.operator_id, deque())
        while window and window[0] <= wall_now - self.limits.rate_limit_window_s:
            window.popleft()
        if len(window) >= self.limits.rate_limit_count:
            raise self._reject(
                RejectCode.RATE_LIMITED,
                f"operator {request.operator_id!r} sent {len(window)} requests in the last "
                f"{self.limits.rate_limit_window_s:.1f} s (limit {self.limits.rate_limit_count}); "
                "wait and retry",
                request,
                authenticated=True,
            )
        window.append(wall_now)

    def _resolve_rules(
        self, request: OverrideRequest
    ) -> tuple[dict[str, RefutableBy], tuple[str, ...], Decision | None]:
        """Return the rules to waive, the hard rules left in force and the named decision."""
        decision: Decision | None = None
        candidates: tuple[str, ...] = request.rule_ids
        not_waived: list[str] = []
        if request.decision_id is not None:
            decision = self._recent_decision(request.decision_id)
            if decision is None:
                raise self._reject(
                    RejectCode.UNKNOWN_DECISION,
                    f"decision {request.decision_id!r} is not among the node's recent decisions; "
                    "pick a refusal from ~/refusals that is still listed",
                    request,
                    authenticated=True,
                )
            fired = decision.rule_ids
            if not fired:
                raise self._reject(
                    RejectCode.NOTHING_TO_OVERRIDE,
                    f"decision {request.decision_id!r} ({decision.verdict.value}) has no reason to override",
                    request,
                    authenticated=True,
                )
            outside = sorted(set(request.rule_ids) - set(fired))
            if outside:
                raise self._reject(
                    RejectCode.RULE_NOT_IN_DECISION,
                    f"rule(s) {outside} did not fire in decision {request.decision_id!r}, "
                    f"which fired {list(fired)}",
                    request,
                    authenticated=True,
                )
            if not request.rule_ids:
                candidates = fired
        rules: dict[str, RefutableBy] = {}
        for rule_id in candidates:
            refutable_by = self._refutable_by(rule_id)
            if refutable_by is None:
                raise self._reject(
                    RejectCode.UNKNOWN_RULE,
                    f"rule {rule_id!r} is not in the node's policy; check the rule id",
                    request,
                    authenticated=True,
                )
            if refutable_by is RefutableBy.NONE:
                # A hard rule named in rule_ids rejects the request. A hard rule that only fired
                # in the named decision stays in force and is listed in not_waived.
                if request.rule_ids:
                    raise self._reject(
                        RejectCode.HARD_RULE,
                        f"rule {rule_id!r} is a hard rule (refutable_by none); no override lifts it",
                        request,
                        authenticated=True,
                    )
                not_waived.append(rule_id)
                continue
            rules[rule_id] = refutable_by
        if not rules:
            raise self._reject(
                RejectCode.HARD_RULE,
                f"every rule of decision {request.decision_id!r} is a hard rule ({not_waived}); "
                "no override lifts them",
                request,
                authenticated=True,
            )
        return rules, tuple(not_waived), decision

    def _check_role(
        self, request: OverrideRequest, signers: tuple[OperatorKey, ...], required: RefutableBy
    ) -> None:
        requester = signers[0]
        if required is RefutableBy.OPERATOR:
            return
        if requester.role is not Role.SUPERVISOR:
            raise self._reject(
                RejectCode.ROLE_NOT_ALLOWED,
                f"operator {requester.operator_id!r} has role {requester.role.value!r}, but this needs "
                f"{required.value}; ask a supervisor",
                request,
                authenticated=True,
            )
        if required is RefutableBy.SUPERVISOR:
            return
        operators = [key.operator_id for key in signers]
        supervisors = {key.operator_id for key in signers if key.role is Role.SUPERVISOR}
        if len(supervisors) >= 2:
            return
        if len(set(operators)) < len(operators):
            raise self._reject(
                RejectCode.DUPLICATE_SIGNER,
                f"the request is signed {len(operators)} times but only by {sorted(set(operators))}; "
                "two_supervisors needs a second, different supervisor",
                request,
                authenticated=True,
            )
        raise self._reject(
            RejectCode.SECOND_SUPERVISOR_MISSING,
            f"two_supervisors needs signatures from two different supervisors, got {sorted(supervisors)}; "
            "have a second supervisor co-sign (nc-safety override cosign)",
            request,
            authenticated=True,
        )

    def _override(
        self, request: OverrideRequest, signers: tuple[OperatorKey, ...], *, wall_now: float, ros_now: float
    ) -> Acceptance:
        rules, not_waived, decision = self._resolve_rules(request)
        required = max(rules.values(), key=_REFUTABLE_RANK.__getitem__)
        if (
            decision is not None
            and required is RefutableBy.OPERATOR
            and self._requester_elevated is not None
            and self._requester_elevated(decision.requester)
        ):
            required = RefutableBy.SUPERVISOR
        self._check_role(request, signers, required)
        # The grant runs on ROS time (sim time when the node uses it), for as long as the
        # signed wall-clock window has left.
        remaining = request.expires_at - wall_now
        grant = OverrideGrant(
            override_id=request.request_id,
            rule_ids=frozenset(rules),
            operator_id=request.operator_id,
            role=signers[0].role.value,
            reason=request.reason,
            issued_at=ros_now,
            expires_at=ros_now + remaining,
            max_linear_speed=request.constraints.max_linear_speed,
            max_angular_speed=request.constraints.max_angular_speed,
            decision_id=request.decision_id,
        )
        return Acceptance(
            request=request, signers=signers, grant=grant, not_waived=not_waived, decision=decision
        )


_REFUTABLE_RANK = {
    RefutableBy.NONE: 3,
    RefutableBy.OPERATOR: 0,
    RefutableBy.SUPERVISOR: 1,
    RefutableBy.TWO_SUPERVISORS: 2,
}
