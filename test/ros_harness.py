"""Test helpers for real DDS: per-test domain ids, an in-process client node, node processes.

Every wait is bounded by a timeout and polls DDS state (matching, messages) instead of
sleeping for a fixed time.
"""

from __future__ import annotations

import fcntl
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

REPO_ROOT = Path(__file__).resolve().parents[1]
DDS_PROFILE = REPO_ROOT / "config" / "fastdds_loopback.xml"
DOMAIN_LOCK_DIR = Path("/tmp/nc_safety_test_domains")
# Domain ids 1-100 stay clear of the demo's default (37 is skipped) and of port overflow
# at high ids with many participants.
DOMAIN_IDS = [domain for domain in range(1, 101) if domain != 37]

T = TypeVar("T")


@contextmanager
def allocate_domain_id() -> Iterator[int]:
    """Hold an exclusive, machine-wide lock on a free ROS domain id for the duration."""
    DOMAIN_LOCK_DIR.mkdir(parents=True, exist_ok=True)
    start = (os.getpid() * 7) % len(DOMAIN_IDS)
    for offset in range(len(DOMAIN_IDS)):
        domain = DOMAIN_IDS[(start + offset) % len(DOMAIN_IDS)]
        handle = open(DOMAIN_LOCK_DIR / f"{domain}.lock", "w")  # noqa: SIM115 - held until release
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        try:
            yield domain
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()
        return
    raise RuntimeError(f"no free ROS domain id in {DOMAIN_IDS[0]}-{DOMAIN_IDS[-1]}; stale test processes?")


def ros_environment(domain_id: int) -> dict[str, str]:
    """Environment for a child process on `domain_id`, with DDS confined to loopback."""
    env = dict(os.environ)
    env.update(
        {
            "ROS_DOMAIN_ID": str(domain_id),
            "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
            "FASTDDS_DEFAULT_PROFILES_FILE": str(DDS_PROFILE),
            "RMW_IMPLEMENTATION": "rmw_fastrtps_cpp",
            "PYTHONUNBUFFERED": "1",
            # rcutils buffers its log stream when stdout is a file; tests read the log live.
            "RCUTILS_LOGGING_BUFFERED_STREAM": "0",
        }
    )
    return env


def wait_until(predicate: Callable[[], T], timeout: float, poll: Callable[[], None] | None = None) -> T:
    """Call `poll` (for example a spin) until `predicate` returns something truthy.

    Raises TimeoutError after `timeout` seconds, so no test can hang.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout:.1f} s")
        if poll is None:
            time.sleep(0.01)
        else:
            poll()


class RosClient:
    """An rclpy node in its own context on a given domain, spun by the test thread."""

    def __init__(self, domain_id: int, name: str = "test_client") -> None:
        os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
        os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = str(DDS_PROFILE)
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor

        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)

    def spin_once(self, timeout: float = 0.01) -> None:
        self.executor.spin_once(timeout_sec=timeout)

    def spin_for(self, duration: float) -> None:
        """Process callbacks for `duration` seconds (used to collect a stream, not to wait)."""
        deadline = time.monotonic() + duration
        while time.monotonic() < deadline:
            self.spin_once(0.005)

    def spin_until(self, predicate: Callable[[], T], timeout: float) -> T:
        return wait_until(predicate, timeout, poll=lambda: self.spin_once(0.01))

    def wait_for_subscribers(self, publisher: Any, count: int = 1, timeout: float = 15.0) -> None:
        self.spin_until(lambda: publisher.get_subscription_count() >= count, timeout)

    def wait_for_publishers(self, topic: str, count: int = 1, timeout: float = 15.0) -> None:
        self.spin_until(lambda: self.node.count_publishers(topic) >= count, timeout)

    def close(self) -> None:
        import rclpy

        self.executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


class NodeProcess:
    """A child process (the safety node or a CLI) with its output captured to a file."""

    def __init__(self, argv: Sequence[str], env: dict[str, str], log_path: Path) -> None:
        self.argv = list(argv)
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            self.argv, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    @classmethod
    def safety_node(
        cls,
        env: dict[str, str],
        log_path: Path,
        params_file: Path | None = None,
        params: dict[str, Any] | None = None,
        name: str = "nc_safety",
    ) -> NodeProcess:
        argv = [sys.executable, "-m", "nc_safety.ros.node", "--ros-args", "-r", f"__node:={name}"]
        if params_file is not None:
            argv += ["--params-file", str(params_file)]
        for key, value in (params or {}).items():
            argv += ["-p", f"{key}:={format_param(value)}"]
        return cls(argv, env, log_path)

    @property
    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> int:
        """Send SIGINT, then SIGKILL after `timeout` seconds; return the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=timeout)
        self._log.close()
        return self.process.returncode

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10.0)


def format_param(value: Any) -> str:
    """Format a Python value as a `-p name:=value` literal that rcl parses to the same type."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(format_param(item) for item in value) + "]"
    if isinstance(value, str):
        return f"'{value}'" if value else "''"
    return str(value)


class SafetyProbe:
    """Publishes the safety node's inputs and records its outputs, from a RosClient."""

    def __init__(
        self,
        client: RosClient,
        node_name: str = "nc_safety",
        stamped: bool = False,
        command_reliability: str = "reliable",
    ) -> None:
        import json as _json

        from geometry_msgs.msg import Twist, TwistStamped
        from nav_msgs.msg import Odometry
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import LaserScan
        from std_msgs.msg import String

        self.client = client
        self.node = client.node
        self.stamped = stamped
        self.command_type = TwistStamped if stamped else Twist
        reliability = (
            ReliabilityPolicy.RELIABLE if command_reliability == "reliable" else ReliabilityPolicy.BEST_EFFORT
        )
        self.cmd = self.node.create_publisher(
            self.command_type, "cmd_vel_in", QoSProfile(depth=10, reliability=reliability)
        )
        self.scan_pub = self.node.create_publisher(LaserScan, "scan", QoSProfile(depth=10))
        self.odom_pub = self.node.create_publisher(Odometry, "odom", QoSProfile(depth=10))
        self.outputs: list[tuple[float, Any]] = []
        self.refusals: list[dict[str, Any]] = []
        self.states: list[dict[str, Any]] = []
        self._json = _json

        def on_output(msg: Any) -> None:
            twist = msg.twist if stamped else msg
            self.outputs.append((time.monotonic(), twist))

        self.node.create_subscription(self.command_type, "cmd_vel_out", on_output, QoSProfile(depth=1000))
        self.node.create_subscription(
            String,
            f"/{node_name}/refusals",
            lambda msg: self.refusals.append(_json.loads(msg.data)),
            QoSProfile(depth=1000),
        )
        latched = QoSProfile(
            depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE
        )
        self.node.create_subscription(
            String, f"/{node_name}/state", lambda msg: self.states.append(_json.loads(msg.data)), latched
        )

    def wait_ready(self, timeout: float = 20.0, scan: bool = True) -> None:
        """Wait until the node's state arrived and its inputs and outputs are matched."""
        self.client.spin_until(lambda: bool(self.states), timeout)
        self.client.wait_for_subscribers(self.cmd, 1, timeout)
        if scan:
            self.client.wait_for_subscribers(self.scan_pub, 1, timeout)
        self.client.wait_for_publishers("cmd_vel_out", 1, timeout)

    def now_msg(self, offset: float = 0.0) -> Any:
        from rclpy.duration import Duration

        return (self.node.get_clock().now() + Duration(seconds=offset)).to_msg()

    def send(self, linear_x: float = 0.0, angular_z: float = 0.0, stamp: Any = None, **fields: float) -> None:
        msg = self.command_type()
        twist = msg.twist if self.stamped else msg
        twist.linear.x = float(linear_x)
        twist.angular.z = float(angular_z)
        for name, value in fields.items():
            group, axis = name.split("_")
            setattr(getattr(twist, group), axis, float(value))
        if self.stamped:
            msg.header.stamp = stamp if stamp is not None else self.now_msg()
        self.cmd.publish(msg)

    def scan(
        self,
        ranges: Sequence[float] | None = None,
        range_max: float = 10.0,
        stamp: Any = None,
        count: int = 360,
    ) -> None:
        from sensor_msgs.msg import LaserScan

        msg = LaserScan()
        msg.header.stamp = stamp if stamp is not None else self.now_msg()
        msg.header.frame_id = "base_scan"
        msg.angle_min = -math.pi
        msg.angle_increment = 2.0 * math.pi / count
        msg.angle_max = msg.angle_min + msg.angle_increment * (count - 1)
        msg.range_min = 0.05
        msg.range_max = range_max
        msg.ranges = [float("inf")] * count if ranges is None else [float(value) for value in ranges]
        self.scan_pub.publish(msg)

    def last_output(self) -> Any:
        return self.outputs[-1][1] if self.outputs else None

    def refusals_with(self, rule_prefix: str) -> list[dict[str, Any]]:
        return [
            r
            for r in self.refusals
            if any(reason["rule_id"].startswith(rule_prefix) for reason in r["reasons"])
        ]

    def stream(self, duration: float, period: float, each: Callable[[], None]) -> None:
        """Call `each` every `period` seconds for `duration` seconds while spinning."""
        deadline = time.monotonic() + duration
        next_call = time.monotonic()
        while time.monotonic() < deadline:
            if time.monotonic() >= next_call:
                each()
                next_call += period
            self.client.spin_once(0.002)

    def stream_until(
        self, predicate: Callable[[], Any], timeout: float, period: float, each: Callable[[], None]
    ) -> Any:
        """Call `each` every `period` seconds until `predicate` is truthy; TimeoutError after `timeout` s."""
        deadline = time.monotonic() + timeout
        next_call = time.monotonic()
        while True:
            result = predicate()
            if result:
                return result
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met within {timeout:.1f} s")
            if time.monotonic() >= next_call:
                each()
                next_call += period
            self.client.spin_once(0.002)


class HostedSafetyNode:
    """The safety node in this test's process, in its own context, spun by a thread.

    Tests that must call into the node (for example an extension's reset) use this. Tests
    of the node as a user meets it start it as a separate process with NodeProcess.
    """

    def __init__(self, domain: int, parameters: dict[str, Any]) -> None:
        import threading

        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.parameter import Parameter

        from nc_safety.ros.node import SafetyNode

        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain)
        overrides = [Parameter(name, value=value) for name, value in parameters.items()]
        try:
            self.node = SafetyNode(context=self.context, parameter_overrides=overrides)
        except Exception:
            rclpy.shutdown(context=self.context)
            raise
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while not self._stop.is_set():
            self.executor.spin_once(timeout_sec=0.02)

    @property
    def estop(self) -> Any:
        return self.node.extension("estop")

    def close(self) -> None:
        import rclpy

        self._stop.set()
        self._thread.join(timeout=5.0)
        self.node.shutdown("test finished")
        self.executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)
