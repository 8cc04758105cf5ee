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

import math
from dataclasses import dataclass

import numpy as np

from nc_safety.core.constraints import Outcome, make_reason
from nc_safety.core.geometry import Footprint, clearance_along_path, path_poses
from nc_safety.core.justification import Evidence
from nc_safety.core.motion_config import ObstacleConfig, RobotConfig
from nc_safety.core.values import BoolArray, FloatArray, Twist
from nc_safety.core.verdict import Verdict

# Clearance must drop by more than this along the path to count as approach, in metres.
_APPROACH_EPSILON = 1e-6


@dataclass(frozen=True, slots=True)
class PathCheck:
    """What following one twist would do near the obstacles."""

    scale: float
    """Largest factor of the twist that can still stop with the margin kept."""
    min_clearance: float
    """Smallest clearance to an approached point along the checked path, metres (inf if none)."""
    stop: bool
    slowdown: bool


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

    def check(self, twist: Twist, points: FloatArray) -> PathCheck:
        vx, vy, wz = twist.linear_x, twist.linear_y, twist.angular_z
        speed = math.hypot(vx, vy)
        if (speed == 0.0 and wz == 0.0) or points.shape[0] == 0:
            return PathCheck(1.0, math.inf, False, False)
        config = self.config
        alpha = max(speed / self.robot.max_decel_linear, abs(wz) / self.robot.max_decel_angular)
        horizon = self.reaction + alpha / 2.0
        # Distance any footprint point can travel per second of path time.
        sweep_rate = speed + abs(wz) * self.radius
        reach = self.radius + sweep_rate * horizon + config.slowdown_distance + config.path_resolution
        near = points[np.einsum("ij,ij->i", points, points) <= reach * reach]
        if near.shape[0] != 0:
            near = near[self._in_corridor(near, vx, vy, wz, self.radius + config.slowdown_distance + config.path_resolution)]
        if near.shape[0] == 0:
            return PathCheck(1.0, math.inf, False, False)
        count = int(
            min(config.max_path_samples, max(2, math.ceil(sweep_rate * horizon / config.path_resolution) + 1))
        )
        times = np.linspace(0.0, horizon, count)
        # Between two samples a footprint point moves at most this far, so thresholds are
        # widened by half of it to stay conservative.
        slack = sweep_rate * (horizon / (count - 1)) / 2.0
        clearance = clearance_along_path(self.footprint, near, path_poses(vx, vy, wz, times))
        # A point counts when the path brings the footprint closer to it at some pose; a
        # rotating footprint can first turn away from a point and then sweep into it.
        approaching = clearance.min(axis=0) < clearance[0] - _APPROACH_EPSILON
        if not approaching.any():
            return PathCheck(1.0, math.inf, False, False)
        relevant = clearance[:, approaching]
        min_clearance = float(relevant.min())
        stop = bool((relevant[0] <= config.stop_distance + slack).any())
        slowdown = min_clearance <= config.slowdown_distance + slack
        hits = (relevant <= config.margin + slack).any(axis=1)
        scale = 1.0
        if hits.any():
            first = int(np.argmax(hits))
            # The last sample before the hit is the farthest the path is known to be free.
            free_time = float(times[first - 1]) if first > 0 else 0.0
            scale = stop_factor(self.reaction, alpha, free_time)
        return PathCheck(scale, min_clearance, stop, slowdown)

    @staticmethod
    def _in_corridor(points: FloatArray, vx: float, vy: float, wz: float, width: float) -> BoolArray:
        """Mask of points within `width` of the curve the base origin follows.

        Every footprint point stays within the circumradius of the origin, so points farther
        than circumradius plus the zone widths from that curve cannot be approached.
        """
        if abs(wz) < 1e-9:
            speed = math.hypot(vx, vy)
            ux, uy = vx / speed, vy / speed
            along = points[:, 0] * ux + points[:, 1] * uy
            across = np.abs(points[:, 1] * ux - points[:, 0] * uy)
            mask: BoolArray = (across <= width) & (along >= -width)
            return mask
        # Rotation about the instantaneous centre (-vy / wz, vx / wz): the origin moves on a
        # circle of radius rho around it.
        cx, cy = -vy / wz, vx / wz
        rho = math.hypot(cx, cy)
        distance = np.hypot(points[:, 0] - cx, points[:, 1] - cy)
        ring: BoolArray = np.abs(distance - rho) <= width
        return ring

    def outcomes(self, twist: Twist, points: FloatArray, age: float, source: str) -> list[Outcome]:
        """Reasons and factors for `twist`; empty when the obstacles do not limit it."""
        result = self.check(twist, points)
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
                        evidence=(
                            clearance_evidence,
                            Evidence(
                                "stop distance",
                                self.config.stop_distance,
                                "m",
                                source="obstacles.stop_distance",
                            ),
                        ),
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
                        evidence=(
                            clearance_evidence,
                            Evidence(
                                "slowdown distance",
                                self.config.slowdown_distance,
                                "m",
                                source="obstacles.slowdown_distance",
                            ),
                        ),
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
                            Evidence(
                                "max deceleration",
                                self.robot.max_decel_linear,
                                "m/s^2",
                                source="robot.max_decel_linear",
                            ),
                            Evidence(
                                "reaction time incl. one output period",
                                self.reaction,
                                "s",
                                source="robot.reaction_time",
                            ),
                        ),
                        consequence="At the commanded speed the robot could not stop before the obstacle.",
                        remedy=f"Drive at most {allowed_speed:.2f} m/s and {allowed_rate:.2f} rad/s toward it.",
                        remedy_values={"max_linear_speed": allowed_speed, "max_angular_speed": allowed_rate},
                    ),
                    result.scale,
                )
            )
        return outcomes
