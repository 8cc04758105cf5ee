"""Operator overrides and the software e-stop, as an extension of the safety node.

Subscribes `/operator/override` (std_msgs/String, a signed JSON request) and
`/operator/e_stop` (std_msgs/Bool), publishes every outcome on `~/override_status`
(std_msgs/String JSON) and offers `~/overrides/reload_keyring` (std_srvs/Trigger).
All checks live in nc_safety.core.overrides; this module only moves messages, calls
NodeServices and records the liability trail through NodeServices.audit.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from rclpy.qos import QoSDurabilityPolicy, QoSHistoryPolicy, QoSProfile, QoSReliabilityPolicy
from std_msgs.msg import Bool, String
from std_srvs.srv import Trigger

from nc_safety.core.canonical import canonical_json, sha256_hex
from nc_safety.core.errors import ConfigError
from nc_safety.core.grant import OverrideGrant
from nc_safety.core.holds import Hold
from nc_safety.core.justification import JsonValue, Reason
from nc_safety.core.overrides import (
    Acceptance,
    NonceStore,
    OverrideError,
    OverrideVerifier,
    RejectCode,
    Rejection,
    RequestKind,
    VerifierLimits,
    load_keyring,
)
from nc_safety.core.risk import RiskEventKind, SupervisorClearance
from nc_safety.core.verdict import ReasonKind, RefutableBy, Severity, Verdict
from nc_safety.ros.extension import NodeServices
from nc_safety.ros.extension_params import ParameterSpec, declare_parameters

SOFTWARE_ESTOP_RULE = "estop.software"
STATUS_SCHEMA = "nc_safety/override_status"
STATUS_VERSION = 1
ESTOP_EXTENSION = "estop"
"""Name of the e-stop board extension, which offers `reset(operator_id)`."""
RISK_EXTENSION = "risk"
"""Name of the risk extension, which offers `clear_lockout(requester, clearance)` and
`record_event(requester, kind, severity=..., detail=..., rule_ids=...)`."""

# Rejections that count against the claimed operator in the risk tracker.
AUTH_FAILURES = frozenset(
    {
        RejectCode.UNKNOWN_KEY,
        RejectCode.KEY_OPERATOR_MISMATCH,
        RejectCode.REVOKED_KEY,
        RejectCode.BAD_SIGNATURE,
        RejectCode.ROLE_NOT_ALLOWED,
        RejectCode.DUPLICATE_SIGNER,
        RejectCode.SECOND_SUPERVISOR_MISSING,
    }
)

OVERRIDE_TOPIC = "/operator/override"
ESTOP_TOPIC = "/operator/e_stop"
STATUS_TOPIC = "~/override_status"
RELOAD_SERVICE = "~/overrides/reload_keyring"

# Requests and stops must not be dropped, so both inputs and the status are reliable.
# A best-effort publisher does not match these subscriptions.
REQUEST_QOS = QoSProfile(
    history=QoSHistoryPolicy.KEEP_LAST,
    depth=10,
    reliability=QoSReliabilityPolicy.RELIABLE,
    durability=QoSDurabilityPolicy.VOLATILE,
)
# Transient local, so a client whose reader matched only after the response was sent
# still receives it; clients pick their response by request id.
STATUS_QOS = QoSProfile(
    history=QoSHistoryPolicy.KEEP_LAST,
    depth=50,
    reliability=QoSReliabilityPolicy.RELIABLE,
    durability=QoSDurabilityPolicy.TRANSIENT_LOCAL,
)


def default_nonce_db_path() -> str:
    ros_home = os.environ.get("ROS_HOME") or str(Path.home() / ".ros")
    return str(Path(ros_home) / "nc_safety" / "override_nonces.sqlite3")


PARAMETERS: dict[str, ParameterSpec] = {
    "keyring_path": ParameterSpec(
        "config/operators.yaml", "Keyring YAML of operator public keys (path, relative to the cwd)."
    ),
    "nonce_db_path": ParameterSpec(
        "", "SQLite file of used nonces; empty means $ROS_HOME/nc_safety/override_nonces.sqlite3."
    ),
    "clock_skew_s": ParameterSpec(
        5.0, "Tolerated lead of a request's issued_at over the node's wall clock, in s.", 0.0, 300.0
    ),
    "max_lifetime_s": ParameterSpec(
        900.0, "Longest allowed override lifetime (expires_at - issued_at), in s.", 1.0, 86400.0
    ),
    "rate_limit_count": ParameterSpec(
        5, "Signed requests allowed per operator within rate_limit_window_s.", 1, 1000
    ),
    "rate_limit_window_s": ParameterSpec(
        60.0, "Sliding window of the per-operator rate limit, in s.", 0.1, 86400.0
    ),
    "max_request_bytes": ParameterSpec(
        16384, "Requests above this size (UTF-8 bytes) are rejected unparsed.", 256, 1048576
    ),
    "max_reason_chars": ParameterSpec(500, "Longest allowed reason, in characters.", 1, 10000),
    "nonce_retention_s": ParameterSpec(
        86400.0, "How long a nonce is kept after its request expired, in s.", 1.0, 3.0e7
    ),
    "watch_period_s": ParameterSpec(
        0.1, "Period of the check that reports ended overrides, in s.", 0.01, 1.0
    ),
}


def software_estop_hold(now: float) -> Hold:
    reason = Reason(
        rule_id=SOFTWARE_ESTOP_RULE,
        kind=ReasonKind.SAFETY,
        verdict=Verdict.REFUSE,
        severity=Severity.CRITICAL,
        message=f"Software e-stop engaged on {ESTOP_TOPIC}: every motion output is zero.",
        consequence="The robot stays stopped until the stop is released.",
        refutable_by=RefutableBy.NONE,
        remedy="Release it with a signed reset request: nc-safety override reset --target estop.software",
    )
    return Hold(hold_id=SOFTWARE_ESTOP_RULE, reason=reason, since=now)


class OverrideBridge:
    """NodeExtension `overrides`: verifies signed requests and engages the software e-stop.

    `find_extension(name)` returns another extension of the node (`estop`, `risk`) or None;
    verified reset and risk-clear requests call them.
    """

    name = "overrides"

    def __init__(
        self, services: NodeServices, find_extension: Callable[[str], object | None] | None = None
    ) -> None:
        self._services = services
        # Until the node passes a lookup, fall back on its `extension(name)` method when it has one.
        fallback = getattr(services, "extension", None)
        self._find_extension: Callable[[str], object | None] = (
            find_extension or fallback or (lambda _name: None)
        )
        node = services.ros_node
        self._node = node
        self._logger = node.get_logger().get_child("overrides")
        self._lock = threading.Lock()
        self._counts = {"accepted": 0, "rejected": 0}
        self._last_outcome: dict[str, JsonValue] = {}
        self._active: dict[str, OverrideGrant] = {}
        self._estop_confirmed_at = -math.inf

        values = self._declare_parameters()
        self._keyring_path = str(values["keyring_path"])
        limits = VerifierLimits(
            max_request_bytes=int(values["max_request_bytes"]),
            max_reason_chars=int(values["max_reason_chars"]),
            clock_skew_s=float(values["clock_skew_s"]),
            max_lifetime_s=float(values["max_lifetime_s"]),
            rate_limit_count=int(values["rate_limit_count"]),
            rate_limit_window_s=float(values["rate_limit_window_s"]),
        )
        nonce_path = str(values["nonce_db_path"]) or default_nonce_db_path()
        try:
            # A malformed keyring is a start-up error that names the bad entries.
            keyring = load_keyring(self._keyring_path)
            self._nonces = NonceStore(nonce_path, retention_s=float(values["nonce_retention_s"]))
        except OverrideError as error:
            problems = [f"keyring {self._keyring_path}: {problem}" for problem in error.problems] or [
                str(error)
            ]
            raise ConfigError(problems, source="overrides configuration") from error
        self._verifier = OverrideVerifier(
            keyring,
            self._nonces,
            refutable_by=services.refutable_by,
            recent_decision=services.recent_decision,
            limits=limits,
            requester_elevated=self._requester_elevated,
        )

        self._status_publisher = node.create_publisher(String, STATUS_TOPIC, STATUS_QOS)
        self._override_subscription = node.create_subscription(
            String, OVERRIDE_TOPIC, self._on_override, REQUEST_QOS
        )
        self._estop_subscription = node.create_subscription(Bool, ESTOP_TOPIC, self._on_estop, REQUEST_QOS)
        self._reload_service = node.create_service(Trigger, RELOAD_SERVICE, self._on_reload)
        self._watch_timer = node.create_timer(float(values["watch_period_s"]), self._watch_grants)
        self._logger.info(
            f"overrides ready: keyring {self._keyring_path} ({len(keyring.keys)} key(s), "
            f"{len(keyring.revoked)} revoked), nonces {nonce_path}, skew {limits.clock_skew_s:.1f} s, "
            f"max lifetime {limits.max_lifetime_s:.1f} s, rate {limits.rate_limit_count} per "
            f"{limits.rate_limit_window_s:.1f} s, size limit {limits.max_request_bytes} bytes"
        )

    def _declare_parameters(self) -> dict[str, Any]:
        return declare_parameters(self._node, "overrides", PARAMETERS)

    # --- inputs -------------------------------------------------------------------------

    def _on_override(self, message: String) -> None:
        raw = message.data
        wall_now = time.time()
        ros_now = self._services.now_s()
        try:
            outcome = self._verifier.verify(raw, wall_now=wall_now, ros_now=ros_now)
        except Exception as error:
            # The verifier returns rejections, so an exception here is a bug: reject the request and log it.
            self._logger.error(f"override request failed with an internal error, rejected: {error!r}")
            self._publish_status({"outcome": "rejected", "code": "internal_error", "message": repr(error)})
            return
        if isinstance(outcome, Rejection):
            self._rejected(outcome, raw)
            return
        try:
            self._accepted(outcome)
        except Exception as error:
            self._logger.error(
                f"verified {outcome.request.kind.value} request {outcome.request.request_id} "
                f"could not be applied: {error!r}"
            )
            self._publish_status(
                {
                    "outcome": "failed",
                    "code": "apply_failed",
                    "message": f"verified but not applied: {error!r}",
                    "request_id": outcome.request.request_id,
                    "operator_id": outcome.request.operator_id,
                    "kind": outcome.request.kind.value,
                }
            )

    def _on_estop(self, message: Bool) -> None:
        now = self._services.now_s()
        if not message.data:
            self._publish_status(
                {
                    "outcome": "rejected",
                    "code": "release_needs_signed_request",
                    "message": "false on /operator/e_stop does not release the stop; send a signed reset "
                    "request: nc-safety override reset --target estop.software",
                    "kind": "e_stop",
                }
            )
            return
        if any(hold.hold_id == SOFTWARE_ESTOP_RULE for hold in self._services.holds()):
            # Stop publishers often repeat at 10 Hz or more, so the confirmation is sent once per second.
            if time.monotonic() - self._estop_confirmed_at >= 1.0:
                self._estop_confirmed_at = time.monotonic()
                self._publish_status(
                    {
                        "outcome": "engaged",
                        "code": "estop_already_engaged",
                        "message": "software e-stop is already engaged; motion output stays zero",
                        "kind": "e_stop",
                    }
                )
            return
        self._estop_confirmed_at = time.monotonic()
        self._services.set_hold(software_estop_hold(now))
        self._logger.warning(
            f"[{SOFTWARE_ESTOP_RULE}]: software e-stop engaged; motion output is zero until reset"
        )
        self._services.audit("estop.software.engaged", {"rule_id": SOFTWARE_ESTOP_RULE, "stamp": now})
        self._publish_status(
            {
                "outcome": "engaged",
                "code": "estop_engaged",
                "message": "software e-stop engaged; motion output is zero until a signed reset",
                "kind": "e_stop",
            }
        )

    def _on_reload(self, _request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        try:
            keyring = load_keyring(self._keyring_path)
        except OverrideError as error:
            self._logger.error(f"keyring reload failed, keeping the previous keyring: {error}")
            response.success = False
            response.message = f"keyring reload failed, previous keyring kept: {error}"
            return response
        self._verifier.replace_keyring(keyring)
        self._services.audit(
            "override.keyring_reloaded",
            {"path": self._keyring_path, "keys": sorted(keyring.keys), "revoked": sorted(keyring.revoked)},
        )
        self._logger.info(f"keyring reloaded: {len(keyring.keys)} key(s), {len(keyring.revoked)} revoked")
        response.success = True
        response.message = f"{len(keyring.keys)} key(s), {len(keyring.revoked)} revoked"
        return response

    # --- outcomes -----------------------------------------------------------------------

    def _rejected(self, rejection: Rejection, raw: str) -> None:
        with self._lock:
            self._counts["rejected"] += 1
        record = rejection.to_json()
        self._logger.warning(
            f"override request {rejection.request_id} from {rejection.operator_id} rejected "
            f"({rejection.code.value}): {rejection.message}",
            throttle_duration_sec=1.0,
        )
        # The raw text can be large and attacker-chosen, so the audit keeps its size and hash.
        audit_record = dict(record)
        audit_record["request_bytes"] = len(raw.encode("utf-8", errors="replace"))
        audit_record["request_sha256"] = sha256_hex(raw)
        self._services.audit("override.rejected", audit_record)
        self._record_risk(rejection)
        self._publish_status(record)

    def _requester_elevated(self, requester: str) -> bool:
        """Whether the risk extension, if it runs, rates `requester` as elevated."""
        check = getattr(self._find_extension(RISK_EXTENSION), "is_elevated", None)
        return bool(check(requester)) if check is not None else False

    def _record_risk(self, rejection: Rejection) -> None:
        """Report failed authentication and hard-rule attempts to the risk extension, if it runs."""
        if rejection.code is RejectCode.HARD_RULE:
            kind = RiskEventKind.HARD_RULE_OVERRIDE
        elif rejection.code in AUTH_FAILURES:
            kind = RiskEventKind.OVERRIDE_AUTH_FAILED
        else:
            return
        risk = self._find_extension(RISK_EXTENSION)
        record_event = getattr(risk, "record_event", None)
        if record_event is None:
            return
        requester = rejection.operator_id or "unidentified_operator"
        try:
            record_event(requester, kind, severity=Severity.HIGH, detail=rejection.message)
        except Exception as error:
            self._logger.error(
                f"risk.record_event for {requester} ({kind.value}) failed: {error!r}",
                throttle_duration_sec=10.0,
            )

    def _accepted(self, acceptance: Acceptance) -> None:
        request = acceptance.request
        with self._lock:
            self._counts["accepted"] += 1
        record = acceptance.to_json()
        if request.kind is RequestKind.OVERRIDE:
            grant = acceptance.grant
            if grant is None:
                raise OverrideError(f"accepted override {request.request_id} carries no grant")
            self._services.add_grant(grant)
            with self._lock:
                self._active[grant.override_id] = grant
            self._services.audit("override.accepted", self._liability_record(acceptance))
            self._logger.info(acceptance.summary())
        else:
            results = self._apply(acceptance)
            record["results"] = dict(results)
            failed = sorted(target for target, result in results.items() if not result.startswith("ok"))
            if failed:
                record["outcome"] = "failed"
                record["code"] = "target_unavailable"
                record["message"] = f"{request.kind.value} verified, but not done for {failed}: " + "; ".join(
                    f"{target}: {results[target]}" for target in failed
                )
            self._services.audit(
                f"override.{request.kind.value}",
                {**self._liability_record(acceptance), "results": dict(results)},
            )
            self._logger.info(f"{acceptance.summary()}: {canonical_json(results)}")
        self._publish_status(record)

    def _apply(self, acceptance: Acceptance) -> dict[str, str]:
        """Carry out a verified reset, risk clear or revoke; return a result per target."""
        request = acceptance.request
        results: dict[str, str] = {}
        for target in request.targets:
            if request.kind is RequestKind.REVOKE:
                results[target] = "ok: revoked" if self._services.revoke_grant(target) else "not active"
            elif request.kind is RequestKind.RISK_CLEAR:
                clearance = SupervisorClearance(
                    supervisor_id=request.operator_id, request_id=request.request_id, reason=request.reason
                )
                results[target] = self._call_extension(RISK_EXTENSION, "clear_lockout", target, clearance)
            elif target == SOFTWARE_ESTOP_RULE:
                engaged = any(hold.hold_id == SOFTWARE_ESTOP_RULE for hold in self._services.holds())
                self._services.clear_hold(SOFTWARE_ESTOP_RULE)
                results[target] = "ok: released" if engaged else "ok: was not engaged"
            else:
                results[target] = self._call_extension(ESTOP_EXTENSION, "reset", request.operator_id)
        return results

    def _call_extension(self, name: str, method: str, *args: object) -> str:
        extension = self._find_extension(name)
        function = getattr(extension, method, None) if extension is not None else None
        if function is None:
            return f"extension {name!r} with {method}() is not running on this node"
        try:
            result = function(*args)
        except Exception as error:
            self._logger.error(f"{name}.{method}{args} failed: {error!r}")
            return f"{name}.{method} failed: {error}"
        if result is False:
            return f"{name}.{method} returned False"
        return f"ok: {name}.{method} done"

    def _liability_record(self, acceptance: Acceptance) -> dict[str, JsonValue]:
        """Who took responsibility, for what, and which justification they were shown."""
        request = acceptance.request
        record: dict[str, JsonValue] = {
            "request_id": request.request_id,
            "kind": request.kind.value,
            "operator_id": request.operator_id,
            "signers": [
                {"operator_id": key.operator_id, "role": key.role.value, "key_id": key.key_id}
                for key in acceptance.signers
            ],
            "reason": request.reason,
            "request": request.to_json(),
            "policy_hash": self._services.policy_hash,
            "wall_time": time.time(),
        }
        if acceptance.grant is not None:
            grant = acceptance.grant
            record["rule_ids"] = sorted(grant.rule_ids)
            record["not_waived"] = list(acceptance.not_waived)
            record["issued_at"] = grant.issued_at
            record["expires_at"] = grant.expires_at
            record["refutable_by"] = {
                rule_id: (lookup.value if (lookup := self._services.refutable_by(rule_id)) else None)
                for rule_id in sorted(grant.rule_ids)
            }
        record["justification_shown"] = acceptance.decision.to_json() if acceptance.decision else None
        return record

    def _watch_grants(self) -> None:
        """Report overrides that expired or were revoked, once each, with the time they ended."""
        current = {grant.override_id for grant in self._services.grants()}
        now = self._services.now_s()
        with self._lock:
            ended = [grant for override_id, grant in self._active.items() if override_id not in current]
            for grant in ended:
                del self._active[grant.override_id]
        for grant in ended:
            cause = "expired" if now >= grant.expires_at else "revoked"
            record: dict[str, JsonValue] = {
                "outcome": "ended",
                "code": cause,
                "message": f"override {grant.override_id} by {grant.operator_id} ended ({cause}); "
                f"{', '.join(sorted(grant.rule_ids))} apply again",
                "request_id": grant.override_id,
                "operator_id": grant.operator_id,
                "kind": RequestKind.OVERRIDE.value,
                "rule_ids": sorted(grant.rule_ids),
                "ended_at": now,
                "expires_at": grant.expires_at,
            }
            self._services.audit("override.ended", record)
            self._logger.info(str(record["message"]))
            self._publish_status(record)

    def _publish_status(self, record: dict[str, JsonValue]) -> None:
        message = {
            "schema": STATUS_SCHEMA,
            "version": STATUS_VERSION,
            "stamp": self._services.now_s(),
            "wall_time": time.time(),
            **record,
        }
        with self._lock:
            self._last_outcome = message
        self._status_publisher.publish(String(data=canonical_json(message)))

    # --- NodeExtension ------------------------------------------------------------------

    def on_decision(self, decision: Any) -> None:
        """Nothing to do per decision: the node applies grants itself."""

    def diagnostics(self) -> list[DiagnosticStatus]:
        keyring = self._verifier.keyring
        grants = self._services.grants()
        engaged = any(hold.hold_id == SOFTWARE_ESTOP_RULE for hold in self._services.holds())
        with self._lock:
            counts = dict(self._counts)
            last_code = str(self._last_outcome.get("code", ""))
        level = DiagnosticStatus.WARN if engaged or grants else DiagnosticStatus.OK
        summary = f"{len(grants)} active override(s)"
        if engaged:
            summary += ", software e-stop engaged"
        values = {
            "active_overrides": str(len(grants)),
            "software_estop": str(engaged).lower(),
            "keyring_keys": str(len(keyring.keys)),
            "keyring_revoked": str(len(keyring.revoked)),
            "accepted": str(counts["accepted"]),
            "rejected": str(counts["rejected"]),
            "last_code": last_code,
        }
        return [
            DiagnosticStatus(
                level=level,
                name="nc_safety: overrides",
                message=summary,
                hardware_id="",
                values=[KeyValue(key=key, value=value) for key, value in values.items()],
            )
        ]

    def state(self) -> dict[str, Any]:
        now = self._services.now_s()
        engaged = any(hold.hold_id == SOFTWARE_ESTOP_RULE for hold in self._services.holds())
        with self._lock:
            counts = dict(self._counts)
        return {
            "software_estop": engaged,
            "active": [
                {
                    "override_id": grant.override_id,
                    "operator_id": grant.operator_id,
                    "role": grant.role,
                    "rule_ids": sorted(grant.rule_ids),
                    "reason": grant.reason,
                    "expires_at": grant.expires_at,
                    "remaining_s": max(0.0, grant.expires_at - now),
                }
                for grant in self._services.grants()
            ],
            "accepted": counts["accepted"],
            "rejected": counts["rejected"],
        }

    def shutdown(self) -> None:
        node = self._node
        node.destroy_timer(self._watch_timer)
        node.destroy_subscription(self._override_subscription)
        node.destroy_subscription(self._estop_subscription)
        node.destroy_service(self._reload_service)
        node.destroy_publisher(self._status_publisher)
        self._nonces.close()
