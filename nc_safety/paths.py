"""Where the shipped configuration files are, for a pip install and for a source checkout."""

from __future__ import annotations

import sys
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent
SOURCE_ROOT = PACKAGE_ROOT.parent


def config_file(name: str) -> Path:
    """Path of `config/<name>`: the installed share folder first, then the source tree.

    Raises FileNotFoundError naming both places when neither has the file.
    """
    candidates = [Path(sys.prefix) / "share" / "nc_safety" / "config" / name, SOURCE_ROOT / "config" / name]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"config file {name!r} not found in {candidates[0].parent} or {candidates[1].parent}"
    )


RECORDINGS = PACKAGE_ROOT / "data" / "recordings"
