"""Declares the motion parameters with descriptors and reads them back as a flat map.

Descriptors carry the description, unit, bounds and read-only flag from the core's
declarative configuration, so `ros2 param describe` shows what the validator enforces.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType
from rclpy.exceptions import (
    InvalidParameterTypeException,
    InvalidParameterValueException,
    ParameterUninitializedException,
)
from rclpy.node import Node
from rclpy.parameter import Parameter

from nc_safety.core.motion_config import ParameterSpec, parameter_specs

SCAN_SOURCES_PARAMETER = "scan.sources"


def _parameter_type(default: Any) -> Parameter.Type:
    if isinstance(default, bool):
        return Parameter.Type.BOOL
    if isinstance(default, int):
        return Parameter.Type.INTEGER
    if isinstance(default, float):
        return Parameter.Type.DOUBLE
    if isinstance(default, str):
        return Parameter.Type.STRING
    raise TypeError(f"no ROS parameter type for default {default!r}")


_ARRAY_TYPES = {
    "geofence.keep_in": Parameter.Type.DOUBLE_ARRAY,
    "geofence.keep_out": Parameter.Type.STRING_ARRAY,
}


def descriptor_for(spec: ParameterSpec, parameter_type: Parameter.Type) -> ParameterDescriptor:
    description = spec.description
    if spec.unit:
        description += f" [{spec.unit}]"
    if spec.choices:
        description += f" One of: {', '.join(spec.choices)}."
    descriptor = ParameterDescriptor(
        name=spec.name, type=int(parameter_type.value), description=description, read_only=spec.read_only
    )
    if parameter_type is Parameter.Type.DOUBLE and spec.minimum is not None and spec.maximum is not None:
        descriptor.floating_point_range = [
            FloatingPointRange(from_value=spec.minimum, to_value=spec.maximum, step=0.0)
        ]
    elif parameter_type is Parameter.Type.INTEGER and spec.minimum is not None and spec.maximum is not None:
        descriptor.integer_range = [
            IntegerRange(from_value=int(spec.minimum), to_value=int(spec.maximum), step=0)
        ]
    return descriptor


def declare_motion_parameters(node: Node) -> tuple[tuple[str, ...], list[str]]:
    """Declare every motion parameter; return the scan source names and the problems found.

    rclpy does not accept a value outside its descriptor range or of the wrong type. Such a
    value is recorded as a problem and the default is kept, so that one error lists them all.
    """
    node.declare_parameter(
        SCAN_SOURCES_PARAMETER,
        ["scan"],
        ParameterDescriptor(
            name=SCAN_SOURCES_PARAMETER,
            type=ParameterType.PARAMETER_STRING_ARRAY,
            description="Names of the LaserScan sources; each has scan.<name>.* parameters.",
            read_only=True,
        ),
    )
    sources = tuple(node.get_parameter(SCAN_SOURCES_PARAMETER).get_parameter_value().string_array_value)
    problems: list[str] = []
    overrides = node._parameter_overrides
    for spec in parameter_specs(sources):
        array_type = _ARRAY_TYPES.get(spec.name)
        parameter_type = array_type or _parameter_type(spec.default)
        descriptor = descriptor_for(spec, parameter_type)
        given = overrides.get(spec.name)
        if (
            given is not None
            and parameter_type is Parameter.Type.DOUBLE
            and given.type_ is Parameter.Type.INTEGER
        ):
            # `-p limits.max_linear_x:=1` arrives as an integer; accept it as metres per second.
            overrides[spec.name] = Parameter(spec.name, Parameter.Type.DOUBLE, float(given.value))
        if (
            given is not None
            and array_type is Parameter.Type.DOUBLE_ARRAY
            and given.type_ is Parameter.Type.INTEGER_ARRAY
        ):
            overrides[spec.name] = Parameter(spec.name, array_type, [float(v) for v in given.value])
        default: Any = array_type if array_type is not None else spec.default
        try:
            node.declare_parameter(spec.name, default, descriptor)
        except (InvalidParameterValueException, InvalidParameterTypeException) as error:
            shown = overrides[spec.name].value if spec.name in overrides else None
            limits = _bounds_text(spec) or "see its description"
            problems.append(f"{spec.name}: value {shown!r} rejected ({limits}): {_short(error)}")
            node.declare_parameter(spec.name, default, descriptor, ignore_override=True)
    return sources, problems


def _short(error: Exception) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text[:200]


def _bounds_text(spec: ParameterSpec) -> str:
    if spec.minimum is None and spec.maximum is None:
        return ""
    return f"allowed range [{spec.minimum:g}, {spec.maximum:g}] {spec.unit}".rstrip()


def read_flat_parameters(node: Node, sources: tuple[str, ...]) -> dict[str, Any]:
    """Current values of every motion parameter, keyed by name."""
    values: dict[str, Any] = {}
    for spec in parameter_specs(sources):
        try:
            value = node.get_parameter(spec.name).value
        except ParameterUninitializedException:
            value = None
        if value is None:
            value = ()
        values[spec.name] = tuple(value) if isinstance(value, list) else value
    return values


def undeclared_overrides(node: Node) -> list[str]:
    """Parameters given on the command line or in a file that nothing declared: likely typos."""
    overrides = node._parameter_overrides
    declared = set(node._parameters)
    return sorted(name for name in overrides if name not in declared)


def command_line_parameters(argv: Sequence[str]) -> dict[str, str]:
    """`-p name:=value` pairs given after --ros-args, as text, in order of appearance."""
    found: dict[str, str] = {}
    in_ros_args = False
    index = 0
    while index < len(argv):
        item = argv[index]
        if item == "--ros-args":
            in_ros_args = True
        elif item == "--":
            in_ros_args = False
        elif in_ros_args and item in ("-p", "--param") and index + 1 < len(argv):
            name, separator, value = argv[index + 1].partition(":=")
            if separator:
                # A node-qualified name (`node:name:=value`) keeps only the parameter name.
                found[name.rsplit(":", 1)[-1]] = value
            index += 1
        index += 1
    return found


_EXPECTED: dict[Parameter.Type, tuple[type, ...]] = {
    Parameter.Type.BOOL: (bool,),
    Parameter.Type.INTEGER: (int,),
    Parameter.Type.DOUBLE: (int, float),
    Parameter.Type.STRING: (str, int, float, bool),
}


def check_command_line_types(node: Node, argv: Sequence[str]) -> list[str]:
    """Problems with `-p` values whose type does not fit the declared parameter.

    rcl drops a mistyped `-p` value silently when a params file sets the same parameter,
    and the node would run with the file's value. This check catches that case.
    """
    problems = []
    for name, text in command_line_parameters(argv).items():
        if not node.has_parameter(name):
            continue
        declared = node.get_parameter(name).type_
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            value = text
        expected = _EXPECTED.get(declared)
        if expected is None:
            if declared.name.endswith("_ARRAY") and not isinstance(value, list):
                problems.append(f"{name}: value {text!r} is not a list; write it as [a, b, ...]")
            continue
        fits = isinstance(value, expected) and not (
            declared is not Parameter.Type.BOOL and isinstance(value, bool)
        )
        if declared is Parameter.Type.STRING:
            fits = True
        if not fits:
            kind = {"BOOL": "true or false", "INTEGER": "an integer", "DOUBLE": "a number"}[declared.name]
            problems.append(
                f"{name}: value {value!r} given with -p is not {kind}; fix the value (units are implied)"
            )
    return problems
