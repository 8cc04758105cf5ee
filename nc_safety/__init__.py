"""nc_safety: a ROS 2 safety layer that refuses unsafe commands and says why."""

__version__ = "0.1.0"
