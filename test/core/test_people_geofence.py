"""People separation (ISO/TS 15066) and geofence rules on core values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nc_safety.core.constraints.people import allowed_speed
from nc_safety.core.grant import OverrideGrant
from nc_safety.core.motion import MotionGuard
from nc_safety.core.motion_config import PeopleConfig, load_motion_config
from nc_safety.core.values import OdomSnapshot, PeopleSnapshot, Pose2D, Twist, TwistCommand
from nc_safety.core.verdict import RefutableBy, Verdict


def guard_with(**overrides: object) -> MotionGuard:
    flat: dict[str, object] = {
        "limits.max_linear_x": 1.0,
        "limits.max_accel_linear": 100.0,
        "limits.max_accel_angular": 100.0,
        "scan.scan.required": False,
    }
    flat.update(overrides)
    return MotionGuard(load_motion_config(flat), started_at=0.0)


def decide_with_people(guard: MotionGuard, twist: Twist, people: list[tuple[float, float]], now: float = 1.0):
    guard.update_people(PeopleSnapshot(np.array(people, dtype=float).reshape(-1, 2), now, now))
    guard.submit_command(TwistCommand(twist, received_at=now, sequence=1))
    return guard.decide(now, 0.0)


def test_allowed_speed_zero_inside_static_separation() -> None:
    config = PeopleConfig(enabled=True)
    assert allowed_speed(0.3, config, 0.15, 1.0) == 0.0


def test_allowed_speed_grows_with_distance() -> None:
    config = PeopleConfig(enabled=True)
    assert 0.0 < allowed_speed(1.0, config, 0.15, 1.0) < allowed_speed(3.0, config, 0.15, 1.0)


def test_person_close_ahead_stops_and_is_hard_rule() -> None:
    guard = guard_with(**{"people.enabled": True})
    result = decide_with_people(guard, Twist(linear_x=0.5), [(0.6, 0.0)])
    reason = result.decision.reasons[0]
    assert result.output.linear_x == 0.0
    assert reason.rule_id == "motion.people.separation"
    assert reason.refutable_by is RefutableBy.NONE


def test_person_far_ahead_slows() -> None:
    guard = guard_with(**{"people.enabled": True})
    result = decide_with_people(guard, Twist(linear_x=1.0), [(2.0, 0.0)])
    assert 0.0 < result.output.linear_x < 1.0
    assert result.decision.verdict is Verdict.MODIFY


def test_moving_away_from_close_person_allowed() -> None:
    guard = guard_with(**{"people.enabled": True, "limits.min_linear_x": -0.5})
    result = decide_with_people(guard, Twist(linear_x=-0.3), [(0.5, 0.0)])
    assert result.output.linear_x == pytest.approx(-0.3)


def test_people_rule_not_waived_by_override() -> None:
    guard = guard_with(**{"people.enabled": True})
    guard.add_grant(
        OverrideGrant("g", frozenset({"motion.people.separation"}), "sup", "supervisor", "x", 0.0, 9.0)
    )
    result = decide_with_people(guard, Twist(linear_x=0.5), [(0.6, 0.0)])
    assert result.output.linear_x == 0.0


def test_stale_people_detections_fault() -> None:
    guard = guard_with(**{"people.enabled": True})
    guard.update_people(PeopleSnapshot(np.zeros((0, 2)), 0.1, 0.1))
    guard.submit_command(TwistCommand(Twist(linear_x=0.2), received_at=2.0, sequence=1))
    result = guard.decide(2.0, 0.0)
    assert result.decision.verdict is Verdict.FAULT
    assert "source.stale.people" in result.decision.rule_ids


def geofenced(**overrides: object) -> MotionGuard:
    flat: dict[str, object] = {
        "geofence.enabled": True,
        "geofence.keep_in": (-5.0, -5.0, 5.0, -5.0, 5.0, 5.0, -5.0, 5.0),
        "geofence.keep_out": ("1.0,-1.0 2.0,-1.0 2.0,1.0 1.0,1.0",),
    }
    flat.update(overrides)
    return guard_with(**flat)


def decide_at(guard: MotionGuard, pose: Pose2D, twist: Twist, now: float = 1.0):
    guard.update_odom(OdomSnapshot(pose, 0.0, 0.0, now, now))
    guard.submit_command(TwistCommand(twist, received_at=now, sequence=1))
    return guard.decide(now, 0.0)


def test_stop_point_in_keep_out_limited() -> None:
    result = decide_at(geofenced(), Pose2D(0.5, 0.0, 0.0), Twist(linear_x=1.0))
    assert result.output.linear_x < 1.0
    assert "motion.geofence.keep_out" in result.decision.rule_ids


def test_keep_out_beside_path_allowed() -> None:
    result = decide_at(geofenced(), Pose2D(0.0, 3.0, 0.0), Twist(linear_x=0.5))
    assert result.output.linear_x == pytest.approx(0.5)


def test_keep_in_boundary_limits_speed() -> None:
    result = decide_at(geofenced(), Pose2D(4.6, 3.0, 0.0), Twist(linear_x=1.0))
    assert "motion.geofence.keep_in" in result.decision.rule_ids
    assert result.output.linear_x < 1.0


def test_geofence_needs_odometry() -> None:
    guard = geofenced()
    guard.submit_command(TwistCommand(Twist(linear_x=0.2), received_at=1.0, sequence=1))
    result = guard.decide(1.0, 0.0)
    assert "source.stale.odom" in result.decision.rule_ids


def test_odometry_yaw_spike_ignored() -> None:
    guard = geofenced()
    checked = guard.update_odom(OdomSnapshot(Pose2D(0.0, 0.0, 0.0), 0.1, 125.0, 1.0, 1.0))
    assert math.isnan(checked.angular_speed)
    assert checked.linear_speed == pytest.approx(0.1)


def test_bad_keep_out_polygon_named() -> None:
    from nc_safety.core.errors import ConfigError

    with pytest.raises(ConfigError, match=r"polygon vertex '1\.0;2\.0'"):
        load_motion_config({"geofence.keep_out": ("0,0 1.0;2.0 3,3",)})
