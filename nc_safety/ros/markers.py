"""Zone markers for RViz: footprint, stop zone and slowdown zone around the base."""

from __future__ import annotations

from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

from nc_safety.core.geometry import Footprint


def _rectangle(footprint: Footprint, inflation: float) -> list[Point]:
    min_x, max_x = footprint.min_x - inflation, footprint.max_x + inflation
    min_y, max_y = footprint.min_y - inflation, footprint.max_y + inflation
    corners = [(min_x, min_y), (max_x, min_y), (max_x, max_y), (min_x, max_y), (min_x, min_y)]
    return [Point(x=x, y=y, z=0.0) for x, y in corners]


def zone_markers(
    footprint: Footprint,
    stop_distance: float,
    slowdown_distance: float,
    frame_id: str,
    stamp: Time,
    stopped: bool,
) -> MarkerArray:
    """Line strips for the footprint and its zones; the stop zone turns solid red while stopped."""
    array = MarkerArray()
    zones = (
        ("footprint", 0.0, ColorRGBA(r=0.2, g=0.6, b=1.0, a=1.0)),
        ("stop_zone", stop_distance, ColorRGBA(r=1.0, g=0.0, b=0.0, a=1.0 if stopped else 0.6)),
        ("slowdown_zone", slowdown_distance, ColorRGBA(r=1.0, g=0.7, b=0.0, a=0.6)),
    )
    for index, (name, inflation, color) in enumerate(zones):
        marker = Marker()
        marker.header.frame_id = frame_id
        marker.header.stamp = stamp
        marker.ns = name
        marker.id = index
        marker.type = Marker.LINE_STRIP
        marker.action = Marker.ADD
        marker.scale.x = 0.01
        marker.color = color
        marker.pose.orientation.w = 1.0
        marker.points = _rectangle(footprint, inflation)
        array.markers.append(marker)
    return array
