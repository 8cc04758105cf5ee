"""Scenarios: a scene, a commander, timed events and the safety requirements to check.

Loaded from `config/scenarios/*.yaml`. Times are simulated seconds from the start of the
run. The requirements (obstacle margin, protective separation distance) come from the
safety node's own configuration, so the simulator checks what the node promises.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from nc_safety.core.errors import ConfigError
from nc_safety.core.motion_config import SECTION_PREFIXES, MotionConfig, load_motion_config
from nc_safety.sim.commander import make_commander
from nc_safety.sim.errors import SimError
from nc_safety.sim.scene import CONFIG_DIR, Scene, load_scene
from nc_safety.sim.world import LaserSpec

SCENARIO_DIR = CONFIG_DIR / "scenarios"
NODE_PARAMS_FILES = (CONFIG_DIR / "nc_safety.yaml", CONFIG_DIR / "tb3_burger.yaml")
"""Parameter files the safety node is started with, when they exist, in this order (the
robot's file last, so its values win)."""
EVENT_ACTIONS = ("stop_scan", "resume_scan", "kill_safety_node", "override")
NEEDS = ("estop", "overrides")


@dataclass(frozen=True, slots=True)
class Event:
    """Something the runner does at simulated time `at`: `stop_scan`, `kill_safety_node`, ..."""

    at: float
    action: str
    args: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Requirements:
    """Margins the safety layer must keep, taken from the node's motion configuration."""

    obstacle_margin: float
    """m; the footprint's clearance to obstacles may never drop below it."""
    person_separation: float
    """m; protective separation distance at zero robot speed (ISO/TS 15066 with v = 0):
    the robot must not move toward a person closer than this."""
    people_enabled: bool
    human_speed: float = 1.6
    """m/s, assumed speed of a person walking toward the robot."""
    reaction_time: float = 0.15
    """s, the node's reaction time plus one output period."""
    deceleration: float = 1.0
    """m/s², braking the node counts on."""

    def separation_at(self, speed: float) -> float:
        """Protective separation distance (m) for a robot approaching at `speed` m/s.

        S_p(v) = v_h (T_r + v / a) + v T_r + v^2 / (2 a) + C + Z, as the node computes it.
        """
        speed = max(0.0, speed)
        stopping_time = speed / self.deceleration
        return (
            self.person_separation
            + self.human_speed * stopping_time
            + speed * self.reaction_time
            + speed * speed / (2.0 * self.deceleration)
        )


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    title: str
    scene: Scene
    duration: float
    seed: int
    real_time_factor: float
    commander: Mapping[str, Any]
    start_delay: float
    goal: tuple[float, float] | None
    goal_tolerance: float
    events: tuple[Event, ...]
    laser: LaserSpec
    command_timeout: float
    safety_params: Mapping[str, Any]
    requires: tuple[str, ...]
    path: Path

    def node_parameters(self) -> dict[str, Any]:
        """Flat parameters of the safety node for this scenario: files first, then overrides."""
        flat: dict[str, Any] = {}
        for params_file in node_params_files():
            flat.update(read_ros_params(params_file))
        flat.update(self.safety_params)
        return flat

    def requirements(self) -> Requirements:
        """Margins from the node's motion configuration as this scenario starts it."""
        flat = self.node_parameters()
        sources = tuple(flat.get("scan.sources", ("scan",)))
        motion_keys = {
            key: value
            for key, value in flat.items()
            if key != "scan.sources" and key.partition(".")[0] in (*SECTION_PREFIXES, "scan")
        }
        try:
            config: MotionConfig = load_motion_config(motion_keys, scan_sources=sources)
        except ConfigError as error:
            raise SimError(
                f"the safety node's parameters for scenario {self.name!r} are invalid: {error}",
                source="scenario",
            ) from error
        people = config.people
        reaction = config.robot.reaction_time + config.output_period
        separation = people.human_speed * reaction + people.intrusion_distance + people.uncertainty
        return Requirements(
            config.obstacles.margin,
            separation,
            people.enabled,
            people.human_speed,
            reaction,
            config.robot.max_decel_linear,
        )


def node_params_files() -> list[Path]:
    return [path for path in NODE_PARAMS_FILES if path.is_file()]


def read_ros_params(path: Path) -> dict[str, Any]:
    """Flatten a ROS 2 parameter file (`node: ros__parameters: ...`) into dotted names."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    flat: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping):
            for key, item in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), item)
        else:
            flat[prefix] = value

    for section in data.values() if isinstance(data, Mapping) else ():
        if isinstance(section, Mapping) and isinstance(section.get("ros__parameters"), Mapping):
            walk("", section["ros__parameters"])
    return flat


def resolve_scenario_path(name_or_path: str) -> Path:
    candidate = Path(name_or_path)
    if candidate.is_file():
        return candidate
    bundled = SCENARIO_DIR / f"{name_or_path}.yaml"
    if bundled.is_file():
        return bundled
    raise SimError(
        f"scenario {name_or_path!r} not found as a file or in {SCENARIO_DIR} "
        f"(bundled: {', '.join(bundled_scenarios())})",
        source="scenario",
    )


def bundled_scenarios() -> list[str]:
    return sorted(path.stem for path in SCENARIO_DIR.glob("*.yaml"))


def _number(
    data: Mapping[str, Any], key: str, default: float, problems: list[str], minimum: float = 0.0
) -> float:
    value = data.get(key, default)
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < minimum
    ):
        problems.append(f"{key} = {value!r} must be a finite number >= {minimum}")
        return default
    return float(value)


def load_scenario(name_or_path: str) -> Scenario:
    """Load and validate a scenario YAML file, given by path or bundled name."""
    path = resolve_scenario_path(name_or_path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise SimError(f"{path} is not valid YAML: {error}", source="scenario") from error
    if not isinstance(data, Mapping):
        raise SimError(f"{path} must contain a mapping", source="scenario")
    problems: list[str] = []
    scene = load_scene(str(data.get("scene", "")))
    start = data.get("start")
    if start is not None:
        if (
            isinstance(start, list)
            and len(start) == 3
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in start)
        ):
            scene = replace(scene, start=(float(start[0]), float(start[1]), float(start[2])))
        else:
            problems.append(f"start = {start!r} is not [x, y, yaw] in m, m, rad")
    duration = _number(data, "duration", 20.0, problems, minimum=0.1)
    seed = data.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        problems.append(f"seed = {seed!r} must be an integer >= 0")
        seed = 0
    commander = data.get("commander")
    if not isinstance(commander, Mapping):
        problems.append(f"commander = {commander!r} must be a mapping with a `kind`")
        commander = {"kind": "constant", "linear": 0.0}
    else:
        try:
            make_commander(commander, source=f"scenario {path} commander")
        except SimError as error:
            problems.extend(f"commander.{problem}" for problem in error.problems)

    events = []
    for index, entry in enumerate(data.get("events") or []):
        if not isinstance(entry, Mapping) or entry.get("action") not in EVENT_ACTIONS:
            problems.append(
                f"events[{index}] = {entry!r} needs `at: s` and `action:` one of {', '.join(EVENT_ACTIONS)}"
            )
            continue
        at = _number(entry, "at", 0.0, problems)
        events.append(
            Event(at, str(entry["action"]), {k: v for k, v in entry.items() if k not in ("at", "action")})
        )

    goal_entry = data.get("goal")
    goal = None
    goal_tolerance = 0.2
    if goal_entry is not None:
        point = goal_entry.get("point") if isinstance(goal_entry, Mapping) else None
        if not (isinstance(point, list) and len(point) == 2):
            problems.append(f"goal = {goal_entry!r} needs `point: [x, y]` and optionally `tolerance: m`")
        else:
            goal = (float(point[0]), float(point[1]))
            goal_tolerance = _number(goal_entry, "tolerance", 0.2, problems)

    laser_entry = data.get("laser") or {}
    try:
        laser = LaserSpec(**laser_entry)
        laser.validate()
    except TypeError as error:
        problems.append(f"laser = {laser_entry!r}: {error}")
        laser = LaserSpec()
    except SimError as error:
        problems.extend(error.problems)
        laser = LaserSpec()

    requires = tuple(data.get("requires") or ())
    unknown = [need for need in requires if need not in NEEDS]
    if unknown:
        problems.append(
            f"requires = {list(requires)!r} names unknown parts {unknown}; known: {', '.join(NEEDS)}"
        )
    safety_params = data.get("safety_params") or {}
    if not isinstance(safety_params, Mapping):
        problems.append(f"safety_params = {safety_params!r} must map parameter names to values")
        safety_params = {}
    if problems:
        raise SimError(problems, source=f"scenario {path}")
    return Scenario(
        name=str(data.get("name", path.stem)),
        title=str(data.get("title", path.stem)),
        scene=scene,
        duration=duration,
        seed=seed,
        real_time_factor=_number(data, "real_time_factor", 4.0, problems),
        commander=commander,
        start_delay=_number(commander, "start_delay", 1.0, problems),
        goal=goal,
        goal_tolerance=goal_tolerance,
        events=tuple(sorted(events, key=lambda event: event.at)),
        laser=laser,
        command_timeout=_number(data, "command_timeout", 0.0, problems),
        safety_params=dict(safety_params),
        requires=requires,
        path=path,
    )
