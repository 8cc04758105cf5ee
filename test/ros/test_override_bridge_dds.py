"""OverrideBridge over real DDS: the CLI signs and sends, the bridge verifies and responds.

The bridge runs in a stand-in host process (test/ros/override_host.py) until the safety
node hosts it; keys, keyring and nonce database are real files in tmp_path.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from override_helpers import OverrideWorld, make_world
from ros_harness import NodeProcess, RosClient
from std_msgs.msg import Bool, String

from nc_safety.core.overrides.keys import write_private_key

HOST_SCRIPT = Path(__file__).resolve().parent / "override_host.py"
CLI_TIMEOUT_S = 30.0


class Host:
    """The host process plus a client that records its state and the status stream."""

    def __init__(self, world: OverrideWorld, env: dict[str, str], client: RosClient, log: Path) -> None:
        self.world = world
        self.env = env
        self.client = client
        self.statuses: list[dict[str, Any]] = []
        self.state: dict[str, Any] = {}
        client.node.create_subscription(String, "/nc_safety/override_status", self._on_status, 50)
        client.node.create_subscription(String, "/nc_safety/host_state", self._on_state, 10)
        self.estop = client.node.create_publisher(Bool, "/operator/e_stop", 10)
        self.process = self.start(log)

    def start(self, log: Path) -> NodeProcess:
        argv = [
            sys.executable,
            str(HOST_SCRIPT),
            "--ros-args",
            "-p",
            f"overrides.keyring_path:={self.world.keyring_path}",
            "-p",
            f"overrides.nonce_db_path:={self.world.nonce_path}",
            "-p",
            "overrides.rate_limit_count:=50",
        ]
        process = NodeProcess(argv, self.env, log)
        self.state = {}
        self.client.spin_until(lambda: self.state or not process.alive(), timeout=30.0)
        assert process.alive(), process.output
        return process

    def _on_status(self, message: String) -> None:
        self.statuses.append(json.loads(message.data))

    def _on_state(self, message: String) -> None:
        self.state = json.loads(message.data)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "nc_safety.console.cli", "override", *args]
        return subprocess.run(
            argv, env=self.env, capture_output=True, text=True, timeout=CLI_TIMEOUT_S, check=False
        )

    def key(self, name: str) -> str:
        path = self.world.directory / f"{name}.key"
        if not path.exists():
            write_private_key(self.world.identity(name), path)
        return str(path)

    def wait_state(self, predicate: Any, timeout: float = 10.0) -> dict[str, Any]:
        self.client.spin_until(lambda: self.state and predicate(self.state), timeout)
        return self.state

    def wait_status(self, predicate: Any, timeout: float = 10.0) -> dict[str, Any]:
        return self.client.spin_until(lambda: next((s for s in self.statuses if predicate(s)), None), timeout)


@pytest.fixture
def host(tmp_path: Path, ros_env: dict[str, str], ros_client: RosClient) -> Iterator[Host]:
    world = make_world(tmp_path)
    host = Host(world, ros_env, ros_client, tmp_path / "host.log")
    try:
        yield host
    finally:
        host.process.stop()


def test_override_accepted_then_expires(host: Host) -> None:
    result = host.cli(
        "grant",
        "--key",
        host.key("alice"),
        "--rule",
        "motion.obstacle.braking",
        "--reason",
        "pallet in aisle",
        "--duration",
        "2",
        "--json",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    answer = json.loads(result.stdout)
    assert answer["code"] == "accepted"
    assert host.wait_state(lambda state: answer["request_id"] in state["grants"])
    ended = host.wait_status(lambda s: s["outcome"] == "ended" and s["request_id"] == answer["request_id"])
    assert ended["code"] == "expired"
    assert ended["ended_at"] >= ended["expires_at"]
    assert host.wait_state(lambda state: "override.ended" in state["audit"])


def test_hard_rule_rejected_over_dds(host: Host) -> None:
    result = host.cli(
        "grant",
        "--key",
        host.key("bob"),
        "--rule",
        "motion.people.separation",
        "--reason",
        "person is a colleague",
        "--duration",
        "5",
        "--json",
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert json.loads(result.stdout)["code"] == "hard_rule"


def test_replay_after_restart_rejected(host: Host, tmp_path: Path) -> None:
    request_file = tmp_path / "request.json"
    created = host.cli(
        "grant",
        "--key",
        host.key("alice"),
        "--rule",
        "motion.obstacle.braking",
        "--reason",
        "pallet",
        "--duration",
        "60",
        "--out",
        str(request_file),
    )
    assert created.returncode == 0, created.stderr
    first = host.cli("send", str(request_file), "--json")
    assert first.returncode == 0, first.stdout + first.stderr
    host.process.stop()
    host.process = host.start(tmp_path / "host-restarted.log")
    replay = host.cli("send", str(request_file), "--json")
    assert replay.returncode == 1, replay.stdout + replay.stderr
    assert json.loads(replay.stdout)["code"] == "nonce_reused"


def test_software_estop_needs_signed_release(host: Host) -> None:
    engaged = host.cli("estop", "--json")
    assert engaged.returncode == 0, engaged.stdout + engaged.stderr
    assert host.wait_state(lambda state: "estop.software" in state["holds"])
    again = host.cli("estop", "--json")
    assert again.returncode == 0, again.stdout + again.stderr
    assert json.loads(again.stdout)["code"] == "estop_already_engaged"
    host.client.wait_for_subscribers(host.estop)
    host.estop.publish(Bool(data=False))
    refused = host.wait_status(lambda s: s["code"] == "release_needs_signed_request")
    assert refused["outcome"] == "rejected"
    assert "estop.software" in host.state["holds"]
    reset = host.cli("reset", "--key", host.key("alice"), "--reason", "area checked", "--json")
    assert reset.returncode == 0, reset.stdout + reset.stderr
    assert host.wait_state(lambda state: not state["holds"])
    assert host.state["calls"] == ["estop.reset:alice"]


def test_readable_key_file_rejected_by_cli(host: Host, tmp_path: Path) -> None:
    key = Path(host.key("alice"))
    key.chmod(0o644)
    result = host.cli(
        "grant", "--key", str(key), "--rule", "motion.obstacle.braking", "--reason", "r", "--duration", "5"
    )
    assert result.returncode == 2
    assert "readable by others" in result.stderr


def test_malformed_keyring_stops_start(tmp_path: Path, ros_env: dict[str, str]) -> None:
    world = make_world(tmp_path)
    world.keyring_path.write_text("operators:\n  - operator_id: alice\n    role: pilot\n")
    argv = [
        sys.executable,
        str(HOST_SCRIPT),
        "--ros-args",
        "-p",
        f"overrides.keyring_path:={world.keyring_path}",
    ]
    process = NodeProcess(argv, ros_env, tmp_path / "bad.log")
    assert process.process.wait(timeout=30.0) != 0
    assert "operators[0] (key_id None): missing field(s) key_id, public_key" in process.output, process.output
