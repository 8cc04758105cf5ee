"""`nc-safety override`: sign requests, send them to the safety node and wait for its response.

    nc-safety override grant --key K --decision ID --reason TEXT --duration 60
    nc-safety override grant --key K --rule motion.geofence.keep_out --reason TEXT \\
        --duration 60 --cosign-key K2
    nc-safety override grant ... --out request.json      # sign only; co-sign and send later
    nc-safety override cosign request.json --key K2
    nc-safety override send request.json
    nc-safety override reset --key K --reason TEXT [--target estop.software|estop.board]
    nc-safety override clear-risk --key K --requester cmd_vel_in --reason TEXT
    nc-safety override revoke --key K --override-id ID --reason TEXT
    nc-safety override estop                             # engage the software e-stop

Exit codes: 0 accepted (or e-stop engaged), 1 rejected or not carried out, 2 invalid
arguments or key file, 3 no response within --timeout.
"""

from __future__ import annotations

import argparse
import json
import queue
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import rclpy
from rclpy.context import Context
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.qos import QoSDurabilityPolicy, QoSHistoryPolicy, QoSProfile, QoSReliabilityPolicy
from std_msgs.msg import Bool, String

from nc_safety.core.overrides import Constraints, OverrideError, RequestKind, new_request
from nc_safety.core.overrides.keys import load_private_key
from nc_safety.core.overrides.request import RESET_TARGETS, OverrideRequest, parse_request
from nc_safety.core.overrides.verifier import decode_json
from nc_safety.ros.dds_env import apply_loopback_defaults

EXIT_ACCEPTED = 0
EXIT_REJECTED = 1
EXIT_USAGE = 2
EXIT_TIMEOUT = 3

OVERRIDE_TOPIC = "/operator/override"
ESTOP_TOPIC = "/operator/e_stop"
ESTOP_HISTORY_QUIET_S = 0.3
"""The status history counts as delivered after this long without a new record, in seconds."""
ESTOP_RETRY_S = 0.5
"""Interval at which an unconfirmed e-stop request is repeated, in seconds."""
"""How far the node's wall clock may lag ours for an e-stop confirmation to count, in s."""


class OperatorLink:
    """An rclpy node spun in a background thread: sends requests and stops, collects the responses.

    The console adds its own subscriptions through `node`; callbacks run on the spin thread.
    """

    def __init__(
        self,
        node_name: str = "/nc_safety",
        *,
        client_name: str = "nc_safety_operator",
        domain_id: int | None = None,
    ) -> None:
        apply_loopback_defaults()
        self.safety_node = node_name.rstrip("/") or "/nc_safety"
        self.status_topic = f"{self.safety_node}/override_status"
        self.context = Context()
        # domain_id None means ROS_DOMAIN_ID from the environment.
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node(client_name, context=self.context)
        reliable = QoSProfile(
            history=QoSHistoryPolicy.KEEP_LAST,
            depth=50,
            reliability=QoSReliabilityPolicy.RELIABLE,
            durability=QoSDurabilityPolicy.VOLATILE,
        )
        self.override_publisher = self.node.create_publisher(String, OVERRIDE_TOPIC, reliable)
        self.estop_publisher = self.node.create_publisher(Bool, ESTOP_TOPIC, reliable)
        self._responses: queue.Queue[dict[str, Any]] = queue.Queue()
        self._status_listeners: list[Callable[[dict[str, Any]], None]] = []
        # Transient local like the node's publisher: a response sent before our reader matched
        # still arrives, along with older statuses that callers filter out.
        latched = QoSProfile(
            history=QoSHistoryPolicy.KEEP_LAST,
            depth=50,
            reliability=QoSReliabilityPolicy.RELIABLE,
            durability=QoSDurabilityPolicy.TRANSIENT_LOCAL,
        )
        self.status_subscription = self.node.create_subscription(
            String, self.status_topic, self._on_status, latched
        )
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, name="nc_safety_operator_spin", daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            while self.context.ok():
                self.executor.spin_once(timeout_sec=0.05)
        except ExternalShutdownException:
            return

    def _on_status(self, message: String) -> None:
        try:
            record = json.loads(message.data)
        except json.JSONDecodeError:
            return
        if not isinstance(record, dict):
            return
        self._responses.put(record)
        for listener in list(self._status_listeners):
            listener(record)

    def add_status_listener(self, listener: Callable[[dict[str, Any]], None]) -> None:
        self._status_listeners.append(listener)

    def wait_connected(self, timeout: float) -> bool:
        """Wait until the node subscribes to our requests and publishes its status."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.connected():
                return True
            time.sleep(0.02)
        return False

    def connected(self) -> bool:
        return (
            self.override_publisher.get_subscription_count() >= 1
            and self.estop_publisher.get_subscription_count() >= 1
            and self.status_subscription.get_publisher_count() >= 1
        )

    def send(self, raw: str) -> None:
        self.override_publisher.publish(String(data=raw))

    def engage_estop(self) -> None:
        self.estop_publisher.publish(Bool(data=True))

    def wait_response(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float
    ) -> dict[str, Any] | None:
        """Return the first status record that satisfies `predicate`, or None after `timeout` s."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                record = self._responses.get(timeout=min(remaining, 0.1))
            except queue.Empty:
                continue
            if predicate(record):
                return record

    def newest_estop_time(self, quiet: float, timeout: float) -> float:
        """Drain the delivered status history; return the node's wall time of its newest e-stop record."""
        newest = 0.0
        deadline = time.monotonic() + timeout
        last_record = time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - last_record < quiet:
            try:
                record = self._responses.get(timeout=0.02)
            except queue.Empty:
                continue
            last_record = time.monotonic()
            if record.get("kind") == "e_stop":
                newest = max(newest, float(record.get("wall_time", 0.0)))
        return newest

    def request(self, raw: str, request_id: str, timeout: float) -> dict[str, Any] | None:
        """Send a signed request and wait for the node's response to it."""
        deadline = time.monotonic() + timeout
        if not self.wait_connected(timeout):
            return None
        self.send(raw)
        return self.wait_response(
            lambda record: record.get("request_id") == request_id and record.get("outcome") != "ended",
            max(0.0, deadline - time.monotonic()),
        )

    def close(self) -> None:
        rclpy.shutdown(context=self.context)
        self._thread.join(timeout=2.0)
        self.executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()


def exit_code(record: dict[str, Any] | None) -> int:
    if record is None:
        return EXIT_TIMEOUT
    return EXIT_ACCEPTED if record.get("outcome") in ("accepted", "engaged") else EXIT_REJECTED


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from error
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number > 0")
    return value


def _add_common(parser: argparse.ArgumentParser, *, signing: bool = True) -> None:
    parser.add_argument("--node", default="/nc_safety", help="safety node name (default /nc_safety)")
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=10.0,
        help="seconds to wait for the node's response (default 10)",
    )
    parser.add_argument("--json", action="store_true", help="print the node's full response as JSON")
    if signing:
        parser.add_argument("--key", type=Path, required=True, help="private key file from nc-safety keygen")
        parser.add_argument("--reason", required=True, help="why; recorded in the audit trail")
        parser.add_argument(
            "--cosign-key",
            type=Path,
            action="append",
            default=[],
            help="add a co-signature (two_supervisors)",
        )
        parser.add_argument(
            "--out", type=Path, help="write the signed request to this file instead of sending it"
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nc-safety override", description="Sign and send operator requests."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    grant = commands.add_parser("grant", help="override rejected rules for a limited time")
    _add_common(grant)
    grant.add_argument("--decision", help="decision id of the refusal shown to you (from ~/refusals)")
    grant.add_argument("--rule", action="append", default=[], help="rule id to override (repeatable)")
    grant.add_argument("--duration", type=positive_float, required=True, help="override lifetime in s")
    grant.add_argument("--max-linear-speed", type=positive_float, help="speed cap in m/s while overridden")
    grant.add_argument(
        "--max-angular-speed", type=positive_float, help="yaw-rate cap in rad/s while overridden"
    )

    reset = commands.add_parser("reset", help="release the software e-stop and/or reset the e-stop board")
    _add_common(reset)
    reset.add_argument("--target", action="append", choices=sorted(RESET_TARGETS), help="default: both")
    reset.add_argument(
        "--lifetime", type=positive_float, default=30.0, help="request validity in s (default 30)"
    )

    clear = commands.add_parser("clear-risk", help="clear the risk lockout of requesters (supervisors)")
    _add_common(clear)
    clear.add_argument(
        "--requester", action="append", required=True, help="requester id to clear (repeatable)"
    )
    clear.add_argument(
        "--lifetime", type=positive_float, default=30.0, help="request validity in s (default 30)"
    )

    revoke = commands.add_parser("revoke", help="end active overrides now")
    _add_common(revoke)
    revoke.add_argument("--override-id", action="append", required=True, help="override id (repeatable)")
    revoke.add_argument(
        "--lifetime", type=positive_float, default=30.0, help="request validity in s (default 30)"
    )

    cosign = commands.add_parser("cosign", help="add your signature to a request file")
    cosign.add_argument("file", type=Path)
    cosign.add_argument("--key", type=Path, required=True, help="private key file from nc-safety keygen")
    cosign.add_argument("--out", type=Path, help="output file (default: overwrite the input)")

    send = commands.add_parser("send", help="send a signed request file and wait for the response")
    _add_common(send, signing=False)
    send.add_argument("file", type=Path)

    estop = commands.add_parser("estop", help="engage the software e-stop (no key needed)")
    _add_common(estop, signing=False)
    return parser


def build_request(args: argparse.Namespace) -> OverrideRequest:
    """Build and sign the request the arguments describe; raise OverrideError on a bad key or field."""
    identity = load_private_key(args.key)
    now = time.time()
    if args.command == "grant":
        if not args.decision and not args.rule:
            raise OverrideError("grant needs --decision, --rule or both")
        request = new_request(
            RequestKind.OVERRIDE,
            identity,
            now=now,
            lifetime_s=args.duration,
            reason=args.reason,
            decision_id=args.decision,
            rule_ids=args.rule,
            constraints=Constraints(
                max_linear_speed=args.max_linear_speed, max_angular_speed=args.max_angular_speed
            ),
        )
    else:
        kind, targets = {
            "reset": (RequestKind.RESET, args.target if "target" in args else None),
            "clear-risk": (RequestKind.RISK_CLEAR, getattr(args, "requester", None)),
            "revoke": (RequestKind.REVOKE, getattr(args, "override_id", None)),
        }[args.command]
        request = new_request(
            kind,
            identity,
            now=now,
            lifetime_s=args.lifetime,
            reason=args.reason,
            targets=targets or sorted(RESET_TARGETS),
        )
    for cosign_path in args.cosign_key:
        request = request.signed_by(load_private_key(cosign_path))
    return request


def read_request_file(path: Path) -> OverrideRequest:
    try:
        document = decode_json(path.read_bytes())
    except (OSError, ValueError) as error:
        raise OverrideError(f"cannot read request file {path}: {error}") from error
    return parse_request(document, max_reason_chars=10_000)


def write_request_file(request: OverrideRequest, path: Path) -> None:
    path.write_text(json.dumps(request.to_json(), indent=2) + "\n", encoding="utf-8")


def report(record: dict[str, Any] | None, *, as_json: bool, timeout: float) -> int:
    if record is None:
        print(
            f"nc-safety override: no response from the node within {timeout:.1f} s; is it running with "
            "overrides.enabled:=true on this ROS_DOMAIN_ID?",
            file=sys.stderr,
        )
        return EXIT_TIMEOUT
    if as_json:
        print(json.dumps(record, indent=2, sort_keys=True))
    else:
        print(f"{record.get('outcome')} ({record.get('code')}): {record.get('message')}")
    return exit_code(record)


def run_estop(args: argparse.Namespace) -> int:
    link = OperatorLink(args.node)
    try:
        deadline = time.monotonic() + args.timeout
        if not link.wait_connected(args.timeout):
            return report(None, as_json=args.json, timeout=args.timeout)
        # The status topic keeps its history for late joiners, so earlier confirmations
        # arrive first. Only a record newer than all of them is the response to this request.
        # Both times are the node's clock, so clock skew between hosts does not matter.
        newest = link.newest_estop_time(ESTOP_HISTORY_QUIET_S, max(0.0, deadline - time.monotonic()))
        record = None
        while record is None and time.monotonic() < deadline:
            # Repeating a stop request is harmless. The override bridge confirms an e-stop
            # that is already engaged at most once per second, so a repeated request gets a response.
            link.engage_estop()
            record = link.wait_response(
                lambda item: (
                    item.get("kind") == "e_stop"
                    and item.get("outcome") == "engaged"
                    and float(item.get("wall_time", 0.0)) > newest
                ),
                min(ESTOP_RETRY_S, max(0.0, deadline - time.monotonic())),
            )
        return report(record, as_json=args.json, timeout=args.timeout)
    finally:
        link.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "estop":
        return run_estop(args)
    try:
        if args.command == "cosign":
            request = read_request_file(args.file).signed_by(load_private_key(args.key))
            write_request_file(request, args.out or args.file)
            print(
                f"co-signed request {request.request_id} written to {args.out or args.file}", file=sys.stderr
            )
            return EXIT_ACCEPTED
        if args.command == "send" or getattr(args, "out", None):
            request = read_request_file(args.file) if args.command == "send" else build_request(args)
        else:
            # Check the key and fields before connecting, then sign again once connected.
            build_request(args)
    except OverrideError as error:
        print(f"nc-safety override: {error}", file=sys.stderr)
        return EXIT_USAGE
    if getattr(args, "out", None):
        write_request_file(request, args.out)
        print(f"signed request {request.request_id} written to {args.out}", file=sys.stderr)
        return EXIT_ACCEPTED
    link = OperatorLink(args.node)
    try:
        deadline = time.monotonic() + args.timeout
        if not link.wait_connected(args.timeout):
            return report(None, as_json=args.json, timeout=args.timeout)
        if args.command != "send":
            # Sign only now: discovery can take seconds, and a short override signed before
            # it would reach the node already expired.
            request = build_request(args)
        record = link.request(
            json.dumps(request.to_json()), request.request_id, max(0.0, deadline - time.monotonic())
        )
    finally:
        link.close()
    return report(record, as_json=args.json, timeout=args.timeout)


if __name__ == "__main__":
    sys.exit(main())
