"""Sustained 1 kHz command stream through the safety node: drops and memory.

The publisher, subscriber and matching are those of bench/node_latency.py: each command
carries its sequence number in linear.x and the subscriber maps the forwarded value back
to it. The node runs as `python -m nc_safety.ros.node --ros-args --params-file
config/tb3_burger.yaml` with a free 10 Hz scan. Reported:

- commands sent, commands whose output arrived on cmd_vel_out, and the difference (drops),
  after an uncounted warm-up of 200 commands;
- the achieved send rate (the publisher sleeps between commands and sends late ones at
  once, so it can fall short of 1 kHz on a busy machine);
- the node's resident memory (VmRSS from /proc/PID/status), sampled every second: start,
  end, max and the least-squares slope.

    python bench/soak_1khz.py [--duration 60] [--rate 1000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from node_latency import (
    MATCH_TIMEOUT_S,
    READY_TIMEOUT_S,
    Child,
    allocate_domain_id,
    match,
    percentile,
    role_argv,
    ros_environment,
    start_subject,
    stop_subject,
    wait_for_output_publisher,
)

WARMUP = 200
SAMPLE_PERIOD_S = 1.0


def rss_kib(pid: int) -> int | None:
    """VmRSS of process `pid` in KiB, or None when the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except FileNotFoundError:
        return None
    return None


def slope_per_minute(samples: list[tuple[float, int]]) -> float:
    """Least-squares slope of (seconds, KiB) samples, in KiB per minute."""
    count = len(samples)
    mean_t = sum(t for t, _ in samples) / count
    mean_v = sum(v for _, v in samples) / count
    covariance = sum((t - mean_t) * (v - mean_v) for t, v in samples)
    variance = sum((t - mean_t) ** 2 for t, _ in samples)
    return 60.0 * covariance / variance if variance > 0.0 else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--duration", type=float, default=60.0, help="length of the counted stream in seconds"
    )
    parser.add_argument("--rate", type=float, default=1000.0, help="command rate in Hz")
    parser.add_argument(
        "--subject",
        choices=["node", "relay"],
        default="node",
        help="process under test: the safety node, or the bare relay of bench/node_latency.py as a baseline",
    )
    args = parser.parse_args()
    if args.duration <= 0.0 or args.rate <= 0.0:
        parser.error(f"--duration {args.duration} and --rate {args.rate} must be positive")
    count = int(args.duration * args.rate)

    with allocate_domain_id() as domain, tempfile.TemporaryDirectory(prefix="soak_1khz_") as tmp:
        env = ros_environment(domain)
        workdir = Path(tmp)
        publisher = Child(role_argv("publisher"), env, workdir / "publisher.log")
        subscriber = Child(role_argv("subscriber"), env, workdir / "subscriber.log")
        node = None
        samples: list[tuple[float, int]] = []
        try:
            publisher.expect("ready", READY_TIMEOUT_S)
            subscriber.expect("ready", READY_TIMEOUT_S)
            node = start_subject(args.subject, env, workdir / f"{args.subject}.log")
            wait_for_output_publisher(subscriber, READY_TIMEOUT_S)
            time.sleep(1.0)
            subscriber.send(f"dump {workdir / 'discard.json'}")
            subscriber.expect("dumped", 10.0)

            sampling = threading.Event()
            started = time.monotonic()

            def sample() -> None:
                while not sampling.wait(SAMPLE_PERIOD_S):
                    value = rss_kib(node.pid)
                    if value is not None:
                        samples.append((time.monotonic() - started, value))

            first = rss_kib(node.pid)
            if first is not None:
                samples.append((0.0, first))
            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            sent_file = workdir / "sent.json"
            publisher.send(f"run 0 {count + WARMUP} {args.rate} {sent_file}")
            publisher.expect("done", MATCH_TIMEOUT_S + (count + WARMUP) / args.rate + 60.0)
            time.sleep(0.5)
            sampling.set()
            sampler.join(timeout=5.0)
            received_file = workdir / "received.json"
            subscriber.send(f"dump {received_file}")
            subscriber.expect("dumped", 10.0)
            node_alive = node.poll() is None
        finally:
            if node is not None:
                stop_subject(node)
            publisher.stop()
            subscriber.stop()
        sent = [(int(sequence), float(at)) for sequence, at in json.loads(sent_file.read_text())]
        received = [(float(value), float(at)) for value, at in json.loads(received_file.read_text())]

    latencies, missing = match(sent, received, WARMUP)
    counted = sent[WARMUP:]
    span = counted[-1][1] - counted[0][1]
    values = [value for _, value in samples]
    print(f"domain {domain}, subject {args.subject}, alive at the end: {node_alive}")
    print(
        f"sent {len(counted)} commands in {span:.1f} s ({(len(counted) - 1) / span:.0f} Hz achieved), "
        f"{len(latencies)} forwarded and matched, {missing} dropped "
        f"({100.0 * missing / len(counted):.3f} %), {len(received)} messages on cmd_vel_out in total"
    )
    print(
        f"latency publisher -> subscriber through the {args.subject}: p50 {percentile(latencies, 0.5) * 1e3:.2f} ms, "
        f"p99 {percentile(latencies, 0.99) * 1e3:.2f} ms, max {max(latencies) * 1e3:.2f} ms"
    )
    print(
        f"node RSS over {len(samples)} samples: start {values[0] / 1024:.1f} MiB, end {values[-1] / 1024:.1f} MiB, "
        f"max {max(values) / 1024:.1f} MiB, slope {slope_per_minute(samples):+.1f} KiB/min "
        f"(second half {slope_per_minute(samples[len(samples) // 2 :]):+.1f} KiB/min)"
    )


if __name__ == "__main__":
    main()
