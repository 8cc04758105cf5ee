"""Audit trail throughput and its cost on the decision path.

1. Throughput: records per second committed with `synchronous=FULL`, batched by the
   writer thread, for decision-sized records (a real `Decision` with two reasons).
2. Decision-path latency: a loop that encodes each justification as JSON (what the node
   does before publishing a refusal), with and without `AuditWriter.submit`, in the same
   process. Reported as the added microseconds per decision and as a ratio, both for a
   saturated loop (the writer thread competes for the GIL) and paced at 1 kHz.

    python bench/audit_throughput.py [--records N] [--dir DIR]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from nc_safety.core.audit import AuditWriter, WriterConfig, verify_file
from nc_safety.core.justification import Evidence, Reason, combine
from nc_safety.core.verdict import ReasonKind, RefutableBy, Severity, Verdict


def make_decision(index: int) -> object:
    reasons = [
        Reason(
            rule_id="motion.obstacle.braking",
            kind=ReasonKind.SAFETY,
            verdict=Verdict.MODIFY,
            severity=Severity.MEDIUM,
            message="Commanded 0.50 m/s cannot stop 0.10 m before the obstacle 0.62 m away: slowed.",
            evidence=(Evidence("clearance", 0.62, "m", limit=0.75, source="/scan", age_s=0.03),),
            refutable_by=RefutableBy.OPERATOR,
            remedy="Drive at most 0.31 m/s toward it.",
        ),
        Reason(
            rule_id="motion.limit.linear_x",
            kind=ReasonKind.SAFETY,
            verdict=Verdict.MODIFY,
            severity=Severity.LOW,
            message="linear.x 0.50 m/s above the 0.40 m/s limit: clamped.",
            evidence=(Evidence("linear.x", 0.5, "m/s", limit=0.4, source="cmd_vel_in"),),
        ),
    ]
    return combine(
        stamp=float(index),
        wall_time=time.time(),
        command_kind="twist",
        command_id=str(index),
        requester="node:teleop",
        reasons=reasons,
        policy_hash="0" * 64,
        output={"linear_x": 0.31, "angular_z": 0.0},
    )


def decision_work(decision: object) -> str:
    """Encode the justification as the node does before publishing it on `~/refusals`."""
    return json.dumps(decision.to_json())  # type: ignore[attr-defined]


def throughput(folder: Path, records: int) -> tuple[float, int]:
    decisions = [make_decision(index) for index in range(records)]
    writer = AuditWriter(folder / "throughput.sqlite3", config=WriterConfig(queue_size=records + 1))
    start = time.perf_counter()
    for decision in decisions:
        writer.submit("decision", decision)  # type: ignore[arg-type]
    writer.flush(600.0)
    elapsed = time.perf_counter() - start
    writer.close()
    result = verify_file(folder / "throughput.sqlite3")
    assert result.ok, result.problem
    return records / elapsed, result.records_checked


def path_latency(folder: Path, records: int, rounds: int = 5) -> tuple[float, float]:
    """Return the median per-decision loop time in µs without and with auditing."""
    decisions = [make_decision(index) for index in range(records)]
    without, with_audit = [], []
    for round_index in range(rounds):
        start = time.perf_counter()
        for decision in decisions:
            decision_work(decision)
        without.append((time.perf_counter() - start) / records * 1e6)

        writer = AuditWriter(
            folder / f"latency{round_index}.sqlite3", config=WriterConfig(queue_size=records + 1)
        )
        start = time.perf_counter()
        for decision in decisions:
            decision_work(decision)
            writer.submit("decision", decision)  # type: ignore[arg-type]
        with_audit.append((time.perf_counter() - start) / records * 1e6)
        writer.close(600.0)
    return statistics.median(without), statistics.median(with_audit)


def paced_latency(folder: Path, records: int, rate_hz: float) -> tuple[list[float], list[float]]:
    """Per-call times in µs at a steady request rate, without and with auditing, interleaved."""
    decisions = [make_decision(index) for index in range(records)]
    writer = AuditWriter(folder / "paced.sqlite3")
    period = 1.0 / rate_hz
    without, with_audit = [], []
    next_time = time.perf_counter()
    for index, decision in enumerate(decisions):
        next_time += period
        while time.perf_counter() < next_time:
            pass  # busy wait: sleep granularity would dominate at 1 kHz
        start = time.perf_counter()
        decision_work(decision)
        if index % 2:
            writer.submit("decision", decision)  # type: ignore[arg-type]
            with_audit.append((time.perf_counter() - start) * 1e6)
        else:
            without.append((time.perf_counter() - start) * 1e6)
    writer.close(600.0)
    return without, with_audit


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20000, help="records per measurement")
    parser.add_argument("--dir", type=Path, help="folder for the audit files (default: a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as name:
        folder = Path(name)
        rate, count = throughput(folder, args.records)
        base, audited = path_latency(folder, args.records)
        paced_without, paced_with = paced_latency(folder, 4000, 1000.0)
    print(f"throughput: {rate:,.0f} records/s (synchronous=FULL, batched; {count} records verified)")
    print(f"decision path without audit: {base:.2f} µs per decision")
    print(f"decision path with audit.submit: {audited:.2f} µs per decision")
    print(
        f"added by auditing: {audited - base:.2f} µs per decision (ratio {audited / base:.2f} of encoding alone)"
    )
    print(
        "at 1 kHz, per decision: without audit "
        f"median {statistics.median(paced_without):.1f} µs, p99 {percentile(paced_without, 0.99):.1f} µs; "
        f"with audit median {statistics.median(paced_with):.1f} µs, p99 {percentile(paced_with, 0.99):.1f} µs"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
