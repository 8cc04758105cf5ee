"""The error class of the directive checker."""

from __future__ import annotations

from collections.abc import Sequence

from nc_safety.core.errors import NcSafetyError


class DirectiveError(NcSafetyError):
    """Raised when a directive, the ontology, a norm pack or a condition is invalid.

    `problems` lists every problem found, each naming the offending value, so one run
    shows everything to fix.
    """

    def __init__(self, problems: Sequence[str], *, source: str = "directive") -> None:
        self.problems = tuple(problems)
        self.source = source
        if len(self.problems) == 1:
            text = f"invalid {source}: {self.problems[0]}"
        else:
            lines = "\n".join(f"  - {problem}" for problem in self.problems)
            text = f"invalid {source} ({len(self.problems)} problems):\n{lines}"
        super().__init__(text)
