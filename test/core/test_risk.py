"""Risk tracking: rephrased refusals lock out, benign volume does not, only a supervisor clears."""

from __future__ import annotations

from pathlib import Path

import pytest

from nc_safety.core.plan_fingerprint import plan_fingerprint
from nc_safety.core.risk import (
    RiskConfig,
    RiskError,
    RiskEventKind,
    RiskLevel,
    RiskTracker,
    SupervisorClearance,
)
from nc_safety.core.verdict import Severity, Verdict

HARMFUL_PLANS = [
    ["go to the kitchen", "pick up the knife", "give the knife to the child"],
    ["Grab the blade.", "Navigate to the kitchen", "hand the blade over to the kid"],
    "please take the knife; then drive to the kitchen, then pass the knife to the toddler",
    [
        {"action": "move to", "target": "kitchen"},
        {"action": "grasp", "object": "knife"},
        {"action": "give", "object": "knife", "to": "child"},
    ],
]
BENIGN_PLANS = [
    ["go to the kitchen", "pick up the cup"],
    ["go to the hall", "open the door"],
    ["bring the newspaper to the sofa"],
    ["place the cup on the table"],
]
CLEARANCE = SupervisorClearance("supervisor1", "req-42", "talked to the user; they were testing the robot")


def send(tracker: RiskTracker, requester: str, plan: object, verdict: Verdict, now: float) -> RiskLevel:
    update = tracker.observe_request(
        requester,
        now=now,
        verdict=verdict,
        severity=Severity.HIGH,
        plan_fingerprint=plan_fingerprint(plan),  # type: ignore[arg-type]
        rule_ids=("directive.norm.knife_to_child",) if verdict is Verdict.REFUSE else (),
    )
    return update.after.level


def test_rephrased_plan_locks_out(tmp_path: Path) -> None:
    tracker = RiskTracker(tmp_path / "risk.sqlite3")
    levels = [
        send(tracker, "mallory", plan, Verdict.REFUSE, 100.0 + index)
        for index, plan in enumerate(HARMFUL_PLANS)
    ]
    state = tracker.state("mallory", 110.0)

    assert levels[0] is RiskLevel.NORMAL
    assert levels[-1] is RiskLevel.LOCKED_OUT
    assert [event.kind for event in state.events] == [RiskEventKind.REFUSED] + [RiskEventKind.REPHRASED] * 3
    assert tracker.is_locked_out("mallory")


def test_benign_volume_stays_normal(tmp_path: Path) -> None:
    tracker = RiskTracker(tmp_path / "risk.sqlite3")
    levels = [
        send(tracker, "bob", plan, Verdict.COMPLY, 100.0 + index) for index, plan in enumerate(BENIGN_PLANS)
    ]

    assert set(levels) == {RiskLevel.NORMAL}
    assert not tracker.is_locked_out("bob")
    assert tracker.state("bob", 110.0).score == 0.0


def test_unrelated_refusals_stay_below_lockout(tmp_path: Path) -> None:
    tracker = RiskTracker(tmp_path / "risk.sqlite3")
    levels = [
        send(tracker, "carol", plan, Verdict.REFUSE, 100.0 + index) for index, plan in enumerate(BENIGN_PLANS)
    ]

    assert levels[-1] is RiskLevel.ELEVATED
    assert not tracker.is_locked_out("carol")


def test_lockout_ignores_decay(tmp_path: Path) -> None:
    tracker = RiskTracker(tmp_path / "risk.sqlite3", RiskConfig(half_life_s=10.0))
    for index, plan in enumerate(HARMFUL_PLANS):
        send(tracker, "mallory", plan, Verdict.REFUSE, 100.0 + index)
    later = tracker.state("mallory", 100.0 + 10_000.0)

    assert later.score < 1e-6
    assert later.level is RiskLevel.LOCKED_OUT


def test_lockout_survives_restart(tmp_path: Path) -> None:
    path = tmp_path / "risk.sqlite3"
    first = RiskTracker(path)
    for index, plan in enumerate(HARMFUL_PLANS):
        send(first, "mallory", plan, Verdict.REFUSE, 100.0 + index)
    first.close()
    second = RiskTracker(path)

    assert second.is_locked_out("mallory")
    assert [state.requester for state in second.locked_out()] == ["mallory"]
    assert len(second.state("mallory", 200.0).events) == 4


def test_fingerprints_survive_restart(tmp_path: Path) -> None:
    path = tmp_path / "risk.sqlite3"
    first = RiskTracker(path)
    send(first, "mallory", HARMFUL_PLANS[0], Verdict.REFUSE, 100.0)
    first.close()
    second = RiskTracker(path)
    send(second, "mallory", HARMFUL_PLANS[1], Verdict.REFUSE, 101.0)

    assert second.state("mallory", 101.0).events[-1].kind is RiskEventKind.REPHRASED


def test_lockout_clears_only_by_supervisor(tmp_path: Path) -> None:
    path = tmp_path / "risk.sqlite3"
    tracker = RiskTracker(path)
    for index, plan in enumerate(HARMFUL_PLANS):
        send(tracker, "mallory", plan, Verdict.REFUSE, 100.0 + index)
    for index, plan in enumerate(BENIGN_PLANS * 5):
        send(tracker, "mallory", plan, Verdict.COMPLY, 200.0 + index)
    still_locked = tracker.is_locked_out("mallory")

    update = tracker.clear_lockout("mallory", CLEARANCE, now=300.0)
    tracker.close()
    reopened = RiskTracker(path)

    assert still_locked
    assert update.before.level is RiskLevel.LOCKED_OUT
    assert update.after.level is RiskLevel.NORMAL
    assert update.after.cleared_by == "supervisor1"
    assert not reopened.is_locked_out("mallory")


def test_clear_rejects_incomplete_clearance(tmp_path: Path) -> None:
    tracker = RiskTracker(None)
    for index, plan in enumerate(HARMFUL_PLANS):
        send(tracker, "mallory", plan, Verdict.REFUSE, 100.0 + index)

    with pytest.raises(RiskError, match="reason must not be empty"):
        tracker.clear_lockout("mallory", SupervisorClearance("supervisor1", "req-1", " "), now=200.0)
    assert tracker.is_locked_out("mallory")


def test_clear_rejects_unlocked_requester() -> None:
    tracker = RiskTracker(None)

    with pytest.raises(RiskError, match="'bob' is not locked out"):
        tracker.clear_lockout("bob", CLEARANCE, now=1.0)


def test_score_halves_per_half_life() -> None:
    tracker = RiskTracker(None, RiskConfig(half_life_s=60.0))
    tracker.record_event("eve", RiskEventKind.OVERRIDE_AUTH_FAILED, now=0.0, severity=Severity.MEDIUM)

    assert tracker.state("eve", 0.0).score == pytest.approx(3.0)
    assert tracker.state("eve", 60.0).score == pytest.approx(1.5)
    assert tracker.state("eve", 120.0).score == pytest.approx(0.75)


def test_severity_weights_event() -> None:
    tracker = RiskTracker(None)
    low = tracker.record_event("a", RiskEventKind.HARD_RULE_OVERRIDE, now=0.0, severity=Severity.LOW)
    critical = tracker.record_event(
        "b", RiskEventKind.HARD_RULE_OVERRIDE, now=0.0, severity=Severity.CRITICAL
    )

    assert low.events[0].weight == pytest.approx(2.0)
    assert critical.events[0].weight == pytest.approx(8.0)
    assert critical.after.level is RiskLevel.ELEVATED


def test_flood_counts_once_per_window() -> None:
    tracker = RiskTracker(None, RiskConfig(flood_window_s=10.0, flood_max_requests=5))
    kinds = []
    for index in range(20):
        update = tracker.observe_request("flooder", now=100.0 + index * 0.1, verdict=Verdict.COMPLY)
        kinds += [event.kind for event in update.events]

    assert kinds == [RiskEventKind.REQUEST_FLOOD]


def test_lockout_refusals_not_counted() -> None:
    tracker = RiskTracker(None)
    for index, plan in enumerate(HARMFUL_PLANS):
        send(tracker, "mallory", plan, Verdict.REFUSE, 100.0 + index)
    before = len(tracker.state("mallory", 200.0).events)
    tracker.observe_request("mallory", now=200.0, verdict=Verdict.UNAUTHORIZED, rule_ids=("risk.locked_out",))

    assert len(tracker.state("mallory", 200.0).events) == before


def test_motion_refusal_weighs_less() -> None:
    tracker = RiskTracker(None)
    update = tracker.observe_request("/cmd_vel_in", now=1.0, verdict=Verdict.REFUSE, channel="motion")

    assert update.events[0].kind is RiskEventKind.REFUSED_MOTION
    assert update.after.score == pytest.approx(0.5)


def test_effect_fingerprint_counts_as_rephrase() -> None:
    tracker = RiskTracker(None)
    tracker.observe_request(
        "m", now=1.0, verdict=Verdict.REFUSE, plan_fingerprint="p1", effect_fingerprint="e1"
    )
    update = tracker.observe_request(
        "m", now=2.0, verdict=Verdict.REFUSE, plan_fingerprint="p2", effect_fingerprint="e1"
    )

    assert update.events[0].kind is RiskEventKind.REPHRASED


def test_forgets_old_fingerprints() -> None:
    tracker = RiskTracker(None, RiskConfig(fingerprint_memory_s=60.0))
    tracker.observe_request("m", now=0.0, verdict=Verdict.REFUSE, plan_fingerprint="p1")
    update = tracker.observe_request("m", now=61.0, verdict=Verdict.REFUSE, plan_fingerprint="p1")

    assert update.events[0].kind is RiskEventKind.REFUSED


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (RiskConfig(half_life_s=0.0), "half_life_s 0.0"),
        (RiskConfig(elevated_threshold=5.0, locked_out_threshold=5.0), "locked_out_threshold 5.0"),
        (RiskConfig(flood_max_requests=0), "flood_max_requests 0"),
        (RiskConfig(weights={}), "weight of refused None"),
        (RiskConfig(history_size=0), "history_size 0"),
    ],
)
def test_config_rejects_bad_values(config: RiskConfig, message: str) -> None:
    with pytest.raises(RiskError, match=message):
        RiskTracker(None, config)


def test_rejects_empty_requester() -> None:
    with pytest.raises(RiskError, match="invalid requester ''"):
        RiskTracker(None).observe_request("", now=0.0, verdict=Verdict.REFUSE)


def test_unreadable_file_raises(tmp_path: Path) -> None:
    path = tmp_path / "risk.sqlite3"
    path.write_bytes(b"not a database" * 100)

    with pytest.raises(RiskError, match=r"cannot open risk file .*risk\.sqlite3"):
        RiskTracker(path)
