"""Laser obstacles: stop zone, slowdown zone and the braking-distance limit.

The twist is followed along its path (arc, straight line, rotation in place or sideways)
for as long as the robot would need to react and brake to a stop. The footprint is placed
at sampled poses on that path and its clearance to every nearby point is measured. Only
points the motion approaches count, so the robot may always back away from an obstacle.

Braking model, in path time u (seconds of travel at the commanded twist): a command
scaled by k covers k * t_react of the path before braking starts, where t_react is the
reaction time plus one output period (the next decision may come that much later), then
k^2 * alpha / 2 while braking, where alpha = max(v / a_lin, w / a_ang) is the stopping time
at full command. The largest safe k solves k * t_react + k^2 * alpha / 2 = u_free, with
u_free the path time at which the footprint would come within the margin of a point.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import numpy as np

from nc_safety.core.constraints import Outcome, make_reason
from nc_safety.core.geometry import (
    Footprint,
    PathFrames,
    clearance_summarizer,
    path_frames,
    path_poses,
    pose_after,
    sample_times,
    summarize_path_clearance_numpy,
)
from nc_safety.core.justification import Evidence
from nc_safety.core.motion_config import ObstacleConfig, RobotConfig
from nc_safety.core.values import BoolArray, FloatArray, IntArray, Twist
from nc_safety.core.verdict import Verdict

# Clearance must drop by more than this along the path to count as approach, in metres.
_APPROACH_EPSILON = 1e-6
# Distinct twists whose sampled paths are kept. A guard checks the command and its ramped
# output, so a few entries cover a steady command. The cache is emptied when full.
_PATH_CACHE_SIZE = 8
# Added to the distance bound that skips far points, in metres, so that rounding in the
# computed clearances (about 1e-15 m) cannot move a point across the bound.
_PRUNE_TOLERANCE = 1e-9


@dataclass(frozen=True, slots=True)
class PathCheck:
    """Outcome of following one twist near the obstacles."""

    scale: float
    """Largest factor of the twist that can still stop with the margin kept."""
    min_clearance: float
    """Smallest clearance to an approached point along the checked path, metres.

    inf when no approached point comes within the widest zone (stop, slowdown or margin,
    plus the sampling slack): such points change no outcome, so they are not measured.
    """
    stop: bool
    slowdown: bool


_FREE = PathCheck(1.0, math.inf, False, False)


@dataclass(frozen=True, slots=True)
class _PathSamples:
    """The sampled braking path of one twist."""

    alpha: float
    """Stopping time at the full twist, seconds."""
    horizon: float
    """Path time to a stop, seconds."""
    sweep_rate: float
    """Farthest any footprint point travels per second of path time, metres."""
    slack: float
    """Half the farthest a footprint point travels between two samples, metres."""
    times: FloatArray
    frames: PathFrames
    """Maps into the footprint frame at every sample after the first, the pose at rest."""


@dataclass(frozen=True, slots=True)
class ObstaclePoints:
    """Obstacle points prepared once per scan for many path checks.

    The points are sorted by their clearance to the footprint at rest, so a check takes the
    points that could come close as a prefix instead of scanning every point.
    """

    x: FloatArray
    y: FloatArray
    squared_norm: FloatArray
    """x^2 + y^2, square metres."""
    rest_clearance: list[float]
    """Signed clearance to the footprint at the base origin, metres, ascending.

    A list, because bisect and indexing on it cost less than the same NumPy calls.
    """
    homogeneous: FloatArray
    """Rows (x, y, 1), shape (N, 3), for mapping the points into the pose frames."""
    approach_threshold: FloatArray
    """rest_clearance - _APPROACH_EPSILON: a point counts as approached below it, metres."""

    @property
    def count(self) -> int:
        return len(self.rest_clearance)


def stop_factor(reaction: float, alpha: float, free_path_time: float) -> float:
    """Largest k in [0, 1] with k * reaction + k^2 * alpha / 2 <= free_path_time."""
    if free_path_time <= 0.0:
        return 0.0
    if alpha <= 0.0:
        return min(1.0, free_path_time / reaction) if reaction > 0.0 else 1.0
    k = (-reaction + math.sqrt(reaction * reaction + 2.0 * alpha * free_path_time)) / alpha
    return max(0.0, min(1.0, k))


class ObstacleChecker:
    """Checks twists against the latest obstacle points for one robot and configuration."""

    def __init__(self, robot: RobotConfig, config: ObstacleConfig, output_period: float) -> None:
        self.robot = robot
        self.config = config
        self.footprint = Footprint.from_size(robot.length, robot.width, robot.center_x)
        self.radius = self.footprint.circumradius
        self.reaction = robot.reaction_time + output_period
        self._widest_zone = max(config.stop_distance, config.slowdown_distance, config.margin)
        self._paths: dict[tuple[float, float, float], _PathSamples] = {}
        self._summarize = clearance_summarizer(config.clearance_backend)
        self.clearance_backend = "numpy" if self._summarize is summarize_path_clearance_numpy else "compiled"
        """The code that measures clearance here: compiled or numpy (auto resolved)."""
        # Evidence that depends only on the configuration, built once for every reason.
        self._stop_evidence = Evidence(
            "stop distance", config.stop_distance, "m", source="obstacles.stop_distance"
        )
        self._slowdown_evidence = Evidence(
            "slowdown distance", config.slowdown_distance, "m", source="obstacles.slowdown_distance"
        )
        self._decel_evidence = Evidence(
            "max deceleration", robot.max_decel_linear, "m/s^2", source="robot.max_decel_linear"
        )
        self._reaction_evidence = Evidence(
            "reaction time incl. one output period", self.reaction, "s", source="robot.reaction_time"
        )

    def prepare(self, points: FloatArray) -> ObstaclePoints:
        """Sort points of shape (N, 2), base frame, by their clearance to the footprint at rest."""
        rest = self.footprint.signed_clearance(points[:, 0], points[:, 1])
        order = np.argsort(rest, kind="stable")
        x = np.ascontiguousarray(points[order, 0])
        y = np.ascontiguousarray(points[order, 1])
        homogeneous = np.ones((x.shape[0], 3))
        homogeneous[:, 0] = x
        homogeneous[:, 1] = y
        rest = rest[order]
        return ObstaclePoints(x, y, x * x + y * y, rest.tolist(), homogeneous, rest - _APPROACH_EPSILON)

    def _path_samples(self, vx: float, vy: float, wz: float) -> _PathSamples:
        """Return the sampled braking path of a twist, computed once per distinct twist.

        A guard checks the same twist many times in a row, because commands arrive at a lower
        rate than decisions are made and a steady command keeps its target. The path depends
        only on the twist and on this checker's fixed configuration.
        """
        key = (vx, vy, wz)
        path = self._paths.get(key)
        if path is None:
            if len(self._paths) >= _PATH_CACHE_SIZE:
                self._paths.clear()
            path = self._sample_path(vx, vy, wz)
            self._paths[key] = path
        return path

    def _sample_path(self, vx: float, vy: float, wz: float) -> _PathSamples:
        config = self.config
        speed = math.hypot(vx, vy)
        alpha = max(speed / self.robot.max_decel_linear, abs(wz) / self.robot.max_decel_angular)
        horizon = self.reaction + alpha / 2.0
        # Distance any footprint point can travel per second of path time.
        sweep_rate = speed + abs(wz) * self.radius
        count = int(
            min(config.max_path_samples, max(2, math.ceil(sweep_rate * horizon / config.path_resolution) + 1))
        )
        # Between two samples a footprint point moves at most this far, so thresholds are
        # widened by half of it to stay conservative.
        slack = sweep_rate * (horizon / (count - 1)) / 2.0
        times = sample_times(horizon, count)
        # The first sample is the pose at rest, whose clearance is already known.
        frames = path_frames(self.footprint, path_poses(vx, vy, wz, times[1:]))
        return _PathSamples(alpha, horizon, sweep_rate, slack, times, frames)

    def check(self, twist: Twist, points: FloatArray | ObstaclePoints) -> PathCheck:
        prepared = points if isinstance(points, ObstaclePoints) else self.prepare(points)
        vx, vy, wz = twist.linear_x, twist.linear_y, twist.angular_z
        # Below a yaw rate of 1e-9 rad/s the path is straight (see path_poses), so without
        # a linear speed every sampled pose is the pose at rest and nothing is approached.
        if (vx == 0.0 and vy == 0.0 and abs(wz) < 1e-9) or prepared.count == 0:
            return _FREE
        config = self.config
        path = self._path_samples(vx, vy, wz)
        slack = path.slack

        points_h, at_rest_index, approach_threshold = self._points_near_path(
            prepared, vx, vy, wz, path.horizon, path.sweep_rate, slack
        )
        if points_h.shape[0] == 0:
            return _FREE
        hit_distance = config.margin + slack
        # A point counts when the path brings the footprint closer to it at some pose. A
        # rotating footprint can first turn away from a point and then sweep into it.
        first_approached, path_min, first_hit = self._summarize(
            path.frames, points_h, approach_threshold, hit_distance
        )
        if first_approached < 0:
            return _FREE
        # "Any clearance <= threshold" is tested as "smallest clearance <= threshold". The
        # clearances at rest ascend, so the first approached point has the smallest.
        rest_min = prepared.rest_clearance[
            first_approached if at_rest_index is None else int(at_rest_index[first_approached])
        ]
        min_clearance = min(rest_min, path_min)
        # The pose at rest is exact, so only the sampled poses get the sampling slack. A
        # slack at rest would stop a robot turning in place beside furniture it clears.
        stop = rest_min <= config.stop_distance
        slowdown = min_clearance <= config.slowdown_distance + slack
        scale = 1.0
        if rest_min <= config.margin:
            scale = stop_factor(self.reaction, path.alpha, 0.0)
        elif path_min <= hit_distance:
            # The frames start at the second sample, so the sample before the hit, the
            # farthest the path is known to be free, has the hit's frame index. Without a
            # hit pose (rounding at the threshold) only the pose at rest is known free.
            free_time = float(path.times[first_hit]) if first_hit >= 0 else 0.0
            scale = stop_factor(self.reaction, path.alpha, free_time)
        if min_clearance > self._widest_zone + slack:
            min_clearance = math.inf
        return PathCheck(scale, min_clearance, stop, slowdown)

    def _points_near_path(
        self,
        prepared: ObstaclePoints,
        vx: float,
        vy: float,
        wz: float,
        horizon: float,
        sweep_rate: float,
        slack: float,
    ) -> tuple[FloatArray, IntArray | None, FloatArray]:
        """Select the points that the path could bring within the widest zone.

        Returns their homogeneous rows (x, y, 1), their indices into `prepared` (None when
        they are its first rows, in order) and their approach thresholds. A point whose
        clearance stays above the widest zone (plus slack) at every pose and at rest changes
        no outcome: it moves no threshold, and a smallest clearance above the widest zone is
        reported as inf. The clearance at rest minus the farthest any
        footprint point travels bounds the clearance along the path from below, so the
        points within `widest` plus that travel at rest are a sorted prefix that contains
        every point that matters.
        """
        config = self.config
        widest = self._widest_zone + slack
        travel = sweep_rate * horizon
        candidates = bisect.bisect_right(prepared.rest_clearance, widest + travel + _PRUNE_TOLERANCE)
        points_h = prepared.homogeneous[:candidates]
        approach_threshold = prepared.approach_threshold[:candidates]
        if candidates == 0:
            return points_h, None, approach_threshold
        # A point within `widest` of the footprint at some pose lies within circumradius
        # plus `widest` of the origin's path, so it passes the reach and corridor filters
        # whenever `widest` is below their zone width (slowdown distance plus path
        # resolution). Otherwise the path clearance bound and the filters run as they are.
        width = self.radius + config.slowdown_distance + config.path_resolution
        if widest + _PRUNE_TOLERANCE >= config.slowdown_distance + config.path_resolution:
            x, y = prepared.x[:candidates], prepared.y[:candidates]
            keep = self._path_clearance_bound(x, y, vx, vy, wz, horizon) <= widest + _PRUNE_TOLERANCE
            reach = width + travel
            keep &= prepared.squared_norm[:candidates] <= reach * reach
            keep &= self._in_corridor(x, y, vx, vy, wz, width)
            kept_index = np.flatnonzero(keep)
            return points_h[kept_index], kept_index, approach_threshold[kept_index]
        # Without the filters every candidate goes to the clearance check. For the few
        # hundred candidates of a laser scan, the path clearance bound costs more time than
        # it saves (measured with bench/core_latency.py).
        return points_h, None, approach_threshold

    def _path_clearance_bound(
        self, x: FloatArray, y: FloatArray, vx: float, vy: float, wz: float, horizon: float
    ) -> FloatArray:
        """Lower bound of each point's clearance to the footprint at every pose up to `horizon`."""
        box = self.footprint
        if abs(wz) < 1e-9:
            # A straight sweep stays inside the footprint box stretched by the travel.
            travel_x, travel_y = vx * horizon, vy * horizon
            low_x, high_x = box.min_x + min(0.0, travel_x), box.max_x + max(0.0, travel_x)
            low_y, high_y = box.min_y + min(0.0, travel_y), box.max_y + max(0.0, travel_y)
            bound: FloatArray = np.maximum(
                np.maximum(low_x - x, x - high_x), np.maximum(low_y - y, y - high_y)
            )
            return bound
        # On an arc the origin stays on a circle around the instantaneous centre, and every
        # footprint point within the circumradius of the origin.
        cx, cy = -vy / wz, vx / wz
        rho = math.hypot(cx, cy)
        # Lower bounds only need to be within the pruning tolerance, so sqrt replaces the
        # slower, more precise np.hypot here.
        off_x, off_y = x - cx, y - cy
        to_circle = np.abs(np.sqrt(off_x * off_x + off_y * off_y) - rho)
        turn = abs(wz) * horizon
        if turn <= math.pi / 2.0:
            # An arc of at most a quarter turn stays within its sagitta of its chord, which
            # runs from the origin to the end point, so it bounds the distance to the arc
            # itself rather than to the whole circle.
            end_x, end_y, _ = pose_after(vx, vy, wz, horizon)
            chord_squared = end_x * end_x + end_y * end_y
            sagitta = rho * (1.0 - math.cos(turn / 2.0))
            if chord_squared > 0.0:
                along = np.clip((x * end_x + y * end_y) / chord_squared, 0.0, 1.0)
                off_x, off_y = x - along * end_x, y - along * end_y
                to_chord = np.sqrt(off_x * off_x + off_y * off_y)
            else:
                to_chord = np.sqrt(x * x + y * y)
            to_circle = np.maximum(to_circle, to_chord - sagitta)
        ring: FloatArray = to_circle - self.radius
        return ring

    @staticmethod
    def _in_corridor(
        x: FloatArray, y: FloatArray, vx: float, vy: float, wz: float, width: float
    ) -> BoolArray:
        """Mask of points within `width` of the curve the base origin follows.

        Every footprint point stays within the circumradius of the origin, so points farther
        than circumradius plus the zone widths from that curve cannot be approached.
        """
        if abs(wz) < 1e-9:
            speed = math.hypot(vx, vy)
            ux, uy = vx / speed, vy / speed
            along = x * ux + y * uy
            across = np.abs(y * ux - x * uy)
            mask: BoolArray = (across <= width) & (along >= -width)
            return mask
        # Rotation about the instantaneous centre (-vy / wz, vx / wz): the origin moves on a
        # circle of radius rho around it.
        cx, cy = -vy / wz, vx / wz
        rho = math.hypot(cx, cy)
        distance = np.hypot(x - cx, y - cy)
        ring: BoolArray = np.abs(distance - rho) <= width
        return ring

    def outcomes(
        self, twist: Twist, points: FloatArray | ObstaclePoints, age: float, source: str
    ) -> list[Outcome]:
        """Reasons and factors for `twist`; empty when the obstacles do not limit it."""
        result = self.check(twist, points)
        if not (result.stop or result.slowdown or result.scale < 1.0):
            return []
        outcomes: list[Outcome] = []
        speed = math.hypot(twist.linear_x, twist.linear_y)
        yaw_rate = abs(twist.angular_z)
        clearance_evidence = Evidence(
            "clearance along path",
            result.min_clearance if math.isfinite(result.min_clearance) else None,
            "m",
            source=source,
            age_s=age,
        )
        if result.stop:
            outcomes.append(
                Outcome(
                    make_reason(
                        "motion.obstacle.stop",
                        Verdict.REFUSE,
                        f"Obstacle {max(result.min_clearance, 0.0):.2f} m from the footprint inside the "
                        f"{self.config.stop_distance:.2f} m stop zone and the command moves toward it: stopping.",
                        evidence=(clearance_evidence, self._stop_evidence),
                        consequence="The robot would hit the obstacle or stop closer than is safe.",
                        remedy="Move away from the obstacle (motion away from it is forwarded) or clear the path.",
                        remedy_values={"max_linear_speed": 0.0, "max_angular_speed": 0.0},
                    ),
                    0.0,
                )
            )
        if result.slowdown and not result.stop:
            ratio = self.config.slowdown_ratio
            outcomes.append(
                Outcome(
                    make_reason(
                        "motion.obstacle.slowdown",
                        Verdict.MODIFY,
                        f"Obstacle {result.min_clearance:.2f} m ahead inside the "
                        f"{self.config.slowdown_distance:.2f} m slowdown zone: speed scaled by {ratio:.2f}.",
                        evidence=(clearance_evidence, self._slowdown_evidence),
                        consequence="Full speed this close to an obstacle leaves no room for a late detection.",
                        remedy=f"Drive at most {speed * ratio:.2f} m/s and {yaw_rate * ratio:.2f} rad/s here.",
                        remedy_values={
                            "max_linear_speed": speed * ratio,
                            "max_angular_speed": yaw_rate * ratio,
                        },
                    ),
                    ratio,
                )
            )
        if result.scale < 1.0 and not result.stop:
            allowed_speed = speed * result.scale
            allowed_rate = yaw_rate * result.scale
            stopping = result.scale == 0.0
            message = (
                f"Commanded {speed:.2f} m/s, {yaw_rate:.2f} rad/s cannot stop {self.config.margin:.2f} m before "
                f"the obstacle {max(result.min_clearance, 0.0):.2f} m away: "
                + (
                    "stopping."
                    if stopping
                    else f"limited to {allowed_speed:.2f} m/s, {allowed_rate:.2f} rad/s."
                )
            )
            outcomes.append(
                Outcome(
                    make_reason(
                        "motion.obstacle.braking",
                        Verdict.REFUSE if stopping else Verdict.MODIFY,
                        message,
                        evidence=(
                            clearance_evidence,
                            Evidence(
                                "commanded speed", speed, "m/s", limit=allowed_speed, source="cmd_vel_in"
                            ),
                            Evidence(
                                "commanded yaw rate",
                                yaw_rate,
                                "rad/s",
                                limit=allowed_rate,
                                source="cmd_vel_in",
                            ),
                            self._decel_evidence,
                            self._reaction_evidence,
                        ),
                        consequence="At the commanded speed the robot could not stop before the obstacle.",
                        remedy=f"Drive at most {allowed_speed:.2f} m/s and {allowed_rate:.2f} rad/s toward it.",
                        remedy_values={"max_linear_speed": allowed_speed, "max_angular_speed": allowed_rate},
                    ),
                    result.scale,
                )
            )
        return outcomes
