"""Freshness of the data a decision relies on. Each failure is a fault and stops the robot:

- `source.stale.<name>`: never received, or older than its timeout;
- `source.future.<name>`: stamped further in the future than the tolerance;
- `source.invalid.<name>`: the last message was malformed;
- `source.clock_mismatch.<name>`: stamped on another clock (sim time against wall time).
"""

from __future__ import annotations

from dataclasses import dataclass

from nc_safety.core.constraints import Outcome, make_reason
from nc_safety.core.justification import Evidence
from nc_safety.core.verdict import Verdict


@dataclass(slots=True)
class SourceState:
    """Bookkeeping for one input; mutated only by the motion guard."""

    name: str
    """Short name used in rule ids: `source.stale.<name>`."""
    topic: str
    timeout: float
    required: bool
    last_stamp: float | None = None
    last_received: float | None = None
    invalid_reason: str | None = None
    received_count: int = 0
    rejected_count: int = 0

    def record(self, stamp: float, received_at: float, invalid_reason: str | None = None) -> None:
        # An unset header stamp (0) falls back to the time of reception.
        self.last_stamp = stamp if stamp > 0.0 else received_at
        self.last_received = received_at
        self.invalid_reason = invalid_reason
        self.received_count += 1
        if invalid_reason is not None:
            self.rejected_count += 1

    def age(self, now: float) -> float | None:
        return None if self.last_stamp is None else now - self.last_stamp


def check_source(
    source: SourceState, now: float, started_at: float, future_tolerance: float, mismatch_threshold: float
) -> Outcome | None:
    """Return a fault outcome when a required source cannot be trusted now, else None."""
    if not source.required:
        return None
    if source.last_stamp is None:
        waited = now - started_at
        return _fault(
            f"source.stale.{source.name}",
            f"{source.topic} never received ({waited:.2f} s since start): stopping.",
            Evidence(f"{source.name} age", None, "s", limit=source.timeout, source=source.topic),
            _remedy(source),
        )
    age = now - source.last_stamp
    if abs(age) > mismatch_threshold:
        return _fault(
            f"source.clock_mismatch.{source.name}",
            f"{source.topic} is stamped {-age:+.1f} s from the node's clock: the clocks differ "
            "(use_sim_time against wall-clock stamps?), stopping.",
            Evidence(f"{source.name} stamp offset", -age, "s", limit=mismatch_threshold, source=source.topic),
            "Run the publisher and the safety node on the same clock (both sim time or both wall time).",
        )
    if -age > future_tolerance:
        return _fault(
            f"source.future.{source.name}",
            f"{source.topic} is stamped {-age:.3f} s in the future (tolerance {future_tolerance:.3f} s): stopping.",
            Evidence(f"{source.name} age", age, "s", limit=-future_tolerance, source=source.topic, age_s=age),
            _remedy(source),
        )
    if source.invalid_reason is not None:
        return _fault(
            f"source.invalid.{source.name}",
            f"{source.topic} is invalid ({source.invalid_reason}): stopping.",
            Evidence(f"{source.name} validity", source.invalid_reason, "", source=source.topic, age_s=age),
            _remedy(source),
        )
    if age > source.timeout:
        return _fault(
            f"source.stale.{source.name}",
            f"{source.topic} is {age:.3f} s old, older than its {source.timeout:.3f} s timeout: stopping.",
            Evidence(f"{source.name} age", age, "s", limit=source.timeout, source=source.topic, age_s=age),
            _remedy(source),
        )
    return None


def _remedy(source: SourceState) -> str:
    return f"Check that {source.topic} is published, stamped with the node's clock, and well-formed."


def _fault(rule_id: str, message: str, evidence: Evidence, remedy: str) -> Outcome:
    return Outcome(
        make_reason(
            rule_id,
            Verdict.FAULT,
            message,
            evidence=(evidence,),
            consequence="Without current data the layer cannot tell whether motion is safe.",
            remedy=remedy,
            remedy_values={"max_linear_speed": 0.0, "max_angular_speed": 0.0},
        ),
        0.0,
    )
