"""`nc-safety keygen`: create an operator's Ed25519 key pair.

Writes the private key with mode 0600 and prints the keyring entry to append under
`operators:` in config/operators.yaml. Needs no ROS.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from nc_safety.core.overrides import OverrideError, Role, SigningIdentity
from nc_safety.core.overrides.keys import write_private_key


def default_key_directory() -> Path:
    config_home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config_home) / "nc_safety" / "keys"


def keyring_line(identity: SigningIdentity) -> str:
    """Return the keyring entry as one YAML flow-mapping list item."""
    entry = identity.operator_key().keyring_entry()
    fields = ", ".join(f"{name}: {value}" for name, value in entry.items())
    return f"  - {{{fields}}}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nc-safety keygen",
        description="Create an operator key pair. The private key stays with the operator (mode 0600); "
        "the printed line goes under `operators:` in the keyring (config/operators.yaml).",
    )
    parser.add_argument("--operator", required=True, help="operator id, for example alice")
    parser.add_argument(
        "--role", required=True, choices=[role.value for role in Role], help="what the key may sign"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"folder for the private key file (default {default_key_directory()})",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    directory: Path = args.out or default_key_directory()
    try:
        identity = SigningIdentity.generate(args.operator, Role(args.role))
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = directory / f"{identity.key_id}.key"
        write_private_key(identity, path)
    except (OverrideError, OSError) as error:
        print(f"nc-safety keygen: {error}", file=sys.stderr)
        return 2
    print(f"private key written to {path} (mode 0600); keep it secret", file=sys.stderr)
    print(
        "add this line under `operators:` in config/operators.yaml, then reload the keyring:", file=sys.stderr
    )
    print(keyring_line(identity))
    return 0


if __name__ == "__main__":
    sys.exit(main())
