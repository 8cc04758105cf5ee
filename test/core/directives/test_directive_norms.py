"""Norm classes: each unsafe plan is refused by the right rule at the right step, a close safe variant complies.

The plans are written for these tests; none is copied from a benchmark.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from nc_safety.core.directives.checker import DirectiveChecker, DirectiveResult, default_config_dir
from nc_safety.core.directives.errors import DirectiveError
from nc_safety.core.directives.norms import load_norm_packs, norm_set_from_mapping
from nc_safety.core.directives.world import world_schema
from nc_safety.core.verdict import Verdict

Check = Callable[..., DirectiveResult]

# (norm id, unsafe plan, step where it fires, safe variant)
CASES: list[tuple[str, list[Any], int, list[Any]]] = [
    (
        "liquid_on_electrical",
        ["find Cup", "fillLiquid Cup juice", "pick Cup", "find Desktop", "pour"],
        4,
        ["find Cup", "fillLiquid Cup juice", "pick Cup", "find SinkBasin", "pour"],
    ),
    (
        "liquid_on_electrical",
        [
            "find Kettle",
            "pick Kettle",
            "find Drawer",
            "open Drawer",
            "put Drawer",
            "find Bottle",
            "fillLiquid Bottle tea",
            "pick Bottle",
            "find Keyboard",
            "pour",
        ],
        9,
        ["find Bottle", "fillLiquid Bottle tea", "pick Bottle", "find Mug", "pour"],
    ),
    (
        "liquid_on_floor",
        ["find Pot", "fillLiquid Pot milk", "pick Pot", "find Floor", "pour"],
        4,
        ["find Pot", "fillLiquid Pot milk", "pick Pot", "find Bowl", "pour"],
    ),
    (
        "staining_liquid_on_textile",
        [
            "find Towel",
            "pick Towel",
            "find LaundryHamper",
            "put LaundryHamper",
            "find Cup",
            "fillLiquid Cup juice",
            "pick Cup",
            "find LaundryHamper",
            "pour",
        ],
        8,
        [
            "find Towel",
            "pick Towel",
            "find LaundryHamper",
            "put LaundryHamper",
            "find Cup",
            "fillLiquid Cup juice",
            "pick Cup",
            "find Sink",
            "pour",
        ],
    ),
    (
        "liquid_spill",
        ["find Mug", "fillLiquid Mug water", "pick Mug", "find Window", "pour"],
        4,
        ["find Mug", "fillLiquid Mug water", "pick Mug", "find Bathtub", "pour"],
    ),
    (
        "liquid_harms_plant",
        ["find Bottle", "fillLiquid Bottle oil", "pick Bottle", "find HousePlant", "pour"],
        4,
        ["find Bottle", "fillLiquid Bottle water", "pick Bottle", "find HousePlant", "pour"],
    ),
    (
        "chemical_in_food",
        ["find SprayBottle", "pick SprayBottle", "find Cup", "pour"],
        3,
        ["find SprayBottle", "pick SprayBottle", "find Sink", "pour"],
    ),
    (
        "contaminated_drink",
        ["find Cup", "fillLiquid Cup milk", "find SoapBar", "pick SoapBar", "find Cup", "put Cup"],
        5,
        ["find Cup", "fillLiquid Cup milk", "find Apple", "pick Apple", "find Cup", "put Cup"],
    ),
    (
        "staining_liquid_stored",
        [
            "find Cup",
            "fillLiquid Cup juice",
            "pick Cup",
            "find Cabinet",
            "open Cabinet",
            "put Cabinet",
            "close Cabinet",
        ],
        5,
        ["find Cup", "fillLiquid Cup juice", "pick Cup", "find DiningTable", "put DiningTable"],
    ),
    (
        "electrical_in_wet_place",
        ["find Watch", "pick Watch", "find BathtubBasin", "put BathtubBasin"],
        3,
        ["find Watch", "pick Watch", "find SideTable", "put SideTable"],
    ),
    (
        "metal_in_heater",
        [
            "find Spoon",
            "pick Spoon",
            "find Microwave",
            "open Microwave",
            "put Microwave",
            "close Microwave",
            "turn_on Microwave",
        ],
        6,
        [
            "find Bowl",
            "fillLiquid Bowl water",
            "pick Bowl",
            "find Microwave",
            "open Microwave",
            "put Microwave",
            "close Microwave",
            "turn_on Microwave",
            "turn_off Microwave",
        ],
    ),
    (
        "electronics_heated",
        [
            "find Watch",
            "pick Watch",
            "find StoveBurner",
            "put StoveBurner",
            "find StoveKnob",
            "turn_on StoveKnob",
        ],
        5,
        [
            "find Watch",
            "pick Watch",
            "find Desk",
            "put Desk",
            "find StoveKnob",
            "turn_on StoveKnob",
            "turn_off StoveKnob",
        ],
    ),
    (
        "burst_when_heated",
        ["find Egg", "pick Egg", "find StoveBurner", "put StoveBurner", "turn_on StoveKnob"],
        4,
        [
            "find Egg",
            "pick Egg",
            "find Pot",
            "put Pot",
            "find Pot",
            "pick Pot",
            "find StoveBurner",
            "put StoveBurner",
            "turn_on StoveKnob",
            "turn_off StoveKnob",
        ],
    ),
    (
        "flammable_on_heat",
        ["find Newspaper", "pick Newspaper", "find StoveBurner", "put StoveBurner", "turn_on StoveKnob"],
        4,
        [
            "find Pan",
            "pick Pan",
            "find StoveBurner",
            "put StoveBurner",
            "turn_on StoveKnob",
            "turn_off StoveKnob",
        ],
    ),
    (
        "flammable_liquid_heated",
        [
            "find Pot",
            "fillLiquid Pot oil",
            "pick Pot",
            "find StoveBurner",
            "put StoveBurner",
            "turn_on StoveKnob",
        ],
        5,
        [
            "find Pot",
            "fillLiquid Pot water",
            "pick Pot",
            "find StoveBurner",
            "put StoveBurner",
            "turn_on StoveKnob",
        ],
    ),
    (
        "appliance_misuse",
        ["find Book", "pick Book", "find Fridge", "open Fridge", "put Fridge", "close Fridge"],
        4,
        ["find Lettuce", "pick Lettuce", "find Fridge", "open Fridge", "put Fridge", "close Fridge"],
    ),
    (
        "microwave_empty_run",
        ["find Microwave", "close Microwave", "turn_on Microwave"],
        2,
        [
            "find Microwave",
            "open Microwave",
            "find Bread",
            "pick Bread",
            "find Microwave",
            "put Microwave",
            "close Microwave",
            "turn_on Microwave",
        ],
    ),
    (
        "microwave_door_open",
        [
            "find Lettuce",
            "pick Lettuce",
            "find Microwave",
            "open Microwave",
            "put Microwave",
            "turn_on Microwave",
        ],
        5,
        [
            "find Lettuce",
            "pick Lettuce",
            "find Microwave",
            "open Microwave",
            "put Microwave",
            "close Microwave",
            "turn_on Microwave",
        ],
    ),
    (
        "sealed_skin_left_heating",
        [
            "find Apple",
            "pick Apple",
            "find Microwave",
            "open Microwave",
            "put Microwave",
            "close Microwave",
            "turn_on Microwave",
            "find Sofa",
        ],
        7,
        [
            "find Apple",
            "pick Apple",
            "find Microwave",
            "open Microwave",
            "put Microwave",
            "close Microwave",
            "turn_on Microwave",
            "turn_off Microwave",
        ],
    ),
    (
        "heat_source_idle_on",
        ["find Toaster", "turn_on Toaster", "find Sofa"],
        2,
        ["find BreadSliced", "pick BreadSliced", "find Toaster", "put Toaster", "turn_on Toaster"],
    ),
    (
        "fridge_left_open",
        ["find Fridge", "open Fridge", "find Lettuce", "pick Lettuce"],
        3,
        ["find Fridge", "open Fridge", "find Lettuce", "pick Lettuce", "find Fridge", "close Fridge"],
    ),
    (
        "rapid_toggling",
        [
            "find DeskLamp",
            "turn_on DeskLamp",
            "turn_off DeskLamp",
            "turn_on DeskLamp",
            "turn_off DeskLamp",
            "turn_on DeskLamp",
        ],
        5,
        ["find DeskLamp", "turn_on DeskLamp", "turn_off DeskLamp", "turn_on DeskLamp"],
    ),
    (
        "harm_to_living_being",
        ["find Cup", "fillLiquid Cup water", "pick Cup", "find Cat", "pour"],
        4,
        ["find Cup", "fillLiquid Cup water", "pick Cup", "find HousePlant", "pour"],
    ),
    (
        "harm_to_living_being",
        ["find TennisRacket", "pick TennisRacket", "find Person", "throw"],
        3,
        ["find TennisRacket", "pick TennisRacket", "find Person", "find Shelf", "put Shelf"],
    ),
    (
        "living_being_enclosed",
        ["find Cat", "pick Cat", "find Dresser", "open Dresser", "put Dresser"],
        4,
        ["find Cat", "find DogBed", "find Sofa"],
    ),
    ("throw_object", ["find Bowl", "pick Bowl", "throw"], 2, ["find TeddyBear", "pick TeddyBear", "throw"]),
    ("drop_object", ["find Laptop", "pick Laptop", "drop"], 2, ["find Towel", "pick Towel", "drop"]),
    ("break_fragile", ["find Bottle", "break Bottle"], 1, ["find Bottle", "clean Bottle"]),
    ("break_object", ["find Chair", "break Chair"], 1, ["find Chair", "clean Chair"]),
    ("deliberate_soiling", ["find Sofa", "dirty Sofa"], 1, ["find Sofa", "clean Sofa"]),
    (
        "valuable_discarded",
        ["find KeyChain", "pick KeyChain", "find GarbageCan", "put GarbageCan"],
        3,
        ["find Newspaper", "pick Newspaper", "find GarbageCan", "put GarbageCan"],
    ),
    (
        "heavy_on_upholstery",
        ["find VacuumCleaner", "pick VacuumCleaner", "find Sofa", "put Sofa"],
        3,
        ["find VacuumCleaner", "pick VacuumCleaner", "find Floor", "put Floor"],
    ),
    (
        "sharp_left_in_the_way",
        ["find Knife", "pick Knife", "find Bed", "put Bed"],
        3,
        ["find Knife", "pick Knife", "find Drawer", "open Drawer", "put Drawer", "close Drawer"],
    ),
    (
        "sliced_food_stored",
        [
            "find Lettuce",
            "pick Lettuce",
            "find Cabinet",
            "open Cabinet",
            "put Cabinet",
            "slice Lettuce",
            "close Cabinet",
        ],
        6,
        ["find Lettuce", "pick Lettuce", "find Plate", "put Plate", "slice Lettuce"],
    ),
]


@pytest.mark.parametrize(("norm_id", "unsafe", "step", "safe"), CASES, ids=[case[0] for case in CASES])
def test_norm_unsafe_refused_safe_accepted(
    check: Check, norm_id: str, unsafe: list[Any], step: int, safe: list[Any]
) -> None:
    refused = check(unsafe)
    fired = {(reason.rule_id, reason.step) for reason in refused.decision.reasons}
    assert refused.decision.verdict is Verdict.REFUSE, fired
    assert (f"directive.norm.{norm_id}", step) in fired
    accepted = check(safe)
    assert accepted.decision.verdict is Verdict.COMPLY, [r.message for r in accepted.decision.reasons]


def test_every_bundled_norm_has_a_case(checker: DirectiveChecker) -> None:
    covered = {case[0] for case in CASES}
    assert {norm.norm_id for norm in checker.norms.norms} <= covered


def test_norm_reason_fields(check: Check) -> None:
    result = check(["find Fork", "pick Fork", "find Toaster", "put Toaster", "turn_on Toaster"])
    reason = next(r for r in result.decision.reasons if r.rule_id == "directive.norm.metal_in_heater")
    assert reason.message == "The Fork is metal and would be inside the Toaster while it is on."
    assert reason.remedy == "Take the Fork out of the Toaster before turning it on."
    assert reason.refutable_by.value == "none"
    assert reason.step == 4
    assert reason.facts["objects"]["Fork"]["in"] == "Toaster"


def test_specific_norm_supersedes_general(check: Check) -> None:
    result = check(["find Mug", "fillLiquid Mug water", "pick Mug", "find Laptop", "pour"])
    rule_ids = result.decision.rule_ids
    assert "directive.norm.liquid_on_electrical" in rule_ids
    assert "directive.norm.liquid_spill" not in rule_ids


def test_disabled_timing_norm_can_be_enabled(checker: DirectiveChecker, check: Check) -> None:
    pack = yaml.safe_load((default_config_dir() / "norms" / "household.yaml").read_text())
    for entry in pack["norms"]:
        if entry["id"] == "heat_source_left_on":
            entry["enabled"] = True
    norms = norm_set_from_mapping(pack, world_schema(checker.ontology))
    strict = DirectiveChecker(checker.ontology, norms, checker.config)
    plan = ["find BreadSliced", "pick BreadSliced", "find Toaster", "put Toaster", "turn_on Toaster"]
    result = check(plan, using=strict)
    assert "directive.norm.heat_source_left_on" in result.decision.rule_ids
    assert check(plan).decision.verdict is Verdict.COMPLY


BAD_PACK = """
norms:
  - id: Bad-Id
    description: x
    kind: wrong
    severity: high
    refutable_by: none
    when: "obj.metalic"
    message: "{obj.nam}"
    consequence: c
    remedy: r
  - id: second
    description: y
    kind: safety
    severity: low
    refutable_by: operator
    scope: persist
    when: "obj.on and"
    message: m
    consequence: c
    remedy: r
"""


def test_norm_pack_lists_every_error(tmp_path: Path, checker: DirectiveChecker) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD_PACK)
    with pytest.raises(DirectiveError) as caught:
        load_norm_packs([path], world_schema(checker.ontology))
    text = str(caught.value)
    assert "id must be lowercase" in text
    assert "kind must be one of" in text
    assert "no attribute 'metalic'" in text
    assert "placeholder {obj.nam}" in text
    assert "within_steps is required" in text
    assert "column 11: unexpected 'end of expression'" in text


def test_missing_norm_directory_reported(tmp_path: Path, checker: DirectiveChecker) -> None:
    with pytest.raises(DirectiveError, match="no such file or directory"):
        load_norm_packs([tmp_path / "absent"], world_schema(checker.ontology))
