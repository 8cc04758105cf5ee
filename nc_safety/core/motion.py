"""The motion guard: decides what reaches the actuators for every velocity command.

Order of evaluation, each step able only to lower the speed: holds (e-stop, operator,
audit), source freshness, the command itself (silence, stamps, non-finite values),
restart interlock, velocity limits, acceleration ramp, then obstacles, people, geofence
and restricted zones. Outcomes of overridable rules that an active grant covers are
waived and listed as overridden; the grant's own speed caps still apply. The output is
the ramped twist scaled by the smallest remaining factor, and zero whenever a fault or a
refusal stops the robot.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from nc_safety.core.constraints import Outcome, make_reason
from nc_safety.core.constraints.geofence import GeofenceChecker, stopping_pose
from nc_safety.core.constraints.limits import apply_acceleration_limits, apply_velocity_limits
from nc_safety.core.constraints.obstacles import ObstacleChecker, ObstaclePoints
from nc_safety.core.constraints.people import PeopleChecker
from nc_safety.core.constraints.sources import SourceState, check_source
from nc_safety.core.grant import OverrideGrant
from nc_safety.core.holds import Hold
from nc_safety.core.justification import Decision, Evidence, JsonValue, Reason, combine
from nc_safety.core.motion_config import MotionConfig
from nc_safety.core.scan import ScanConverter, ScanHeader, ScanPoints, ScanRejection
from nc_safety.core.values import (
    ZERO_TWIST,
    FloatArray,
    OdomSnapshot,
    PeopleSnapshot,
    Pose2D,
    Twist,
    TwistCommand,
)
from nc_safety.core.verdict import Verdict

_RELATIVE_RULES = frozenset({"motion.obstacle.slowdown"})
"""Rules whose factor is a ratio of the speed checked, not a speed of its own."""

ZoneCheck = Callable[[Pose2D, Twist, Pose2D], list[Outcome]]
"""Extra normative check on motion: (current pose, twist, predicted stopping pose) -> outcomes."""

_EMPTY_POINTS: FloatArray = np.zeros((0, 2), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class MotionDecision:
    """The twist to publish and the decision that explains it."""

    output: Twist
    decision: Decision
    command_sequence: int | None
    """Sequence number of the command decided on; None for a decision without a command."""


@dataclass(slots=True)
class _Command:
    """The latest command; a non-finite command keeps only the names of its bad fields."""

    twist: Twist | None
    received_at: float
    stamp: float | None
    sequence: int
    non_finite_fields: tuple[str, ...] = ()


@dataclass(slots=True)
class GuardCounters:
    decisions: int = 0
    commands: int = 0
    non_finite_commands: int = 0
    per_verdict: dict[str, int] = field(default_factory=dict)


class MotionGuard:
    """Holds the motion state of one robot and decides on each command and timer tick.

    Not thread-safe: the node serialises calls.
    """

    def __init__(
        self,
        config: MotionConfig,
        *,
        started_at: float,
        policy_hash: str = "",
        zone_check: ZoneCheck | None = None,
    ) -> None:
        self.config = config
        self.policy_hash = policy_hash
        self.started_at = started_at
        self.zone_check = zone_check
        self.requester = "topic:cmd_vel_in"
        """Identity recorded as the requester of motion decisions (the node may refine it)."""
        period = config.output_period
        self.obstacles = ObstacleChecker(config.robot, config.obstacles, period)
        self.people = PeopleChecker(config.robot, config.people, period)
        self.geofence = (
            GeofenceChecker(config.robot, config.geofence, period) if config.geofence.enabled else None
        )
        self.converters = {
            name: ScanConverter(source, self.obstacles.footprint) for name, source in config.scans.items()
        }
        self.scan_sources = {
            name: SourceState(name, source.topic, source.timeout, source.required)
            for name, source in config.scans.items()
        }
        self.odom_source = SourceState("odom", config.odom.topic, config.odom.timeout, config.odom_required)
        self.people_source = SourceState(
            "people",
            config.people.topic,
            config.people.timeout,
            config.people.enabled and config.people.required,
        )
        self._scan_points: dict[str, ScanPoints] = {}
        self._scan_topics = ""
        """Topics of the sources in `_scan_points`, comma-separated, for the evidence."""
        self._merged_points: FloatArray = _EMPTY_POINTS
        self._prepared_points: ObstaclePoints = self.obstacles.prepare(_EMPTY_POINTS)
        self._odom: OdomSnapshot | None = None
        self._people: PeopleSnapshot | None = None
        self._command: _Command | None = None
        self._holds: dict[str, Hold] = {}
        self._grants: dict[str, OverrideGrant] = {}
        self._reset_at: float | None = None
        self._last_time: float | None = None
        self._last_output: Twist = ZERO_TWIST
        self._ramp_time: float | None = None
        self._ramp_output: Twist = ZERO_TWIST
        self.counters = GuardCounters()

    # Inputs -----------------------------------------------------------------------------

    def submit_command(self, command: TwistCommand) -> None:
        """Store a new command; the next `decide` uses it. Non-finite values are not kept."""
        self.counters.commands += 1
        bad = command.twist.non_finite_fields()
        if bad:
            self.counters.non_finite_commands += 1
            self._command = _Command(
                None, command.received_at, _finite_or_none(command.stamp), command.sequence, bad
            )
        else:
            twist = Twist.from_tuple(command.twist.as_tuple())
            self._command = _Command(
                twist, command.received_at, _finite_or_none(command.stamp), command.sequence
            )

    def update_scan(
        self, name: str, header: ScanHeader, ranges: FloatArray, received_at: float
    ) -> ScanPoints | ScanRejection:
        """Convert and store a scan of source `name`; a malformed one marks the source invalid."""
        result = self.converters[name].convert(header, ranges, received_at)
        source = self.scan_sources[name]
        if isinstance(result, ScanRejection):
            source.record(header.stamp if math.isfinite(header.stamp) else 0.0, received_at, result.reason)
            self._scan_points.pop(name, None)
        else:
            source.record(header.stamp, received_at)
            self._scan_points[name] = result
        self._merge_points()
        return result

    def _merge_points(self) -> None:
        self._scan_topics = ",".join(self.scan_sources[name].topic for name in self._scan_points)
        arrays = [scan.points for scan in self._scan_points.values()]
        if not arrays:
            self._merged_points = _EMPTY_POINTS
        elif len(arrays) == 1:
            self._merged_points = arrays[0]
        else:
            self._merged_points = np.concatenate(arrays)
        # Sorting once per scan lets every decision until the next scan skip far points.
        self._prepared_points = self.obstacles.prepare(self._merged_points)

    def update_odom(self, odom: OdomSnapshot) -> OdomSnapshot:
        """Store odometry; speeds beyond the plausible bound are replaced by NaN and ignored."""
        limits = self.config.limits
        factor = self.config.odom.plausible_speed_factor
        max_speed = factor * max(limits.max_linear_x, -limits.min_linear_x, limits.max_linear_y)
        linear = (
            odom.linear_speed
            if math.isfinite(odom.linear_speed) and abs(odom.linear_speed) <= max_speed
            else math.nan
        )
        angular = (
            odom.angular_speed
            if math.isfinite(odom.angular_speed) and abs(odom.angular_speed) <= factor * limits.max_angular_z
            else math.nan
        )
        pose_ok = all(math.isfinite(value) for value in (odom.pose.x, odom.pose.y, odom.pose.yaw))
        checked = OdomSnapshot(odom.pose, linear, angular, odom.stamp, odom.received_at)
        self.odom_source.record(odom.stamp, odom.received_at, None if pose_ok else "non-finite pose")
        self._odom = checked if pose_ok else None
        return checked

    def update_people(self, people: PeopleSnapshot) -> None:
        positions = people.positions
        finite = bool(np.isfinite(positions).all()) if positions.size else True
        self.people_source.record(people.stamp, people.received_at, None if finite else "non-finite position")
        self._people = people if finite else None

    # Holds and overrides ----------------------------------------------------------------

    def set_hold(self, hold: Hold) -> None:
        self._holds[hold.hold_id] = hold

    def clear_hold(self, hold_id: str, now: float) -> bool:
        removed = self._holds.pop(hold_id, None) is not None
        if removed and not self._holds:
            # ISO 13850: a reset must not restart motion; wait for zero or a fresh command.
            self._reset_at = now
        return removed

    @property
    def holds(self) -> tuple[Hold, ...]:
        return tuple(self._holds.values())

    def add_grant(self, grant: OverrideGrant) -> None:
        self._grants[grant.override_id] = grant

    def revoke_grant(self, override_id: str) -> bool:
        return self._grants.pop(override_id, None) is not None

    def active_grants(self, now: float) -> tuple[OverrideGrant, ...]:
        for override_id in [key for key, grant in self._grants.items() if now >= grant.expires_at]:
            del self._grants[override_id]
        return tuple(grant for grant in self._grants.values() if grant.active(now))

    # Queries ----------------------------------------------------------------------------

    @property
    def last_output(self) -> Twist:
        return self._last_output

    @property
    def obstacle_points(self) -> FloatArray:
        return self._merged_points

    def sources(self) -> list[SourceState]:
        result = list(self.scan_sources.values())
        if self.odom_source.required or self.odom_source.received_count:
            result.append(self.odom_source)
        if self.config.people.enabled:
            result.append(self.people_source)
        return result

    def scan_coverage_warnings(self) -> list[str]:
        """Scan sources whose reachable range cannot cover the stop zone."""
        needed = self.obstacles.radius + self.config.obstacles.stop_distance
        warnings = []
        for name, scan in self._scan_points.items():
            if scan.effective_range_max < needed:
                warnings.append(
                    f"scan source {name!r} reports ranges only up to {scan.effective_range_max:.2f} m, less than the "
                    f"{needed:.2f} m the stop zone reaches from the base: obstacles there cannot be seen"
                )
        return warnings

    # Decision ---------------------------------------------------------------------------

    def decide(self, now: float, wall_time: float) -> MotionDecision:
        """Decide on the latest command at ROS time `now` (seconds)."""
        outcomes: list[Outcome] = []
        self._advance_ramp(now)
        command = self._command
        twist = self._command_twist(command, now, outcomes)

        for hold in self._holds.values():
            outcomes.append(Outcome(hold.reason, 0.0))
        for source in self.sources():
            outcome = check_source(
                source,
                now,
                self.started_at,
                self.config.clock.future_tolerance,
                self.config.clock.mismatch_threshold,
            )
            if outcome is not None:
                outcomes.append(outcome)

        if twist is not None and self._reset_at is not None:
            if twist.is_zero() or (command is not None and command.received_at > self._reset_at):
                self._reset_at = None
            else:
                outcomes.append(_interlock_outcome(self._reset_at))

        stopped = False
        for outcome in outcomes:
            if outcome.scale == 0.0 and not outcome.reason.refutable_by.overridable:
                stopped = True
                break
        grants = self.active_grants(now) if self._grants else ()
        output = ZERO_TWIST
        if twist is not None and not stopped:
            output = self._constrain(twist, now, outcomes, grants)

        output, kept, waived, notes = _apply_overrides(output, outcomes, grants, now)
        if any(outcome.scale == 0.0 for outcome in kept):
            output = ZERO_TWIST
        return self._finish(now, wall_time, command, output, kept, waived, notes)

    def _command_twist(self, command: _Command | None, now: float, outcomes: list[Outcome]) -> Twist | None:
        """Return the finite, current twist to work on, or None with an outcome that explains why."""
        timeout = self.config.command.timeout
        if command is None:
            outcomes.append(_silent_outcome(None, timeout))
            return None
        if command.non_finite_fields:
            fields = ", ".join(command.non_finite_fields)
            outcomes.append(
                Outcome(
                    make_reason(
                        "motion.non_finite",
                        Verdict.REFUSE,
                        f"Command refused: {fields} not finite (NaN or infinity); publishing zero.",
                        evidence=tuple(
                            Evidence(name, None, "", source="cmd_vel_in")
                            for name in command.non_finite_fields
                        ),
                        consequence="A non-finite velocity has no defined meaning for the motor drivers.",
                        remedy="Send finite values in all six twist fields.",
                    ),
                    0.0,
                )
            )
            return None
        if command.stamp is not None:
            offset = command.stamp - now
            if abs(offset) > self.config.clock.mismatch_threshold:
                outcomes.append(
                    _stamp_fault(
                        "source.clock_mismatch.cmd_vel_in", offset, self.config.clock.mismatch_threshold
                    )
                )
                return None
            if offset > self.config.clock.future_tolerance:
                outcomes.append(
                    _stamp_fault("source.future.cmd_vel_in", offset, self.config.clock.future_tolerance)
                )
                return None
            if -offset > self.config.command.max_age:
                outcomes.append(_silent_outcome(-offset, self.config.command.max_age))
                return None
        silence = now - command.received_at
        if silence > timeout:
            outcomes.append(_silent_outcome(silence, timeout))
            return None
        return command.twist

    def _constrain(
        self, twist: Twist, now: float, outcomes: list[Outcome], grants: tuple[OverrideGrant, ...]
    ) -> Twist:
        """Apply limits, the ramp and the zone rules; return the twist with every factor applied."""
        config = self.config
        limited, limit_outcomes = apply_velocity_limits(twist, config.limits)
        outcomes.extend(limit_outcomes)

        ramp_time, ramp_output = self._ramp_time, self._ramp_output
        dt = config.output_period if ramp_time is None else now - ramp_time
        if not math.isfinite(dt) or dt <= 0.0:
            outcomes.append(_time_step_outcome(dt, "the clock went backwards or did not advance"))
            return ZERO_TWIST
        if dt > config.output.max_step_factor * config.output_period:
            if not ramp_output.is_zero():
                outcomes.append(_time_step_outcome(dt, "no decision for too long while moving"))
                return ZERO_TWIST
            dt = config.output_period

        # The zone rules judge the command itself first, so the ramp heads for the safe
        # target. Ramping first and scaling afterwards would compound the zone factor on
        # the previous, already scaled output and leave the robot crawling.
        target_outcomes = self._zone_outcomes(limited, now)
        target = _scaled_unwaived(limited, target_outcomes, grants, now)
        ramped, ramp_outcomes = apply_acceleration_limits(target, ramp_output, dt, config.limits)
        outcomes.extend(ramp_outcomes)
        outcomes.extend(target_outcomes)
        if ramped is target or ramped == target:
            return ramped
        # The ramp limits each axis on its own and can change the path's curvature, so the
        # output itself is checked again before it leaves.
        # The slowdown factor is relative to the speed it is applied to and is already in the
        # target, so only the rules that set an absolute speed or a stop judge again.
        output_outcomes = [
            outcome
            for outcome in self._zone_outcomes(ramped, now)
            if outcome.reason.rule_id not in _RELATIVE_RULES
        ]
        fired = {outcome.reason.rule_id for outcome in target_outcomes}
        outcomes.extend(outcome for outcome in output_outcomes if outcome.reason.rule_id not in fired)
        return _scaled_unwaived(ramped, output_outcomes, grants, now)

    def _zone_outcomes(self, twist: Twist, now: float) -> list[Outcome]:
        """Obstacle, people, geofence and restricted-zone outcomes for `twist`."""
        config = self.config
        outcomes: list[Outcome] = []
        if twist.is_zero():
            return outcomes
        if config.obstacles.enabled and self._scan_points:
            age = max([now - scan.stamp for scan in self._scan_points.values()])
            outcomes.extend(self.obstacles.outcomes(twist, self._prepared_points, age, self._scan_topics))
        if config.people.enabled and self._people is not None:
            age = now - self._people.stamp
            outcomes.extend(self.people.outcomes(twist, self._people.positions, age, config.people.topic))
        odom = self._odom
        if odom is not None and (self.geofence is not None or self.zone_check is not None):
            age = now - odom.stamp
            if self.geofence is not None:
                outcomes.extend(self.geofence.outcomes(twist, odom.pose, age))
            if self.zone_check is not None:
                stopping = stopping_pose(config.robot, self.obstacles.reaction, odom.pose, twist)
                outcomes.extend(self.zone_check(odom.pose, twist, stopping))
        return outcomes

    def _advance_ramp(self, now: float) -> None:
        # Decisions in the same clock tick (common under sim time) all ramp from the output
        # of the last earlier tick, so they agree and the time step stays positive. A clock
        # that went backwards starts a new tick with a negative step, which is a fault.
        if self._last_time is not None and now != self._last_time:
            self._ramp_time, self._ramp_output = self._last_time, self._last_output

    def _finish(
        self,
        now: float,
        wall_time: float,
        command: _Command | None,
        output: Twist,
        kept: list[Outcome],
        waived: list[Reason],
        notes: list[OverrideGrant],
    ) -> MotionDecision:
        self._last_time = now
        self._last_output = output
        # The same keys and order as Twist.to_json, built in one step.
        output_json: dict[str, JsonValue] = {
            "linear.x": output.linear_x,
            "linear.y": output.linear_y,
            "linear.z": output.linear_z,
            "angular.x": output.angular_x,
            "angular.y": output.angular_y,
            "angular.z": output.angular_z,
        }
        decision = combine(
            stamp=now,
            wall_time=wall_time,
            command_kind="twist",
            command_id="" if command is None else str(command.sequence),
            requester=self.requester,
            reasons=[outcome.reason for outcome in kept],
            policy_hash=self.policy_hash,
            overrides=[grant.to_note() for grant in notes],
            overridden=waived,
            output=output_json,
        )
        self.counters.decisions += 1
        verdict = decision.verdict.value
        self.counters.per_verdict[verdict] = self.counters.per_verdict.get(verdict, 0) + 1
        return MotionDecision(output, decision, None if command is None else command.sequence)


def _finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _scaled_unwaived(
    twist: Twist, outcomes: list[Outcome], grants: tuple[OverrideGrant, ...], now: float
) -> Twist:
    """Scale `twist` by the smallest factor among outcomes that no active grant waives."""
    scale = 1.0
    for outcome in outcomes:
        waived = (
            grants
            and outcome.reason.refutable_by.overridable
            and any(grant.covers(outcome.reason.rule_id, now) for grant in grants)
        )
        if waived:
            continue
        scale = min(scale, outcome.scale)
    return twist.scaled(scale) if scale < 1.0 else twist


def _apply_overrides(
    output: Twist, outcomes: list[Outcome], grants: tuple[OverrideGrant, ...], now: float
) -> tuple[Twist, list[Outcome], list[Reason], list[OverrideGrant]]:
    """Split outcomes into kept and waived; apply the speed caps of the grants used.

    The zone factors are already in `output`; a kept outcome with factor 0 stops the
    robot in the caller.
    """
    if not grants:
        # Without grants every outcome is kept: the common case, worth skipping the loop.
        return output, outcomes, [], []
    kept: list[Outcome] = []
    waived: list[Reason] = []
    used: dict[str, OverrideGrant] = {}
    for outcome in outcomes:
        grant = None
        if outcome.reason.refutable_by.overridable:
            grant = next((g for g in grants if g.covers(outcome.reason.rule_id, now)), None)
        if grant is None:
            kept.append(outcome)
        else:
            waived.append(outcome.reason)
            used[grant.override_id] = grant
    result = output
    for grant in used.values():
        result = _cap(result, grant)
    return result, kept, waived, list(used.values())


def _cap(twist: Twist, grant: OverrideGrant) -> Twist:
    factor = 1.0
    speed = math.hypot(twist.linear_x, twist.linear_y)
    if grant.max_linear_speed is not None and speed > grant.max_linear_speed:
        factor = min(factor, grant.max_linear_speed / speed)
    if grant.max_angular_speed is not None and abs(twist.angular_z) > grant.max_angular_speed:
        factor = min(factor, grant.max_angular_speed / abs(twist.angular_z))
    return twist.scaled(factor) if factor < 1.0 else twist


def _silent_outcome(silence: float | None, timeout: float) -> Outcome:
    if silence is None:
        message = "No command received yet: holding zero velocity."
    else:
        message = f"No current command for {silence:.3f} s (timeout {timeout:.3f} s): holding zero velocity."
    return Outcome(
        make_reason(
            "source.silent.cmd_vel_in",
            Verdict.MODIFY,
            message,
            evidence=(Evidence("command age", silence, "s", limit=timeout, source="cmd_vel_in"),),
            consequence="Repeating an old command would keep the robot moving with nobody in control.",
            remedy="Publish commands on cmd_vel_in faster than the command timeout.",
        ),
        0.0,
    )


def _stamp_fault(rule_id: str, offset: float, limit: float) -> Outcome:
    mismatch = rule_id.startswith("source.clock_mismatch")
    message = (
        f"cmd_vel_in is stamped {offset:+.1f} s from the node's clock: the clocks differ "
        "(use_sim_time against wall-clock stamps?), stopping."
        if mismatch
        else f"cmd_vel_in is stamped {offset:.3f} s in the future (tolerance {limit:.3f} s): stopping."
    )
    return Outcome(
        make_reason(
            rule_id,
            Verdict.FAULT,
            message,
            evidence=(Evidence("command stamp offset", offset, "s", limit=limit, source="cmd_vel_in"),),
            consequence="A command on another clock cannot be checked for freshness.",
            remedy="Stamp commands with the safety node's clock (both sim time or both wall time).",
        ),
        0.0,
    )


def _time_step_outcome(dt: float, why: str) -> Outcome:
    return Outcome(
        make_reason(
            "motion.time_step",
            Verdict.FAULT,
            f"Invalid time step {dt!r} s between decisions ({why}): stopping.",
            evidence=(Evidence("time step", dt, "s", source="clock"),),
            consequence="Acceleration limits cannot be applied without a valid time step.",
            remedy="Check the clock source (/clock under sim time) and that the node is not starved of CPU.",
        ),
        0.0,
    )


def _interlock_outcome(reset_at: float) -> Outcome:
    return Outcome(
        make_reason(
            "motion.restart_interlock",
            Verdict.DEFER,
            "Stop was reset: motion resumes after a zero command or a new command.",
            evidence=(Evidence("reset time", reset_at, "s", source="holds"),),
            consequence="Resuming an old command after a reset would restart motion unexpectedly.",
            remedy="Send a zero command, or send a new command.",
        ),
        0.0,
    )


def twist_fields(values: Mapping[str, float]) -> Twist:
    """Build a twist from a `{"linear.x": ...}` mapping; missing fields are zero."""
    return Twist(
        values.get("linear.x", 0.0),
        values.get("linear.y", 0.0),
        values.get("linear.z", 0.0),
        values.get("angular.x", 0.0),
        values.get("angular.y", 0.0),
        values.get("angular.z", 0.0),
    )
