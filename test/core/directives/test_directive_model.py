"""Directive parsing: the JSON form, step strings and every limit."""

from __future__ import annotations

import json

import pytest

from nc_safety.core.directives.checker import DirectiveChecker
from nc_safety.core.directives.errors import DirectiveError
from nc_safety.core.directives.felicity import CheckContext
from nc_safety.core.directives.model import DirectiveLimits, parse_directive_json
from nc_safety.core.verdict import Verdict

VALID = {"id": "d1", "requester": {"id": "alice", "role": "user"}, "plan": ["find Mug", "pick Mug"]}


def test_valid_directive_parses() -> None:
    directive = parse_directive_json(json.dumps({**VALID, "priority": 70, "text": "fetch the mug"}))
    assert directive.directive_id == "d1"
    assert directive.requester.role == "user"
    assert directive.priority == 70
    assert [step.action for step in directive.steps] == ["find", "pick"]
    assert directive.steps[1].object == "Mug"


@pytest.mark.parametrize(
    ("text", "action", "object_name", "target", "liquid"),
    [
        ("turn on desk lamp", "turn_on", "desk lamp", None, None),
        ("turn_off Microwave", "turn_off", "Microwave", None, None),
        ("fillLiquid watering can water", "fill_liquid", "watering can", None, "water"),
        ("put Microwave", "put", None, "Microwave", None),
        ("pour pot", "pour", None, "pot", None),
        ("pour", "pour", None, None, None),
        ("Open Cabinet", "open", "Cabinet", None, None),
        ("pick up Egg", "pick", "Egg", None, None),
        ("juggle Egg", "juggle", "Egg", None, None),
    ],
)
def test_step_string_parsed(
    text: str, action: str, object_name: str | None, target: str | None, liquid: str | None
) -> None:
    step = parse_directive_json(json.dumps({**VALID, "plan": [text]})).steps[0]
    assert step.action == action
    assert step.object == object_name
    assert step.target == target
    assert step.liquid == liquid


def test_structured_step_parsed() -> None:
    plan = [{"action": "put", "object": "Fork", "target": "Toaster"}]
    step = parse_directive_json(json.dumps({**VALID, "plan": plan})).steps[0]
    assert (step.action, step.object, step.target) == ("put", "Fork", "Toaster")


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        ("{not json", "not valid JSON"),
        (json.dumps([1, 2]), "must be a JSON object"),
        (json.dumps({**VALID, "colour": "red"}), r"unknown field\(s\) \['colour'\]"),
        (json.dumps({**VALID, "plan": []}), "plan is empty"),
        (json.dumps({k: v for k, v in VALID.items() if k != "plan"}), "plan is missing"),
        (
            json.dumps({**VALID, "plan": ["x"] * 10000}, separators=(",", ":")),
            "10000 steps, more than max_steps=200",
        ),
        (json.dumps({**VALID, "plan": [{"action": "put", "extra": 1}]}), r"step 0 has unknown field\(s\)"),
        (
            json.dumps({**VALID, "plan": [{"action": {"a": {"b": {"c": [[[1]]]}}}}]}),
            "deeper than max_depth=6",
        ),
        ("[" * 100000 + "]" * 100000, "more than max_bytes"),
        ('{"id": "d", "x": ' + "[" * 5000 + "]" * 5000 + "}", "deeper than max_depth"),
        (json.dumps({**VALID, "priority": True}), "priority must be an integer"),
        (json.dumps({**VALID, "priority": 101}), r"priority 101 is outside 0\.\.100"),
        (json.dumps({**VALID, "requester": {"id": "a"}}), "requester.role is missing"),
        (json.dumps({**VALID, "id": "bad\nid"}), "id 'bad\\\\nid' is invalid"),
        ('{"id": "d", "priority": NaN}', "NaN is not a JSON number"),
        (json.dumps({**VALID, "plan": [7]}), "step 0 must be a string or an object"),
    ],
)
def test_malformed_directive_rejected(raw: str, match: str) -> None:
    with pytest.raises(DirectiveError, match=match):
        parse_directive_json(raw)


def test_every_problem_listed() -> None:
    raw = json.dumps({"id": 5, "requester": "bob", "plan": "find Mug", "colour": 1})
    with pytest.raises(DirectiveError) as caught:
        parse_directive_json(raw)
    assert len(caught.value.problems) == 4


def test_invalid_limits_rejected() -> None:
    with pytest.raises(DirectiveError, match="max_steps must be a positive integer, got 0"):
        DirectiveLimits(max_steps=0).validate()


@pytest.mark.parametrize(
    "raw",
    [
        "{not json",
        json.dumps({**VALID, "colour": "red"}),
        json.dumps({**VALID, "plan": ["x"] * 10000}, separators=(",", ":")),
        "[" * 100000,
        json.dumps({**VALID, "plan": ["find Unicorn", "pick Unicorn"]}),
        json.dumps({**VALID, "plan": []}),
        "",
        "null",
        json.dumps({**VALID, "plan": ["pour"]}),
    ],
)
def test_malformed_never_complies(checker: DirectiveChecker, raw: str) -> None:
    result = checker.check_json(raw, CheckContext())
    assert result.decision.verdict is Verdict.UNABLE
    assert result.decision.reasons[0].rule_id.startswith("directive.")
