"""The `trajectory` extension: joint trajectories from `trajectory_in` to `trajectory_out`.

Each trajectory is checked as a whole before anything is forwarded. While a stop is
latched (e-stop, operator stop, audit failure) nothing is forwarded.
"""

from __future__ import annotations

import time
from typing import Any

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from nc_safety.core.justification import Decision, Reason, combine
from nc_safety.core.trajectory import TrajectoryLimits, TrajectoryPoint, check_trajectory
from nc_safety.core.verdict import RefutableBy
from nc_safety.ros.extension import NodeServices
from nc_safety.ros.extension_params import ParameterSpec, declare_parameters

PARAMETERS: dict[str, ParameterSpec] = {
    "joints": ParameterSpec(["joint1"], "Names of the checked joints."),
    "min_positions": ParameterSpec([-3.14], "Hard lower limit per joint, in rad (m for prismatic joints)."),
    "max_positions": ParameterSpec([3.14], "Hard upper limit per joint, in rad (m for prismatic joints)."),
    "max_velocities": ParameterSpec([1.0], "Speed limit per joint, in rad/s (m/s for prismatic joints)."),
    "soft_margin": ParameterSpec(
        0.05, "Band inside the hard limits that needs a supervisor's override, in rad or m.", 0.0, 10.0
    ),
    "max_points": ParameterSpec(10_000, "Trajectories with more points are refused.", 1, 1_000_000),
    "mode": ParameterSpec("scale", "Too-fast trajectories: scale (stretch the timing) or refuse."),
    "joint_states_timeout": ParameterSpec(
        1.0, "Joint states older than this are not used as the start of a trajectory, in s.", 0.01, 60.0
    ),
}


def _seconds(duration: Any) -> float:
    return float(duration.sec) + float(duration.nanosec) * 1e-9


def _duration(seconds: float) -> Any:
    from builtin_interfaces.msg import Duration

    whole = int(seconds)
    return Duration(sec=whole, nanosec=min(round((seconds - whole) * 1e9), 999_999_999))


class TrajectoryBridge:
    """Checks joint trajectories against the configured joint limits."""

    name = "trajectory"

    def __init__(self, services: NodeServices) -> None:
        self._services = services
        node = services.ros_node
        values = declare_parameters(node, "trajectory", PARAMETERS)
        self.limits = TrajectoryLimits.from_arrays(
            list(values["joints"]),
            list(values["min_positions"]),
            list(values["max_positions"]),
            list(values["max_velocities"]),
            soft_margin=float(values["soft_margin"]),
            max_points=int(values["max_points"]),
            mode=str(values["mode"]),
        )
        self._joint_state_timeout = float(values["joint_states_timeout"])

        self._joint_state: tuple[dict[str, float], float] | None = None
        node.create_subscription(JointState, "joint_states", self._on_joint_state, qos_profile_sensor_data)
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self._output = node.create_publisher(JointTrajectory, "trajectory_out", reliable)
        node.create_subscription(JointTrajectory, "trajectory_in", self._on_trajectory, reliable)
        self._counts: dict[str, int] = {}
        self._sequence = 0

    def _on_joint_state(self, message: JointState) -> None:
        if len(message.name) != len(message.position):
            # A malformed state is not a start position; the first segment stays unchecked.
            self._services.ros_node.get_logger().warning(
                f"[trajectory] joint_states with {len(message.name)} names and {len(message.position)} positions "
                "ignored",
                throttle_duration_sec=5.0,
            )
            return
        positions = dict(zip(message.name, (float(value) for value in message.position), strict=True))
        self._joint_state = (positions, time.monotonic())

    def _start(self) -> dict[str, float] | None:
        """Current joint positions when fresh; the first segment's speed is checked from them."""
        if self._joint_state is None or time.monotonic() - self._joint_state[1] > self._joint_state_timeout:
            return None
        return self._joint_state[0]

    def _on_trajectory(self, message: JointTrajectory) -> None:
        self._sequence += 1
        now = self._services.now_s()
        points = [
            TrajectoryPoint(tuple(point.positions), tuple(point.velocities), _seconds(point.time_from_start))
            for point in message.points
        ]
        holds = self._services.holds()
        if holds:
            reasons: list[Reason] = [hold.reason for hold in holds]
            check_points: tuple[TrajectoryPoint, ...] = ()
        else:
            result = check_trajectory(list(message.joint_names), points, self.limits, self._start())
            reasons = list(result.reasons)
            check_points = result.scaled_points
        kept, waived, used = [], [], {}
        grants = self._services.grants()
        for reason in reasons:
            grant = None
            if reason.refutable_by.overridable:
                grant = next((g for g in grants if g.covers(reason.rule_id, now)), None)
            if grant is None:
                kept.append(reason)
            else:
                waived.append(reason)
                used[grant.override_id] = grant
        if waived and not kept:
            # The waived rules were position checks; the velocity check still applies.
            rest = check_trajectory(
                list(message.joint_names), points, _without_soft_margin(self.limits), self._start()
            )
            kept, check_points = list(rest.reasons), rest.scaled_points
        decision = combine(
            stamp=now,
            wall_time=time.time(),
            command_kind="trajectory",
            command_id=str(self._sequence),
            requester="topic:trajectory_in",
            reasons=kept,
            policy_hash=self._services.policy_hash,
            overrides=[grant.to_note() for grant in used.values()],
            overridden=waived,
            output={"points": len(check_points)},
        )
        if decision.verdict.forwards and check_points:
            self._output.publish(_message(message, check_points))
        self._counts[decision.verdict.value] = self._counts.get(decision.verdict.value, 0) + 1
        self._services.publish_decision(decision)

    def refutable_by(self, rule_id: str) -> RefutableBy | None:
        if rule_id.startswith("trajectory.limit.soft_position."):
            return RefutableBy.SUPERVISOR
        if rule_id.startswith("trajectory."):
            return RefutableBy.NONE
        return None

    def on_decision(self, decision: Decision) -> None:
        del decision

    def diagnostics(self) -> list[DiagnosticStatus]:
        status = DiagnosticStatus(
            name="nc_safety: trajectories", level=DiagnosticStatus.OK, message="checking"
        )
        status.values = [
            KeyValue(key=verdict, value=str(count)) for verdict, count in sorted(self._counts.items())
        ]
        return [status]

    def state(self) -> dict[str, Any]:
        return {"joints": sorted(self.limits.joints), "counts": dict(self._counts)}

    def shutdown(self) -> None:
        return None


def _without_soft_margin(limits: TrajectoryLimits) -> TrajectoryLimits:
    return TrajectoryLimits(limits.joints, 0.0, limits.max_points, limits.mode)


def _message(original: JointTrajectory, points: tuple[TrajectoryPoint, ...]) -> JointTrajectory:
    message = JointTrajectory()
    message.header = original.header
    message.joint_names = list(original.joint_names)
    for point in points:
        out = JointTrajectoryPoint()
        out.positions = list(point.positions)
        out.velocities = list(point.velocities)
        out.time_from_start = _duration(point.time_from_start)
        message.points.append(out)
    return message
