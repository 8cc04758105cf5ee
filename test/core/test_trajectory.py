"""Joint trajectory checks: malformed input, hard and soft limits, velocity scaling."""

from __future__ import annotations

import math

import pytest

from nc_safety.core.errors import ConfigError
from nc_safety.core.trajectory import TrajectoryLimits, TrajectoryPoint, check_trajectory
from nc_safety.core.verdict import RefutableBy, Verdict

NAMES = ["shoulder", "elbow"]


def limits(mode: str = "scale") -> TrajectoryLimits:
    return TrajectoryLimits.from_arrays(
        NAMES, [-1.0, -2.0], [1.0, 2.0], [0.5, 1.0], soft_margin=0.1, max_points=100, mode=mode
    )


def point(shoulder: float, elbow: float, t: float) -> TrajectoryPoint:
    return TrajectoryPoint((shoulder, elbow), (), t)


def test_within_limits_forwarded_unchanged() -> None:
    result = check_trajectory(NAMES, [point(0.0, 0.0, 1.0), point(0.4, 0.5, 2.0)], limits())
    assert result.reasons == ()
    assert result.time_scale == 1.0


def test_hard_limit_refused_not_overridable() -> None:
    result = check_trajectory(NAMES, [point(0.0, 0.0, 1.0), point(1.2, 0.0, 10.0)], limits())
    reason = result.reasons[0]
    assert reason.rule_id == "trajectory.limit.position.shoulder"
    assert reason.verdict is Verdict.REFUSE
    assert reason.refutable_by is RefutableBy.NONE


def test_soft_margin_needs_supervisor() -> None:
    result = check_trajectory(NAMES, [point(0.0, 0.0, 1.0), point(0.95, 0.0, 10.0)], limits())
    reason = result.reasons[0]
    assert reason.rule_id == "trajectory.limit.soft_position.shoulder"
    assert reason.refutable_by is RefutableBy.SUPERVISOR


def test_too_fast_scaled_in_time() -> None:
    result = check_trajectory(NAMES, [point(0.0, 0.0, 0.5), point(0.5, 0.0, 1.0)], limits())
    assert result.reasons[0].verdict is Verdict.MODIFY
    assert result.time_scale == pytest.approx(2.0)
    assert result.scaled_points[-1].time_from_start == pytest.approx(2.0)


def test_too_fast_refused_in_refuse_mode() -> None:
    result = check_trajectory(NAMES, [point(0.0, 0.0, 0.5), point(0.5, 0.0, 1.0)], limits("refuse"))
    assert result.reasons[0].verdict is Verdict.REFUSE


@pytest.mark.parametrize(
    ("names", "points", "text"),
    [
        (NAMES, [], "no points"),
        (NAMES, [point(0.0, 0.0, 1.0), point(0.1, 0.1, 1.0)], "does not increase"),
        (NAMES, [TrajectoryPoint((0.0,), (), 1.0)], "1 positions for 2 joints"),
        (["shoulder", "shoulder"], [point(0.0, 0.0, 1.0)], "duplicates"),
    ],
)
def test_malformed_trajectory_refused(names: list[str], points: list[TrajectoryPoint], text: str) -> None:
    result = check_trajectory(names, points, limits())
    assert result.reasons[0].rule_id == "trajectory.invalid"
    assert text in result.reasons[0].message


def test_non_finite_refused() -> None:
    result = check_trajectory(NAMES, [point(math.nan, 0.0, 1.0)], limits())
    assert result.reasons[0].rule_id == "trajectory.non_finite"


def test_unknown_joint_unable() -> None:
    result = check_trajectory(["wrist", "elbow"], [point(0.0, 0.0, 1.0)], limits())
    assert result.reasons[0].verdict is Verdict.UNABLE


def test_bad_limits_listed_together() -> None:
    with pytest.raises(ConfigError) as caught:
        TrajectoryLimits.from_arrays(
            ["a", "b"], [1.0, 0.0], [0.0, 1.0], [1.0, -1.0], soft_margin=0.0, max_points=10, mode="fast"
        )
    text = str(caught.value)
    assert "min_position 1.0 must be below" in text
    assert "max_velocity -1.0" in text
    assert "'fast'" in text


def test_first_segment_checked_from_joint_state() -> None:
    single = [point(0.5, 0.0, 0.5)]
    without_start = check_trajectory(NAMES, single, limits())
    with_start = check_trajectory(NAMES, single, limits(), {"shoulder": 0.0, "elbow": 0.0})
    assert without_start.time_scale == 1.0
    assert with_start.time_scale == pytest.approx(2.0)
