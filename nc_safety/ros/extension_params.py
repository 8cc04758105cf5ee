"""Declaring an extension's `<prefix>.*` parameters with descriptors, in one place.

Every extension describes its parameters as `ParameterSpec` entries. `declare_parameters`
turns them into read-only ROS parameters with types and ranges. It raises one ConfigError
that lists every value outside its bounds, so the node does not start.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.node import Node

from nc_safety.core.errors import ConfigError


@dataclass(frozen=True, slots=True)
class ParameterSpec:
    """One extension parameter: default, description with unit, and bounds for numbers."""

    default: Any
    description: str
    low: float | None = None
    high: float | None = None
    read_only: bool = True


def default_ros_home_path(file_name: str) -> str:
    """Return `$ROS_HOME/nc_safety/<file_name>`, with ROS_HOME defaulting to ~/.ros."""
    ros_home = os.environ.get("ROS_HOME") or str(Path.home() / ".ros")
    return str(Path(ros_home) / "nc_safety" / file_name)


def parameter_descriptor(full_name: str, spec: ParameterSpec) -> ParameterDescriptor:
    """Descriptor with the type that the default implies and the range for numbers."""
    descriptor = ParameterDescriptor(name=full_name, description=spec.description, read_only=spec.read_only)
    default = spec.default
    if isinstance(default, bool):
        descriptor.type = ParameterType.PARAMETER_BOOL
    elif isinstance(default, str):
        descriptor.type = ParameterType.PARAMETER_STRING
    elif isinstance(default, list):
        descriptor.type = (
            ParameterType.PARAMETER_DOUBLE_ARRAY
            if default and isinstance(default[0], float)
            else ParameterType.PARAMETER_STRING_ARRAY
        )
    elif isinstance(default, int):
        descriptor.type = ParameterType.PARAMETER_INTEGER
        if spec.low is not None and spec.high is not None:
            descriptor.integer_range = [
                IntegerRange(from_value=int(spec.low), to_value=int(spec.high), step=1)
            ]
    else:
        descriptor.type = ParameterType.PARAMETER_DOUBLE
        if spec.low is not None and spec.high is not None:
            descriptor.floating_point_range = [
                FloatingPointRange(from_value=float(spec.low), to_value=float(spec.high), step=0.0)
            ]
    return descriptor


def declare_parameters(node: Node, prefix: str, specs: Mapping[str, ParameterSpec]) -> dict[str, Any]:
    """Declare `<prefix>.<name>` for every spec (once) and return the values by name.

    Raises ConfigError listing every value outside its bounds or of the wrong type.
    """
    values: dict[str, Any] = {}
    problems: list[str] = []
    for name, spec in specs.items():
        full = f"{prefix}.{name}"
        if node.has_parameter(full):
            values[name] = node.get_parameter(full).value
            continue
        try:
            values[name] = node.declare_parameter(full, spec.default, parameter_descriptor(full, spec)).value
        except (InvalidParameterValueException, InvalidParameterTypeException) as error:
            bounds = (
                f"allowed {spec.low:g}..{spec.high:g}"
                if spec.low is not None and spec.high is not None
                else ""
            )
            problems.append(f"{full}: {str(error).splitlines()[0]} {bounds}".rstrip())
    if problems:
        raise ConfigError(problems, source=f"{prefix} parameters")
    return values
