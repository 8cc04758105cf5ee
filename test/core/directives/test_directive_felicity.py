"""Felicity conditions: knowledge, capacity, timing, role; each its own verdict and first-failure report."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from nc_safety.core.directives.checker import DirectiveChecker, DirectiveResult
from nc_safety.core.directives.felicity import CheckContext, RunningTask
from nc_safety.core.directives.world import RobotProfile
from nc_safety.core.verdict import Verdict

Check = Callable[..., DirectiveResult]

# (case, plan, robot changes, rule id, verdict, step)
UNABLE_CASES: list[tuple[str, list[Any], dict[str, Any], str, int]] = [
    (
        "no skill",
        ["find Bread", "slice Bread"],
        {"skills": frozenset({"find", "pick"})},
        "directive.felicity.knowledge",
        1,
    ),
    ("unknown verb", ["find Bread", "juggle Bread"], {}, "directive.felicity.knowledge", 1),
    ("unknown object", ["find Unicorn"], {}, "directive.felicity.knowledge", 0),
    ("unknown liquid", ["find Mug", "fillLiquid Mug lava"], {}, "directive.felicity.knowledge", 1),
    ("no object found", ["pick"], {}, "directive.felicity.knowledge", 0),
    ("too heavy", ["find Television", "pick Television"], {}, "directive.felicity.capacity", 1),
    ("payload", ["find Laptop", "pick Laptop"], {"payload_kg": 1.0}, "directive.felicity.capacity", 1),
    ("fixed", ["find Fridge", "pick Fridge"], {}, "directive.felicity.capacity", 1),
    ("reach", ["find ShowerHead", "turn_on ShowerHead"], {}, "directive.felicity.capacity", 1),
    ("no tool", ["find Bread", "slice Bread"], {"tools": frozenset()}, "directive.felicity.capacity", 1),
    ("gripper full", ["find Mug", "pick Mug", "find Cup", "pick Cup"], {}, "directive.felicity.capacity", 3),
    ("empty gripper", ["find Desk", "put Desk"], {}, "directive.felicity.capacity", 1),
    ("not toggleable", ["find Sofa", "turn_on Sofa"], {}, "directive.felicity.capacity", 1),
]


@pytest.mark.parametrize(
    ("case", "plan", "robot", "rule_id", "step"), UNABLE_CASES, ids=[case[0] for case in UNABLE_CASES]
)
def test_infeasible_step_unable(
    checker: DirectiveChecker,
    check: Check,
    case: str,
    plan: list[Any],
    robot: dict[str, Any],
    rule_id: str,
    step: int,
) -> None:
    using = checker
    if robot:
        config = replace(checker.config, robot=replace(checker.config.robot, **robot))
        using = DirectiveChecker(checker.ontology, checker.norms, config)
    result = check(plan, using=using)
    assert result.decision.verdict is Verdict.UNABLE
    assert result.decision.reasons[0].rule_id == rule_id
    assert result.decision.reasons[0].step == step
    assert result.first_failed is not None
    assert result.first_failed.step == step


def test_capacity_reports_figures(check: Check) -> None:
    reason = check(["find Television", "pick Television"]).decision.reasons[0]
    assert "12.0 kg, more than the 5.0 kg payload" in reason.message
    assert reason.evidence[0].value == 12.0
    assert reason.evidence[0].limit == 5.0


def test_tool_held_allows_slicing(checker: DirectiveChecker, check: Check) -> None:
    config = replace(checker.config, robot=replace(checker.config.robot, tools=frozenset()))
    toolless = DirectiveChecker(checker.ontology, checker.norms, config)
    result = check(["find Knife", "pick Knife", "find Bread", "slice Bread"], using=toolless)
    assert result.decision.verdict is Verdict.COMPLY


def test_higher_priority_task_defers(check: Check) -> None:
    context = CheckContext(running_task=RunningTask("clean-kitchen", 80))
    result = check(["find Mug", "pick Mug"], context=context, priority=50)
    reason = result.decision.reasons[0]
    assert result.decision.verdict is Verdict.DEFER
    assert reason.rule_id == "directive.felicity.timing"
    assert reason.facts["when"] == "after task clean-kitchen finishes"
    assert result.first_failed is not None
    assert result.first_failed.step is None


def test_higher_priority_directive_runs(check: Check) -> None:
    context = CheckContext(running_task=RunningTask("clean-kitchen", 40))
    assert check(["find Mug", "pick Mug"], context=context, priority=60).decision.verdict is Verdict.COMPLY


def test_low_battery_defers_unless_emergency(check: Check) -> None:
    context = CheckContext(battery=0.05)
    deferred = check(["find Mug", "pick Mug"], context=context)
    assert deferred.decision.verdict is Verdict.DEFER
    assert deferred.decision.reasons[0].remedy_values["min_battery"] == 0.15
    assert check(["find Mug", "pick Mug"], context=context, priority=95).decision.verdict is Verdict.COMPLY


def test_quiet_hours_defer_noisy_step(check: Check) -> None:
    night = CheckContext(local_minutes=23 * 60 + 30)
    result = check(["find VacuumCleaner", "turn_on VacuumCleaner"], context=night)
    reason = result.decision.reasons[0]
    assert result.decision.verdict is Verdict.DEFER
    assert reason.step == 1
    assert reason.facts["when"] == "after 07:00 local time"
    assert reason.remedy_values["wait_s"] == 7.5 * 3600
    day = CheckContext(local_minutes=12 * 60)
    assert (
        check(["find VacuumCleaner", "turn_on VacuumCleaner"], context=day).decision.verdict is Verdict.COMPLY
    )


@pytest.mark.parametrize(
    ("role", "plan", "verdict"),
    [
        ("guest", ["find StoveKnob", "turn_on StoveKnob", "turn_off StoveKnob"], Verdict.UNAUTHORIZED),
        ("user", ["find StoveKnob", "turn_on StoveKnob", "turn_off StoveKnob"], Verdict.COMPLY),
        ("child", ["find Knife", "pick Knife"], Verdict.UNAUTHORIZED),
        ("user", ["find Knife", "pick Knife"], Verdict.COMPLY),
        (
            "user",
            ["find Watch", "pick Watch", "find Safe", "open Safe", "put Safe", "close Safe"],
            Verdict.UNAUTHORIZED,
        ),
        (
            "owner",
            ["find Watch", "pick Watch", "find Safe", "open Safe", "put Safe", "close Safe"],
            Verdict.COMPLY,
        ),
        ("burglar", ["find Mug"], Verdict.UNAUTHORIZED),
    ],
)
def test_role_decides_authorization(check: Check, role: str, plan: list[Any], verdict: Verdict) -> None:
    result = check(plan, role=role)
    assert result.decision.verdict is verdict, [r.message for r in result.decision.reasons]
    if verdict is Verdict.UNAUTHORIZED:
        assert result.decision.reasons[0].rule_id == "directive.felicity.role"


def test_first_failure_is_earliest_step(check: Check) -> None:
    plan = ["find Knife", "pick Knife", "find Plate", "put Plate", "find Mug", "pick Mug", "throw"]
    result = check(plan, role="child")
    assert result.decision.verdict is Verdict.REFUSE
    assert result.first_failed is not None
    assert result.first_failed.condition == "role"
    assert result.first_failed.step == 1
    assert result.decision.output["first_failed"] == {
        "condition": "role",
        "rule_id": "directive.felicity.role",
        "step": 1,
    }


def test_simulation_stops_at_infeasible_step(check: Check) -> None:
    result = check(["find Plate", "pick Plate", "throw", "find Unicorn", "find Vase", "break Vase"])
    assert result.decision.rule_ids == ("directive.norm.throw_object", "directive.felicity.knowledge")


def test_robot_profile_validated() -> None:
    assert RobotProfile(payload_kg=-1.0).problems() == ["payload_kg must be in (0, 1000], got -1.0"]
