"""`nc-safety audit` verify, show and export on real files, run as a user would."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from mcap.reader import make_reader

from nc_safety.console.audit_cli import main
from nc_safety.core.audit import AuditReader, AuditWriter

RECORDS = 50


@pytest.fixture
def audit_file(tmp_path: Path) -> Path:
    path = tmp_path / "audit.sqlite3"
    writer = AuditWriter(path)
    writer.submit("start", {"node": "nc_safety", "policy_hash": "abc"}, wall_time=1000.0, ros_time=5.0)
    for index in range(1, RECORDS - 1):
        requester = "alice" if index % 2 else "/cmd_vel_in"
        payload = {
            "command": {"kind": "directive", "id": str(index), "requester": requester},
            "verdict": "refuse",
            "reasons": [{"rule_id": "directive.norm.knife" if index % 2 else "motion.obstacle.stop"}],
        }
        writer.submit("decision", payload, wall_time=1000.0 + index, ros_time=5.0 + index)
    writer.submit("stop", {"node": "nc_safety"}, wall_time=2000.0, ros_time=None)
    writer.close()
    return path


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nc_safety.console.cli", "audit", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_verify_ok_exit_zero(audit_file: Path) -> None:
    result = run_cli("verify", str(audit_file))

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"OK {audit_file}: {RECORDS} records, head {RECORDS}:")


def test_verify_broken_prints_seq(audit_file: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.sqlite3"
    shutil.copy(audit_file, copy)
    connection = sqlite3.connect(copy)
    connection.execute("DROP TRIGGER records_no_update")
    connection.execute("UPDATE records SET payload = replace(payload, 'refuse', 'comply') WHERE seq = 17")
    connection.commit()
    connection.close()

    result = run_cli("verify", str(copy))

    assert result.returncode == 1
    assert "first bad seq 17" in result.stdout


def test_verify_expect_head_mismatch(audit_file: Path) -> None:
    result = run_cli("verify", str(audit_file), "--expect-head", f"3:{'0' * 64}")

    assert result.returncode == 1
    assert "first bad seq 3" in result.stdout


def test_verify_missing_file(tmp_path: Path) -> None:
    result = run_cli("verify", str(tmp_path / "none.sqlite3"))

    assert result.returncode == 2
    assert "none.sqlite3 not found" in result.stderr


def test_show_filters(audit_file: Path) -> None:
    result = run_cli("show", str(audit_file), "--requester", "alice", "--rule", "directive.norm", "--json")
    records = [json.loads(line) for line in result.stdout.splitlines()]

    assert result.returncode == 0, result.stderr
    assert len(records) == 24
    assert {record["payload"]["command"]["requester"] for record in records} == {"alice"}


def test_show_time_and_kind(audit_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["show", str(audit_file), "--since", "1010", "--until", "1012.5", "--kind", "decision"])
    lines = capsys.readouterr().out.splitlines()

    assert code == 0
    assert lines[-1] == "3 record(s)"
    assert "verdict=refuse" in lines[0]


def test_show_bad_time_exit_two(audit_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["show", str(audit_file), "--since", "yesterday"])

    assert code == 2
    assert "invalid time 'yesterday'" in capsys.readouterr().err


def test_export_jsonl_round_trip(audit_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "audit.jsonl"
    result = run_cli("export", str(audit_file), "--jsonl", str(out))
    exported = [json.loads(line) for line in out.read_text().splitlines()]
    with AuditReader(audit_file) as reader:
        stored = [record.to_json() for record in reader.records()]

    assert result.returncode == 0, result.stderr
    assert exported == stored


def test_export_mcap_round_trip(audit_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "audit.mcap"
    result = run_cli("export", str(audit_file), "--mcap", str(out))
    with AuditReader(audit_file) as reader:
        stored = {record.seq: record for record in reader.records()}
    with out.open("rb") as stream:
        mcap_reader = make_reader(stream)
        summary = mcap_reader.get_summary()
        messages = list(mcap_reader.iter_messages())

    assert result.returncode == 0, result.stderr
    assert summary is not None
    assert summary.statistics is not None
    assert summary.statistics.message_count == RECORDS
    assert len(messages) == RECORDS
    for schema, channel, message in messages:
        record = json.loads(message.data)
        original = stored[record["seq"]]
        assert record == original.to_json()
        assert channel.topic == f"/nc_safety/audit/{original.kind}"
        assert channel.message_encoding == "json"
        assert schema is not None
        assert schema.encoding == "jsonschema"
        assert message.log_time == int(original.wall_time * 1e9)
    assert {json.loads(message.data)["seq"] for _, _, message in messages} == set(stored)


def test_export_refuses_broken_file(audit_file: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.sqlite3"
    shutil.copy(audit_file, copy)
    connection = sqlite3.connect(copy)
    connection.execute("DROP TRIGGER records_no_delete")
    connection.execute("DELETE FROM records WHERE seq = 9")
    connection.commit()
    connection.close()

    refused = run_cli("export", str(copy), "--jsonl", str(tmp_path / "a.jsonl"))
    allowed = run_cli("export", str(copy), "--jsonl", str(tmp_path / "b.jsonl"), "--allow-unverified")

    assert refused.returncode == 1
    assert "first bad seq 9" in refused.stderr
    assert allowed.returncode == 0
    assert len((tmp_path / "b.jsonl").read_text().splitlines()) == RECORDS - 1


def test_export_needs_one_output(audit_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["export", str(audit_file)])

    assert code == 2
    assert "exactly one of --jsonl OUT or --mcap OUT" in capsys.readouterr().err
