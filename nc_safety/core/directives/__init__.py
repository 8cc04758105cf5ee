"""Responsible non-compliance for task directives.

`DirectiveChecker` parses a directive (`model`), simulates its plan over a world built
from the ontology (`ontology`, `world`), checks the felicity conditions (`felicity`) and
the norm packs (`norms`, written in the condition language of `conditions`), and returns
a justified `Decision`. docs/directives.md describes the whole.
"""

from nc_safety.core.directives.checker import (
    CheckerConfig,
    DirectiveChecker,
    DirectiveResult,
    FirstFailure,
    default_config_dir,
    load_checker_config,
)
from nc_safety.core.directives.errors import DirectiveError
from nc_safety.core.directives.felicity import CheckContext, RunningTask, TimingPolicy
from nc_safety.core.directives.model import Directive, DirectiveLimits, Step, parse_directive_json
from nc_safety.core.directives.world import RobotProfile

__all__ = [
    "CheckContext",
    "CheckerConfig",
    "Directive",
    "DirectiveChecker",
    "DirectiveError",
    "DirectiveLimits",
    "DirectiveResult",
    "FirstFailure",
    "RobotProfile",
    "RunningTask",
    "Step",
    "TimingPolicy",
    "default_config_dir",
    "load_checker_config",
    "parse_directive_json",
]
