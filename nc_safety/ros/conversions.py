"""ROS messages to decision-core values and back. No rules live here."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import PoseArray
from geometry_msgs.msg import Twist as TwistMsg
from nav_msgs.msg import Odometry
from sensor_msgs.msg import LaserScan

from nc_safety.core.scan import ScanHeader
from nc_safety.core.values import OdomSnapshot, PeopleSnapshot, Pose2D, Twist


def stamp_seconds(stamp: Time) -> float:
    return float(stamp.sec) + float(stamp.nanosec) * 1e-9


def seconds_to_stamp(seconds: float) -> Time:
    whole = math.floor(seconds)
    return Time(sec=int(whole), nanosec=min(round((seconds - whole) * 1e9), 999_999_999))


def twist_from_msg(msg: TwistMsg) -> Twist:
    return Twist(msg.linear.x, msg.linear.y, msg.linear.z, msg.angular.x, msg.angular.y, msg.angular.z)


def fill_twist_msg(msg: TwistMsg, twist: Twist) -> TwistMsg:
    msg.linear.x, msg.linear.y, msg.linear.z = twist.linear_x, twist.linear_y, twist.linear_z
    msg.angular.x, msg.angular.y, msg.angular.z = twist.angular_x, twist.angular_y, twist.angular_z
    return msg


def scan_from_msg(msg: LaserScan) -> tuple[ScanHeader, Any]:
    """Header fields and ranges of a scan; the ranges stay a float32 view, not a copy.

    The converter checks the header before it reads the ranges, so a malformed scan of
    any size is rejected in constant time.
    """
    ranges: Any = msg.ranges
    # rclpy hands float32 sequences over as array.array('f'); frombuffer avoids a copy.
    values = (
        np.frombuffer(ranges, dtype=np.float32)
        if hasattr(ranges, "typecode")
        else np.asarray(ranges, np.float32)
    )
    header = ScanHeader(
        angle_min=float(msg.angle_min),
        angle_max=float(msg.angle_max),
        angle_increment=float(msg.angle_increment),
        range_min=float(msg.range_min),
        range_max=float(msg.range_max),
        ray_count=len(values),
        stamp=stamp_seconds(msg.header.stamp),
    )
    return header, values


def yaw_from_quaternion(x: float, y: float, z: float, w: float) -> float:
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def odom_from_msg(msg: Odometry, received_at: float) -> OdomSnapshot:
    position = msg.pose.pose.position
    orientation = msg.pose.pose.orientation
    linear = msg.twist.twist.linear
    return OdomSnapshot(
        pose=Pose2D(
            position.x,
            position.y,
            yaw_from_quaternion(orientation.x, orientation.y, orientation.z, orientation.w),
        ),
        linear_speed=math.hypot(linear.x, linear.y),
        angular_speed=float(msg.twist.twist.angular.z),
        stamp=stamp_seconds(msg.header.stamp),
        received_at=received_at,
    )


def people_from_msg(msg: PoseArray, received_at: float) -> PeopleSnapshot:
    positions = np.array(
        [(pose.position.x, pose.position.y) for pose in msg.poses], dtype=np.float64
    ).reshape(-1, 2)
    return PeopleSnapshot(positions=positions, stamp=stamp_seconds(msg.header.stamp), received_at=received_at)
