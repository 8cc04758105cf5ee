"""Closed-loop scenarios with and without the safety layer: time to goal, false stops, speed.

    . scripts/env.sh && ROS_DOMAIN_ID=<free id> python bench/sim_scenarios.py [--scenario NAME ...]

Each scenario runs first without the layer (the baseline, in the same process) and then
with the safety node as a separate process on sim time. Prints a Markdown table: time to
goal with and without the layer and their ratio, stops and false stops, refusals, and the
real-time factor the simulation achieved (simulated seconds per real second).
"""

from __future__ import annotations

import argparse
import math
import sys

from nc_safety.sim.metrics import RunMetrics
from nc_safety.sim.runner import RunOptions, run_scenario
from nc_safety.sim.scenario import bundled_scenarios, load_scenario


def _goal(run: RunMetrics) -> str:
    return "-" if run.time_to_goal is None else f"{run.time_to_goal:.1f}"


def _ratio(with_layer: RunMetrics, baseline: RunMetrics) -> str:
    if with_layer.time_to_goal is None or baseline.time_to_goal is None:
        return "-"
    return f"{with_layer.time_to_goal / baseline.time_to_goal:.2f}"


def _rtf(run: RunMetrics) -> str:
    return "-" if run.wall_time <= 0.0 else f"{run.duration / run.wall_time:.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", action="append", help="run only this scenario (repeatable)")
    args = parser.parse_args()
    print(
        "| scenario | contacts without / with | time to goal without / with [s] | ratio | stops with "
        "| false stops with (s) | refusals | achieved real-time factor without / with |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name in args.scenario or bundled_scenarios():
        scenario = load_scenario(name)
        baseline = run_scenario(scenario, RunOptions(safety=False))
        with_layer = run_scenario(scenario, RunOptions(safety=True))
        clearance = with_layer.min_obstacle_clearance
        if math.isfinite(clearance) and clearance < with_layer.obstacle_margin:
            print(f"{name}: clearance {clearance:.3f} m below the margin", file=sys.stderr)
        print(
            f"| {name} | {baseline.contact_count} / {with_layer.contact_count} "
            f"| {_goal(baseline)} / {_goal(with_layer)} | {_ratio(with_layer, baseline)} "
            f"| {len(with_layer.stops)} | {len(with_layer.false_stops)} ({with_layer.false_stop_time:.1f}) "
            f"| {with_layer.refusals} | {_rtf(baseline)} / {_rtf(with_layer)} (target "
            f"{scenario.real_time_factor:.0f}) |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
