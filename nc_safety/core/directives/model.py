"""Task directives: the JSON form, its limits and its parsing into steps.

A directive is a task plan sent by a person or a planner: an id, the requester (id and
role), a priority, optional free text and a list of steps. A step is either a string in
the household-agent vocabulary (`"put Microwave"`, `"fillLiquid Mug water"`,
`"turn on StoveKnob"`) or a structured object (`{"action": "put", "object": "Fork",
"target": "Toaster"}`). docs/schemas/directive.schema.json is the JSON schema.

Parsing checks structure and limits only. Whether the robot has a skill for an action
and knows an object is decided later by the checker, so an unknown action still parses
and then yields an `unable` verdict that names the step.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nc_safety.core.directives.errors import DirectiveError
from nc_safety.core.justification import JsonValue

DIRECTIVE_SCHEMA = "nc_safety/directive"
DIRECTIVE_VERSION = 1

# Canonical action names, in the order docs/directives.md lists them.
ACTIONS: tuple[str, ...] = (
    "find",
    "pick",
    "put",
    "open",
    "close",
    "turn_on",
    "turn_off",
    "slice",
    "cook",
    "fill_liquid",
    "empty_liquid",
    "pour",
    "drop",
    "throw",
    "break",
    "dirty",
    "clean",
)

# Spellings seen in household-agent plans, keyed without case, spaces, `_` or `-`.
_ACTION_ALIASES: dict[str, str] = {
    "find": "find",
    "goto": "find",
    "navigate": "find",
    "pick": "pick",
    "pickup": "pick",
    "put": "put",
    "place": "put",
    "open": "open",
    "close": "close",
    "turnon": "turn_on",
    "toggleon": "turn_on",
    "switchon": "turn_on",
    "turnoff": "turn_off",
    "toggleoff": "turn_off",
    "switchoff": "turn_off",
    "slice": "slice",
    "cut": "slice",
    "cook": "cook",
    "fillliquid": "fill_liquid",
    "fill": "fill_liquid",
    "emptyliquid": "empty_liquid",
    "empty": "empty_liquid",
    "pour": "pour",
    "drop": "drop",
    "throw": "throw",
    "break": "break",
    "dirty": "dirty",
    "clean": "clean",
}

# Two-word verbs: the first word, then the particles that complete it.
_PARTICLE_VERBS: dict[str, tuple[str, ...]] = {
    "turn": ("on", "off"),
    "toggle": ("on", "off"),
    "switch": ("on", "off"),
    "pick": ("up",),
}

_TOP_LEVEL_FIELDS = frozenset({"schema", "version", "id", "requester", "priority", "text", "plan"})
_REQUESTER_FIELDS = frozenset({"id", "role"})
_STEP_FIELDS = frozenset({"action", "object", "target", "liquid"})
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.#:/@-]*$")
_MIN_PRIORITY = 0
_MAX_PRIORITY = 100
DEFAULT_PRIORITY = 50


def canonical_action(verb: str) -> str:
    """Map a verb as written to its canonical action name; unknown verbs come back lowercased."""
    key = re.sub(r"[\s_-]+", "", verb).lower()
    return _ACTION_ALIASES.get(key, verb.strip().lower())


@dataclass(frozen=True, slots=True)
class DirectiveLimits:
    """Bounds on one directive; a directive over any bound is rejected whole."""

    max_bytes: int = 65536
    """Size of the JSON text, in bytes."""
    max_steps: int = 200
    max_depth: int = 6
    """JSON nesting depth: a directive needs 3 (object, plan list, step object)."""
    max_text_chars: int = 2000
    max_name_chars: int = 128
    """Length of ids, roles, actions and object names, in characters."""
    max_step_chars: int = 256

    def validate(self) -> None:
        problems = [
            f"{name} must be a positive integer, got {value!r}"
            for name, value in (
                ("max_bytes", self.max_bytes),
                ("max_steps", self.max_steps),
                ("max_depth", self.max_depth),
                ("max_text_chars", self.max_text_chars),
                ("max_name_chars", self.max_name_chars),
                ("max_step_chars", self.max_step_chars),
            )
            if isinstance(value, bool) or not isinstance(value, int) or value < 1
        ]
        if not problems and self.max_depth < 3:
            problems.append(f"max_depth must be at least 3 to carry structured steps, got {self.max_depth}")
        if problems:
            raise DirectiveError(problems, source="directive limits")


@dataclass(frozen=True, slots=True)
class Requester:
    requester_id: str
    role: str


@dataclass(frozen=True, slots=True)
class Step:
    """One plan step with its arguments as written; names are resolved against the ontology later."""

    index: int
    """Position in the plan, 0-based."""
    action: str
    """Canonical action name, or the lowercased verb when it is not in the vocabulary."""
    object: str | None = None
    """The object acted on (found, picked, opened, toggled, sliced, filled)."""
    target: str | None = None
    """Where the held object or liquid goes (`put`, `pour`)."""
    liquid: str | None = None
    """Liquid name for `fill_liquid`."""
    text: str = ""
    """The step as written, for messages."""

    def to_json(self) -> dict[str, JsonValue]:
        record: dict[str, JsonValue] = {"action": self.action}
        if self.object is not None:
            record["object"] = self.object
        if self.target is not None:
            record["target"] = self.target
        if self.liquid is not None:
            record["liquid"] = self.liquid
        return record


@dataclass(frozen=True, slots=True)
class Directive:
    directive_id: str
    requester: Requester
    steps: tuple[Step, ...]
    priority: int = DEFAULT_PRIORITY
    """0 (lowest) to 100 (highest)."""
    text: str = ""

    def to_json(self) -> dict[str, JsonValue]:
        record: dict[str, JsonValue] = {
            "schema": DIRECTIVE_SCHEMA,
            "version": DIRECTIVE_VERSION,
            "id": self.directive_id,
            "requester": {"id": self.requester.requester_id, "role": self.requester.role},
            "priority": self.priority,
            "plan": [step.to_json() for step in self.steps],
        }
        if self.text:
            record["text"] = self.text
        return record


def parse_directive_json(raw: str | bytes, limits: DirectiveLimits | None = None) -> Directive:
    """Parse directive JSON text.

    Raises DirectiveError listing every problem: invalid JSON, a limit exceeded, a missing
    or unknown field, or a value of the wrong type.
    """
    limits = limits or DirectiveLimits()
    size = len(raw.encode("utf-8")) if isinstance(raw, str) else len(raw)
    if size > limits.max_bytes:
        raise DirectiveError([f"the JSON text is {size} bytes, more than max_bytes={limits.max_bytes}"])
    try:
        data = json.loads(raw, parse_constant=_reject_constant)
    except RecursionError:
        raise DirectiveError([f"the JSON nesting is deeper than max_depth={limits.max_depth}"]) from None
    except (ValueError, UnicodeDecodeError) as error:
        raise DirectiveError([f"the text is not valid JSON ({error})"]) from None
    return parse_directive(data, limits)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_directive(data: object, limits: DirectiveLimits | None = None) -> Directive:
    """Build a directive from decoded JSON; raises DirectiveError listing every problem."""
    limits = limits or DirectiveLimits()
    depth = _nesting_depth(data, limits.max_depth + 1)
    if depth > limits.max_depth:
        raise DirectiveError([f"the JSON nesting is deeper than max_depth={limits.max_depth}"])
    if not isinstance(data, dict):
        raise DirectiveError([f"a directive must be a JSON object, got {type(data).__name__}"])

    problems: list[str] = []
    unknown = sorted(set(data) - _TOP_LEVEL_FIELDS)
    if unknown:
        problems.append(f"unknown field(s) {unknown}; allowed: {sorted(_TOP_LEVEL_FIELDS)}")
    if "schema" in data and data["schema"] != DIRECTIVE_SCHEMA:
        problems.append(f"schema must be {DIRECTIVE_SCHEMA!r}, got {data['schema']!r}")
    if "version" in data and data["version"] != DIRECTIVE_VERSION:
        problems.append(f"version must be {DIRECTIVE_VERSION}, got {data['version']!r}")

    directive_id = _name(data.get("id"), "id", limits, problems)
    requester = _requester(data.get("requester"), limits, problems)
    priority = _priority(data.get("priority", DEFAULT_PRIORITY), problems)
    text = data.get("text", "")
    if not isinstance(text, str):
        problems.append(f"text must be a string, got {type(text).__name__}")
        text = ""
    elif len(text) > limits.max_text_chars:
        problems.append(f"text has {len(text)} characters, more than max_text_chars={limits.max_text_chars}")
    steps = _plan(data.get("plan"), limits, problems)

    if problems:
        raise DirectiveError(problems)
    return Directive(
        directive_id=directive_id, requester=requester, steps=steps, priority=priority, text=text
    )


def _nesting_depth(value: object, stop_at: int) -> int:
    """Return the nesting depth of lists and objects, counting no further than `stop_at`."""
    deepest = 0
    pending: list[tuple[object, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            if deepest >= stop_at:
                return deepest
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
    return deepest


def _name(value: object, label: str, limits: DirectiveLimits, problems: list[str]) -> str:
    if value is None:
        problems.append(f"{label} is missing")
        return ""
    if not isinstance(value, str):
        problems.append(f"{label} must be a string, got {type(value).__name__}")
        return ""
    if len(value) > limits.max_name_chars:
        problems.append(
            f"{label} has {len(value)} characters, more than max_name_chars={limits.max_name_chars}"
        )
        return ""
    if not _NAME_PATTERN.match(value):
        problems.append(
            f"{label} {value!r} is invalid: use letters, digits, spaces and _ . # : / @ - (starting with a letter or digit)"
        )
        return ""
    return value


def _requester(value: object, limits: DirectiveLimits, problems: list[str]) -> Requester:
    if value is None:
        problems.append('requester is missing: give {"id": ..., "role": ...}')
        return Requester("", "")
    if not isinstance(value, dict):
        problems.append(f"requester must be an object with id and role, got {type(value).__name__}")
        return Requester("", "")
    unknown = sorted(set(value) - _REQUESTER_FIELDS)
    if unknown:
        problems.append(f"unknown requester field(s) {unknown}; allowed: {sorted(_REQUESTER_FIELDS)}")
    requester_id = _name(value.get("id"), "requester.id", limits, problems)
    role = _name(value.get("role"), "requester.role", limits, problems)
    return Requester(requester_id, role)


def _priority(value: object, problems: list[str]) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        problems.append(f"priority must be an integer from {_MIN_PRIORITY} to {_MAX_PRIORITY}, got {value!r}")
        return DEFAULT_PRIORITY
    if not _MIN_PRIORITY <= value <= _MAX_PRIORITY:
        problems.append(f"priority {value} is outside {_MIN_PRIORITY}..{_MAX_PRIORITY}")
        return DEFAULT_PRIORITY
    return value


def _plan(value: object, limits: DirectiveLimits, problems: list[str]) -> tuple[Step, ...]:
    if value is None:
        problems.append("plan is missing: give a list of steps")
        return ()
    if not isinstance(value, list):
        problems.append(f"plan must be a list of steps, got {type(value).__name__}")
        return ()
    if not value:
        problems.append("plan is empty: give at least one step")
        return ()
    if len(value) > limits.max_steps:
        problems.append(f"plan has {len(value)} steps, more than max_steps={limits.max_steps}")
        return ()
    steps: list[Step] = []
    for index, item in enumerate(value):
        step = _step(index, item, limits, problems)
        if step is not None:
            steps.append(step)
    return tuple(steps)


def _step(index: int, item: object, limits: DirectiveLimits, problems: list[str]) -> Step | None:
    if isinstance(item, str):
        if len(item) > limits.max_step_chars:
            problems.append(
                f"step {index} has {len(item)} characters, more than max_step_chars={limits.max_step_chars}"
            )
            return None
        return parse_step_text(index, item, problems)
    if isinstance(item, dict):
        return _structured_step(index, item, limits, problems)
    problems.append(f"step {index} must be a string or an object, got {type(item).__name__}")
    return None


def parse_step_text(index: int, text: str, problems: list[str]) -> Step | None:
    """Split a vocabulary step such as `fillLiquid Mug water` into action and arguments."""
    words = text.split()
    if not words:
        problems.append(f"step {index} is empty")
        return None
    verb_words = 1
    particles = _PARTICLE_VERBS.get(words[0].lower())
    if particles and len(words) > 1 and words[1].lower() in particles:
        verb_words = 2
    action = canonical_action("".join(words[:verb_words]))
    rest = words[verb_words:]
    argument = " ".join(rest) if rest else None
    if action in ("put", "pour"):
        return Step(index=index, action=action, target=argument, text=text)
    if action == "fill_liquid" and len(rest) >= 2:
        return Step(index=index, action=action, object=" ".join(rest[:-1]), liquid=rest[-1], text=text)
    return Step(index=index, action=action, object=argument, text=text)


def _structured_step(
    index: int, item: Mapping[str, object], limits: DirectiveLimits, problems: list[str]
) -> Step | None:
    unknown = sorted(set(item) - _STEP_FIELDS)
    if unknown:
        problems.append(f"step {index} has unknown field(s) {unknown}; allowed: {sorted(_STEP_FIELDS)}")
        return None
    before = len(problems)
    action = _name(item.get("action"), f"step {index} action", limits, problems)
    values: dict[str, str | None] = {}
    for key in ("object", "target", "liquid"):
        raw = item.get(key)
        values[key] = None if raw is None else _name(raw, f"step {index} {key}", limits, problems)
    if len(problems) > before:
        return None
    text = " ".join(part for part in (action, values["object"], values["target"], values["liquid"]) if part)
    return Step(
        index=index,
        action=canonical_action(action),
        object=values["object"],
        target=values["target"],
        liquid=values["liquid"],
        text=text,
    )
