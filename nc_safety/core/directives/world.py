"""World state and step simulation for directive plans.

The world holds only the objects a plan mentions (and the ones their controls switch):
nothing else in the room is known. Objects appear with the initial state the ontology
gives their type and no known location. `apply` runs one step: it either reports why
the robot cannot do it (a `Problem`, leaving the world unchanged) or updates the state
and returns a `Transition` naming what changed, which the norms then inspect.

The world is mutable working state of one check; `copy` snapshots it for the
per-requester session store.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from nc_safety.core.directives.conditions import (
    ANY,
    BOOL,
    NUMBER,
    STRING,
    Attribute,
    Schema,
    list_of,
)
from nc_safety.core.directives.model import ACTIONS, Step
from nc_safety.core.directives.ontology import STATE_FLAGS, LiquidType, ObjectType, Ontology, name_key
from nc_safety.core.justification import Evidence, JsonValue

OBJECT = "object"
LIQUID = "liquid"
STEP = "step"

KNOWLEDGE = "knowledge"
CAPACITY = "capacity"

# Actions whose object defaults to the object found last when the step names none.
_DEFAULTS_TO_LOCATION = frozenset(
    {
        "pick",
        "open",
        "close",
        "turn_on",
        "turn_off",
        "slice",
        "cook",
        "fill_liquid",
        "empty_liquid",
        "break",
        "dirty",
        "clean",
    }
)


@dataclass(frozen=True, slots=True)
class RobotProfile:
    """Abilities of the robot: its skills, payload, reach and tools."""

    skills: frozenset[str] = frozenset(ACTIONS)
    payload_kg: float = 5.0
    """Heaviest object the gripper may carry, in kilograms."""
    reach_m: float = 1.8
    """Highest point the gripper reaches above the floor, in metres."""
    tools: frozenset[str] = frozenset({"cutting_tool"})
    """Built-in tools, named by the ontology property a held object would need instead."""

    def problems(self) -> list[str]:
        problems: list[str] = []
        unknown = sorted(self.skills - set(ACTIONS))
        if unknown:
            problems.append(f"skills {unknown} are not actions; known actions: {list(ACTIONS)}")
        for name, value, upper in (("payload_kg", self.payload_kg, 1000.0), ("reach_m", self.reach_m, 10.0)):
            if not math.isfinite(value) or not 0.0 < value <= upper:
                problems.append(f"{name} must be in (0, {upper:g}], got {value!r}")
        return problems


@dataclass(frozen=True, slots=True)
class Origin:
    """The directive and step that last changed an object."""

    directive_id: str
    step: int
    action: str


class SimObject:
    """One object in the simulated world."""

    __slots__ = ("contents", "flags", "held", "kind", "liquids", "name", "origin", "parent")

    def __init__(self, name: str, kind: ObjectType, liquids: tuple[LiquidType, ...]) -> None:
        self.name = name
        self.kind = kind
        self.flags: set[str] = set(kind.initial_flags)
        self.liquids = liquids
        self.parent: SimObject | None = None
        self.contents: list[SimObject] = []
        self.held = False
        self.origin: Origin | None = None

    def __repr__(self) -> str:
        return f"SimObject({self.name!r})"

    def ancestors(self) -> list[SimObject]:
        result: list[SimObject] = []
        node = self.parent
        while node is not None and len(result) < 64:
            result.append(node)
            node = node.parent
        return result

    def descendants(self) -> list[SimObject]:
        result: list[SimObject] = []
        pending = list(self.contents)
        while pending and len(result) < 1024:
            node = pending.pop()
            result.append(node)
            pending.extend(node.contents)
        return result


@dataclass(frozen=True, slots=True)
class Problem:
    """Why the robot cannot do a step: a knowledge or capacity failure."""

    condition: str
    """`knowledge` or `capacity`."""
    message: str
    remedy: str
    evidence: tuple[Evidence, ...] = ()


@dataclass(slots=True)
class Transition:
    """The effect of one applied step, as the norms read it."""

    step: Step
    obj: SimObject | None = None
    """The object acted on: found, picked, put down, toggled, poured from, thrown."""
    target: SimObject | None = None
    """The destination: put receptacle, pour target, or the object a throw or drop was aimed at."""
    liquids: tuple[LiquidType, ...] = ()
    """Liquids that moved in this step (filled or poured)."""
    changed: set[SimObject] = field(default_factory=set)
    toggled: list[SimObject] = field(default_factory=list)


class World:
    """Simulated state: objects by name, the object in the gripper and the robot's location."""

    def __init__(self, ontology: Ontology) -> None:
        self.ontology = ontology
        self.objects: dict[str, SimObject] = {}
        self.holding: SimObject | None = None
        self.location: SimObject | None = None
        self.directive_id = ""

    def copy(self) -> World:
        clone = World(self.ontology)
        mapping: dict[int, SimObject] = {}
        for name, original in self.objects.items():
            duplicate = SimObject(original.name, original.kind, original.liquids)
            duplicate.flags = set(original.flags)
            duplicate.held = original.held
            duplicate.origin = original.origin
            clone.objects[name] = duplicate
            mapping[id(original)] = duplicate
        for original in self.objects.values():
            duplicate = mapping[id(original)]
            duplicate.parent = None if original.parent is None else mapping[id(original.parent)]
            duplicate.contents = [mapping[id(child)] for child in original.contents]
        clone.holding = None if self.holding is None else mapping[id(self.holding)]
        clone.location = None if self.location is None else mapping[id(self.location)]
        return clone

    # Object lookup.
    def resolve(self, phrase: str) -> SimObject | None:
        """Find or create the object a plan names; None when its type is unknown."""
        kind = self.ontology.object_type(phrase)
        if kind is None:
            return None
        written = phrase.strip()
        number = written[len(written.rstrip("0123456789")) :]
        # `Mug_2` and `Mug#2` name a second mug; `Mug` names the one mug of the plan.
        name = f"{kind.name}_{number}" if number and name_key(written) != name_key(kind.name) else kind.name
        existing = self.objects.get(name)
        if existing is not None:
            return existing
        return self._create(name, kind)

    def _create(self, name: str, kind: ObjectType) -> SimObject:
        liquids = tuple(self.ontology.liquids[liquid] for liquid in kind.initial_liquids)
        created = SimObject(name, kind, liquids)
        self.objects[name] = created
        return created

    def instances_of(self, type_name: str) -> list[SimObject]:
        found = [obj for obj in self.objects.values() if obj.kind.name == type_name]
        if not found:
            found = [self._create(type_name, self.ontology.types[type_name])]
        return found

    # Stepping.
    def apply(self, step: Step, robot: RobotProfile) -> Transition | Problem:
        """Apply one step, or return why the robot cannot do it (the world is then unchanged)."""
        if step.action not in robot.skills:
            known = ", ".join(sorted(robot.skills))
            return Problem(
                KNOWLEDGE,
                f"step {step.index} ({step.text!r}) asks for {step.action!r}, which is not one of the robot's skills",
                f"rephrase the step with one of the skills: {known}",
                (Evidence("action", step.action, source=f"plan step {step.index}"),),
            )
        names = _named_objects(step, self.location)
        if isinstance(names, Problem):
            return names
        resolved: dict[str, SimObject | None] = {}
        for role, phrase in names.items():
            obj = self.resolve(phrase) if phrase is not None else None
            if phrase is not None and obj is None:
                return Problem(
                    KNOWLEDGE,
                    f"step {step.index} ({step.text!r}) names {phrase!r}, an object type the robot does not know",
                    "use an object type from the ontology or add this type to config/ontology.yaml",
                    (Evidence("object", phrase, source=f"plan step {step.index}"),),
                )
            resolved[role] = obj
        handler = _HANDLERS[step.action]
        return handler(self, step, robot, resolved.get("object"), resolved.get("target"))

    def finish_step(self, transition: Transition) -> Transition:
        """Stamp the origin of changed objects and add their containers to `changed`."""
        origin = Origin(self.directive_id, transition.step.index, transition.step.action)
        touched = set(transition.changed)
        for obj in list(transition.changed):
            obj.origin = origin
            touched.update(obj.ancestors())
        for obj in transition.toggled:
            touched.update(obj.descendants())
        transition.changed = touched
        return transition


def _named_objects(step: Step, location: SimObject | None) -> dict[str, str | None] | Problem:
    """Return the object and target names a step refers to, defaulting to the last found object."""
    obj = step.object
    if obj is None and step.action in _DEFAULTS_TO_LOCATION:
        if location is None:
            return Problem(
                KNOWLEDGE,
                f"step {step.index} ({step.text!r}) names no object and no earlier step found one",
                f'name the object, for example {{"action": "{step.action}", "object": "Mug"}}',
            )
        obj = location.name
    if step.action == "find" and obj is None:
        return Problem(
            KNOWLEDGE, f"step {step.index} ({step.text!r}) names no object to find", "name the object"
        )
    return {"object": obj, "target": step.target}


Handler = Callable[
    ["World", Step, RobotProfile, "SimObject | None", "SimObject | None"], "Transition | Problem"
]


def _no_object(step: Step) -> Problem:
    return Problem(KNOWLEDGE, f"step {step.index} ({step.text!r}) names no object", "name the object")


def _problem(step: Step, message: str, remedy: str, *evidence: Evidence) -> Problem:
    return Problem(CAPACITY, f"step {step.index} ({step.text!r}): {message}", remedy, tuple(evidence))


def _require(step: Step, obj: SimObject, prop: str, what: str) -> Problem | None:
    if obj.kind.has(prop):
        return None
    return _problem(
        step,
        f"the {obj.name} {what}",
        f"choose an object that is {prop.replace('_', ' ')}",
        Evidence(f"{obj.name} {prop}", False, source="ontology"),
    )


def _detach(obj: SimObject) -> SimObject | None:
    parent = obj.parent
    if parent is not None:
        parent.contents.remove(obj)
        obj.parent = None
    return parent


def _place(obj: SimObject, receptacle: SimObject) -> None:
    _detach(obj)
    obj.parent = receptacle
    receptacle.contents.append(obj)


def _find(
    world: World, step: Step, robot: RobotProfile, obj: SimObject | None, _t: SimObject | None
) -> Transition | Problem:
    if obj is None:
        return _no_object(step)
    world.location = obj
    return Transition(step, obj=obj)


def _pick(
    world: World, step: Step, robot: RobotProfile, obj: SimObject | None, _t: SimObject | None
) -> Transition | Problem:
    if obj is None:
        return _no_object(step)
    if world.holding is obj:
        return Transition(step, obj=obj)
    if world.holding is not None:
        return _problem(
            step,
            f"the gripper already holds the {world.holding.name}",
            f"put the {world.holding.name} down before picking up the {obj.name}",
            Evidence("gripper", world.holding.name, source="world state"),
        )
    if not obj.kind.has("pickupable") and not obj.kind.has("living"):
        return _problem(
            step,
            f"the {obj.name} cannot be picked up (fixed furniture or fitting)",
            f"leave the {obj.name} where it is",
            Evidence(f"{obj.name} pickupable", False, source="ontology"),
        )
    mass = obj.kind.mass_kg
    if mass is not None and mass > robot.payload_kg:
        return _problem(
            step,
            f"the {obj.name} weighs about {mass:.1f} kg, more than the {robot.payload_kg:.1f} kg payload",
            f"ask a person to move the {obj.name}, or use a robot rated for {mass:.1f} kg",
            Evidence(f"{obj.name} mass", mass, "kg", robot.payload_kg, "ontology"),
        )
    reach = _reach_problem(step, obj, robot)
    if reach is not None:
        return reach
    old_parent = _detach(obj)
    obj.held = True
    world.holding = obj
    transition = Transition(step, obj=obj, changed={obj})
    if old_parent is not None:
        transition.changed.add(old_parent)
    return transition


def _reach_problem(step: Step, obj: SimObject, robot: RobotProfile) -> Problem | None:
    height = obj.kind.height_m
    if height is None or height <= robot.reach_m:
        return None
    return _problem(
        step,
        f"the {obj.name} is {height:.2f} m high, above the {robot.reach_m:.2f} m reach",
        f"ask a person to handle the {obj.name}",
        Evidence(f"{obj.name} height", height, "m", robot.reach_m, "ontology"),
    )


def _held(world: World, step: Step, obj: SimObject | None) -> SimObject | Problem:
    held = world.holding
    if held is None:
        return _problem(step, "the gripper is empty", "pick up the object first")
    if obj is not None and obj is not held:
        return _problem(
            step,
            f"the gripper holds the {held.name}, not the {obj.name}",
            f"pick up the {obj.name} first",
            Evidence("gripper", held.name, source="world state"),
        )
    return held


def _put(
    world: World, step: Step, robot: RobotProfile, obj: SimObject | None, target: SimObject | None
) -> Transition | Problem:
    held = _held(world, step, obj)
    if isinstance(held, Problem):
        return held
    target = target or world.location
    if target is None or target is held:
        return _problem(
            step, "there is no place to put it", "find the receptacle first or name it as the target"
        )
    reach = _reach_problem(step, target, robot)
    if reach is not None:
        return reach
    _place(held, target)
    held.held = False
    world.holding = None
    world.location = target
    return Transition(step, obj=held, target=target, changed={held, target})


def _set_flag(prop: str, flag: str, value: bool, what: str) -> Handler:
    def handler(
        world: World, step: Step, robot: RobotProfile, obj: SimObject | None, _t: SimObject | None
    ) -> Transition | Problem:
        if obj is None:
            return _no_object(step)
        problem = _require(step, obj, prop, what) if prop else None
        if problem is None:
            problem = _reach_problem(step, obj, robot)
        if problem is not None:
            return problem
        if value:
            obj.flags.add(flag)
        else:
            obj.flags.discard(flag)
        return Transition(step, obj=obj, changed={obj})

    return handler


def _toggle(value: bool) -> Handler:
    def handler(
        world: World, step: Step, robot: RobotProfile, obj: SimObject | None, _t: SimObject | None
    ) -> Transition | Problem:
        if obj is None:
            return _no_object(step)
        problem = _require(step, obj, "toggleable", "cannot be switched on or off")
        if problem is None:
            problem = _reach_problem(step, obj, robot)
        if problem is not None:
            return problem
        switched = [obj]
        if obj.kind.controls is not None:
            switched.extend(world.instances_of(obj.kind.controls))
        for item in switched:
            if value:
                item.flags.add("on")
            else:
                item.flags.discard("on")
        transition = Transition(step, obj=obj, changed=set(switched), toggled=switched)
        if len(switched) > 1:
            transition.target = switched[1]
        return transition

    return handler


def _slice(
    world: World, step: Step, robot: RobotProfile, obj: SimObject | None, _t: SimObject | None
) -> Transition | Problem:
    if obj is None:
        return _no_object(step)
    problem = _require(step, obj, "sliceable", "cannot be sliced")
    if problem is not None:
        return problem
    held_tool = world.holding is not None and world.holding.kind.has("cutting_tool")
    if not held_tool and "cutting_tool" not in robot.tools:
        return _problem(
            step,
            "slicing needs a cutting tool and the robot has none",
            "pick up a knife before the slice step",
            Evidence("cutting tool", False, source="robot profile"),
        )
    obj.flags.add("sliced")
    return Transition(step, obj=obj, changed={obj})


def _fill(
    world: World, step: Step, robot: RobotProfile, obj: SimObject | None, _t: SimObject | None
) -> Transition | Problem:
    if obj is None:
        return _no_object(step)
    liquid = world.ontology.liquid(step.liquid or "water")
    if liquid is None:
        known = ", ".join(sorted(value.name for value in world.ontology.liquids.values()))
        return Problem(
            KNOWLEDGE,
            f"step {step.index} ({step.text!r}) names the liquid {step.liquid!r}, which the robot does not know",
            f"use one of the known liquids: {known}",
            (Evidence("liquid", step.liquid, source=f"plan step {step.index}"),),
        )
    problem = _require(step, obj, "fillable", "cannot hold a liquid")
    if problem is not None:
        return problem
    obj.liquids = (liquid,)
    return Transition(step, obj=obj, target=obj, liquids=(liquid,), changed={obj})


def _empty(
    world: World, step: Step, robot: RobotProfile, obj: SimObject | None, _t: SimObject | None
) -> Transition | Problem:
    if obj is None:
        return _no_object(step)
    obj.liquids = ()
    return Transition(step, obj=obj, changed={obj})


def _pour(
    world: World, step: Step, robot: RobotProfile, obj: SimObject | None, target: SimObject | None
) -> Transition | Problem:
    held = _held(world, step, obj)
    if isinstance(held, Problem):
        return held
    target = target or world.location
    liquids = held.liquids
    # NOTE: a pour whose last found object is the held vessel itself names no target.
    # The liquid is taken to stay in the vessel, which is a guess about the plan's intent.
    if not liquids or target is None or target is held:
        return Transition(step, obj=held, target=None if target is held else target, changed={held})
    held.liquids = ()
    changed = {held, target}
    if target.kind.has("fillable"):
        target.liquids = _merge(target.liquids, liquids)
    elif not target.kind.has("liquid_safe"):
        target.flags.add("wet")
    for inner in target.descendants():
        inner.flags.add("wet")
        changed.add(inner)
    return Transition(step, obj=held, target=target, liquids=liquids, changed=changed)


def _merge(first: tuple[LiquidType, ...], second: tuple[LiquidType, ...]) -> tuple[LiquidType, ...]:
    return first + tuple(liquid for liquid in second if liquid not in first)


def _release() -> Handler:
    def handler(
        world: World, step: Step, robot: RobotProfile, obj: SimObject | None, _t: SimObject | None
    ) -> Transition | Problem:
        held = _held(world, step, obj)
        if isinstance(held, Problem):
            return held
        aimed_at = world.location if world.location is not held else None
        floor = world.instances_of("Floor")[0]
        _place(held, floor)
        held.held = False
        world.holding = None
        changed = {held, floor}
        if held.kind.has("fragile"):
            held.flags.add("broken")
        spilled = held.liquids
        if spilled:
            held.liquids = ()
            floor.flags.add("wet")
        target = aimed_at if aimed_at is not None else floor
        return Transition(step, obj=held, target=target, liquids=spilled, changed=changed)

    return handler


def _break(
    world: World, step: Step, robot: RobotProfile, obj: SimObject | None, _t: SimObject | None
) -> Transition | Problem:
    if obj is None:
        return _no_object(step)
    problem = _require(step, obj, "breakable", "cannot be broken")
    if problem is not None:
        return problem
    obj.flags.add("broken")
    changed = {obj}
    if obj.liquids:
        obj.liquids = ()
    return Transition(step, obj=obj, changed=changed)


_HANDLERS: dict[str, Handler] = {
    "find": _find,
    "pick": _pick,
    "put": _put,
    "open": _set_flag("openable", "open", True, "has no door or lid to open"),
    "close": _set_flag("openable", "open", False, "has no door or lid to close"),
    "turn_on": _toggle(True),
    "turn_off": _toggle(False),
    "slice": _slice,
    "cook": _set_flag("food", "cooked", True, "is not food"),
    "fill_liquid": _fill,
    "empty_liquid": _empty,
    "pour": _pour,
    "drop": _release(),
    "throw": _release(),
    "break": _break,
    "dirty": _set_flag("", "dirty", True, ""),
    "clean": _set_flag("", "dirty", False, ""),
}


# The condition-language view of the world ------------------------------------------------

_OBJECT_ATTRIBUTES: dict[str, Attribute] = {
    "name": Attribute(STRING, lambda o: o.name),
    "type": Attribute(STRING, lambda o: o.kind.name),
    "mass_kg": Attribute(NUMBER, lambda o: o.kind.mass_kg),
    "height_m": Attribute(NUMBER, lambda o: o.kind.height_m),
    "held": Attribute(BOOL, lambda o: o.held),
    "filled": Attribute(BOOL, lambda o: bool(o.liquids)),
    "parent": Attribute(OBJECT, lambda o: o.parent),
    "contents": Attribute(list_of(OBJECT), lambda o: list(o.contents)),
    "ancestors": Attribute(list_of(OBJECT), lambda o: o.ancestors()),
    "descendants": Attribute(list_of(OBJECT), lambda o: o.descendants()),
    "liquids": Attribute(list_of(LIQUID), lambda o: list(o.liquids)),
    "accepts": Attribute(list_of(STRING), lambda o: sorted(o.kind.accepts)),
    "properties": Attribute(list_of(STRING), lambda o: sorted(o.kind.properties)),
}
_STEP_ATTRIBUTES: dict[str, Attribute] = {
    "action": Attribute(STRING, lambda s: s.action),
    "index": Attribute(NUMBER, lambda s: float(s.index)),
    "text": Attribute(STRING, lambda s: s.text),
}


def _flag_getter(flag: str) -> Any:
    return lambda o: flag in o.flags


def _property_getter(prop: str) -> Any:
    return lambda o: prop in o.kind.properties


def _liquid_property_getter(prop: str) -> Any:
    return lambda liquid: prop in liquid.properties


def world_schema(ontology: Ontology) -> Schema:
    """Build the schema of names a norm condition may read: object, liquid and step attributes."""
    objects = dict(_OBJECT_ATTRIBUTES)
    for flag in STATE_FLAGS:
        objects[flag] = Attribute(BOOL, _flag_getter(flag))
    liquids: dict[str, Attribute] = {"name": Attribute(STRING, lambda liquid: liquid.name)}
    for prop in ontology.properties:
        objects.setdefault(prop, Attribute(BOOL, _property_getter(prop)))
        liquids.setdefault(prop, Attribute(BOOL, _liquid_property_getter(prop)))
    return Schema(
        roots={},
        entities={OBJECT: objects, LIQUID: liquids, STEP: dict(_STEP_ATTRIBUTES)},
        dynamic_flags={
            OBJECT: lambda o, name: name in o.kind.properties or name in o.flags,
            LIQUID: lambda liquid, name: name in liquid.properties,
            ANY: lambda value, name: name in getattr(getattr(value, "kind", value), "properties", ()),
        },
        static_flags={OBJECT: frozenset(ontology.properties) - frozenset(STATE_FLAGS)},
    )


def object_facts(obj: SimObject) -> dict[str, JsonValue]:
    """World-state facts about one object, for a reason's `facts`."""
    facts: dict[str, JsonValue] = {"type": obj.kind.name}
    if obj.flags:
        facts["state"] = sorted(obj.flags)
    if obj.parent is not None:
        facts["in"] = obj.parent.name
    if obj.contents:
        facts["contains"] = [child.name for child in obj.contents]
    if obj.liquids:
        facts["liquids"] = [liquid.name for liquid in obj.liquids]
    if obj.held:
        facts["held"] = True
    return facts


def describe_objects(objects: Iterable[SimObject | None]) -> dict[str, JsonValue]:
    return {obj.name: object_facts(obj) for obj in objects if obj is not None}
