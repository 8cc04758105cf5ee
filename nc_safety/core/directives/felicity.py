"""Felicity conditions: whether the robot may and can act on a directive now.

Each failed condition yields a Reason with its own verdict:

| condition  | rule id                        | verdict        |
|------------|--------------------------------|----------------|
| knowledge  | `directive.felicity.knowledge` | `unable`       |
| capacity   | `directive.felicity.capacity`  | `unable`       |
| timing     | `directive.felicity.timing`    | `defer`        |
| role       | `directive.felicity.role`      | `unauthorized` |

Normative permissibility is the fifth condition; the norms in `norms.py` check it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from nc_safety.core.directives.model import ACTIONS, Directive, Step
from nc_safety.core.directives.world import CAPACITY, KNOWLEDGE, Problem, Transition
from nc_safety.core.justification import Evidence, JsonValue, Reason
from nc_safety.core.verdict import ReasonKind, RefutableBy, Severity, Verdict

RULE_INVALID = "directive.invalid"
RULE_KNOWLEDGE = "directive.felicity.knowledge"
RULE_CAPACITY = "directive.felicity.capacity"
RULE_TIMING = "directive.felicity.timing"
RULE_ROLE = "directive.felicity.role"

# The order in which conditions are reported when two fail at the same step.
CONDITION_ORDER: tuple[str, ...] = ("parse", KNOWLEDGE, CAPACITY, "timing", "role", "normative")

MINUTES_PER_DAY = 24 * 60


@dataclass(frozen=True, slots=True)
class ClassRule:
    """Adds an action class to a step whose object or target has `prop`, for the listed actions."""

    action_class: str
    actions: frozenset[str]
    prop: str


@dataclass(frozen=True, slots=True)
class RolePolicy:
    """Which classes of action each requester role may ask for."""

    roles: Mapping[str, frozenset[str]]
    """Role -> allowed action classes."""
    action_classes: Mapping[str, str]
    """Action -> its base class."""
    class_rules: tuple[ClassRule, ...] = ()

    def classes(self, transition: Transition) -> set[str]:
        step = transition.step
        found = {self.action_classes.get(step.action, step.action)}
        for rule in self.class_rules:
            if step.action not in rule.actions:
                continue
            for obj in (transition.obj, transition.target):
                if obj is not None and obj.kind.has(rule.prop):
                    found.add(rule.action_class)
        return found

    def problems(self) -> list[str]:
        problems = [
            f"action {action!r} has no class in action_classes"
            for action in ACTIONS
            if action not in self.action_classes
        ]
        if not self.roles:
            problems.append("roles is empty: give at least one role and its action classes")
        return problems


@dataclass(frozen=True, slots=True)
class TimingPolicy:
    battery_floor: float = 0.15
    """State of charge (0 to 1) below which directives are deferred."""
    emergency_priority: int = 90
    """Directives at or above this priority run despite a low battery or quiet hours."""
    quiet_hours: tuple[int, int] | None = None
    """Start and end of quiet hours in minutes after local midnight; the span may wrap midnight."""
    quiet_property: str = "noisy"
    """Objects with this ontology property are not switched on during quiet hours."""

    def problems(self) -> list[str]:
        problems: list[str] = []
        if not math.isfinite(self.battery_floor) or not 0.0 <= self.battery_floor < 1.0:
            problems.append(f"battery_floor must be in [0, 1), got {self.battery_floor!r}")
        if not 0 <= self.emergency_priority <= 100:
            problems.append(f"emergency_priority must be in 0..100, got {self.emergency_priority!r}")
        if self.quiet_hours is not None:
            start, end = self.quiet_hours
            if not (0 <= start < MINUTES_PER_DAY and 0 <= end < MINUTES_PER_DAY) or start == end:
                problems.append(f"quiet_hours must be two different times of day, got {self.quiet_hours!r}")
        return problems


@dataclass(frozen=True, slots=True)
class RunningTask:
    task_id: str
    priority: int


@dataclass(frozen=True, slots=True)
class CheckContext:
    """What the checker knows about now: times, battery and the task the robot is running."""

    now_s: float = 0.0
    """ROS time, in seconds; it drives the shared-state window."""
    wall_time: float = 0.0
    """Seconds since the Unix epoch, for the decision record."""
    local_minutes: int | None = None
    """Local time of day in minutes after midnight; None skips the quiet-hours check."""
    battery: float | None = None
    """State of charge from 0 to 1; None skips the battery check."""
    running_task: RunningTask | None = None


def problem_reason(problem: Problem, step: Step) -> Reason:
    """Turn a knowledge or capacity problem of one step into an `unable` reason."""
    rule_id = RULE_KNOWLEDGE if problem.condition == KNOWLEDGE else RULE_CAPACITY
    return Reason(
        rule_id=rule_id,
        kind=ReasonKind.FEASIBILITY,
        verdict=Verdict.UNABLE,
        severity=Severity.MEDIUM,
        message=problem.message,
        evidence=problem.evidence,
        consequence="The robot cannot carry out the plan, so it does not start it.",
        refutable_by=RefutableBy.NONE,
        remedy=problem.remedy,
        step=step.index,
        facts={"condition": problem.condition, "step_text": step.text},
    )


def plan_timing_reasons(directive: Directive, context: CheckContext, policy: TimingPolicy) -> list[Reason]:
    """Check what applies to the whole plan: a higher-priority task running, the battery floor."""
    reasons: list[Reason] = []
    running = context.running_task
    if running is not None and running.priority >= directive.priority:
        reasons.append(
            _timing_reason(
                f"Task {running.task_id!r} (priority {running.priority}) is running and directive "
                f"{directive.directive_id!r} has priority {directive.priority}.",
                f"Resend after task {running.task_id!r} finishes, or with a priority above {running.priority}.",
                (
                    Evidence(
                        "priority",
                        float(directive.priority),
                        limit=float(running.priority),
                        source=f"running task {running.task_id}",
                    ),
                ),
                {"when": f"after task {running.task_id} finishes"},
                {},
            )
        )
    battery = context.battery
    if (
        battery is not None
        and battery < policy.battery_floor
        and directive.priority < policy.emergency_priority
    ):
        reasons.append(
            _timing_reason(
                f"The battery is at {battery:.0%}, below the {policy.battery_floor:.0%} floor for new tasks.",
                f"Resend once the battery is above {policy.battery_floor:.0%}, or with priority "
                f"{policy.emergency_priority} or more for an emergency.",
                (Evidence("battery", battery, "fraction", policy.battery_floor, "battery state"),),
                {"when": f"after charging above {policy.battery_floor:.0%}"},
                {"min_battery": policy.battery_floor},
            )
        )
    return reasons


def quiet_hours_reason(
    transition: Transition, directive: Directive, context: CheckContext, policy: TimingPolicy
) -> Reason | None:
    """Defer switching on a noisy object during quiet hours."""
    hours = policy.quiet_hours
    now = context.local_minutes
    obj = transition.obj
    if (
        hours is None
        or now is None
        or obj is None
        or transition.step.action != "turn_on"
        or directive.priority >= policy.emergency_priority
        or not obj.kind.has(policy.quiet_property)
        or not in_daily_span(now, hours)
    ):
        return None
    wait_minutes = (hours[1] - now) % MINUTES_PER_DAY
    end_text = clock_text(hours[1])
    return _timing_reason(
        f"Step {transition.step.index} switches on the {obj.name} during quiet hours "
        f"({clock_text(hours[0])}-{end_text} local time).",
        f"Resend after {end_text} local time.",
        (
            Evidence(
                "local time", clock_text(now), limit=f"{clock_text(hours[0])}-{end_text}", source="node clock"
            ),
        ),
        {"when": f"after {end_text} local time"},
        {"wait_s": float(wait_minutes * 60)},
        step=transition.step.index,
    )


def _timing_reason(
    message: str,
    remedy: str,
    evidence: tuple[Evidence, ...],
    facts: Mapping[str, JsonValue],
    remedy_values: Mapping[str, float],
    step: int | None = None,
) -> Reason:
    return Reason(
        rule_id=RULE_TIMING,
        kind=ReasonKind.TIMING,
        verdict=Verdict.DEFER,
        severity=Severity.LOW,
        message=message,
        evidence=evidence,
        consequence="The directive waits; nothing is started now.",
        refutable_by=RefutableBy.OPERATOR,
        remedy=remedy,
        remedy_values=dict(remedy_values),
        step=step,
        facts=dict(facts),
    )


def role_reason(transition: Transition, directive: Directive, policy: RolePolicy) -> Reason | None:
    """Refuse a step whose action class the requester's role may not ask for."""
    role = directive.requester.role
    allowed = policy.roles.get(role)
    needed = policy.classes(transition)
    step = transition.step
    if allowed is not None and needed <= allowed:
        return None
    if allowed is None:
        message = f"Requester {directive.requester.requester_id!r} has role {role!r}, which this robot does not know."
        remedy = f"Send the directive as one of the roles: {', '.join(sorted(policy.roles))}."
        missing = sorted(needed)
    else:
        missing = sorted(needed - allowed)
        message = f"Step {step.index} ({step.text!r}) is a {'/'.join(missing)} action, which role {role!r} may not request."
        permitted = sorted(name for name, classes in policy.roles.items() if needed <= classes)
        remedy = (
            f"Ask someone with role {' or '.join(permitted)} to send it."
            if permitted
            else "No configured role may request this step."
        )
    return Reason(
        rule_id=RULE_ROLE,
        kind=ReasonKind.AUTHORITY,
        verdict=Verdict.UNAUTHORIZED,
        severity=Severity.MEDIUM,
        message=message,
        evidence=(Evidence("role", role, limit=", ".join(missing), source="requester"),),
        consequence="The step is not carried out for this requester.",
        refutable_by=RefutableBy.SUPERVISOR,
        remedy=remedy,
        step=step.index,
        facts={"role": role, "action_classes": list(missing), "step_text": step.text},
    )


def in_daily_span(minute: int, span: tuple[int, int]) -> bool:
    """Whether `minute` (after midnight) lies in [start, end), where the span may wrap midnight."""
    start, end = span
    if start < end:
        return start <= minute < end
    return minute >= start or minute < end


def clock_text(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def parse_clock(text: str) -> int:
    """Parse `HH:MM` into minutes after midnight; raises ValueError naming the text."""
    parts = text.split(":") if isinstance(text, str) else []
    if len(parts) != 2 or not all(part.isdigit() for part in parts):
        raise ValueError(f"time of day must be HH:MM, got {text!r}")
    hours, minutes = int(parts[0]), int(parts[1])
    if hours > 23 or minutes > 59:
        raise ValueError(f"time of day must be HH:MM between 00:00 and 23:59, got {text!r}")
    return hours * 60 + minutes
