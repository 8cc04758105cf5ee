"""Geofence: the footprint at the predicted stopping pose must stay inside the keep-in area
and outside every keep-out area, both given in the odometry frame."""

from __future__ import annotations

import math

from nc_safety.core.constraints import Outcome, make_reason
from nc_safety.core.geometry import (
    Footprint,
    footprint_corners_at,
    point_in_polygon,
    polygons_overlap,
    pose_after,
    transform_pose,
)
from nc_safety.core.justification import Evidence
from nc_safety.core.motion_config import GeofenceConfig, RobotConfig
from nc_safety.core.values import Pose2D, Twist
from nc_safety.core.verdict import Verdict

_BISECTION_STEPS = 10


def stopping_pose(robot: RobotConfig, reaction: float, pose: Pose2D, twist: Twist) -> Pose2D:
    """Pose where the robot comes to rest if it follows `twist` for `reaction` s, then brakes."""
    speed = math.hypot(twist.linear_x, twist.linear_y)
    alpha = max(speed / robot.max_decel_linear, abs(twist.angular_z) / robot.max_decel_angular)
    path_time = reaction + alpha / 2.0
    x, y, yaw = pose_after(twist.linear_x, twist.linear_y, twist.angular_z, path_time)
    return transform_pose(pose, x, y, yaw)


class GeofenceChecker:
    def __init__(self, robot: RobotConfig, config: GeofenceConfig, output_period: float) -> None:
        self.robot = robot
        self.footprint = Footprint.from_size(robot.length, robot.width, robot.center_x)
        self.keep_in = config.keep_in_polygon()
        self.keep_out = config.keep_out_polygons()
        self.reaction = robot.reaction_time + output_period

    def stopping_pose(self, pose: Pose2D, twist: Twist) -> Pose2D:
        return stopping_pose(self.robot, self.reaction, pose, twist)

    def violation(self, pose: Pose2D) -> str | None:
        """Rule id broken by the footprint at `pose`, or None."""
        corners = footprint_corners_at(self.footprint, pose)
        if self.keep_in and not all(point_in_polygon(x, y, self.keep_in) for x, y in corners):
            return "motion.geofence.keep_in"
        for polygon in self.keep_out:
            if polygons_overlap(corners, polygon):
                return "motion.geofence.keep_out"
        return None

    def outcomes(self, twist: Twist, pose: Pose2D, age: float) -> list[Outcome]:
        if twist.is_zero():
            return []
        rule = self.violation(self.stopping_pose(pose, twist))
        if rule is None:
            return []
        # Scaling keeps the path, so bisect for the largest factor whose stop is allowed.
        low, high = 0.0, 1.0
        if self.violation(self.stopping_pose(pose, twist.scaled(1e-6))) is not None:
            low = high = 0.0
        else:
            for _ in range(_BISECTION_STEPS):
                middle = (low + high) / 2.0
                if self.violation(self.stopping_pose(pose, twist.scaled(middle))) is None:
                    low = middle
                else:
                    high = middle
        scale = low
        area = "keep-in area" if rule.endswith("keep_in") else "a keep-out area"
        place = "outside the" if rule.endswith("keep_in") else "inside"
        stopping = scale == 0.0
        reason = make_reason(
            rule,
            Verdict.REFUSE if stopping else Verdict.MODIFY,
            f"The robot would come to rest {place} {area}: "
            + ("stopping." if stopping else f"speed scaled by {scale:.2f}."),
            evidence=(
                Evidence("pose x", pose.x, "m", source="odom", age_s=age),
                Evidence("pose y", pose.y, "m", source="odom", age_s=age),
                Evidence("pose yaw", pose.yaw, "rad", source="odom", age_s=age),
            ),
            consequence=f"The robot would enter {area} it must not be in."
            if not rule.endswith("keep_in")
            else "The robot would leave the area it is allowed in.",
            remedy="Drive away from the geofence boundary; a supervisor may override to recover the robot.",
            remedy_values={"max_scale": scale},
        )
        return [Outcome(reason, scale)]
