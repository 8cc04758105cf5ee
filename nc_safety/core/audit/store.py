"""The SQLite file behind the audit trail: schema, appends in one transaction, reads.

The file is in WAL mode with `synchronous=FULL`, so a committed batch survives a crash or
power loss. Triggers reject UPDATE and DELETE on `records`. They stop mistakes, but not
someone who edits the file: the hash chain and `verify` detect that.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from nc_safety.core.audit.record import (
    AUDIT_FORMAT,
    AUDIT_FORMAT_VERSION,
    AuditError,
    AuditRecord,
    derive_columns,
    genesis_hash,
    record_hash,
)
from nc_safety.core.justification import JsonValue

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY,
    wall_time REAL NOT NULL,
    ros_time REAL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    requester TEXT,
    operators TEXT NOT NULL,
    rule_ids TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_wall_time ON records (wall_time);
CREATE INDEX IF NOT EXISTS records_kind ON records (kind);
CREATE INDEX IF NOT EXISTS records_requester ON records (requester);
CREATE TRIGGER IF NOT EXISTS records_no_update BEFORE UPDATE ON records
BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
CREATE TRIGGER IF NOT EXISTS records_no_delete BEFORE DELETE ON records
BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
"""

_COLUMNS = "seq, wall_time, ros_time, kind, payload, prev_hash, hash, requester, operators, rule_ids"


@dataclass(frozen=True, slots=True)
class PendingRecord:
    """A record as queued, before it has a sequence number and hash."""

    kind: str
    payload: JsonValue
    wall_time: float
    ros_time: float | None


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def _read_meta(connection: sqlite3.Connection, path: Path) -> dict[str, str]:
    try:
        rows = connection.execute("SELECT key, value FROM meta").fetchall()
    except sqlite3.DatabaseError as error:
        raise AuditError(f"{path} is not an nc_safety audit file ({_describe(error)})") from error
    meta = {str(key): str(value) for key, value in rows}
    if meta.get("format") != AUDIT_FORMAT:
        raise AuditError(f"{path} is not an nc_safety audit file (format {meta.get('format')!r})")
    if meta.get("version") != str(AUDIT_FORMAT_VERSION):
        raise AuditError(
            f"{path} has audit format version {meta.get('version')!r}; this build reads "
            f"version {AUDIT_FORMAT_VERSION}"
        )
    if "file_id" not in meta:
        raise AuditError(f"{path} has no file_id in its meta table; the file is damaged")
    return meta


class AuditStore:
    """An audit file opened for appending. Use from one thread at a time."""

    def __init__(self, path: str | Path, *, busy_timeout_s: float = 5.0) -> None:
        self.path = Path(path)
        if busy_timeout_s <= 0:
            raise AuditError(f"invalid busy_timeout_s {busy_timeout_s!r}: use a positive number of seconds")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # The connection is created here and then used only by the writer thread.
            self._connection = sqlite3.connect(
                str(self.path), timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
            )
            mode = self._connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise AuditError(
                    f"{self.path}: SQLite did not switch to WAL mode (journal_mode is {mode!r}); use a local file system"
                )
            self._connection.execute("PRAGMA synchronous=FULL")
            self._create_or_check()
        except AuditError:
            self._close_quietly()
            raise
        except (sqlite3.Error, OSError) as error:
            self._close_quietly()
            raise AuditError(f"cannot open audit file {self.path}: {_describe(error)}") from error

    def _close_quietly(self) -> None:
        connection = getattr(self, "_connection", None)
        if connection is not None:
            connection.close()

    def _create_or_check(self) -> None:
        connection = self._connection
        has_meta = connection.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
        ).fetchone()
        if not has_meta:
            file_id = uuid.uuid4().hex
            # One script, so two processes creating the same file at once cannot interleave;
            # OR IGNORE keeps the first creator's id. The values are hex digits only.
            connection.executescript(
                "BEGIN IMMEDIATE;"
                + _SCHEMA
                + f"INSERT OR IGNORE INTO meta (key, value) VALUES ('format', '{AUDIT_FORMAT}');"
                + f"INSERT OR IGNORE INTO meta (key, value) VALUES ('version', '{AUDIT_FORMAT_VERSION}');"
                + f"INSERT OR IGNORE INTO meta (key, value) VALUES ('file_id', '{file_id}');"
                + f"INSERT OR IGNORE INTO head (id, seq, hash) VALUES (1, 0, '{genesis_hash(file_id)}');"
                + "COMMIT;"
            )
        meta = _read_meta(connection, self.path)
        self.file_id = meta["file_id"]
        head = connection.execute("SELECT seq, hash FROM head WHERE id = 1").fetchone()
        last = connection.execute("SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1").fetchone()
        if head is None:
            raise AuditError(f"{self.path} has no head row; run `nc-safety audit verify {self.path}`")
        last_seq, last_hash = (
            (0, genesis_hash(self.file_id)) if last is None else (int(last[0]), str(last[1]))
        )
        if (int(head[0]), str(head[1])) != (last_seq, last_hash):
            # Appending to a broken chain would bury the damage, so the file is not used.
            raise AuditError(
                f"{self.path}: head (seq {head[0]}) does not match the last record (seq {last_seq}); "
                f"run `nc-safety audit verify {self.path}` and start a new file"
            )
        self.head_seq = last_seq
        self.head_hash = last_hash

    def append(self, pending: Sequence[PendingRecord]) -> list[AuditRecord]:
        """Append `pending` in one transaction and return the stored records.

        Raises AuditError when SQLite or the file system fails. Nothing of the batch is
        stored then and the head is unchanged, so the same batch can be appended again.
        """
        records: list[AuditRecord] = []
        seq, prev_hash = self.head_seq, self.head_hash
        rows = []
        for item in pending:
            seq += 1
            digest = record_hash(
                seq=seq,
                wall_time=item.wall_time,
                ros_time=item.ros_time,
                kind=item.kind,
                payload=item.payload,
                prev_hash=prev_hash,
            )
            record = AuditRecord(
                seq, item.wall_time, item.ros_time, item.kind, item.payload, prev_hash, digest
            )
            derived = derive_columns(item.payload)
            rows.append(
                (
                    seq,
                    item.wall_time,
                    item.ros_time,
                    item.kind,
                    record.payload_text,
                    prev_hash,
                    digest,
                    derived.requester,
                    json.dumps(list(derived.operators)),
                    json.dumps(list(derived.rule_ids)),
                )
            )
            records.append(record)
            prev_hash = digest
        if not rows:
            return records
        connection = self._connection
        try:
            connection.execute("BEGIN IMMEDIATE")
            connection.executemany(f"INSERT INTO records ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
            connection.execute("UPDATE head SET seq = ?, hash = ? WHERE id = 1", (seq, prev_hash))
            connection.execute("COMMIT")
        except (sqlite3.Error, OSError) as error:
            try:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # the failed COMMIT already ended the transaction
            raise AuditError(f"cannot write to audit file {self.path}: {_describe(error)}") from error
        self.head_seq, self.head_hash = seq, prev_hash
        return records

    def close(self) -> None:
        try:
            self._connection.close()
        except sqlite3.Error as error:
            raise AuditError(f"cannot close audit file {self.path}: {_describe(error)}") from error


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Filters for reading records; every field left at None matches everything."""

    since: float | None = None
    """Earliest wall time, in seconds since the Unix epoch (inclusive)."""
    until: float | None = None
    """Latest wall time, in seconds since the Unix epoch (inclusive)."""
    kinds: tuple[str, ...] = ()
    requester: str | None = None
    operator: str | None = None
    rule: str | None = None
    """A rule id, or a dotted prefix of one: `motion.obstacle` matches `motion.obstacle.stop`."""
    limit: int | None = None

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise AuditError(f"invalid limit {self.limit!r}: use a positive number of records")
        if self.since is not None and self.until is not None and self.since > self.until:
            raise AuditError(f"invalid time range: since {self.since!r} is after until {self.until!r}")


def _like_prefix(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + ".%"


def _row_to_record(row: Sequence[object]) -> AuditRecord:
    seq, wall_time, ros_time, kind, payload, prev_hash, digest = row[:7]
    return AuditRecord(
        seq=int(seq),  # type: ignore[call-overload]
        wall_time=float(wall_time),  # type: ignore[arg-type]
        ros_time=None if ros_time is None else float(ros_time),  # type: ignore[arg-type]
        kind=str(kind),
        payload=json.loads(str(payload)),
        prev_hash=str(prev_hash),
        hash=str(digest),
    )


class AuditReader:
    """An audit file opened read-only, for queries, verification and export."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise AuditError(f"audit file {self.path} not found")
        uri = self.path.resolve().as_uri()
        try:
            self._connection = sqlite3.connect(f"{uri}?mode=ro", uri=True)
            self.meta = _read_meta(self._connection, self.path)
        except sqlite3.Error as error:
            raise AuditError(f"cannot open audit file {self.path}: {_describe(error)}") from error

    @property
    def file_id(self) -> str:
        return self.meta["file_id"]

    def head(self) -> tuple[int, str] | None:
        """Return the head row (last committed seq and hash), or None when it is missing."""
        row = self._connection.execute("SELECT seq, hash FROM head WHERE id = 1").fetchone()
        return None if row is None else (int(row[0]), str(row[1]))

    def raw_rows(self) -> Iterator[tuple[object, ...]]:
        """Yield every stored row in seq order, with the derived columns, unchecked."""
        cursor = self._connection.execute(f"SELECT {_COLUMNS} FROM records ORDER BY seq")
        yield from cursor

    def records(self, query: AuditQuery | None = None) -> Iterator[AuditRecord]:
        """Yield the records that match `query`, in seq order."""
        query = query or AuditQuery()
        clauses: list[str] = []
        values: list[object] = []
        if query.since is not None:
            clauses.append("wall_time >= ?")
            values.append(query.since)
        if query.until is not None:
            clauses.append("wall_time <= ?")
            values.append(query.until)
        if query.kinds:
            clauses.append(f"kind IN ({','.join('?' for _ in query.kinds)})")
            values.extend(query.kinds)
        if query.requester is not None:
            clauses.append("requester = ?")
            values.append(query.requester)
        if query.operator is not None:
            clauses.append("EXISTS (SELECT 1 FROM json_each(records.operators) WHERE value = ?)")
            values.append(query.operator)
        if query.rule is not None:
            clauses.append(
                "EXISTS (SELECT 1 FROM json_each(records.rule_ids) "
                "WHERE value = ? OR value LIKE ? ESCAPE '\\')"
            )
            values.extend([query.rule, _like_prefix(query.rule)])
        sql = f"SELECT {_COLUMNS} FROM records"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY seq"
        if query.limit is not None:
            sql += " LIMIT ?"
            values.append(query.limit)
        try:
            for row in self._connection.execute(sql, values):
                yield _row_to_record(row)
        except sqlite3.Error as error:
            raise AuditError(f"cannot read audit file {self.path}: {_describe(error)}") from error

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> AuditReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
