"""The error class of the overrides subpackage."""

from __future__ import annotations

from collections.abc import Sequence

from nc_safety.core.errors import NcSafetyError


class OverrideError(NcSafetyError):
    """Raised for an invalid keyring, key file, request or verifier limit.

    `problems` lists every offending entry when several were found at once; `code` is the
    verifier's reject code (a `RejectCode` value) when the error describes a request.
    """

    def __init__(self, message: str, *, problems: Sequence[str] = (), code: str | None = None) -> None:
        self.problems = tuple(problems)
        self.code = code
        if self.problems:
            lines = "\n".join(f"  - {problem}" for problem in self.problems)
            message = f"{message} ({len(self.problems)} problem(s)):\n{lines}"
        super().__init__(message)
