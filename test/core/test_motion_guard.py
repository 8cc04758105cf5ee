"""Motion guard decisions on core values: commands, limits, time steps, holds, overrides."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nc_safety.core.constraints import make_reason
from nc_safety.core.errors import ConfigError
from nc_safety.core.grant import OverrideGrant
from nc_safety.core.holds import Hold
from nc_safety.core.motion import MotionGuard
from nc_safety.core.motion_config import load_motion_config
from nc_safety.core.scan import ScanHeader
from nc_safety.core.values import Twist, TwistCommand
from nc_safety.core.verdict import Verdict

PERIOD = 0.05


def free_scan(guard: MotionGuard, now: float, range_value: float = math.inf, range_max: float = 10.0) -> None:
    count = 360
    increment = 2.0 * math.pi / count
    header = ScanHeader(-math.pi, -math.pi + increment * (count - 1), increment, 0.1, range_max, count, now)
    guard.update_scan("scan", header, np.full(count, range_value), now)


def make_guard(**overrides: object) -> MotionGuard:
    flat = {
        "limits.max_linear_x": 1.0,
        "limits.min_linear_x": -1.0,
        "limits.max_accel_linear": 100.0,
        "limits.max_accel_angular": 100.0,
    }
    flat.update(overrides)
    return MotionGuard(load_motion_config(flat), started_at=0.0)


class Clock:
    """Drives a guard with fresh scans and commands at a fixed period."""

    def __init__(self, guard: MotionGuard, start: float = 1.0) -> None:
        self.guard = guard
        self.now = start
        self.sequence = 0

    def step(self, twist: Twist | None, scan: bool = True):
        self.now += PERIOD
        if scan:
            free_scan(self.guard, self.now)
        if twist is not None:
            self.sequence += 1
            self.guard.submit_command(TwistCommand(twist, received_at=self.now, sequence=self.sequence))
        return self.guard.decide(self.now, 0.0)


def test_nan_command_refused_and_named() -> None:
    clock = Clock(make_guard())
    result = clock.step(Twist(linear_x=0.2, angular_z=math.nan))
    assert result.decision.verdict is Verdict.REFUSE
    assert result.decision.reasons[0].rule_id == "motion.non_finite"
    assert "angular.z" in result.decision.reasons[0].message
    assert result.output.is_zero()


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_linear_x_refused(value: float) -> None:
    clock = Clock(make_guard())
    result = clock.step(Twist(linear_x=value))
    assert result.decision.verdict is Verdict.REFUSE
    assert "linear.x" in result.decision.reasons[0].message
    assert result.output.is_zero()


def test_huge_value_clamped_not_reversed() -> None:
    clock = Clock(make_guard())
    result = clock.step(Twist(linear_x=1e308))
    assert result.output.linear_x == pytest.approx(1.0)
    assert "motion.limit.linear_x" in result.decision.rule_ids


def test_huge_negative_value_clamped_to_reverse_limit() -> None:
    clock = Clock(make_guard())
    result = clock.step(Twist(linear_x=-1e308))
    assert result.output.linear_x == pytest.approx(-1.0)


def test_negative_zero_is_zero() -> None:
    clock = Clock(make_guard())
    result = clock.step(Twist(linear_x=-0.0, angular_z=-0.0))
    assert result.decision.verdict is Verdict.COMPLY
    assert math.copysign(1.0, result.output.linear_x) == 1.0


def test_refuse_mode_stops_over_limit() -> None:
    clock = Clock(make_guard(**{"limits.mode": "refuse"}))
    result = clock.step(Twist(linear_x=2.0))
    assert result.decision.verdict is Verdict.REFUSE
    assert result.output.is_zero()


def test_one_nan_does_not_poison_ramp() -> None:
    guard = make_guard(**{"limits.max_accel_linear": 2.0})
    clock = Clock(guard)
    clock.step(Twist(linear_x=math.nan))
    outputs = [clock.step(Twist(linear_x=0.3)).output.linear_x for _ in range(50)]
    assert outputs[-1] == pytest.approx(0.3)
    assert all(math.isfinite(value) for value in outputs)


def test_nan_stream_after_motion_stops_in_one_cycle() -> None:
    clock = Clock(make_guard())
    for _ in range(5):
        clock.step(Twist(linear_x=0.5))
    result = clock.step(Twist(linear_x=math.nan))
    assert result.output.is_zero()
    assert clock.step(None).output.is_zero()


def test_silent_input_goes_to_zero() -> None:
    clock = Clock(make_guard(**{"command.timeout": 0.2}))
    assert clock.step(Twist(linear_x=0.4)).output.linear_x == pytest.approx(0.4)
    outputs = [clock.step(None) for _ in range(6)]
    assert outputs[-1].output.is_zero()
    assert "source.silent.cmd_vel_in" in outputs[-1].decision.rule_ids


def test_clock_going_backwards_is_fault() -> None:
    clock = Clock(make_guard())
    clock.step(Twist(linear_x=0.4))
    guard = clock.guard
    guard.submit_command(TwistCommand(Twist(linear_x=0.4), received_at=clock.now - 0.01, sequence=99))
    result = guard.decide(clock.now - 0.01, 0.0)
    assert result.decision.verdict is Verdict.FAULT
    assert "motion.time_step" in result.decision.rule_ids


def test_long_gap_while_moving_is_fault() -> None:
    clock = Clock(make_guard(**{"command.timeout": 5.0}))
    clock.step(Twist(linear_x=0.4))
    clock.now += 2.0
    result = clock.step(Twist(linear_x=0.4))
    assert "motion.time_step" in result.decision.rule_ids
    assert result.output.is_zero()


def test_same_tick_decisions_agree() -> None:
    guard = make_guard(**{"limits.max_accel_linear": 1.0})
    clock = Clock(guard)
    first = clock.step(Twist(linear_x=0.5)).output
    second = guard.decide(clock.now, 0.0).output
    assert second == first


def test_hold_stops_and_reset_needs_new_command() -> None:
    clock = Clock(make_guard(**{"command.timeout": 5.0}))
    clock.step(Twist(linear_x=0.3))
    reason = make_reason("estop.button", Verdict.REFUSE, "Button pressed.")
    clock.guard.set_hold(Hold("estop.button", reason, clock.now))
    assert clock.step(None).output.is_zero()
    clock.guard.clear_hold("estop.button", clock.now)
    after_reset = clock.step(None)
    assert after_reset.output.is_zero()
    assert "motion.restart_interlock" in after_reset.decision.rule_ids
    assert clock.step(Twist(linear_x=0.3)).output.linear_x == pytest.approx(0.3)


def test_override_waives_slowdown_until_expiry() -> None:
    guard = make_guard(**{"obstacles.slowdown_distance": 1.0, "obstacles.stop_distance": 0.05})
    clock = Clock(guard)

    def wall_scan(now: float) -> None:
        count = 360
        increment = 2.0 * math.pi / count
        angles = -math.pi + increment * np.arange(count)
        ranges = np.where(np.abs(angles) < 0.6, 0.9 / np.cos(angles), np.inf)
        guard.update_scan(
            "scan", ScanHeader(-math.pi, angles[-1], increment, 0.1, 10.0, count, now), ranges, now
        )

    clock.now += PERIOD
    wall_scan(clock.now)
    guard.submit_command(TwistCommand(Twist(linear_x=0.2), received_at=clock.now, sequence=1))
    slowed = guard.decide(clock.now, 0.0)
    assert "motion.obstacle.slowdown" in slowed.decision.rule_ids
    grant = OverrideGrant(
        "o1",
        frozenset({"motion.obstacle.slowdown"}),
        "alice",
        "supervisor",
        "inspection",
        clock.now,
        clock.now + 1.0,
    )
    guard.add_grant(grant)
    clock.now += PERIOD
    wall_scan(clock.now)
    guard.submit_command(TwistCommand(Twist(linear_x=0.2), received_at=clock.now, sequence=2))
    overridden = guard.decide(clock.now, 0.0)
    assert overridden.output.linear_x == pytest.approx(0.2)
    assert overridden.decision.overrides[0].operator_id == "alice"
    for sequence in range(3, 25):
        clock.now += PERIOD
        wall_scan(clock.now)
        guard.submit_command(TwistCommand(Twist(linear_x=0.2), received_at=clock.now, sequence=sequence))
        expired = guard.decide(clock.now, 0.0)
    assert "motion.obstacle.slowdown" in expired.decision.rule_ids


def test_override_never_lifts_non_finite() -> None:
    guard = make_guard()
    guard.add_grant(
        OverrideGrant("o2", frozenset({"motion.non_finite"}), "bob", "supervisor", "test", 0.0, 100.0)
    )
    clock = Clock(guard)
    result = clock.step(Twist(linear_x=math.nan))
    assert result.decision.verdict is Verdict.REFUSE
    assert result.decision.overridden == ()


def test_config_lists_every_bad_key() -> None:
    with pytest.raises(ConfigError) as caught:
        load_motion_config({"limits.max_linear_x": -1.0, "output.rate": 0.0, "limits.bogus": 3})
    text = str(caught.value)
    assert "limits.max_linear_x" in text
    assert "output.rate" in text
    assert "limits.bogus" in text


def test_zero_timeout_for_required_source_rejected() -> None:
    with pytest.raises(ConfigError, match="zero timeout cannot disable a required source"):
        load_motion_config({"scan.scan.timeout": 0.0})


def test_missing_scan_is_fault_never_received() -> None:
    guard = make_guard()
    guard.submit_command(TwistCommand(Twist(linear_x=0.2), received_at=1.0, sequence=1))
    result = guard.decide(1.0, 0.0)
    assert result.decision.verdict is Verdict.FAULT
    assert "never received" in result.decision.reasons[0].message


def test_future_scan_is_fault() -> None:
    guard = make_guard()
    free_scan(guard, 6.0)
    guard.submit_command(TwistCommand(Twist(linear_x=0.2), received_at=1.0, sequence=1))
    result = guard.decide(1.0, 0.0)
    assert result.decision.verdict is Verdict.FAULT
    assert "in the future" in result.decision.reasons[0].message
