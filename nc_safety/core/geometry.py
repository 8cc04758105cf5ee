"""Footprint geometry: predicted paths, clearance of points along them, polygons.

The footprint is a rectangle in the base frame. A path is the motion under a constant
twist. Scaling the twist keeps the same curve, so a path computed at the commanded speed
also describes every slower version of the command.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from nc_safety.core.values import BoolArray, FloatArray, Pose2D


@dataclass(frozen=True, slots=True)
class Footprint:
    """An axis-aligned rectangle in the base frame, in metres."""

    min_x: float
    max_x: float
    min_y: float
    max_y: float

    @staticmethod
    def from_size(length: float, width: float, center_x: float = 0.0) -> Footprint:
        return Footprint(center_x - length / 2.0, center_x + length / 2.0, -width / 2.0, width / 2.0)

    @property
    def circumradius(self) -> float:
        """Distance from the base origin to the farthest corner: the radius swept in place."""
        return math.hypot(max(abs(self.min_x), abs(self.max_x)), max(abs(self.min_y), abs(self.max_y)))

    def corners(self) -> tuple[tuple[float, float], ...]:
        return (
            (self.min_x, self.min_y),
            (self.max_x, self.min_y),
            (self.max_x, self.max_y),
            (self.min_x, self.max_y),
        )

    def signed_clearance(self, x: FloatArray, y: FloatArray) -> FloatArray:
        """Distance from each point (base frame) to the rectangle; negative inside it."""
        dx = np.maximum(self.min_x - x, x - self.max_x)
        dy = np.maximum(self.min_y - y, y - self.max_y)
        outside = np.hypot(np.maximum(dx, 0.0), np.maximum(dy, 0.0))
        inside = np.minimum(np.maximum(dx, dy), 0.0)
        result: FloatArray = outside + inside
        return result


_SAMPLE_INDEX: FloatArray = np.arange(256, dtype=np.float64)
"""0, 1, 2, ... as floats, sliced for sample times instead of calling np.linspace."""


def sample_times(horizon: float, count: int) -> FloatArray:
    """`count` >= 2 evenly spaced times from 0 to `horizon` inclusive, equal to np.linspace's.

    np.linspace multiplies the same index array by the same step and sets the last value
    to the end point, so the values are bit for bit the same at a fraction of the cost.
    """
    index = _SAMPLE_INDEX[:count] if count <= _SAMPLE_INDEX.shape[0] else np.arange(count, dtype=np.float64)
    times: FloatArray = index * (horizon / (count - 1))
    times[-1] = horizon
    return times


@dataclass(frozen=True, slots=True)
class PathPoses:
    """Poses along a path under a constant body twist, with the cosine and sine of each yaw.

    `cos_yaw` and `sin_yaw` are None for a path without rotation, where every yaw is 0.
    """

    x: FloatArray
    y: FloatArray
    yaw: FloatArray
    cos_yaw: FloatArray | None
    sin_yaw: FloatArray | None


def pose_after(vx: float, vy: float, wz: float, t: float) -> tuple[float, float, float]:
    """Pose reached from the origin after `t` seconds at a constant body twist."""
    if abs(wz) < 1e-9:
        return (vx * t, vy * t, 0.0)
    theta = wz * t
    sin_t, cos_t = math.sin(theta), math.cos(theta)
    # Integrating a body-frame velocity that rotates at wz.
    x = (vx * sin_t - vy * (1.0 - cos_t)) / wz
    y = (vx * (1.0 - cos_t) + vy * sin_t) / wz
    return (x, y, theta)


def path_poses(vx: float, vy: float, wz: float, times: FloatArray) -> PathPoses:
    """Poses at `times` under a constant body twist."""
    if abs(wz) < 1e-9:
        return PathPoses(vx * times, vy * times, np.zeros_like(times), None, None)
    theta = wz * times
    sin_t, cos_t = np.sin(theta), np.cos(theta)
    x = (vx * sin_t - vy * (1.0 - cos_t)) / wz
    y = (vx * (1.0 - cos_t) + vy * sin_t) / wz
    return PathPoses(x, y, theta, cos_t, sin_t)


def clearance_along_path(footprint: Footprint, x: FloatArray, y: FloatArray, poses: PathPoses) -> FloatArray:
    """Signed clearance of every point (x, y) to the footprint at every pose: shape (poses, points)."""
    dx = x[None, :] - poses.x[:, None]
    dy = y[None, :] - poses.y[:, None]
    if poses.cos_yaw is None or poses.sin_yaw is None:
        # With yaw 0 the rotation is the identity: cos * dx + sin * dy equals dx, up to the
        # sign of a zero, which no clearance comparison depends on.
        return footprint.signed_clearance(dx, dy)
    cos_y = poses.cos_yaw[:, None]
    sin_y = poses.sin_yaw[:, None]
    local_x = cos_y * dx + sin_y * dy
    local_y = -sin_y * dx + cos_y * dy
    return footprint.signed_clearance(local_x, local_y)


@dataclass(frozen=True, slots=True)
class PathFrames:
    """Maps from the base frame at rest into the footprint frame at each pose along a path.

    `transform` has shape (2 * poses, 3). Applied to a homogeneous point (x, y, 1), row i
    gives the point's x offset from the footprint centre at pose i and row poses + i its
    y offset. `half_sizes` has shape (2 * poses, 1): half the footprint length in the
    first `poses` rows and half its width in the others.
    """

    transform: FloatArray
    half_sizes: FloatArray
    half_length: float
    """Half the footprint length, metres."""
    half_width: float
    """Half the footprint width, metres."""

    @property
    def count(self) -> int:
        return int(self.transform.shape[0] // 2)


def path_frames(footprint: Footprint, poses: PathPoses) -> PathFrames:
    """Build the maps of every point into the footprint frame at each of `poses`."""
    count = poses.x.shape[0]
    center_x = (footprint.min_x + footprint.max_x) / 2.0
    center_y = (footprint.min_y + footprint.max_y) / 2.0
    # Per pose, local_x = cos * (x - px) + sin * (y - py) = cos * x + sin * y - offset_x.
    transform = np.empty((2 * count, 3))
    if poses.cos_yaw is None or poses.sin_yaw is None:
        transform[:count, 0] = 1.0
        transform[:count, 1] = 0.0
        transform[:count, 2] = -center_x - poses.x
        transform[count:, 0] = 0.0
        transform[count:, 1] = 1.0
        transform[count:, 2] = -center_y - poses.y
    else:
        cos_y, sin_y = poses.cos_yaw, poses.sin_yaw
        transform[:count, 0] = cos_y
        transform[:count, 1] = sin_y
        transform[:count, 2] = -center_x - (cos_y * poses.x + sin_y * poses.y)
        transform[count:, 0] = -sin_y
        transform[count:, 1] = cos_y
        transform[count:, 2] = -center_y - (cos_y * poses.y - sin_y * poses.x)
    half_length = (footprint.max_x - footprint.min_x) / 2.0
    half_width = (footprint.max_y - footprint.min_y) / 2.0
    half_sizes = np.empty((2 * count, 1))
    half_sizes[:count] = half_length
    half_sizes[count:] = half_width
    return PathFrames(transform, half_sizes, half_length, half_width)


def clearance_terms_along_path(frames: PathFrames, points: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Measure homogeneous points, shape (N, 3), against the footprint at every pose of a path.

    Returns the squared outside distance of every point at every pose, shape (poses, N),
    and each point's smallest signed clearance over all poses, shape (N,), negative for a
    point inside the footprint at some pose.
    """
    count = frames.count
    # One matrix product maps every point into every pose frame.
    gaps = frames.transform @ points.T
    # Distance beyond each half side of the rectangle, negative inside that side.
    np.abs(gaps, out=gaps)
    np.subtract(gaps, frames.half_sizes, out=gaps)
    outside = np.maximum(gaps, 0.0)
    np.multiply(outside, outside, out=outside)
    outside_squared: FloatArray = outside[:count] + outside[count:]
    smallest: FloatArray = np.minimum.reduce(outside_squared, axis=0)
    # The outside term is 0 only where a point is on or inside the footprint, so only those
    # few points need the inside depth, max(gap_x, gap_y), at its deepest over the poses.
    touched = np.flatnonzero(smallest == 0.0)
    np.sqrt(smallest, out=smallest)
    if touched.shape[0] > 0:
        depth = np.minimum.reduce(np.maximum(gaps[:count, touched], gaps[count:, touched]), axis=0)
        smallest[touched] = np.minimum(depth, 0.0)
    return outside_squared, smallest


PathClearance = tuple[int, float, int]
"""(first_approached, path_min, first_hit), as summarize_path_clearance_numpy returns it."""

ClearanceSummarizer = Callable[[PathFrames, FloatArray, FloatArray, float], PathClearance]


def summarize_path_clearance_numpy(
    frames: PathFrames, points: FloatArray, thresholds: FloatArray, hit_distance: float
) -> PathClearance:
    """Summarize how close the footprint comes to homogeneous points, shape (N, 3), along a path.

    A point counts as approached when its smallest clearance over the poses is below its
    entry in `thresholds`. Returns the index of the first approached point (-1 when none),
    the smallest clearance of an approached point (inf when none), and the first pose at
    which an approached point lies within `hit_distance` (>= 0) of the footprint. The hit
    pose is -1 when the smallest clearance is above `hit_distance`, and also in the rare
    case where rounding puts it just inside while no squared distance is.
    """
    if points.shape[0] == 0:
        return -1, math.inf, -1
    outside_squared, moving_min = clearance_terms_along_path(frames, points)
    approaching: BoolArray = moving_min < thresholds
    first_approached = int(approaching.argmax())
    if not approaching[first_approached]:
        return -1, math.inf, -1
    path_min = float(moving_min[approaching].min())
    if not path_min <= hit_distance:
        return first_approached, path_min, -1
    hits: BoolArray = np.logical_or.reduce(
        outside_squared[:, approaching] <= hit_distance * hit_distance, axis=1
    )
    first_hit = int(hits.argmax())
    return first_approached, path_min, first_hit if hits[first_hit] else -1


_KERNEL_ABI_VERSION = 1
"""ABI_VERSION the compiled module must report; see nc_safety/core/_clearance.c."""


def _load_kernel() -> ModuleType | None:
    try:
        from nc_safety.core import _clearance
    except ImportError:
        return None
    return _clearance if getattr(_clearance, "ABI_VERSION", None) == _KERNEL_ABI_VERSION else None


_KERNEL = _load_kernel()
COMPILED_CLEARANCE_AVAILABLE = _KERNEL is not None
"""Whether the C extension built with the package (setup.py marks it optional) loaded."""

_KERNEL_MISSING = (
    "the C extension nc_safety.core._clearance did not build or load: install a C compiler and the "
    "Python headers (apt-get install gcc python3-dev) and reinstall nc_safety (pip install --no-deps -e . "
    "in its source folder), or set obstacles.clearance_backend to auto or numpy"
)


def summarize_path_clearance_compiled(
    frames: PathFrames, points: FloatArray, thresholds: FloatArray, hit_distance: float
) -> PathClearance:
    """Compute summarize_path_clearance_numpy's result in the C extension.

    Raises RuntimeError when the extension did not build or load.
    """
    if _KERNEL is None:
        raise RuntimeError(_KERNEL_MISSING)
    result: PathClearance = _KERNEL.summarize(
        frames.transform, frames.half_length, frames.half_width, points, thresholds, hit_distance
    )
    return result


def clearance_summarizer(backend: str) -> ClearanceSummarizer:
    """Return the clearance function for `backend`: auto, compiled or numpy.

    auto takes the compiled form when it loaded. Raises ValueError for an unknown backend,
    or for compiled when it is not available.
    """
    if backend == "numpy" or (backend == "auto" and _KERNEL is None):
        return summarize_path_clearance_numpy
    if backend in ("auto", "compiled"):
        if _KERNEL is None:
            raise ValueError(f"clearance_backend is 'compiled' but {_KERNEL_MISSING}")
        return summarize_path_clearance_compiled
    raise ValueError(f"unknown clearance backend {backend!r}: use auto, compiled or numpy")


def transform_pose(origin: Pose2D, x: float, y: float, yaw: float) -> Pose2D:
    """Compose a pose given relative to `origin` into the frame `origin` lives in."""
    cos_o, sin_o = math.cos(origin.yaw), math.sin(origin.yaw)
    return Pose2D(origin.x + cos_o * x - sin_o * y, origin.y + sin_o * x + cos_o * y, origin.yaw + yaw)


def footprint_corners_at(footprint: Footprint, pose: Pose2D) -> list[tuple[float, float]]:
    cos_p, sin_p = math.cos(pose.yaw), math.sin(pose.yaw)
    return [
        (pose.x + cos_p * cx - sin_p * cy, pose.y + sin_p * cx + cos_p * cy) for cx, cy in footprint.corners()
    ]


def point_in_polygon(x: float, y: float, polygon: Sequence[tuple[float, float]]) -> bool:
    """Even-odd rule; points on an edge count as inside only by chance, so keep margins."""
    inside = False
    count = len(polygon)
    j = count - 1
    for i in range(count):
        xi, yi = polygon[i]
        xj, yj = polygon[j]
        if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


def segments_intersect(
    a: tuple[float, float], b: tuple[float, float], c: tuple[float, float], d: tuple[float, float]
) -> bool:
    def orient(p: tuple[float, float], q: tuple[float, float], r: tuple[float, float]) -> float:
        return (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])

    o1, o2, o3, o4 = orient(a, b, c), orient(a, b, d), orient(c, d, a), orient(c, d, b)
    return (o1 * o2 < 0.0) and (o3 * o4 < 0.0)


def polygons_overlap(first: Sequence[tuple[float, float]], second: Sequence[tuple[float, float]]) -> bool:
    """Return whether two simple polygons share any area or cross at their boundaries."""
    if any(point_in_polygon(x, y, second) for x, y in first):
        return True
    if any(point_in_polygon(x, y, first) for x, y in second):
        return True
    for i in range(len(first)):
        a, b = first[i], first[(i + 1) % len(first)]
        for j in range(len(second)):
            if segments_intersect(a, b, second[j], second[(j + 1) % len(second)]):
                return True
    return False
