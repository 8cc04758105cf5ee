"""Overrides end to end on the real safety node over DDS: refusal, signed override, expiry, replay."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from override_helpers import OverrideWorld, make_world
from override_robot import Robot, start_node
from ros_harness import NodeProcess, RosClient

from nc_safety.core.overrides.keys import write_private_key


@pytest.fixture
def world(tmp_path: Path) -> OverrideWorld:
    world = make_world(tmp_path)
    write_private_key(world.identity("bob"), tmp_path / "bob.key")
    return world


@pytest.fixture
def node(world: OverrideWorld, ros_env: dict[str, str], tmp_path: Path) -> Iterator[NodeProcess]:
    process = start_node(world, ros_env, tmp_path / "node.log")
    try:
        yield process
    finally:
        process.stop()


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "nc_safety.console.cli", "override", *args, "--timeout", "20", "--json"]


def test_override_forwards_then_expires(
    node: NodeProcess, world: OverrideWorld, ros_env: dict[str, str], ros_client: RosClient
) -> None:
    robot = Robot(ros_client)
    refusal = robot.wait_refusal("motion.obstacle.stop")
    assert refusal["verdict"] == "refuse", node.output
    key = str(world.directory / "bob.key")
    result = robot.run(
        cli(
            "grant",
            "--key",
            key,
            "--decision",
            refusal["decision_id"],
            "--reason",
            "box is cardboard",
            "--duration",
            "4",
        ),
        ros_env,
    )
    assert result.returncode == 0, result.stdout + result.stderr + node.output[-3000:]
    answer = json.loads(result.stdout)
    assert "motion.obstacle.stop" in answer["rule_ids"]
    robot.outputs.clear()
    ros_client.spin_until(lambda: any(value > 0.0 for value in robot.outputs), timeout=5.0)
    ended = ros_client.spin_until(
        lambda: next((s for s in robot.statuses if s["outcome"] == "ended"), None), timeout=15.0
    )
    assert ended["code"] == "expired"
    assert ended["ended_at"] >= ended["expires_at"]
    robot.outputs.clear()
    ros_client.spin_until(lambda: len(robot.outputs) >= 10, timeout=5.0)
    assert all(value == 0.0 for value in robot.outputs[-5:]), robot.outputs


def test_replay_after_node_restart_rejected(
    node: NodeProcess, world: OverrideWorld, ros_env: dict[str, str], ros_client: RosClient, tmp_path: Path
) -> None:
    robot = Robot(ros_client)
    request_file = tmp_path / "request.json"
    key = str(world.directory / "bob.key")
    signed = robot.run(
        [
            sys.executable,
            "-m",
            "nc_safety.console.cli",
            "override",
            "grant",
            "--key",
            key,
            "--rule",
            "motion.obstacle.stop",
            "--reason",
            "box is cardboard",
            "--duration",
            "60",
            "--out",
            str(request_file),
        ],
        ros_env,
    )
    assert signed.returncode == 0, signed.stderr
    first = robot.run(cli("send", str(request_file)), ros_env)
    assert first.returncode == 0, first.stdout + first.stderr
    node.stop()
    restarted = start_node(world, ros_env, tmp_path / "node-restarted.log")
    try:
        replay = robot.run(cli("send", str(request_file)), ros_env)
        assert replay.returncode == 1, replay.stdout + replay.stderr
        assert json.loads(replay.stdout)["code"] == "nonce_reused"
    finally:
        restarted.stop()


def test_malformed_keyring_stops_node(world: OverrideWorld, ros_env: dict[str, str], tmp_path: Path) -> None:
    world.keyring_path.write_text(
        "operators:\n  - {operator_id: alice, role: pilot, key_id: alice-1, public_key: abc}\n"
    )
    process = start_node(world, ros_env, tmp_path / "bad-keyring.log")
    assert process.process.wait(timeout=30.0) == 2
    assert "operators[0] (key_id 'alice-1'): role 'pilot' must be one of" in process.output
    assert "public_key 'abc' is not valid base64" in process.output


def test_keyring_reload_admits_new_operator(
    node: NodeProcess, world: OverrideWorld, ros_env: dict[str, str], ros_client: RosClient
) -> None:
    import yaml
    from std_srvs.srv import Trigger

    from nc_safety.core.overrides import Role, SigningIdentity

    dave = SigningIdentity.generate("dave", Role.SUPERVISOR)
    write_private_key(dave, world.directory / "dave.key")
    robot = Robot(ros_client)
    refusal = robot.wait_refusal("motion.obstacle.stop")
    grant = [
        "grant",
        "--key",
        str(world.directory / "dave.key"),
        "--decision",
        refusal["decision_id"],
        "--reason",
        "inspection run",
        "--duration",
        "5",
    ]
    before = robot.run(cli(*grant), ros_env)

    document = yaml.safe_load(world.keyring_path.read_text())
    document["operators"].append(dave.operator_key().keyring_entry())
    world.keyring_path.write_text(yaml.safe_dump(document, sort_keys=False))
    service = ros_client.node.create_client(Trigger, "/nc_safety/overrides/reload_keyring")
    ros_client.spin_until(service.service_is_ready, 20.0)
    future = service.call_async(Trigger.Request())
    ros_client.spin_until(future.done, 10.0)
    refusal = robot.wait_refusal("motion.obstacle.stop")
    grant[4] = refusal["decision_id"]
    after = robot.run(cli(*grant), ros_env)

    assert json.loads(before.stdout)["code"] == "unknown_key"
    assert future.result().success, future.result().message
    assert after.returncode == 0, after.stdout + after.stderr
