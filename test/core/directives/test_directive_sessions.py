"""Per-requester shared world: harm split across directives is caught and the earlier directive named."""

from __future__ import annotations

import json
from dataclasses import replace

from nc_safety.core.directives.checker import DirectiveChecker
from nc_safety.core.directives.felicity import CheckContext
from nc_safety.core.verdict import Verdict


def directive_json(plan: list[str], *, directive_id: str = "t1", requester: str = "alice") -> str:
    return json.dumps({"id": directive_id, "requester": {"id": requester, "role": "user"}, "plan": plan})


SETUP = ["find Fork", "pick Fork", "find Toaster", "put Toaster"]
TRIGGER = ["find Toaster", "turn_on Toaster"]


def fresh(checker: DirectiveChecker, window_s: float = 600.0) -> DirectiveChecker:
    return DirectiveChecker(
        checker.ontology, checker.norms, replace(checker.config, shared_state_window_s=window_s)
    )


def test_split_harm_names_earlier_directive(checker: DirectiveChecker) -> None:
    shared = fresh(checker)
    first = shared.check_json(directive_json(SETUP, directive_id="d-setup"), CheckContext(now_s=100.0))
    assert first.decision.verdict is Verdict.COMPLY
    second = shared.check_json(directive_json(TRIGGER, directive_id="d-trigger"), CheckContext(now_s=160.0))
    reason = second.decision.reasons[0]
    assert second.decision.verdict is Verdict.REFUSE
    assert reason.rule_id == "directive.norm.metal_in_heater"
    assert "by earlier directive 'd-setup' (step 3)" in reason.message
    assert reason.facts["earlier_directives"] == [
        {"directive": "d-setup", "step": 3, "action": "put", "object": "Fork"}
    ]


def test_window_expiry_forgets_state(checker: DirectiveChecker) -> None:
    shared = fresh(checker, window_s=60.0)
    shared.check_json(directive_json(SETUP, directive_id="d-setup"), CheckContext(now_s=100.0))
    later = shared.check_json(directive_json([*TRIGGER, "turn_off Toaster"]), CheckContext(now_s=161.0))
    assert later.decision.verdict is Verdict.COMPLY


def test_other_requester_has_own_world(checker: DirectiveChecker) -> None:
    shared = fresh(checker)
    shared.check_json(directive_json(SETUP, requester="alice"), CheckContext(now_s=1.0))
    other = shared.check_json(
        directive_json([*TRIGGER, "turn_off Toaster"], requester="bob"), CheckContext(now_s=2.0)
    )
    assert other.decision.verdict is Verdict.COMPLY


def test_refused_directive_leaves_state(checker: DirectiveChecker) -> None:
    shared = fresh(checker)
    refused = shared.check_json(
        directive_json([*SETUP, "turn_on Toaster"], directive_id="d1"), CheckContext()
    )
    assert refused.decision.verdict is Verdict.REFUSE
    assert shared.session_directives("alice") == ()
    safe = shared.check_json(
        directive_json([*TRIGGER, "turn_off Toaster"], directive_id="d2"), CheckContext()
    )
    assert safe.decision.verdict is Verdict.COMPLY
    assert shared.session_directives("alice") == ("d2",)


def test_sharing_disabled_with_zero_window(checker: DirectiveChecker) -> None:
    shared = fresh(checker, window_s=0.0)
    shared.check_json(directive_json(SETUP), CheckContext())
    assert shared.check_json(
        directive_json([*TRIGGER, "turn_off Toaster"]), CheckContext()
    ).decision.verdict is (Verdict.COMPLY)
    assert shared.session_count() == 0


def test_requester_sessions_bounded(checker: DirectiveChecker) -> None:
    shared = DirectiveChecker(checker.ontology, checker.norms, replace(checker.config, max_requesters=3))
    for index in range(10):
        shared.check_json(
            directive_json(["find Mug"], requester=f"r{index}"), CheckContext(now_s=float(index))
        )
    assert shared.session_count() == 3
    assert shared.session_directives("r9") == ("t1",)
