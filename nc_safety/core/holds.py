"""Latched stops raised from outside the motion rules: e-stop board, operator, audit.

While any hold is set, every motion output is zero. Clearing the last hold does not
restart motion by itself (ISO 13850): the motion guard keeps the output at zero until the
command input passes through zero or a command newer than the reset arrives.
"""

from __future__ import annotations

from dataclasses import dataclass

from nc_safety.core.justification import Reason


@dataclass(frozen=True, slots=True)
class Hold:
    """One active stop request, named by its rule id, for example `estop.button`."""

    hold_id: str
    reason: Reason
    since: float
    """ROS time the hold was set, in seconds."""
