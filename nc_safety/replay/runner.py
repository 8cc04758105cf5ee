"""`nc-safety replay BAG`: publish a recording through a running safety node and report.

The replayer is an ordinary ROS participant: it publishes the recorded inputs on the
node's input topics, listens to `cmd_vel_out`, `~/refusals` and `~/state`, prints each
refusal as it arrives and a summary at the end.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nc_safety.paths import RECORDINGS
from nc_safety.ros.dds_env import apply_loopback_defaults

DEFAULT_BAG = RECORDINGS / "tb3-real-lab07" / "rosbag2_2026_01_08-17_29_46"
DEFAULT_MAP = {
    "/cmd_vel": "cmd_vel_in",
    "/diff_drive_controller/cmd_vel_unstamped": "cmd_vel_in",
    "/scan": "scan",
    "/odom": "odom",
}


@dataclass
class ReplaySummary:
    """Inputs to and outputs of the node during one replay."""

    bag: str
    rate: float
    published: Counter[str] = field(default_factory=Counter)
    outputs: int = 0
    non_finite_outputs: int = 0
    over_limit_outputs: int = 0
    largest_linear: float = 0.0
    largest_angular: float = 0.0
    largest_command_in: tuple[float, float] = (0.0, 0.0)
    refusals: int = 0
    refusal_rules: Counter[str] = field(default_factory=Counter)
    command_verdicts: dict[str, int] = field(default_factory=dict)
    command_rules: dict[str, int] = field(default_factory=dict)
    limits: dict[str, Any] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    sim_time_recording: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "bag": self.bag,
            "rate": self.rate,
            "published": dict(self.published),
            "outputs": self.outputs,
            "non_finite_outputs": self.non_finite_outputs,
            "over_limit_outputs": self.over_limit_outputs,
            "largest_output": {"linear": self.largest_linear, "angular": self.largest_angular},
            "largest_command_in": {
                "linear": self.largest_command_in[0],
                "angular": self.largest_command_in[1],
            },
            "refusals_published": self.refusals,
            "refusal_rules": dict(self.refusal_rules),
            "command_verdicts": self.command_verdicts,
            "command_rules": self.command_rules,
            "skipped_topics": self.skipped,
            "sim_time_recording": self.sim_time_recording,
        }

    def render(self) -> str:
        commands_in = self.published.get("cmd_vel_in", 0)
        lines = [
            "",
            f"Replay summary: {self.bag} at {self.rate:g}x",
            f"  inputs published: {', '.join(f'{topic} {count}' for topic, count in sorted(self.published.items()))}",
            f"  commands in: {commands_in}; outputs on cmd_vel_out: {self.outputs}",
            "  decisions on commands per verdict: "
            + (
                ", ".join(f"{verdict} {count}" for verdict, count in sorted(self.command_verdicts.items()))
                or "none"
            ),
            f"  refusal messages published: {self.refusals}",
            "  most frequent reasons:",
        ]
        top = Counter(self.command_rules).most_common(6) or self.refusal_rules.most_common(6)
        lines += [f"    {count:6d}  {rule}" for rule, count in top] or ["    none"]
        lines += [
            f"  largest command in: linear {self.largest_command_in[0]:.3f} m/s, angular {self.largest_command_in[1]:.3f} rad/s",
            f"  largest command forwarded: linear {self.largest_linear:.3f} m/s, angular {self.largest_angular:.3f} rad/s",
            f"  non-finite outputs: {self.non_finite_outputs}; over-limit outputs: {self.over_limit_outputs}",
        ]
        if self.skipped:
            lines.append(
                "  topics not replayed: "
                + "; ".join(f"{t} ({why})" for t, why in sorted(self.skipped.items()))
            )
        return "\n".join(lines)


def _parse_map(items: Sequence[str]) -> dict[str, str]:
    mapping = dict(DEFAULT_MAP)
    for item in items:
        source, sep, target = item.partition(":=")
        if not sep or not source or not target:
            raise SystemExit(
                f"nc-safety replay: invalid --map {item!r}; use RECORDED:=TOPIC, e.g. /cmd_vel:=cmd_vel_in"
            )
        mapping[source] = target
    return mapping


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nc-safety replay", description=__doc__.splitlines()[0])
    parser.add_argument(
        "bag",
        nargs="?",
        type=Path,
        default=DEFAULT_BAG,
        help="rosbag2 folder (default: the bundled real TurtleBot3 run)",
    )
    parser.add_argument("--rate", type=float, default=1.0, help="playback speed factor (default 1.0)")
    parser.add_argument(
        "--no-rebase",
        action="store_true",
        help="keep recorded header stamps instead of moving them to the replay time",
    )
    parser.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="RECORDED:=TOPIC",
        help="publish a recorded topic on another topic (repeatable)",
    )
    parser.add_argument("--node", default="nc_safety", help="name of the safety node (default nc_safety)")
    parser.add_argument(
        "--wait", type=float, default=30.0, help="seconds to wait for the node to match (default 30)"
    )
    parser.add_argument("--quiet", action="store_true", help="print only the summary")
    parser.add_argument("--summary-json", type=Path, help="also write the summary as JSON to this file")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not (math.isfinite(args.rate) and 0.01 <= args.rate <= 100.0):
        print(f"nc-safety replay: --rate {args.rate} is outside [0.01, 100]", file=sys.stderr)
        return 2
    apply_loopback_defaults()
    from nc_safety.replay.bag import BagError

    try:
        summary = run_replay(
            args.bag,
            rate=args.rate,
            rebase=not args.no_rebase,
            topic_map=_parse_map(args.map),
            node_name=args.node,
            wait=args.wait,
            quiet=args.quiet,
        )
    except (BagError, TimeoutError) as error:
        print(f"nc-safety replay: {error}", file=sys.stderr)
        return 1
    print(summary.render())
    if args.summary_json:
        args.summary_json.write_text(json.dumps(summary.to_json(), indent=2))
    return 0


def run_replay(
    bag: Path,
    *,
    rate: float = 1.0,
    rebase: bool = True,
    topic_map: dict[str, str] | None = None,
    node_name: str = "nc_safety",
    wait: float = 30.0,
    quiet: bool = False,
    context: Any = None,
    on_start: Callable[[], None] | None = None,
) -> ReplaySummary:
    """Replay `bag` through the node named `node_name`; return what came out.

    `on_start` is called once the node is matched, just before the first message goes out.
    """
    import rclpy
    from geometry_msgs.msg import Twist
    from rclpy.duration import Duration
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from std_msgs.msg import String

    from nc_safety.replay.bag import BagReplaySource

    source = BagReplaySource(bag, topic_map or DEFAULT_MAP)
    summary = ReplaySummary(
        bag=str(bag), rate=rate, skipped=source.info.skipped, sim_time_recording=source.info.sim_time
    )
    own_context = context is None
    if own_context:
        context = rclpy.context.Context()
        rclpy.init(context=context)
    node = rclpy.create_node("nc_safety_replay", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    reliable = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
    publishers: dict[str, Any] = {}
    for topic in sorted(set(source.topic_map.values()) & {source.topic_map[t] for t in source.classes}):
        cls = next(source.classes[t] for t in source.classes if source.topic_map[t] == topic)
        publishers[topic] = node.create_publisher(cls, topic, reliable)

    state: dict[str, Any] = {}
    started = time.monotonic()

    def on_output(msg: Any) -> None:
        twist = msg.twist if hasattr(msg, "twist") else msg
        values = (
            twist.linear.x,
            twist.linear.y,
            twist.linear.z,
            twist.angular.x,
            twist.angular.y,
            twist.angular.z,
        )
        summary.outputs += 1
        if not all(math.isfinite(v) for v in values):
            summary.non_finite_outputs += 1
            return
        linear, angular = math.hypot(values[0], values[1]), abs(values[5])
        summary.largest_linear = max(summary.largest_linear, linear)
        summary.largest_angular = max(summary.largest_angular, angular)
        limits = state.get("limits") or {}
        if limits and (
            values[0] > limits["max_linear_x"] + 1e-9
            or values[0] < limits["min_linear_x"] - 1e-9
            or abs(values[1]) > limits["max_linear_y"] + 1e-9
            or angular > limits["max_angular_z"] + 1e-9
        ):
            summary.over_limit_outputs += 1

    def on_refusal(msg: String) -> None:
        record = json.loads(msg.data)
        summary.refusals += 1
        summary.refusal_rules.update(reason["rule_id"] for reason in record["reasons"])
        if not quiet:
            reasons = record["reasons"] or [{"rule_id": "-", "message": ""}]
            first = reasons[0]
            more = f" (also: {', '.join(r['rule_id'] for r in reasons[1:])})" if len(reasons) > 1 else ""
            print(
                f"[{time.monotonic() - started:7.2f} s] {record['verdict']:<12} {first['rule_id']:<28} "
                f"{first['message']}{more}",
                flush=True,
            )

    def on_state(msg: String) -> None:
        state.clear()
        state.update(json.loads(msg.data))

    # The node publishes cmd_vel_out with the type of cmd_vel_in.
    command_publisher = publishers.get("cmd_vel_in")
    output_type = command_publisher.msg_type if command_publisher is not None else Twist
    node.create_subscription(output_type, "cmd_vel_out", on_output, reliable)
    node.create_subscription(String, f"/{node_name}/refusals", on_refusal, QoSProfile(depth=100))
    latched = QoSProfile(
        depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE
    )
    node.create_subscription(String, f"/{node_name}/state", on_state, latched)

    try:
        deadline = time.monotonic() + wait
        while not (state and all(p.get_subscription_count() > 0 for p in publishers.values())):
            if time.monotonic() > deadline:
                unmatched = [t for t, p in publishers.items() if p.get_subscription_count() == 0]
                raise TimeoutError(
                    f"node /{node_name} not found within {wait:.0f} s (no state; unmatched topics {unmatched}); "
                    "start it first, on the same ROS_DOMAIN_ID"
                )
            executor.spin_once(timeout_sec=0.05)
        if not quiet:
            print(
                f"replaying {bag} at {rate:g}x through /{node_name} "
                f"({'sim-time' if source.info.sim_time else 'wall-clock'} stamps, "
                f"{'rebased' if rebase else 'as recorded'}); refusals as they arrive:",
                flush=True,
            )
        started = time.monotonic()
        if on_start is not None:
            on_start()
        for item in source.messages():
            target = started + item.offset_s / rate
            while True:
                remaining = target - time.monotonic()
                if remaining <= 0.0:
                    break
                executor.spin_once(timeout_sec=min(remaining, 0.01))
            message = item.message
            if rebase and item.stamp_lag_s is not None:
                stamp = node.get_clock().now() + Duration(seconds=item.stamp_lag_s / rate)
                message.header.stamp = stamp.to_msg()
            if item.topic == "cmd_vel_in":
                twist = message.twist if hasattr(message, "twist") else message
                summary.largest_command_in = (
                    max(summary.largest_command_in[0], abs(twist.linear.x)),
                    max(summary.largest_command_in[1], abs(twist.angular.z)),
                )
            publishers[item.topic].publish(message)
            summary.published[item.topic] += 1
        # Let the last outputs and the final state arrive.
        drain_until = time.monotonic() + 1.0
        while time.monotonic() < drain_until:
            executor.spin_once(timeout_sec=0.02)
        counts = state.get("counts", {})
        summary.command_verdicts = counts.get("command_verdicts", {})
        summary.command_rules = counts.get("command_rules", {})
        summary.limits = state.get("limits", {})
    finally:
        executor.shutdown(timeout_sec=1.0)
        node.destroy_node()
        if own_context:
            rclpy.shutdown(context=context)
    return summary


if __name__ == "__main__":
    sys.exit(main())
