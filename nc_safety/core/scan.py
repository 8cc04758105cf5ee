"""Laser scans to obstacle points in the base frame, with the checks real drivers need.

Range encoding (REP 117): NaN and +inf mean no return, -inf means an object closer than
the sensor's minimum range. Real drivers also publish placeholder `range_min`/`range_max`
values, so the configured sanity bounds apply on top of the scan's own. A scan whose
header fields cannot describe its rays is rejected before its ranges are read, so the
check costs the same whatever the array size.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from nc_safety.core.geometry import Footprint
from nc_safety.core.motion_config import ScanSourceConfig
from nc_safety.core.values import FloatArray

_TRIG_CACHE_SIZE = 32
SKIN_OFFSET = 0.005
"""How far outside the footprint a too-close (-inf) return is placed, in metres."""


@dataclass(frozen=True, slots=True)
class ScanHeader:
    """The LaserScan fields that describe the rays."""

    angle_min: float
    angle_max: float
    angle_increment: float
    range_min: float
    range_max: float
    ray_count: int
    stamp: float


@dataclass(frozen=True, slots=True)
class ScanPoints:
    """A valid scan turned into obstacle points in the base frame."""

    points: FloatArray
    """Shape (N, 2), metres."""
    stamp: float
    received_at: float
    effective_range_max: float
    """Farthest range this scan can report an obstacle at, in metres."""
    ray_count: int
    no_return_count: int


@dataclass(frozen=True, slots=True)
class ScanRejection:
    """A malformed scan: the source is marked invalid until a valid scan arrives."""

    reason: str
    stamp: float
    received_at: float


def check_header(header: ScanHeader, config: ScanSourceConfig) -> str | None:
    """Return why the header cannot describe its rays, or None when it can. O(1)."""
    values = (header.angle_min, header.angle_max, header.angle_increment, header.range_min, header.range_max)
    if not all(math.isfinite(value) for value in values):
        return f"non-finite angle or range limit in header {values}"
    if header.ray_count == 0:
        return "scan has no rays"
    if header.ray_count > config.max_rays:
        return f"scan has {header.ray_count} rays, more than max_rays {config.max_rays}"
    if header.angle_increment == 0.0:
        return "angle_increment is 0"
    if header.ray_count > 1:
        expected = (header.angle_max - header.angle_min) / header.angle_increment + 1.0
        # Drivers round angle_max differently, so allow one ray of slack either way.
        if abs(expected - header.ray_count) > 1.5:
            return (
                f"{header.ray_count} rays do not match angles {header.angle_min:.4f}..{header.angle_max:.4f} rad "
                f"at increment {header.angle_increment:.6f} rad (expected {expected:.1f})"
            )
    if abs(header.angle_increment) * header.ray_count > 4.0 * math.pi:
        return f"scan spans {abs(header.angle_increment) * header.ray_count:.2f} rad, more than two turns"
    return None


class ScanConverter:
    """Converts scans of one source to base-frame points, caching ray directions."""

    def __init__(self, config: ScanSourceConfig, footprint: Footprint | None = None) -> None:
        self.config = config
        self.footprint = footprint
        self._trig: OrderedDict[tuple[int, float, float], tuple[FloatArray, FloatArray]] = OrderedDict()

    def _directions(self, count: int, angle_min: float, increment: float) -> tuple[FloatArray, FloatArray]:
        key = (count, angle_min, increment)
        cached = self._trig.get(key)
        if cached is not None:
            self._trig.move_to_end(key)
            return cached
        angles = angle_min + increment * np.arange(count, dtype=np.float64) + self.config.yaw
        directions = (np.cos(angles), np.sin(angles))
        self._trig[key] = directions
        if len(self._trig) > _TRIG_CACHE_SIZE:
            self._trig.popitem(last=False)
        return directions

    def convert(
        self, header: ScanHeader, ranges: FloatArray, received_at: float
    ) -> ScanPoints | ScanRejection:
        problem = check_header(header, self.config)
        if problem is None and len(ranges) != header.ray_count:
            problem = f"ranges has {len(ranges)} values but the header describes {header.ray_count}"
        if problem is not None:
            return ScanRejection(reason=problem, stamp=header.stamp, received_at=received_at)

        config = self.config
        low = max(header.range_min, config.range_min)
        high = min(header.range_max, config.range_max) if header.range_max > 0.0 else config.range_max
        values = np.asarray(ranges, dtype=np.float64)
        too_close = np.isneginf(values)
        valid = np.isfinite(values) & (values >= low)
        if config.range_max_is_no_return:
            valid &= values < high
        else:
            valid &= values <= high
        hits = valid | too_close
        cosines, sines = self._directions(header.ray_count, header.angle_min, header.angle_increment)
        # An object closer than the minimum range touches the robot: place it just outside
        # the footprint along its ray (or at the minimum range without a footprint), so that
        # motion toward it stops and motion away from it stays possible.
        near = max(low, 0.0)
        if too_close.any():
            values = values.copy()
            values[too_close] = self._skin_distance(cosines[too_close], sines[too_close], near)
        distances = values[hits]
        points = np.empty((distances.shape[0], 2), dtype=np.float64)
        points[:, 0] = distances * cosines[hits] + config.x
        points[:, 1] = distances * sines[hits] + config.y
        return ScanPoints(
            points=points,
            stamp=header.stamp,
            received_at=received_at,
            effective_range_max=high,
            ray_count=header.ray_count,
            no_return_count=int(header.ray_count - int(np.count_nonzero(hits))),
        )

    def _skin_distance(self, cosines: FloatArray, sines: FloatArray, minimum: float) -> FloatArray:
        """Distance along each ray from the laser to just outside the footprint."""
        if self.footprint is None:
            return np.full(cosines.shape, minimum)
        box = self.footprint
        origin_x, origin_y = self.config.x, self.config.y
        with np.errstate(divide="ignore", invalid="ignore"):
            exit_x = np.where(
                cosines > 0.0, (box.max_x - origin_x) / cosines, (box.min_x - origin_x) / cosines
            )
            exit_y = np.where(sines > 0.0, (box.max_y - origin_y) / sines, (box.min_y - origin_y) / sines)
        exit_x = np.where(np.abs(cosines) < 1e-12, np.inf, exit_x)
        exit_y = np.where(np.abs(sines) < 1e-12, np.inf, exit_y)
        skin: FloatArray = np.maximum(np.minimum(exit_x, exit_y), 0.0) + SKIN_OFFSET
        return np.maximum(skin, minimum)
