"""Replay of rosbag2 recordings through a running safety node over DDS."""
