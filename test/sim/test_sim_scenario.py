"""Scenario files, commanders, metrics bookkeeping and the report, without ROS."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from nc_safety.sim.commander import PursueCommander, ScriptCommander, WaypointCommander, make_commander
from nc_safety.sim.errors import SimError
from nc_safety.sim.metrics import Recorder, RunMetrics, Stop
from nc_safety.sim.report import format_table, plot_scenario
from nc_safety.sim.scenario import bundled_scenarios, load_scenario
from nc_safety.sim.scene import load_scene
from nc_safety.sim.world import World

SCENARIOS = [
    "doorway_corridor",
    "laser_silent",
    "override_expiry",
    "person_standing_crossing",
    "reverse_turn_furniture",
    "safety_node_killed",
    "wall_run",
]


def test_seven_scenarios_bundled() -> None:
    assert bundled_scenarios() == SCENARIOS


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario_loads(name: str) -> None:
    scenario = load_scenario(name)
    assert scenario.duration > 0.0
    assert make_commander(scenario.commander) is not None


def test_requirements_come_from_node_config() -> None:
    requirements = load_scenario("person_standing_crossing").requirements()
    assert requirements.obstacle_margin == pytest.approx(0.05)
    # 1.6 m/s x (0.1 s reaction + 0.05 s output period) + 0.2 m intrusion + 0.1 m uncertainty.
    assert requirements.person_separation == pytest.approx(0.54)
    assert requirements.people_enabled
    assert requirements.separation_at(0.22) > requirements.person_separation


def test_scenario_errors_list_every_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "scene: room\nduration: -1\nseed: x\ncommander: {kind: teleport}\n"
        "events: [{at: 1, action: explode}]\nrequires: [warp_drive]\n",
        encoding="utf-8",
    )
    with pytest.raises(SimError, match="5 problems") as caught:
        load_scenario(str(path))
    text = str(caught.value)
    assert "duration = -1 must be a finite number >= 0.1" in text
    assert "seed = 'x' must be an integer >= 0" in text
    assert "commander.kind = 'teleport' is not one of" in text
    assert "events[0]" in text
    assert "requires = ['warp_drive'] names unknown parts" in text


def test_script_commander_plays_segments() -> None:
    commander = ScriptCommander(((1.0, 0.1, 0.0), (2.0, 0.0, 1.0)))
    assert commander.command(0.5, (0.0, 0.0, 0.0)) == (0.1, 0.0)
    assert commander.command(2.5, (0.0, 0.0, 0.0)) == (0.0, 1.0)
    assert commander.command(3.5, (0.0, 0.0, 0.0)) == (0.0, 0.0)


def test_pursue_turns_then_drives() -> None:
    commander = PursueCommander(((math.inf, (0.0, 1.0)),))
    linear, angular = commander.command(0.0, (0.0, 0.0, 0.0))
    assert linear == 0.0
    assert angular == pytest.approx(2.84)
    linear, angular = commander.command(0.0, (0.0, 0.0, math.pi / 2))
    assert linear == pytest.approx(0.22)
    assert angular == pytest.approx(0.0)


def test_waypoint_commander_finishes() -> None:
    commander = WaypointCommander(((1.0, 0.0),), tolerance=0.1)
    assert commander.command(0.0, (0.0, 0.0, 0.0))[0] > 0.0
    assert commander.command(0.0, (0.95, 0.0, 0.0)) == (0.0, 0.0)
    assert commander.done()


def test_recorder_counts_contact_and_stop() -> None:
    scenario = load_scenario("wall_run")
    world = World(scenario.scene, seed=1)
    metrics = RunMetrics("wall_run", False, 1, 18.0)
    recorder = Recorder(metrics, scenario.requirements(), None, 0.2)
    recorder.requested = (0.22, 0.0)
    world.set_command(0.22, 0.0)
    while world.time < 18.0:
        world.step(0.01)
        recorder.on_tick(world)
    recorder.finish(world.time, [{"reasons": [{"rule_id": "motion.obstacle.stop"}]}])
    assert metrics.contact_count == 1
    assert metrics.contacted == ["wall_east"]
    assert metrics.min_obstacle_clearance <= 0.0
    assert len(metrics.stops) == 1
    assert metrics.stops[0].cause == "obstacle"
    assert metrics.refusal_rules == {"motion.obstacle.stop": 1}


def test_metrics_json_round_trip() -> None:
    metrics = RunMetrics("x", True, 1, 10.0, stops=[Stop(1.0, 2.0, 0.0, 0.0, False, "none")])
    again = RunMetrics.from_json(metrics.to_json())
    assert again.stops == metrics.stops
    assert again.min_obstacle_clearance == math.inf
    assert again.false_stop_time == pytest.approx(1.0)


def test_report_table_and_plot(tmp_path: Path) -> None:
    scene = load_scene("room")
    without = RunMetrics(
        "wall_run",
        False,
        1,
        18.0,
        contact_count=1,
        contact_points=[(2.9, 0.0)],
        min_obstacle_clearance=-0.002,
        obstacle_margin=0.05,
        path=[(0.0, 0.0, 0.0, 0.0), (1.0, 0.2, 0.0, 0.0)],
    )
    with_layer = RunMetrics(
        "wall_run",
        True,
        1,
        18.0,
        min_obstacle_clearance=0.09,
        obstacle_margin=0.05,
        stops=[Stop(14.0, 18.0, 2.8, 0.0, True, "obstacle")],
        path=[(0.0, 0.0, 0.0, 0.0), (1.0, 0.2, 0.0, 0.0)],
    )
    table = format_table([without, with_layer])
    assert "| wall_run" in table
    assert "-0.002 (0.05)" in table
    assert "0.090 (0.05)" in table
    png = plot_scenario(tmp_path / "wall_run.png", scene, "Full speed at a wall", [without, with_layer])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
