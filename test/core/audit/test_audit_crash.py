"""SIGKILL during heavy writes, and writes that fail for lack of space or permission.

Each case runs the real AuditWriter in a child process (test/core/audit/audit_child.py)
and reads its `ACK n` lines: a record is acknowledged once the writer has committed it.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from nc_safety.core.audit import AuditReader, verify_file

CHILD = Path(__file__).with_name("audit_child.py")
KILLS = 20
SEED = 20260108


class Child:
    """The writer child with its output lines collected by a thread."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self.process = subprocess.Popen(
            [sys.executable, str(CHILD), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.endswith("\n"):  # a line cut by SIGKILL was never acknowledged in full
                with self._lock:
                    self.lines.append(line.rstrip("\n"))

    def acked(self) -> set[int]:
        with self._lock:
            return {int(line.split()[1]) for line in self.lines if line.startswith("ACK ")}

    def wait_for_acks(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.acked()) < count:
            if self.process.poll() is not None:
                raise AssertionError(f"writer child exited early: {self.output()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"fewer than {count} records acknowledged within {timeout} s")
            time.sleep(0.002)

    def finish(self, timeout: float = 30.0) -> int:
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout)
        return code

    def output(self) -> str:
        with self._lock:
            return "\n".join(line for line in self.lines if not line.startswith("ACK "))


def stored_numbers(path: Path) -> list[int]:
    with AuditReader(path) as reader:
        return [int(record.payload["n"]) for record in reader.records()]  # type: ignore[index,call-overload]


def test_sigkill_loop_keeps_acked(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite3"
    chooser = random.Random(SEED)
    acknowledged: list[set[int]] = []

    for _ in range(KILLS):
        child = Child(str(path), "flood")
        child.wait_for_acks(chooser.randint(1, 3000), timeout=60.0)
        time.sleep(chooser.uniform(0.0, 0.03))  # kill at a random point of a later batch
        child.process.send_signal(signal.SIGKILL)
        child.finish()
        acknowledged.append(child.acked())

        result = verify_file(path)
        assert result.ok, f"verify failed after a kill: {result.problem} (seed {SEED})"

    # Every run restarts numbering at 0, so the runs' records follow each other in the file.
    numbers = stored_numbers(path)
    runs: list[set[int]] = []
    for number in numbers:
        if number == 0:
            runs.append(set())
        runs[-1].add(number)
    assert len(runs) == KILLS
    for run, (stored, acked) in enumerate(zip(runs, acknowledged, strict=True)):
        assert acked <= stored, f"run {run}: acknowledged records missing: {sorted(acked - stored)[:10]}"


def test_file_size_limit_reports_failure(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite3"
    # 1 MiB lets the first batches commit before the WAL reaches the limit.
    child = Child(str(path), "fsize", str(1024 * 1024), "5000")
    code = child.finish()
    output = child.output()

    assert code == 3, output
    assert "FAILURE write_failed" in output
    assert "audit.sqlite3" in output
    assert "INCOMPLETE" in output
    result = verify_file(path)
    assert result.ok, result.problem
    assert child.acked()
    assert child.acked() <= set(stored_numbers(path))


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Path:
    if os.geteuid() != 0:
        pytest.skip("dropping to uid 65534 needs root; as another user chmod alone is the test")
    folder = tmp_path / "readonly"
    folder.mkdir()
    tmp_path.chmod(0o755)
    folder.chmod(0o555)
    return folder


def nobody_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[3])
    return env


def test_read_only_dir_reports_open_failure(read_only_dir: Path) -> None:
    child = Child(str(read_only_dir / "audit.sqlite3"), "nobody", "10", env=nobody_env())
    code = child.finish()
    output = child.output()

    assert code == 3, output
    assert "FAILURE open_failed" in output
    assert "cannot open audit file" in output


def test_read_only_file_reports_write_failure(read_only_dir: Path, tmp_path: Path) -> None:
    path = read_only_dir / "audit.sqlite3"
    read_only_dir.chmod(0o755)
    writer_child = Child(str(path), "fsize", str(10**9), "10")
    assert writer_child.finish() == 0, writer_child.output()
    path.chmod(0o444)
    read_only_dir.chmod(0o555)

    child = Child(str(path), "nobody", "10", env=nobody_env())
    code = child.finish()
    output = child.output()

    assert code == 3, output
    assert "FAILURE" in output
    assert "readonly" in output or "read-only" in output or "cannot open" in output
