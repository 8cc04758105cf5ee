"""Per-run metrics, recorded from the world after every control step.

Contacts come from MuJoCo's contact list, clearances from `mj_geomDistance` between the
robot's body and every obstacle and person. A stop is an interval of at least
`MIN_STOP_S` in which the commander asked for motion but the base stood still. A stop was
needed when the requested motion, continued for `STOP_HORIZON_S`, would have brought the
robot below the obstacle margin. It was also needed within the protective separation
distance S_p(v) of a person at the requested speed, and while a fail-safe event (laser
silent, safety node killed) was active. Every other stop is a false stop.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from nc_safety.sim.scenario import Requirements
from nc_safety.sim.world import World

MIN_STOP_S = 0.3
STOP_HORIZON_S = 1.0
MOVING_LINEAR = 0.01
"""m/s; below this (and MOVING_ANGULAR) the base counts as standing still."""
MOVING_ANGULAR = 0.05
"""rad/s."""
CONTACT_MERGE_S = 0.5
"""Touches of the same geom less than this apart count as one contact episode (pressing
against a wall makes MuJoCo's contact flicker between steps)."""
SAMPLE_PERIOD_S = 0.1
"""Trajectory samples kept for plots."""


@dataclass(slots=True)
class Stop:
    start: float
    end: float
    x: float
    y: float
    needed: bool
    cause: str
    """`obstacle`, `person`, `fail-safe` or `none` (a false stop)."""

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(slots=True)
class RunMetrics:
    """Results of one run; `to_json` gives the record the report reads."""

    scenario: str
    safety: bool
    seed: int
    duration: float
    contact_count: int = 0
    """Contact episodes; see CONTACT_MERGE_S."""
    contact_time: float = 0.0
    contacted: list[str] = field(default_factory=list)
    contact_points: list[tuple[float, float]] = field(default_factory=list)
    min_obstacle_clearance: float = math.inf
    nearest_obstacle: str = ""
    min_person_clearance: float = math.inf
    nearest_person: str = ""
    obstacle_margin: float = 0.0
    person_separation: float = 0.0
    separation_violation_time: float = 0.0
    """s spent moving toward a person closer than the protective separation distance."""
    time_to_goal: float | None = None
    stops: list[Stop] = field(default_factory=list)
    refusals: int = 0
    refusal_rules: dict[str, int] = field(default_factory=dict)
    override_windows: list[list[float | None]] = field(default_factory=list)
    """[accepted, ended] sim times of each override the node accepted (ended None while active)."""
    path: list[tuple[float, float, float, float]] = field(default_factory=list)
    """(t, x, y, yaw) every SAMPLE_PERIOD_S."""
    people_tracks: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    wall_time: float = 0.0
    """Real seconds the simulation loop ran; duration / wall_time is the achieved real-time factor."""

    def mean_speed(self, start: float, end: float) -> float:
        """Mean speed (m/s) over the recorded path between sim times `start` and `end`."""
        samples = [sample for sample in self.path if start <= sample[0] <= end]
        if len(samples) < 2 or samples[-1][0] <= samples[0][0]:
            return 0.0
        travelled = sum(math.dist(a[1:3], b[1:3]) for a, b in itertools.pairwise(samples))
        return travelled / (samples[-1][0] - samples[0][0])

    @property
    def false_stops(self) -> list[Stop]:
        return [stop for stop in self.stops if not stop.needed]

    @property
    def false_stop_time(self) -> float:
        return sum(stop.duration for stop in self.false_stops)

    def to_json(self) -> dict[str, Any]:
        record = asdict(self)
        record["false_stop_count"] = len(self.false_stops)
        record["false_stop_time"] = self.false_stop_time
        for key in ("min_obstacle_clearance", "min_person_clearance"):
            if not math.isfinite(record[key]):
                record[key] = None
        return record

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> RunMetrics:
        values = {key: record[key] for key in cls.__dataclass_fields__ if key in record}
        values["stops"] = [Stop(**stop) for stop in record.get("stops", [])]
        for key in ("min_obstacle_clearance", "min_person_clearance"):
            if values.get(key) is None:
                values[key] = math.inf
        values["contact_points"] = [tuple(point) for point in values.get("contact_points", [])]
        values["path"] = [tuple(sample) for sample in values.get("path", [])]
        return cls(**values)


class Recorder:
    """Collect metrics from a world; `on_tick` is called after every control step."""

    def __init__(
        self,
        metrics: RunMetrics,
        requirements: Requirements,
        goal: tuple[float, float] | None,
        goal_tolerance: float,
    ) -> None:
        self.metrics = metrics
        self.requirements = requirements
        self.goal = goal
        self.goal_tolerance = goal_tolerance
        self.requested = (0.0, 0.0)
        """Latest command the commander sent, (m/s, rad/s)."""
        self.fail_safe_active = False
        """Set by the runner while a fail-safe event (silent laser, killed node) is in effect."""
        self._last_touch: dict[str, float] = {}
        self._last_time: float | None = None
        self._next_sample = 0.0
        self._stop_start: float | None = None
        self._stop_cause = "none"
        self._stop_position = (0.0, 0.0)

    def on_tick(self, world: World) -> None:
        metrics = self.metrics
        now = world.time
        dt = 0.0 if self._last_time is None else now - self._last_time
        self._last_time = now
        x, y, yaw = world.pose()

        touching = {contact.other for contact in world.contacts()}
        for name in sorted(touching):
            if now - self._last_touch.get(name, -math.inf) > CONTACT_MERGE_S:
                metrics.contact_count += 1
                metrics.contacted.append(name)
                metrics.contact_points.append((x, y))
            self._last_touch[name] = now
        if touching:
            metrics.contact_time += dt

        clearance = world.clearance()
        if clearance.obstacle < metrics.min_obstacle_clearance:
            metrics.min_obstacle_clearance, metrics.nearest_obstacle = (
                clearance.obstacle,
                clearance.obstacle_name,
            )
        if clearance.person < metrics.min_person_clearance:
            metrics.min_person_clearance, metrics.nearest_person = clearance.person, clearance.person_name
        if clearance.person < self.requirements.person_separation and self._approaching_person(world):
            metrics.separation_violation_time += dt

        if (
            self.goal is not None
            and metrics.time_to_goal is None
            and math.dist((x, y), self.goal) <= self.goal_tolerance
        ):
            metrics.time_to_goal = now

        self._track_stop(world, now, x, y)
        if now >= self._next_sample - 1e-9:
            self._next_sample += SAMPLE_PERIOD_S
            metrics.path.append((round(now, 3), x, y, yaw))
            for name, px, py, _heading in world.people_poses():
                metrics.people_tracks.setdefault(name, []).append((px, py))

    def _approaching_person(self, world: World) -> bool:
        x, y, yaw = world.pose()
        linear, _angular = world.velocity()
        vx, vy = linear * math.cos(yaw), linear * math.sin(yaw)
        for _name, px, py, _ in world.people_poses():
            distance = math.hypot(px - x, py - y)
            if distance < 1e-6:
                return True
            toward = (vx * (px - x) + vy * (py - y)) / distance
            if toward > MOVING_LINEAR:
                return True
        return False

    def _track_stop(self, world: World, now: float, x: float, y: float) -> None:
        linear, angular = world.velocity()
        requested_linear, requested_angular = self.requested
        asked_to_move = abs(requested_linear) > MOVING_LINEAR or abs(requested_angular) > MOVING_ANGULAR
        standing = abs(linear) < MOVING_LINEAR and abs(angular) < MOVING_ANGULAR
        if asked_to_move and standing:
            if self._stop_start is None:
                self._stop_start = now
                self._stop_position = (x, y)
                self._stop_cause = self._stop_cause_now(world)
            elif self._stop_cause == "none":
                # A stop becomes needed when the situation changes during it (a person steps in).
                self._stop_cause = self._stop_cause_now(world)
            return
        self._close_stop(now)

    def _stop_cause_now(self, world: World) -> str:
        if self.fail_safe_active:
            return "fail-safe"
        linear, angular = self.requested
        projected = world.projected_clearance(linear, angular, STOP_HORIZON_S)
        if projected.obstacle < self.requirements.obstacle_margin:
            return "obstacle"
        if projected.person < self.requirements.separation_at(abs(linear)):
            return "person"
        return "none"

    def _close_stop(self, now: float) -> None:
        if self._stop_start is not None and now - self._stop_start >= MIN_STOP_S:
            cause = self._stop_cause
            self.metrics.stops.append(
                Stop(self._stop_start, now, *self._stop_position, cause != "none", cause)
            )
        self._stop_start = None

    def finish(self, now: float, refusals: list[dict[str, Any]]) -> RunMetrics:
        self._close_stop(now)
        self.metrics.refusals = len(refusals)
        for record in refusals:
            for reason in record.get("reasons", []) or []:
                if isinstance(reason, dict) and "rule_id" in reason:
                    rule = str(reason["rule_id"])
                    self.metrics.refusal_rules[rule] = self.metrics.refusal_rules.get(rule, 0) + 1
        return self.metrics
