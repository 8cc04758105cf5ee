"""Run one scenario end to end: world, simulation node, commander, and the safety node process.

With the safety layer the commander publishes `cmd_vel_in`, the safety node (a separate
process on sim time) publishes `cmd_vel_out`, and the simulator drives the base from it.
Without it the simulator drives the base from `cmd_vel_in` directly, which shows what the
layer prevents. DDS settings come from the environment (`scripts/env.sh` keeps them on
loopback); the safety node process inherits them.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import rclpy
import yaml
from geometry_msgs.msg import Twist
from rclpy.context import Context
from rclpy.qos import QoSProfile, QoSReliabilityPolicy
from std_msgs.msg import String

from nc_safety.ros.dds_env import apply_loopback_defaults
from nc_safety.sim.commander import Commander, make_commander
from nc_safety.sim.errors import SimError
from nc_safety.sim.metrics import Recorder, RunMetrics
from nc_safety.sim.node import EmulatorRelay, RelaySource, SimNode, SimSettings
from nc_safety.sim.scenario import Event, Scenario, node_params_files
from nc_safety.sim.world import World

LOGGER = logging.getLogger(__name__)
COMMAND_PERIOD_S = 0.05
"""The commander publishes `cmd_vel_in` at 20 Hz of simulated time."""
SAFETY_NODE_NAME = "nc_safety"


@dataclass(frozen=True, slots=True)
class RunOptions:
    safety: bool = True
    seed: int | None = None
    """Overrides the scenario's seed."""
    real_time_factor: float | None = None
    """Overrides the scenario's real-time factor."""
    out_dir: Path | None = None
    """Folder for the result JSON and the safety node's log; nothing is written when None."""
    startup_timeout: float = 60.0
    """Real seconds to wait for the safety node to start and match all topics."""


def safety_node_available() -> bool:
    return importlib.util.find_spec("nc_safety.ros.node") is not None


def format_param(value: Any) -> str:
    """Format a value as a `-p name:=value` literal that rcl parses to the same type."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(format_param(item) for item in value) + "]"
    if isinstance(value, str):
        return f"'{value}'" if value else "''"
    return str(value)


class SafetyNodeProcess:
    """The safety node as a child process on sim time; its output goes to `log_path`."""

    def __init__(self, params_files: list[Path], params: dict[str, Any], log_path: Path | None) -> None:
        argv = [sys.executable, "-m", "nc_safety.ros.node", "--ros-args", "-r", f"__node:={SAFETY_NODE_NAME}"]
        for params_file in params_files:
            argv += ["--params-file", str(params_file)]
        argv += ["-p", "use_sim_time:=true"]
        for key, value in params.items():
            argv += ["-p", f"{key}:={format_param(value)}"]
        self.argv = argv
        self.log_path = log_path
        self._log: BinaryIO | None = open(log_path, "wb") if log_path is not None else None  # noqa: SIM115
        self.process = subprocess.Popen(
            argv,
            stdout=self._log if self._log is not None else subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.killed_at: float | None = None

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, as when the process crashes."""
        if self.alive():
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10.0)

    def stop(self, timeout: float = 10.0) -> int:
        if self.alive():
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        if self._log is not None:
            self._log.close()
        return self.process.returncode


class ScenarioRun:
    """One run of a scenario; `execute` returns its metrics."""

    def __init__(self, scenario: Scenario, options: RunOptions) -> None:
        self.scenario = scenario
        self.options = options
        self.seed = scenario.seed if options.seed is None else options.seed
        self.world = World(
            scenario.scene, laser=scenario.laser, seed=self.seed, command_timeout=scenario.command_timeout
        )
        self.commander: Commander = make_commander(scenario.commander)
        self.metrics = RunMetrics(scenario.name, options.safety, self.seed, scenario.duration)
        requirements = scenario.requirements()
        self.metrics.obstacle_margin = requirements.obstacle_margin
        self.metrics.person_separation = requirements.person_separation
        self.recorder = Recorder(self.metrics, requirements, scenario.goal, scenario.goal_tolerance)
        self.safety_node: SafetyNodeProcess | None = None
        self.emulator: Any = None
        self._pending_events = list(scenario.events)
        self.supervisor: Any = None
        """Signing identity of the simulated supervisor, in runs with overrides."""
        self._override_pub: Any = None
        self._key_folder: Path | None = None
        self.override_times: list[float] = []
        self.override_log: list[str] = []
        self._next_command = scenario.start_delay

    def execute(self) -> RunMetrics:
        apply_loopback_defaults()
        missing = self._missing_parts()
        if missing:
            raise SimError(missing, source=f"run of scenario {self.scenario.name!r}")
        context = Context()
        rclpy.init(context=context)
        sim: SimNode | None = None
        try:
            relay = self._start_estop()
            rtf = (
                self.scenario.real_time_factor
                if self.options.real_time_factor is None
                else self.options.real_time_factor
            )
            settings = SimSettings(
                real_time_factor=rtf, cmd_topic="cmd_vel_out" if self.options.safety else "cmd_vel_in"
            )
            sim = SimNode(self.world, settings, context=context, relay=relay)
            self._command_pub = sim.node.create_publisher(Twist, "cmd_vel_in", QoSProfile(depth=10))
            if self.options.safety:
                self._start_safety_node(sim)
            sim.tick_callbacks.append(self._on_tick)
            sim.tick_callbacks.append(self.recorder.on_tick)
            self._sim = sim
            self.metrics.wall_time = sim.run(self.scenario.duration)
            metrics = self.recorder.finish(self.world.time, list(sim.refusals))
        finally:
            if self.safety_node is not None:
                code = self.safety_node.stop()
                if self.safety_node.killed_at is None and code not in (0, -signal.SIGINT, 130):
                    self.metrics.notes.append(f"safety node exited with code {code}")
            if self.emulator is not None:
                self.emulator.stop()
            if self._key_folder is not None:
                shutil.rmtree(self._key_folder, ignore_errors=True)
            self.metrics.notes.extend(self.override_log)
            if sim is not None:
                sim.close()
            rclpy.shutdown(context=context)
        if self.options.out_dir is not None:
            self._write(metrics)
        return metrics

    def _missing_parts(self) -> list[str]:
        missing = []
        if self.options.safety and not safety_node_available():
            missing.append(
                "the safety node (nc_safety.ros.node) is not installed; run without the layer "
                "(--no-safety) or install it"
            )
        if (
            self.options.safety
            and "estop" in self.scenario.requires
            and importlib.util.find_spec("nc_safety.estop.emulator") is None
        ):
            missing.append(
                "this scenario needs the e-stop emulator (nc_safety.estop.emulator), which is missing"
            )
        return missing

    def _start_estop(self) -> RelaySource | None:
        if not (self.options.safety and "estop" in self.scenario.requires):
            return None
        from nc_safety.estop.emulator import BoardEmulator

        self.emulator = BoardEmulator()
        self.emulator.start()
        return EmulatorRelay(self.emulator)

    def _start_safety_node(self, sim: SimNode) -> None:
        params = dict(self.scenario.safety_params)
        if self.emulator is not None:
            params.update({"estop.enabled": True, "estop.port": self.emulator.port})
        if "overrides" in self.scenario.requires:
            params.update(self._prepare_overrides())
            reliable = QoSProfile(depth=50, reliability=QoSReliabilityPolicy.RELIABLE)
            self._override_pub = sim.node.create_publisher(String, "/operator/override", reliable)
            sim.node.create_subscription(
                String, f"/{SAFETY_NODE_NAME}/override_status", self._on_override_status, reliable
            )
        log_path = None
        if self.options.out_dir is not None:
            self.options.out_dir.mkdir(parents=True, exist_ok=True)
            log_path = self.options.out_dir / f"{self.scenario.name}-safety-node.log"
        self.safety_node = SafetyNodeProcess(node_params_files(), params, log_path)
        node = sim.node

        def matched() -> bool:
            return (
                node.count_publishers("cmd_vel_out") >= 1
                and self._command_pub.get_subscription_count() >= 1
                and node.count_subscribers("scan") >= 1
                and node.count_subscribers("/clock") >= 1
            )

        self._wait(matched, "the safety node to match cmd_vel_in, cmd_vel_out, scan and /clock")
        if self._override_pub is not None:
            override_pub = self._override_pub
            self._wait(
                lambda: override_pub.get_subscription_count() >= 1,
                "the safety node to subscribe /operator/override",
            )
        if self.emulator is not None:
            self._wait(
                lambda: sim.relay is not None and sim.relay.motor_power(),
                "the e-stop relay to close (the node must reset the board at start-up)",
            )

    def _node_log_tail(self, lines: int = 25) -> str:
        """The end of the safety node's log, for errors that the node's state explains."""
        path = self.safety_node.log_path if self.safety_node is not None else None
        if path is None or not path.is_file():
            return ""
        tail = path.read_text(errors="replace").splitlines()[-lines:]
        return f"; last lines of {path}:\n" + "\n".join(tail)

    def _wait(self, predicate: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + self.options.startup_timeout
        while not predicate():
            if self.safety_node is not None and not self.safety_node.alive():
                raise SimError(
                    f"the safety node exited with code {self.safety_node.process.returncode} while "
                    f"waiting for {what}; see {self.safety_node.log_path}",
                    source="run",
                )
            if time.monotonic() > deadline:
                raise SimError(
                    f"timed out after {self.options.startup_timeout:.0f} s waiting for {what}"
                    + self._node_log_tail(),
                    source="run",
                )
            time.sleep(0.05)

    def _on_tick(self, world: World) -> None:
        now = world.time
        while self._pending_events and self._pending_events[0].at <= now + 1e-9:
            self._apply(self._pending_events.pop(0), now)
        if now + 1e-9 >= self._next_command:
            self._next_command += COMMAND_PERIOD_S
            linear, angular = self.commander.command(now - self.scenario.start_delay, world.pose())
            message = Twist()
            message.linear.x = linear
            message.angular.z = angular
            self._command_pub.publish(message)
            self.recorder.requested = (linear, angular)

    def _apply(self, event: Event, now: float) -> None:
        LOGGER.info("t=%.2f s: %s", now, event.action)
        if event.action == "stop_scan":
            self._sim.scan_enabled = False
            self.recorder.fail_safe_active = True
        elif event.action == "resume_scan":
            self._sim.scan_enabled = True
            self.recorder.fail_safe_active = False
        elif event.action == "kill_safety_node":
            self.recorder.fail_safe_active = True
            if self.safety_node is not None:
                self.safety_node.kill()
                self.safety_node.killed_at = now
        elif event.action == "override":
            self.metrics.notes.append(self._send_override(event, now))

    def _send_override(self, event: Event, now: float) -> str:
        rules = list(event.args.get("rule_ids", []))
        if self.supervisor is None or self._override_pub is None:
            return f"override of {rules} at {now:.1f} s skipped: no safety node with overrides in this run"
        from nc_safety.core.overrides import Constraints, RequestKind, new_request

        max_linear = event.args.get("max_linear")
        request = new_request(
            RequestKind.OVERRIDE,
            self.supervisor,
            now=time.time(),
            lifetime_s=float(event.args.get("duration", 5.0)),
            reason=str(event.args.get("reason", "simulated supervisor override")),
            rule_ids=rules,
            constraints=Constraints(max_linear_speed=None if max_linear is None else float(max_linear)),
        )
        self._override_pub.publish(String(data=json.dumps(request.to_json())))
        self.override_times.append(now)
        return f"override {request.request_id} of {rules} sent at {now:.1f} s"

    def _prepare_overrides(self) -> dict[str, Any]:
        """Create a supervisor key and a keyring for this run; return the node's override parameters."""
        from nc_safety.core.overrides import Role, SigningIdentity

        folder = Path(tempfile.mkdtemp(prefix="nc_safety_sim_keys_"))
        self._key_folder = folder
        self.supervisor = SigningIdentity.generate("sim_supervisor", Role.SUPERVISOR)
        keyring = {"operators": [self.supervisor.operator_key().keyring_entry()], "revoked": []}
        keyring_path = folder / "operators.yaml"
        keyring_path.write_text(yaml.safe_dump(keyring), encoding="utf-8")
        return {
            "overrides.enabled": True,
            "overrides.keyring_path": str(keyring_path),
            "overrides.nonce_db_path": str(folder / "nonces.sqlite3"),
        }

    def _on_override_status(self, message: String) -> None:
        try:
            record = json.loads(message.data)
        except json.JSONDecodeError:
            return
        if isinstance(record, dict):
            outcome = record.get("outcome", "?")
            if outcome == "accepted":
                self.metrics.override_windows.append([self.world.time, None])
            elif outcome == "ended" and self.metrics.override_windows:
                self.metrics.override_windows[-1][1] = self.world.time
            self.override_log.append(
                f"override status at {self.world.time:.2f} s: {outcome} "
                f"{record.get('reason_code') or record.get('message') or ''}".rstrip()
            )

    def _write(self, metrics: RunMetrics) -> Path | None:
        if self.options.out_dir is None:
            return None
        self.options.out_dir.mkdir(parents=True, exist_ok=True)
        label = "with" if self.options.safety else "without"
        path = self.options.out_dir / f"{self.scenario.name}-{label}.json"
        record = metrics.to_json()
        record["scene"] = self.scenario.scene.name
        record["title"] = self.scenario.title
        path.write_text(
            json.dumps(record, indent=1, allow_nan=False, default=_json_default), encoding="utf-8"
        )
        return path


def _json_default(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    raise TypeError(f"not JSON serialisable: {value!r}")


def run_scenario(scenario: Scenario, options: RunOptions) -> RunMetrics:
    """Run `scenario` once with the given options and return its metrics."""
    return ScenarioRun(scenario, options).execute()
