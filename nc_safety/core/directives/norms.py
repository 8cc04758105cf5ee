"""Norm packs: declarative rules over the simulated plan, loaded from `config/norms/*.yaml`.

Each norm has an id (its rule id is `directive.norm.<id>`), a description, a reason
kind, a severity, who may override it (`refutable_by`), a condition in the condition
language and message, consequence and remedy templates. Its `scope` sets when the
condition is evaluated:

- `transition`: after each step whose action is listed in `actions` (every step when
  `actions` is absent), with `step`, `obj`, `target`, `liquid`, `liquids`, `held` and `location`.
- `state`: on every object a step changed, with `obj` and `step`; the norm fires when
  the condition becomes true for an object.
- `persist`: a timing norm over `obj`; it fires when the condition has held for more
  than `within_steps` steps, or still holds when the plan ends (`at_end`, default true).
  "A heat source turned on must be turned off within N steps" is a persist norm.
- `repeat`: a transition condition keyed by `obj` that fires when it matches `count`
  times within `within_steps` steps.
- `final`: evaluated once on every object after the last step.

docs/directives.md documents the fields and the condition language.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from nc_safety.core.directives.conditions import (
    NUMBER,
    Condition,
    Schema,
    Template,
    compile_condition,
    compile_template,
    list_of,
)
from nc_safety.core.directives.errors import DirectiveError
from nc_safety.core.directives.model import ACTIONS
from nc_safety.core.directives.world import LIQUID, OBJECT, STEP, SimObject, Transition, World
from nc_safety.core.verdict import ReasonKind, RefutableBy, Severity

SCOPES = ("transition", "state", "persist", "repeat", "final")
_NORM_KEYS = frozenset(
    {
        "id",
        "description",
        "kind",
        "severity",
        "refutable_by",
        "scope",
        "actions",
        "when",
        "within_steps",
        "count",
        "at_end",
        "enabled",
        "supersedes",
        "message",
        "consequence",
        "remedy",
    }
)
_REQUIRED = (
    "id",
    "description",
    "kind",
    "severity",
    "refutable_by",
    "when",
    "message",
    "consequence",
    "remedy",
)
_NORM_ID = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_MAX_WINDOW_STEPS = 1000

_TRANSITION_ROOTS = {
    "step": STEP,
    "obj": OBJECT,
    "target": OBJECT,
    "liquid": LIQUID,
    "liquids": list_of(LIQUID),
    "held": OBJECT,
    "location": OBJECT,
}
_OBJECT_ROOTS = {"obj": OBJECT, "step": STEP}
_ROOTS_BY_SCOPE: dict[str, dict[str, str]] = {
    "transition": _TRANSITION_ROOTS,
    # `since` is the step where the counted events or the held condition began.
    "repeat": {**_TRANSITION_ROOTS, "since": NUMBER},
    "state": _OBJECT_ROOTS,
    "persist": {**_OBJECT_ROOTS, "since": NUMBER},
    "final": _OBJECT_ROOTS,
}


@dataclass(frozen=True, slots=True)
class Norm:
    norm_id: str
    description: str
    kind: ReasonKind
    severity: Severity
    refutable_by: RefutableBy
    scope: str
    when: Condition
    message: Template
    consequence: Template
    remedy: Template
    actions: frozenset[str] | None = None
    """Actions that trigger a transition or repeat norm; None means every action."""
    within_steps: int = 0
    count: int = 0
    at_end: bool = True
    supersedes: frozenset[str] = frozenset()
    """Norms this more specific norm replaces when both fire on the same object at one step."""
    guard: str | None = None
    """An ontology property `obj` must have for the condition to hold, read from a leading
    `obj.<property> and ...`; objects without it are skipped without evaluating."""
    source: str = ""

    @property
    def rule_id(self) -> str:
        return f"directive.norm.{self.norm_id}"


@dataclass(frozen=True, slots=True)
class Violation:
    """A norm broken at a plan step, with the bindings its templates render from."""

    norm: Norm
    step: int
    env: Mapping[str, Any]
    subject: SimObject | None
    since_step: int | None = None
    """For timing norms: the step at which the condition started to hold."""


@dataclass(slots=True)
class NormTracker:
    """Timing state of one plan check: which conditions hold since when, and event counts."""

    holding: dict[tuple[str, str], int] = field(default_factory=dict)
    """(norm id, object name) -> step where a state or persist condition became true."""
    reported: set[tuple[str, str]] = field(default_factory=set)
    events: dict[tuple[str, str], list[int]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class NormSet:
    """Every enabled norm, grouped by scope for fast evaluation."""

    norms: tuple[Norm, ...]
    sources: tuple[str, ...] = ()

    def by_scope(self, scope: str) -> tuple[Norm, ...]:
        return tuple(norm for norm in self.norms if norm.scope == scope)

    def rule_ids(self) -> tuple[str, ...]:
        return tuple(norm.rule_id for norm in self.norms)


class NormEvaluator:
    """Evaluates a norm set over one plan, step by step."""

    def __init__(self, norms: NormSet) -> None:
        self.transition = norms.by_scope("transition")
        self.repeat = norms.by_scope("repeat")
        self.state = norms.by_scope("state")
        self.persist = norms.by_scope("persist")
        self.final = norms.by_scope("final")
        self._persist_by_id = {norm.norm_id: norm for norm in self.persist}
        self.tracker = NormTracker()

    def after_step(self, world: World, transition: Transition) -> list[Violation]:
        index = transition.step.index
        env = {
            "step": transition.step,
            "obj": transition.obj,
            "target": transition.target,
            "liquid": transition.liquids[0] if transition.liquids else None,
            "liquids": list(transition.liquids),
            "held": world.holding,
            "location": world.location,
        }
        action = transition.step.action
        found: list[Violation] = []
        for norm in self.transition:
            if (norm.actions is None or action in norm.actions) and norm.when.holds(env):
                found.append(Violation(norm, index, env, transition.obj))
        for norm in self.repeat:
            if (norm.actions is None or action in norm.actions) and norm.when.holds(env):
                found.extend(self._count_event(norm, index, env, transition.obj))
        for obj in sorted(transition.changed, key=lambda item: item.name):
            object_env = {"obj": obj, "step": transition.step}
            properties = obj.kind.properties
            for norm in self.state:
                if norm.guard is None or norm.guard in properties:
                    found.extend(self._state(norm, index, object_env, obj))
            for norm in self.persist:
                if norm.guard is None or norm.guard in properties:
                    self._track(norm, index, object_env, obj)
        found.extend(self._overdue(world, index))
        return _drop_superseded(found)

    def at_end(self, world: World, last_step: int) -> list[Violation]:
        found: list[Violation] = []
        for norm in self.persist:
            if not norm.at_end:
                continue
            for obj in world.objects.values():
                key = (norm.norm_id, obj.name)
                if key in self.tracker.holding and key not in self.tracker.reported:
                    self.tracker.reported.add(key)
                    since = self.tracker.holding[key]
                    env = {"obj": obj, "step": None, "since": float(since)}
                    found.append(Violation(norm, last_step, env, obj, since_step=since))
        for norm in self.final:
            for obj in sorted(world.objects.values(), key=lambda item: item.name):
                env = {"obj": obj, "step": None}
                if norm.when.holds(env):
                    found.append(Violation(norm, last_step, env, obj))
        return _drop_superseded(found)

    def _state(self, norm: Norm, index: int, env: Mapping[str, Any], obj: SimObject) -> list[Violation]:
        key = (norm.norm_id, obj.name)
        if norm.when.holds(env):
            if key in self.tracker.holding:
                return []
            self.tracker.holding[key] = index
            return [Violation(norm, index, env, obj)]
        self.tracker.holding.pop(key, None)
        return []

    def _track(self, norm: Norm, index: int, env: Mapping[str, Any], obj: SimObject) -> None:
        key = (norm.norm_id, obj.name)
        if norm.when.holds(env):
            self.tracker.holding.setdefault(key, index)
        else:
            self.tracker.holding.pop(key, None)
            self.tracker.reported.discard(key)

    def _overdue(self, world: World, index: int) -> list[Violation]:
        found: list[Violation] = []
        for key, since in list(self.tracker.holding.items()):
            norm = self._persist_by_id.get(key[0])
            if norm is None or key in self.tracker.reported or index - since < norm.within_steps:
                continue
            obj = world.objects.get(key[1])
            if obj is None:
                continue
            self.tracker.reported.add(key)
            env = {"obj": obj, "step": None, "since": float(since)}
            found.append(Violation(norm, index, env, obj, since_step=since))
        return found

    def _count_event(
        self, norm: Norm, index: int, env: Mapping[str, Any], obj: SimObject | None
    ) -> list[Violation]:
        key = (norm.norm_id, obj.name if obj is not None else "")
        window = [step for step in self.tracker.events.get(key, []) if index - step < norm.within_steps]
        window.append(index)
        self.tracker.events[key] = window
        if len(window) < norm.count or key in self.tracker.reported:
            return []
        self.tracker.reported.add(key)
        return [Violation(norm, index, {**env, "since": float(window[0])}, obj, since_step=window[0])]


def _drop_superseded(found: list[Violation]) -> list[Violation]:
    if len(found) < 2:
        return found
    replaced = {
        (superseded, id(violation.subject)) for violation in found for superseded in violation.norm.supersedes
    }
    return [
        violation for violation in found if (violation.norm.norm_id, id(violation.subject)) not in replaced
    ]


# Loading ---------------------------------------------------------------------------------


def load_norm_packs(paths: Sequence[Path | str], schema: Schema) -> NormSet:
    """Load norm pack files (or every `*.yaml` in a directory) and validate them all.

    Raises DirectiveError listing every problem in every file, each with the file and norm id.
    """
    files: list[Path] = []
    problems: list[str] = []
    for raw_path in paths:
        path = Path(raw_path)
        if path.is_dir():
            found = sorted(path.glob("*.yaml"))
            if not found:
                problems.append(f"{path}: the directory holds no *.yaml norm packs")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            problems.append(f"{path}: no such file or directory")
    norms: list[Norm] = []
    for path in files:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as error:
            problems.append(f"{path}: cannot read the norm pack: {error}")
            continue
        norms.extend(_pack(data, str(path), schema, problems))
    _check_ids(norms, problems)
    if problems:
        raise DirectiveError(problems, source="norm packs")
    return NormSet(
        norms=tuple(norm for norm in norms if norm is not None), sources=tuple(str(p) for p in files)
    )


def norm_set_from_mapping(data: object, schema: Schema, source: str = "norm pack") -> NormSet:
    """Build a norm set from one decoded pack; raises DirectiveError listing every problem."""
    problems: list[str] = []
    norms = _pack(data, source, schema, problems)
    _check_ids(norms, problems)
    if problems:
        raise DirectiveError(problems, source="norm packs")
    return NormSet(norms=tuple(norms), sources=(source,))


def _check_ids(norms: Sequence[Norm], problems: list[str]) -> None:
    seen: dict[str, str] = {}
    for norm in norms:
        if norm.norm_id in seen:
            problems.append(
                f"{norm.source}: norm id {norm.norm_id!r} is also defined in {seen[norm.norm_id]}"
            )
        seen[norm.norm_id] = norm.source
    for norm in norms:
        unknown = sorted(norm.supersedes - set(seen))
        if unknown:
            problems.append(f"{norm.source}: norm {norm.norm_id!r} supersedes unknown norm(s) {unknown}")


def _pack(data: object, source: str, schema: Schema, problems: list[str]) -> list[Norm]:
    if not isinstance(data, dict) or not isinstance(data.get("norms"), list):
        problems.append(f"{source}: a norm pack is a mapping with a `norms` list")
        return []
    unknown = sorted(set(data) - {"pack", "version", "norms"})
    if unknown:
        problems.append(
            f"{source}: unknown top-level key(s) {unknown}; allowed: ['norms', 'pack', 'version']"
        )
    if data.get("version", 1) != 1:
        problems.append(f"{source}: version must be 1, got {data.get('version')!r}")
    norms: list[Norm] = []
    for position, entry in enumerate(data["norms"]):
        norm = _norm(entry, f"{source}: norm #{position}", source, schema, problems)
        if norm is not None:
            norms.append(norm)
    return norms


def _norm(entry: object, label: str, source: str, schema: Schema, problems: list[str]) -> Norm | None:
    if not isinstance(entry, dict):
        problems.append(f"{label}: must be a mapping")
        return None
    if isinstance(entry.get("id"), str):
        label = f"{source}: norm {entry['id']!r}"
    before = len(problems)
    unknown = sorted(set(entry) - _NORM_KEYS)
    if unknown:
        problems.append(f"{label}: unknown key(s) {unknown}; allowed: {sorted(_NORM_KEYS)}")
    missing = [key for key in _REQUIRED if key not in entry]
    if missing:
        problems.append(f"{label}: missing key(s) {missing}")
        return None

    norm_id = entry["id"]
    if not isinstance(norm_id, str) or not _NORM_ID.match(norm_id):
        problems.append(f"{label}: id must be lowercase letters, digits and _ (at most 64), got {norm_id!r}")
    kind = _enum(ReasonKind, entry["kind"], f"{label}: kind", problems)
    severity = _enum(Severity, entry["severity"], f"{label}: severity", problems)
    refutable_by = _enum(RefutableBy, entry["refutable_by"], f"{label}: refutable_by", problems)
    scope = entry.get("scope", "transition")
    if scope not in SCOPES:
        problems.append(f"{label}: scope must be one of {list(SCOPES)}, got {scope!r}")
        scope = "transition"
    actions = _actions(entry.get("actions"), scope, label, problems)
    within_steps = _count(entry, "within_steps", label, problems, required=scope in ("persist", "repeat"))
    count = _count(entry, "count", label, problems, required=scope == "repeat")
    at_end = entry.get("at_end", True)
    if not isinstance(at_end, bool):
        problems.append(f"{label}: at_end must be true or false, got {at_end!r}")
    enabled = entry.get("enabled", True)
    if not isinstance(enabled, bool):
        problems.append(f"{label}: enabled must be true or false, got {enabled!r}")
    supersedes = entry.get("supersedes", [])
    if not isinstance(supersedes, list) or not all(isinstance(item, str) for item in supersedes):
        problems.append(f"{label}: supersedes must be a list of norm ids, got {supersedes!r}")
        supersedes = []
    description = entry["description"]
    if not isinstance(description, str) or not description.strip():
        problems.append(f"{label}: description must be a non-empty string")

    scoped = schema.with_roots(_ROOTS_BY_SCOPE[scope])
    when = _compile(compile_condition, entry["when"], scoped, f"{label}: when", problems)
    templates = {
        key: _compile(compile_template, entry[key], scoped, f"{label}: {key}", problems)
        for key in ("message", "consequence", "remedy")
    }
    if len(problems) > before or when is None or kind is None or severity is None or refutable_by is None:
        return None
    if not enabled:
        return None
    message, consequence, remedy = templates["message"], templates["consequence"], templates["remedy"]
    if message is None or consequence is None or remedy is None:
        return None
    return Norm(
        norm_id=norm_id,
        description=description,
        kind=kind,
        severity=severity,
        refutable_by=refutable_by,
        scope=scope,
        when=when,
        message=message,
        consequence=consequence,
        remedy=remedy,
        actions=actions,
        within_steps=within_steps,
        count=count,
        at_end=at_end,
        supersedes=frozenset(supersedes),
        guard=_guard_property(when.source, schema),
        source=source,
    )


_LEADING_PROPERTY = re.compile(r"^\s*obj\.([a-z_][a-z0-9_]*)\s+and\s")


def _guard_property(text: str, schema: Schema) -> str | None:
    """Return the static property of a leading `obj.<property> and`, or None when there is none."""
    match = _LEADING_PROPERTY.match(text)
    if match is None or match.group(1) not in schema.static_flags.get(OBJECT, frozenset()):
        return None
    return match.group(1)


def _enum(enum_type: Any, value: object, label: str, problems: list[str]) -> Any:
    try:
        return enum_type(value)
    except ValueError:
        allowed = [member.value for member in enum_type]
        problems.append(f"{label} must be one of {allowed}, got {value!r}")
        return None


def _actions(value: object, scope: str, label: str, problems: list[str]) -> frozenset[str] | None:
    if value is None:
        return None
    if scope not in ("transition", "repeat"):
        problems.append(f"{label}: `actions` applies only to transition and repeat norms, not {scope}")
        return None
    if not isinstance(value, list) or not value or not all(isinstance(item, str) for item in value):
        problems.append(f"{label}: actions must be a non-empty list of actions, got {value!r}")
        return None
    unknown = sorted(set(value) - set(ACTIONS))
    if unknown:
        problems.append(f"{label}: actions lists unknown action(s) {unknown}; known: {list(ACTIONS)}")
    return frozenset(value)


def _count(entry: Mapping[str, object], key: str, label: str, problems: list[str], required: bool) -> int:
    value = entry.get(key)
    if value is None:
        if required:
            problems.append(f"{label}: {key} is required for this scope")
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= _MAX_WINDOW_STEPS:
        problems.append(f"{label}: {key} must be an integer from 1 to {_MAX_WINDOW_STEPS}, got {value!r}")
        return 0
    return value


def _compile(compiler: Any, text: object, schema: Schema, label: str, problems: list[str]) -> Any:
    try:
        return compiler(text, schema)
    except DirectiveError as error:
        problems.extend(f"{label}: {problem}" for problem in error.problems)
        return None
