"""Replays of the bundled real recordings through the node over DDS."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from ros_harness import REPO_ROOT, NodeProcess, RosClient

from nc_safety.paths import RECORDINGS
from nc_safety.replay.bag import BagError, BagReplaySource
from nc_safety.replay.runner import DEFAULT_MAP, run_replay

SCHEMA = json.loads((REPO_ROOT / "docs" / "schemas" / "justification.schema.json").read_text())
LAB_RUN = RECORDINGS / "tb3-real-lab07" / "rosbag2_2026_01_08-17_29_46"
GAZEBO_RUN = RECORDINGS / "tb3-gazebo-walker" / "walker_bag"


@pytest.fixture
def burger_node(ros_env: dict[str, str], tmp_path: Path):
    node = NodeProcess.safety_node(ros_env, tmp_path / "node.log", REPO_ROOT / "config" / "tb3_burger.yaml")
    yield node
    node.stop()


def test_real_run_clamps_spikes(ros_client: RosClient, burger_node: NodeProcess) -> None:
    refusals: list[dict] = []
    from std_msgs.msg import String

    ros_client.node.create_subscription(
        String, "/nc_safety/refusals", lambda m: refusals.append(json.loads(m.data)), 500
    )
    summary = run_replay(LAB_RUN, rate=8.0, quiet=True, context=ros_client.context)
    ros_client.spin_for(0.5)

    assert summary.largest_command_in[1] == pytest.approx(94.48, abs=0.01)
    assert summary.largest_angular <= 2.84 + 1e-9
    assert summary.largest_linear <= 0.22 + 1e-9
    assert summary.non_finite_outputs == 0
    assert summary.over_limit_outputs == 0
    assert summary.command_rules.get("motion.limit.angular_z", 0) >= 1
    assert summary.published["scan"] == 841
    assert burger_node.alive(), burger_node.output
    for record in refusals:
        jsonschema.validate(record, SCHEMA)
    clamped = [r for r in refusals if any(x["rule_id"] == "motion.limit.angular_z" for x in r["reasons"])]
    assert clamped
    assert (
        "94.48"
        in next(x for x in clamped[0]["reasons"] if x["rule_id"] == "motion.limit.angular_z")["message"]
    )


def test_sim_time_recording_rebased(ros_client: RosClient, burger_node: NodeProcess) -> None:
    summary = run_replay(GAZEBO_RUN, rate=4.0, quiet=True, context=ros_client.context)

    assert summary.sim_time_recording
    assert summary.published["cmd_vel_in"] == 81
    assert summary.non_finite_outputs == 0
    assert "source.clock_mismatch.scan" not in summary.command_rules
    assert burger_node.alive(), burger_node.output


def test_missing_bag_folder_is_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BagError, match="not a rosbag2 folder"):
        BagReplaySource(tmp_path, DEFAULT_MAP)
