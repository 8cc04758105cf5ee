"""`nc-safety sim`: run one scenario, or all of them with and without the safety layer.

    nc-safety sim list
    nc-safety sim run wall_run [--no-safety] [--seed N] [--real-time-factor X] [--out DIR]
    nc-safety sim --report [--out DIR] [--scenario NAME ...]

Uses the ROS domain and DDS settings of the environment (`. scripts/env.sh` keeps DDS on
loopback). Exit code: 0 when every run kept the safety invariants (no contact, clearance
never below the margin) wherever the layer was on, 1 when one did not, 2 on bad input.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from nc_safety.sim.errors import SimError
from nc_safety.sim.metrics import RunMetrics
from nc_safety.sim.report import format_table, plot_scenario
from nc_safety.sim.scenario import bundled_scenarios, load_scenario

DEFAULT_OUT = Path("sim_report")


def invariants_kept(run: RunMetrics) -> bool:
    """No contact and the obstacle clearance never below the node's margin."""
    return run.contact_count == 0 and run.min_obstacle_clearance >= run.obstacle_margin


def _run_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nc-safety sim run", description="Run one scenario and print its metrics."
    )
    parser.add_argument("scenario", help="bundled scenario name (see `nc-safety sim list`) or a YAML file")
    parser.add_argument(
        "--no-safety",
        action="store_true",
        help="drive the base from cmd_vel_in directly, without the safety node",
    )
    parser.add_argument("--seed", type=int, help="seed of the laser noise (default: the scenario's)")
    parser.add_argument(
        "--real-time-factor",
        type=float,
        help="simulated seconds per real second, 0 = unpaced (default: the scenario's)",
    )
    parser.add_argument("--out", type=Path, help="folder for the result JSON and the safety node's log")
    return parser


def _report_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nc-safety sim",
        description="Closed-loop MuJoCo simulation. `run SCENARIO` runs one scenario, `list` lists them, "
        "--report runs every scenario with and without the safety layer.",
    )
    parser.add_argument(
        "--report",
        action="store_true",
        required=True,
        help="run each scenario with and without the layer, print the table, write PNG plots",
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default: {DEFAULT_OUT})"
    )
    parser.add_argument("--scenario", action="append", help="limit the report to this scenario (repeatable)")
    parser.add_argument("--real-time-factor", type=float, help="override every scenario's real-time factor")
    return parser


def run_one(argv: Sequence[str]) -> int:
    from nc_safety.sim.runner import RunOptions, run_scenario

    args = _run_parser().parse_args(argv)
    scenario = load_scenario(args.scenario)
    options = RunOptions(
        safety=not args.no_safety, seed=args.seed, real_time_factor=args.real_time_factor, out_dir=args.out
    )
    run = run_scenario(scenario, options)
    print(format_table([run]))
    for note in run.notes:
        print(f"note: {note}")
    return 0 if not run.safety or invariants_kept(run) else 1


def report(argv: Sequence[str]) -> int:
    from nc_safety.sim.runner import RunOptions, run_scenario, safety_node_available

    args = _report_parser().parse_args(argv)
    names = args.scenario or bundled_scenarios()
    args.out.mkdir(parents=True, exist_ok=True)
    runs: list[RunMetrics] = []
    notes: list[str] = []
    for name in names:
        scenario = load_scenario(name)
        pair = []
        for safety in (False, True):
            if safety and not safety_node_available():
                notes.append(f"{name}: run with the layer skipped: the safety node is not installed")
                continue
            options = RunOptions(safety=safety, real_time_factor=args.real_time_factor, out_dir=args.out)
            try:
                run = run_scenario(scenario, options)
            except SimError as error:
                notes.append(f"{name} ({'with' if safety else 'without'} the layer) did not run: {error}")
                continue
            pair.append(run)
            notes.extend(f"{name}: {note}" for note in run.notes)
        runs.extend(pair)
        if pair:
            plot = plot_scenario(args.out / f"{scenario.name}.png", scenario.scene, scenario.title, pair)
            notes.append(f"{name}: plot {plot}")
    table = format_table(runs)
    print(table)
    for note in notes:
        print(f"note: {note}")
    (args.out / "report.md").write_text(
        table + "\n\n" + "\n".join(f"- {note}" for note in notes) + "\n", encoding="utf-8"
    )
    failed = [run.scenario for run in runs if run.safety and not invariants_kept(run)]
    if failed:
        print(f"safety invariants broken with the layer on: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        if not args or args[0] in ("-h", "--help"):
            print(__doc__)
            return 0 if args else 2
        if args[0] == "run":
            return run_one(args[1:])
        if args[0] == "list":
            for name in bundled_scenarios():
                print(f"{name}: {load_scenario(name).title}")
            return 0
        return report(args)
    except SimError as error:
        print(f"nc-safety sim: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
