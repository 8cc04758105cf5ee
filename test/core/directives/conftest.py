"""Fixtures for the directive checker tests: the bundled checker and a plan runner."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from nc_safety.core.directives.checker import DirectiveChecker, DirectiveResult
from nc_safety.core.directives.felicity import CheckContext

Check = Callable[..., DirectiveResult]


@pytest.fixture(scope="session")
def checker() -> DirectiveChecker:
    return DirectiveChecker.from_files()


def directive_json(
    plan: list[Any],
    *,
    directive_id: str = "t1",
    requester: str = "alice",
    role: str = "user",
    priority: int = 50,
) -> str:
    return json.dumps(
        {"id": directive_id, "requester": {"id": requester, "role": role}, "priority": priority, "plan": plan}
    )


@pytest.fixture
def check(checker: DirectiveChecker) -> Check:
    """Check one plan in a fresh world with the bundled checker (or the one passed)."""

    def run(
        plan: list[Any],
        *,
        using: DirectiveChecker | None = None,
        context: CheckContext | None = None,
        **fields: Any,
    ) -> DirectiveResult:
        target = using or checker
        target.forget()
        return target.check_json(directive_json(plan, **fields), context or CheckContext())

    return run
