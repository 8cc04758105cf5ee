"""Per-requester risk tracking as an extension of the safety node.

Identity: a directive's `requester` field; for motion, the requester the node puts in the
decision (`node:<name>` when exactly one node publishes `cmd_vel_in`, otherwise
`topic:cmd_vel_in`). rclpy 7.1.6's MessageInfo carries no publisher GID, so a single
motion message cannot be attributed to its publisher, and with several publishers a
lockout stops them all.

Motion decisions count once per refusal episode (when the verdict or rules change into a
refusal by a `motion.*` rule), not once per message. Every other decision counts as one
request. A lockout of a motion requester sets a hold with rule `risk.locked_out` and verdict
`unauthorized`; directive checkers ask `is_locked_out(requester)` themselves. Scores and
events are published on `~/risk` (std_msgs/String JSON, transient local), added to
`/diagnostics` and recorded in the audit as `risk` records.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from typing import Any

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import String

from nc_safety.core.errors import ConfigError
from nc_safety.core.holds import Hold
from nc_safety.core.justification import Decision, Evidence, Reason
from nc_safety.core.risk import (
    DEFAULT_WEIGHTS,
    LOCKED_OUT_RULE,
    REFUSING_VERDICTS,
    RiskConfig,
    RiskError,
    RiskEventKind,
    RiskLevel,
    RiskState,
    RiskTracker,
    RiskUpdate,
    SupervisorClearance,
)
from nc_safety.core.verdict import ReasonKind, RefutableBy, Severity, Verdict
from nc_safety.ros.extension import NodeServices
from nc_safety.ros.extension_params import ParameterSpec, declare_parameters, default_ros_home_path

MOTION_KINDS = ("twist", "trajectory")
RISK_TOPIC = "~/risk"
RISK_SCHEMA = "nc_safety/risk"
STORE_FAILED_RULE = "risk.store_failed"
LOG_THROTTLE_S = 5.0
_PENDING_PLANS = 1024

RISK_PARAMETERS: dict[str, ParameterSpec] = {
    "path": ParameterSpec("", "Risk SQLite file; empty means $ROS_HOME/nc_safety/risk.sqlite3."),
    "half_life_s": ParameterSpec(600.0, "Time for a score to halve without new events, in s.", 1.0, 3.0e7),
    "elevated_threshold": ParameterSpec(4.0, "Score from which overrides need a supervisor.", 0.01, 1.0e6),
    "locked_out_threshold": ParameterSpec(
        10.0, "Score at which a requester is locked out until a supervisor clears it.", 0.02, 1.0e6
    ),
    "flood_window_s": ParameterSpec(10.0, "Window for counting a requester's requests, in s.", 0.1, 86400.0),
    "flood_max_requests": ParameterSpec(
        30, "Requests allowed per window before a flood event.", 1, 1_000_000
    ),
    "fingerprint_memory_s": ParameterSpec(
        3600.0, "How long a refused plan's fingerprint is remembered, in s.", 1.0, 3.0e7
    ),
    "track_motion": ParameterSpec(True, "Count refusal episodes on cmd_vel_in against its requester."),
    "publish_period_s": ParameterSpec(1.0, "Period of the ~/risk publication, in s.", 0.05, 3600.0),
    **{
        f"weight.{kind.value}": ParameterSpec(
            DEFAULT_WEIGHTS[kind], f"Score added by one {kind.value} event of medium severity.", 0.0, 1.0e6
        )
        for kind in RiskEventKind
    },
}


def _max_severity(reasons: Iterable[Reason]) -> Severity:
    return max(
        (reason.severity for reason in reasons), key=lambda severity: severity.rank, default=Severity.MEDIUM
    )


class RiskBridge:
    """NodeExtension for risk tracking; other bridges call its public methods (thread-safe)."""

    name = "risk"

    def __init__(self, services: NodeServices) -> None:
        self._services = services
        node = services.ros_node
        self._logger = node.get_logger()
        values = declare_parameters(node, "risk", RISK_PARAMETERS)
        config = RiskConfig(
            half_life_s=float(values["half_life_s"]),
            elevated_threshold=float(values["elevated_threshold"]),
            locked_out_threshold=float(values["locked_out_threshold"]),
            weights={kind: float(values[f"weight.{kind.value}"]) for kind in RiskEventKind},
            flood_window_s=float(values["flood_window_s"]),
            flood_max_requests=int(values["flood_max_requests"]),
            fingerprint_memory_s=float(values["fingerprint_memory_s"]),
        )
        self._track_motion = bool(values["track_motion"])
        self.path = values["path"] or default_ros_home_path("risk.sqlite3")
        self._lock = threading.Lock()
        self._motion_signature: dict[str, tuple[str, tuple[str, ...]]] = {}
        self._plans: dict[str, tuple[str | None, str | None]] = {}
        self._store_error = ""
        try:
            config.validate()
        except RiskError as error:
            raise ConfigError([str(error)], source="risk parameters") from error
        try:
            self.tracker = RiskTracker(self.path, config)
        except RiskError as error:
            # Without the file, earlier lockouts are unknown: stop motion until it is fixed.
            self.tracker = RiskTracker(None, config)
            self._store_failed(str(error))

        latched = QoSProfile(
            depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE
        )
        self._publisher = node.create_publisher(String, RISK_TOPIC, latched)
        self._timer = node.create_timer(float(values["publish_period_s"]), self.publish)
        for state in self.tracker.locked_out():
            self._logger.warning(f"[risk] {state.requester} is still locked out (since {state.locked_since})")
            if state.channel == "motion":
                self._services.set_hold(self._lockout_hold(state))
        self._logger.info(f"[risk] tracking requesters in {self.path}")
        self.publish()

    # Calls from other bridges --------------------------------------------------------------

    def is_locked_out(self, requester: str) -> bool:
        return self.tracker.is_locked_out(requester)

    def is_elevated(self, requester: str) -> bool:
        """Return whether overrides of this requester's commands need a supervisor."""
        return self.tracker.is_elevated(requester, time.time())

    def note_plan(
        self, decision_id: str, plan_fingerprint: str | None, effect_fingerprint: str | None = None
    ) -> None:
        """Attach fingerprints to a decision before `publish_decision`, so `on_decision` can spot rephrasing."""
        with self._lock:
            self._plans[decision_id] = (plan_fingerprint, effect_fingerprint)
            while len(self._plans) > _PENDING_PLANS:
                self._plans.pop(next(iter(self._plans)))

    def record_event(
        self,
        requester: str,
        kind: RiskEventKind | str,
        *,
        severity: Severity | str = Severity.MEDIUM,
        detail: str = "",
        rule_ids: Iterable[str] = (),
        channel: str | None = None,
    ) -> RiskUpdate:
        """Add one event (failed override authentication, hard-rule override attempt, assembled harm)."""
        update = self.tracker.record_event(
            requester,
            RiskEventKind(kind),
            now=time.time(),
            severity=Severity(severity),
            detail=detail,
            rule_ids=rule_ids,
            channel=channel,
        )
        self._handle(update)
        return update

    def clear_lockout(self, requester: str, clearance: SupervisorClearance) -> bool:
        """Clear a lockout with a clearance built by the override bridge from a verified request."""
        return self.clear(requester, clearance.supervisor_id, clearance.request_id, clearance.reason)

    def clear(self, requester: str, operator_id: str, request_id: str = "", reason: str = "") -> bool:
        """Clear a lockout; the override bridge calls this after verifying a supervisor's signed request.

        Raises RiskError when the requester is not locked out.
        """
        clearance = SupervisorClearance(
            supervisor_id=operator_id,
            request_id=request_id or "not given",
            reason=reason or "signed risk_clear request",
        )
        update = self.tracker.clear_lockout(requester, clearance, now=time.time())
        self._logger.warning(f"[risk] lockout of {requester} cleared by supervisor {operator_id}")
        self._services.clear_hold(self._hold_id(requester))
        self._handle(update)
        return True

    # NodeExtension ---------------------------------------------------------------------------

    def on_decision(self, decision: Decision) -> None:
        if decision.command_kind in MOTION_KINDS:
            self._on_motion(decision)
            return
        with self._lock:
            plan, effect = self._plans.pop(decision.decision_id, (None, None))
        plan = plan or self._fingerprint_from(decision, "plan_fingerprint")
        effect = effect or self._fingerprint_from(decision, "effect_fingerprint")
        update = self.tracker.observe_request(
            decision.requester,
            now=time.time(),
            verdict=decision.verdict,
            severity=_max_severity(decision.reasons),
            channel="directive",
            plan_fingerprint=plan,
            effect_fingerprint=effect,
            rule_ids=decision.rule_ids,
            detail=f"decision {decision.decision_id}",
        )
        self._handle(update)

    @staticmethod
    def _fingerprint_from(decision: Decision, key: str) -> str | None:
        value = decision.output.get(key)
        if isinstance(value, str):
            return value
        for reason in decision.reasons:
            value = reason.facts.get(key)
            if isinstance(value, str):
                return value
        return None

    def _on_motion(self, decision: Decision) -> None:
        if not self._track_motion:
            return
        signature = decision.signature
        with self._lock:
            changed = self._motion_signature.get(decision.requester) != signature
            self._motion_signature[decision.requester] = signature
        if not changed:
            return
        # Only refusals caused by the command itself count, because stale sensors or latched stops
        # are not the requester's doing.
        caused = [
            reason
            for reason in decision.reasons
            if reason.verdict in REFUSING_VERDICTS and reason.rule_id.startswith("motion.")
        ]
        if not caused:
            return
        update = self.tracker.observe_request(
            decision.requester,
            now=time.time(),
            verdict=Verdict.REFUSE,
            severity=_max_severity(caused),
            channel="motion",
            rule_ids=[reason.rule_id for reason in caused],
            detail=f"decision {decision.decision_id}",
        )
        self._handle(update)

    def refutable_by(self, rule_id: str) -> RefutableBy | None:
        return RefutableBy.NONE if rule_id in (LOCKED_OUT_RULE, STORE_FAILED_RULE) else None

    def state(self) -> dict[str, Any]:
        now = time.time()
        states = self.tracker.states(now)
        return {
            "path": str(self.path),
            "locked_out": [state.requester for state in states if state.locked_out],
            "elevated": [state.requester for state in states if state.level is RiskLevel.ELEVATED],
            "scores": {state.requester: round(state.score, 3) for state in states},
            "store_error": self._store_error,
        }

    def diagnostics(self) -> list[DiagnosticStatus]:
        state = self.state()
        status = DiagnosticStatus()
        status.name = f"{self._services.ros_node.get_name()}: risk"
        status.hardware_id = str(self.path)
        if state["locked_out"] or state["store_error"]:
            status.level = DiagnosticStatus.ERROR
        elif state["elevated"]:
            status.level = DiagnosticStatus.WARN
        else:
            status.level = DiagnosticStatus.OK
        status.message = (
            f"locked out: {', '.join(state['locked_out']) or 'none'}; "
            f"elevated: {', '.join(state['elevated']) or 'none'}"
        )
        values = [
            KeyValue(key=f"score {name}", value=f"{score:.3f}") for name, score in state["scores"].items()
        ]
        if state["store_error"]:
            values.append(KeyValue(key="store error", value=state["store_error"]))
        status.values = values
        return [status]

    def publish(self) -> None:
        now = time.time()
        message = {
            "schema": RISK_SCHEMA,
            "version": 1,
            "wall_time": now,
            "requesters": [state.to_json() for state in self.tracker.states(now)],
        }
        self._publisher.publish(String(data=json.dumps(message)))

    def shutdown(self) -> None:
        self._timer.cancel()
        self.tracker.close()

    # Internals -------------------------------------------------------------------------------

    @staticmethod
    def _hold_id(requester: str) -> str:
        return f"{LOCKED_OUT_RULE}:{requester}"

    def _lockout_hold(self, state: RiskState) -> Hold:
        reason = Reason(
            rule_id=LOCKED_OUT_RULE,
            kind=ReasonKind.AUTHORITY,
            verdict=Verdict.UNAUTHORIZED,
            severity=Severity.HIGH,
            message=f"Requester {state.requester} is locked out after repeated refused or abusive requests: stopping.",
            evidence=(Evidence("risk score", round(state.score, 3), "", source=state.requester),),
            consequence="Commands from this requester are not executed.",
            refutable_by=RefutableBy.NONE,
            remedy=f"A supervisor clears the lockout with a signed risk_clear request for {state.requester}.",
            facts={"events": [event.kind.value for event in state.events]},
        )
        return Hold(self._hold_id(state.requester), reason, self._services.now_s())

    def _store_failed(self, message: str) -> None:
        self._store_error = message
        self._logger.error(f"[risk] {message}; stopping motion, because earlier lockouts cannot be checked")
        reason = Reason(
            rule_id=STORE_FAILED_RULE,
            kind=ReasonKind.INTEGRITY,
            verdict=Verdict.FAULT,
            severity=Severity.HIGH,
            message=f"The risk file {self.path} cannot be used ({message}): stopping.",
            consequence="A locked-out requester could command the robot again.",
            refutable_by=RefutableBy.NONE,
            remedy=f"Fix or move {self.path}, then restart the node.",
        )
        self._services.set_hold(Hold(STORE_FAILED_RULE, reason, self._services.now_s()))

    def _handle(self, update: RiskUpdate) -> None:
        if update.persist_error and update.persist_error != self._store_error:
            self._store_error = update.persist_error
            self._logger.error(f"[risk] {update.persist_error}; the change applies in memory only")
        if not update.events and not update.level_changed:
            return
        self._services.audit("risk", update.to_json())
        after = update.after
        if update.level_changed:
            log = self._logger.warning if after.level is not RiskLevel.NORMAL else self._logger.info
            log(
                f"[risk] {after.requester}: {update.before.level.value} -> {after.level.value} (score {after.score:.2f})"
            )
            if after.locked_out and after.channel == "motion":
                self._services.set_hold(self._lockout_hold(after))
        self.publish()
