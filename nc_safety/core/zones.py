"""Restricted zones for motion: places the robot must not enter at given hours or for given roles.

A zone is a simple polygon in the odometry frame (metres) with a name, the local hours in
which it is active and the requester roles allowed inside. `check_zones` takes the
robot's current pose and its predicted stopping pose for a velocity command and returns
a normative `refuse` Reason (rule id `motion.zone.<name>`) when the command would carry
the robot into an active zone its requester may not enter, or deeper into one it is
already inside. Moving out of a zone is always allowed, so a zone that becomes active
around the robot never traps it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from nc_safety.core.errors import ConfigError
from nc_safety.core.justification import Evidence, Reason
from nc_safety.core.values import Pose2D
from nc_safety.core.verdict import ReasonKind, RefutableBy, Severity, Verdict

MINUTES_PER_DAY = 24 * 60
_ZONE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_MAX_VERTICES = 256
_MAX_COORDINATE_M = 1.0e5
# Moving less than this much deeper into a zone counts as standing still, in metres.
_DEPTH_TOLERANCE_M = 1.0e-3


@dataclass(frozen=True, slots=True)
class Zone:
    name: str
    polygon: tuple[tuple[float, float], ...]
    """Vertices in metres in the odometry frame, in order, not closed (first != last)."""
    active_hours: tuple[tuple[int, int], ...] = ()
    """Spans of minutes after local midnight, [start, end), which may wrap midnight; empty means always."""
    allowed_roles: frozenset[str] = frozenset()
    refutable_by: RefutableBy = RefutableBy.SUPERVISOR
    severity: Severity = Severity.MEDIUM
    description: str = ""

    @property
    def rule_id(self) -> str:
        return f"motion.zone.{self.name}"

    def active_at(self, local_minutes: int) -> bool:
        if not self.active_hours:
            return True
        return any(_in_span(local_minutes, span) for span in self.active_hours)


def check_zones(
    zones: Sequence[Zone],
    pose: Pose2D,
    stopping_pose: Pose2D,
    local_minutes: int,
    role: str,
    robot_radius_m: float = 0.0,
) -> Reason | None:
    """Return a refusal when moving from `pose` to `stopping_pose` enters a forbidden zone, else None.

    `local_minutes` is the local time of day in minutes after midnight. The robot is a disc
    of `robot_radius_m` metres. Of several zones, the one entered most deeply decides.
    Raises ValueError for a non-finite pose or radius, or a time outside 0..1439.
    """
    for value in (pose.x, pose.y, stopping_pose.x, stopping_pose.y, robot_radius_m):
        if not math.isfinite(value):
            raise ValueError(f"poses and robot_radius_m must be finite, got {value!r}")
    if robot_radius_m < 0.0:
        raise ValueError(f"robot_radius_m must be >= 0, got {robot_radius_m!r}")
    if not 0 <= local_minutes < MINUTES_PER_DAY:
        raise ValueError(f"local_minutes must be in 0..1439, got {local_minutes!r}")

    worst: tuple[float, Zone, float] | None = None
    for zone in zones:
        if role in zone.allowed_roles or not zone.active_at(local_minutes):
            continue
        depth_now = _depth(zone.polygon, pose.x, pose.y) + robot_radius_m
        depth_stop = _depth(zone.polygon, stopping_pose.x, stopping_pose.y) + robot_radius_m
        crosses = depth_now <= 0.0 and _segment_crosses(zone.polygon, pose, stopping_pose)
        entering = depth_stop > 0.0 and depth_stop > depth_now + _DEPTH_TOLERANCE_M
        if not (entering or crosses):
            continue
        depth = max(depth_stop, 0.0)
        if worst is None or depth > worst[0]:
            worst = (depth, zone, depth_now)
    if worst is None:
        return None
    depth, zone, depth_now = worst
    return _zone_reason(zone, pose, stopping_pose, local_minutes, role, depth, inside=depth_now > 0.0)


def _zone_reason(
    zone: Zone, pose: Pose2D, stop: Pose2D, local_minutes: int, role: str, depth: float, inside: bool
) -> Reason:
    hours = ", ".join(f"{_clock(start)}-{_clock(end)}" for start, end in zone.active_hours) or "all day"
    allowed = sorted(zone.allowed_roles)
    where = "deeper into" if inside else "into"
    message = (
        f"The command would carry the robot {where} restricted zone '{zone.name}' "
        f"(stopping at x={stop.x:.2f} m, y={stop.y:.2f} m); role {role!r} may not enter it at {_clock(local_minutes)}."
    )
    who = f" or send the command as {' or '.join(allowed)}" if allowed else ""
    next_free = _next_inactive(zone, local_minutes)
    when = f" until {_clock(next_free)}" if next_free is not None else ""
    remedy = f"Steer away from zone '{zone.name}'{when}{who}."
    if inside:
        remedy = f"Drive out of zone '{zone.name}' by the shortest way{who}."
    return Reason(
        rule_id=zone.rule_id,
        kind=ReasonKind.NORMATIVE,
        verdict=Verdict.REFUSE,
        severity=zone.severity,
        message=message,
        evidence=(
            Evidence("depth into zone at stop", round(depth, 3), "m", 0.0, "predicted stopping pose"),
            Evidence("pose", f"x={pose.x:.2f} y={pose.y:.2f} yaw={pose.yaw:.2f}", "m, m, rad", source="odom"),
            Evidence("local time", _clock(local_minutes), limit=hours, source="node clock"),
        ),
        consequence=f"The robot enters '{zone.name}'{': ' + zone.description if zone.description else ''}.",
        refutable_by=zone.refutable_by,
        remedy=remedy,
        facts={"zone": zone.name, "role": role, "active_hours": hours, "allowed_roles": list(allowed)},
    )


# Geometry ----------------------------------------------------------------------------------


def _depth(polygon: Sequence[tuple[float, float]], x: float, y: float) -> float:
    """Signed distance into the polygon in metres: positive inside, negative outside."""
    distance = min(_point_segment_distance(x, y, a, b) for a, b in _edges(polygon))
    return distance if _contains(polygon, x, y) else -distance


def _contains(polygon: Sequence[tuple[float, float]], x: float, y: float) -> bool:
    inside = False
    for (x1, y1), (x2, y2) in _edges(polygon):
        if (y1 > y) != (y2 > y):
            x_cross = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
            if x < x_cross:
                inside = not inside
    return inside


def _edges(polygon: Sequence[tuple[float, float]]) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    return [(polygon[i], polygon[(i + 1) % len(polygon)]) for i in range(len(polygon))]


def _point_segment_distance(x: float, y: float, a: tuple[float, float], b: tuple[float, float]) -> float:
    dx, dy = b[0] - a[0], b[1] - a[1]
    length_sq = dx * dx + dy * dy
    t = 0.0 if length_sq == 0.0 else max(0.0, min(1.0, ((x - a[0]) * dx + (y - a[1]) * dy) / length_sq))
    return math.hypot(x - (a[0] + t * dx), y - (a[1] + t * dy))


def _segment_crosses(polygon: Sequence[tuple[float, float]], start: Pose2D, end: Pose2D) -> bool:
    """Whether the straight path from start to end passes through an edge of the polygon."""
    p, q = (start.x, start.y), (end.x, end.y)
    return any(_segments_intersect(p, q, a, b) for a, b in _edges(polygon))


def _orientation(a: tuple[float, float], b: tuple[float, float], c: tuple[float, float]) -> float:
    return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])


def _segments_intersect(
    p: tuple[float, float], q: tuple[float, float], a: tuple[float, float], b: tuple[float, float]
) -> bool:
    d1, d2 = _orientation(a, b, p), _orientation(a, b, q)
    d3, d4 = _orientation(p, q, a), _orientation(p, q, b)
    return (d1 > 0) != (d2 > 0) and (d3 > 0) != (d4 > 0) and d1 != 0 and d2 != 0


def _in_span(minute: int, span: tuple[int, int]) -> bool:
    start, end = span
    if start < end:
        return start <= minute < end
    return minute >= start or minute < end


def _next_inactive(zone: Zone, minute: int) -> int | None:
    """The next minute of the day at which the zone is inactive, or None when it never is."""
    if not zone.active_hours:
        return None
    for offset in range(1, MINUTES_PER_DAY + 1):
        candidate = (minute + offset) % MINUTES_PER_DAY
        if not zone.active_at(candidate):
            return candidate
    return None


def _clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


# Loading -----------------------------------------------------------------------------------


def load_zones(path: Path | str) -> tuple[Zone, ...]:
    """Load zones from YAML (`zones:` list); raises ConfigError listing every problem."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError([f"cannot read {path}: {error}"], source="zones file") from None
    return zones_from_mapping(data, str(path))


def zones_from_mapping(data: object, source: str = "zones") -> tuple[Zone, ...]:
    """Build zones from decoded YAML; raises ConfigError listing every problem."""
    if not isinstance(data, dict) or not isinstance(data.get("zones"), list):
        raise ConfigError([f"{source}: expected a mapping with a `zones` list"], source="zones file")
    problems: list[str] = []
    zones: list[Zone] = []
    names: set[str] = set()
    for position, entry in enumerate(data["zones"]):
        zone = _zone(entry, f"{source}: zones[{position}]", problems)
        if zone is None:
            continue
        if zone.name in names:
            problems.append(f"{source}: zone name {zone.name!r} is used twice")
        names.add(zone.name)
        zones.append(zone)
    if problems:
        raise ConfigError(problems, source="zones file")
    return tuple(zones)


_ZONE_KEYS = frozenset(
    {"name", "polygon", "active_hours", "allowed_roles", "refutable_by", "severity", "description"}
)


def _zone(entry: object, label: str, problems: list[str]) -> Zone | None:
    if not isinstance(entry, Mapping):
        problems.append(f"{label}: must be a mapping")
        return None
    before = len(problems)
    unknown = sorted(set(entry) - _ZONE_KEYS)
    if unknown:
        problems.append(f"{label}: unknown key(s) {unknown}; allowed: {sorted(_ZONE_KEYS)}")
    name = entry.get("name")
    if not isinstance(name, str) or not _ZONE_NAME.match(name):
        problems.append(f"{label}: name must be lowercase letters, digits and _ (at most 64), got {name!r}")
    else:
        label = f"{label} ({name})"
    polygon = _polygon(entry.get("polygon"), label, problems)
    hours = _hours(entry.get("active_hours", []), label, problems)
    roles = entry.get("allowed_roles", [])
    if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
        problems.append(f"{label}: allowed_roles must be a list of role names, got {roles!r}")
        roles = []
    try:
        refutable_by = RefutableBy(entry.get("refutable_by", "supervisor"))
        severity = Severity(entry.get("severity", "medium"))
    except ValueError as error:
        problems.append(f"{label}: {error}")
        return None
    description = entry.get("description", "")
    if not isinstance(description, str):
        problems.append(f"{label}: description must be a string")
        description = ""
    if len(problems) > before or not isinstance(name, str):
        return None
    return Zone(name, polygon, hours, frozenset(roles), refutable_by, severity, description)


def _polygon(value: object, label: str, problems: list[str]) -> tuple[tuple[float, float], ...]:
    if not isinstance(value, list) or not 3 <= len(value) <= _MAX_VERTICES:
        problems.append(
            f"{label}: polygon must list 3 to {_MAX_VERTICES} [x, y] vertices in metres, got {value!r}"
        )
        return ()
    points: list[tuple[float, float]] = []
    for vertex in value:
        if (
            not isinstance(vertex, list)
            or len(vertex) != 2
            or not all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in vertex)
            or not all(math.isfinite(c) and abs(c) <= _MAX_COORDINATE_M for c in vertex)
        ):
            problems.append(
                f"{label}: vertex {vertex!r} must be [x, y], finite metres within ±{_MAX_COORDINATE_M:g}"
            )
            return ()
        points.append((float(vertex[0]), float(vertex[1])))
    if _area(points) == 0.0:
        problems.append(f"{label}: polygon has zero area")
    elif _self_intersects(points):
        problems.append(f"{label}: polygon edges cross each other; list the vertices in boundary order")
    return tuple(points)


def _area(points: Sequence[tuple[float, float]]) -> float:
    return abs(sum(a[0] * b[1] - b[0] * a[1] for a, b in _edges(points))) / 2.0


def _self_intersects(points: Sequence[tuple[float, float]]) -> bool:
    edges = _edges(points)
    count = len(edges)
    for i in range(count):
        for j in range(i + 1, count):
            if j == i + 1 or (i == 0 and j == count - 1):
                continue
            if _segments_intersect(edges[i][0], edges[i][1], edges[j][0], edges[j][1]):
                return True
    return False


def _hours(value: object, label: str, problems: list[str]) -> tuple[tuple[int, int], ...]:
    if not isinstance(value, list):
        problems.append(f'{label}: active_hours must be a list of "HH:MM-HH:MM" spans, got {value!r}')
        return ()
    spans: list[tuple[int, int]] = []
    for item in value:
        match = re.fullmatch(r"(\d{2}):(\d{2})-(\d{2}):(\d{2})", item) if isinstance(item, str) else None
        if match is None:
            problems.append(f'{label}: active_hours entry {item!r} must be "HH:MM-HH:MM"')
            continue
        h1, m1, h2, m2 = (int(part) for part in match.groups())
        if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59 or (h1, m1) == (h2, m2):
            problems.append(
                f"{label}: active_hours entry {item!r} needs two different times from 00:00 to 23:59"
            )
            continue
        spans.append((h1 * 60 + m1, h2 * 60 + m2))
    return tuple(spans)
