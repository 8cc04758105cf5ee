"""Audit store and writer on real SQLite files: chain, queries, failures, shutdown."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from nc_safety.core.audit import (
    AuditError,
    AuditFailure,
    AuditQuery,
    AuditReader,
    AuditStore,
    AuditWriter,
    FailureKind,
    PendingRecord,
    WriterConfig,
    genesis_hash,
    verify_file,
)
from nc_safety.core.justification import OverrideNote, Reason, combine
from nc_safety.core.verdict import ReasonKind, RefutableBy, Severity, Verdict


def make_decision(requester: str, rule_id: str, operator: str | None = None) -> object:
    reason = Reason(
        rule_id=rule_id,
        kind=ReasonKind.SAFETY,
        verdict=Verdict.REFUSE,
        severity=Severity.HIGH,
        message="Obstacle ahead: stopping.",
        refutable_by=RefutableBy.OPERATOR,
    )
    notes = ()
    if operator is not None:
        notes = (OverrideNote("o1", operator, "operator", "clearing a jam", 100.0, (rule_id,)),)
    return combine(
        stamp=1.0,
        wall_time=2.0,
        command_kind="twist",
        command_id="c1",
        requester=requester,
        reasons=[reason],
        overrides=notes,
    )


def test_store_chains_records(tmp_path: Path) -> None:
    store = AuditStore(tmp_path / "audit.sqlite3")
    records = store.append(
        [PendingRecord("start", {"node": "n"}, 10.0, 1.0), PendingRecord("stop", {}, 11.0, None)]
    )
    store.close()

    assert [record.seq for record in records] == [1, 2]
    assert records[0].prev_hash == genesis_hash(store.file_id)
    assert records[1].prev_hash == records[0].hash
    assert records[1].ros_time is None


def test_store_uses_wal_and_full_sync(tmp_path: Path) -> None:
    store = AuditStore(tmp_path / "audit.sqlite3")
    mode = store._connection.execute("PRAGMA journal_mode").fetchone()[0]
    synchronous = store._connection.execute("PRAGMA synchronous").fetchone()[0]
    store.close()

    assert mode == "wal"
    assert synchronous == 2  # FULL


def test_store_rejects_update_trigger(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite3"
    store = AuditStore(path)
    store.append([PendingRecord("start", {}, 10.0, None)])
    store.close()
    connection = sqlite3.connect(path)

    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        connection.execute("UPDATE records SET kind = 'stop'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        connection.execute("DELETE FROM records")


def test_store_reopen_continues_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite3"
    first = AuditStore(path)
    first.append([PendingRecord("start", {}, 10.0, None)])
    first.close()
    second = AuditStore(path)
    records = second.append([PendingRecord("stop", {}, 11.0, None)])
    second.close()

    assert records[0].seq == 2
    assert verify_file(path).ok


def test_store_rejects_foreign_file(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite3"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE meta (key TEXT, value TEXT)")
    connection.execute("INSERT INTO meta VALUES ('format', 'something/else')")
    connection.commit()
    connection.close()

    with pytest.raises(AuditError, match="not an nc_safety audit file"):
        AuditStore(path)


def test_store_rejects_garbage_file(tmp_path: Path) -> None:
    path = tmp_path / "garbage.sqlite3"
    path.write_bytes(b"this is not a database" * 100)

    with pytest.raises(AuditError, match=r"garbage\.sqlite3"):
        AuditStore(path)


def test_writer_commits_and_flushes(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite3"
    writer = AuditWriter(path)
    for index in range(1000):
        assert writer.submit("decision", {"index": index}, ros_time=float(index))
    flushed = writer.flush(10.0)
    head_seq = writer.head[0]
    closed = writer.close()

    assert flushed
    assert head_seq == 1000
    assert closed
    assert verify_file(path).ok


def test_writer_encodes_decision_objects(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite3"
    writer = AuditWriter(path)
    writer.submit("decision", make_decision("/cmd_vel_in", "motion.obstacle.stop"))  # type: ignore[arg-type]
    writer.close()
    with AuditReader(path) as reader:
        records = list(reader.records())

    assert records[0].payload["command"]["requester"] == "/cmd_vel_in"  # type: ignore[index,call-overload]


def test_writer_records_invalid_payload_as_fault(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite3"
    writer = AuditWriter(path)
    writer.submit("decision", {"value": float("nan")})
    writer.close()
    with AuditReader(path) as reader:
        record = next(reader.records())

    assert record.kind == "fault"
    assert record.payload["rule_id"] == "audit.invalid_payload"  # type: ignore[index,call-overload]
    assert record.payload["original_kind"] == "decision"  # type: ignore[index,call-overload]


def test_writer_rejects_invalid_kind(tmp_path: Path) -> None:
    writer = AuditWriter(tmp_path / "audit.sqlite3")
    try:
        with pytest.raises(AuditError, match="invalid audit record kind 'Bad Kind'"):
            writer.submit("Bad Kind", {})
    finally:
        writer.close()


def test_writer_rejects_submit_after_close(tmp_path: Path) -> None:
    writer = AuditWriter(tmp_path / "audit.sqlite3")
    writer.close()

    with pytest.raises(AuditError, match="closed; record 'stop' was not queued"):
        writer.submit("stop", {})


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (WriterConfig(queue_size=0), "queue_size 0"),
        (WriterConfig(batch_max=0), "batch_max 0"),
        (WriterConfig(put_timeout_s=-1.0), "put_timeout_s -1.0"),
        (WriterConfig(retry_interval_s=0.0), "retry_interval_s 0.0"),
        (WriterConfig(close_timeout_s=float("inf")), "close_timeout_s inf"),
    ],
)
def test_writer_config_rejects_bad_values(tmp_path: Path, config: WriterConfig, message: str) -> None:
    with pytest.raises(AuditError, match=message):
        AuditWriter(tmp_path / "audit.sqlite3", config=config)


def test_writer_reports_full_queue(tmp_path: Path) -> None:
    failures: list[AuditFailure] = []
    release = threading.Event()

    def block_commit(_records: object) -> None:
        release.wait(10.0)

    writer = AuditWriter(
        tmp_path / "audit.sqlite3",
        config=WriterConfig(queue_size=2, put_timeout_s=0.01, batch_max=1),
        on_failure=failures.append,
        on_commit=block_commit,
    )
    accepted = [writer.submit("decision", {"index": index}) for index in range(10)]
    release.set()
    writer.close()

    assert not all(accepted)
    assert failures[0].kind is FailureKind.QUEUE_FULL
    assert "not written" in failures[0].message
    assert writer.rejected == accepted.count(False)


def test_writer_retries_after_write_failure(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite3"
    failures: list[AuditFailure] = []
    recovered = threading.Event()
    blocker = sqlite3.connect(path, isolation_level=None, timeout=0.1)
    writer = AuditWriter(
        path,
        config=WriterConfig(retry_interval_s=0.05),
        on_failure=failures.append,
        on_recovered=lambda _lost: recovered.set(),
    )
    writer._store._connection.execute("PRAGMA busy_timeout = 10")
    # Another connection holding the write lock makes every commit fail with "database is locked".
    blocker.execute("BEGIN IMMEDIATE")
    writer.submit("decision", {"index": 1})
    failed = writer.flush(0.5)
    blocker.execute("COMMIT")
    came_back = recovered.wait(10.0)
    flushed = writer.flush(10.0)
    writer.close()
    blocker.close()

    assert not failed
    assert failures[0].kind is FailureKind.WRITE_FAILED
    assert "locked" in failures[0].message
    assert came_back
    assert flushed
    assert verify_file(path).records_checked == 1


def test_writer_open_failure_names_path(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")

    with pytest.raises(AuditError, match=r"cannot open audit file .*file/audit\.sqlite3"):
        AuditWriter(blocker / "audit.sqlite3")


def make_filtered_file(path: Path) -> None:
    writer = AuditWriter(path)
    writer.submit("decision", make_decision("/cmd_vel_in", "motion.obstacle.stop"), wall_time=100.0)  # type: ignore[arg-type]
    writer.submit("decision", make_decision("alice", "directive.norm.knife", "op1"), wall_time=200.0)  # type: ignore[arg-type]
    writer.submit(
        "override.request", {"operator_id": "op2", "rule_ids": ["motion.limit.linear_x"]}, wall_time=300.0
    )
    writer.submit("start", {"node": "nc_safety"}, wall_time=400.0)
    writer.close()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (AuditQuery(), [1, 2, 3, 4]),
        (AuditQuery(since=150.0, until=350.0), [2, 3]),
        (AuditQuery(kinds=("start", "override.request")), [3, 4]),
        (AuditQuery(requester="alice"), [2]),
        (AuditQuery(operator="op1"), [2]),
        (AuditQuery(operator="op2"), [3]),
        (AuditQuery(rule="motion"), [1, 3]),
        (AuditQuery(rule="motion.obstacle.stop"), [1]),
        (AuditQuery(rule="motion.obst"), []),
        (AuditQuery(limit=2), [1, 2]),
    ],
)
def test_reader_filters(tmp_path: Path, query: AuditQuery, expected: list[int]) -> None:
    path = tmp_path / "audit.sqlite3"
    make_filtered_file(path)
    with AuditReader(path) as reader:
        seqs = [record.seq for record in reader.records(query)]

    assert seqs == expected


def test_query_rejects_reversed_range() -> None:
    with pytest.raises(AuditError, match=r"since 5\.0 is after until 1\.0"):
        AuditQuery(since=5.0, until=1.0)


def test_reader_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AuditError, match=r"missing\.sqlite3 not found"):
        AuditReader(tmp_path / "missing.sqlite3")
