"""Clearance along a sampled path: the C extension against the NumPy reference."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

from nc_safety.core import geometry
from nc_safety.core.errors import ConfigError
from nc_safety.core.geometry import (
    Footprint,
    path_frames,
    path_poses,
    sample_times,
    summarize_path_clearance_compiled,
    summarize_path_clearance_numpy,
)
from nc_safety.core.motion_config import load_motion_config

# CI sets this so that a failed build of the extension fails the run instead of skipping.
REQUIRE_COMPILED = os.environ.get("NC_SAFETY_REQUIRE_COMPILED") == "1"

needs_compiled = pytest.mark.skipif(
    not geometry.COMPILED_CLEARANCE_AVAILABLE and not REQUIRE_COMPILED,
    reason="nc_safety.core._clearance did not build (no C compiler or Python headers); NumPy is used",
)


def test_extension_built_when_required() -> None:
    if REQUIRE_COMPILED:
        assert geometry.COMPILED_CLEARANCE_AVAILABLE, (
            "NC_SAFETY_REQUIRE_COMPILED=1 but the extension did not load"
        )


def random_case(rng: np.random.Generator) -> tuple[geometry.PathFrames, np.ndarray, np.ndarray, float]:
    """A random footprint, twist and point cloud, with thresholds as the obstacle check builds them."""
    footprint = Footprint.from_size(rng.uniform(0.2, 1.5), rng.uniform(0.2, 1.2), rng.uniform(-0.2, 0.2))
    kind = int(rng.integers(0, 4))
    vx = rng.uniform(-1.5, 1.5)
    vy = rng.uniform(-0.8, 0.8) if kind == 1 else 0.0
    wz = 0.0 if kind == 0 else rng.uniform(-2.0, 2.0)
    if kind == 3:
        vx = 0.0
    count = int(rng.integers(2, 40))
    times = sample_times(rng.uniform(0.05, 1.5), count)
    frames = path_frames(footprint, path_poses(vx, vy, wz, times[1:]))

    size = int(rng.integers(0, 300))
    points = rng.normal(0.0, rng.uniform(0.5, 4.0), (size, 2))
    # Some clouds keep a free space around the base, so that paths also stay free.
    radius = np.hypot(points[:, 0], points[:, 1])
    points = points[radius > rng.choice([0.0, 1.5, 3.0])]
    size = points.shape[0]
    if rng.random() < 0.3:
        # Points on a 1 cm grid land exactly on the footprint edges and on each other.
        points = np.round(points, 2)
    rest = footprint.signed_clearance(points[:, 0], points[:, 1])
    order = np.argsort(rest, kind="stable")
    homogeneous = np.ones((size, 3))
    homogeneous[:, :2] = points[order]
    thresholds = rest[order] - 1e-6
    hit_distance = rng.uniform(0.0, 0.2)
    return frames, homogeneous, thresholds, hit_distance


@needs_compiled
def test_compiled_matches_numpy_on_random_paths() -> None:
    rng = np.random.default_rng(20261204)
    outcomes = {"free": 0, "approached": 0, "hit": 0}
    for _ in range(3000):
        frames, points, thresholds, hit_distance = random_case(rng)
        expected = summarize_path_clearance_numpy(frames, points, thresholds, hit_distance)
        got = summarize_path_clearance_compiled(frames, points, thresholds, hit_distance)
        assert got[0] == expected[0]
        assert got[2] == expected[2]
        if math.isinf(expected[1]):
            assert math.isinf(got[1])
        else:
            # NumPy's matrix product may fuse multiply-adds, so the last bit may differ.
            assert got[1] == pytest.approx(expected[1], rel=0.0, abs=1e-12)
        if expected[0] < 0:
            outcomes["free"] += 1
        elif expected[2] >= 0:
            outcomes["hit"] += 1
        else:
            outcomes["approached"] += 1
    # The cases cover every kind of result, or the comparison above proves little.
    assert min(outcomes.values()) > 100, outcomes


@needs_compiled
def test_compiled_point_inside_footprint_is_negative() -> None:
    footprint = Footprint.from_size(0.6, 0.4)
    frames = path_frames(footprint, path_poses(0.5, 0.0, 0.0, np.array([0.1, 0.2])))
    points = np.array([[0.3, 0.0, 1.0]])
    for summarize in (summarize_path_clearance_numpy, summarize_path_clearance_compiled):
        first, path_min, hit = summarize(frames, points, np.array([1.0]), 0.05)
        assert first == 0
        # At the second pose the base has moved 0.1 m, so the point is 0.1 m inside the front edge.
        assert path_min == pytest.approx(-0.1)
        assert hit == 0


@needs_compiled
def test_compiled_empty_points() -> None:
    frames = path_frames(Footprint.from_size(0.6, 0.4), path_poses(0.5, 0.0, 0.0, np.array([0.1])))
    result = summarize_path_clearance_compiled(frames, np.ones((0, 3)), np.zeros(0), 0.1)
    assert result == (-1, math.inf, -1)


@needs_compiled
def test_compiled_rejects_wrong_arrays() -> None:
    frames = path_frames(Footprint.from_size(0.6, 0.4), path_poses(0.5, 0.0, 0.0, np.array([0.1])))
    points = np.ones((4, 3))
    with pytest.raises(TypeError, match="points must be a 2-dimensional float64 array"):
        summarize_path_clearance_compiled(frames, points.astype(np.float32), np.zeros(4), 0.1)
    with pytest.raises(TypeError, match="points must be a C-contiguous float64 array"):
        summarize_path_clearance_compiled(frames, np.ones((4, 6))[:, ::2], np.zeros(4), 0.1)
    with pytest.raises(ValueError, match="thresholds \\(3,\\) need one value per point"):
        summarize_path_clearance_compiled(frames, points, np.zeros(3), 0.1)


@needs_compiled
def test_kernel_with_other_abi_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    from nc_safety.core import _clearance

    monkeypatch.setattr(_clearance, "ABI_VERSION", 999)
    assert geometry._load_kernel() is None


def test_backend_names_resolve() -> None:
    assert geometry.clearance_summarizer("numpy") is summarize_path_clearance_numpy
    auto = geometry.clearance_summarizer("auto")
    if geometry.COMPILED_CLEARANCE_AVAILABLE:
        assert auto is summarize_path_clearance_compiled
    else:
        assert auto is summarize_path_clearance_numpy


def test_unknown_backend_is_config_error() -> None:
    with pytest.raises(ConfigError, match="clearance_backend"):
        load_motion_config({"obstacles.clearance_backend": "fast"})


def test_compiled_backend_missing_is_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(geometry, "_KERNEL", None)
    with pytest.raises(ConfigError, match="did not build or load"):
        load_motion_config({"obstacles.clearance_backend": "compiled"})
    # auto falls back to NumPy instead of failing.
    config = load_motion_config({"obstacles.clearance_backend": "auto"})
    assert config.obstacles.clearance_backend == "auto"
    assert geometry.clearance_summarizer("auto") is summarize_path_clearance_numpy
