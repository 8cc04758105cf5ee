"""Time the directive checker on a 50-step household plan.

Reports p50/p99 over many runs for the full check (parse, simulate, norms, decision),
with two baselines measured in the same process on the same text: `json.loads` alone
and directive parsing alone. Target: p99 of the full check under 5 ms. Wall-clock time
includes time the process waits for a CPU, so the full check is also timed in thread CPU
time, which shows the checker's own cost on a machine shared with other work.

    python bench/directive_checker.py [--runs 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable

from nc_safety.core.directives.checker import DirectiveChecker
from nc_safety.core.directives.felicity import CheckContext
from nc_safety.core.directives.model import parse_directive_json

# A safe 50-step plan that touches many objects, appliances and liquids, so every step
# is simulated and every norm scope is evaluated.
PLAN = [
    "find Fridge",
    "open Fridge",
    "find Egg",
    "pick Egg",
    "find Bowl",
    "put Bowl",
    "find Fridge",
    "close Fridge",
    "find Bread",
    "pick Bread",
    "find CounterTop",
    "put CounterTop",
    "slice Bread",
    "find BreadSliced",
    "pick BreadSliced",
    "find Toaster",
    "put Toaster",
    "turn_on Toaster",
    "turn_off Toaster",
    "find Kettle",
    "fillLiquid Kettle water",
    "pick Kettle",
    "find StoveBurner",
    "put StoveBurner",
    "find StoveKnob",
    "turn_on StoveKnob",
    "find Mug",
    "pick Mug",
    "find CoffeeMachine",
    "put CoffeeMachine",
    "turn_on CoffeeMachine",
    "turn_off CoffeeMachine",
    "find StoveKnob",
    "turn_off StoveKnob",
    "find Cup",
    "fillLiquid Cup water",
    "pick Cup",
    "find HousePlant",
    "pour",
    "find Sink",
    "put Sink",
    "find Plate",
    "pick Plate",
    "find DiningTable",
    "put DiningTable",
    "find Cloth",
    "pick Cloth",
    "find CounterTop",
    "put CounterTop",
    "clean CounterTop",
]


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def measure(
    function: Callable[[], object], runs: int, clock: Callable[[], float] = time.perf_counter
) -> list[float]:
    """Time `runs` calls after a warm-up, in milliseconds of `clock`."""
    for _ in range(min(50, runs)):
        function()
    samples = []
    for _ in range(runs):
        start = clock()
        function()
        samples.append((clock() - start) * 1000.0)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000, help="timed runs per measurement (default 2000)")
    args = parser.parse_args()
    if len(PLAN) != 50:
        raise SystemExit(f"the benchmark plan must have 50 steps, has {len(PLAN)}")

    checker = DirectiveChecker.from_files()
    text = json.dumps({"id": "bench", "requester": {"id": "bench", "role": "user"}, "plan": PLAN})
    context = CheckContext()
    verdict = checker.check_json(text, context).decision.verdict.value
    if verdict != "comply":
        raise SystemExit(f"the benchmark plan must comply, got {verdict}")

    def full_check() -> object:
        checker.forget()
        return checker.check_json(text, context)

    results = {
        "json.loads": measure(lambda: json.loads(text), args.runs),
        "parse_directive_json": measure(lambda: parse_directive_json(text), args.runs),
        "check_json (full)": measure(full_check, args.runs),
        "check_json, CPU time": measure(full_check, args.runs, time.thread_time),
    }
    baseline = statistics.median(results["json.loads"])
    print(
        f"directive checker, 50-step plan, {args.runs} runs; python {platform.python_version()}, "
        f"{platform.machine()}, {len(checker.norms.norms)} norms"
    )
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(f"{'measurement':24s} {'p50 ms':>8s} {'p99 ms':>8s} {'max ms':>8s} {'p50 / json.loads':>18s}")
    for name, samples in results.items():
        p50 = statistics.median(samples)
        print(
            f"{name:24s} {p50:8.3f} {percentile(samples, 0.99):8.3f} {max(samples):8.3f} {p50 / baseline:18.1f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
