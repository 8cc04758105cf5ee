"""The side-by-side report: a table of metrics and one PNG per scenario.

Each scenario runs without the safety layer (the commander drives the base directly) and
with it. The table puts the two rows next to each other. The plot shows both paths over
the scene with obstacles, people, stop points and contacts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

# Headless: the backend must be chosen before pyplot is imported.
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.patches import Circle, Rectangle

from nc_safety.sim.metrics import RunMetrics
from nc_safety.sim.scene import Box, Cylinder, Scene

COLUMNS = (
    "scenario",
    "layer",
    "contacts",
    "min obstacle m (margin)",
    "min person m (PSD)",
    "approach in PSD s",
    "time to goal s",
    "stops",
    "false stops (s)",
    "refusals",
)


def _metres(value: float) -> str:
    return "-" if not math.isfinite(value) else f"{value:.3f}"


def table_rows(runs: Sequence[RunMetrics]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for run in runs:
        rows.append(
            (
                run.scenario,
                "with" if run.safety else "without",
                str(run.contact_count),
                f"{_metres(run.min_obstacle_clearance)} ({run.obstacle_margin:.2f})",
                f"{_metres(run.min_person_clearance)} ({run.person_separation:.2f})"
                if math.isfinite(run.min_person_clearance)
                else "-",
                f"{run.separation_violation_time:.2f}",
                "-" if run.time_to_goal is None else f"{run.time_to_goal:.1f}",
                str(len(run.stops)),
                f"{len(run.false_stops)} ({run.false_stop_time:.1f})",
                str(run.refusals),
            )
        )
    return rows


def format_table(runs: Sequence[RunMetrics]) -> str:
    """Format the runs as a Markdown table, one row per run."""
    rows = table_rows(runs)
    widths = [
        max(len(COLUMNS[i]), *(len(row[i]) for row in rows)) if rows else len(COLUMNS[i])
        for i in range(len(COLUMNS))
    ]
    lines = [
        "| " + " | ".join(name.ljust(width) for name, width in zip(COLUMNS, widths, strict=True)) + " |",
        "|" + "|".join("-" * (width + 2) for width in widths) + "|",
    ]
    lines += [
        "| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) + " |"
        for row in rows
    ]
    return "\n".join(lines)


def _draw_scene(axes: Axes, scene: Scene) -> None:
    for obstacle in scene.obstacles:
        colour = "0.35" if obstacle.kind == "wall" else "#a0785a"
        if isinstance(obstacle, Box):
            axes.add_patch(
                Rectangle(
                    (obstacle.x - obstacle.length / 2.0, obstacle.y - obstacle.width / 2.0),
                    obstacle.length,
                    obstacle.width,
                    angle=math.degrees(obstacle.yaw),
                    rotation_point="center",
                    color=colour,
                )
            )
        elif isinstance(obstacle, Cylinder):
            axes.add_patch(Circle((obstacle.x, obstacle.y), obstacle.radius, color=colour))
    axes.set_xlim(scene.bounds[0], scene.bounds[2])
    axes.set_ylim(scene.bounds[1], scene.bounds[3])
    axes.set_aspect("equal")
    axes.grid(True, linewidth=0.3)


def _draw_run(axes: Axes, scene: Scene, run: RunMetrics) -> None:
    _draw_scene(axes, scene)
    for person in scene.people:
        track = run.people_tracks.get(person.name, [])
        if track:
            track_xs, track_ys = zip(*track, strict=True)
            axes.plot(track_xs, track_ys, linestyle="--", color="tab:orange", linewidth=0.8)
            axes.add_patch(Circle(track[-1], person.radius, fill=False, color="tab:orange"))
    if run.path:
        xs = [sample[1] for sample in run.path]
        ys = [sample[2] for sample in run.path]
        axes.plot(xs, ys, color="tab:blue", linewidth=1.5, label="robot")
        axes.plot(xs[0], ys[0], marker="o", color="tab:blue")
    for stop in run.stops:
        axes.plot(stop.x, stop.y, marker="x", color="tab:green" if stop.needed else "tab:red", markersize=8)
    for x, y in run.contact_points:
        axes.plot(x, y, marker="*", color="black", markersize=12)
    layer = "with safety layer" if run.safety else "without safety layer"
    axes.set_title(
        f"{layer}: {run.contact_count} contact(s), min clearance {_metres(run.min_obstacle_clearance)} m",
        fontsize=9,
    )


def _draw_speed(axes: Axes, run: RunMetrics) -> None:
    times = [b[0] for b in run.path[1:]]
    speeds = [
        math.dist(a[1:3], b[1:3]) / max(b[0] - a[0], 1e-9)
        for a, b in zip(run.path, run.path[1:], strict=False)
    ]
    axes.plot(times, speeds, color="tab:blue", linewidth=1.0)
    for start, end in run.override_windows:
        if start is None:
            continue
        axes.axvspan(
            start,
            end if end is not None else run.duration,
            color="tab:purple",
            alpha=0.2,
            label="override active",
        )
    for stop in run.stops:
        axes.axvspan(stop.start, stop.end, color="tab:green" if stop.needed else "tab:red", alpha=0.15)
    axes.set_xlabel("sim time [s]")
    axes.set_ylabel("speed [m/s]")
    axes.set_xlim(0.0, run.duration)
    axes.grid(True, linewidth=0.3)


def plot_scenario(path: Path, scene: Scene, title: str, runs: Sequence[RunMetrics]) -> Path:
    """Write one PNG with a column per run (without, with): the path over the scene, then speed.

    Colours: the robot path is blue, people tracks and final positions orange, needed stops
    green, false stops red, contacts black stars, and active overrides purple bands.
    """
    figure, axes = plt.subplots(
        2, len(runs), figsize=(6.0 * len(runs), 7.0), squeeze=False, gridspec_kw={"height_ratios": [3, 1]}
    )
    for column, run in enumerate(runs):
        _draw_run(axes[0][column], scene, run)
        _draw_speed(axes[1][column], run)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path
