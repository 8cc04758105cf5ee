"""Task directives as an extension of the safety node.

Subscribes `directive_in` (std_msgs/String, directive JSON), checks each directive with
nc_safety.core.directives, publishes accepted ones on `directive_out` (std_msgs/String,
`nc_safety/accepted_directive` JSON) and hands every decision to
NodeServices.publish_decision, which puts the ones that are not `comply` on
`~/refusals`. All rules live in the core; this module moves messages and parameters.
"""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import replace
from typing import Any

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from rclpy.qos import QoSDurabilityPolicy, QoSHistoryPolicy, QoSProfile, QoSReliabilityPolicy
from sensor_msgs.msg import BatteryState
from std_msgs.msg import String

from nc_safety.core.directives.checker import DirectiveChecker, DirectiveResult
from nc_safety.core.directives.errors import DirectiveError
from nc_safety.core.directives.felicity import CheckContext, RunningTask
from nc_safety.core.directives.model import ACTIONS
from nc_safety.core.errors import ConfigError
from nc_safety.core.justification import Decision, JsonValue, Reason, combine
from nc_safety.core.plan_fingerprint import PlanError, plan_fingerprint
from nc_safety.core.verdict import ReasonKind, RefutableBy, Severity, Verdict
from nc_safety.ros.extension import NodeServices
from nc_safety.ros.extension_params import ParameterSpec, declare_parameters

INPUT_TOPIC = "directive_in"
OUTPUT_TOPIC = "directive_out"
ACCEPTED_SCHEMA = "nc_safety/accepted_directive"
ACCEPTED_VERSION = 1
RULE_INTERNAL = "directive.internal_error"
RULE_LOCKED_OUT = "risk.locked_out"

# Directives must not be lost, so input and output are reliable with a short queue.
DIRECTIVE_QOS = QoSProfile(
    history=QoSHistoryPolicy.KEEP_LAST,
    depth=20,
    reliability=QoSReliabilityPolicy.RELIABLE,
    durability=QoSDurabilityPolicy.VOLATILE,
)

# Override rights for the felicity rules; norms carry their own refutable_by.
_FELICITY_REFUTABLE = {
    "directive.invalid": RefutableBy.NONE,
    "directive.felicity.knowledge": RefutableBy.NONE,
    "directive.felicity.capacity": RefutableBy.NONE,
    "directive.felicity.timing": RefutableBy.OPERATOR,
    "directive.felicity.role": RefutableBy.SUPERVISOR,
    RULE_INTERNAL: RefutableBy.NONE,
}


PARAMETERS: dict[str, ParameterSpec] = {
    "ontology_file": ParameterSpec("", "Ontology YAML; empty means the bundled config/ontology.yaml."),
    "norms_path": ParameterSpec(
        "", "Norm pack YAML file or directory; empty means the bundled config/norms/."
    ),
    "config_file": ParameterSpec(
        "", "Checker settings YAML; empty means the bundled config/directives.yaml."
    ),
    "skills": ParameterSpec(list(ACTIONS), "Actions the robot has a skill for; other actions are `unable`."),
    "payload_kg": ParameterSpec(5.0, "Heaviest object the gripper may carry, in kg.", 0.01, 1000.0),
    "reach_m": ParameterSpec(1.8, "Highest point the gripper reaches above the floor, in m.", 0.1, 10.0),
    "shared_state_window_s": ParameterSpec(
        600.0,
        "Directives from one requester within this time share a world, in s (0 disables).",
        0.0,
        86400.0,
    ),
    "max_requesters": ParameterSpec(256, "Requesters whose shared world is kept at once.", 1, 100000),
    "max_bytes": ParameterSpec(
        65536, "Directives above this size (UTF-8 bytes) are rejected unparsed.", 256, 1048576
    ),
    "max_steps": ParameterSpec(200, "Longest accepted plan, in steps.", 1, 10000),
    "battery_topic": ParameterSpec(
        "", "sensor_msgs/BatteryState topic for the battery floor; empty skips the check."
    ),
    "battery_floor": ParameterSpec(
        0.15, "State of charge (0-1) below which new directives are deferred.", 0.0, 0.99
    ),
    "battery_max_age_s": ParameterSpec(
        30.0, "A battery reading older than this is ignored (no battery check), in s.", 0.1, 3600.0
    ),
    "running_task_timeout_s": ParameterSpec(
        0.0,
        "An accepted directive counts as the running task until directive_done names it or this "
        "many seconds pass; new directives of equal or lower priority are deferred meanwhile. "
        "0 disables the tracking, in s.",
        0.0,
        86400.0,
    ),
}
DONE_TOPIC = "directive_done"
"""std_msgs/String with the id of a directive the robot finished (or abandoned)."""


class DirectiveBridge:
    """NodeExtension `directives`: checks task directives before the robot starts them."""

    name = "directives"

    def __init__(self, services: NodeServices) -> None:
        self._services = services
        node = services.ros_node
        self._node = node
        self._logger = node.get_logger().get_child("directives")
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {verdict.value: 0 for verdict in Verdict}
        self._last: dict[str, JsonValue] = {}
        self._battery: tuple[float, float] | None = None
        """Latest state of charge (0-1) and the monotonic time it arrived."""

        values = self._declare_parameters()
        self._checker = self._build_checker(values)
        self._battery_max_age_s = float(values["battery_max_age_s"])
        self._running_timeout_s = float(values["running_task_timeout_s"])
        self._running: tuple[RunningTask, float] | None = None
        """The accepted directive the robot is working on and the monotonic time it started."""

        self._output = node.create_publisher(String, OUTPUT_TOPIC, DIRECTIVE_QOS)
        self._input = node.create_subscription(String, INPUT_TOPIC, self._on_directive, DIRECTIVE_QOS)
        if self._running_timeout_s > 0.0:
            node.create_subscription(String, DONE_TOPIC, self._on_done, DIRECTIVE_QOS)
        self._battery_subscription = None
        if values["battery_topic"]:
            self._battery_subscription = node.create_subscription(
                BatteryState, str(values["battery_topic"]), self._on_battery, QoSProfile(depth=5)
            )
        checker = self._checker
        self._logger.info(
            f"directives ready: {len(checker.ontology.types)} object types, {len(checker.norms.norms)} norms, "
            f"skills {sorted(checker.config.robot.skills)}, payload {checker.config.robot.payload_kg:.2f} kg, "
            f"reach {checker.config.robot.reach_m:.2f} m, shared window {checker.config.shared_state_window_s:.0f} s, "
            f"battery topic {values['battery_topic'] or '(none)'}, policy {checker.policy_hash[:12]}"
        )

    def _declare_parameters(self) -> dict[str, Any]:
        return declare_parameters(self._node, "directives", PARAMETERS)

    def _build_checker(self, values: dict[str, Any]) -> DirectiveChecker:
        problems: list[str] = []
        for name, spec in PARAMETERS.items():
            value = values[name]
            if spec.low is not None and spec.high is not None and not spec.low <= value <= spec.high:
                problems.append(f"directives.{name}: {value!r} is outside [{spec.low:g}, {spec.high:g}]")
        unknown_skills = sorted(set(values["skills"]) - set(ACTIONS))
        if unknown_skills:
            problems.append(f"directives.skills: unknown action(s) {unknown_skills}; known: {list(ACTIONS)}")
        if problems:
            raise ConfigError(problems, source="directives configuration")
        try:
            checker = DirectiveChecker.from_files(
                values["ontology_file"] or None,
                [values["norms_path"]] if values["norms_path"] else None,
                values["config_file"] or None,
            )
            config = checker.config
            robot = replace(
                config.robot,
                skills=frozenset(values["skills"]),
                payload_kg=float(values["payload_kg"]),
                reach_m=float(values["reach_m"]),
            )
            config = replace(
                config,
                robot=robot,
                timing=replace(config.timing, battery_floor=float(values["battery_floor"])),
                limits=replace(
                    config.limits, max_bytes=int(values["max_bytes"]), max_steps=int(values["max_steps"])
                ),
                shared_state_window_s=float(values["shared_state_window_s"]),
                max_requesters=int(values["max_requesters"]),
            )
            return DirectiveChecker(checker.ontology, checker.norms, config)
        except DirectiveError as error:
            raise ConfigError(
                list(error.problems), source=f"directives configuration ({error.source})"
            ) from error

    # Inputs ------------------------------------------------------------------------------

    def _on_battery(self, message: BatteryState) -> None:
        fraction = float(message.percentage)
        # BatteryState uses NaN for an unknown percentage; anything outside 0-1 is ignored too.
        if math.isfinite(fraction) and 0.0 <= fraction <= 1.0:
            with self._lock:
                self._battery = (fraction, time.monotonic())

    def _on_done(self, message: String) -> None:
        with self._lock:
            if self._running is not None and self._running[0].task_id == message.data:
                self._logger.info(f"directive {message.data!r} done; no task is running")
                self._running = None

    def _running_task(self) -> RunningTask | None:
        with self._lock:
            if self._running is None:
                return None
            task, started = self._running
            if time.monotonic() - started > self._running_timeout_s:
                self._logger.warning(
                    f"directive {task.task_id!r} not reported done within {self._running_timeout_s:.0f} s; "
                    "no longer treated as running"
                )
                self._running = None
                return None
            return task

    def _context(self) -> CheckContext:
        local = time.localtime()
        running = self._running_task() if self._running_timeout_s > 0.0 else None
        with self._lock:
            battery = self._battery
        fraction = None
        if battery is not None and time.monotonic() - battery[1] <= self._battery_max_age_s:
            fraction = battery[0]
        return CheckContext(
            now_s=self._services.now_s(),
            wall_time=time.time(),
            local_minutes=local.tm_hour * 60 + local.tm_min,
            battery=fraction,
            running_task=running,
        )

    def _on_directive(self, message: String) -> None:
        context = self._context()
        locked = self._locked_out_requester(message.data)
        result: DirectiveResult | None = None
        if locked is not None:
            decision = self._locked_out(*locked, context)
        else:
            try:
                result = self._checker.check_json(message.data, context)
                decision = self._apply_overrides(result.decision, context.now_s)
            except Exception as error:
                # Any failure of the checker must still end in a decision that forwards nothing.
                self._logger.error(f"checking a directive failed; not forwarded: {error!r}")
                decision = self._fault(error, context)
                result = None
        if result is not None and decision.verdict.forwards and result.directive is not None:
            accepted = {
                "schema": ACCEPTED_SCHEMA,
                "version": ACCEPTED_VERSION,
                "decision_id": decision.decision_id,
                "policy_hash": decision.policy_hash,
                "directive": result.directive.to_json(),
            }
            self._output.publish(String(data=json.dumps(accepted)))
            if self._running_timeout_s > 0.0:
                task = RunningTask(result.directive.directive_id, result.directive.priority)
                with self._lock:
                    self._running = (task, time.monotonic())
        if result is not None and result.directive is not None:
            self._note_plan(decision, result.directive)
        self._services.publish_decision(decision)
        self._record(decision, result)

    # Risk and overrides ----------------------------------------------------------------------

    def _risk(self) -> Any | None:
        return self._services.extension("risk")

    def _locked_out_requester(self, text: str) -> tuple[str, str] | None:
        """Requester and directive id when the risk extension has locked the requester out."""
        risk = self._risk()
        if risk is None or len(text) > self._checker.config.limits.max_bytes:
            return None
        try:
            document = json.loads(text)
            requester = document["requester"]["id"]
            directive_id = document.get("id", "")
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
            return None  # the checker reports the malformed directive itself
        if isinstance(requester, str) and risk.is_locked_out(requester):
            return requester, directive_id if isinstance(directive_id, str) else ""
        return None

    def _locked_out(self, requester: str, directive_id: str, context: CheckContext) -> Decision:
        reason = Reason(
            rule_id=RULE_LOCKED_OUT,
            kind=ReasonKind.AUTHORITY,
            verdict=Verdict.UNAUTHORIZED,
            severity=Severity.HIGH,
            message=f"Requester {requester!r} is locked out after repeated refused or risky requests; "
            "nothing from it is carried out.",
            consequence="Requests from a requester that probes for harmful plans are not carried out.",
            refutable_by=RefutableBy.NONE,
            remedy="A supervisor can clear the lockout with a signed risk_clear request.",
        )
        return combine(
            stamp=context.now_s,
            wall_time=context.wall_time,
            command_kind="directive",
            command_id=directive_id,
            requester=requester,
            reasons=[reason],
            policy_hash=self._checker.policy_hash,
        )

    def _note_plan(self, decision: Decision, directive: Any) -> None:
        """Give the risk extension the plan's fingerprint so rephrased refusals are recognised."""
        risk = self._risk()
        if risk is None:
            return
        try:
            fingerprint = plan_fingerprint([step.to_json() for step in directive.steps])
        except PlanError:
            return
        risk.note_plan(decision.decision_id, fingerprint)

    def _apply_overrides(self, decision: Decision, now: float) -> Decision:
        """Waive refusal reasons that an active operator override covers, as for motion.

        Hard rules (refutable_by none) stay in force. The requester resends the directive
        while the override is active; the accepted decision names the override.
        """
        if decision.verdict.forwards:
            return decision
        grants = self._services.grants()
        kept: list[Reason] = []
        waived: list[Reason] = []
        used = {}
        for reason in decision.reasons:
            grant = None
            if reason.refutable_by.overridable:
                grant = next((g for g in grants if g.covers(reason.rule_id, now)), None)
            if grant is None:
                kept.append(reason)
            else:
                waived.append(reason)
                used[grant.override_id] = grant
        if not waived:
            return decision
        return combine(
            stamp=decision.stamp,
            wall_time=decision.wall_time,
            command_kind=decision.command_kind,
            command_id=decision.command_id,
            requester=decision.requester,
            reasons=kept,
            policy_hash=decision.policy_hash,
            overrides=[grant.to_note() for grant in used.values()],
            overridden=waived,
            output=decision.output,
            decision_id=decision.decision_id,
        )

    def _fault(self, error: Exception, context: CheckContext) -> Decision:
        reason = Reason(
            rule_id=RULE_INTERNAL,
            kind=ReasonKind.INTEGRITY,
            verdict=Verdict.FAULT,
            severity=Severity.HIGH,
            message=f"The directive checker failed ({type(error).__name__}), so the directive is not forwarded.",
            consequence="Nothing is started.",
            refutable_by=RefutableBy.NONE,
            remedy="Report the node log to the maintainers; resend the directive after a fix.",
        )
        return combine(
            stamp=context.now_s,
            wall_time=context.wall_time,
            command_kind="directive",
            command_id="",
            requester="",
            reasons=[reason],
            policy_hash=self._checker.policy_hash,
        )

    def _record(self, decision: Decision, result: DirectiveResult | None) -> None:
        first = result.first_failed if result is not None else None
        with self._lock:
            self._counts[decision.verdict.value] += 1
            self._last = {
                "decision_id": decision.decision_id,
                "directive_id": decision.command_id,
                "requester": decision.requester,
                "verdict": decision.verdict.value,
                "rule_ids": list(decision.rule_ids),
            }
        where = ""
        if first is not None:
            step = "plan" if first.step is None else f"step {first.step}"
            where = f", first failed: {first.condition} ({first.rule_id}) at {step}"
        text = (
            f"directive {decision.command_id!r} from {decision.requester!r}: {decision.verdict.value}"
            f"{where}; rules {list(decision.rule_ids)}"
        )
        if decision.verdict.forwards:
            self._logger.info(text + "; forwarded on directive_out")
        else:
            self._logger.info(text + "; not forwarded")

    # NodeExtension -----------------------------------------------------------------------

    def refutable_by(self, rule_id: str) -> RefutableBy | None:
        """Who may override a directive rule, or None when the rule is not a directive rule."""
        if rule_id in _FELICITY_REFUTABLE:
            return _FELICITY_REFUTABLE[rule_id]
        for norm in self._checker.norms.norms:
            if norm.rule_id == rule_id:
                return norm.refutable_by
        return None

    def on_decision(self, decision: Decision) -> None:
        """Directive decisions are made here; other decisions need nothing from this extension."""

    def diagnostics(self) -> list[DiagnosticStatus]:
        with self._lock:
            counts = dict(self._counts)
            last = dict(self._last)
        status = DiagnosticStatus(
            level=DiagnosticStatus.OK,
            name=f"{self._node.get_name()}: directives",
            message=f"{sum(counts.values())} directive(s) checked",
            hardware_id="nc_safety",
        )
        status.values = [KeyValue(key=verdict, value=str(count)) for verdict, count in sorted(counts.items())]
        if last:
            status.values.append(KeyValue(key="last_verdict", value=str(last["verdict"])))
        return [status]

    def state(self) -> dict[str, Any]:
        with self._lock:
            counts = dict(self._counts)
            last = dict(self._last)
        return {
            "counts": counts,
            "last": last,
            "norms": len(self._checker.norms.norms),
            "sessions": self._checker.session_count(),
            "policy_hash": self._checker.policy_hash,
        }

    def shutdown(self) -> None:
        self._logger.info(f"directives stopped after {sum(self._counts.values())} directive(s)")
