"""Configuration of the motion rules: one declarative entry per parameter.

Every field has a type, a default, a description, a unit and its bounds. The node turns
these entries into ROS parameter descriptors, so `ros2 param describe` shows the same
facts. `load_motion_config` validates a whole flat parameter map at once and raises a
`ConfigError` that lists every bad key, not only the first.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from nc_safety.core.errors import ConfigError
from nc_safety.core.geometry import clearance_summarizer


def _unit(unit: str) -> dict[str, Any]:
    return {"unit": unit}


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class CommandConfig(_Section):
    type: Literal["twist", "twist_stamped"] = Field(
        "twist",
        description="Message type of cmd_vel_in and cmd_vel_out.",
        json_schema_extra={"read_only": True},
    )
    timeout: float = Field(
        0.5,
        gt=0.0,
        le=10.0,
        description="Output becomes zero when no command arrived for this long.",
        json_schema_extra=_unit("s"),
    )
    max_age: float = Field(
        0.5,
        gt=0.0,
        le=10.0,
        description="TwistStamped commands older than this are treated as silence.",
        json_schema_extra=_unit("s"),
    )
    multiple_publishers: Literal["stop", "warn"] = Field(
        "stop", description="What to do when more than one node publishes cmd_vel_in: stop, or only warn."
    )
    queue_depth: int = Field(
        100,
        ge=1,
        le=10000,
        description="Commands queued while the node is busy; deeper absorbs bursts, shallower drops old ones.",
        json_schema_extra={"read_only": True},
    )


class OutputConfig(_Section):
    rate: float = Field(
        20.0,
        ge=1.0,
        le=1000.0,
        description="Rate of the evaluation timer and minimum output rate.",
        json_schema_extra=_unit("Hz"),
    )
    max_step_factor: float = Field(
        5.0,
        ge=1.5,
        le=100.0,
        description="A time step longer than this many output periods while moving is a fault.",
        json_schema_extra=_unit("1"),
    )


class LimitsConfig(_Section):
    mode: Literal["clamp", "refuse"] = Field(
        "clamp", description="Over-limit commands are clamped (modify) or rejected (stop)."
    )
    max_linear_x: float = Field(
        0.22, gt=0.0, le=20.0, description="Forward speed limit.", json_schema_extra=_unit("m/s")
    )
    min_linear_x: float = Field(
        -0.22, ge=-20.0, le=0.0, description="Reverse speed limit (negative).", json_schema_extra=_unit("m/s")
    )
    max_linear_y: float = Field(
        0.0,
        ge=0.0,
        le=20.0,
        description="Sideways speed limit; 0 for a non-holonomic base.",
        json_schema_extra=_unit("m/s"),
    )
    max_linear_z: float = Field(
        0.0,
        ge=0.0,
        le=20.0,
        description="Vertical speed limit; 0 for a ground robot.",
        json_schema_extra=_unit("m/s"),
    )
    max_angular_x: float = Field(
        0.0,
        ge=0.0,
        le=50.0,
        description="Roll rate limit; 0 for a ground robot.",
        json_schema_extra=_unit("rad/s"),
    )
    max_angular_y: float = Field(
        0.0,
        ge=0.0,
        le=50.0,
        description="Pitch rate limit; 0 for a ground robot.",
        json_schema_extra=_unit("rad/s"),
    )
    max_angular_z: float = Field(
        2.84, gt=0.0, le=50.0, description="Yaw rate limit.", json_schema_extra=_unit("rad/s")
    )
    max_accel_linear: float = Field(
        2.5,
        gt=0.0,
        le=100.0,
        description="Largest increase of linear speed per second.",
        json_schema_extra=_unit("m/s^2"),
    )
    max_accel_angular: float = Field(
        3.2,
        gt=0.0,
        le=500.0,
        description="Largest increase of yaw rate per second.",
        json_schema_extra=_unit("rad/s^2"),
    )


class RobotConfig(_Section):
    length: float = Field(
        0.14, gt=0.0, le=10.0, description="Footprint length along x.", json_schema_extra=_unit("m")
    )
    width: float = Field(
        0.18, gt=0.0, le=10.0, description="Footprint width along y.", json_schema_extra=_unit("m")
    )
    center_x: float = Field(
        -0.032,
        ge=-5.0,
        le=5.0,
        description="x of the footprint centre in the base frame.",
        json_schema_extra=_unit("m"),
    )
    max_decel_linear: float = Field(
        1.0,
        gt=0.0,
        le=100.0,
        description="Deceleration the base can always achieve when braking.",
        json_schema_extra=_unit("m/s^2"),
    )
    max_decel_angular: float = Field(
        3.0,
        gt=0.0,
        le=500.0,
        description="Angular deceleration the base can always achieve.",
        json_schema_extra=_unit("rad/s^2"),
    )
    reaction_time: float = Field(
        0.1,
        ge=0.0,
        le=5.0,
        description="Time from a new output to the base starting to brake.",
        json_schema_extra=_unit("s"),
    )


class ObstacleConfig(_Section):
    enabled: bool = Field(True, description="Check laser obstacles (stop, slowdown, braking distance).")
    margin: float = Field(
        0.05,
        ge=0.0,
        le=5.0,
        description="Clearance the footprint keeps after braking to a stop.",
        json_schema_extra=_unit("m"),
    )
    stop_distance: float = Field(
        0.10,
        ge=0.0,
        le=5.0,
        description="Motion toward a point this close to the footprint is stopped.",
        json_schema_extra=_unit("m"),
    )
    slowdown_distance: float = Field(
        0.40,
        ge=0.0,
        le=10.0,
        description="Motion toward a point this close is slowed.",
        json_schema_extra=_unit("m"),
    )
    slowdown_ratio: float = Field(
        0.5,
        gt=0.0,
        le=1.0,
        description="Speed factor inside the slowdown zone.",
        json_schema_extra=_unit("1"),
    )
    path_resolution: float = Field(
        0.02,
        gt=0.001,
        le=0.5,
        description="Spacing of the poses sampled along the predicted path.",
        json_schema_extra=_unit("m"),
    )
    max_path_samples: int = Field(24, ge=2, le=200, description="Most poses sampled along one path.")
    clearance_backend: Literal["auto", "compiled", "numpy"] = Field(
        "auto",
        description=(
            "Code that measures clearance along the path: the C extension (compiled), NumPy (numpy), "
            "or the extension when it was built and NumPy otherwise (auto). The tests check that both "
            "give the same outcomes; NumPy takes about twice as long per decision."
        ),
    )

    @model_validator(mode="after")
    def _zones_nest(self) -> ObstacleConfig:
        if self.slowdown_distance < self.stop_distance:
            raise ValueError(
                f"slowdown_distance {self.slowdown_distance} m must be >= stop_distance {self.stop_distance} m"
            )
        return self

    @model_validator(mode="after")
    def _backend_available(self) -> ObstacleConfig:
        clearance_summarizer(self.clearance_backend)
        return self


class ScanSourceConfig(_Section):
    topic: str = Field(
        "scan", min_length=1, description="LaserScan topic.", json_schema_extra={"read_only": True}
    )
    x: float = Field(
        0.0, ge=-10.0, le=10.0, description="Laser x in the base frame.", json_schema_extra=_unit("m")
    )
    y: float = Field(
        0.0, ge=-10.0, le=10.0, description="Laser y in the base frame.", json_schema_extra=_unit("m")
    )
    yaw: float = Field(
        0.0,
        ge=-math.pi,
        le=math.pi,
        description="Laser heading in the base frame.",
        json_schema_extra=_unit("rad"),
    )
    timeout: float = Field(
        0.5,
        ge=0.0,
        le=10.0,
        description="Scans older than this stop the robot.",
        json_schema_extra=_unit("s"),
    )
    required: bool = Field(True, description="A missing or stale scan stops the robot.")
    range_min: float = Field(
        0.05,
        ge=0.0,
        le=10.0,
        description="Sanity lower bound on ranges, applied on top of the scan's own.",
        json_schema_extra=_unit("m"),
    )
    range_max: float = Field(
        30.0,
        gt=0.0,
        le=1000.0,
        description="Sanity upper bound on ranges, applied on top of the scan's own.",
        json_schema_extra=_unit("m"),
    )
    range_max_is_no_return: bool = Field(
        True, description="A range equal to the scan's range_max means no return, as many drivers encode it."
    )
    max_rays: int = Field(
        20000, ge=1, le=1_000_000, description="Scans with more rays are rejected as malformed."
    )

    @model_validator(mode="after")
    def _range_order(self) -> ScanSourceConfig:
        if self.range_max <= self.range_min:
            raise ValueError(f"range_max {self.range_max} m must be > range_min {self.range_min} m")
        return self


class OdomConfig(_Section):
    topic: str = Field(
        "odom", min_length=1, description="Odometry topic.", json_schema_extra={"read_only": True}
    )
    timeout: float = Field(
        0.5, ge=0.0, le=10.0, description="Odometry older than this is stale.", json_schema_extra=_unit("s")
    )
    required: bool = Field(
        False, description="Stale or missing odometry stops the robot (forced on by geofence)."
    )
    plausible_speed_factor: float = Field(
        2.0,
        ge=1.0,
        le=100.0,
        description="Reported speeds above this many times the limits are spikes and are ignored.",
        json_schema_extra=_unit("1"),
    )


class PeopleConfig(_Section):
    enabled: bool = Field(False, description="Keep the protective separation distance from detected people.")
    topic: str = Field(
        "people",
        min_length=1,
        description="PoseArray of people in the base frame.",
        json_schema_extra={"read_only": True},
    )
    timeout: float = Field(
        0.5,
        ge=0.0,
        le=10.0,
        description="People detections older than this are stale.",
        json_schema_extra=_unit("s"),
    )
    required: bool = Field(True, description="Stale or missing detections stop the robot when enabled.")
    human_speed: float = Field(
        1.6,
        gt=0.0,
        le=5.0,
        description="Assumed human approach speed (ISO/TS 15066).",
        json_schema_extra=_unit("m/s"),
    )
    intrusion_distance: float = Field(
        0.2, ge=0.0, le=5.0, description="Intrusion distance C of ISO/TS 15066.", json_schema_extra=_unit("m")
    )
    uncertainty: float = Field(
        0.1,
        ge=0.0,
        le=5.0,
        description="Position uncertainty of robot and person (Zd + Zr).",
        json_schema_extra=_unit("m"),
    )
    person_radius: float = Field(
        0.25, ge=0.0, le=2.0, description="Radius of a detected person.", json_schema_extra=_unit("m")
    )


class GeofenceConfig(_Section):
    enabled: bool = Field(False, description="Keep the predicted stopping footprint inside the allowed area.")
    keep_in: tuple[float, ...] = Field(
        (),
        description="Keep-in polygon in the odometry frame as x1, y1, x2, y2, ...; empty for none.",
        json_schema_extra=_unit("m"),
    )
    keep_out: tuple[str, ...] = Field(
        (),
        description="Keep-out polygons in the odometry frame, each 'x1,y1 x2,y2 x3,y3 ...'.",
        json_schema_extra=_unit("m"),
    )

    @model_validator(mode="after")
    def _polygons(self) -> GeofenceConfig:
        if self.keep_in and (len(self.keep_in) % 2 or len(self.keep_in) < 6):
            raise ValueError(f"keep_in needs at least 3 x, y pairs, got {len(self.keep_in)} numbers")
        for text in self.keep_out:
            parse_polygon(text)
        return self

    def keep_in_polygon(self) -> tuple[tuple[float, float], ...]:
        values = self.keep_in
        return tuple((values[i], values[i + 1]) for i in range(0, len(values), 2))

    def keep_out_polygons(self) -> tuple[tuple[tuple[float, float], ...], ...]:
        return tuple(parse_polygon(text) for text in self.keep_out)


def parse_polygon(text: str) -> tuple[tuple[float, float], ...]:
    """Parse 'x1,y1 x2,y2 x3,y3 ...' into vertices; raise ValueError naming the bad part."""
    vertices = []
    for part in text.split():
        pieces = part.split(",")
        if len(pieces) != 2:
            raise ValueError(f"polygon vertex {part!r} in {text!r} is not 'x,y'")
        try:
            x, y = float(pieces[0]), float(pieces[1])
        except ValueError:
            raise ValueError(f"polygon vertex {part!r} in {text!r} is not a pair of numbers") from None
        if not (math.isfinite(x) and math.isfinite(y)):
            raise ValueError(f"polygon vertex {part!r} in {text!r} is not finite")
        vertices.append((x, y))
    if len(vertices) < 3:
        raise ValueError(f"polygon {text!r} needs at least 3 vertices, got {len(vertices)}")
    return tuple(vertices)


class ClockConfig(_Section):
    future_tolerance: float = Field(
        0.2,
        ge=0.0,
        le=10.0,
        description="Stamps further in the future than this are invalid.",
        json_schema_extra=_unit("s"),
    )
    mismatch_threshold: float = Field(
        60.0,
        gt=0.0,
        le=1e9,
        description="Stamps this far from the node's clock mean a clock mismatch (sim time against wall time).",
        json_schema_extra=_unit("s"),
    )


class RefusalConfig(_Section):
    debounce: float = Field(
        0.5,
        ge=0.0,
        le=60.0,
        description="The same decision signature is republished at most this often.",
        json_schema_extra=_unit("s"),
    )


class MotionConfig(_Section):
    """The whole motion configuration; scan sources are keyed by name."""

    command: CommandConfig = CommandConfig()
    output: OutputConfig = OutputConfig()
    limits: LimitsConfig = LimitsConfig()
    robot: RobotConfig = RobotConfig()
    obstacles: ObstacleConfig = ObstacleConfig()
    scans: Mapping[str, ScanSourceConfig] = Field(default_factory=lambda: {"scan": ScanSourceConfig()})
    odom: OdomConfig = OdomConfig()
    people: PeopleConfig = PeopleConfig()
    geofence: GeofenceConfig = GeofenceConfig()
    clock: ClockConfig = ClockConfig()
    refusals: RefusalConfig = RefusalConfig()

    @model_validator(mode="after")
    def _required_sources(self) -> MotionConfig:
        problems = []
        for name, source in self.scans.items():
            if source.required and source.timeout == 0.0:
                problems.append(
                    f"scan.{name}.timeout is 0 for a required source: a zero timeout cannot disable a "
                    f"required source; set a positive timeout or scan.{name}.required false"
                )
        if (self.odom.required or self.geofence.enabled) and self.odom.timeout == 0.0:
            problems.append("odom.timeout is 0 while odometry is required; set a positive timeout")
        if self.people.enabled and self.people.required and self.people.timeout == 0.0:
            problems.append(
                "people.timeout is 0 while people detections are required; set a positive timeout"
            )
        if self.obstacles.enabled and not self.scans:
            problems.append(
                "obstacles.enabled is true but scan.sources is empty; name at least one scan source"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def output_period(self) -> float:
        return 1.0 / self.output.rate

    @property
    def odom_required(self) -> bool:
        return self.odom.required or self.geofence.enabled


@dataclass(frozen=True, slots=True)
class ParameterSpec:
    """One flat parameter as the node declares it."""

    name: str
    default: Any
    description: str
    unit: str
    minimum: float | None
    maximum: float | None
    read_only: bool
    choices: tuple[str, ...] = ()


SECTION_PREFIXES: dict[str, type[_Section]] = {
    "command": CommandConfig,
    "output": OutputConfig,
    "limits": LimitsConfig,
    "robot": RobotConfig,
    "obstacles": ObstacleConfig,
    "odom": OdomConfig,
    "people": PeopleConfig,
    "geofence": GeofenceConfig,
    "clock": ClockConfig,
    "refusals": RefusalConfig,
}


def _field_specs(prefix: str, model: type[_Section]) -> Iterator[ParameterSpec]:
    for field_name, info in model.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        minimum = maximum = None
        for item in info.metadata:
            for attribute in ("ge", "gt"):
                if getattr(item, attribute, None) is not None:
                    minimum = float(getattr(item, attribute))
            for attribute in ("le", "lt"):
                if getattr(item, attribute, None) is not None:
                    maximum = float(getattr(item, attribute))
        choices: tuple[str, ...] = ()
        annotation = info.annotation
        if getattr(annotation, "__origin__", None) is Literal:
            choices = tuple(str(choice) for choice in annotation.__args__)  # type: ignore[union-attr]
        yield ParameterSpec(
            name=f"{prefix}.{field_name}",
            default=info.default,
            description=info.description or "",
            unit=str(extra.get("unit", "")),
            minimum=minimum,
            maximum=maximum,
            read_only=bool(extra.get("read_only", False)),
            choices=choices,
        )


def parameter_specs(scan_sources: tuple[str, ...] = ("scan",)) -> list[ParameterSpec]:
    """Return every flat parameter of the motion configuration, scan sources included."""
    specs: list[ParameterSpec] = []
    for prefix, model in SECTION_PREFIXES.items():
        specs.extend(_field_specs(prefix, model))
    for name in scan_sources:
        specs.extend(_field_specs(f"scan.{name}", ScanSourceConfig))
    return specs


def load_motion_config(flat: Mapping[str, Any], scan_sources: tuple[str, ...] = ("scan",)) -> MotionConfig:
    """Validate a flat `section.key` parameter map and build the configuration.

    Raises ConfigError listing every invalid or unknown key with its value and bound.
    """
    problems: list[str] = []
    nested: dict[str, dict[str, Any]] = {prefix: {} for prefix in SECTION_PREFIXES}
    scans: dict[str, dict[str, Any]] = {name: {} for name in scan_sources}
    for key, value in flat.items():
        section, _, rest = key.partition(".")
        if section == "scan" and rest.partition(".")[0] in scans and "." in rest:
            source, _, field_name = rest.partition(".")
            scans[source][field_name] = value
        elif section in nested and rest and "." not in rest:
            nested[section][rest] = value
        else:
            problems.append(f"{key}: unknown parameter (value {value!r})")
    sections: dict[str, Any] = {}
    for prefix, model in SECTION_PREFIXES.items():
        try:
            sections[prefix] = model(**nested[prefix])
        except ValidationError as error:
            problems.extend(_describe(prefix, error, nested[prefix]))
    scan_configs: dict[str, ScanSourceConfig] = {}
    for name, values in scans.items():
        try:
            scan_configs[name] = ScanSourceConfig(**values)
        except ValidationError as error:
            problems.extend(_describe(f"scan.{name}", error, values))
    if problems:
        raise ConfigError(problems, source="motion configuration")
    try:
        return MotionConfig(scans=scan_configs, **sections)
    except ValidationError as error:
        raise ConfigError(_describe("", error, {}), source="motion configuration") from None


def _describe(prefix: str, error: ValidationError, values: Mapping[str, Any]) -> list[str]:
    described = []
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"])
        key = f"{prefix}.{location}" if prefix and location else (prefix or location or "configuration")
        field_name = str(item["loc"][0]) if item["loc"] else ""
        shown = f" (value {values[field_name]!r})" if field_name in values else ""
        message = str(item["msg"]).removeprefix("Value error, ")
        described.append(f"{key}: {message}{shown}")
    return described
