"""Closed loop: each scenario with the safety node as a separate process on sim time.

The safety invariants are asserted here: no contact between the robot and anything, and
the obstacle clearance never below the node's margin. Scenario-specific checks follow.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

CLI = [sys.executable, "-m", "nc_safety.console.cli", "sim"]
SEPARATION_TOLERANCE_S = 0.5
"""Time the robot may still move toward a person inside the protective separation distance.

The metric uses the measured speed, which lags the node's stop by the braking ramp (up to
0.22 m/s at 1.0 m/s², 0.22 s) plus one output period and DDS latency.
"""


def run_with_layer(name: str, env: dict[str, str], out: Path) -> dict[str, Any]:
    completed = subprocess.run(
        [*CLI, "run", name, "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert (out / f"{name}-with.json").is_file(), completed.stdout + completed.stderr
    record: dict[str, Any] = json.loads((out / f"{name}-with.json").read_text())
    record["exit_code"] = completed.returncode
    record["output"] = completed.stdout + completed.stderr
    return record


def assert_invariants(record: dict[str, Any]) -> None:
    assert record["contact_count"] == 0, record["contacted"]
    assert record["min_obstacle_clearance"] >= record["obstacle_margin"]
    assert record["separation_violation_time"] <= SEPARATION_TOLERANCE_S
    assert record["exit_code"] == 0, record["output"]


def mean_speed(record: dict[str, Any], start: float, end: float) -> float:
    samples = [sample for sample in record["path"] if start <= sample[0] <= end]
    travelled = sum(((b[1] - a[1]) ** 2 + (b[2] - a[2]) ** 2) ** 0.5 for a, b in itertools.pairwise(samples))
    return travelled / (samples[-1][0] - samples[0][0])


def test_wall_run_stops_short(ros_env: dict[str, str], tmp_path: Path) -> None:
    record = run_with_layer("wall_run", ros_env, tmp_path)
    assert_invariants(record)
    assert record["nearest_obstacle"] == "wall_east"
    assert record["refusal_rules"].get("motion.obstacle.stop", 0) >= 1


def test_people_standing_and_crossing(ros_env: dict[str, str], tmp_path: Path) -> None:
    record = run_with_layer("person_standing_crossing", ros_env, tmp_path)
    assert_invariants(record)
    assert record["refusal_rules"].get("motion.people.separation", 0) >= 1


@pytest.mark.slow
def test_doorway_corridor_reaches_goal(ros_env: dict[str, str], tmp_path: Path) -> None:
    record = run_with_layer("doorway_corridor", ros_env, tmp_path)
    assert_invariants(record)
    assert record["time_to_goal"] is not None


def test_laser_silent_stops(ros_env: dict[str, str], tmp_path: Path) -> None:
    record = run_with_layer("laser_silent", ros_env, tmp_path)
    assert_invariants(record)
    assert record["refusal_rules"].get("source.stale.scan", 0) >= 1
    # The laser falls silent at 4 s; within a second of simulated time the robot is still.
    assert mean_speed(record, 5.5, 18.0) < 0.005


@pytest.mark.slow
def test_safety_node_killed_relay_cuts_power(ros_env: dict[str, str], tmp_path: Path) -> None:
    record = run_with_layer("safety_node_killed", ros_env, tmp_path)
    assert_invariants(record)
    # Killed at 5 s with the last command still at full speed: only the relay stops the base.
    assert mean_speed(record, 3.0, 5.0) > 0.2
    assert mean_speed(record, 7.0, 16.0) < 0.005


def test_override_lifts_slowdown_until_expiry(ros_env: dict[str, str], tmp_path: Path) -> None:
    record = run_with_layer("override_expiry", ros_env, tmp_path)
    assert_invariants(record)
    assert len(record["override_windows"]) == 1
    accepted, ended = record["override_windows"][0]
    assert ended is not None
    assert ended - accepted == pytest.approx(4.0, abs=0.3)
    before = mean_speed(record, 2.0, accepted)
    during = mean_speed(record, accepted + 0.5, ended)
    after = mean_speed(record, ended + 1.0, ended + 5.0)
    assert during > 1.5 * before
    assert after < 0.7 * during


def test_reverse_and_turn_near_furniture(ros_env: dict[str, str], tmp_path: Path) -> None:
    record = run_with_layer("reverse_turn_furniture", ros_env, tmp_path)
    assert_invariants(record)
