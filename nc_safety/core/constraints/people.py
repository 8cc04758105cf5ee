"""Speed and separation monitoring around detected people (ISO/TS 15066).

Protective separation distance for a robot speed v toward the person:

    S_p(v) = v_h * (T_r + T_s(v)) + v * T_r + v^2 / (2 a) + C + Z

with human speed v_h, reaction time T_r (reaction plus one output period), stopping time
T_s(v) = v / a at deceleration a, intrusion distance C and uncertainty Z. The largest
allowed v solves S_p(v) = d for the current distance d between footprint and person.
When even v = 0 is too fast (d < v_h * T_r + C + Z), motion toward the person stops; motion
that does not approach the person is still forwarded. This rule is never overridable.
"""

from __future__ import annotations

import math

import numpy as np

from nc_safety.core.constraints import Outcome, make_reason
from nc_safety.core.geometry import Footprint
from nc_safety.core.justification import Evidence
from nc_safety.core.motion_config import PeopleConfig, RobotConfig
from nc_safety.core.values import FloatArray, Twist
from nc_safety.core.verdict import Verdict


def allowed_speed(distance: float, config: PeopleConfig, reaction: float, decel: float) -> float:
    """Largest robot speed toward a person `distance` metres away that keeps S_p <= d."""
    constant = config.human_speed * reaction + config.intrusion_distance + config.uncertainty - distance
    if constant >= 0.0:
        return 0.0
    linear = reaction + config.human_speed / decel
    quadratic = 1.0 / (2.0 * decel)
    return (-linear + math.sqrt(linear * linear - 4.0 * quadratic * constant)) / (2.0 * quadratic)


def approach_speed(twist: Twist, direction: tuple[float, float], radius: float) -> float:
    """Upper bound on how fast any footprint point moves toward a person in `direction`."""
    toward = twist.linear_x * direction[0] + twist.linear_y * direction[1]
    return max(0.0, toward) + abs(twist.angular_z) * radius


class PeopleChecker:
    def __init__(self, robot: RobotConfig, config: PeopleConfig, output_period: float) -> None:
        self.config = config
        self.footprint = Footprint.from_size(robot.length, robot.width, robot.center_x)
        self.radius = self.footprint.circumradius
        self.reaction = robot.reaction_time + output_period
        self.decel = robot.max_decel_linear

    def outcomes(self, twist: Twist, positions: FloatArray, age: float, source: str) -> list[Outcome]:
        if positions.shape[0] == 0 or (
            twist.linear_x == 0.0 and twist.linear_y == 0.0 and twist.angular_z == 0.0
        ):
            return []
        clearance = (
            self.footprint.signed_clearance(positions[:, 0], positions[:, 1]) - self.config.person_radius
        )
        scale = 1.0
        worst: tuple[float, float, float] | None = None
        for index in np.argsort(clearance)[:8]:
            x, y = float(positions[index, 0]), float(positions[index, 1])
            norm = math.hypot(x, y)
            direction = (x / norm, y / norm) if norm > 1e-9 else (1.0, 0.0)
            toward = approach_speed(twist, direction, self.radius)
            if toward <= 0.0:
                continue
            distance = float(clearance[index])
            limit = allowed_speed(distance, self.config, self.reaction, self.decel)
            factor = min(1.0, limit / toward)
            if factor < scale:
                scale = factor
                worst = (distance, toward, limit)
        if worst is None or scale >= 1.0:
            return []
        distance, toward, limit = worst
        stopping = scale == 0.0
        message = (
            f"Person {max(distance, 0.0):.2f} m away, inside the protective separation distance: stopping."
            if stopping
            else f"Person {distance:.2f} m away: approach speed limited from {toward:.2f} to {limit:.2f} m/s."
        )
        reason = make_reason(
            "motion.people.separation",
            Verdict.REFUSE if stopping else Verdict.MODIFY,
            message,
            evidence=(
                Evidence("distance to person", distance, "m", source=source, age_s=age),
                Evidence("approach speed", toward, "m/s", limit=limit, source="cmd_vel_in"),
                Evidence("assumed human speed", self.config.human_speed, "m/s", source="people.human_speed"),
            ),
            consequence="The robot could not stop before a person walking toward it at the assumed speed.",
            remedy=(
                "Move away from the person or wait until they leave; motion away is forwarded."
                if stopping
                else f"Approach the person at most at {limit:.2f} m/s."
            ),
            remedy_values={"max_approach_speed": limit},
        )
        return [Outcome(reason, scale)]
