"""`nc-safety`: one command line for the node's tools.

Each subcommand lives in its own module and is imported only when used, so a tool that
needs no ROS (keygen, audit verify) starts without loading rclpy.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

# Subcommand name -> (module, function, one-line help). The function takes the remaining
# argv and returns an exit code.
SUBCOMMANDS: dict[str, tuple[str, str, str]] = {
    "node": ("nc_safety.ros.node", "main", "run the safety node (takes --ros-args ...)"),
    "demo": ("nc_safety.console.demo", "main", "run the node on the bundled real recording"),
    "params": ("nc_safety.console.params_doc", "main", "print the node's parameters as a Markdown table"),
    "replay": ("nc_safety.replay.runner", "main", "replay a rosbag2 recording through a running node"),
    "estop-emulator": ("nc_safety.estop.emulator", "main", "emulate the e-stop board on a pseudo terminal"),
    "keygen": ("nc_safety.console.keygen", "main", "create an operator key pair"),
    "override": ("nc_safety.console.override_cli", "main", "sign and send an override or reset request"),
    "console": ("nc_safety.console.app", "main", "operator console (terminal UI)"),
    "audit": ("nc_safety.console.audit_cli", "main", "verify, show and export the audit trail"),
    "eval-directives": (
        "nc_safety.console.eval_directives",
        "main",
        "score the directive checker on a benchmark",
    ),
    "sim": ("nc_safety.sim.cli", "main", "closed-loop MuJoCo simulation and its report"),
}


def usage() -> str:
    width = max(len(name) for name in SUBCOMMANDS)
    lines = ["usage: nc-safety COMMAND [ARGS...]", "", "commands:"]
    for name, (_module, _function, help_text) in SUBCOMMANDS.items():
        lines.append(f"  {name.ljust(width)}  {help_text}")
    lines.append("")
    lines.append("Run `nc-safety COMMAND --help` for the options of one command.")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(usage())
        return 0
    name, rest = args[0], args[1:]
    if name not in SUBCOMMANDS:
        print(f"nc-safety: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module_name, function_name, _help = SUBCOMMANDS[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name == module_name:
            print(
                f"nc-safety: command {name!r} is not available in this build ({module_name} missing)",
                file=sys.stderr,
            )
            return 2
        raise
    result: int = getattr(module, function_name)(rest)
    return result


if __name__ == "__main__":
    sys.exit(main())
