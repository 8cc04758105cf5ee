"""Canonical JSON encoding, used for hashes, signatures and the audit trail.

Keys are sorted, separators carry no spaces, text stays UTF-8 and non-finite floats are
rejected, so the same value always encodes to the same bytes.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> str:
    """Encode `value` as canonical JSON text.

    Raises ValueError when the value holds NaN or an infinity, because JSON cannot carry
    them and a hash over them would not be reproducible.
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def canonical_bytes(value: Any) -> bytes:
    """Encode `value` as canonical JSON in UTF-8."""
    return canonical_json(value).encode("utf-8")


def sha256_hex(value: Any) -> str:
    """Return the SHA-256 of the canonical JSON encoding of `value`, as hex."""
    return hashlib.sha256(canonical_bytes(value)).hexdigest()
