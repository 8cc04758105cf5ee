"""Child process for the audit crash and disk-full tests: writes through the real AuditWriter.

Prints `ACK n` once record n is committed, `FAILURE kind message` for each reported
failure, and `DONE` after a clean close.

    audit_child.py PATH flood                 write until killed
    audit_child.py PATH fsize BYTES COUNT     write COUNT records under RLIMIT_FSIZE=BYTES
    audit_child.py PATH nobody COUNT          write COUNT records as uid/gid 65534
"""

from __future__ import annotations

import os
import resource
import signal
import sys
import threading

from nc_safety.core.audit import AuditError, AuditFailure, AuditRecord, AuditWriter, WriterConfig

_print_lock = threading.Lock()


def emit(line: str) -> None:
    with _print_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def on_commit(records: list[AuditRecord]) -> None:
    lines = [f"ACK {record.payload['n']}" for record in records if isinstance(record.payload, dict)]
    if lines:
        emit("\n".join(lines))


def on_failure(failure: AuditFailure) -> None:
    emit(f"FAILURE {failure.kind.value} {failure.message}")


def payload(n: int) -> dict[str, object]:
    # About 300 bytes, the size of a short decision record.
    return {"n": n, "requester": f"requester{n % 7}", "rule_id": "motion.obstacle.stop", "pad": "x" * 200}


def write(path: str, count: int | None) -> int:
    config = WriterConfig(put_timeout_s=0.2, retry_interval_s=0.05, close_timeout_s=0.5)
    try:
        writer = AuditWriter(path, config=config, on_failure=on_failure, on_commit=on_commit)
    except AuditError as error:
        emit(f"FAILURE open_failed {error}")
        return 3
    n = 0
    while count is None or n < count:
        writer.submit("decision", payload(n), ros_time=float(n))
        n += 1
    complete = writer.close()
    emit("DONE" if complete else "INCOMPLETE")
    return 0 if writer.healthy and complete else 3


def main(argv: list[str]) -> int:
    path, mode = argv[0], argv[1]
    if mode == "flood":
        return write(path, None)
    if mode == "fsize":
        # Without this the kernel ends the process with SIGXFSZ instead of failing the write.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        limit = int(argv[2])
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        return write(path, int(argv[3]))
    if mode == "nobody":
        os.setgid(65534)
        os.setuid(65534)
        return write(path, int(argv[2]))
    emit(f"FAILURE usage unknown mode {mode!r}")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
