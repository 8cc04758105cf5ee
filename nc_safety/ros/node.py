"""The safety node: a thin rclpy adapter around the motion guard.

It turns messages into core values and requests a decision from the guard on every command
and on its own timer. It publishes the output, the justification of every changed decision,
its state and diagnostics, and it hosts the extensions (e-stop link, overrides, directives,
audit, risk). No rule lives here.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import signal
import sys
import threading
import time
import traceback
from collections import Counter, OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from nc_safety.ros.dds_env import apply_loopback_defaults

apply_loopback_defaults()

import rclpy  # noqa: E402 - the DDS environment must be set before rclpy loads
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue  # noqa: E402
from geometry_msgs.msg import PoseArray, TwistStamped  # noqa: E402
from geometry_msgs.msg import Twist as TwistMsg  # noqa: E402
from nav_msgs.msg import Odometry  # noqa: E402
from rcl_interfaces.msg import SetParametersResult  # noqa: E402
from rclpy._rclpy_pybind11 import RCLError  # noqa: E402
from rclpy.clock import Clock, ClockType  # noqa: E402
from rclpy.event_handler import QoSRequestedIncompatibleQoSInfo, SubscriptionEventCallbacks  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import (  # noqa: E402
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)
from rclpy.signals import SignalHandlerOptions  # noqa: E402
from sensor_msgs.msg import LaserScan  # noqa: E402
from std_msgs.msg import String  # noqa: E402
from visualization_msgs.msg import MarkerArray  # noqa: E402

from nc_safety.core.constraints import Outcome, make_reason  # noqa: E402
from nc_safety.core.errors import ConfigError  # noqa: E402
from nc_safety.core.grant import OverrideGrant  # noqa: E402
from nc_safety.core.holds import Hold  # noqa: E402
from nc_safety.core.justification import Decision, Evidence, JsonValue  # noqa: E402
from nc_safety.core.motion import MotionDecision, MotionGuard  # noqa: E402
from nc_safety.core.motion_config import MotionConfig, load_motion_config  # noqa: E402
from nc_safety.core.policy import policy_hash, rule_info  # noqa: E402
from nc_safety.core.scan import ScanRejection  # noqa: E402
from nc_safety.core.values import ZERO_TWIST, Pose2D, Twist, TwistCommand  # noqa: E402
from nc_safety.core.verdict import RefutableBy, Verdict  # noqa: E402
from nc_safety.core.zones import Zone, check_zones, load_zones  # noqa: E402
from nc_safety.ros.conversions import (  # noqa: E402
    fill_twist_msg,
    odom_from_msg,
    people_from_msg,
    scan_from_msg,
    twist_from_msg,
)
from nc_safety.ros.markers import zone_markers  # noqa: E402
from nc_safety.ros.params import (  # noqa: E402
    check_command_line_types,
    declare_motion_parameters,
    read_flat_parameters,
    undeclared_overrides,
)

# Extension name -> "module:Class". Each is created when `<name>.enabled` is true.
EXTENSIONS: dict[str, str] = {
    "audit": "nc_safety.ros.audit_bridge:AuditBridge",
    "risk": "nc_safety.ros.risk_bridge:RiskBridge",
    "estop": "nc_safety.ros.estop_bridge:EstopBridge",
    "overrides": "nc_safety.ros.override_bridge:OverrideBridge",
    "directives": "nc_safety.ros.directive_bridge:DirectiveBridge",
    "trajectory": "nc_safety.ros.trajectory_bridge:TrajectoryBridge",
}

RECENT_DECISIONS = 512
WARN_THROTTLE_S = 2.0
CLOCK_STALL_S = 2.0
PUBLISHER_CHECK_PERIOD_S = 0.2


_BACKEND_NAMES = {"compiled": "the C extension", "numpy": "NumPy"}
"""Log wording of ObstacleChecker.clearance_backend."""


class SafetyNode(Node):
    """The safety layer between `cmd_vel_in` and `cmd_vel_out`."""

    def __init__(self, node_name: str = "nc_safety", *, argv: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self._lock = threading.RLock()
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self._extensions: dict[str, Any] = {}
        self._recent: OrderedDict[str, Decision] = OrderedDict()
        self._last_signature: tuple[str, tuple[str, ...]] | None = None
        self._published_at: dict[tuple[str, tuple[str, ...]], float] = {}
        self._suppressed_refusals = 0
        self._last_publish_steady = 0.0
        self._last_published_output: Twist | None = None
        self._last_decision: MotionDecision | None = None
        self._publisher_nodes: list[str] = []
        self._unknown_publisher_rounds = 0
        self._qos_incompatible = 0
        self._last_ros_time = -1.0
        self._ros_time_changed_at = time.monotonic()
        self._shutting_down = False
        self._command_verdicts: Counter[str] = Counter()
        self._command_rules: Counter[str] = Counter()

        for name in EXTENSIONS:
            self.declare_parameter(f"{name}.enabled", False, _bool_descriptor(f"{name}.enabled", name))
        self.executor_kind: str = self.declare_parameter(
            "executor",
            os.environ.get("NC_SAFETY_EXECUTOR", "events"),
            _string_descriptor(
                "executor",
                "single: rclpy's SingleThreadedExecutor; events: rclpy's experimental EventsExecutor, "
                "which has far less overhead per message",
            ),
        ).value
        self._sources, problems = declare_motion_parameters(self)
        problems += check_command_line_types(self, argv)
        flat = read_flat_parameters(self, self._sources)
        try:
            config = load_motion_config(flat, self._sources)
        except ConfigError as error:
            problems += list(error.problems)
        if problems:
            problems += self._unknown_parameters(skip=tuple(EXTENSIONS))
            raise ConfigError(problems, source=f"configuration of node {self.get_fully_qualified_name()}")
        self.config: MotionConfig = config
        self._flat = flat
        self._policy_hash = policy_hash(_json_ready(flat))
        self._zones, self._zone_role = self._load_zones()
        zone_check = self._zone_check if self._zones else None
        self.guard = MotionGuard(
            config, started_at=self.now_s(), policy_hash=self._policy_hash, zone_check=zone_check
        )
        if self._zones:
            # Zones are placed in the odometry frame, so odometry becomes required.
            self.guard.odom_source.required = True
        self.add_on_set_parameters_callback(self._validate_update)

        self._create_interfaces()
        self._load_extensions()
        # Settings of disabled extensions may stay in a shared file; anything else unknown is a typo.
        unknown = self._unknown_parameters(
            skip=tuple(name for name in EXTENSIONS if name not in self._extensions)
        )
        if unknown:
            # The extensions already run threads (the e-stop link): stop them before failing.
            self.shutdown("configuration error")
            raise ConfigError(unknown, source=f"configuration of node {self.get_fully_qualified_name()}")
        self._log_configuration()
        self._publish_state()

    # Set-up -------------------------------------------------------------------------------

    def _unknown_parameters(self, skip: tuple[str, ...]) -> list[str]:
        """Problems for given parameters nothing declared, except those of the `skip` extensions."""
        prefixes = tuple(f"{name}." for name in skip)
        return [
            f"{name}: unknown parameter (not declared by the node or an enabled extension)"
            for name in undeclared_overrides(self)
            if not name.startswith(prefixes)
        ]

    def _load_zones(self) -> tuple[tuple[Zone, ...], str]:
        """Read the restricted zones file named by `zones.file`; empty disables zones."""
        path = self.declare_parameter(
            "zones.file",
            "",
            _string_descriptor(
                "zones.file", "YAML file of restricted zones for motion (docs/directives.md); empty: no zones"
            ),
        ).value
        role = self.declare_parameter(
            "zones.requester_role",
            "",
            _string_descriptor(
                "zones.requester_role",
                "Role of whoever commands cmd_vel_in, checked against each zone's allowed roles",
            ),
        ).value
        if not path:
            return (), role
        zones = load_zones(path)
        self.get_logger().info(
            f"[zones] {len(zones)} restricted zone(s) from {path}: {[z.name for z in zones]}"
        )
        return zones, role

    def _zone_check(self, pose: Pose2D, twist: Twist, stopping: Pose2D) -> list[Outcome]:
        del twist
        local = time.localtime()
        reason = check_zones(
            self._zones,
            pose,
            stopping,
            local.tm_hour * 60 + local.tm_min,
            self._zone_role,
            self.guard.obstacles.radius,
        )
        return [] if reason is None else [Outcome(reason, 0.0)]

    def _create_interfaces(self) -> None:
        config = self.config
        stamped = config.command.type == "twist_stamped"
        self._command_type = TwistStamped if stamped else TwistMsg
        command_qos = QoSProfile(
            depth=config.command.queue_depth,
            reliability=ReliabilityPolicy.RELIABLE,
            history=HistoryPolicy.KEEP_LAST,
        )
        events = SubscriptionEventCallbacks(incompatible_qos=self._on_incompatible_qos)
        self.create_subscription(
            self._command_type, "cmd_vel_in", self._on_command, command_qos, event_callbacks=events
        )
        self._output = self.create_publisher(self._command_type, "cmd_vel_out", command_qos)
        for name, source in config.scans.items():
            self.create_subscription(
                LaserScan,
                source.topic,
                lambda msg, name=name: self._on_scan(name, msg),
                qos_profile_sensor_data,
            )
        self.create_subscription(Odometry, config.odom.topic, self._on_odom, qos_profile_sensor_data)
        if config.people.enabled:
            self.create_subscription(PoseArray, config.people.topic, self._on_people, qos_profile_sensor_data)

        self._refusals = self.create_publisher(String, "~/refusals", QoSProfile(depth=50))
        latched = QoSProfile(
            depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE
        )
        self._state = self.create_publisher(String, "~/state", latched)
        self._diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", QoSProfile(depth=10))
        self._markers = self.create_publisher(MarkerArray, "~/zones", QoSProfile(depth=1))

        # The output timer runs on the steady clock so that a stalled /clock cannot silence
        # the node; decisions still use ROS time.
        self.create_timer(self.config.output_period, self._on_timer, clock=self._steady)
        self.create_timer(1.0, self._on_diagnostics_timer, clock=self._steady)
        self.create_timer(PUBLISHER_CHECK_PERIOD_S, self._check_publishers, clock=self._steady)

    def _log_configuration(self) -> None:
        lines = [f"  {key} = {value!r}" for key, value in sorted(self._flat.items())]
        self.get_logger().info(
            f"started; policy {self._policy_hash[:12]}, command type {self.config.command.type}, "
            f"output rate {self.config.output.rate:g} Hz, obstacle clearance in "
            f"{_BACKEND_NAMES[self.guard.obstacles.clearance_backend]}; effective configuration:\n"
            + "\n".join(lines)
        )

    def _load_extensions(self) -> None:
        for name, target in EXTENSIONS.items():
            if not self.get_parameter(f"{name}.enabled").value:
                continue
            module_name, class_name = target.split(":")
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError as error:
                raise ConfigError(
                    [f"{name}.enabled is true but {module_name} is not installed ({error})"]
                ) from error
            self._extensions[name] = getattr(module, class_name)(self)
            self.get_logger().info(f"[{name}] extension started")

    # NodeServices -------------------------------------------------------------------------

    @property
    def ros_node(self) -> Node:
        return self

    @property
    def policy_hash(self) -> str:
        return self._policy_hash

    def now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def extension(self, name: str) -> Any | None:
        return self._extensions.get(name)

    def set_hold(self, hold: Hold) -> None:
        with self._lock:
            known = hold.hold_id in {existing.hold_id for existing in self.guard.holds}
            self.guard.set_hold(hold)
        if not known:
            self.get_logger().warning(f"[{hold.hold_id}] stop latched: {hold.reason.message}")
            self.audit("hold_set", {"hold_id": hold.hold_id, "reason": hold.reason.to_json()})
        self._decide_and_publish()

    def clear_hold(self, hold_id: str) -> None:
        with self._lock:
            removed = self.guard.clear_hold(hold_id, self.now_s())
        if removed:
            self.get_logger().info(f"[{hold_id}] stop cleared; motion resumes after a zero or new command")
            self.audit("hold_cleared", {"hold_id": hold_id})
            self._decide_and_publish()

    def holds(self) -> tuple[Hold, ...]:
        with self._lock:
            return self.guard.holds

    def add_grant(self, grant: OverrideGrant) -> None:
        with self._lock:
            self.guard.add_grant(grant)
        self.get_logger().warning(
            f"[override {grant.override_id}] {grant.operator_id} ({grant.role}) waives {sorted(grant.rule_ids)} "
            f"until {grant.expires_at:.3f}: {grant.reason}"
        )

    def revoke_grant(self, override_id: str) -> bool:
        with self._lock:
            return self.guard.revoke_grant(override_id)

    def grants(self) -> tuple[OverrideGrant, ...]:
        with self._lock:
            return self.guard.active_grants(self.now_s())

    def refutable_by(self, rule_id: str) -> RefutableBy | None:
        for zone in self._zones:
            if zone.rule_id == rule_id:
                return zone.refutable_by
        info = rule_info(rule_id)
        if info is not None:
            return info.refutable_by
        for extension in self._extensions.values():
            lookup = getattr(extension, "refutable_by", None)
            if lookup is not None:
                found = lookup(rule_id)
                if found is not None:
                    return found  # type: ignore[no-any-return]
        return None

    def recent_decision(self, decision_id: str) -> Decision | None:
        with self._lock:
            return self._recent.get(decision_id)

    def publish_decision(self, decision: Decision) -> None:
        with self._lock:
            self._remember(decision)
        if decision.verdict is not Verdict.COMPLY or decision.overrides:
            self._refusals.publish(String(data=json.dumps(decision.to_json())))
        self._notify(decision)

    def audit(self, kind: str, payload: Mapping[str, JsonValue]) -> None:
        auditor = self._extensions.get("audit")
        if auditor is not None:
            auditor.record(kind, payload)

    # Callbacks ------------------------------------------------------------------------------

    def _on_command(self, msg: Any) -> None:
        now = self.now_s()
        if self._command_type is TwistStamped:
            twist = twist_from_msg(msg.twist)
            stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        else:
            twist, stamp = twist_from_msg(msg), None
        with self._lock:
            sequence = self.guard.counters.commands + 1
            self.guard.submit_command(TwistCommand(twist, received_at=now, stamp=stamp, sequence=sequence))
        self._decide_and_publish(from_command=True)

    def _on_scan(self, name: str, msg: LaserScan) -> None:
        header, ranges = scan_from_msg(msg)
        with self._lock:
            result = self.guard.update_scan(name, header, ranges, self.now_s())
        if isinstance(result, ScanRejection):
            self.get_logger().warning(
                f"[scan {name}] rejected scan: {result.reason}; the source is invalid until a valid scan arrives",
                throttle_duration_sec=WARN_THROTTLE_S,
            )
        else:
            for warning in self.guard.scan_coverage_warnings():
                self.get_logger().warning(f"[scan {name}] {warning}", throttle_duration_sec=10.0)

    def _on_odom(self, msg: Odometry) -> None:
        with self._lock:
            odom = self.guard.update_odom(odom_from_msg(msg, self.now_s()))
        if math.isnan(odom.linear_speed) or math.isnan(odom.angular_speed):
            self.get_logger().warning(
                f"[odom] implausible twist ignored (linear {msg.twist.twist.linear.x:.3g} m/s, "
                f"yaw rate {msg.twist.twist.angular.z:.3g} rad/s); the pose is still used",
                throttle_duration_sec=WARN_THROTTLE_S,
            )

    def _on_people(self, msg: PoseArray) -> None:
        with self._lock:
            self.guard.update_people(people_from_msg(msg, self.now_s()))

    def _on_timer(self) -> None:
        self._check_clock()
        self._decide_and_publish()

    def _on_incompatible_qos(self, info: QoSRequestedIncompatibleQoSInfo) -> None:
        self._qos_incompatible += 1
        self.get_logger().error(
            f"[cmd_vel_in] a publisher offers incompatible QoS (policy id {info.last_policy_kind}, "
            f"{info.total_count} so far): its commands never arrive; publish cmd_vel_in as RELIABLE",
            throttle_duration_sec=WARN_THROTTLE_S,
        )
        self.set_hold(
            Hold(
                "source.qos_incompatible",
                make_reason(
                    "source.qos_incompatible",
                    Verdict.FAULT,
                    "A cmd_vel_in publisher offers QoS incompatible with this node (best effort into reliable?): "
                    "its commands are lost, stopping.",
                    evidence=(
                        Evidence("incompatible publishers", float(info.total_count), "", source="cmd_vel_in"),
                    ),
                    consequence="The commander believes it controls the robot while none of its commands arrive.",
                    remedy="Publish cmd_vel_in with RELIABLE reliability, then restart the commander.",
                ),
                self.now_s(),
            )
        )

    def _check_publishers(self) -> None:
        infos = self.get_publishers_info_by_topic(self.resolve_topic_name("cmd_vel_in"))
        nodes = sorted(f"{info.node_namespace.rstrip('/')}/{info.node_name}" for info in infos)
        if nodes == self._publisher_nodes:
            return
        if any("_NODE_NAME_UNKNOWN_" in name for name in nodes) and self._unknown_publisher_rounds < 5:
            # Discovery reports an endpoint before its node's name. Wait up to about one
            # second for the name, so the report can name who publishes.
            self._unknown_publisher_rounds += 1
            return
        self._unknown_publisher_rounds = 0
        self._publisher_nodes = nodes
        with self._lock:
            known = len(nodes) == 1 and "_NODE_NAME_UNKNOWN_" not in nodes[0]
            self.guard.requester = f"node:{nodes[0]}" if known else "topic:cmd_vel_in"
        hold_id = "source.multiple_publishers"
        if len(nodes) > 1:
            self.get_logger().error(
                f"[cmd_vel_in] {len(nodes)} publishers: {', '.join(nodes)}; "
                + (
                    "stopping until only one remains"
                    if self.config.command.multiple_publishers == "stop"
                    else "warning only"
                )
            )
            if self.config.command.multiple_publishers == "stop":
                self.set_hold(
                    Hold(
                        hold_id,
                        make_reason(
                            hold_id,
                            Verdict.FAULT,
                            f"{len(nodes)} nodes publish cmd_vel_in ({', '.join(nodes)}): their commands interleave, "
                            "stopping.",
                            evidence=(Evidence("publishers", ", ".join(nodes), "", source="cmd_vel_in"),),
                            consequence="Commands from two sources would alternate and the robot would jerk.",
                            remedy="Stop all but one commander, or put a command multiplexer (twist_mux) upstream.",
                        ),
                        self.now_s(),
                    )
                )
        elif hold_id in {hold.hold_id for hold in self.holds()}:
            self.clear_hold(hold_id)

    def _check_clock(self) -> None:
        now = self.now_s()
        if now != self._last_ros_time:
            self._last_ros_time = now
            self._ros_time_changed_at = time.monotonic()
            if "source.stale.clock" in {hold.hold_id for hold in self.holds()}:
                self.clear_hold("source.stale.clock")
            return
        stalled = time.monotonic() - self._ros_time_changed_at
        if stalled > CLOCK_STALL_S and "source.stale.clock" not in {hold.hold_id for hold in self.holds()}:
            self.set_hold(
                Hold(
                    "source.stale.clock",
                    make_reason(
                        "source.stale.clock",
                        Verdict.FAULT,
                        f"ROS time has not advanced for {stalled:.1f} s (is /clock published under use_sim_time?): "
                        "stopping.",
                        evidence=(
                            Evidence("clock stalled for", stalled, "s", limit=CLOCK_STALL_S, source="/clock"),
                        ),
                        consequence="Timeouts and ages cannot be measured on a stopped clock.",
                        remedy="Publish /clock, or run without use_sim_time.",
                    ),
                    now,
                )
            )

    # Decisions --------------------------------------------------------------------------

    def _decide_and_publish(self, from_command: bool = False) -> None:
        if self._shutting_down:
            return
        with self._lock:
            try:
                result = self.guard.decide(self.now_s(), time.time())
            except Exception as error:
                self._internal_error(error)
                return
            steady = time.monotonic()
            due = steady - self._last_publish_steady >= 0.9 * self.config.output_period
            if from_command or due or result.output != self._last_published_output:
                self._publish_output(result.output)
                self._last_publish_steady = steady
                self._last_published_output = result.output
            self._last_decision = result
            if from_command:
                self._command_verdicts[result.decision.verdict.value] += 1
                self._command_rules.update(result.decision.rule_ids)
            self._handle_decision(result.decision)

    def _publish_output(self, twist: Twist) -> None:
        if self._command_type is TwistStamped:
            msg = TwistStamped()
            msg.header.stamp = self.get_clock().now().to_msg()
            msg.header.frame_id = "base_link"
            fill_twist_msg(msg.twist, twist)
        else:
            msg = fill_twist_msg(TwistMsg(), twist)
        self._output.publish(msg)

    def _handle_decision(self, decision: Decision) -> None:
        signature = decision.signature
        changed = signature != self._last_signature
        self._last_signature = signature
        if changed:
            self._publish_state()
        if decision.verdict is Verdict.COMPLY and not decision.overrides:
            self._notify(decision)
            return
        if changed:
            steady = time.monotonic()
            last = self._published_at.get(signature)
            if last is not None and steady - last < self.config.refusals.debounce:
                self._suppressed_refusals += 1
            else:
                self._published_at[signature] = steady
                with self._lock:
                    self._remember(decision)
                self._refusals.publish(String(data=json.dumps(decision.to_json())))
                self._log_decision(decision)
                self.audit("decision", decision.to_json())
        self._notify(decision)

    def _notify(self, decision: Decision) -> None:
        for name, extension in self._extensions.items():
            try:
                extension.on_decision(decision)
            except Exception as error:
                self.get_logger().error(
                    f"[{name}] on_decision failed: {error!r}", throttle_duration_sec=WARN_THROTTLE_S
                )

    def _remember(self, decision: Decision) -> None:
        self._recent[decision.decision_id] = decision
        while len(self._recent) > RECENT_DECISIONS:
            self._recent.popitem(last=False)

    def _log_decision(self, decision: Decision) -> None:
        first = decision.reasons[0] if decision.reasons else None
        text = (
            f"{decision.verdict.value}: {first.rule_id}: {first.message}" if first else decision.verdict.value
        )
        if decision.verdict in (Verdict.FAULT, Verdict.REFUSE):
            self.get_logger().warning(text)
        else:
            self.get_logger().info(text)

    def _internal_error(self, error: BaseException) -> None:
        self.get_logger().error(f"[core] decision failed, stopping: {error!r}\n{traceback.format_exc()}")
        self._publish_output(ZERO_TWIST)
        with self._lock:
            self.guard.set_hold(
                Hold(
                    "node.internal_error",
                    make_reason(
                        "node.internal_error",
                        Verdict.FAULT,
                        f"Internal error in the decision core ({type(error).__name__}: {error}): stopping.",
                        consequence="The layer cannot decide whether motion is safe.",
                        remedy="Report the error with the node log; restart the node.",
                    ),
                    self.now_s(),
                )
            )

    # State and diagnostics --------------------------------------------------------------------

    def state_json(self) -> dict[str, Any]:
        now = self.now_s()
        with self._lock:
            decision = self._last_decision
            sources = {
                source.name: {
                    "topic": source.topic,
                    "age_s": _finite(source.age(now)),
                    "required": source.required,
                    "received": source.received_count,
                    "rejected": source.rejected_count,
                    "invalid": source.invalid_reason,
                }
                for source in self.guard.sources()
            }
            counters = self.guard.counters
            state: dict[str, Any] = {
                "node": self.get_fully_qualified_name(),
                "stamp": now,
                "policy_hash": self._policy_hash,
                "verdict": decision.decision.verdict.value if decision else None,
                "rules": list(decision.decision.rule_ids) if decision else [],
                "output": decision.output.to_json() if decision else None,
                "holds": [
                    {"hold_id": hold.hold_id, "message": hold.reason.message} for hold in self.guard.holds
                ],
                "active_overrides": [grant.to_note().to_json() for grant in self.guard.active_grants(now)],
                "sources": sources,
                "cmd_vel_in_publishers": self._publisher_nodes,
                "limits": self.config.limits.model_dump(),
                "counts": {
                    "commands": counters.commands,
                    "decisions": counters.decisions,
                    "non_finite_commands": counters.non_finite_commands,
                    "per_verdict": dict(counters.per_verdict),
                    "command_verdicts": dict(self._command_verdicts),
                    "command_rules": dict(self._command_rules),
                    "suppressed_refusals": self._suppressed_refusals,
                    "qos_incompatible": self._qos_incompatible,
                },
            }
        for name, extension in self._extensions.items():
            try:
                state[name] = extension.state()
            except Exception as error:
                state[name] = {"error": repr(error)}
        return state

    def _publish_state(self) -> None:
        self._state.publish(String(data=json.dumps(self.state_json(), default=str)))

    def _on_diagnostics_timer(self) -> None:
        state = self.state_json()
        status = DiagnosticStatus()
        status.name = f"{self.get_name()}: motion"
        status.hardware_id = self.get_fully_qualified_name()
        verdict = state["verdict"]
        holds = state["holds"]
        if verdict == Verdict.FAULT.value or holds:
            status.level = DiagnosticStatus.ERROR
        elif verdict in (Verdict.REFUSE.value, Verdict.DEFER.value) or self.guard.scan_coverage_warnings():
            status.level = DiagnosticStatus.WARN
        else:
            status.level = DiagnosticStatus.OK
        status.message = f"{verdict}: {', '.join(state['rules']) or 'no rule fired'}"

        values = [
            KeyValue(key="verdict", value=str(verdict)),
            KeyValue(key="policy_hash", value=self._policy_hash),
            KeyValue(key="holds", value=", ".join(hold["hold_id"] for hold in holds)),
            KeyValue(key="obstacle clearance", value=self.guard.obstacles.clearance_backend),
        ]
        for name, source in state["sources"].items():
            values.append(KeyValue(key=f"{name} age [s]", value=_fmt(source["age_s"])))
            if source["invalid"]:
                values.append(KeyValue(key=f"{name} invalid", value=str(source["invalid"])))
        for warning in self.guard.scan_coverage_warnings():
            values.append(KeyValue(key="scan coverage", value=warning))
        for key, value in state["counts"].items():
            values.append(KeyValue(key=key, value=json.dumps(value)))
        status.values = values

        array = DiagnosticArray()
        array.header.stamp = self.get_clock().now().to_msg()
        array.status.append(status)
        for name, extension in self._extensions.items():
            try:
                array.status.extend(extension.diagnostics())
            except Exception as error:
                self.get_logger().error(f"[{name}] diagnostics failed: {error!r}", throttle_duration_sec=10.0)
        self._diagnostics.publish(array)
        self._publish_state()

        if self._markers.get_subscription_count() > 0:
            stopped = verdict in (Verdict.FAULT.value, Verdict.REFUSE.value)
            self._markers.publish(
                zone_markers(
                    self.guard.obstacles.footprint,
                    self.config.obstacles.stop_distance,
                    self.config.obstacles.slowdown_distance,
                    "base_link",
                    self.get_clock().now().to_msg(),
                    stopped,
                )
            )

    # Parameters ---------------------------------------------------------------------------------

    def _validate_update(self, parameters: Sequence[Parameter]) -> SetParametersResult:
        """Validate an update on a copy of the configuration; swap it in only when valid."""
        flat = dict(self._flat)
        for parameter in parameters:
            if parameter.name not in flat:
                continue
            value = parameter.value
            flat[parameter.name] = tuple(value) if isinstance(value, list) else value
        if flat == self._flat:
            return SetParametersResult(successful=True)
        try:
            config = load_motion_config(flat, self._sources)
        except ConfigError as error:
            reason = "; ".join(error.problems)
            self.get_logger().warning(f"[parameters] update rejected: {reason}")
            return SetParametersResult(successful=False, reason=reason)
        with self._lock:
            self.config = config
            self._flat = flat
            self._policy_hash = policy_hash(_json_ready(flat))
            self.guard = _rebuild_guard(self.guard, config, self._policy_hash)
        self.get_logger().info(
            f"[parameters] configuration updated; policy {self._policy_hash[:12]}, obstacle clearance in "
            f"{_BACKEND_NAMES[self.guard.obstacles.clearance_backend]}"
        )
        self.audit("configuration", {"policy_hash": self._policy_hash, "parameters": _json_ready(flat)})
        return SetParametersResult(successful=True)

    # Shutdown -------------------------------------------------------------------------------------

    def shutdown(self, why: str) -> None:
        """Publish zero, then stop every extension (the e-stop link trips the board)."""
        if self._shutting_down:
            return
        self._shutting_down = True
        self.get_logger().info(f"shutting down ({why}): publishing zero velocity")
        try:
            self._publish_output(ZERO_TWIST)
        except Exception as error:
            self.get_logger().error(f"could not publish zero velocity on shutdown: {error!r}")
        for name, extension in reversed(list(self._extensions.items())):
            try:
                extension.shutdown()
            except Exception as error:
                self.get_logger().error(f"[{name}] shutdown failed: {error!r}")


def _rebuild_guard(old: MotionGuard, config: MotionConfig, hash_: str) -> MotionGuard:
    """Build a guard with the new configuration that keeps holds and grants; sensor data re-arrives."""
    guard = MotionGuard(config, started_at=old.started_at, policy_hash=hash_, zone_check=old.zone_check)
    for hold in old.holds:
        guard.set_hold(hold)
    for grant in old._grants.values():
        guard.add_grant(grant)
    guard.requester = old.requester
    guard.counters = old.counters
    return guard


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _fmt(value: float | None) -> str:
    return "never" if value is None else f"{value:.3f}"


def _json_ready(flat: Mapping[str, Any]) -> dict[str, JsonValue]:
    return {key: list(value) if isinstance(value, tuple) else value for key, value in flat.items()}


def _string_descriptor(name: str, description: str) -> Any:
    from rcl_interfaces.msg import ParameterDescriptor, ParameterType

    return ParameterDescriptor(
        name=name, type=ParameterType.PARAMETER_STRING, description=description, read_only=True
    )


def _bool_descriptor(name: str, extension: str) -> Any:
    from rcl_interfaces.msg import ParameterDescriptor, ParameterType

    return ParameterDescriptor(
        name=name,
        type=ParameterType.PARAMETER_BOOL,
        description=f"Start the {extension} extension.",
        read_only=True,
    )


def _make_executor(node: SafetyNode) -> Any:
    """Create the executor named by the read-only parameter `executor` (`single` or `events`)."""
    kind = node.executor_kind
    if kind == "events":
        from rclpy.experimental import EventsExecutor

        return EventsExecutor()
    if kind != "single":
        node.get_logger().error(f"executor {kind!r} is not 'single' or 'events'; using 'single'")
    return rclpy.executors.SingleThreadedExecutor()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: `nc_safety_node --ros-args --params-file config/nc_safety.yaml`."""
    args = list(sys.argv if argv is None else ["nc_safety_node", *argv])
    for index, item in enumerate(args[:-1]):
        if item == "--params-file" and not os.path.isfile(args[index + 1]):
            print(
                f"nc_safety: params file {args[index + 1]!r} not found; pass an existing YAML file, "
                "for example config/nc_safety.yaml",
                file=sys.stderr,
            )
            return 2
    try:
        rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    except RCLError as error:
        # rcl reports unparsable params files and malformed --ros-args here.
        print(f"nc_safety: invalid ROS arguments or params file: {error}", file=sys.stderr)
        return 2
    stop = threading.Event()
    reason = {"why": "shutdown"}

    def on_signal(signum: int, _frame: Any) -> None:
        reason["why"] = signal.Signals(signum).name
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        node = SafetyNode(argv=args)
    except ConfigError as error:
        print(f"nc_safety: {error}", file=sys.stderr)
        rclpy.try_shutdown()
        return 2
    executor = _make_executor(node)
    executor.add_node(node)
    try:
        while not stop.is_set() and rclpy.ok():
            executor.spin_once(timeout_sec=0.05)
    except Exception as error:
        reason["why"] = f"exception {error!r}"
        node.get_logger().error(f"executor failed: {error!r}\n{traceback.format_exc()}")
    finally:
        node.shutdown(reason["why"])
        # Give the zero command a moment to leave before the participant goes away.
        deadline = time.monotonic() + 0.2
        while time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.02)
        executor.shutdown(timeout_sec=1.0)
        node.destroy_node()
        rclpy.try_shutdown()
    return 0 if reason["why"] in ("SIGINT", "SIGTERM", "shutdown") else 1


if __name__ == "__main__":
    sys.exit(main())
