"""Latency the safety node adds to the velocity path over DDS, against a bare relay.

Four processes take part:

- a publisher that sends Twist messages on cmd_vel_in at a fixed rate and a free laser
  scan (every ray without a return) at 10 Hz, so the safety node is not faulted;
- a subscriber that records the arrival of every message on cmd_vel_out;
- the subject between them: first a bare rclpy relay (cmd_vel_in -> cmd_vel_out, no
  checks, the same executor loop and QoS as the node), then the safety node started with
  `python -m nc_safety.ros.node --ros-args --params-file config/tb3_burger.yaml`;
- this script, which starts the others, starts each run of the publisher and joins the
  records.

Matching: the command carries its sequence number in linear.x, as 0.05 m/s plus
sequence times 1e-8 m/s. Consecutive commands differ by far less than the acceleration
ramp allows per step, the values stay inside the burger's limits and the scan is free,
so the node forwards each command unchanged. The subscriber maps the value it receives back
to the sequence number by exact comparison with the value that was sent. The first
commands of each phase are a warm-up and are not counted: the ramp from a standstill
changes them. The latency of a command is its arrival time in the subscriber minus its
send time in the publisher, both from time.monotonic(), which all processes on the machine
share.

    python bench/node_latency.py [--count 2000] [--rate 100] [--rounds 2]

Each round runs the relay phase and then the node phase with the same publisher and
subscriber. The report gives p50, p99 and max per subject over all rounds, and the ratio
of the node's p99 to the relay's.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import queue
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "test"))

from ros_harness import allocate_domain_id, ros_environment  # noqa: E402

BASE_SPEED = 0.05
"""linear.x of sequence number 0, m/s."""
SPEED_PER_SEQUENCE = 1e-8
"""linear.x added per sequence number, m/s."""
PHASE_SEQUENCES = 200_000
"""Sequence numbers reserved per phase, so phases never share a value."""
SCAN_PERIOD_S = 0.1
SCAN_RAYS = 360
MATCH_TIMEOUT_S = 30.0
READY_TIMEOUT_S = 30.0


def speed_of(sequence: int) -> float:
    return BASE_SPEED + sequence * SPEED_PER_SEQUENCE


# Roles run in child processes ------------------------------------------------------------


def command_qos() -> Any:
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

    return QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)


def run_relay() -> None:
    """Forward cmd_vel_in to cmd_vel_out unchanged, spun as the safety node spins."""
    import rclpy
    from geometry_msgs.msg import Twist
    from rclpy.executors import SingleThreadedExecutor

    rclpy.init()
    node = rclpy.create_node("bare_relay")
    output = node.create_publisher(Twist, "cmd_vel_out", command_qos())
    node.create_subscription(Twist, "cmd_vel_in", output.publish, command_qos())
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        while rclpy.ok():
            executor.spin_once(timeout_sec=0.05)
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


def run_publisher() -> None:
    """Read `run FIRST COUNT RATE OUT_FILE` lines from stdin; send and record each command."""
    import rclpy
    from geometry_msgs.msg import Twist
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import LaserScan

    rclpy.init()
    node = rclpy.create_node("bench_publisher")
    commands = node.create_publisher(Twist, "cmd_vel_in", command_qos())
    scans = node.create_publisher(LaserScan, "scan", qos_profile_sensor_data)
    executor = SingleThreadedExecutor()
    executor.add_node(node)

    def publish_scan() -> None:
        msg = LaserScan()
        msg.header.stamp = node.get_clock().now().to_msg()
        msg.header.frame_id = "base_scan"
        msg.angle_min = -math.pi
        msg.angle_increment = 2.0 * math.pi / SCAN_RAYS
        msg.angle_max = msg.angle_min + msg.angle_increment * (SCAN_RAYS - 1)
        msg.range_min = 0.12
        msg.range_max = 3.5
        msg.ranges = [math.inf] * SCAN_RAYS
        scans.publish(msg)

    stop_scans = threading.Event()

    def scan_loop() -> None:
        while not stop_scans.wait(SCAN_PERIOD_S):
            publish_scan()

    threading.Thread(target=scan_loop, daemon=True).start()
    print("ready", flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "quit":
            break
        first, count, rate, out_file = int(words[1]), int(words[2]), float(words[3]), words[4]
        deadline = time.monotonic() + MATCH_TIMEOUT_S
        while commands.get_subscription_count() < 1:
            if time.monotonic() > deadline:
                print("error no subscriber on cmd_vel_in", flush=True)
                break
            executor.spin_once(timeout_sec=0.01)
        sent: list[tuple[int, float]] = []
        msg = Twist()
        period = 1.0 / rate
        start = time.monotonic() + 0.05
        for index in range(count):
            # Sleep instead of spinning, so the publisher leaves the CPU to the node. A
            # late command goes out at once, so the average rate holds.
            remaining = start + index * period - time.monotonic()
            if remaining > 0.0:
                time.sleep(remaining)
            sequence = first + index
            msg.linear.x = speed_of(sequence)
            sent_at = time.monotonic()
            commands.publish(msg)
            sent.append((sequence, sent_at))
        Path(out_file).write_text(json.dumps(sent))
        print(f"done {out_file}", flush=True)
    stop_scans.set()
    node.destroy_node()
    rclpy.try_shutdown()


def run_subscriber() -> None:
    """Record (linear.x, arrival time) of every cmd_vel_out message; `dump FILE` writes them."""
    import rclpy
    from geometry_msgs.msg import Twist
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    rclpy.init()
    node = rclpy.create_node("bench_subscriber")
    received: list[tuple[float, float]] = []
    lock = threading.Lock()

    def on_output(msg: Twist) -> None:
        arrived = time.monotonic()
        with lock:
            received.append((msg.linear.x, arrived))

    node.create_subscription(
        Twist, "cmd_vel_out", on_output, QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)
    )
    requests: queue.Queue[str] = queue.Queue()

    def read_stdin() -> None:
        for line in sys.stdin:
            requests.put(line.strip())
        requests.put("quit")

    threading.Thread(target=read_stdin, daemon=True).start()
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    print("ready", flush=True)
    while True:
        executor.spin_once(timeout_sec=0.001)
        try:
            request = requests.get_nowait()
        except queue.Empty:
            continue
        words = request.split()
        if not words:
            continue
        if words[0] == "quit":
            break
        if words[0] == "publishers":
            print(f"publishers {node.count_publishers('cmd_vel_out')}", flush=True)
        elif words[0] == "dump":
            with lock:
                Path(words[1]).write_text(json.dumps(received))
                received.clear()
            print(f"dumped {words[1]}", flush=True)
    node.destroy_node()
    rclpy.try_shutdown()


# Orchestration ---------------------------------------------------------------------------


class Child:
    """A role process that reads requests as lines on stdin and writes replies as lines on stdout."""

    def __init__(self, argv: Sequence[str], env: dict[str, str], log: Path | None = None) -> None:
        self.process = subprocess.Popen(
            list(argv),
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=open(log, "wb") if log else subprocess.DEVNULL,  # noqa: SIM115 - closed with the process
            text=True,
            bufsize=1,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.strip())

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def expect(self, prefix: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0.0:
                raise TimeoutError(f"no {prefix!r} line from {self.process.args} within {timeout:.0f} s")
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line.startswith("error"):
                raise RuntimeError(f"{self.process.args}: {line}")
            if line.startswith(prefix):
                return line

    def stop(self) -> None:
        if self.process.poll() is None:
            # A child that already exited has closed its stdin.
            with contextlib.suppress(BrokenPipeError, OSError):
                self.send("quit")
            try:
                self.process.wait(timeout=10.0)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10.0)


def role_argv(role: str) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--role", role]


def start_subject(kind: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    if kind == "relay":
        argv = role_argv("relay")
    else:
        argv = [
            sys.executable,
            "-m",
            "nc_safety.ros.node",
            "--ros-args",
            "--params-file",
            str(REPO_ROOT / "config" / "tb3_burger.yaml"),
        ]
    return subprocess.Popen(
        argv, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT, start_new_session=True
    )


def stop_subject(process: subprocess.Popen[bytes]) -> None:
    import signal

    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10.0)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10.0)


def wait_for_output_publisher(subscriber: Child, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        subscriber.send("publishers")
        if int(subscriber.expect("publishers", timeout).split()[1]) >= 1:
            return
        time.sleep(0.1)
    raise TimeoutError(f"no publisher on cmd_vel_out within {timeout:.0f} s")


def match(
    sent: list[tuple[int, float]], received: list[tuple[float, float]], skip: int
) -> tuple[list[float], int]:
    """Latencies in seconds of the sent commands after the first `skip`, and how many never arrived."""
    arrivals: dict[float, float] = {}
    for value, arrived in received:
        arrivals.setdefault(value, arrived)
    latencies = []
    missing = 0
    for sequence, sent_at in sent[skip:]:
        arrived = arrivals.get(speed_of(sequence))
        if arrived is None:
            missing += 1
        else:
            latencies.append(arrived - sent_at)
    return latencies, missing


def run_phase(
    kind: str,
    phase: int,
    args: argparse.Namespace,
    env: dict[str, str],
    publisher: Child,
    subscriber: Child,
    workdir: Path,
) -> tuple[list[float], int, int]:
    subject = start_subject(kind, env, workdir / f"{kind}_{phase}.log")
    try:
        wait_for_output_publisher(subscriber, READY_TIMEOUT_S)
        # Let the node receive scans and settle before commands count.
        time.sleep(1.0)
        subscriber.send(f"dump {workdir / 'discard.json'}")
        subscriber.expect("dumped", 10.0)
        sent_file = workdir / f"sent_{phase}.json"
        first = phase * PHASE_SEQUENCES
        publisher.send(f"run {first} {args.count + args.warmup} {args.rate} {sent_file}")
        publisher.expect("done", MATCH_TIMEOUT_S + (args.count + args.warmup) / args.rate + 30.0)
        # Commands in flight arrive within milliseconds; wait well beyond that.
        time.sleep(0.5)
        received_file = workdir / f"received_{phase}.json"
        subscriber.send(f"dump {received_file}")
        subscriber.expect("dumped", 10.0)
    finally:
        stop_subject(subject)
    sent = [(int(sequence), float(at)) for sequence, at in json.loads(sent_file.read_text())]
    received = [(float(value), float(at)) for value, at in json.loads(received_file.read_text())]
    latencies, missing = match(sent, received, args.warmup)
    return latencies, missing, len(received)


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(fraction * len(ordered))) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--role", choices=["relay", "publisher", "subscriber"], help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=2000, help="counted commands per phase")
    parser.add_argument(
        "--warmup", type=int, default=100, help="uncounted commands at the start of each phase"
    )
    parser.add_argument("--rate", type=float, default=100.0, help="command rate in Hz")
    parser.add_argument("--rounds", type=int, default=2, help="relay phase then node phase, this many times")
    args = parser.parse_args()
    if args.role == "relay":
        run_relay()
        return
    if args.role == "publisher":
        run_publisher()
        return
    if args.role == "subscriber":
        run_subscriber()
        return
    if args.count + args.warmup >= PHASE_SEQUENCES:
        parser.error(f"--count plus --warmup must stay below {PHASE_SEQUENCES}")

    results: dict[str, list[float]] = {"relay": [], "node": []}
    lost: dict[str, int] = {"relay": 0, "node": 0}
    with allocate_domain_id() as domain, tempfile.TemporaryDirectory(prefix="node_latency_") as tmp:
        env = ros_environment(domain)
        workdir = Path(tmp)
        publisher = Child(role_argv("publisher"), env, workdir / "publisher.log")
        subscriber = Child(role_argv("subscriber"), env, workdir / "subscriber.log")
        try:
            publisher.expect("ready", READY_TIMEOUT_S)
            subscriber.expect("ready", READY_TIMEOUT_S)
            phase = 0
            for round_index in range(args.rounds):
                for kind in ("relay", "node"):
                    latencies, missing, received = run_phase(
                        kind, phase, args, env, publisher, subscriber, workdir
                    )
                    phase += 1
                    results[kind].extend(latencies)
                    lost[kind] += missing
                    print(
                        f"round {round_index + 1} {kind}: {len(latencies)} matched, {missing} missing, "
                        f"{received} messages on cmd_vel_out, p50 {percentile(latencies, 0.5) * 1e3:.3f} ms, "
                        f"p99 {percentile(latencies, 0.99) * 1e3:.3f} ms",
                        flush=True,
                    )
        finally:
            publisher.stop()
            subscriber.stop()

    print()
    print(f"domain {domain}, {args.rounds} rounds of {args.count} commands per subject at {args.rate:g} Hz")
    print()
    print("| subject | matched | missing | p50 [ms] | p99 [ms] | max [ms] |")
    print("|---|---|---|---|---|---|")
    for kind in ("relay", "node"):
        values = results[kind]
        print(
            f"| {kind} | {len(values)} | {lost[kind]} | {percentile(values, 0.5) * 1e3:.3f} | "
            f"{percentile(values, 0.99) * 1e3:.3f} | {max(values) * 1e3:.3f} |"
        )
    ratio_p50 = percentile(results["node"], 0.5) / percentile(results["relay"], 0.5)
    ratio_p99 = percentile(results["node"], 0.99) / percentile(results["relay"], 0.99)
    print()
    print(f"node / relay: p50 ratio {ratio_p50:.2f}, p99 ratio {ratio_p99:.2f}")


if __name__ == "__main__":
    main()
