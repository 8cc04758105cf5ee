"""The audit trail as an extension of the safety node.

Opens the audit file (`audit.path`), records a `start` and a `config` record, every
decision whose verdict or rules changed (per command kind and requester), every record
queued through `NodeServices.audit`, and a `stop` record at shutdown. Writes happen on the
writer thread of nc_safety.core.audit.

When the file cannot be written (disk full, permissions, a damaged file) and
`audit.on_failure` is `fail_safe` (the default), a hold with rule `audit.write_failed`
and verdict `fault` stops motion until a write succeeds again. With `degrade` the node
keeps going and logs an error. The trail then has a gap, which it states itself once
writes succeed again (a `fault` record with rule `audit.records_lost`).
"""

from __future__ import annotations

import collections
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

from nc_safety.core.audit import (
    AUDIT_FORMAT_VERSION,
    AuditError,
    AuditFailure,
    AuditWriter,
    FailurePolicy,
    WriterConfig,
)
from nc_safety.core.errors import ConfigError
from nc_safety.core.holds import Hold
from nc_safety.core.justification import Decision, Evidence, JsonValue, Reason
from nc_safety.core.verdict import ReasonKind, RefutableBy, Severity, Verdict
from nc_safety.ros.extension import NodeServices
from nc_safety.ros.extension_params import ParameterSpec, declare_parameters, default_ros_home_path

WRITE_FAILED_RULE = "audit.write_failed"
LOG_THROTTLE_S = 5.0
_RECORDED_IDS = 1024


AUDIT_PARAMETERS: dict[str, ParameterSpec] = {
    "path": ParameterSpec("", "Audit SQLite file; empty means $ROS_HOME/nc_safety/audit.sqlite3."),
    "on_failure": ParameterSpec(
        "fail_safe",
        "What happens when the audit cannot be written: fail_safe (stop motion) or degrade (warn).",
    ),
    "queue_size": ParameterSpec(10000, "Records that may wait for the writer thread.", 1, 10_000_000),
    "put_timeout_s": ParameterSpec(
        0.05, "How long a full queue blocks the decision path before a failure is reported, in s.", 0.0, 5.0
    ),
    "batch_max": ParameterSpec(512, "Most records committed in one transaction.", 1, 100_000),
    "retry_interval_s": ParameterSpec(1.0, "Pause between retries of a failed write, in s.", 0.001, 60.0),
    "close_timeout_s": ParameterSpec(5.0, "How long shutdown waits for queued records, in s.", 0.0, 300.0),
    "record_all_decisions": ParameterSpec(
        False, "Record every decision, not only those whose verdict or rules changed."
    ),
}


def _json_parameter(value: Any) -> JsonValue:
    if isinstance(value, (str, bool, int, float)) or value is None:
        return value
    try:
        return [_json_parameter(item) for item in value]
    except TypeError:
        return str(value)


class AuditBridge:
    """NodeExtension that writes the audit trail; `record` implements `NodeServices.audit`."""

    name = "audit"

    def __init__(self, services: NodeServices) -> None:
        self._services = services
        node = services.ros_node
        self._node_name = node.get_fully_qualified_name()
        self._logger = node.get_logger()
        values = declare_parameters(node, "audit", AUDIT_PARAMETERS)
        try:
            self.policy = FailurePolicy(values["on_failure"])
        except ValueError as error:
            raise ConfigError(
                [f"audit.on_failure: invalid value {values['on_failure']!r}; use 'fail_safe' or 'degrade'"]
            ) from error
        self.path = Path(values["path"] or default_ros_home_path("audit.sqlite3")).expanduser()
        self._record_all = bool(values["record_all_decisions"])
        config = WriterConfig(
            queue_size=int(values["queue_size"]),
            put_timeout_s=float(values["put_timeout_s"]),
            batch_max=int(values["batch_max"]),
            retry_interval_s=float(values["retry_interval_s"]),
            close_timeout_s=float(values["close_timeout_s"]),
        )

        self._lock = threading.Lock()
        self._hold_set = False
        self._failure_message = ""
        self._dropped = 0
        self._suppressed = 0
        self._last_signature: dict[tuple[str, str], tuple[object, ...]] = {}
        self._recorded_ids: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._last_policy_hash = ""
        self._writer: AuditWriter | None = None
        try:
            self._writer = AuditWriter(
                self.path,
                config=config,
                on_failure=self._on_failure,
                on_recovered=self._on_recovered,
                on_commit=self._on_commit,
            )
        except AuditError as error:
            self._fail(f"cannot open the audit trail: {error}", pending=0)
            return
        self._logger.info(
            f"[audit] writing {self.path} from seq {self._writer.head[0] + 1} (on_failure {self.policy.value})"
        )
        self.record(
            "start",
            {
                "node": self._node_name,
                "pid": os.getpid(),
                "path": str(self.path),
                "audit_format_version": AUDIT_FORMAT_VERSION,
                "policy_hash": services.policy_hash,
                "on_failure": self.policy.value,
            },
        )
        self._record_config("start")

    # NodeServices.audit ----------------------------------------------------------------------

    def record(self, kind: str, payload: Mapping[str, JsonValue]) -> None:
        """Queue one record. A failure goes to the failure policy instead of raising AuditError."""
        writer = self._writer
        if writer is None:
            self._dropped += 1
            return
        if kind == "decision" and isinstance(payload.get("decision_id"), str):
            self._remember_recorded(str(payload["decision_id"]))
        if kind in ("config", "configuration") and isinstance(payload.get("policy_hash"), str):
            self._last_policy_hash = str(payload["policy_hash"])
        try:
            writer.submit(kind, payload, ros_time=self._services.now_s())
        except AuditError as error:
            self._dropped += 1
            self._logger.error(f"[audit] record not queued: {error}", throttle_duration_sec=LOG_THROTTLE_S)

    def _remember_recorded(self, decision_id: str) -> None:
        self._recorded_ids[decision_id] = None
        while len(self._recorded_ids) > _RECORDED_IDS:
            self._recorded_ids.popitem(last=False)

    def _record_config(self, cause: str) -> None:
        node = self._services.ros_node
        parameters = {
            name: _json_parameter(parameter.value)
            for name, parameter in sorted(node.get_parameters_by_prefix("").items())
        }
        self.record(
            "config", {"cause": cause, "policy_hash": self._services.policy_hash, "parameters": parameters}
        )

    # NodeExtension -------------------------------------------------------------------------

    def on_decision(self, decision: Decision) -> None:
        if self._writer is None:
            return
        if decision.policy_hash and decision.policy_hash != self._last_policy_hash:
            self._record_config("policy_changed")
        key = (decision.command_kind, decision.requester)
        signature = (decision.signature, tuple(note.override_id for note in decision.overrides))
        changed = self._last_signature.get(key) != signature
        self._last_signature[key] = signature
        if decision.decision_id in self._recorded_ids:
            return  # the node already recorded this one through NodeServices.audit
        if changed or self._record_all or decision.command_kind not in ("twist", "trajectory"):
            self._remember_recorded(decision.decision_id)
            try:
                self._writer.submit("decision", decision, ros_time=decision.stamp)
            except AuditError as error:
                self._logger.error(
                    f"[audit] decision not queued: {error}", throttle_duration_sec=LOG_THROTTLE_S
                )
        else:
            self._suppressed += 1

    def refutable_by(self, rule_id: str) -> RefutableBy | None:
        return RefutableBy.NONE if rule_id == WRITE_FAILED_RULE else None

    def state(self) -> dict[str, Any]:
        writer = self._writer
        head = writer.head if writer else (0, "")
        with self._lock:
            failure = self._failure_message
        return {
            "path": str(self.path),
            "healthy": writer is not None and writer.healthy and not failure,
            "on_failure": self.policy.value,
            "head_seq": head[0],
            "head_hash": head[1],
            "pending": writer.pending if writer else 0,
            "rejected": writer.rejected if writer else 0,
            "dropped": self._dropped,
            "decisions_not_recorded_unchanged": self._suppressed,
            "last_error": failure,
        }

    def diagnostics(self) -> list[DiagnosticStatus]:
        state = self.state()
        status = DiagnosticStatus()
        status.name = f"{self._services.ros_node.get_name()}: audit"
        status.hardware_id = str(self.path)
        if state["healthy"]:
            status.level = DiagnosticStatus.OK
            status.message = f"recording, head seq {state['head_seq']}"
        else:
            stopping = self.policy is FailurePolicy.FAIL_SAFE
            status.level = DiagnosticStatus.ERROR if stopping else DiagnosticStatus.WARN
            status.message = ("motion stopped: " if stopping else "degraded: ") + str(state["last_error"])
        status.values = [KeyValue(key=key, value=str(value)) for key, value in state.items()]
        return [status]

    def shutdown(self) -> None:
        writer = self._writer
        if writer is None:
            return
        self.record("stop", {"node": self._node_name, "pid": os.getpid()})
        complete = writer.close()
        seq, digest = writer.head
        self._writer = None
        # The head printed here is the anchor `nc-safety audit verify --expect-head` checks later.
        message = f"[audit] closed {self.path} at head {seq}:{digest}"
        if complete:
            self._logger.info(message)
        else:
            self._logger.error(message + " with records uncommitted")

    # Failure handling --------------------------------------------------------------------

    def _on_failure(self, failure: AuditFailure) -> None:
        self._fail(failure.message, pending=failure.records_pending)

    def _fail(self, message: str, *, pending: int) -> None:
        with self._lock:
            self._failure_message = message
            hold_needed = self.policy is FailurePolicy.FAIL_SAFE and not self._hold_set
            if hold_needed:
                self._hold_set = True
        if self.policy is FailurePolicy.DEGRADE:
            self._logger.error(
                f"[audit] {message}; audit.on_failure is degrade, so motion continues unrecorded",
                throttle_duration_sec=LOG_THROTTLE_S,
            )
            return
        self._logger.error(
            f"[audit] {message}; stopping motion until the audit trail is writable "
            "(audit.on_failure is fail_safe)",
            throttle_duration_sec=LOG_THROTTLE_S,
        )
        if hold_needed:
            self._services.set_hold(self._hold(message, pending))

    def _hold(self, message: str, pending: int) -> Hold:
        reason = Reason(
            rule_id=WRITE_FAILED_RULE,
            kind=ReasonKind.INTEGRITY,
            verdict=Verdict.FAULT,
            severity=Severity.CRITICAL,
            message=f"The audit trail {self.path} cannot be written ({message}): stopping.",
            evidence=(Evidence("audit records pending", float(pending), "", source=str(self.path)),),
            consequence="Decisions and overrides would not be recorded, so nobody could account for them.",
            refutable_by=RefutableBy.NONE,
            remedy=(
                f"Free disk space or fix the permissions of {self.path.parent}; motion resumes after the next "
                "successful write and a zero or new command (restart the node when the file could not be "
                "opened). Set audit.on_failure:=degrade to drive unrecorded."
            ),
        )
        return Hold(WRITE_FAILED_RULE, reason, self._services.now_s())

    def _on_commit(self, _records: object) -> None:
        if self._hold_set or self._failure_message:
            self._on_recovered(0)

    def _on_recovered(self, lost: int) -> None:
        with self._lock:
            if not (self._hold_set or self._failure_message):
                return
            clear = self._hold_set
            self._hold_set = False
            self._failure_message = ""
        self._logger.warning(
            f"[audit] writing {self.path} again; {lost} record(s) could not be queued meanwhile"
        )
        if clear:
            self._services.clear_hold(WRITE_FAILED_RULE)
