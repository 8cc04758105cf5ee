"""Joint trajectories: hard and soft position limits, velocity limits, malformed input.

A trajectory that would drive a joint past its hard limit is refused and no override
lifts that. One that enters the soft margin inside a hard limit is refused too, but a
supervisor may override it. One that is only too fast is slowed: every `time_from_start`
is stretched by the same factor, which keeps the path and lowers every velocity.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from nc_safety.core.errors import ConfigError
from nc_safety.core.justification import Evidence, Reason
from nc_safety.core.verdict import ReasonKind, RefutableBy, Severity, Verdict


@dataclass(frozen=True, slots=True)
class JointLimit:
    """Limits of one joint: positions in rad (or m for prismatic joints), speed per second."""

    name: str
    min_position: float
    max_position: float
    max_velocity: float


@dataclass(frozen=True, slots=True)
class TrajectoryLimits:
    joints: Mapping[str, JointLimit]
    soft_margin: float = 0.05
    """Band inside each hard limit that needs a supervisor's override, rad or m."""
    max_points: int = 10_000
    mode: str = "scale"
    """`scale`: slow a too-fast trajectory down; `refuse`: refuse it."""

    @staticmethod
    def from_arrays(
        names: Sequence[str],
        minimum: Sequence[float],
        maximum: Sequence[float],
        velocity: Sequence[float],
        *,
        soft_margin: float,
        max_points: int,
        mode: str,
    ) -> TrajectoryLimits:
        """Build limits from parallel arrays (as ROS parameters give them); ConfigError lists every problem."""
        problems = []
        lengths = {len(names), len(minimum), len(maximum), len(velocity)}
        if len(lengths) != 1:
            problems.append(
                f"trajectory.joints ({len(names)}), min_positions ({len(minimum)}), max_positions ({len(maximum)}) "
                f"and max_velocities ({len(velocity)}) must have the same length"
            )
        joints: dict[str, JointLimit] = {}
        for index, name in enumerate(names):
            if index >= min(len(minimum), len(maximum), len(velocity)):
                break
            low, high, speed = minimum[index], maximum[index], velocity[index]
            if not all(math.isfinite(value) for value in (low, high, speed)):
                problems.append(f"joint {name!r}: limits must be finite, got [{low}, {high}], {speed}")
            elif low >= high:
                problems.append(f"joint {name!r}: min_position {low} must be below max_position {high}")
            elif speed <= 0.0:
                problems.append(f"joint {name!r}: max_velocity {speed} must be positive")
            elif high - low <= 2.0 * soft_margin:
                problems.append(
                    f"joint {name!r}: range [{low}, {high}] is narrower than twice soft_margin {soft_margin}"
                )
            if name in joints:
                problems.append(f"joint {name!r} is listed twice")
            joints[name] = JointLimit(name, low, high, speed)
        if not math.isfinite(soft_margin) or soft_margin < 0.0:
            problems.append(f"trajectory.soft_margin {soft_margin} must be a finite value >= 0")
        if mode not in ("scale", "refuse"):
            problems.append(f"trajectory.mode {mode!r} must be 'scale' or 'refuse'")
        if max_points < 1:
            problems.append(f"trajectory.max_points {max_points} must be >= 1")
        if problems:
            raise ConfigError(problems, source="trajectory limits")
        return TrajectoryLimits(joints, soft_margin, max_points, mode)


@dataclass(frozen=True, slots=True)
class TrajectoryPoint:
    positions: tuple[float, ...]
    velocities: tuple[float, ...] = ()
    time_from_start: float = 0.0
    """Seconds."""


@dataclass(frozen=True, slots=True)
class TrajectoryCheck:
    """Reasons that fired and the time scale to apply (1.0: unchanged)."""

    reasons: tuple[Reason, ...] = ()
    time_scale: float = 1.0
    scaled_points: tuple[TrajectoryPoint, ...] = field(default_factory=tuple)


def _reason(
    rule_id: str,
    verdict: Verdict,
    message: str,
    *,
    kind: ReasonKind = ReasonKind.SAFETY,
    severity: Severity = Severity.HIGH,
    refutable_by: RefutableBy = RefutableBy.NONE,
    evidence: tuple[Evidence, ...] = (),
    consequence: str = "",
    remedy: str = "",
    remedy_values: dict[str, float] | None = None,
) -> Reason:
    return Reason(
        rule_id=rule_id,
        kind=kind,
        verdict=verdict,
        severity=severity,
        message=message,
        evidence=evidence,
        consequence=consequence,
        refutable_by=refutable_by,
        remedy=remedy,
        remedy_values=remedy_values or {},
    )


def _malformed(message: str) -> TrajectoryCheck:
    return TrajectoryCheck(
        reasons=(
            _reason(
                "trajectory.invalid",
                Verdict.REFUSE,
                message,
                kind=ReasonKind.INTEGRITY,
                consequence="A malformed trajectory has no defined motion.",
                remedy="Send a JointTrajectory with one position per joint per point and increasing times.",
            ),
        )
    )


def check_trajectory(
    joint_names: Sequence[str],
    points: Sequence[TrajectoryPoint],
    limits: TrajectoryLimits,
    start: Mapping[str, float] | None = None,
) -> TrajectoryCheck:
    """Check a trajectory against the limits; the order of checks is fixed, the first failure wins.

    `start` contains the current joint positions (from joint states) when known; the segment
    from there to the first point is then checked for speed too.
    """
    if not points:
        return _malformed("Trajectory refused: it has no points.")
    if len(points) > limits.max_points:
        return _malformed(
            f"Trajectory refused: {len(points)} points, more than max_points {limits.max_points}."
        )
    if len(set(joint_names)) != len(joint_names):
        return _malformed(f"Trajectory refused: joint names {list(joint_names)} contain duplicates.")
    count = len(joint_names)
    previous_time = -math.inf
    for index, point in enumerate(points):
        if len(point.positions) != count:
            return _malformed(
                f"Trajectory refused: point {index} has {len(point.positions)} positions for {count} joints."
            )
        if point.velocities and len(point.velocities) != count:
            return _malformed(
                f"Trajectory refused: point {index} has {len(point.velocities)} velocities for {count} joints."
            )
        values = (*point.positions, *point.velocities, point.time_from_start)
        if not all(math.isfinite(value) for value in values):
            return TrajectoryCheck(
                reasons=(
                    _reason(
                        "trajectory.non_finite",
                        Verdict.REFUSE,
                        f"Trajectory refused: point {index} holds NaN or infinity.",
                        severity=Severity.CRITICAL,
                        evidence=(Evidence("point", float(index), "", source="trajectory_in"),),
                        consequence="A non-finite set-point has no defined meaning for the joint controllers.",
                        remedy="Send finite positions, velocities and times.",
                    ),
                )
            )
        if point.time_from_start <= previous_time:
            return _malformed(
                f"Trajectory refused: time_from_start of point {index} ({point.time_from_start:.3f} s) "
                "does not increase."
            )
        previous_time = point.time_from_start
    unknown = [name for name in joint_names if name not in limits.joints]
    if unknown:
        return TrajectoryCheck(
            reasons=(
                _reason(
                    "trajectory.unknown_joint",
                    Verdict.UNABLE,
                    f"Trajectory refused: joint(s) {unknown} are not configured on this robot.",
                    kind=ReasonKind.FEASIBILITY,
                    severity=Severity.MEDIUM,
                    consequence="Limits of an unknown joint cannot be checked.",
                    remedy=f"Use the configured joints {sorted(limits.joints)}.",
                ),
            )
        )
    reasons = _position_reasons(joint_names, points, limits)
    if reasons:
        return TrajectoryCheck(reasons=tuple(reasons))
    initial = points[0].positions
    if start is not None and all(name in start and math.isfinite(start[name]) for name in joint_names):
        initial = tuple(start[name] for name in joint_names)
    return _velocity_check(joint_names, points, limits, initial)


def _position_reasons(
    joint_names: Sequence[str], points: Sequence[TrajectoryPoint], limits: TrajectoryLimits
) -> list[Reason]:
    reasons: list[Reason] = []
    for column, name in enumerate(joint_names):
        limit = limits.joints[name]
        values = [point.positions[column] for point in points]
        low, high = min(values), max(values)
        if low < limit.min_position or high > limit.max_position:
            worst = low if low < limit.min_position else high
            bound = limit.min_position if worst is low else limit.max_position
            reasons.append(
                _reason(
                    f"trajectory.limit.position.{name}",
                    Verdict.REFUSE,
                    f"Joint {name} would reach {worst:.4g}, beyond its hard limit {bound:.4g}.",
                    severity=Severity.CRITICAL,
                    evidence=(
                        Evidence(f"{name} position", worst, "rad", limit=bound, source="trajectory_in"),
                    ),
                    consequence="The joint would hit its mechanical stop or break the arm or what it holds.",
                    remedy=f"Keep {name} within [{limit.min_position:.4g}, {limit.max_position:.4g}].",
                )
            )
            continue
        soft_low, soft_high = limit.min_position + limits.soft_margin, limit.max_position - limits.soft_margin
        if low < soft_low or high > soft_high:
            worst = low if low < soft_low else high
            bound = soft_low if worst is low else soft_high
            reasons.append(
                _reason(
                    f"trajectory.limit.soft_position.{name}",
                    Verdict.REFUSE,
                    f"Joint {name} would reach {worst:.4g}, inside the {limits.soft_margin:.3g} margin of its limit.",
                    severity=Severity.MEDIUM,
                    refutable_by=RefutableBy.SUPERVISOR,
                    evidence=(
                        Evidence(f"{name} position", worst, "rad", limit=bound, source="trajectory_in"),
                    ),
                    consequence="Tracking error near the limit could drive the joint into its stop.",
                    remedy=f"Keep {name} within [{soft_low:.4g}, {soft_high:.4g}], or ask a supervisor to override.",
                )
            )
    return reasons


def _velocity_check(
    joint_names: Sequence[str],
    points: Sequence[TrajectoryPoint],
    limits: TrajectoryLimits,
    initial: tuple[float, ...],
) -> TrajectoryCheck:
    ratio = 1.0
    worst_joint = ""
    worst_speed = 0.0
    previous_positions = initial
    previous_time = 0.0
    for point in points:
        dt = point.time_from_start - previous_time
        for column, name in enumerate(joint_names):
            limit = limits.joints[name].max_velocity
            speeds = [abs(point.velocities[column])] if point.velocities else []
            if dt > 0.0:
                speeds.append(abs(point.positions[column] - previous_positions[column]) / dt)
            elif point.positions[column] != previous_positions[column]:
                speeds.append(math.inf)
            for speed in speeds:
                if speed / limit > ratio:
                    ratio, worst_joint, worst_speed = speed / limit, name, speed
        previous_positions, previous_time = point.positions, point.time_from_start
    if ratio <= 1.0:
        return TrajectoryCheck(scaled_points=tuple(points))
    limit = limits.joints[worst_joint].max_velocity
    evidence = (
        Evidence(f"{worst_joint} velocity", worst_speed, "rad/s", limit=limit, source="trajectory_in"),
    )
    if limits.mode == "refuse" or not math.isfinite(ratio):
        reason = _reason(
            f"trajectory.limit.velocity.{worst_joint}",
            Verdict.REFUSE,
            f"Joint {worst_joint} would move at {worst_speed:.4g}, above its limit {limit:.4g}.",
            severity=Severity.MEDIUM,
            evidence=evidence,
            consequence="The joint controllers could not follow, or the arm could hit something at speed.",
            remedy=f"Allow at least {ratio:.3g} times as much time for the trajectory.",
        )
        return TrajectoryCheck(reasons=(reason,))
    scaled = tuple(
        TrajectoryPoint(
            positions=point.positions,
            velocities=tuple(value / ratio for value in point.velocities),
            time_from_start=point.time_from_start * ratio,
        )
        for point in points
    )
    reason = _reason(
        f"trajectory.limit.velocity.{worst_joint}",
        Verdict.MODIFY,
        f"Joint {worst_joint} would move at {worst_speed:.4g}, above its limit {limit:.4g}: "
        f"trajectory slowed by {ratio:.3g}.",
        severity=Severity.LOW,
        evidence=evidence,
        consequence="The joint controllers could not follow the trajectory as timed.",
        remedy=f"Allow at least {ratio:.3g} times as much time to have it forwarded unchanged.",
        remedy_values={"time_scale": ratio},
    )
    return TrajectoryCheck(reasons=(reason,), time_scale=ratio, scaled_points=scaled)
