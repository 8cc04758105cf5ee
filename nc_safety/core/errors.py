"""Errors raised by the decision core."""

from __future__ import annotations

from collections.abc import Sequence


class NcSafetyError(Exception):
    """Base class of every error the decision core raises."""


class ConfigError(NcSafetyError):
    """Raised when a configuration is invalid; lists every offending key at once."""

    def __init__(self, problems: Sequence[str], *, source: str = "configuration") -> None:
        self.problems = tuple(problems)
        self.source = source
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(f"invalid {source} ({len(self.problems)} problem(s)):\n{lines}")
