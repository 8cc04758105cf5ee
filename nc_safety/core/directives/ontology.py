"""The household object ontology: object types, their properties, mass and initial state.

Loaded from `config/ontology.yaml` (its header documents the format). Loading validates
the whole file and lists every problem at once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from nc_safety.core.directives.errors import DirectiveError

# State keys an ontology may set for a type, with the Python type each takes.
STATE_FLAGS: tuple[str, ...] = ("on", "open", "dirty", "broken", "sliced", "cooked", "wet")
_TYPE_KEYS = frozenset({"is", "mass_kg", "height_m", "accepts", "controls", "state", "aliases"})
_TOP_KEYS = frozenset({"version", "properties", "groups", "liquids", "types"})
_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]*$")
_TYPE_NAME = re.compile(r"^[A-Z][A-Za-z0-9]*$")
_MAX_MASS_KG = 10000.0
_MAX_HEIGHT_M = 100.0


def name_key(name: str) -> str:
    """Return the lookup key of a name: lowercase with spaces, `_` and `-` removed."""
    return re.sub(r"[\s_-]+", "", name).lower()


@dataclass(frozen=True, slots=True)
class LiquidType:
    name: str
    properties: frozenset[str]


@dataclass(frozen=True, slots=True)
class ObjectType:
    name: str
    properties: frozenset[str]
    mass_kg: float | None = None
    """Typical mass in kilograms; None for fixed furniture and room parts."""
    height_m: float | None = None
    """Height above the floor of a wall-mounted object, in metres."""
    accepts: frozenset[str] = frozenset()
    controls: str | None = None
    initial_flags: frozenset[str] = frozenset()
    """State flags (from STATE_FLAGS) that are true initially."""
    initial_liquids: tuple[str, ...] = ()

    def has(self, prop: str) -> bool:
        return prop in self.properties


@dataclass(frozen=True, slots=True)
class Ontology:
    types: Mapping[str, ObjectType]
    liquids: Mapping[str, LiquidType]
    properties: Mapping[str, str]
    """Property name -> description."""
    source: str = ""
    _type_keys: Mapping[str, str] = field(default_factory=dict)
    """Name key of every type name and alias -> type name."""

    def object_type(self, phrase: str) -> ObjectType | None:
        """Resolve a name as written in a plan (`remote control`, `Mug_2`), or None when unknown."""
        key = name_key(phrase)
        name = self._type_keys.get(key)
        if name is None:
            # Instance names such as `Mug_2` or `Mug#2` name a type plus a number.
            stripped = re.sub(r"[#_\s-]*\d+$", "", phrase)
            if stripped and stripped != phrase:
                name = self._type_keys.get(name_key(stripped))
        return None if name is None else self.types[name]

    def liquid(self, phrase: str) -> LiquidType | None:
        return self.liquids.get(name_key(phrase))


def load_ontology(path: Path | str) -> Ontology:
    """Load and validate an ontology file; raises DirectiveError listing every problem."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise DirectiveError([f"cannot read {path}: {error.strerror}"], source="ontology") from None
    except yaml.YAMLError as error:
        raise DirectiveError([f"{path} is not valid YAML: {error}"], source="ontology") from None
    return ontology_from_mapping(data, source=str(path))


def ontology_from_mapping(data: object, source: str = "ontology") -> Ontology:
    """Build an ontology from decoded YAML; raises DirectiveError listing every problem."""
    problems: list[str] = []
    if not isinstance(data, dict):
        raise DirectiveError([f"{source}: the top level must be a mapping"], source="ontology")
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        problems.append(f"unknown top-level key(s) {unknown}; allowed: {sorted(_TOP_KEYS)}")
    if data.get("version") != 1:
        problems.append(f"version must be 1, got {data.get('version')!r}")

    properties = _properties(data.get("properties"), problems)
    groups = _groups(data.get("groups", {}), properties, problems)
    liquids = _liquids(data.get("liquids", {}), properties, problems)
    types, keys = _types(data.get("types"), properties, groups, liquids, problems)

    if problems:
        raise DirectiveError([f"{source}: {problem}" for problem in problems], source="ontology")
    return Ontology(types=types, liquids=liquids, properties=properties, source=source, _type_keys=keys)


def _properties(value: object, problems: list[str]) -> dict[str, str]:
    if not isinstance(value, dict) or not value:
        problems.append("properties must be a non-empty mapping of name -> description")
        return {}
    result: dict[str, str] = {}
    for name, description in value.items():
        if not isinstance(name, str) or not _IDENTIFIER.match(name):
            problems.append(f"property name {name!r} must be lowercase letters, digits and _")
        elif not isinstance(description, str) or not description.strip():
            problems.append(f"property {name!r} needs a description")
        else:
            result[name] = description
    return result


def _groups(value: object, properties: Mapping[str, str], problems: list[str]) -> dict[str, frozenset[str]]:
    if not isinstance(value, dict):
        problems.append("groups must be a mapping of name -> list of properties")
        return {}
    result: dict[str, frozenset[str]] = {}
    for name, members in value.items():
        if not isinstance(name, str) or not _IDENTIFIER.match(name):
            problems.append(f"group name {name!r} must be lowercase letters, digits and _")
            continue
        if name in properties:
            problems.append(f"group {name!r} has the name of a property")
            continue
        result[name] = frozenset(_property_list(members, properties, f"group {name!r}", problems))
    return result


def _liquids(value: object, properties: Mapping[str, str], problems: list[str]) -> dict[str, LiquidType]:
    if not isinstance(value, dict):
        problems.append("liquids must be a mapping of name -> list of properties")
        return {}
    result: dict[str, LiquidType] = {}
    for name, members in value.items():
        if not isinstance(name, str) or not _IDENTIFIER.match(name):
            problems.append(f"liquid name {name!r} must be lowercase letters, digits and _")
            continue
        props = frozenset(_property_list(members, properties, f"liquid {name!r}", problems))
        result[name_key(name)] = LiquidType(name=name, properties=props)
    return result


def _property_list(value: object, allowed: Mapping[str, str], label: str, problems: list[str]) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        problems.append(f"{label} must list property names, got {value!r}")
        return []
    unknown = [item for item in value if item not in allowed]
    if unknown:
        problems.append(f"{label} lists undeclared propert(ies) {unknown}")
    return [item for item in value if item in allowed]


def _types(
    value: object,
    properties: Mapping[str, str],
    groups: Mapping[str, frozenset[str]],
    liquids: Mapping[str, LiquidType],
    problems: list[str],
) -> tuple[dict[str, ObjectType], dict[str, str]]:
    if not isinstance(value, dict) or not value:
        problems.append("types must be a non-empty mapping of TypeName -> definition")
        return {}, {}
    types: dict[str, ObjectType] = {}
    keys: dict[str, str] = {}
    for name, spec in value.items():
        if not isinstance(name, str) or not _TYPE_NAME.match(name):
            problems.append(f"type name {name!r} must be CamelCase letters and digits")
            continue
        if not isinstance(spec, dict):
            problems.append(f"type {name}: the definition must be a mapping")
            continue
        object_type = _object_type(name, spec, properties, groups, liquids, problems)
        types[name] = object_type
        for alias in [name, *_aliases(name, spec, problems)]:
            key = name_key(alias)
            if key in keys and keys[key] != name:
                problems.append(f"type {name}: name or alias {alias!r} is already used by {keys[key]}")
            keys[key] = name
    for object_type in types.values():
        if object_type.controls is not None and object_type.controls not in types:
            problems.append(f"type {object_type.name}: controls unknown type {object_type.controls!r}")
    return types, keys


def _aliases(name: str, spec: Mapping[str, object], problems: list[str]) -> list[str]:
    aliases = spec.get("aliases", [])
    if not isinstance(aliases, list) or not all(
        isinstance(alias, str) and alias.strip() for alias in aliases
    ):
        problems.append(f"type {name}: aliases must be a list of non-empty strings, got {aliases!r}")
        return []
    return list(aliases)


def _object_type(
    name: str,
    spec: Mapping[str, object],
    properties: Mapping[str, str],
    groups: Mapping[str, frozenset[str]],
    liquids: Mapping[str, LiquidType],
    problems: list[str],
) -> ObjectType:
    unknown = sorted(set(spec) - _TYPE_KEYS)
    if unknown:
        problems.append(f"type {name}: unknown key(s) {unknown}; allowed: {sorted(_TYPE_KEYS)}")

    props: set[str] = set()
    members = spec.get("is", [])
    if not isinstance(members, list):
        problems.append(f"type {name}: `is` must be a list, got {members!r}")
        members = []
    for member in members:
        if member in groups:
            props |= groups[member]
        elif member in properties:
            props.add(member)
        else:
            problems.append(f"type {name}: {member!r} is neither a declared property nor a group")

    mass = _positive_number(spec.get("mass_kg"), f"type {name}: mass_kg", _MAX_MASS_KG, problems)
    height = _positive_number(spec.get("height_m"), f"type {name}: height_m", _MAX_HEIGHT_M, problems)
    if "pickupable" in props and mass is None:
        problems.append(f"type {name} is pickupable but has no mass_kg")

    accepts = frozenset(
        _property_list(spec.get("accepts", []), properties, f"type {name}: accepts", problems)
    )
    if "restricted_use" in props and not accepts:
        problems.append(f"type {name} has restricted_use but an empty accepts list")

    controls = spec.get("controls")
    if controls is not None and not isinstance(controls, str):
        problems.append(f"type {name}: controls must be a type name, got {controls!r}")
        controls = None

    flags, initial_liquids = _initial_state(name, spec.get("state", {}), liquids, problems)
    return ObjectType(
        name=name,
        properties=frozenset(props),
        mass_kg=mass,
        height_m=height,
        accepts=accepts,
        controls=controls,
        initial_flags=flags,
        initial_liquids=initial_liquids,
    )


def _positive_number(value: object, label: str, maximum: float, problems: list[str]) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value <= maximum:
        problems.append(f"{label} must be a number in (0, {maximum:g}], got {value!r}")
        return None
    return float(value)


def _initial_state(
    name: str, value: object, liquids: Mapping[str, LiquidType], problems: list[str]
) -> tuple[frozenset[str], tuple[str, ...]]:
    if not isinstance(value, dict):
        problems.append(f"type {name}: state must be a mapping, got {value!r}")
        return frozenset(), ()
    flags: set[str] = set()
    initial_liquids: tuple[str, ...] = ()
    for key, flag_value in value.items():
        if key == "liquids":
            if not isinstance(flag_value, list) or any(
                name_key(str(item)) not in liquids for item in flag_value
            ):
                problems.append(f"type {name}: state.liquids must list declared liquids, got {flag_value!r}")
            else:
                initial_liquids = tuple(liquids[name_key(item)].name for item in flag_value)
        elif key in STATE_FLAGS:
            if not isinstance(flag_value, bool):
                problems.append(f"type {name}: state.{key} must be true or false, got {flag_value!r}")
            elif flag_value:
                flags.add(key)
        else:
            problems.append(f"type {name}: unknown state key {key!r}; allowed: {[*STATE_FLAGS, 'liquids']}")
    return frozenset(flags), initial_liquids
