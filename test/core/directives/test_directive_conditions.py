"""The condition language: grammar, types, missing data and load-time errors."""

from __future__ import annotations

from typing import Any

import pytest

from nc_safety.core.directives.checker import DirectiveChecker
from nc_safety.core.directives.conditions import compile_condition, compile_template
from nc_safety.core.directives.errors import DirectiveError
from nc_safety.core.directives.model import Step
from nc_safety.core.directives.ontology import Ontology
from nc_safety.core.directives.world import LIQUID, OBJECT, STEP, World, world_schema

ROOTS = {"obj": OBJECT, "target": OBJECT, "liquid": LIQUID, "step": STEP, "liquids": "list:liquid"}


@pytest.fixture
def ontology(checker: DirectiveChecker) -> Ontology:
    return checker.ontology


@pytest.fixture
def env(ontology: Ontology) -> dict[str, Any]:
    world = World(ontology)
    fork = world.resolve("Fork")
    toaster = world.resolve("Toaster")
    assert fork is not None and toaster is not None
    fork.parent = toaster
    toaster.contents.append(fork)
    toaster.flags.add("on")
    water = ontology.liquid("water")
    return {
        "obj": fork,
        "target": None,
        "liquid": water,
        "liquids": [water],
        "step": Step(index=4, action="turn_on", object="Toaster", text="turn_on Toaster"),
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("obj.metallic and obj.parent.on", True),
        ("obj.metallic and not obj.parent.on", False),
        ("obj.parent.exposed_element or false", True),
        ("target.electrical", False),
        ("target.parent.on", False),
        ("obj.mass_kg < 0.1 and obj.mass_kg >= 0.05", True),
        ("target.mass_kg > 1", False),
        ("target == none", True),
        ("obj.type == 'Fork'", True),
        ('step.action in ["turn_on", "open"]', True),
        ('step.action not in ["turn_on", "open"]', False),
        ("any(x in obj.parent.contents: x.sharp)", True),
        ("all(x in obj.parent.contents: x.food)", False),
        ("count(x in obj.parent.contents: x.metallic) == 1", True),
        ("count(obj.parent.contents) == 1", True),
        ("len(obj.ancestors) == 1", True),
        ("has(obj, 'metallic') and has(obj.parent, 'on')", True),
        ("any(p in obj.parent.accepts: has(obj, p))", False),
        ("any(l in liquids: l.conductive)", True),
        ("liquid.name == 'water'", True),
        ("step.index >= 4", True),
        ("((obj.metallic))", True),
    ],
)
def test_expression_evaluates(ontology: Ontology, env: dict[str, Any], text: str, expected: bool) -> None:
    condition = compile_condition(text, world_schema(ontology).with_roots(ROOTS))
    assert condition.holds(env) is expected


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("obj.metalic", "no attribute 'metalic'"),
        ("__import__('os')", r"unknown name '__import__'"),
        ("obj.parent.on and", "unexpected 'end of expression'"),
        ("obj.mass_kg < 'heavy'", "< needs numbers, got string"),
        ("obj == 3", "cannot compare object with number"),
        ("obj.name.upper", "string has no attributes"),
        ("any(x obj.contents: x.sharp)", "expected 'in'"),
        ("has(obj)", r"has\(\) takes 2 arguments"),
        ("obj.on; obj.open", "unexpected character ';'"),
        ("3 in obj.name", "needs a list on the right"),
        ("(" * 40 + "true" + ")" * 40, "deeper than 32 levels"),
        ("", "non-empty string"),
    ],
)
def test_invalid_expression_rejected(ontology: Ontology, text: str, match: str) -> None:
    with pytest.raises(DirectiveError, match=match):
        compile_condition(text, world_schema(ontology).with_roots(ROOTS))


def test_template_renders_paths(ontology: Ontology, env: dict[str, Any]) -> None:
    template = compile_template(
        "Take the {obj} out of the {obj.parent} ({liquids}).", world_schema(ontology).with_roots(ROOTS)
    )
    assert template.render(env) == "Take the Fork out of the Toaster (water)."


def test_template_lists_bad_placeholders(ontology: Ontology) -> None:
    with pytest.raises(DirectiveError) as caught:
        compile_template("{obj.nope} and {nothing}", world_schema(ontology).with_roots(ROOTS))
    assert len(caught.value.problems) == 2
