"""Scenes: walls, furniture, doorways and scripted people, loaded from `config/scenes/*.yaml`.

Lengths are in metres, angles in radians, speeds in m/s, times in simulated seconds. The
world frame is the scene's `map` frame: x forward from the robot's usual start, z up.
A doorway is a gap between two walls, so scenes only describe walls.
"""

from __future__ import annotations

import itertools
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from nc_safety.sim.errors import SimError


def find_config_dir() -> Path:
    """Return the shipped `config` folder: the source tree's when present, else the installed one."""
    source_tree = Path(__file__).resolve().parents[2] / "config"
    if (source_tree / "scenes").is_dir():
        return source_tree
    return Path(sys.prefix) / "share" / "nc_safety" / "config"


CONFIG_DIR = find_config_dir()
SCENE_DIR = CONFIG_DIR / "scenes"
PATH_MODES = ("once", "loop", "pingpong")


@dataclass(frozen=True, slots=True)
class Box:
    """A box obstacle (wall segment or furniture) standing on the floor."""

    name: str
    x: float
    y: float
    length: float
    """Full extent along the box's own x axis, in m."""
    width: float
    """Full extent along the box's own y axis, in m."""
    yaw: float
    height: float
    kind: str
    """`wall` or `furniture`: plots and reports group obstacles by it."""


@dataclass(frozen=True, slots=True)
class Cylinder:
    """A round obstacle (bin, table leg, pillar) standing on the floor."""

    name: str
    x: float
    y: float
    radius: float
    height: float
    kind: str = "furniture"


Obstacle = Box | Cylinder


@dataclass(frozen=True, slots=True)
class Person:
    """A person modelled as an upright cylinder that walks a scripted polyline.

    The person waits at the first point until `start_time`, then walks at `speed`.
    `once` stops at the last point, `loop` returns to the first point and repeats,
    `pingpong` walks back and forth. A single point means a person who does not move.
    """

    name: str
    path: tuple[tuple[float, float], ...]
    speed: float
    mode: str
    start_time: float
    radius: float
    height: float
    yields: bool = True
    """Whether the person waits while the next step would bring them within YIELD_GAP of the
    robot's body (`nc_safety.sim.world`), as people do when a robot is in their way."""

    def pose_at(self, time_s: float) -> tuple[float, float, float]:
        """Position (x, y) and walking direction (rad) at simulated time `time_s`, for a person who never waits."""
        return self.pose_after(max(0.0, time_s - self.start_time) * self.speed)

    def pose_after(self, walked: float) -> tuple[float, float, float]:
        """Position (x, y) and walking direction (rad) after walking `walked` metres of the path."""
        points = list(self.path)
        if self.mode == "loop":
            points.append(points[0])
        if len(points) == 1 or self.speed <= 0.0:
            return points[0][0], points[0][1], 0.0
        lengths = [math.dist(a, b) for a, b in itertools.pairwise(points)]
        total = sum(lengths)
        if total <= 0.0:
            return points[0][0], points[0][1], 0.0

        forward = True
        if self.mode == "once":
            walked = min(walked, total)
        elif self.mode == "loop":
            walked = math.fmod(walked, total)
        else:
            cycle = math.fmod(walked, 2.0 * total)
            forward = cycle <= total
            walked = cycle if forward else 2.0 * total - cycle

        segments = list(itertools.pairwise(points))
        for index, ((a, b), length) in enumerate(zip(segments, lengths, strict=True)):
            if walked > length and index < len(segments) - 1:
                walked -= length
                continue
            fraction = 0.0 if length == 0.0 else min(1.0, walked / length)
            heading = (
                math.atan2(b[1] - a[1], b[0] - a[0]) if forward else math.atan2(a[1] - b[1], a[0] - b[0])
            )
            return a[0] + fraction * (b[0] - a[0]), a[1] + fraction * (b[1] - a[1]), heading
        return points[-1][0], points[-1][1], 0.0


@dataclass(frozen=True, slots=True)
class Scene:
    """Everything the simulator places in the world, plus the robot's start pose."""

    name: str
    obstacles: tuple[Obstacle, ...]
    people: tuple[Person, ...]
    start: tuple[float, float, float]
    """Robot start pose: x (m), y (m), yaw (rad)."""
    bounds: tuple[float, float, float, float]
    """Plot area: x_min, y_min, x_max, y_max in m."""


class _Reader:
    """Read typed fields from a YAML mapping and collect every problem before raising."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[str] = []

    def number(
        self,
        data: Mapping[str, Any],
        key: str,
        where: str,
        default: float | None = None,
        minimum: float | None = None,
        positive: bool = False,
    ) -> float:
        value = data.get(key, default)
        if value is None:
            self.problems.append(f"{where}.{key} is missing; add a number")
            return 0.0
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            self.problems.append(f"{where}.{key} = {value!r} is not a finite number")
            return 0.0
        if positive and value <= 0.0:
            self.problems.append(f"{where}.{key} = {value!r} must be greater than 0")
        if minimum is not None and value < minimum:
            self.problems.append(f"{where}.{key} = {value!r} must be at least {minimum}")
        return float(value)

    def point(self, value: Any, where: str) -> tuple[float, float]:
        if (
            not isinstance(value, (list, tuple))
            or len(value) != 2
            or not all(isinstance(item, (int, float)) and not isinstance(item, bool) for item in value)
            or not all(math.isfinite(item) for item in value)
        ):
            self.problems.append(f"{where} = {value!r} is not a point [x, y] in m")
            return 0.0, 0.0
        return float(value[0]), float(value[1])

    def mapping_list(self, data: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
        value = data.get(key, [])
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
            self.problems.append(f"{key} = {value!r} must be a list of mappings")
            return []
        return value


def _wall(reader: _Reader, entry: Mapping[str, Any], index: int) -> Box:
    where = f"walls[{index}]"
    start = reader.point(entry.get("from"), f"{where}.from")
    end = reader.point(entry.get("to"), f"{where}.to")
    thickness = reader.number(entry, "thickness", where, default=0.1, positive=True)
    height = reader.number(entry, "height", where, default=0.5, positive=True)
    length = math.dist(start, end)
    if length <= 0.0:
        reader.problems.append(f"{where} has length 0 (from == to = {start!r}); give two different points")
    return Box(
        name=str(entry.get("name", f"wall_{index}")),
        x=(start[0] + end[0]) / 2.0,
        y=(start[1] + end[1]) / 2.0,
        length=max(length, 1e-3),
        width=thickness,
        yaw=math.atan2(end[1] - start[1], end[0] - start[0]),
        height=height,
        kind="wall",
    )


def _furniture(reader: _Reader, entry: Mapping[str, Any], index: int) -> Obstacle:
    where = f"furniture[{index}]"
    name = str(entry.get("name", f"furniture_{index}"))
    x, y = reader.point(entry.get("center"), f"{where}.center")
    height = reader.number(entry, "height", where, default=0.75, positive=True)
    shape = entry.get("shape", "box")
    if shape == "cylinder":
        radius = reader.number(entry, "radius", where, positive=True)
        return Cylinder(name=name, x=x, y=y, radius=radius, height=height)
    if shape != "box":
        reader.problems.append(f"{where}.shape = {shape!r} is not one of 'box', 'cylinder'")
    size = entry.get("size")
    valid = (
        isinstance(size, list)
        and len(size) == 2
        and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0
            for v in size
        )
    )
    if not valid:
        reader.problems.append(f"{where}.size = {size!r} must be two positive lengths [x, y] in m")
    length, width = (float(size[0]), float(size[1])) if valid and size is not None else (1.0, 1.0)
    yaw = reader.number(entry, "yaw", where, default=0.0)
    return Box(name=name, x=x, y=y, length=length, width=width, yaw=yaw, height=height, kind="furniture")


def _person(reader: _Reader, entry: Mapping[str, Any], index: int) -> Person:
    where = f"people[{index}]"
    raw_path = entry.get("path")
    if "position" in entry:
        raw_path = [entry["position"]]
    if not isinstance(raw_path, list) or not raw_path:
        reader.problems.append(f"{where} needs `position: [x, y]` or a non-empty `path: [[x, y], ...]`")
        raw_path = []
    path = tuple(reader.point(point, f"{where}.path[{i}]") for i, point in enumerate(raw_path))
    mode = entry.get("mode", "pingpong")
    if mode not in PATH_MODES:
        reader.problems.append(f"{where}.mode = {mode!r} is not one of {', '.join(PATH_MODES)}")
    return Person(
        name=str(entry.get("name", f"person_{index}")),
        path=path or ((0.0, 0.0),),
        speed=reader.number(entry, "speed", where, default=0.0, minimum=0.0),
        mode=str(mode),
        start_time=reader.number(entry, "start_time", where, default=0.0, minimum=0.0),
        radius=reader.number(entry, "radius", where, default=0.2, positive=True),
        height=reader.number(entry, "height", where, default=1.7, positive=True),
        yields=bool(entry.get("yields", True)),
    )


def scene_from_mapping(data: Mapping[str, Any], source: str = "scene") -> Scene:
    """Build a scene from parsed YAML; raises SimError listing every bad key."""
    if not isinstance(data, Mapping):
        raise SimError(f"the document is a {type(data).__name__}, expected a mapping", source=source)
    reader = _Reader(source)
    obstacles: list[Obstacle] = [
        _wall(reader, entry, i) for i, entry in enumerate(reader.mapping_list(data, "walls"))
    ]
    obstacles += [
        _furniture(reader, entry, i) for i, entry in enumerate(reader.mapping_list(data, "furniture"))
    ]
    people = tuple(_person(reader, entry, i) for i, entry in enumerate(reader.mapping_list(data, "people")))

    robot = data.get("robot", {}) or {}
    if not isinstance(robot, Mapping):
        reader.problems.append(f"robot = {robot!r} must be a mapping with `start: [x, y, yaw]`")
        robot = {}
    start_raw = robot.get("start", [0.0, 0.0, 0.0])
    if (
        not isinstance(start_raw, list)
        or len(start_raw) != 3
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in start_raw)
    ):
        reader.problems.append(f"robot.start = {start_raw!r} is not [x, y, yaw] in m, m, rad")
        start_raw = [0.0, 0.0, 0.0]
    start = (float(start_raw[0]), float(start_raw[1]), float(start_raw[2]))

    bounds_raw = data.get("bounds")
    if bounds_raw is None:
        bounds = _bounds_of(obstacles, people, start)
    elif (
        isinstance(bounds_raw, list)
        and len(bounds_raw) == 4
        and all(isinstance(v, (int, float)) for v in bounds_raw)
        and bounds_raw[0] < bounds_raw[2]
        and bounds_raw[1] < bounds_raw[3]
    ):
        bounds = (float(bounds_raw[0]), float(bounds_raw[1]), float(bounds_raw[2]), float(bounds_raw[3]))
    else:
        reader.problems.append(f"bounds = {bounds_raw!r} is not [x_min, y_min, x_max, y_max] with min < max")
        bounds = (-1.0, -1.0, 1.0, 1.0)

    names = [obstacle.name for obstacle in obstacles] + [person.name for person in people]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        reader.problems.append(f"names must be unique; repeated: {', '.join(duplicates)}")
    if reader.problems:
        raise SimError(reader.problems, source=source)
    return Scene(
        name=str(data.get("name", "scene")),
        obstacles=tuple(obstacles),
        people=people,
        start=start,
        bounds=bounds,
    )


def _bounds_of(
    obstacles: Sequence[Obstacle], people: Sequence[Person], start: tuple[float, float, float]
) -> tuple[float, float, float, float]:
    xs = [start[0]] + [o.x for o in obstacles] + [p[0] for person in people for p in person.path]
    ys = [start[1]] + [o.y for o in obstacles] + [p[1] for person in people for p in person.path]
    return min(xs) - 1.0, min(ys) - 1.0, max(xs) + 1.0, max(ys) + 1.0


def resolve_scene_path(name_or_path: str) -> Path:
    """Find a scene by file path, or by name in the bundled `config/scenes` folder."""
    candidate = Path(name_or_path)
    if candidate.is_file():
        return candidate
    bundled = SCENE_DIR / f"{name_or_path}.yaml"
    if bundled.is_file():
        return bundled
    known = ", ".join(sorted(path.stem for path in SCENE_DIR.glob("*.yaml")))
    raise SimError(
        f"scene {name_or_path!r} not found as a file or in {SCENE_DIR} (bundled: {known})", source="scene"
    )


def load_scene(name_or_path: str) -> Scene:
    """Load and validate a scene YAML file, given by path or bundled name."""
    path = resolve_scene_path(name_or_path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise SimError(f"{path} is not valid YAML: {error}", source="scene") from error
    return scene_from_mapping(data, source=f"scene {path}")
