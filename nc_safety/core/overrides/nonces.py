"""Persisted nonces, so that a replayed request stays rejected after a restart."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from nc_safety.core.overrides.errors import OverrideError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS nonces (
    nonce TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    expires_at REAL NOT NULL,
    used_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS nonces_expires_at ON nonces (expires_at);
"""


class NonceStore:
    """SQLite table of every nonce a verified signature carried.

    A nonce is committed (synchronous=FULL) before `consume` returns, so a grant never
    exists whose nonce could be accepted again after a crash. Rows are pruned once the
    request expired more than `retention_s` seconds ago: by then the time-window check
    rejects the request before its nonce is looked at, and the margin covers the wall
    clock stepping back by up to `retention_s`.
    """

    def __init__(self, path: str | Path, *, retention_s: float = 86400.0) -> None:
        if not retention_s > 0:
            raise OverrideError(f"nonce retention_s {retention_s!r} must be > 0 s")
        self.path = Path(path)
        self.retention_s = retention_s
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as error:
            raise OverrideError(f"cannot open nonce database {self.path}: {error}") from error

    def consume(self, nonce: str, *, key_id: str, expires_at: float, now: float) -> bool:
        """Record `nonce` as used; return False when it was used before."""
        with self._lock:
            self._db.execute("DELETE FROM nonces WHERE expires_at < ?", (now - self.retention_s,))
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO nonces (nonce, key_id, expires_at, used_at) VALUES (?, ?, ?, ?)",
                (nonce, key_id, expires_at, now),
            )
            return cursor.rowcount == 1

    def count(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT COUNT(*) FROM nonces").fetchone()
        return int(row[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
