"""The directive checker: parses a directive, simulates its plan and decides.

`DirectiveChecker.check_json` returns a `Decision` whose reasons carry the rule ids
`directive.invalid`, `directive.felicity.{knowledge,capacity,timing,role}` and
`directive.norm.<id>`, each with its plan step and the world-state facts behind it. The
verdict is the most restrictive of the reasons; `first_failed` in the decision output
names the condition that failed at the earliest step.

Directives from one requester within `shared_state_window_s` share one simulated world:
an accepted directive leaves its final state for the next one, so harm split across
several directives is caught and the reason names the earlier directive that set it up.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from nc_safety.core.canonical import sha256_hex
from nc_safety.core.directives.errors import DirectiveError
from nc_safety.core.directives.felicity import (
    CONDITION_ORDER,
    RULE_INVALID,
    CheckContext,
    ClassRule,
    RolePolicy,
    TimingPolicy,
    parse_clock,
    plan_timing_reasons,
    problem_reason,
    quiet_hours_reason,
    role_reason,
)
from nc_safety.core.directives.model import ACTIONS, Directive, DirectiveLimits, parse_directive_json
from nc_safety.core.directives.norms import NormEvaluator, NormSet, Violation, load_norm_packs
from nc_safety.core.directives.ontology import Ontology, load_ontology
from nc_safety.core.directives.world import (
    Problem,
    RobotProfile,
    SimObject,
    World,
    describe_objects,
    world_schema,
)
from nc_safety.core.justification import Decision, Evidence, JsonValue, Reason, combine
from nc_safety.core.verdict import ReasonKind, RefutableBy, Severity, Verdict

COMMAND_KIND = "directive"
_PAST_TENSE = {
    "put": "placed",
    "turn_on": "switched on",
    "turn_off": "switched off",
    "fill_liquid": "filled",
    "pour": "poured on",
    "open": "opened",
    "close": "closed",
    "pick": "picked up",
    "slice": "sliced",
    "drop": "dropped",
    "throw": "thrown",
}
_CONFIG_KEYS = frozenset(
    {"version", "robot", "roles", "action_classes", "class_rules", "timing", "sessions", "limits"}
)


@dataclass(frozen=True, slots=True)
class CheckerConfig:
    robot: RobotProfile
    roles: RolePolicy
    timing: TimingPolicy = field(default_factory=TimingPolicy)
    limits: DirectiveLimits = field(default_factory=DirectiveLimits)
    shared_state_window_s: float = 600.0
    """Directives from one requester within this many seconds share a world; 0 disables sharing."""
    max_requesters: int = 256

    def validate(self) -> None:
        problems = [*self.robot.problems(), *self.roles.problems(), *self.timing.problems()]
        if not 0.0 <= self.shared_state_window_s <= 86400.0:
            problems.append(
                f"shared_state_window_s must be in [0, 86400] s, got {self.shared_state_window_s!r}"
            )
        if not 1 <= self.max_requesters <= 100000:
            problems.append(f"max_requesters must be in 1..100000, got {self.max_requesters!r}")
        try:
            self.limits.validate()
        except DirectiveError as error:
            problems.extend(error.problems)
        if problems:
            raise DirectiveError(problems, source="directive checker configuration")


@dataclass(frozen=True, slots=True)
class FirstFailure:
    condition: str
    """`parse`, `knowledge`, `capacity`, `timing`, `role` or `normative`."""
    rule_id: str
    step: int | None

    def to_json(self) -> dict[str, JsonValue]:
        return {"condition": self.condition, "rule_id": self.rule_id, "step": self.step}


@dataclass(frozen=True, slots=True)
class DirectiveResult:
    decision: Decision
    directive: Directive | None
    """The parsed directive; None when it did not parse."""
    first_failed: FirstFailure | None


@dataclass(slots=True)
class _Session:
    world: World
    updated_at: float
    directive_ids: list[str] = field(default_factory=list)


class DirectiveChecker:
    """Checks directives against felicity conditions and norms; keeps per-requester worlds."""

    def __init__(self, ontology: Ontology, norms: NormSet, config: CheckerConfig) -> None:
        config.validate()
        self.ontology = ontology
        self.norms = norms
        self.config = config
        self._sessions: dict[str, _Session] = {}
        self._lock = threading.Lock()
        self.policy_hash = sha256_hex(
            {
                "ontology": sorted(ontology.types),
                "norms": [(norm.rule_id, norm.when.source, norm.scope) for norm in norms.norms],
                "config": repr(config),
            }
        )

    @classmethod
    def from_files(
        cls,
        ontology_path: Path | str | None = None,
        norm_paths: Sequence[Path | str] | None = None,
        config_path: Path | str | None = None,
        **overrides: Any,
    ) -> DirectiveChecker:
        """Load the ontology, norm packs and settings (defaults: the bundled config/ files).

        `overrides` replace CheckerConfig fields, for example `robot=RobotProfile(...)`.
        """
        config_dir = default_config_dir()
        ontology = load_ontology(ontology_path or config_dir / "ontology.yaml")
        norms = load_norm_packs(norm_paths or [config_dir / "norms"], world_schema(ontology))
        config = load_checker_config(config_path or config_dir / "directives.yaml")
        if overrides:
            config = replace(config, **overrides)
        return cls(ontology, norms, config)

    # Checking.
    def check_json(self, raw: str | bytes, context: CheckContext) -> DirectiveResult:
        """Parse and check one directive; a parse failure yields an `unable` decision, never an exception."""
        try:
            directive = parse_directive_json(raw, self.config.limits)
        except DirectiveError as error:
            return self._invalid(error.problems, _best_effort_id(raw), context)
        return self.check(directive, context)

    def check(self, directive: Directive, context: CheckContext) -> DirectiveResult:
        requester = directive.requester.requester_id
        with self._lock:
            session = self._session(requester, context.now_s)
            world = session.world.copy() if session is not None else World(self.ontology)
        world.directive_id = directive.directive_id

        reasons = plan_timing_reasons(directive, context, self.config.timing)
        completed = self._simulate(directive, world, context, reasons)
        decision = combine(
            stamp=context.now_s,
            wall_time=context.wall_time,
            command_kind=COMMAND_KIND,
            command_id=directive.directive_id,
            requester=requester,
            reasons=reasons,
            policy_hash=self.policy_hash,
        )
        first = first_failure(reasons)
        output: dict[str, JsonValue] = {"role": directive.requester.role, "steps": len(directive.steps)}
        if first is None:
            output["directive"] = directive.to_json()
        else:
            output["first_failed"] = first.to_json()
        decision = replace(decision, output=output)

        if decision.verdict.forwards and completed:
            self._store(requester, directive.directive_id, world, context.now_s)
        return DirectiveResult(decision=decision, directive=directive, first_failed=first)

    def _simulate(
        self, directive: Directive, world: World, context: CheckContext, reasons: list[Reason]
    ) -> bool:
        """Run the plan in `world`, appending reasons; returns whether every step could run."""
        evaluator = NormEvaluator(self.norms)
        config = self.config
        for step in directive.steps:
            result = world.apply(step, config.robot)
            if isinstance(result, Problem):
                reasons.append(problem_reason(result, step))
                return False
            transition = world.finish_step(result)
            role = role_reason(transition, directive, config.roles)
            if role is not None:
                reasons.append(role)
            quiet = quiet_hours_reason(transition, directive, context, config.timing)
            if quiet is not None:
                reasons.append(quiet)
            for violation in evaluator.after_step(world, transition):
                reasons.append(self._norm_reason(violation, directive))
        last = directive.steps[-1].index if directive.steps else 0
        for violation in evaluator.at_end(world, last):
            reasons.append(self._norm_reason(violation, directive))
        return True

    def _norm_reason(self, violation: Violation, directive: Directive) -> Reason:
        norm = violation.norm
        env = violation.env
        message = norm.message.render(env)
        involved = _involved(violation)
        earlier = _earlier_changes(involved, directive.directive_id)
        if earlier:
            first = earlier[0]
            message += (
                f" The {first['object']} was {_PAST_TENSE.get(str(first['action']), str(first['action']))}"
                f" by earlier directive {first['directive']!r} (step {first['step']})."
            )
        facts: dict[str, JsonValue] = {"objects": describe_objects(involved)}
        if earlier:
            facts["earlier_directives"] = list(earlier)
        if violation.since_step is not None:
            facts["since_step"] = violation.since_step
        step = env.get("step")
        evidence = [
            Evidence(
                "plan step",
                getattr(step, "text", "end of plan"),
                source=f"directive {directive.directive_id}",
            )
        ]
        evidence.extend(
            Evidence(
                f"{item['object']} {item['action']}",
                str(item["directive"]),
                source=f"directive {item['directive']} step {item['step']}",
            )
            for item in earlier
        )
        return Reason(
            rule_id=norm.rule_id,
            kind=norm.kind,
            verdict=Verdict.REFUSE,
            severity=norm.severity,
            message=message,
            evidence=tuple(evidence),
            consequence=norm.consequence.render(env),
            refutable_by=norm.refutable_by,
            remedy=norm.remedy.render(env),
            step=violation.step,
            facts=facts,
        )

    def _invalid(self, problems: Sequence[str], command_id: str, context: CheckContext) -> DirectiveResult:
        listed = list(problems[:10])
        reason = Reason(
            rule_id=RULE_INVALID,
            kind=ReasonKind.FEASIBILITY,
            verdict=Verdict.UNABLE,
            severity=Severity.MEDIUM,
            message=f"The directive is invalid: {listed[0]}" if listed else "The directive is invalid.",
            evidence=tuple(Evidence("problem", problem, source="directive parser") for problem in listed),
            consequence="Nothing is started: the robot does not guess at a malformed directive.",
            refutable_by=RefutableBy.NONE,
            remedy="Fix the listed problems and resend; docs/schemas/directive.schema.json is the format.",
            facts={"problems": len(problems)},
        )
        decision = combine(
            stamp=context.now_s,
            wall_time=context.wall_time,
            command_kind=COMMAND_KIND,
            command_id=command_id,
            requester="",
            reasons=[reason],
            policy_hash=self.policy_hash,
        )
        first = FirstFailure("parse", RULE_INVALID, None)
        decision = replace(decision, output={"first_failed": first.to_json()})
        return DirectiveResult(decision=decision, directive=None, first_failed=first)

    # Sessions.
    def _session(self, requester: str, now_s: float) -> _Session | None:
        session = self._sessions.get(requester)
        if session is None:
            return None
        age = now_s - session.updated_at
        if self.config.shared_state_window_s <= 0.0 or not 0.0 <= age <= self.config.shared_state_window_s:
            del self._sessions[requester]
            return None
        return session

    def _store(self, requester: str, directive_id: str, world: World, now_s: float) -> None:
        if self.config.shared_state_window_s <= 0.0:
            return
        with self._lock:
            session = self._sessions.pop(requester, None)
            ids = [*(session.directive_ids[-15:] if session else []), directive_id]
            self._sessions[requester] = _Session(world=world, updated_at=now_s, directive_ids=ids)
            while len(self._sessions) > self.config.max_requesters:
                oldest = min(self._sessions, key=lambda key: self._sessions[key].updated_at)
                del self._sessions[oldest]

    def forget(self, requester: str | None = None) -> None:
        """Drop the shared world of one requester, or of all requesters."""
        with self._lock:
            if requester is None:
                self._sessions.clear()
            else:
                self._sessions.pop(requester, None)

    def session_directives(self, requester: str) -> tuple[str, ...]:
        """Ids of the accepted directives whose effects the requester's shared world holds."""
        with self._lock:
            session = self._sessions.get(requester)
            return tuple(session.directive_ids) if session else ()

    def session_count(self) -> int:
        with self._lock:
            return len(self._sessions)


def first_failure(reasons: Sequence[Reason]) -> FirstFailure | None:
    """Return the condition that failed at the earliest step; plan-wide failures come before step 0."""
    best: tuple[int, int, Reason] | None = None
    for reason in reasons:
        condition = condition_of(reason.rule_id)
        key = (-1 if reason.step is None else reason.step, CONDITION_ORDER.index(condition), reason)
        if best is None or key[:2] < best[:2]:
            best = key
    if best is None:
        return None
    reason = best[2]
    return FirstFailure(condition_of(reason.rule_id), reason.rule_id, reason.step)


def condition_of(rule_id: str) -> str:
    if rule_id == RULE_INVALID:
        return "parse"
    if rule_id.startswith("directive.felicity."):
        return rule_id.rsplit(".", 1)[1]
    return "normative"


def _involved(violation: Violation) -> list[SimObject]:
    found: list[SimObject] = []
    for value in (violation.subject, violation.env.get("obj"), violation.env.get("target")):
        if isinstance(value, SimObject) and value not in found:
            found.append(value)
    for obj in list(found):
        for related in [obj.parent, *obj.contents]:
            if related is not None and related not in found:
                found.append(related)
    return found


def _earlier_changes(objects: Sequence[SimObject], directive_id: str) -> list[dict[str, JsonValue]]:
    changes: list[dict[str, JsonValue]] = []
    for obj in objects:
        origin = obj.origin
        if origin is not None and origin.directive_id and origin.directive_id != directive_id:
            changes.append(
                {
                    "directive": origin.directive_id,
                    "step": origin.step,
                    "action": origin.action,
                    "object": obj.name,
                }
            )
    return changes


def _best_effort_id(raw: str | bytes) -> str:
    """Return the `id` of a directive that failed to parse, or "" when none can be read."""
    try:
        data = json.loads(raw) if len(raw) <= 65536 else None
    except (ValueError, RecursionError):
        return ""
    value = data.get("id") if isinstance(data, dict) else None
    return value[:128] if isinstance(value, str) else ""


def default_config_dir() -> Path:
    """Return the bundled config/ directory: the source tree's, or the installed share/nc_safety/config."""
    source_tree = Path(__file__).resolve().parents[3] / "config"
    if (source_tree / "ontology.yaml").is_file():
        return source_tree
    return Path(sys.prefix) / "share" / "nc_safety" / "config"


def load_checker_config(path: Path | str) -> CheckerConfig:
    """Load config/directives.yaml; raises DirectiveError listing every problem."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise DirectiveError(
            [f"cannot read {path}: {error}"], source="directive checker configuration"
        ) from None
    return checker_config_from_mapping(data, str(path))


def checker_config_from_mapping(data: object, source: str = "configuration") -> CheckerConfig:
    problems: list[str] = []
    if not isinstance(data, dict):
        raise DirectiveError(
            [f"{source}: the top level must be a mapping"], source="directive checker configuration"
        )
    unknown = sorted(set(data) - _CONFIG_KEYS)
    if unknown:
        problems.append(f"unknown key(s) {unknown}; allowed: {sorted(_CONFIG_KEYS)}")
    robot = _robot(_section(data, "robot", problems), problems)
    roles = _roles(data, problems)
    timing = _timing(_section(data, "timing", problems), problems)
    sessions = _section(data, "sessions", problems)
    limits_data = _section(data, "limits", problems)
    try:
        limits = DirectiveLimits(**limits_data)
    except TypeError as error:
        problems.append(f"limits: {error}")
        limits = DirectiveLimits()
    config = CheckerConfig(
        robot=robot,
        roles=roles,
        timing=timing,
        limits=limits,
        shared_state_window_s=float(sessions.get("shared_state_window_s", 600.0)),
        max_requesters=int(sessions.get("max_requesters", 256)),
    )
    if problems:
        raise DirectiveError(
            [f"{source}: {problem}" for problem in problems], source="directive checker configuration"
        )
    try:
        config.validate()
    except DirectiveError as error:
        raise DirectiveError(
            [f"{source}: {problem}" for problem in error.problems], source="directive checker configuration"
        ) from None
    return config


def _section(data: Mapping[str, Any], key: str, problems: list[str]) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        problems.append(f"{key} must be a mapping, got {value!r}")
        return {}
    return value


def _robot(data: Mapping[str, Any], problems: list[str]) -> RobotProfile:
    skills = data.get("skills", list(ACTIONS))
    tools = data.get("tools", [])
    if not isinstance(skills, list) or not isinstance(tools, list):
        problems.append("robot.skills and robot.tools must be lists")
        return RobotProfile()
    try:
        return RobotProfile(
            skills=frozenset(str(skill) for skill in skills),
            payload_kg=float(data.get("payload_kg", 5.0)),
            reach_m=float(data.get("reach_m", 1.8)),
            tools=frozenset(str(tool) for tool in tools),
        )
    except (TypeError, ValueError) as error:
        problems.append(f"robot: {error}")
        return RobotProfile()


def _roles(data: Mapping[str, Any], problems: list[str]) -> RolePolicy:
    roles_data = _section(data, "roles", problems)
    roles: dict[str, frozenset[str]] = {}
    for role, classes in roles_data.items():
        if not isinstance(classes, list):
            problems.append(f"roles.{role} must be a list of action classes, got {classes!r}")
            continue
        roles[str(role)] = frozenset(str(item) for item in classes)
    action_classes = {
        str(key): str(value) for key, value in _section(data, "action_classes", problems).items()
    }
    rules: list[ClassRule] = []
    raw_rules = data.get("class_rules", [])
    if not isinstance(raw_rules, list):
        problems.append(f"class_rules must be a list, got {raw_rules!r}")
        raw_rules = []
    for position, rule in enumerate(raw_rules):
        if not isinstance(rule, dict) or set(rule) != {"class", "actions", "property"}:
            problems.append(
                f"class_rules[{position}] needs exactly class, actions and property, got {rule!r}"
            )
            continue
        rules.append(
            ClassRule(str(rule["class"]), frozenset(str(a) for a in rule["actions"]), str(rule["property"]))
        )
    return RolePolicy(roles=roles, action_classes=action_classes, class_rules=tuple(rules))


def _timing(data: Mapping[str, Any], problems: list[str]) -> TimingPolicy:
    quiet: tuple[int, int] | None = None
    hours = data.get("quiet_hours")
    if hours is not None:
        try:
            if not isinstance(hours, list) or len(hours) != 2:
                raise ValueError(f'quiet_hours must be ["HH:MM", "HH:MM"], got {hours!r}')
            quiet = (parse_clock(hours[0]), parse_clock(hours[1]))
        except ValueError as error:
            problems.append(f"timing: {error}")
    try:
        return TimingPolicy(
            battery_floor=float(data.get("battery_floor", 0.15)),
            emergency_priority=int(data.get("emergency_priority", 90)),
            quiet_hours=quiet,
            quiet_property=str(data.get("quiet_property", "noisy")),
        )
    except (TypeError, ValueError) as error:
        problems.append(f"timing: {error}")
        return TimingPolicy()


def summary(result: DirectiveResult) -> str:
    """Format the verdict and one line per reason (rule id, step, message) for logs and the CLI."""
    lines = [f"{result.decision.verdict.value}"]
    for reason in result.decision.reasons:
        step = "plan" if reason.step is None else f"step {reason.step}"
        lines.append(f"  {reason.rule_id} [{reason.verdict.value}, {step}]: {reason.message}")
    return "\n".join(lines)
