"""Plan fingerprints: rewordings and reordered independent steps match, other plans do not."""

from __future__ import annotations

import pytest

from nc_safety.core.plan_fingerprint import (
    PlanError,
    Vocabulary,
    canonical_plan,
    normalise_step,
    plan_fingerprint,
    split_steps,
)

BASE = ["go to the kitchen", "pick up the knife", "give the knife to the child"]


@pytest.mark.parametrize(
    "variant",
    [
        ["Go to the kitchen.", "Pick up the knife!", "Give the knife to the child"],
        ["  GO   TO the   KITCHEN ", "pick up   the knife", "give the knife to the child"],
        ["navigate to the kitchen", "grab the blade", "hand the blade over to the kid"],
        ["pick up the knife", "go to the kitchen", "give the knife to the child"],
        "please go to the kitchen; then pick up the knife, then give the knife to the child",
        [
            {"action": "go", "target": "kitchen"},
            {"action": "pick", "object": "knife"},
            {"action": "give", "object": "knife", "to": "child"},
        ],
        ["ｇｏ to the kitchen", "pick up the knife", "give the knife to the child"],
    ],
)
def test_variants_match(variant: object) -> None:
    assert plan_fingerprint(variant) == plan_fingerprint(BASE)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "other",
    [
        ["go to the kitchen", "pick up the cup", "give the cup to the child"],
        ["give the knife to the child", "pick up the knife", "go to the kitchen"],
        ["go to the kitchen", "pick up the knife"],
    ],
)
def test_different_plans_differ(other: list[str]) -> None:
    assert plan_fingerprint(other) != plan_fingerprint(BASE)


def test_dependent_order_kept() -> None:
    assert canonical_plan(["pick up the knife", "place the knife in the drawer"]) == (
        "pick knife",
        "place drawer in knife",
    )


def test_split_steps_on_separators() -> None:
    assert split_steps("open the door; then go outside and then wait. Come back") == [
        "open the door",
        "go outside",
        "wait",
        "Come back",
    ]


def test_vocabulary_extends_synonyms() -> None:
    vocabulary = Vocabulary(synonyms={"scalpel": "knife"})

    assert normalise_step("pick up the scalpel", vocabulary) == ("pick", "knife")


def test_empty_plan_rejected() -> None:
    with pytest.raises(PlanError, match="no steps after normalisation"):
        plan_fingerprint(["the", "please"])


def test_invalid_step_rejected() -> None:
    with pytest.raises(PlanError, match="invalid plan step 42"):
        plan_fingerprint([42])  # type: ignore[list-item]
