"""Stand-in for the safety node: hosts OverrideBridge over real DDS with a minimal NodeServices.

Used until the bridge is wired into nc_safety/ros/node.py. It keeps holds, grants (which
lapse at `expires_at`) and audit records in memory and publishes them as JSON on
`~/host_state` so tests can see what the bridge did. Run it as a child process:

    python test/ros/override_host.py --ros-args -p overrides.keyring_path:=...
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Mapping
from pathlib import Path

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from std_msgs.msg import String

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from override_helpers import POLICY

from nc_safety.core.grant import OverrideGrant
from nc_safety.core.holds import Hold
from nc_safety.core.justification import Decision, JsonValue
from nc_safety.core.verdict import RefutableBy
from nc_safety.ros.override_bridge import OverrideBridge


class HostServices:
    def __init__(self, node: Node) -> None:
        self._node = node
        self._lock = threading.Lock()
        self._holds: dict[str, Hold] = {}
        self._grants: dict[str, OverrideGrant] = {}
        self.audit_records: list[dict[str, object]] = []
        self.calls: list[str] = []

    @property
    def ros_node(self) -> Node:
        return self._node

    def now_s(self) -> float:
        return self._node.get_clock().now().nanoseconds * 1e-9

    def set_hold(self, hold: Hold) -> None:
        with self._lock:
            self._holds[hold.hold_id] = hold

    def clear_hold(self, hold_id: str) -> None:
        with self._lock:
            self._holds.pop(hold_id, None)

    def holds(self) -> tuple[Hold, ...]:
        with self._lock:
            return tuple(self._holds.values())

    def add_grant(self, grant: OverrideGrant) -> None:
        with self._lock:
            self._grants[grant.override_id] = grant

    def revoke_grant(self, override_id: str) -> bool:
        with self._lock:
            return self._grants.pop(override_id, None) is not None

    def grants(self) -> tuple[OverrideGrant, ...]:
        now = self.now_s()
        with self._lock:
            for override_id in [key for key, grant in self._grants.items() if not grant.active(now)]:
                del self._grants[override_id]
            return tuple(self._grants.values())

    def refutable_by(self, rule_id: str) -> RefutableBy | None:
        return POLICY.get(rule_id)

    def recent_decision(self, decision_id: str) -> Decision | None:
        return None

    def publish_decision(self, decision: Decision) -> None:
        pass

    def audit(self, kind: str, payload: Mapping[str, JsonValue]) -> None:
        with self._lock:
            self.audit_records.append({"kind": kind, "payload": dict(payload)})

    @property
    def policy_hash(self) -> str:
        return "0" * 64


class EstopStandIn:
    """Records reset calls, as the e-stop extension's reset(operator_id) would receive them."""

    def __init__(self, services: HostServices) -> None:
        self.services = services

    def reset(self, operator_id: str) -> None:
        self.services.calls.append(f"estop.reset:{operator_id}")


def main() -> int:
    rclpy.init(args=sys.argv)
    node = rclpy.create_node("nc_safety")
    services = HostServices(node)
    extensions = {"estop": EstopStandIn(services)}
    bridge = OverrideBridge(services, extensions.get)
    publisher = node.create_publisher(String, "~/host_state", 10)

    def publish_state() -> None:
        state = {
            "holds": sorted(hold.hold_id for hold in services.holds()),
            "grants": sorted(grant.override_id for grant in services.grants()),
            "audit": [record["kind"] for record in services.audit_records],
            "calls": list(services.calls),
            "bridge": bridge.state(),
        }
        publisher.publish(String(data=json.dumps(state)))

    node.create_timer(0.1, publish_state)
    print("override host ready", flush=True)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        bridge.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
