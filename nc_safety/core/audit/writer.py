"""The audit writer: a bounded queue on the decision path, a thread that commits in batches.

Producers call `submit`, which only enqueues. The writer thread takes everything queued
(up to `batch_max` records) and commits it in one transaction, so the fsync cost of
`synchronous=FULL` is shared by the batch. A record counts as acknowledged once
`on_commit` has been called with it: a crash after that point cannot lose it.

Nothing is dropped silently. When the queue stays full for `put_timeout_s`, `submit`
returns False and reports an `AuditFailure`. When a commit fails, the writer keeps the
batch, reports the failure once, retries every `retry_interval_s`, and reports the
recovery with the number of records that producers could not queue meanwhile.
"""

from __future__ import annotations

import atexit
import math
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from types import FrameType
from typing import Any

from nc_safety.core.audit.record import AuditError, AuditPayload, AuditRecord, finite_or_none, validate_kind
from nc_safety.core.audit.store import AuditStore, PendingRecord
from nc_safety.core.canonical import canonical_json
from nc_safety.core.justification import JsonValue


class FailurePolicy(str, Enum):
    """Node behaviour when the audit trail cannot be written."""

    FAIL_SAFE = "fail_safe"
    """Stop motion with a `fault` naming the audit until writes succeed again."""
    DEGRADE = "degrade"
    """Keep running and warn; decisions made meanwhile may be missing from the trail."""


class FailureKind(str, Enum):
    OPEN_FAILED = "open_failed"
    WRITE_FAILED = "write_failed"
    QUEUE_FULL = "queue_full"
    CLOSE_TIMED_OUT = "close_timed_out"


@dataclass(frozen=True, slots=True)
class AuditFailure:
    """One failure to record, as passed to the failure callback."""

    kind: FailureKind
    path: str
    message: str
    records_pending: int
    """Records queued or in the failed batch, not yet committed."""
    records_rejected: int
    """Records that producers could not queue since the writer started."""


@dataclass(frozen=True, slots=True)
class WriterConfig:
    """Limits of the writer; every value is checked by `validate`."""

    queue_size: int = 10_000
    """Records that may wait for the writer thread."""
    put_timeout_s: float = 0.05
    """How long `submit` blocks on a full queue before it reports a failure, in seconds."""
    batch_max: int = 512
    """Most records committed in one transaction."""
    retry_interval_s: float = 1.0
    """Pause between attempts to commit a batch that failed, in seconds."""
    close_timeout_s: float = 5.0
    """How long `close` waits for queued records to be committed, in seconds."""

    def validate(self) -> WriterConfig:
        problems = []
        if self.queue_size < 1:
            problems.append(f"queue_size {self.queue_size!r} must be at least 1")
        if self.batch_max < 1:
            problems.append(f"batch_max {self.batch_max!r} must be at least 1")
        for name, minimum in (("put_timeout_s", 0.0), ("close_timeout_s", 0.0), ("retry_interval_s", 0.001)):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= minimum):
                problems.append(f"{name} {value!r} must be a finite number of seconds >= {minimum}")
        if problems:
            raise AuditError("invalid audit writer configuration: " + "; ".join(problems))
        return self


@dataclass(frozen=True, slots=True)
class _Queued:
    kind: str
    payload: AuditPayload
    wall_time: float
    ros_time: float | None


FailureCallback = Callable[[AuditFailure], None]
RecoveryCallback = Callable[[int], None]
CommitCallback = Callable[[list[AuditRecord]], None]


def _encode(item: _Queued) -> PendingRecord:
    """Turn a queued item into a JSON value; a payload JSON cannot carry becomes a fault record."""
    payload_source = item.payload
    try:
        to_json = getattr(payload_source, "to_json", None)
        payload: Any = to_json() if callable(to_json) else dict(payload_source)  # type: ignore[arg-type]
        canonical_json(payload)
        return PendingRecord(item.kind, payload, item.wall_time, item.ros_time)
    except (TypeError, ValueError) as error:
        fault: dict[str, JsonValue] = {
            "rule_id": "audit.invalid_payload",
            "original_kind": item.kind,
            "error": f"{type(error).__name__}: {error}",
            "text": repr(payload_source)[:4096],
        }
        return PendingRecord("fault", fault, item.wall_time, item.ros_time)


class AuditWriter:
    """Appends records to an audit file from a background thread.

    Raises AuditError from the constructor when the file cannot be opened or the
    configuration is invalid. Callbacks run on the writer thread (failures of `submit`
    on the producer's thread) and must not block.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        config: WriterConfig | None = None,
        on_failure: FailureCallback | None = None,
        on_recovered: RecoveryCallback | None = None,
        on_commit: CommitCallback | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = (config or WriterConfig()).validate()
        self.path = Path(path)
        self._on_failure = on_failure
        self._on_recovered = on_recovered
        self._on_commit = on_commit
        self._clock = clock
        self._queue: queue.Queue[_Queued] = queue.Queue(maxsize=self.config.queue_size)
        self._store = AuditStore(self.path)
        self._condition = threading.Condition()
        self._submitted = 0
        self._committed = 0
        self._rejected = 0
        self._rejected_while_failed = 0
        self._failed = False
        self._last_error = ""
        self._closing = threading.Event()
        self._closed = False
        self._head = (self._store.head_seq, self._store.head_hash)
        self._thread = threading.Thread(target=self._run, name="nc_safety-audit-writer", daemon=True)
        self._thread.start()
        atexit.register(self._close_at_exit)

    # Producer side -------------------------------------------------------------------

    def submit(
        self,
        kind: str,
        payload: AuditPayload,
        *,
        ros_time: float | None = None,
        wall_time: float | None = None,
    ) -> bool:
        """Queue one record; return False (after reporting a failure) when it could not be queued.

        `payload` is a mapping of JSON values or an object with `to_json()`, such as a
        `Decision`. It is encoded on the writer thread, so it must not change afterwards.
        Raises AuditError for an invalid kind or when the writer is closed.
        """
        validate_kind(kind)
        if self._closing.is_set():
            raise AuditError(f"audit writer for {self.path} is closed; record {kind!r} was not queued")
        item = _Queued(
            kind, payload, self._clock() if wall_time is None else wall_time, finite_or_none(ros_time)
        )
        with self._condition:
            self._submitted += 1
        try:
            self._queue.put(item, timeout=self.config.put_timeout_s)
        except queue.Full:
            with self._condition:
                self._submitted -= 1
                self._rejected += 1
                if self._failed:
                    self._rejected_while_failed += 1
                self._condition.notify_all()
            self._report(
                FailureKind.QUEUE_FULL,
                f"audit queue full ({self.config.queue_size} records) for {self.config.put_timeout_s} s; "
                f"record {kind!r} was not written",
            )
            return False
        return True

    def flush(self, timeout_s: float) -> bool:
        """Wait until every record queued before this call is committed; False on timeout."""
        with self._condition:
            target = self._submitted
            return self._condition.wait_for(lambda: self._committed >= target, timeout=timeout_s)

    # State -------------------------------------------------------------------------

    @property
    def head(self) -> tuple[int, str]:
        """Seq and hash of the last committed record."""
        with self._condition:
            return self._head

    @property
    def healthy(self) -> bool:
        with self._condition:
            return not self._failed

    @property
    def last_error(self) -> str:
        with self._condition:
            return self._last_error

    @property
    def pending(self) -> int:
        """Records submitted but not committed yet."""
        with self._condition:
            return self._submitted - self._committed

    @property
    def rejected(self) -> int:
        """Records that could not be queued since the writer started."""
        with self._condition:
            return self._rejected

    # Writer thread ------------------------------------------------------------------

    def _take_batch(self, batch: list[PendingRecord]) -> None:
        while len(batch) < self.config.batch_max:
            try:
                batch.append(_encode(self._queue.get_nowait()))
            except queue.Empty:
                return

    def _run(self) -> None:
        batch: list[PendingRecord] = []
        while True:
            if not batch:
                try:
                    batch.append(_encode(self._queue.get(timeout=0.1)))
                except queue.Empty:
                    if self._closing.is_set():
                        return
                    continue
            self._take_batch(batch)
            try:
                records = self._store.append(batch)
            except AuditError as error:
                self._mark_failed(str(error))
                # Keep the batch: it is retried until it commits or close() gives up.
                if not self._closing.is_set():
                    self._closing.wait(self.config.retry_interval_s)
                    continue
                remaining = self._close_deadline - time.monotonic()
                if remaining <= 0:
                    return
                time.sleep(min(self.config.retry_interval_s, remaining))
                continue
            self._mark_committed(records)
            batch = []

    def _mark_failed(self, message: str) -> None:
        with self._condition:
            first = not self._failed
            self._failed = True
            self._last_error = message
        if first:
            self._report(FailureKind.WRITE_FAILED, message)

    def _mark_committed(self, records: list[AuditRecord]) -> None:
        with self._condition:
            recovered = self._failed
            lost = self._rejected_while_failed
            self._failed = False
            self._rejected_while_failed = 0
            self._committed += len(records)
            self._head = (records[-1].seq, records[-1].hash)
            self._condition.notify_all()
        if self._on_commit is not None:
            self._on_commit(records)
        if recovered:
            if lost:
                # The trail itself states how much is missing from this gap.
                self._queue_gap_record(lost)
            if self._on_recovered is not None:
                self._on_recovered(lost)

    def _queue_gap_record(self, lost: int) -> None:
        gap: dict[str, JsonValue] = {
            "rule_id": "audit.records_lost",
            "records_lost": lost,
            "message": f"{lost} record(s) could not be queued while the audit file was not writable",
        }
        try:
            self._queue.put_nowait(_Queued("fault", gap, self._clock(), None))
            with self._condition:
                self._submitted += 1
        except queue.Full:
            self._report(FailureKind.QUEUE_FULL, f"could not record that {lost} record(s) were lost")

    def _report(self, kind: FailureKind, message: str) -> None:
        with self._condition:
            failure = AuditFailure(
                kind=kind,
                path=str(self.path),
                message=message,
                records_pending=self._submitted - self._committed,
                records_rejected=self._rejected,
            )
        if self._on_failure is not None:
            self._on_failure(failure)

    # Shutdown -----------------------------------------------------------------------

    _close_deadline: float = math.inf

    def close(self, timeout_s: float | None = None) -> bool:
        """Commit what is queued, stop the thread and close the file.

        Returns False, after reporting a failure, when records were still uncommitted
        after `timeout_s` (default `config.close_timeout_s`). Safe to call twice.
        """
        if self._closed:
            return True
        timeout = self.config.close_timeout_s if timeout_s is None else timeout_s
        self._close_deadline = time.monotonic() + timeout
        self._closing.set()
        self._thread.join(timeout + self.config.retry_interval_s + 1.0)
        complete = self.pending == 0 and not self._thread.is_alive()
        if not complete:
            self._report(
                FailureKind.CLOSE_TIMED_OUT,
                f"audit writer for {self.path} closed with {self.pending} record(s) uncommitted",
            )
        if not self._thread.is_alive():
            self._store.close()
        self._closed = True
        atexit.unregister(self._close_at_exit)
        return complete

    def _close_at_exit(self) -> None:
        self.close()


SignalHandler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


def flush_on_signals(
    writer: AuditWriter, signals: Iterable[int] = (signal.SIGTERM,), timeout_s: float = 2.0
) -> Callable[[], None]:
    """Flush `writer` when one of `signals` arrives, then run the handler that was there before.

    Call from the main thread. A previous default action (terminate) is carried out by
    restoring it and sending the signal again. Returns a function that restores the
    previous handlers.
    """
    previous: dict[int, SignalHandler] = {}

    def handle(signum: int, frame: FrameType | None) -> None:
        writer.flush(timeout_s)
        before = previous.get(signum)
        if callable(before):
            before(signum, frame)
        elif before == signal.SIG_DFL:
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)

    for signum in signals:
        previous[signum] = signal.getsignal(signum)
        signal.signal(signum, handle)

    def restore() -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)

    return restore
