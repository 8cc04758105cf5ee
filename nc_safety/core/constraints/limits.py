"""Per-axis velocity limits and acceleration ramps."""

from __future__ import annotations

import math

from nc_safety.core.constraints import Outcome, make_reason
from nc_safety.core.justification import Evidence
from nc_safety.core.motion_config import LimitsConfig
from nc_safety.core.values import TWIST_FIELDS, Twist
from nc_safety.core.verdict import Verdict


def _bounds(limits: LimitsConfig) -> tuple[tuple[float, float], ...]:
    return (
        (limits.min_linear_x, limits.max_linear_x),
        (-limits.max_linear_y, limits.max_linear_y),
        (-limits.max_linear_z, limits.max_linear_z),
        (-limits.max_angular_x, limits.max_angular_x),
        (-limits.max_angular_y, limits.max_angular_y),
        (-limits.max_angular_z, limits.max_angular_z),
    )


def apply_velocity_limits(twist: Twist, limits: LimitsConfig) -> tuple[Twist, list[Outcome]]:
    """Clamp each axis to its limits (mode clamp) or stop (mode refuse).

    The twist must be finite. A huge value such as 1e308 clamps to the limit on its own
    side, never to the opposite one. A twist within every limit is returned as it is.
    """
    if (
        limits.min_linear_x <= twist.linear_x <= limits.max_linear_x
        and -limits.max_linear_y <= twist.linear_y <= limits.max_linear_y
        and -limits.max_linear_z <= twist.linear_z <= limits.max_linear_z
        and -limits.max_angular_x <= twist.angular_x <= limits.max_angular_x
        and -limits.max_angular_y <= twist.angular_y <= limits.max_angular_y
        and -limits.max_angular_z <= twist.angular_z <= limits.max_angular_z
    ):
        return twist, []
    values = list(twist.as_tuple())
    outcomes: list[Outcome] = []
    refuse = limits.mode == "refuse"
    for index, (low, high) in enumerate(_bounds(limits)):
        value = values[index]
        if low <= value <= high:
            continue
        bound = high if value > high else low
        name = TWIST_FIELDS[index]
        unit = "m/s" if name.startswith("linear") else "rad/s"
        values[index] = bound
        axis = name.replace(".", "_")
        if refuse:
            message = f"{name} {value:.4g} {unit} is outside [{low:.4g}, {high:.4g}] {unit}: stopping."
            remedy = f"Send {name} within [{low:.4g}, {high:.4g}] {unit}."
        else:
            message = f"{name} {value:.4g} {unit} clamped to {bound:.4g} {unit}."
            remedy = f"Send {name} within [{low:.4g}, {high:.4g}] {unit} to have it forwarded unchanged."
        outcomes.append(
            Outcome(
                reason=make_reason(
                    f"motion.limit.{axis}",
                    Verdict.REFUSE if refuse else Verdict.MODIFY,
                    message,
                    evidence=(Evidence(name, value, unit, limit=bound, source="cmd_vel_in"),),
                    consequence=f"The base would be driven beyond its rated {name} limit.",
                    remedy=remedy,
                    remedy_values={f"max_{axis}": abs(bound)},
                ),
                scale=0.0 if refuse else 1.0,
            )
        )
    return Twist.from_tuple((values[0], values[1], values[2], values[3], values[4], values[5])), outcomes


def apply_acceleration_limits(
    target: Twist, previous: Twist, dt: float, limits: LimitsConfig
) -> tuple[Twist, list[Outcome]]:
    """Limit how fast speed grows from the previous output over `dt` seconds.

    Only growth of a magnitude is ramped: slowing down is never delayed here, because a
    safety layer must be able to brake at once. The base's own controller limits
    deceleration; the braking-distance rule accounts for it. A target within one step of
    `previous` on every axis is returned as it is.
    """
    outcomes: list[Outcome] = []
    linear_step = limits.max_accel_linear * dt
    angular_step = limits.max_accel_angular * dt
    # Growth beyond a step needs a change beyond a step, so a target this close to the
    # previous output (the steady state) is never ramped.
    if (
        abs(target.linear_x - previous.linear_x) <= linear_step
        and abs(target.linear_y - previous.linear_y) <= linear_step
        and abs(target.linear_z - previous.linear_z) <= linear_step
        and abs(target.angular_x - previous.angular_x) <= angular_step
        and abs(target.angular_y - previous.angular_y) <= angular_step
        and abs(target.angular_z - previous.angular_z) <= angular_step
    ):
        return target, outcomes
    values = list(target.as_tuple())
    before = previous.as_tuple()
    ramped_linear = ramped_angular = False
    for index in range(6):
        step = linear_step if index < 3 else angular_step
        want, had = values[index], before[index]
        if abs(want) <= abs(had) and want * had >= 0.0:
            continue
        # Moving from `had` toward `want`: the part beyond zero (or beyond |had|) is growth.
        start = had if want * had > 0.0 else 0.0
        if abs(want - start) > step:
            values[index] = start + math.copysign(step, want - start)
            if index < 3:
                ramped_linear = True
            else:
                ramped_angular = True
    if ramped_linear:
        outcomes.append(_ramp_outcome("motion.limit.accel_linear", limits.max_accel_linear, "m/s^2", dt))
    if ramped_angular:
        outcomes.append(_ramp_outcome("motion.limit.accel_angular", limits.max_accel_angular, "rad/s^2", dt))
    return Twist.from_tuple((values[0], values[1], values[2], values[3], values[4], values[5])), outcomes


def _ramp_outcome(rule_id: str, limit: float, unit: str, dt: float) -> Outcome:
    return Outcome(
        reason=make_reason(
            rule_id,
            Verdict.MODIFY,
            f"Speed increase ramped at {limit:.4g} {unit}.",
            evidence=(Evidence("time step", dt, "s", source="output"),),
            consequence="A step change of speed could tip the robot or make the wheels slip.",
            remedy="Ramp the command up gradually; it will be forwarded unchanged.",
        ),
        scale=1.0,
    )
