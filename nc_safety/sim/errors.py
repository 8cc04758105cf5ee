"""Errors raised by the simulator."""

from __future__ import annotations

from collections.abc import Sequence


class SimError(Exception):
    """Raised when a scene, scenario or simulator setting is invalid, or a run cannot start.

    `problems` lists every offending key at once, so one run shows all that must be fixed.
    """

    def __init__(self, problems: Sequence[str] | str, *, source: str = "simulation") -> None:
        self.problems = (problems,) if isinstance(problems, str) else tuple(problems)
        self.source = source
        if len(self.problems) == 1:
            message = f"invalid {source}: {self.problems[0]}"
        else:
            lines = "\n".join(f"  - {problem}" for problem in self.problems)
            message = f"invalid {source} ({len(self.problems)} problems):\n{lines}"
        super().__init__(message)
