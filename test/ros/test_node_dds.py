"""The safety node as a separate process over real DDS: the cases a robot meets in the field."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ros_harness import REPO_ROOT, NodeProcess, RosClient, SafetyProbe, wait_until

from nc_safety.core.geometry import COMPILED_CLEARANCE_AVAILABLE

CONFIG = REPO_ROOT / "config" / "tb3_burger.yaml"
START_TIMEOUT = 30.0
WAIT = 15.0
"""Upper bound, in s, for a condition that is normally met within a second; generous for loaded CI machines."""

NodeFactory = Callable[..., NodeProcess]


@pytest.fixture
def start_node(ros_env: dict[str, str], tmp_path: Path) -> Iterator[NodeFactory]:
    started: list[NodeProcess] = []

    def factory(**params: Any) -> NodeProcess:
        node = NodeProcess.safety_node(ros_env, tmp_path / f"node{len(started)}.log", CONFIG, params)
        started.append(node)
        return node

    yield factory
    for node in started:
        node.stop()


def probe_for(client: RosClient, node: NodeProcess, stamped: bool = False, **kwargs: Any) -> SafetyProbe:
    probe = SafetyProbe(client, stamped=stamped, **kwargs)
    try:
        probe.wait_ready(START_TIMEOUT)
    except TimeoutError:
        pytest.fail(f"node did not come up; its log:\n{node.output}")
    return probe


def moving(probe: SafetyProbe, speed: float) -> bool:
    """Whether the last output forwards `speed` m/s forward."""
    last = probe.last_output()
    return last is not None and abs(last.linear.x - speed) < 1e-6


def outputs_since(probe: SafetyProbe, start: float) -> list[Any]:
    return [twist for stamp, twist in probe.outputs if stamp >= start]


def test_nan_stream_refused_then_valid_resumes(ros_client: RosClient, start_node: NodeFactory) -> None:
    node = start_node()
    probe = probe_for(ros_client, node)
    probe.stream(0.3, 0.05, probe.scan)

    def nan_tick() -> None:
        probe.scan()
        probe.send(0.2, math.nan)

    nan_start = time.monotonic()
    probe.stream(1.0, 0.05, nan_tick)
    during = outputs_since(probe, nan_start)
    ros_client.spin_until(lambda: probe.refusals_with("motion.non_finite"), 5.0)
    refusal = probe.refusals_with("motion.non_finite")[0]

    def valid_tick() -> None:
        probe.scan()
        probe.send(0.2, 0.0)

    probe.stream_until(lambda: moving(probe, 0.2), WAIT, 0.05, valid_tick)
    ros_client.spin_until(
        lambda: probe.states and probe.states[-1]["counts"]["non_finite_commands"] >= 20, 5.0
    )
    counts = probe.states[-1]["counts"]

    assert during, "no output while NaN commands arrived"
    assert all(twist.linear.x == 0.0 and twist.angular.z == 0.0 for twist in during)
    reason = next(r for r in refusal["reasons"] if r["rule_id"] == "motion.non_finite")
    assert "angular.z" in reason["message"]
    assert reason["verdict"] == "refuse"
    assert reason["refutable_by"] == "none"
    assert counts["non_finite_commands"] == 20
    assert counts["command_verdicts"].get("refuse", 0) >= 20
    assert probe.last_output().linear.x == pytest.approx(0.2)


def test_scan_silence_stops_and_names_source(ros_client: RosClient, start_node: NodeFactory) -> None:
    node = start_node()
    probe = probe_for(ros_client, node)

    def with_scan() -> None:
        probe.scan()
        probe.send(0.15)

    probe.stream_until(lambda: moving(probe, 0.15), WAIT, 0.05, with_scan)

    def stale_refusals() -> list[dict[str, Any]]:
        return [r for r in probe.refusals_with("source.stale.scan") if "old" in r["reasons"][0]["message"]]

    probe.stream_until(stale_refusals, WAIT, 0.05, lambda: probe.send(0.15))
    probe.stream(0.2, 0.05, lambda: probe.send(0.15))
    stale = stale_refusals()

    assert stale, f"no stale-scan refusal; refusals: {probe.refusals}"
    assert "scan is" in stale[0]["reasons"][0]["message"]
    assert stale[0]["reasons"][0]["evidence"][0]["age_s"] >= 0.5
    assert probe.last_output().linear.x == 0.0


def test_future_scan_is_invalid(ros_client: RosClient, start_node: NodeFactory) -> None:
    node = start_node()
    probe = probe_for(ros_client, node)

    def future() -> None:
        probe.scan(stamp=probe.now_msg(5.0))
        probe.send(0.15)

    probe.stream_until(lambda: probe.refusals_with("source.future.scan"), WAIT, 0.05, future)
    probe.stream(0.2, 0.05, future)
    stale = probe.refusals_with("source.future.scan")

    assert stale, f"refusals: {[r['reasons'][0]['message'] for r in probe.refusals]}"
    assert "5.0" in stale[0]["reasons"][0]["message"] or "4.9" in stale[0]["reasons"][0]["message"]
    assert probe.last_output().linear.x == 0.0


def test_never_received_scan_stops(ros_client: RosClient, start_node: NodeFactory) -> None:
    node = start_node()
    probe = probe_for(ros_client, node)
    probe.stream_until(lambda: probe.refusals_with("source.stale.scan"), WAIT, 0.05, lambda: probe.send(0.15))
    stale = probe.refusals_with("source.stale.scan")

    assert stale
    assert "never received" in stale[0]["reasons"][0]["message"]
    assert all(twist.linear.x == 0.0 for _, twist in probe.outputs)


def test_command_silence_goes_to_zero(ros_client: RosClient, start_node: NodeFactory) -> None:
    node = start_node()
    probe = probe_for(ros_client, node)

    def tick() -> None:
        probe.scan()
        probe.send(0.15)

    def silence_refusals() -> list[dict[str, Any]]:
        # "No command received yet" at start-up has the same rule; this one follows a command.
        return [
            r
            for r in probe.refusals_with("source.silent.cmd_vel_in")
            if "No current command" in r["reasons"][0]["message"]
        ]

    probe.stream_until(lambda: moving(probe, 0.15), WAIT, 0.05, tick)
    probe.stream_until(silence_refusals, WAIT, 0.05, probe.scan)
    probe.stream(0.3, 0.05, probe.scan)

    assert silence_refusals()[0]["reasons"][0]["evidence"][0]["value"] > 0.5
    assert probe.last_output().linear.x == 0.0


def test_second_publisher_reported_and_stops(
    ros_client: RosClient, start_node: NodeFactory, ros_domain: int
) -> None:
    node = start_node()
    probe = probe_for(ros_client, node)
    other = RosClient(ros_domain, name="second_commander")
    try:
        from geometry_msgs.msg import Twist

        second = other.node.create_publisher(Twist, "cmd_vel_in", 10)

        def tick() -> None:
            probe.scan()
            probe.send(0.15)
            second.publish(Twist())
            other.spin_once(0.0)

        probe.stream_until(lambda: probe.refusals_with("source.multiple_publishers"), WAIT, 0.05, tick)
        probe.stream(0.3, 0.05, tick)
    finally:
        other.close()
    multiple = probe.refusals_with("source.multiple_publishers")

    assert multiple
    assert "second_commander" in multiple[0]["reasons"][0]["message"]
    assert probe.last_output().linear.x == 0.0
    assert "2 publishers" in node.output


def test_best_effort_publisher_reported(ros_client: RosClient, start_node: NodeFactory) -> None:
    node = start_node()
    probe = SafetyProbe(ros_client, command_reliability="best_effort")
    ros_client.spin_until(lambda: bool(probe.states), START_TIMEOUT)

    def tick() -> None:
        probe.scan()
        probe.send(0.15)

    probe.stream_until(lambda: probe.refusals_with("source.qos_incompatible"), WAIT, 0.05, tick)

    assert probe.refusals_with("source.qos_incompatible")
    assert "incompatible QoS" in node.output


def test_sim_time_with_wall_stamps_is_clock_mismatch(ros_client: RosClient, start_node: NodeFactory) -> None:
    from rclpy.qos import QoSProfile
    from rosgraph_msgs.msg import Clock

    node = start_node(**{"use_sim_time": True, "command.type": "twist_stamped"})
    clock = ros_client.node.create_publisher(Clock, "/clock", QoSProfile(depth=10))
    sim = {"t": 100.0}

    def sim_stamp() -> Any:
        from builtin_interfaces.msg import Time

        seconds = sim["t"]
        return Time(sec=int(seconds), nanosec=int((seconds % 1.0) * 1e9))

    def tick_clock() -> None:
        sim["t"] += 0.05
        clock.publish(Clock(clock=sim_stamp()))

    ros_client.spin_until(lambda: clock.get_subscription_count() > 0, START_TIMEOUT)
    probe = SafetyProbe(ros_client, stamped=True)
    probe.stream(0.5, 0.05, tick_clock)
    probe.wait_ready(START_TIMEOUT)

    def tick() -> None:
        tick_clock()
        probe.scan(stamp=sim_stamp())
        probe.send(0.15)  # stamped with the client's wall clock

    probe.stream_until(lambda: probe.refusals_with("source.clock_mismatch.cmd_vel_in"), WAIT, 0.05, tick)
    probe.stream(0.3, 0.05, tick)
    mismatch = probe.refusals_with("source.clock_mismatch.cmd_vel_in")

    assert mismatch, f"refusals: {[r['reasons'][0]['rule_id'] for r in probe.refusals]}; log:\n{node.output}"
    assert "clocks differ" in mismatch[0]["reasons"][0]["message"]
    assert probe.last_output().linear.x == 0.0


def test_bad_configuration_lists_every_key(ros_env: dict[str, str], tmp_path: Path) -> None:
    node = NodeProcess.safety_node(
        ros_env,
        tmp_path / "bad.log",
        CONFIG,
        {"limits.max_linear_x": -3.0, "output.rate": 0.0, "scan.scan.timeout": 0.0, "limits.typo": 1.0},
    )
    code = node.process.wait(timeout=START_TIMEOUT)
    output = node.output
    node.stop()

    assert code == 2
    assert "limits.max_linear_x" in output
    assert "output.rate" in output
    assert "scan.scan.timeout" in output
    assert "limits.typo: unknown parameter" in output


def test_runtime_update_rejected_with_bound(ros_client: RosClient, start_node: NodeFactory) -> None:
    from rcl_interfaces.srv import SetParameters
    from rclpy.parameter import Parameter

    node = start_node()
    service = ros_client.node.create_client(SetParameters, "/nc_safety/set_parameters")
    ros_client.spin_until(service.service_is_ready, START_TIMEOUT)

    def call(name: str, value: Any) -> Any:
        future = service.call_async(
            SetParameters.Request(parameters=[Parameter(name, value=value).to_parameter_msg()])
        )
        ros_client.spin_until(future.done, 10.0)
        return future.result().results[0]

    too_fast = call("limits.max_linear_x", 50.0)
    zones_crossed = call("obstacles.slowdown_distance", 0.01)
    accepted = call("limits.max_linear_x", 0.2)

    assert not too_fast.successful
    assert "50" in too_fast.reason
    assert not zones_crossed.successful
    assert "slowdown_distance 0.01" in zones_crossed.reason
    assert accepted.successful
    wait_until(lambda: "configuration updated" in node.output, WAIT)


@pytest.mark.parametrize("config", ["nc_safety.yaml", "tb3_burger.yaml", "larger_base.yaml"])
def test_shipped_config_starts(ros_env: dict[str, str], tmp_path: Path, config: str) -> None:
    node = NodeProcess.safety_node(ros_env, tmp_path / "node.log", REPO_ROOT / "config" / config)
    try:
        wait_until(lambda: "effective configuration" in node.output or not node.alive(), START_TIMEOUT)
        assert node.alive(), node.output
    finally:
        node.stop()


def test_diagnostics_and_markers_published(ros_client: RosClient, start_node: NodeFactory) -> None:
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.qos import QoSProfile
    from visualization_msgs.msg import MarkerArray

    node = start_node()
    diagnostics: list[Any] = []
    markers: list[Any] = []
    ros_client.node.create_subscription(
        DiagnosticArray, "/diagnostics", diagnostics.append, QoSProfile(depth=10)
    )
    ros_client.node.create_subscription(MarkerArray, "/nc_safety/zones", markers.append, QoSProfile(depth=10))
    probe = probe_for(ros_client, node)
    probe.stream_until(lambda: diagnostics and markers, WAIT, 0.05, probe.scan)
    status = next(s for s in diagnostics[-1].status if s.name.endswith("motion"))
    values = {item.key: item.value for item in status.values}

    assert "scan age [s]" in values
    assert values["verdict"]
    expected_backend = "compiled" if COMPILED_CLEARANCE_AVAILABLE else "numpy"
    assert values["obstacle clearance"] == expected_backend
    assert [marker.ns for marker in markers[-1].markers] == ["footprint", "stop_zone", "slowdown_zone"]


def test_mistyped_value_beside_params_file_rejected(ros_env: dict[str, str], tmp_path: Path) -> None:
    node = NodeProcess.safety_node(ros_env, tmp_path / "node.log", CONFIG, {"limits.max_linear_x": "0.1m"})
    code = node.process.wait(timeout=START_TIMEOUT)
    output = node.output
    node.stop()

    assert code == 2
    assert "limits.max_linear_x: value '0.1m' given with -p is not a number" in output


def test_unknown_clearance_backend_rejected(ros_env: dict[str, str], tmp_path: Path) -> None:
    node = NodeProcess.safety_node(
        ros_env, tmp_path / "node.log", CONFIG, {"obstacles.clearance_backend": "fast"}
    )
    code = node.process.wait(timeout=START_TIMEOUT)
    output = node.output
    node.stop()

    assert code == 2
    assert "obstacles.clearance_backend" in output
    assert "'fast'" in output
    assert "Traceback" not in output


def test_missing_params_file_clear_error(ros_env: dict[str, str], tmp_path: Path) -> None:
    node = NodeProcess.safety_node(ros_env, tmp_path / "node.log", tmp_path / "absent.yaml")
    code = node.process.wait(timeout=START_TIMEOUT)
    output = node.output
    node.stop()

    assert code == 2
    assert "absent.yaml' not found" in output
    assert "Traceback" not in output
