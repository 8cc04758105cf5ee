"""Tampering with a copy of an audit file: `verify_file` names the first bad record."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from nc_safety.core.audit import AuditReader, AuditWriter, record_hash, verify_file

RECORDS = 10


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("audit") / "pristine.sqlite3"
    writer = AuditWriter(path)
    for index in range(1, RECORDS + 1):
        writer.submit("decision", {"requester": f"r{index}", "index": index}, ros_time=float(index))
    writer.close()
    return path


def tampered_copy(pristine: Path, tmp_path: Path, change: Callable[[sqlite3.Connection], None]) -> Path:
    path = tmp_path / "copy.sqlite3"
    shutil.copy(pristine, path)
    connection = sqlite3.connect(path)
    # Someone editing the file can drop the append-only triggers first.
    connection.execute("DROP TRIGGER records_no_update")
    connection.execute("DROP TRIGGER records_no_delete")
    change(connection)
    connection.commit()
    connection.close()
    return path


def row(connection: sqlite3.Connection, seq: int) -> tuple[object, ...]:
    return tuple(connection.execute("SELECT * FROM records WHERE seq = ?", (seq,)).fetchone())


def shift_up_from(connection: sqlite3.Connection, seq: int) -> None:
    """Make room at `seq` by renumbering every later record one up."""
    for current in range(RECORDS, seq - 1, -1):
        connection.execute("UPDATE records SET seq = ? WHERE seq = ?", (current + 1, current))


def edit_payload(connection: sqlite3.Connection) -> None:
    connection.execute("""UPDATE records SET payload = '{"index":4,"requester":"r4","x":1}' WHERE seq = 4""")


def edit_time(connection: sqlite3.Connection) -> None:
    connection.execute("UPDATE records SET wall_time = wall_time + 1 WHERE seq = 4")


def edit_query_column(connection: sqlite3.Connection) -> None:
    connection.execute("UPDATE records SET requester = 'someone else' WHERE seq = 4")


def delete_middle(connection: sqlite3.Connection) -> None:
    connection.execute("DELETE FROM records WHERE seq = 4")


def delete_first(connection: sqlite3.Connection) -> None:
    connection.execute("DELETE FROM records WHERE seq = 1")


def delete_last(connection: sqlite3.Connection) -> None:
    connection.execute("DELETE FROM records WHERE seq = ?", (RECORDS,))


def delete_middle_renumber(connection: sqlite3.Connection) -> None:
    connection.execute("DELETE FROM records WHERE seq = 4")
    for current in range(5, RECORDS + 1):
        connection.execute("UPDATE records SET seq = ? WHERE seq = ?", (current - 1, current))
    connection.execute("UPDATE head SET seq = seq - 1")


def insert_copied(connection: sqlite3.Connection) -> None:
    forged = list(row(connection, 4))
    shift_up_from(connection, 5)
    forged[0] = 5
    connection.execute("INSERT INTO records VALUES (?,?,?,?,?,?,?,?,?,?)", forged)


def insert_rehashed(connection: sqlite3.Connection) -> None:
    previous = row(connection, 4)
    payload = '{"index":99,"requester":"r99"}'
    digest = record_hash(
        seq=5,
        wall_time=1.0,
        ros_time=None,
        kind="decision",
        payload={"index": 99, "requester": "r99"},
        prev_hash=str(previous[6]),
    )
    shift_up_from(connection, 5)
    connection.execute(
        "INSERT INTO records VALUES (5, 1.0, NULL, 'decision', ?, ?, ?, 'r99', '[]', '[]')",
        (payload, previous[6], digest),
    )


def swap_records(connection: sqlite3.Connection) -> None:
    connection.execute("UPDATE records SET seq = -1 WHERE seq = 4")
    connection.execute("UPDATE records SET seq = 4 WHERE seq = 6")
    connection.execute("UPDATE records SET seq = 6 WHERE seq = -1")


def swap_adjacent(connection: sqlite3.Connection) -> None:
    connection.execute("UPDATE records SET seq = -1 WHERE seq = 7")
    connection.execute("UPDATE records SET seq = 7 WHERE seq = 8")
    connection.execute("UPDATE records SET seq = 8 WHERE seq = -1")


@pytest.mark.parametrize(
    ("change", "first_bad", "problem"),
    [
        (edit_payload, 4, "does not match its hash"),
        (edit_time, 4, "does not match its hash"),
        (edit_query_column, 4, "query columns"),
        (delete_middle, 4, "record 4 is missing"),
        (delete_first, 1, "record 1 is missing"),
        (delete_last, RECORDS, f"records {RECORDS} to {RECORDS} are missing"),
        (delete_middle_renumber, 4, "does not link"),
        (insert_copied, 5, "does not link"),
        # A forged record with a valid hash shows at the record after it, which was renumbered.
        (insert_rehashed, 6, "does not link"),
        (swap_records, 4, "does not link"),
        (swap_adjacent, 7, "does not link"),
    ],
)
def test_verify_names_first_bad(
    pristine: Path, tmp_path: Path, change: Callable[[sqlite3.Connection], None], first_bad: int, problem: str
) -> None:
    path = tampered_copy(pristine, tmp_path, change)

    result = verify_file(path)

    assert not result.ok
    assert result.first_bad_seq == first_bad
    assert problem in result.problem


def test_verify_passes_pristine(pristine: Path) -> None:
    result = verify_file(pristine)

    assert result.ok
    assert result.records_checked == RECORDS
    assert result.head_seq == RECORDS


def test_truncation_needs_anchor(pristine: Path, tmp_path: Path) -> None:
    with AuditReader(pristine) as reader:
        anchor = reader.head()
        ninth = next(record for record in reader.records() if record.seq == RECORDS - 1)
    assert anchor is not None

    def truncate_and_fix_head(connection: sqlite3.Connection) -> None:
        connection.execute("DELETE FROM records WHERE seq = ?", (RECORDS,))
        connection.execute("UPDATE head SET seq = ?, hash = ?", (ninth.seq, ninth.hash))

    path = tampered_copy(pristine, tmp_path, truncate_and_fix_head)
    without_anchor = verify_file(path)
    with_anchor = verify_file(path, expected_head=anchor)

    assert without_anchor.ok
    assert not with_anchor.ok
    assert with_anchor.first_bad_seq == RECORDS
    assert "rewritten" in with_anchor.problem
