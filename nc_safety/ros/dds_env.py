"""Loopback DDS defaults applied before rclpy starts, unless the caller chose otherwise."""

from __future__ import annotations

import os
from pathlib import Path

from nc_safety.paths import config_file

PROFILE_NAME = "fastdds_loopback.xml"


def loopback_profile_path() -> Path | None:
    """Find the shipped Fast DDS profile: installed share folder first, then the source tree."""
    try:
        return config_file(PROFILE_NAME)
    except FileNotFoundError:
        return None


def apply_loopback_defaults() -> None:
    """Keep discovery and transports on loopback unless the environment already says otherwise.

    A robot that must reach other hosts sets ROS_AUTOMATIC_DISCOVERY_RANGE and
    FASTDDS_DEFAULT_PROFILES_FILE itself; those values are never replaced here.
    """
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    if "FASTDDS_DEFAULT_PROFILES_FILE" not in os.environ:
        profile = loopback_profile_path()
        if profile is not None:
            os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = str(profile)
