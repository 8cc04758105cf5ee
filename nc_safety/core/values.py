"""Immutable values the motion rules work on: twists, poses, commands and sensor snapshots.

Units are SI throughout: metres, radians, seconds, m/s and rad/s. Times are ROS time in
seconds (sim time when the node uses it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.intp]

TWIST_FIELDS = ("linear.x", "linear.y", "linear.z", "angular.x", "angular.y", "angular.z")


@dataclass(frozen=True, slots=True)
class Twist:
    """A velocity in the base frame: linear in m/s, angular in rad/s."""

    linear_x: float = 0.0
    linear_y: float = 0.0
    linear_z: float = 0.0
    angular_x: float = 0.0
    angular_y: float = 0.0
    angular_z: float = 0.0

    def as_tuple(self) -> tuple[float, float, float, float, float, float]:
        return (self.linear_x, self.linear_y, self.linear_z, self.angular_x, self.angular_y, self.angular_z)

    def non_finite_fields(self) -> tuple[str, ...]:
        """Names of the fields holding NaN or an infinity, in message order."""
        isfinite = math.isfinite
        if (
            isfinite(self.linear_x)
            and isfinite(self.linear_y)
            and isfinite(self.linear_z)
            and isfinite(self.angular_x)
            and isfinite(self.angular_y)
            and isfinite(self.angular_z)
        ):
            # Every command passes here, so the common case skips building names.
            return ()
        return tuple(
            name for name, value in zip(TWIST_FIELDS, self.as_tuple(), strict=False) if not isfinite(value)
        )

    def is_zero(self) -> bool:
        # NaN compares unequal to 0.0, so a NaN field is not zero. -0.0 equals 0.0, so it counts as zero.
        return (
            self.linear_x == 0.0
            and self.linear_y == 0.0
            and self.linear_z == 0.0
            and self.angular_x == 0.0
            and self.angular_y == 0.0
            and self.angular_z == 0.0
        )

    def scaled(self, factor: float) -> Twist:
        """Scale every axis by `factor`; scaling keeps the path's curvature.

        Adding 0.0 keeps a negative axis scaled by 0 from becoming -0.0.
        """
        return Twist(
            self.linear_x * factor + 0.0,
            self.linear_y * factor + 0.0,
            self.linear_z * factor + 0.0,
            self.angular_x * factor + 0.0,
            self.angular_y * factor + 0.0,
            self.angular_z * factor + 0.0,
        )

    def to_json(self) -> dict[str, float]:
        return {name: value for name, value in zip(TWIST_FIELDS, self.as_tuple(), strict=False)}

    @staticmethod
    def from_tuple(values: tuple[float, float, float, float, float, float]) -> Twist:
        # Adding 0.0 turns -0.0 into 0.0, so a negative zero never reads as reverse.
        return Twist(
            values[0] + 0.0,
            values[1] + 0.0,
            values[2] + 0.0,
            values[3] + 0.0,
            values[4] + 0.0,
            values[5] + 0.0,
        )


ZERO_TWIST = Twist()


@dataclass(frozen=True, slots=True)
class TwistCommand:
    """A velocity command as received, before any rule looked at it."""

    twist: Twist
    received_at: float
    """ROS time of reception, in seconds."""
    stamp: float | None = None
    """Header stamp for TwistStamped input, in seconds; None for plain Twist."""
    source: str = "cmd_vel_in"
    sequence: int = 0


@dataclass(frozen=True, slots=True)
class Pose2D:
    """A planar pose: position in metres, heading in radians."""

    x: float
    y: float
    yaw: float = 0.0


@dataclass(frozen=True, slots=True)
class OdomSnapshot:
    """The latest odometry: pose in the odometry frame and the measured twist."""

    pose: Pose2D
    linear_speed: float
    """Measured speed in m/s, or NaN when the reported twist was implausible and ignored."""
    angular_speed: float
    """Measured yaw rate in rad/s, or NaN when implausible and ignored."""
    stamp: float
    received_at: float


@dataclass(frozen=True, slots=True)
class PeopleSnapshot:
    """Detected people as points in the base frame, in metres."""

    positions: FloatArray
    """Shape (N, 2)."""
    stamp: float
    received_at: float
