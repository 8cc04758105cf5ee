"""Latency of the hardware e-stop path, measured against the emulated board on a real pty.

Two measurements, each over --trials runs:

- node death: SIGKILL the safety node process, then time until the board opens its relay
  (the board's own watchdog does this, because nobody trips it);
- button: press the board's button while commands flow, then time until the first zero
  twist arrives on cmd_vel_out in a separate DDS participant.

Times come from time.monotonic(), which every process on the machine shares. Results are
reported as p50, p99 and max, and as ratios to the configured watchdog period (node death)
and to the node's output period (button), which are the baselines the design promises.

    python bench/estop_latency.py --trials 50
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import rclpy
from geometry_msgs.msg import Twist
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from sensor_msgs.msg import LaserScan

from nc_safety.estop.board import BoardConfig
from nc_safety.estop.emulator import BoardEmulator
from nc_safety.ros.node import SafetyNode

# The test helpers give each run its own ROS domain id and a loopback-only environment.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "test"))
from ros_harness import NodeProcess, RosClient, allocate_domain_id, ros_environment, wait_until

OUTPUT_RATE_HZ = 20.0
"""The node's default output.rate."""


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def summary(name: str, values: list[float], baseline_s: float, baseline_name: str) -> str:
    p50, p99, worst = percentile(values, 0.5), percentile(values, 0.99), max(values)
    return (
        f"| {name} | {len(values)} | {p50 * 1000:.1f} | {p99 * 1000:.1f} | {worst * 1000:.1f} | "
        f"{baseline_name} {baseline_s * 1000:.0f} ms | {p50 / baseline_s:.2f} / {p99 / baseline_s:.2f} / "
        f"{worst / baseline_s:.2f} |"
    )


def parameters(board: BoardEmulator) -> dict[str, Any]:
    return {
        "estop.enabled": True,
        "estop.port": board.port,
        "estop.reset_on_startup": True,
        "estop.reconnect_min": 0.05,
        "estop.reconnect_max": 0.2,
    }


def measure_node_death(trials: int, watchdog_s: float, workdir: Path) -> list[float]:
    delays: list[float] = []
    with (
        allocate_domain_id() as domain,
        BoardEmulator(BoardConfig(watchdog_s=watchdog_s), link_path=workdir / "estop-board") as board,
    ):
        env = ros_environment(domain)
        for trial in range(trials):
            node = NodeProcess.safety_node(env, workdir / f"node-{trial}.log", params=parameters(board))
            try:
                board.wait_for(lambda status: not status.relay_open, 60.0)
                killed_at = time.monotonic()
                node.kill()
                opening = board.wait_relay_open(killed_at, 10.0)
            finally:
                node.kill()
                node.stop()
            delays.append(opening.time - killed_at)
            print(f"node death trial {trial + 1}/{trials}: {delays[-1] * 1000:.1f} ms", file=sys.stderr)
    return delays


class _Commander:
    """Publishes commands and clear scans at 20 Hz; records zero outputs with arrival times."""

    def __init__(self, client: RosClient) -> None:
        self.client = client
        self.outputs: list[tuple[float, float]] = []
        self._twist = Twist
        self._commands = client.node.create_publisher(Twist, "cmd_vel_in", 10)
        self._scans = client.node.create_publisher(LaserScan, "scan", 10)
        client.node.create_subscription(Twist, "cmd_vel_out", self._on_output, 50)
        scan = LaserScan()
        scan.header.frame_id = "base_scan"
        scan.angle_min, scan.angle_max = -3.14159, 3.14159
        scan.angle_increment = 2 * 3.14159 / 360
        scan.range_min, scan.range_max = 0.12, 3.5
        scan.ranges = [3.0] * 360
        self._scan = scan
        client.node.create_timer(0.05, self._publish)

    def _publish(self) -> None:
        self._scan.header.stamp = self.client.node.get_clock().now().to_msg()
        self._scans.publish(self._scan)
        command = self._twist()
        command.linear.x = 0.1
        self._commands.publish(command)

    def _on_output(self, message: Any) -> None:
        self.outputs.append((time.monotonic(), message.linear.x))

    def first_zero_after(self, instant: float) -> float | None:
        return next((stamp for stamp, speed in self.outputs if stamp >= instant and speed == 0.0), None)

    def moving_after(self, instant: float) -> bool:
        return any(speed > 0.0 for stamp, speed in self.outputs if stamp >= instant)


def measure_button(trials: int, watchdog_s: float, workdir: Path) -> list[float]:
    delays: list[float] = []
    with (
        allocate_domain_id() as domain,
        BoardEmulator(BoardConfig(watchdog_s=watchdog_s), link_path=workdir / "estop-board-button") as board,
    ):
        context = Context()
        rclpy.init(context=context, domain_id=domain)
        overrides = [Parameter(name, value=value) for name, value in parameters(board).items()]
        node = SafetyNode(context=context, parameter_overrides=overrides)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        stop = threading.Event()

        def spin() -> None:
            while not stop.is_set():
                executor.spin_once(timeout_sec=0.02)

        spinner = threading.Thread(target=spin, daemon=True)
        spinner.start()
        client = RosClient(domain, name="estop_bench_client")
        commander = _Commander(client)
        estop = node.extension("estop")
        try:
            for trial in range(trials):
                start = time.monotonic()
                client.spin_until(lambda start=start: commander.moving_after(start), 20.0)
                pressed_at = board.press_button()
                arrival = client.spin_until(lambda at=pressed_at: commander.first_zero_after(at), 10.0)
                delays.append(arrival - pressed_at)
                board.release_button()
                wait_until(lambda: not board.status().button_pressed, 5.0)
                client.spin_until(lambda: not estop.link.snapshot().status.button_pressed, 5.0)
                estop.reset("bench")
                client.spin_until(lambda: not estop.active_rule_ids(), 10.0)
                print(f"button trial {trial + 1}/{trials}: {delays[-1] * 1000:.1f} ms", file=sys.stderr)
        finally:
            client.close()
            stop.set()
            spinner.join(timeout=5.0)
            node.shutdown("benchmark finished")
            executor.shutdown(timeout_sec=1.0)
            node.destroy_node()
            rclpy.shutdown(context=context)
    return delays


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=50, help="runs per measurement (default 50)")
    parser.add_argument(
        "--watchdog-ms", type=int, default=100, help="board watchdog period in ms (default 100)"
    )
    args = parser.parse_args()
    if args.trials < 1:
        parser.error(f"--trials {args.trials} must be at least 1")
    watchdog_s = args.watchdog_ms / 1000.0
    with tempfile.TemporaryDirectory(prefix="estop-bench-") as folder:
        workdir = Path(folder)
        death = measure_node_death(args.trials, watchdog_s, workdir)
        button = measure_button(args.trials, watchdog_s, workdir)
    print("| measurement | trials | p50 [ms] | p99 [ms] | max [ms] | baseline | ratio p50 / p99 / max |")
    print("|---|---|---|---|---|---|---|")
    print(summary("SIGKILL of the node -> relay open", death, watchdog_s, "watchdog"))
    print(summary("button -> zero on cmd_vel_out", button, 1.0 / OUTPUT_RATE_HZ, "output period"))
    print(f"\nmedian node death beyond the watchdog: {(statistics.median(death) - watchdog_s) * 1000:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
