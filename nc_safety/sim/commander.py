"""Commanders: the velocity a client of the safety layer requests, as a function of time and pose.

Adversarial commanders ignore obstacles and people (`constant`, `pursue`, `script`); the
waypoint follower is benign but has no obstacle avoidance of its own. Each returns the
requested body velocity (m/s, rad/s); the scenario runner publishes it on `cmd_vel_in`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from nc_safety.sim.errors import SimError

Pose2D = tuple[float, float, float]


class Commander(Protocol):
    def command(self, time_s: float, pose: Pose2D) -> tuple[float, float]:
        """Requested (linear m/s, angular rad/s) at simulated time `time_s` and world pose `pose`."""
        ...

    def done(self) -> bool:
        """True once the commander reached its goal and only sends zero."""
        ...


def _wrap(angle: float) -> float:
    return math.atan2(math.sin(angle), math.cos(angle))


@dataclass(slots=True)
class ConstantCommander:
    """Sends the same velocity for the whole run: the adversarial full-speed wall run."""

    linear: float
    angular: float = 0.0

    def command(self, time_s: float, pose: Pose2D) -> tuple[float, float]:
        return self.linear, self.angular

    def done(self) -> bool:
        return False


@dataclass(slots=True)
class ScriptCommander:
    """Plays timed segments of constant velocity, then sends zero."""

    segments: tuple[tuple[float, float, float], ...]
    """(duration s, linear m/s, angular rad/s) in order, starting at time 0."""

    def command(self, time_s: float, pose: Pose2D) -> tuple[float, float]:
        elapsed = 0.0
        for duration, linear, angular in self.segments:
            elapsed += duration
            if time_s < elapsed:
                return linear, angular
        return 0.0, 0.0

    def done(self) -> bool:
        return False


def _steer(
    pose: Pose2D, target: tuple[float, float], max_linear: float, max_angular: float, turn_in_place: float
) -> tuple[float, float]:
    x, y, yaw = pose
    error = _wrap(math.atan2(target[1] - y, target[0] - x) - yaw)
    angular = max(-max_angular, min(max_angular, 2.5 * error))
    linear = 0.0 if abs(error) > turn_in_place else max_linear * math.cos(error)
    return linear, angular


@dataclass(slots=True)
class PursueCommander:
    """Drives at full speed toward a target point, switching targets at given times.

    Adversarial: it never slows down near the target, so it drives into whatever is there.
    """

    targets: tuple[tuple[float, tuple[float, float]], ...]
    """(until s, (x, y) m) in order; the last target is kept after its time."""
    max_linear: float = 0.22
    max_angular: float = 2.84

    def command(self, time_s: float, pose: Pose2D) -> tuple[float, float]:
        target = self.targets[-1][1]
        for until, point in self.targets:
            if time_s < until:
                target = point
                break
        return _steer(pose, target, self.max_linear, self.max_angular, turn_in_place=0.6)

    def done(self) -> bool:
        return False


@dataclass(slots=True)
class WaypointCommander:
    """Follows waypoints in order and stops at the last one; benign, but blind to obstacles."""

    waypoints: tuple[tuple[float, float], ...]
    max_linear: float = 0.2
    max_angular: float = 1.5
    tolerance: float = 0.15
    """A waypoint counts as reached within this distance (m)."""
    _index: int = 0

    def command(self, time_s: float, pose: Pose2D) -> tuple[float, float]:
        while (
            self._index < len(self.waypoints)
            and math.dist(pose[:2], self.waypoints[self._index]) < self.tolerance
        ):
            self._index += 1
        if self._index >= len(self.waypoints):
            return 0.0, 0.0
        return _steer(pose, self.waypoints[self._index], self.max_linear, self.max_angular, turn_in_place=0.8)

    def done(self) -> bool:
        return self._index >= len(self.waypoints)


def _points(value: Any, where: str, problems: list[str]) -> tuple[tuple[float, float], ...]:
    if not isinstance(value, Sequence) or isinstance(value, str) or not value:
        problems.append(f"{where} = {value!r} must be a non-empty list of [x, y] points in m")
        return ()
    points = []
    for index, point in enumerate(value):
        if (
            not isinstance(point, Sequence)
            or len(point) != 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in point)
        ):
            problems.append(f"{where}[{index}] = {point!r} is not [x, y] in m")
            continue
        points.append((float(point[0]), float(point[1])))
    return tuple(points)


def make_commander(spec: Mapping[str, Any], source: str = "commander") -> Commander:
    """Build a commander from its scenario entry; raises SimError naming every bad key."""
    problems: list[str] = []
    kind = spec.get("kind")
    commander: Commander | None = None
    if kind == "constant":
        commander = ConstantCommander(float(spec.get("linear", 0.22)), float(spec.get("angular", 0.0)))
    elif kind == "script":
        segments = []
        for index, segment in enumerate(spec.get("segments") or []):
            if not isinstance(segment, Mapping) or "duration" not in segment:
                problems.append(f"segments[{index}] = {segment!r} needs duration, linear and angular")
                continue
            segments.append(
                (
                    float(segment["duration"]),
                    float(segment.get("linear", 0.0)),
                    float(segment.get("angular", 0.0)),
                )
            )
        if not segments and not problems:
            problems.append("segments is empty; add at least one {duration, linear, angular} entry")
        commander = ScriptCommander(tuple(segments))
    elif kind == "pursue":
        targets = []
        for index, entry in enumerate(spec.get("targets") or []):
            if not isinstance(entry, Mapping) or "point" not in entry:
                problems.append(
                    f"targets[{index}] = {entry!r} needs `point: [x, y]` and optionally `until: s`"
                )
                continue
            point = _points([entry["point"]], f"targets[{index}].point", problems)
            if point:
                targets.append((float(entry.get("until", math.inf)), point[0]))
        if not targets and not problems:
            problems.append("targets is empty; add at least one {point: [x, y]} entry")
        commander = PursueCommander(
            tuple(targets), float(spec.get("max_linear", 0.22)), float(spec.get("max_angular", 2.84))
        )
    elif kind == "waypoints":
        waypoints = _points(spec.get("waypoints"), "waypoints", problems)
        commander = WaypointCommander(
            waypoints,
            float(spec.get("max_linear", 0.2)),
            float(spec.get("max_angular", 1.5)),
            float(spec.get("tolerance", 0.15)),
        )
    else:
        problems.append(f"kind = {kind!r} is not one of constant, script, pursue, waypoints")
    if problems or commander is None:
        raise SimError(problems, source=source)
    return commander
