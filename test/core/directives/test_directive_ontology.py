"""The ontology file: coverage of household types, name resolution and validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from nc_safety.core.directives.checker import DirectiveChecker
from nc_safety.core.directives.errors import DirectiveError
from nc_safety.core.directives.ontology import load_ontology, ontology_from_mapping

# Common object types of the AI2-THOR household scenes.
HOUSEHOLD_TYPES = [
    "AlarmClock",
    "Apple",
    "BaseballBat",
    "Bathtub",
    "Bed",
    "Book",
    "Bowl",
    "Bread",
    "Cabinet",
    "Candle",
    "CellPhone",
    "Cloth",
    "CoffeeMachine",
    "CounterTop",
    "CreditCard",
    "Cup",
    "DeskLamp",
    "Desk",
    "DiningTable",
    "Drawer",
    "Egg",
    "Faucet",
    "Floor",
    "Fork",
    "Fridge",
    "GarbageCan",
    "HousePlant",
    "Kettle",
    "KeyChain",
    "Knife",
    "Laptop",
    "LightSwitch",
    "Microwave",
    "Mirror",
    "Mug",
    "Pan",
    "Pen",
    "Pencil",
    "Pillow",
    "Plate",
    "Plunger",
    "Pot",
    "Potato",
    "RemoteControl",
    "Safe",
    "SaltShaker",
    "Shelf",
    "Sink",
    "SinkBasin",
    "SoapBottle",
    "Sofa",
    "Spatula",
    "Spoon",
    "Statue",
    "StoveBurner",
    "StoveKnob",
    "Television",
    "TissueBox",
    "Toaster",
    "Toilet",
    "Tomato",
    "Vase",
    "Watch",
    "WateringCan",
    "Window",
    "WineBottle",
]


def test_bundled_ontology_covers_household_types(checker: DirectiveChecker) -> None:
    missing = [name for name in HOUSEHOLD_TYPES if name not in checker.ontology.types]
    assert missing == []


@pytest.mark.parametrize(
    ("phrase", "type_name"),
    [
        ("remote control", "RemoteControl"),
        ("Cellphone", "CellPhone"),
        ("refrigerator", "Fridge"),
        ("Mug_2", "Mug"),
        ("stove knob", "StoveKnob"),
        ("sink basin", "SinkBasin"),
        ("counter", "CounterTop"),
    ],
)
def test_names_resolve(checker: DirectiveChecker, phrase: str, type_name: str) -> None:
    resolved = checker.ontology.object_type(phrase)
    assert resolved is not None
    assert resolved.name == type_name


def test_unknown_name_is_none(checker: DirectiveChecker) -> None:
    assert checker.ontology.object_type("flux capacitor") is None


def test_invalid_ontology_lists_every_problem() -> None:
    data = {
        "version": 1,
        "properties": {"sharp": "cuts", "pickupable": "can be carried"},
        "types": {
            "knife": {"is": ["sharp"]},
            "Cup": {"is": ["shiny"], "mass_kg": -2},
            "Plate": {"is": ["pickupable"]},
            "Bowl": {"is": [], "aliases": ["cup"]},
        },
    }
    with pytest.raises(DirectiveError) as caught:
        ontology_from_mapping(data)
    text = str(caught.value)
    assert "type name 'knife' must be CamelCase" in text
    assert "'shiny' is neither a declared property nor a group" in text
    assert "mass_kg must be a number in (0, 10000], got -2" in text
    assert "Plate is pickupable but has no mass_kg" in text
    assert "alias 'cup' is already used by Cup" in text


def test_missing_ontology_file_named(tmp_path: Path) -> None:
    with pytest.raises(DirectiveError, match=r"cannot read .*absent\.yaml"):
        load_ontology(tmp_path / "absent.yaml")
