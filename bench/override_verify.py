"""Cost of verifying a signed override request, against a bare Ed25519 verification.

Runs in one process: the baseline is PyNaCl's verify of the same signed bytes, so the
ratio shows what parsing, the checks and the durable nonce commit add. The nonce
database is a real SQLite file (WAL, synchronous=FULL) in a temporary folder.

    python bench/override_verify.py [--requests 500]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from nc_safety.core.overrides import (
    NonceStore,
    OverrideVerifier,
    RequestKind,
    Role,
    SigningIdentity,
    VerifierLimits,
    new_request,
)
from nc_safety.core.overrides.keys import Keyring
from nc_safety.core.verdict import RefutableBy


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=500, help="signed requests to verify (default 500)")
    args = parser.parse_args()

    identity = SigningIdentity.generate("bench", Role.SUPERVISOR)
    key = identity.operator_key()
    keyring = Keyring(keys={key.key_id: key}, source="bench")
    now = time.time()
    requests = [
        new_request(
            RequestKind.OVERRIDE,
            identity,
            now=now,
            lifetime_s=600.0,
            reason="benchmark run",
            rule_ids=("motion.obstacle.stop",),
        )
        for _ in range(args.requests)
    ]
    wires = [json.dumps(request.to_json()) for request in requests]

    baseline: list[float] = []
    for request in requests:
        start = time.perf_counter()
        key.verify(request.signed_bytes, request.signatures[0].signature)
        baseline.append(time.perf_counter() - start)

    with tempfile.TemporaryDirectory() as directory:
        verifier = OverrideVerifier(
            keyring,
            NonceStore(Path(directory) / "nonces.sqlite3"),
            refutable_by=lambda _rule: RefutableBy.SUPERVISOR,
            recent_decision=lambda _id: None,
            limits=VerifierLimits(rate_limit_count=1000, rate_limit_window_s=0.1),
        )
        full: list[float] = []
        for index, wire in enumerate(wires):
            start = time.perf_counter()
            outcome = verifier.verify(wire, wall_now=now + index * 0.2, ros_now=0.0)
            full.append(time.perf_counter() - start)
            if outcome.__class__.__name__ != "Acceptance":
                raise SystemExit(f"request {index} was rejected: {outcome}")
        replay: list[float] = []
        for index, wire in enumerate(wires[:100]):
            start = time.perf_counter()
            verifier.verify(wire, wall_now=now + index * 0.2, ros_now=0.0)
            replay.append(time.perf_counter() - start)
        verifier.nonces.close()

    def line(name: str, values: list[float]) -> str:
        return f"{name:<28} median {statistics.median(values) * 1e3:7.3f} ms  p99 {percentile(values, 0.99) * 1e3:7.3f} ms"

    print(f"{args.requests} requests of {len(wires[0])} bytes")
    print(line("Ed25519 verify (baseline)", baseline))
    print(line("full verification", full))
    print(line("replay (rejected at nonce)", replay))
    print(f"ratio full / baseline (medians): {statistics.median(full) / statistics.median(baseline):.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
