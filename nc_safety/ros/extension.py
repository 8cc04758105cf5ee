"""The contract between the safety node and the parts that plug into it.

The e-stop link, operator overrides, directives, the audit trail and risk tracking each
live in their own module and talk to the node only through `NodeServices`. The node
creates an extension when its `<name>.enabled` parameter is true, as `Class(services)`
(see `EXTENSIONS` in nc_safety/ros/node.py for the names and classes), in this order:
audit, risk, estop, overrides, directives. It calls the hooks from the executor thread
and `shutdown` before the node is destroyed. An extension must not hold its own lock
while it calls a NodeServices method.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from nc_safety.core.grant import OverrideGrant
from nc_safety.core.holds import Hold
from nc_safety.core.justification import Decision, JsonValue
from nc_safety.core.verdict import RefutableBy

if TYPE_CHECKING:
    from diagnostic_msgs.msg import DiagnosticStatus
    from rclpy.node import Node


class NodeServices(Protocol):
    """Services the safety node offers its extensions. Every method is thread-safe."""

    @property
    def ros_node(self) -> Node:
        """The rclpy node, for declaring parameters, publishers and subscriptions."""

    def now_s(self) -> float:
        """Current ROS time (sim time when `use_sim_time` is set), in seconds."""

    def extension(self, name: str) -> Any | None:
        """Another running extension by name (`audit`, `risk`, `estop`, ...), or None."""

    def set_hold(self, hold: Hold) -> None:
        """Latch a stop: every motion output is zero until the hold is cleared."""

    def clear_hold(self, hold_id: str) -> None:
        """Clear one hold; motion stays zero until a fresh or zero command arrives."""

    def holds(self) -> tuple[Hold, ...]:
        """Return the stops that are latched now."""

    def add_grant(self, grant: OverrideGrant) -> None:
        """Activate a verified override; it lapses on its own at `expires_at`."""

    def revoke_grant(self, override_id: str) -> bool:
        """End an override at once; returns whether it was active."""

    def grants(self) -> tuple[OverrideGrant, ...]:
        """Return the overrides that are active now."""

    def refutable_by(self, rule_id: str) -> RefutableBy | None:
        """Who may override `rule_id`, or None when the policy has no such rule."""

    def recent_decision(self, decision_id: str) -> Decision | None:
        """Return a recently published decision; refusals are kept for a bounded window."""

    def publish_decision(self, decision: Decision) -> None:
        """Publish a non-motion decision (directive, override outcome) on `~/refusals`
        with the same debounce and audit as motion decisions."""

    def audit(self, kind: str, payload: Mapping[str, JsonValue]) -> None:
        """Queue a record for the audit trail; does nothing when auditing is disabled."""

    @property
    def policy_hash(self) -> str:
        """SHA-256 of the effective configuration and rule packs."""


class NodeExtension(Protocol):
    """A part that plugs into the safety node."""

    name: str

    def on_decision(self, decision: Decision) -> None:
        """Called after every decision the node makes, from the executor thread. Must be fast."""

    def diagnostics(self) -> list[DiagnosticStatus]:
        """Statuses added to the node's 1 Hz `/diagnostics` message."""

    def state(self) -> dict[str, Any]:
        """JSON-ready fields merged into `~/state` under the extension's name."""

    def shutdown(self) -> None:
        """Release threads and files; called once, before the node is destroyed."""
