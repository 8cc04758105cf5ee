"""Per-requester security risk: severity-weighted events, exponential decay, persistent lockout.

A requester's score rises with each event by `weight(kind) * severity_factor(severity)`
and halves every `half_life_s` seconds. At `elevated_threshold` the requester is
elevated (overrides of its commands need a supervisor). At `locked_out_threshold` it is
locked out: every request from it is `unauthorized` until a supervisor clears it through
`RiskTracker.clear_lockout`. A lockout does not decay.

Times are wall-clock seconds since the Unix epoch, passed in by the caller, because the
score must survive a restart and ROS time may be simulated. State is kept in a SQLite
file (WAL, `synchronous=FULL`) and written on every change. Request-flood counters are
kept in memory only, so they start empty after a restart.
"""

from __future__ import annotations

import collections
import json
import math
import sqlite3
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from nc_safety.core.errors import NcSafetyError
from nc_safety.core.justification import JsonValue
from nc_safety.core.verdict import Severity, Verdict

LOCKED_OUT_RULE = "risk.locked_out"


class RiskError(NcSafetyError):
    """Raised for an invalid risk configuration or request, or a risk file that cannot be opened."""


class RiskEventKind(str, Enum):
    """Kind of event that raises a requester's score."""

    REFUSED = "refused"
    """A request refused (verdict refuse or unauthorized)."""
    REFUSED_MOTION = "refused_motion"
    """A new refusal on a motion topic (counted once per refusal episode, not per message)."""
    REPHRASED = "rephrased"
    """A refused plan sent again, reworded, reordered or unchanged: same fingerprint or effect."""
    ASSEMBLED_HARM = "assembled_harm"
    """Harm assembled across several directives that are harmless one by one."""
    OVERRIDE_AUTH_FAILED = "override_auth_failed"
    """An override request whose signature, key or role did not verify."""
    HARD_RULE_OVERRIDE = "hard_rule_override"
    """An override request for a rule no override lifts (`refutable_by: none`)."""
    REQUEST_FLOOD = "request_flood"
    """More than `flood_max_requests` requests within `flood_window_s`."""


class RiskLevel(str, Enum):
    NORMAL = "normal"
    ELEVATED = "elevated"
    LOCKED_OUT = "locked_out"


DEFAULT_WEIGHTS: Mapping[RiskEventKind, float] = {
    RiskEventKind.REFUSED: 1.0,
    RiskEventKind.REFUSED_MOTION: 0.5,
    RiskEventKind.REPHRASED: 4.0,
    RiskEventKind.ASSEMBLED_HARM: 5.0,
    RiskEventKind.OVERRIDE_AUTH_FAILED: 3.0,
    RiskEventKind.HARD_RULE_OVERRIDE: 4.0,
    RiskEventKind.REQUEST_FLOOD: 3.0,
}

DEFAULT_SEVERITY_FACTORS: Mapping[Severity, float] = {
    Severity.INFO: 0.25,
    Severity.LOW: 0.5,
    Severity.MEDIUM: 1.0,
    Severity.HIGH: 1.5,
    Severity.CRITICAL: 2.0,
}

REFUSING_VERDICTS = frozenset({Verdict.REFUSE, Verdict.UNAUTHORIZED})


@dataclass(frozen=True, slots=True)
class RiskConfig:
    """Weights, thresholds and limits of risk tracking; `validate` checks every field."""

    half_life_s: float = 600.0
    """Time for a score to halve without new events, in seconds."""
    elevated_threshold: float = 4.0
    locked_out_threshold: float = 10.0
    weights: Mapping[RiskEventKind, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    severity_factors: Mapping[Severity, float] = field(default_factory=lambda: dict(DEFAULT_SEVERITY_FACTORS))
    flood_window_s: float = 10.0
    """Sliding window for counting requests, in seconds."""
    flood_max_requests: int = 30
    """Requests allowed within `flood_window_s`; one more is a flood event (at most one per window)."""
    fingerprint_memory_s: float = 3600.0
    """How long a refused plan's fingerprints are remembered, in seconds."""
    history_size: int = 20
    """Most recent events kept per requester in `RiskState.events`."""

    def validate(self) -> RiskConfig:
        problems = []
        for name in ("half_life_s", "flood_window_s", "fingerprint_memory_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                problems.append(f"{name} {value!r} must be a positive number of seconds")
        if not (math.isfinite(self.elevated_threshold) and self.elevated_threshold > 0):
            problems.append(f"elevated_threshold {self.elevated_threshold!r} must be positive")
        if not (
            math.isfinite(self.locked_out_threshold) and self.locked_out_threshold > self.elevated_threshold
        ):
            problems.append(
                f"locked_out_threshold {self.locked_out_threshold!r} must be above "
                f"elevated_threshold {self.elevated_threshold!r}"
            )
        for kind in RiskEventKind:
            weight = self.weights.get(kind)
            if weight is None or not (math.isfinite(weight) and weight >= 0):
                problems.append(f"weight of {kind.value} {weight!r} must be a number >= 0")
        for severity in Severity:
            factor = self.severity_factors.get(severity)
            if factor is None or not (math.isfinite(factor) and factor >= 0):
                problems.append(f"severity factor of {severity.value} {factor!r} must be a number >= 0")
        if self.flood_max_requests < 1:
            problems.append(f"flood_max_requests {self.flood_max_requests!r} must be at least 1")
        if self.history_size < 1:
            problems.append(f"history_size {self.history_size!r} must be at least 1")
        if problems:
            raise RiskError("invalid risk configuration: " + "; ".join(problems))
        return self


@dataclass(frozen=True, slots=True)
class RiskEvent:
    """One event that raised a requester's score."""

    requester: str
    kind: RiskEventKind
    severity: Severity
    weight: float
    """Points added to the score: kind weight times severity factor."""
    at: float
    """Wall time, in seconds since the Unix epoch."""
    detail: str = ""
    rule_ids: tuple[str, ...] = ()
    fingerprint: str | None = None

    def to_json(self) -> dict[str, JsonValue]:
        return {
            "kind": self.kind.value,
            "severity": self.severity.value,
            "weight": round(self.weight, 6),
            "at": self.at,
            "detail": self.detail,
            "rule_ids": list(self.rule_ids),
            "fingerprint": self.fingerprint,
        }


@dataclass(frozen=True, slots=True)
class SupervisorClearance:
    """A supervisor's signed request to clear a lockout, after its signature was verified."""

    supervisor_id: str
    request_id: str
    reason: str

    def validate(self) -> SupervisorClearance:
        missing = [
            name for name in ("supervisor_id", "request_id", "reason") if not getattr(self, name).strip()
        ]
        if missing:
            raise RiskError(f"invalid supervisor clearance {self!r}: {', '.join(missing)} must not be empty")
        return self


@dataclass(frozen=True, slots=True)
class RiskState:
    """A requester's risk at one instant."""

    requester: str
    score: float
    """Score decayed to `at`."""
    level: RiskLevel
    at: float
    channel: str = "directive"
    """`motion` for a motion topic, `directive` otherwise."""
    locked_since: float | None = None
    cleared_by: str | None = None
    """Supervisor who last cleared a lockout of this requester."""
    cleared_at: float | None = None
    events: tuple[RiskEvent, ...] = ()
    """Most recent events, oldest first."""

    @property
    def locked_out(self) -> bool:
        return self.level is RiskLevel.LOCKED_OUT

    def to_json(self) -> dict[str, JsonValue]:
        return {
            "requester": self.requester,
            "score": round(self.score, 6),
            "level": self.level.value,
            "at": self.at,
            "channel": self.channel,
            "locked_since": self.locked_since,
            "cleared_by": self.cleared_by,
            "cleared_at": self.cleared_at,
            "events": [event.to_json() for event in self.events],
        }


@dataclass(frozen=True, slots=True)
class RiskUpdate:
    """Change made by one observation or event."""

    before: RiskState
    after: RiskState
    events: tuple[RiskEvent, ...] = ()
    persist_error: str | None = None
    """Set when the risk file could not be written; the change still applies in memory."""

    @property
    def level_changed(self) -> bool:
        return self.before.level is not self.after.level

    def to_json(self) -> dict[str, JsonValue]:
        return {
            "requester": self.after.requester,
            "level_before": self.before.level.value,
            "level": self.after.level.value,
            "score_before": round(self.before.score, 6),
            "score": round(self.after.score, 6),
            "events": [event.to_json() for event in self.events],
            "persist_error": self.persist_error,
        }


@dataclass(slots=True)
class _Entry:
    channel: str
    score: float = 0.0
    updated_at: float = 0.0
    locked_since: float | None = None
    cleared_by: str | None = None
    cleared_at: float | None = None
    events: collections.deque[RiskEvent] = field(default_factory=collections.deque)
    fingerprints: dict[str, float] = field(default_factory=dict)
    requests: collections.deque[float] = field(default_factory=collections.deque)
    last_flood_at: float | None = None


_SCHEMA = """
CREATE TABLE IF NOT EXISTS requesters (
    requester TEXT PRIMARY KEY, channel TEXT NOT NULL, score REAL NOT NULL, updated_at REAL NOT NULL,
    locked_since REAL, cleared_by TEXT, cleared_at REAL
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY, requester TEXT NOT NULL, at REAL NOT NULL, kind TEXT NOT NULL,
    severity TEXT NOT NULL, weight REAL NOT NULL, detail TEXT NOT NULL, rule_ids TEXT NOT NULL,
    fingerprint TEXT
);
CREATE INDEX IF NOT EXISTS events_requester ON events (requester, id);
CREATE TABLE IF NOT EXISTS fingerprints (
    requester TEXT NOT NULL, fingerprint TEXT NOT NULL, refused_at REAL NOT NULL,
    PRIMARY KEY (requester, fingerprint)
);
"""

_STORED_EVENTS_PER_REQUESTER = 1000


class RiskTracker:
    """Risk scores of every requester, persisted in `path` (in memory only when `path` is None).

    Thread-safe. Raises RiskError from the constructor when the file cannot be opened.
    """

    def __init__(self, path: str | Path | None, config: RiskConfig | None = None) -> None:
        self.config = (config or RiskConfig()).validate()
        self.path = None if path is None else Path(path)
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self._connection: sqlite3.Connection | None = None
        if self.path is not None:
            self._open(self.path)

    # Persistence ------------------------------------------------------------------

    def _open(self, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")
            connection.executescript(_SCHEMA)
            self._load(connection)
        except (sqlite3.Error, OSError) as error:
            raise RiskError(f"cannot open risk file {path}: {type(error).__name__}: {error}") from error
        self._connection = connection

    def _load(self, connection: sqlite3.Connection) -> None:
        for row in connection.execute(
            "SELECT requester, channel, score, updated_at, locked_since, cleared_by, cleared_at "
            "FROM requesters"
        ):
            self._entries[str(row[0])] = _Entry(
                channel=str(row[1]),
                score=float(row[2]),
                updated_at=float(row[3]),
                locked_since=None if row[4] is None else float(row[4]),
                cleared_by=None if row[5] is None else str(row[5]),
                cleared_at=None if row[6] is None else float(row[6]),
                events=collections.deque(maxlen=self.config.history_size),
            )
        for requester, entry in self._entries.items():
            rows = connection.execute(
                "SELECT at, kind, severity, weight, detail, rule_ids, fingerprint FROM events "
                "WHERE requester = ? ORDER BY id DESC LIMIT ?",
                (requester, self.config.history_size),
            ).fetchall()
            for at, kind, severity, weight, detail, rule_ids, fingerprint in reversed(rows):
                entry.events.append(
                    RiskEvent(
                        requester,
                        RiskEventKind(kind),
                        Severity(severity),
                        float(weight),
                        float(at),
                        str(detail),
                        tuple(json.loads(rule_ids)),
                        fingerprint,
                    )
                )
        for requester, fingerprint, refused_at in connection.execute(
            "SELECT requester, fingerprint, refused_at FROM fingerprints"
        ):
            owner = self._entries.get(str(requester))
            if owner is not None:
                owner.fingerprints[str(fingerprint)] = float(refused_at)

    def _persist(self, requester: str, entry: _Entry, events: Iterable[RiskEvent]) -> str | None:
        connection = self._connection
        if connection is None:
            return None
        try:
            connection.execute("BEGIN IMMEDIATE")
            connection.execute(
                "INSERT OR REPLACE INTO requesters "
                "(requester, channel, score, updated_at, locked_since, cleared_by, cleared_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    requester,
                    entry.channel,
                    entry.score,
                    entry.updated_at,
                    entry.locked_since,
                    entry.cleared_by,
                    entry.cleared_at,
                ),
            )
            for event in events:
                connection.execute(
                    "INSERT INTO events "
                    "(requester, at, kind, severity, weight, detail, rule_ids, fingerprint) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        requester,
                        event.at,
                        event.kind.value,
                        event.severity.value,
                        event.weight,
                        event.detail,
                        json.dumps(list(event.rule_ids)),
                        event.fingerprint,
                    ),
                )
            connection.execute(
                "DELETE FROM events WHERE requester = ? AND id NOT IN "
                "(SELECT id FROM events WHERE requester = ? ORDER BY id DESC LIMIT ?)",
                (requester, requester, _STORED_EVENTS_PER_REQUESTER),
            )
            connection.execute("DELETE FROM fingerprints WHERE requester = ?", (requester,))
            connection.executemany(
                "INSERT INTO fingerprints (requester, fingerprint, refused_at) VALUES (?, ?, ?)",
                [(requester, fingerprint, at) for fingerprint, at in entry.fingerprints.items()],
            )
            connection.execute("COMMIT")
        except (sqlite3.Error, OSError) as error:
            try:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # the failed statement already ended the transaction
            return f"cannot write risk file {self.path}: {type(error).__name__}: {error}"
        return None

    # Scores -----------------------------------------------------------------------

    def _entry(self, requester: str, channel: str | None, now: float) -> _Entry:
        entry = self._entries.get(requester)
        if entry is None:
            entry = _Entry(
                channel=channel or "directive",
                updated_at=now,
                events=collections.deque(maxlen=self.config.history_size),
            )
            self._entries[requester] = entry
        elif channel is not None:
            entry.channel = channel
        return entry

    def _decayed(self, entry: _Entry, now: float) -> float:
        elapsed = max(0.0, now - entry.updated_at)  # a clock that went back does not raise the score
        return float(entry.score * 0.5 ** (elapsed / self.config.half_life_s))

    def _level(self, entry: _Entry, score: float) -> RiskLevel:
        if entry.locked_since is not None:
            return RiskLevel.LOCKED_OUT
        if score >= self.config.elevated_threshold:
            return RiskLevel.ELEVATED
        return RiskLevel.NORMAL

    def _snapshot(self, requester: str, entry: _Entry, now: float) -> RiskState:
        score = self._decayed(entry, now)
        return RiskState(
            requester=requester,
            score=score,
            level=self._level(entry, score),
            at=now,
            channel=entry.channel,
            locked_since=entry.locked_since,
            cleared_by=entry.cleared_by,
            cleared_at=entry.cleared_at,
            events=tuple(entry.events),
        )

    def _make_event(
        self,
        requester: str,
        *,
        kind: RiskEventKind,
        severity: Severity,
        now: float,
        detail: str,
        rule_ids: Iterable[str],
        fingerprint: str | None,
    ) -> RiskEvent:
        weight = self.config.weights[kind] * self.config.severity_factors[severity]
        return RiskEvent(requester, kind, severity, weight, now, detail, tuple(rule_ids), fingerprint)

    def _apply(self, requester: str, entry: _Entry, events: list[RiskEvent], now: float) -> RiskUpdate:
        """Add `events` to the score, lock out at the threshold, persist; caller holds the lock."""
        before = self._snapshot(requester, entry, now)
        score = before.score
        for event in events:
            score += event.weight
            entry.events.append(event)
        entry.score = score
        entry.updated_at = max(now, entry.updated_at)
        if entry.locked_since is None and score >= self.config.locked_out_threshold:
            entry.locked_since = now
        error = self._persist(requester, entry, events) if events else None
        return RiskUpdate(before, self._snapshot(requester, entry, now), tuple(events), error)

    @staticmethod
    def _check_requester(requester: str) -> None:
        if not isinstance(requester, str) or not requester.strip():
            raise RiskError(
                f"invalid requester {requester!r}: use the directive's requester or the topic name"
            )

    def observe_request(
        self,
        requester: str,
        *,
        now: float,
        verdict: Verdict,
        severity: Severity = Severity.MEDIUM,
        channel: str = "directive",
        plan_fingerprint: str | None = None,
        effect_fingerprint: str | None = None,
        rule_ids: Iterable[str] = (),
        detail: str = "",
    ) -> RiskUpdate:
        """Count one request and its verdict: floods, refusals and refused plans sent again.

        `plan_fingerprint` comes from `plan_fingerprint()` or the directive checker;
        `effect_fingerprint` names the predicted effect on the simulated world. A refused
        request whose plan or effect fingerprint matches one refused earlier (within
        `fingerprint_memory_s`) counts as rephrased instead of as a plain refusal.
        """
        self._check_requester(requester)
        rules = tuple(rule_ids)
        with self._lock:
            entry = self._entry(requester, channel, now)
            events: list[RiskEvent] = []

            window_start = now - self.config.flood_window_s
            entry.requests.append(now)
            while entry.requests and entry.requests[0] < window_start:
                entry.requests.popleft()
            flood_due = entry.last_flood_at is None or now - entry.last_flood_at >= self.config.flood_window_s
            if len(entry.requests) > self.config.flood_max_requests and flood_due:
                entry.last_flood_at = now
                events.append(
                    self._make_event(
                        requester,
                        kind=RiskEventKind.REQUEST_FLOOD,
                        severity=Severity.MEDIUM,
                        now=now,
                        detail=f"{len(entry.requests)} requests within {self.config.flood_window_s} s",
                        rule_ids=(),
                        fingerprint=None,
                    )
                )

            only_lockout = bool(rules) and set(rules) <= {LOCKED_OUT_RULE}
            if verdict in REFUSING_VERDICTS and not only_lockout:
                memory_start = now - self.config.fingerprint_memory_s
                for known, refused_at in list(entry.fingerprints.items()):
                    if refused_at < memory_start:
                        del entry.fingerprints[known]
                prints = [value for value in (plan_fingerprint, effect_fingerprint) if value]
                repeated = next((value for value in prints if value in entry.fingerprints), None)
                kind = RiskEventKind.REPHRASED if repeated else RiskEventKind.REFUSED
                if channel == "motion" and kind is RiskEventKind.REFUSED:
                    kind = RiskEventKind.REFUSED_MOTION
                events.append(
                    self._make_event(
                        requester,
                        kind=kind,
                        severity=severity,
                        now=now,
                        detail=detail,
                        rule_ids=rules,
                        fingerprint=repeated or (prints[0] if prints else None),
                    )
                )
                for value in prints:
                    entry.fingerprints[value] = now
            return self._apply(requester, entry, events, now)

    def record_event(
        self,
        requester: str,
        kind: RiskEventKind,
        *,
        now: float,
        severity: Severity = Severity.MEDIUM,
        detail: str = "",
        rule_ids: Iterable[str] = (),
        channel: str | None = None,
    ) -> RiskUpdate:
        """Add one event reported by another part (override verifier, directive checker)."""
        self._check_requester(requester)
        if not isinstance(kind, RiskEventKind):
            raise RiskError(f"invalid risk event kind {kind!r}: use a RiskEventKind")
        with self._lock:
            entry = self._entry(requester, channel, now)
            event = self._make_event(
                requester,
                kind=kind,
                severity=severity,
                now=now,
                detail=detail,
                rule_ids=rule_ids,
                fingerprint=None,
            )
            return self._apply(requester, entry, [event], now)

    def clear_lockout(self, requester: str, clearance: SupervisorClearance, *, now: float) -> RiskUpdate:
        """Clear a lockout and reset the score to zero.

        The override verifier calls this only after it has checked the supervisor's
        signature, role, time window and nonce; this method cannot check them. Raises
        RiskError when the requester is not locked out or the clearance is incomplete.
        """
        clearance.validate()
        with self._lock:
            entry = self._entries.get(requester)
            if entry is None or entry.locked_since is None:
                raise RiskError(f"requester {requester!r} is not locked out; nothing to clear")
            before = self._snapshot(requester, entry, now)
            entry.score = 0.0
            entry.updated_at = now
            entry.locked_since = None
            entry.cleared_by = clearance.supervisor_id
            entry.cleared_at = now
            error = self._persist(requester, entry, ())
            return RiskUpdate(before, self._snapshot(requester, entry, now), (), error)

    # Queries ----------------------------------------------------------------------

    def state(self, requester: str, now: float) -> RiskState:
        with self._lock:
            entry = self._entries.get(requester)
            if entry is None:
                return RiskState(requester, 0.0, RiskLevel.NORMAL, now)
            return self._snapshot(requester, entry, now)

    def states(self, now: float) -> tuple[RiskState, ...]:
        with self._lock:
            return tuple(self._snapshot(name, entry, now) for name, entry in sorted(self._entries.items()))

    def is_locked_out(self, requester: str) -> bool:
        with self._lock:
            entry = self._entries.get(requester)
            return entry is not None and entry.locked_since is not None

    def is_elevated(self, requester: str, now: float) -> bool:
        """Return whether overrides of this requester's commands need a supervisor (elevated or locked out)."""
        return self.state(requester, now).level is not RiskLevel.NORMAL

    def locked_out(self) -> tuple[RiskState, ...]:
        """Requesters locked out now, for example to restore their holds after a restart."""
        with self._lock:
            return tuple(
                self._snapshot(name, entry, entry.updated_at)
                for name, entry in sorted(self._entries.items())
                if entry.locked_since is not None
            )

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None
