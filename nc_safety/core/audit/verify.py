"""Verification of an audit file's hash chain.

Detects records that were edited: the hash no longer matches the fields. Detects deleted
records by a gap in seq or a broken `prev_hash` link, and inserted or reordered records by
a broken link or a hash over the wrong seq. Records cut off the end show because the head
row names a later record.

NOTE: someone who rewrites every record from the damaged one onwards and the head row
produces a valid chain. Only an anchor kept elsewhere catches that: compare the head
printed by `verify` (or logged by the node at stop) with `expected_head`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from nc_safety.core.audit.record import AuditError, AuditRecord, derive_columns, genesis_hash
from nc_safety.core.audit.store import AuditReader
from nc_safety.core.canonical import canonical_json


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """Outcome of verifying one file."""

    ok: bool
    records_checked: int
    """Records read before the first problem (all of them when `ok`)."""
    head_seq: int
    """Seq of the last good record."""
    head_hash: str
    """Hash of the last good record (the genesis hash when there is none)."""
    first_bad_seq: int | None = None
    problem: str = ""


def _check_record(
    row: tuple[object, ...], expected_seq: int, prev_hash: str
) -> tuple[AuditRecord | None, str]:
    seq = int(row[0])  # type: ignore[call-overload]
    if seq != expected_seq:
        return None, f"record {expected_seq} is missing (the next stored record is {seq})"
    try:
        payload = json.loads(str(row[4]))
    except json.JSONDecodeError as error:
        return None, f"record {seq} has a payload that is not JSON ({error})"
    if canonical_json(payload) != row[4]:
        return None, f"record {seq} has a payload that is not in canonical JSON form (edited)"
    record = AuditRecord(
        seq=seq,
        wall_time=float(row[1]),  # type: ignore[arg-type]
        ros_time=None if row[2] is None else float(row[2]),  # type: ignore[arg-type]
        kind=str(row[3]),
        payload=payload,
        prev_hash=str(row[5]),
        hash=str(row[6]),
    )
    if record.prev_hash != prev_hash:
        return None, (
            f"record {seq} does not link to the record before it (prev_hash differs): "
            "a record was deleted, inserted or reordered here"
        )
    if record.expected_hash() != record.hash:
        return None, f"record {seq} does not match its hash: it was edited, moved or renumbered"
    derived = derive_columns(payload)
    stored = (row[7], json.loads(str(row[8])), json.loads(str(row[9])))
    if stored != (derived.requester, list(derived.operators), list(derived.rule_ids)):
        return None, f"record {seq} has query columns that do not match its payload (edited)"
    return record, ""


def iter_verified(reader: AuditReader) -> Iterator[tuple[AuditRecord | None, VerifyResult | None]]:
    """Yield each record once checked; the last item carries the result instead of a record."""
    prev_hash = genesis_hash(reader.file_id)
    expected_seq = 1
    count = 0
    for row in reader.raw_rows():
        record, problem = _check_record(row, expected_seq, prev_hash)
        if record is None:
            yield None, VerifyResult(False, count, expected_seq - 1, prev_hash, expected_seq, problem)
            return
        count += 1
        yield record, None
        prev_hash = record.hash
        expected_seq += 1
    last_seq = expected_seq - 1
    head = reader.head()
    if head is None:
        yield None, VerifyResult(False, count, last_seq, prev_hash, last_seq + 1, "the head row is missing")
        return
    head_seq, head_hash = head
    if head_seq > last_seq:
        problem = f"records {last_seq + 1} to {head_seq} are missing: the head row names record {head_seq}"
        yield None, VerifyResult(False, count, last_seq, prev_hash, last_seq + 1, problem)
        return
    if head_seq < last_seq or head_hash != prev_hash:
        problem = f"the head row (seq {head_seq}) does not match the last record {last_seq}"
        bad = min(head_seq + 1, last_seq)
        yield None, VerifyResult(False, count, last_seq, prev_hash, bad, problem)
        return
    yield None, VerifyResult(True, count, last_seq, prev_hash)


def verify_file(path: str | Path, *, expected_head: tuple[int, str] | None = None) -> VerifyResult:
    """Check the whole chain of the audit file at `path`.

    `expected_head` is a (seq, hash) pair recorded elsewhere earlier; the file must still
    contain that record with that hash. Raises AuditError when the file cannot be read.
    """
    seen: dict[int, str] = {}
    result: VerifyResult | None = None
    with AuditReader(path) as reader:
        for record, outcome in iter_verified(reader):
            if record is not None and expected_head is not None and record.seq == expected_head[0]:
                seen[record.seq] = record.hash
            if outcome is not None:
                result = outcome
    if result is None:  # pragma: no cover - iter_verified always ends with a result
        raise AuditError(f"verification of {path} ended without a result")
    if result.ok and expected_head is not None:
        seq, digest = expected_head
        if seen.get(seq) != digest:
            found = "missing" if seq not in seen else f"hash {seen[seq]}"
            return VerifyResult(
                False,
                result.records_checked,
                result.head_seq,
                result.head_hash,
                seq,
                f"record {seq} does not match the expected head {digest} ({found}): the file was rewritten",
            )
    return result
