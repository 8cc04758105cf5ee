"""Obstacle rules with real scan geometry: zones, braking distance, swept area, scan encodings."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator

import numpy as np
import pytest

from nc_safety.core import geometry
from nc_safety.core.geometry import Footprint
from nc_safety.core.motion import MotionGuard
from nc_safety.core.motion_config import load_motion_config
from nc_safety.core.scan import ScanHeader, ScanRejection
from nc_safety.core.values import Twist, TwistCommand
from nc_safety.core.verdict import Verdict

COUNT = 720
INCREMENT = 2.0 * math.pi / COUNT
ANGLES = -math.pi + INCREMENT * np.arange(COUNT)


def header(
    now: float, range_max: float = 10.0, count: int = COUNT, increment: float = INCREMENT
) -> ScanHeader:
    return ScanHeader(-math.pi, -math.pi + increment * (count - 1), increment, 0.05, range_max, count, now)


def scan_of_points(points: list[tuple[float, float]]) -> np.ndarray:
    """Ranges of a laser at the base origin that sees exactly the given points."""
    ranges = np.full(COUNT, np.inf)
    for x, y in points:
        index = round((math.atan2(y, x) + math.pi) / INCREMENT) % COUNT
        ranges[index] = min(ranges[index], math.hypot(x, y))
    return ranges


def wall_ranges(distance: float) -> np.ndarray:
    """A straight wall `distance` metres ahead of the laser, perpendicular to x."""
    with np.errstate(divide="ignore"):
        ranges = np.where(np.cos(ANGLES) > 0.05, distance / np.cos(ANGLES), np.inf)
    return np.where(ranges < 30.0, ranges, np.inf)


_backend = {"name": "auto"}


@pytest.fixture(autouse=True, params=["compiled", "numpy"])
def clearance_backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run every obstacle test with the C extension and with the NumPy fallback."""
    missing = request.param == "compiled" and not geometry.COMPILED_CLEARANCE_AVAILABLE
    if missing and os.environ.get("NC_SAFETY_REQUIRE_COMPILED") != "1":
        pytest.skip("nc_safety.core._clearance did not build; only NumPy is tested")
    _backend["name"] = request.param
    yield request.param
    _backend["name"] = "auto"


def guard_for(**overrides: object) -> MotionGuard:
    flat: dict[str, object] = {
        "obstacles.clearance_backend": _backend["name"],
        "limits.max_linear_x": 1.0,
        "limits.min_linear_x": -1.0,
        "limits.max_angular_z": 2.0,
        "limits.max_accel_linear": 100.0,
        "limits.max_accel_angular": 100.0,
        "robot.length": 0.6,
        "robot.width": 0.4,
        "robot.center_x": 0.0,
        "scan.scan.range_min": 0.01,
    }
    flat.update(overrides)
    return MotionGuard(load_motion_config(flat), started_at=0.0)


def decide(guard: MotionGuard, twist: Twist, ranges: np.ndarray, now: float = 1.0, range_max: float = 10.0):
    guard.update_scan("scan", header(now, range_max), ranges, now)
    guard.submit_command(TwistCommand(twist, received_at=now, sequence=int(now * 1000)))
    return guard.decide(now, 0.0)


def test_all_no_return_is_free() -> None:
    result = decide(guard_for(), Twist(linear_x=0.5), np.full(COUNT, np.inf))
    assert result.decision.verdict is Verdict.COMPLY


def test_short_range_max_no_phantom_but_warns() -> None:
    guard = guard_for(**{"obstacles.stop_distance": 0.5, "obstacles.slowdown_distance": 0.6})
    result = decide(guard, Twist(linear_x=0.2), np.full(COUNT, np.inf), range_max=0.4)
    assert result.decision.verdict is Verdict.COMPLY
    assert guard.scan_coverage_warnings()


def test_no_return_as_range_max_is_free() -> None:
    guard = guard_for()
    as_inf = decide(guard, Twist(linear_x=0.5), np.full(COUNT, np.inf), now=1.0)
    as_max = decide(guard, Twist(linear_x=0.5), np.full(COUNT, 10.0), now=1.05)
    assert as_inf.decision.verdict is Verdict.COMPLY
    assert as_max.decision.verdict is Verdict.COMPLY


def test_range_max_counts_when_configured() -> None:
    guard = guard_for(**{"scan.scan.range_max_is_no_return": False})
    result = decide(guard, Twist(linear_x=0.5), np.full(COUNT, 0.6), range_max=0.6)
    assert result.decision.verdict is not Verdict.COMPLY


def test_negative_infinity_is_close_obstacle() -> None:
    ranges = np.full(COUNT, np.inf)
    ranges[COUNT // 2] = -np.inf  # straight ahead
    result = decide(guard_for(), Twist(linear_x=0.3), ranges)
    assert result.output.linear_x == 0.0


def test_rotation_slowed_by_swept_circle() -> None:
    guard = guard_for()
    # Outside the 0.6 x 0.4 m footprint but inside its 0.36 m swept circle.
    result = decide(guard, Twist(angular_z=0.3), scan_of_points([(0.0, 0.3), (0.01, 0.3)]))
    assert abs(result.output.angular_z) < 0.3
    assert any(rule.startswith("motion.obstacle") for rule in result.decision.rule_ids)


def test_rotation_free_without_obstacle() -> None:
    result = decide(guard_for(), Twist(angular_z=0.3), scan_of_points([(0.0, 1.5)]))
    assert result.output.angular_z == pytest.approx(0.3)


def test_reverse_turn_limited_by_obstacle_behind() -> None:
    guard = guard_for()
    behind = [(-0.3 - 0.3, y) for y in np.linspace(-0.3, 0.3, 13)]
    result = decide(guard, Twist(linear_x=-0.3, angular_z=-0.5), scan_of_points(behind))
    assert result.output.linear_x > -0.3
    assert any(rule.startswith("motion.obstacle") for rule in result.decision.rule_ids)


def test_moving_away_from_close_obstacle_allowed() -> None:
    result = decide(guard_for(), Twist(linear_x=-0.2), wall_ranges(0.35))
    assert result.output.linear_x == pytest.approx(-0.2)


def test_sideways_motion_checked_for_holonomic_base() -> None:
    guard = guard_for(**{"limits.max_linear_y": 0.5})
    left = [(x, 0.35) for x in np.linspace(-0.3, 0.3, 13)]
    result = decide(guard, Twist(linear_y=0.4), scan_of_points(left))
    assert result.output.linear_y < 0.4


@pytest.mark.parametrize(
    ("bad_header", "why"),
    [
        (header(1.0, increment=0.0), "angle_increment is 0"),
        (ScanHeader(-1.0, 1.0, 0.01, 0.0, 10.0, 50, 1.0), "do not match"),
        (ScanHeader(-1.0, 1.0, 1e-9, 0.0, 10.0, 2_000_000, 1.0), "more than max_rays"),
        (ScanHeader(-1.0, math.nan, 0.01, 0.0, 10.0, 201, 1.0), "non-finite"),
    ],
)
def test_malformed_scan_rejected(bad_header: ScanHeader, why: str) -> None:
    guard = guard_for()
    result = guard.update_scan("scan", bad_header, np.zeros(min(bad_header.ray_count, 10)), 1.0)
    assert isinstance(result, ScanRejection)
    assert why in result.reason
    guard.submit_command(TwistCommand(Twist(linear_x=0.2), received_at=1.0, sequence=1))
    decision = guard.decide(1.0, 0.0)
    assert decision.decision.verdict is Verdict.FAULT


def test_variable_ray_count_accepted() -> None:
    guard = guard_for()
    for count in (150, 235, 201):
        increment = 2.0 * math.pi / count
        result = guard.update_scan(
            "scan",
            ScanHeader(0.0, increment * (count - 1), increment, 0.0, 100.0, count, 1.0),
            np.full(count, np.nan),
            1.0,
        )
        assert not isinstance(result, ScanRejection)


def test_wall_approach_keeps_margin() -> None:
    """0.8 m/s toward a wall with a 0.1 s evaluation period: the robot stops outside the margin."""
    margin = 0.05
    period = 0.1
    guard = guard_for(
        **{
            "output.rate": 1.0 / period,
            "obstacles.margin": margin,
            "obstacles.stop_distance": 0.02,
            "obstacles.slowdown_distance": 0.02,
            "robot.reaction_time": 0.1,
            "robot.max_decel_linear": 1.0,
        }
    )
    footprint = Footprint.from_size(0.6, 0.4, 0.0)
    wall_x = 2.0
    position = 0.0
    speed = 0.0
    commanded = 0.0
    now = 1.0
    step = 0.005
    pending: list[tuple[float, float]] = []
    min_clearance = math.inf
    for _ in range(int(8.0 / period)):
        ranges = wall_ranges(wall_x - position)
        result = decide(guard, Twist(linear_x=0.8), ranges, now=now)
        # The base starts following a new output after its reaction time.
        pending.append((now + 0.1, result.output.linear_x))
        for _ in range(int(period / step)):
            now += step
            while pending and pending[0][0] <= now:
                commanded = pending.pop(0)[1]
            # Braking at the configured deceleration; speeding up is instant (pessimistic).
            speed = max(commanded, speed - 1.0 * step) if commanded < speed else commanded
            position += speed * step
            min_clearance = min(min_clearance, wall_x - (position + footprint.max_x))
    assert min_clearance >= margin - 1e-3
    assert speed == pytest.approx(0.0, abs=1e-6)


def test_slowdown_reaches_ratio_with_ramp() -> None:
    """Inside the slowdown zone the output settles at ratio x command, not at a crawl."""
    guard = guard_for(
        **{
            "limits.max_accel_linear": 0.5,
            "obstacles.slowdown_distance": 1.5,
            "obstacles.slowdown_ratio": 0.5,
            "output.rate": 20.0,
        }
    )
    output = 0.0
    for step in range(60):
        result = decide(guard, Twist(linear_x=0.4), wall_ranges(1.5), now=1.0 + step * 0.05)
        output = result.output.linear_x
    assert output == pytest.approx(0.2, abs=1e-6)
    assert "motion.obstacle.slowdown" in result.decision.rule_ids


def test_tiny_rotation_does_not_crash() -> None:
    result = decide(guard_for(), Twist(angular_z=5e-10), scan_of_points([(0.0, 0.3)]))
    assert result.decision.verdict is not Verdict.FAULT


def test_turn_in_place_beside_furniture_not_stopped() -> None:
    """A point just outside the stop zone beside a turning robot slows it, it does not stop it."""
    guard = guard_for(**{"obstacles.stop_distance": 0.1, "obstacles.margin": 0.02})
    behind = [(-0.3 - 0.12, y) for y in np.linspace(-0.1, 0.1, 5)]
    result = decide(guard, Twist(angular_z=0.5), scan_of_points(behind))
    assert "motion.obstacle.stop" not in result.decision.rule_ids
    assert result.output.angular_z > 0.0
