"""`nc-safety console`: the operator's terminal UI (Textual).

Shows the node's live state, the refusal stream with each full justification, the active
overrides with their remaining time and the diagnostics. The operator selects a refusal,
types a reason and a duration and presses ctrl+o: the console signs the override with the
operator's key and shows the node's response. F1 engages the software e-stop from any
widget. Keys drive `cmd_vel_in` like teleop_twist_keyboard while the refusal list has
focus. rclpy runs in a background thread (OperatorLink); its callbacks hand messages to
the UI thread with `App.call_from_thread`.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Twist, TwistStamped
from rclpy.qos import QoSDurabilityPolicy, QoSHistoryPolicy, QoSProfile, QoSReliabilityPolicy
from std_msgs.msg import String
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import Button, DataTable, Footer, Input, Static

from nc_safety.console.override_cli import OperatorLink, positive_float
from nc_safety.core.overrides import OverrideError, RequestKind, SigningIdentity, new_request
from nc_safety.core.overrides.keys import load_private_key
from nc_safety.core.overrides.request import RESET_TARGETS

CLOCK_TOLERANCE_S = 1.0
"""E-stop statuses stamped this much before the console started still count as responses,
so the console still shows the response of a node whose clock lags a little, in seconds."""

# teleop_twist_keyboard's layout: (linear x direction, angular z direction) per key.
MOVE_KEYS: dict[str, tuple[int, int]] = {
    "i": (1, 0),
    "o": (1, -1),
    "j": (0, 1),
    "l": (0, -1),
    "u": (1, 1),
    "comma": (-1, 0),
    "full_stop": (-1, 1),
    "m": (-1, -1),
    "k": (0, 0),
}
# Speed scaling keys: (linear factor, angular factor).
SPEED_KEYS: dict[str, tuple[float, float]] = {
    "q": (1.1, 1.1),
    "z": (0.9, 0.9),
    "w": (1.1, 1.0),
    "x": (0.9, 1.0),
    "e": (1.0, 1.1),
    "c": (1.0, 0.9),
}
MAX_REFUSALS = 200
ZERO_REPEATS = 3
"""Zero commands sent after a stop key, so a lost message cannot leave the robot moving."""

RELIABLE = QoSProfile(
    history=QoSHistoryPolicy.KEEP_LAST,
    depth=50,
    reliability=QoSReliabilityPolicy.RELIABLE,
    durability=QoSDurabilityPolicy.VOLATILE,
)
LATCHED = QoSProfile(
    history=QoSHistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=QoSReliabilityPolicy.RELIABLE,
    durability=QoSDurabilityPolicy.TRANSIENT_LOCAL,
)


def decision_rules(record: dict[str, Any]) -> str:
    return ", ".join(str(reason.get("rule_id")) for reason in record.get("reasons", []))


def format_justification(record: dict[str, Any]) -> str:
    """Render a decision as the operator reads it: each reason with evidence, consequence and remedy."""
    command = record.get("command", {})
    lines = [
        f"decision {record.get('decision_id')}  verdict {str(record.get('verdict', '')).upper()}",
        f"command {command.get('kind')} {command.get('id')} from {command.get('requester')}",
        f"policy {str(record.get('policy_hash', ''))[:16]}",
    ]
    for reason in record.get("reasons", []):
        lines.append("")
        lines.append(
            f"[{reason.get('severity')}] {reason.get('rule_id')} ({reason.get('kind')}, "
            f"refutable by {reason.get('refutable_by')})"
        )
        lines.append(f"  {reason.get('message')}")
        for item in reason.get("evidence", []):
            limit = f" (limit {item['limit']})" if "limit" in item else ""
            source = f" from {item['source']}" if item.get("source") else ""
            lines.append(
                f"  evidence: {item.get('quantity')} = {item.get('value')} {item.get('unit', '')}{limit}{source}"
            )
        if reason.get("consequence"):
            lines.append(f"  consequence: {reason['consequence']}")
        if reason.get("remedy"):
            lines.append(f"  remedy: {reason['remedy']}")
    for note in record.get("overrides", []):
        lines.append("")
        lines.append(f"overridden by {note.get('operator_id')} ({note.get('role')}): {note.get('reason')}")
    return "\n".join(lines)


class ConsoleApp(App[int]):
    """The operator console."""

    TITLE = "nc_safety console"
    CSS = """
    #state { height: 3; border: round $accent; }
    #main { height: 1fr; }
    #refusals { width: 1fr; }
    #justification { width: 1fr; border: round $secondary; overflow-y: auto; }
    #lower { height: 9; }
    #overrides { width: 1fr; }
    #diagnostics { width: 1fr; border: round $secondary; }
    #form { height: 3; }
    #reason { width: 2fr; }
    #duration { width: 12; }
    #response { height: 2; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f1", "estop", "E-STOP", priority=True),
        Binding("ctrl+o", "send_override", "Override selected"),
        Binding("ctrl+r", "send_reset", "Reset stop"),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    def __init__(
        self,
        link: OperatorLink,
        identity: SigningIdentity | None,
        *,
        cmd_vel_topic: str = "cmd_vel_in",
        stamped: bool = False,
        linear_speed: float = 0.2,
        angular_speed: float = 0.5,
        publish_period_s: float = 0.1,
    ) -> None:
        super().__init__()
        self.link = link
        self.identity = identity
        self.linear_speed = linear_speed
        self.angular_speed = angular_speed
        self.publish_period_s = publish_period_s
        self.drive = (0, 0)
        self._zeros_left = 0
        self.refusals: dict[str, dict[str, Any]] = {}
        self.overrides: dict[str, dict[str, Any]] = {}
        self.responses: list[dict[str, Any]] = []
        self.node_state: dict[str, Any] = {}
        self.clock_offset_s = 0.0
        """Node ROS time minus local wall time, from the latest status message, in s."""
        self._pending: set[str] = set()
        self._started_at = time.time()
        self._stamped = stamped
        node = link.node
        message_type = TwistStamped if stamped else Twist
        self.cmd_vel_publisher = node.create_publisher(message_type, cmd_vel_topic, 10)
        safety = link.safety_node
        node.create_subscription(String, f"{safety}/refusals", self._ros_refusal, RELIABLE)
        node.create_subscription(String, f"{safety}/state", self._ros_state, LATCHED)
        node.create_subscription(DiagnosticArray, "/diagnostics", self._ros_diagnostics, 10)
        link.add_status_listener(self._ros_status)

    # --- layout -------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static("waiting for the safety node ...", id="state")
        with Horizontal(id="main"):
            yield DataTable(id="refusals", cursor_type="row")
            yield Static("select a refusal to see its justification", id="justification")
        with Horizontal(id="lower"):
            yield DataTable(id="overrides")
            yield Static("no diagnostics yet", id="diagnostics")
        with Horizontal(id="form"):
            yield Input(placeholder="reason (required for an override or reset)", id="reason")
            yield Input(value="60", placeholder="duration s", id="duration")
            yield Button("Override", id="override")
            yield Button("Reset", id="reset")
            yield Button("E-STOP (F1)", id="estop", variant="error")
        yield Static("", id="response")
        yield Footer()

    def on_mount(self) -> None:
        refusals = self.query_one("#refusals", DataTable)
        refusals.add_columns("time", "verdict", "rules", "requester", "decision")
        overrides = self.query_one("#overrides", DataTable)
        overrides.add_columns("override", "operator", "rules", "remaining s")
        refusals.focus()
        self.set_interval(self.publish_period_s, self._publish_drive)
        self.set_interval(0.5, self._refresh_overrides)
        self._refresh_state()

    # --- ROS callbacks (spin thread) ----------------------------------------------------

    def _ros_refusal(self, message: String) -> None:
        try:
            record = json.loads(message.data)
        except json.JSONDecodeError:
            return
        if isinstance(record, dict) and "decision_id" in record:
            self.call_from_thread(self.add_refusal, record)

    def _ros_state(self, message: String) -> None:
        try:
            record = json.loads(message.data)
        except json.JSONDecodeError:
            return
        if isinstance(record, dict):
            self.call_from_thread(self.set_node_state, record)

    def _ros_diagnostics(self, message: DiagnosticArray) -> None:
        lines = [
            f"{status.name}: {status.message}"
            for status in message.status
            if status.name.startswith("nc_safety")
        ]
        if lines:
            self.call_from_thread(self.query_one("#diagnostics", Static).update, "\n".join(lines))

    def _ros_status(self, record: dict[str, Any]) -> None:
        self.call_from_thread(self.add_status, record)

    # --- UI updates (UI thread) ---------------------------------------------------------

    def add_refusal(self, record: dict[str, Any]) -> None:
        decision_id = str(record["decision_id"])
        if decision_id in self.refusals:
            return
        self.refusals[decision_id] = record
        table = self.query_one("#refusals", DataTable)
        stamp = time.strftime("%H:%M:%S", time.localtime(float(record.get("wall_time", time.time()))))
        requester = record.get("command", {}).get("requester", "")
        table.add_row(
            stamp, record.get("verdict", ""), decision_rules(record), requester, decision_id, key=decision_id
        )
        if len(self.refusals) > MAX_REFUSALS:
            oldest = next(iter(self.refusals))
            del self.refusals[oldest]
            table.remove_row(oldest)
        if len(self.refusals) == 1:
            self.show_justification(decision_id)

    def set_node_state(self, record: dict[str, Any]) -> None:
        self.node_state = record
        active = (
            record.get("overrides", {}).get("active") if isinstance(record.get("overrides"), dict) else None
        )
        if isinstance(active, list):
            for item in active:
                self.overrides.setdefault(str(item.get("override_id")), dict(item))
        self._refresh_state()

    def add_status(self, record: dict[str, Any]) -> None:
        self.responses.append(record)
        if isinstance(record.get("stamp"), (int, float)) and isinstance(
            record.get("wall_time"), (int, float)
        ):
            self.clock_offset_s = float(record["stamp"]) - float(record["wall_time"])
        request_id = str(record.get("request_id"))
        outcome = record.get("outcome")
        if outcome == "accepted" and record.get("kind") == RequestKind.OVERRIDE.value:
            self.overrides[request_id] = record
        elif outcome == "ended":
            self.overrides.pop(request_id, None)
        # The status topic is transient local, so statuses from before this console started
        # arrive too: only e-stop statuses newer than the start are shown as a response.
        recent = float(record.get("wall_time", 0.0)) >= self._started_at - CLOCK_TOLERANCE_S
        mine = request_id in self._pending or (record.get("kind") == "e_stop" and recent)
        if mine:
            self._pending.discard(request_id)
            self.query_one("#response", Static).update(
                f"node: {outcome} ({record.get('code')}): {record.get('message')}"
            )
        self._refresh_overrides()
        self._refresh_state()

    def show_justification(self, decision_id: str) -> None:
        record = self.refusals.get(decision_id)
        if record is not None:
            self.query_one("#justification", Static).update(format_justification(record))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "refusals" and event.row_key.value is not None:
            self.show_justification(str(event.row_key.value))

    def selected_decision(self) -> str | None:
        table = self.query_one("#refusals", DataTable)
        if table.row_count == 0:
            return None
        row_key, _column = table.coordinate_to_cell_key(table.cursor_coordinate)
        return str(row_key.value) if row_key.value is not None else None

    def _refresh_overrides(self) -> None:
        table = self.query_one("#overrides", DataTable)
        table.clear()
        node_now = time.time() + self.clock_offset_s
        for override_id, record in self.overrides.items():
            remaining = float(record.get("expires_at", node_now)) - node_now
            rules = ", ".join(record.get("rule_ids", []))
            table.add_row(
                override_id[:12], record.get("operator_id", ""), rules, f"{max(0.0, remaining):.1f}"
            )

    def _refresh_state(self) -> None:
        holds = self.node_state.get("holds", [])
        hold_text = (
            ", ".join(str(h.get("hold_id", h)) if isinstance(h, dict) else str(h) for h in holds) or "none"
        )
        linear, angular = self.drive
        self.query_one("#state", Static).update(
            f"node {self.link.safety_node}  connected {self.link.connected()}  holds: {hold_text}\n"
            f"drive: linear {linear * self.linear_speed:+.2f} m/s, angular {angular * self.angular_speed:+.2f} rad/s "
            f"(speed {self.linear_speed:.2f} m/s, turn {self.angular_speed:.2f} rad/s)  "
            f"key: {self.identity.key_id if self.identity else 'none (view and drive only)'}"
        )

    # --- keyboard driving ---------------------------------------------------------------

    def on_key(self, event: Any) -> None:
        """Drive keys act only while the refusal list has focus, so typing a reason never drives."""
        focused = self.focused
        if focused is None or focused.id != "refusals":
            return
        key = str(event.key)
        if key in MOVE_KEYS:
            self.set_drive(MOVE_KEYS[key])
            event.stop()
        elif key in SPEED_KEYS:
            linear_factor, angular_factor = SPEED_KEYS[key]
            self.linear_speed *= linear_factor
            self.angular_speed *= angular_factor
            self._refresh_state()
            event.stop()

    def set_drive(self, direction: tuple[int, int]) -> None:
        self.drive = direction
        if direction == (0, 0):
            self._zeros_left = ZERO_REPEATS
        self._publish_drive()
        self._refresh_state()

    def _publish_drive(self) -> None:
        linear, angular = self.drive
        if (linear, angular) == (0, 0):
            if self._zeros_left <= 0:
                return
            self._zeros_left -= 1
        twist = Twist()
        twist.linear.x = linear * self.linear_speed
        twist.angular.z = angular * self.angular_speed
        if self._stamped:
            stamped = TwistStamped()
            stamped.header.stamp = self.link.node.get_clock().now().to_msg()
            stamped.twist = twist
            self.cmd_vel_publisher.publish(stamped)
        else:
            self.cmd_vel_publisher.publish(twist)

    # --- actions ------------------------------------------------------------------------

    def action_estop(self) -> None:
        """Stop at once: zero the drive command and engage the software e-stop."""
        self.drive = (0, 0)
        self._zeros_left = ZERO_REPEATS
        self._publish_drive()
        self.link.engage_estop()
        self.query_one("#response", Static).update("E-STOP sent on /operator/e_stop")
        self._refresh_state()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "estop":
            self.action_estop()
        elif event.button.id == "override":
            self.action_send_override()
        elif event.button.id == "reset":
            self.action_send_reset()

    def _reason(self) -> str | None:
        reason = self.query_one("#reason", Input).value.strip()
        if not reason:
            self.query_one("#response", Static).update("type a reason first: it is recorded with your name")
            return None
        return reason

    def _send(self, kind: RequestKind, *, lifetime_s: float, **fields: Any) -> str | None:
        if self.identity is None:
            self.query_one("#response", Static).update(
                "no key loaded: start the console with --key FILE to sign"
            )
            return None
        reason = self._reason()
        if reason is None:
            return None
        try:
            request = new_request(
                kind, self.identity, now=time.time(), lifetime_s=lifetime_s, reason=reason, **fields
            )
        except OverrideError as error:
            self.query_one("#response", Static).update(f"cannot sign: {error}")
            return None
        self._pending.add(request.request_id)
        self.link.send(json.dumps(request.to_json()))
        self.query_one("#response", Static).update(
            f"sent {kind.value} {request.request_id}, waiting for the node ..."
        )
        return request.request_id

    def action_send_override(self) -> None:
        decision_id = self.selected_decision()
        if decision_id is None:
            self.query_one("#response", Static).update("select a refusal first")
            return
        text = self.query_one("#duration", Input).value.strip()
        try:
            duration = float(text)
        except ValueError:
            duration = math.nan
        if not (math.isfinite(duration) and duration > 0):
            self.query_one("#response", Static).update(f"duration {text!r} must be a number of seconds > 0")
            return
        self._send(RequestKind.OVERRIDE, lifetime_s=duration, decision_id=decision_id)

    def action_send_reset(self) -> None:
        self._send(RequestKind.RESET, lifetime_s=30.0, targets=sorted(RESET_TARGETS))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nc-safety console", description="Operator console (terminal UI).")
    parser.add_argument("--key", type=Path, help="private key file; without it the console cannot sign")
    parser.add_argument("--node", default="/nc_safety", help="safety node name (default /nc_safety)")
    parser.add_argument("--cmd-vel-topic", default="cmd_vel_in", help="topic the drive keys publish to")
    parser.add_argument("--stamped", action="store_true", help="publish TwistStamped instead of Twist")
    parser.add_argument(
        "--speed", type=positive_float, default=0.2, help="initial drive speed in m/s (default 0.2)"
    )
    parser.add_argument(
        "--turn", type=positive_float, default=0.5, help="initial turn rate in rad/s (default 0.5)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    identity = None
    if args.key is not None:
        try:
            identity = load_private_key(args.key)
        except OverrideError as error:
            print(f"nc-safety console: {error}", file=sys.stderr)
            return 2
    link = OperatorLink(args.node, client_name="nc_safety_console")
    try:
        app = ConsoleApp(
            link,
            identity,
            cmd_vel_topic=args.cmd_vel_topic,
            stamped=args.stamped,
            linear_speed=args.speed,
            angular_speed=args.turn,
        )
        app.run()
    finally:
        link.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
