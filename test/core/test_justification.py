"""The justification record's JSON form against its published schema."""

from __future__ import annotations

import json
import math

import jsonschema
import pytest
from ros_harness import REPO_ROOT

from nc_safety.core.justification import Evidence, OverrideNote, Reason, combine
from nc_safety.core.verdict import ReasonKind, RefutableBy, Severity, Verdict

SCHEMA = json.loads((REPO_ROOT / "docs" / "schemas" / "justification.schema.json").read_text())


def reason(rule_id: str, verdict: Verdict, severity: Severity, **extra: object) -> Reason:
    return Reason(rule_id, ReasonKind.SAFETY, verdict, severity, "Message.", **extra)  # type: ignore[arg-type]


def test_most_restrictive_verdict_wins() -> None:
    decision = combine(
        stamp=1.0,
        wall_time=2.0,
        command_kind="twist",
        command_id="1",
        requester="topic:cmd_vel_in",
        reasons=[
            reason("motion.limit.linear_x", Verdict.MODIFY, Severity.MEDIUM),
            reason("source.stale.scan", Verdict.FAULT, Severity.HIGH),
        ],
    )
    assert decision.verdict is Verdict.FAULT
    assert decision.reasons[0].rule_id == "source.stale.scan"


def test_non_finite_evidence_is_valid_json() -> None:
    decision = combine(
        stamp=1.0,
        wall_time=2.0,
        command_kind="twist",
        command_id="7",
        requester="node:/teleop",
        reasons=[
            reason(
                "motion.non_finite",
                Verdict.REFUSE,
                Severity.CRITICAL,
                evidence=(Evidence("angular.z", math.nan, "rad/s", limit=math.inf, source="cmd_vel_in"),),
            )
        ],
    )
    text = json.dumps(decision.to_json(), allow_nan=False)
    record = json.loads(text)
    jsonschema.validate(record, SCHEMA)
    assert record["reasons"][0]["evidence"][0]["value"] is None
    assert record["reasons"][0]["evidence"][0]["value_text"] == "nan"


def test_directive_reason_and_override_validate() -> None:
    waived = reason(
        "motion.obstacle.slowdown", Verdict.MODIFY, Severity.LOW, refutable_by=RefutableBy.OPERATOR
    )
    decision = combine(
        stamp=1.0,
        wall_time=2.0,
        command_kind="directive",
        command_id="d1",
        requester="planner",
        reasons=[
            reason(
                "directive.norm.metal_in_microwave",
                Verdict.REFUSE,
                Severity.HIGH,
                step=3,
                facts={"Fork": {"inside": "Microwave"}},
                remedy_values={"max_linear_speed": 0.1},
            )
        ],
        overrides=[
            OverrideNote("o1", "alice", "supervisor", "inspection", 12.5, ("motion.obstacle.slowdown",))
        ],
        overridden=[waived],
    )
    jsonschema.validate(decision.to_json(), SCHEMA)
    assert decision.to_json()["overridden"][0]["rule_id"] == "motion.obstacle.slowdown"


def test_schema_rejects_unknown_verdict() -> None:
    decision = combine(
        stamp=1.0,
        wall_time=2.0,
        command_kind="twist",
        command_id="1",
        requester="x",
        reasons=[reason("motion.non_finite", Verdict.REFUSE, Severity.CRITICAL)],
    )
    record = decision.to_json()
    record["verdict"] = "maybe"
    with pytest.raises(jsonschema.ValidationError, match="maybe"):
        jsonschema.validate(record, SCHEMA)
