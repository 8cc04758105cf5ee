"""Real keys, keyring, nonce database and policy for the override tests, all in a temporary folder."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from nc_safety.core.justification import Decision, Reason, combine
from nc_safety.core.overrides import (
    Keyring,
    NonceStore,
    OverrideVerifier,
    Role,
    SigningIdentity,
    VerifierLimits,
    load_keyring,
)
from nc_safety.core.verdict import ReasonKind, RefutableBy, Severity, Verdict

POLICY = {
    "motion.obstacle.braking": RefutableBy.OPERATOR,
    "motion.limit.linear_x": RefutableBy.SUPERVISOR,
    "motion.geofence.keep_out": RefutableBy.TWO_SUPERVISORS,
    "motion.people.separation": RefutableBy.NONE,
    "motion.non_finite": RefutableBy.NONE,
}


def refusal(*rule_ids: str) -> Decision:
    reasons = [
        Reason(
            rule_id=rule_id,
            kind=ReasonKind.SAFETY,
            verdict=Verdict.REFUSE,
            severity=Severity.HIGH,
            message=f"{rule_id} fired",
            refutable_by=POLICY[rule_id],
        )
        for rule_id in rule_ids
    ]
    return combine(
        stamp=100.0,
        wall_time=time.time(),
        command_kind="twist",
        command_id="1",
        requester="cmd_vel_in",
        reasons=reasons,
    )


@dataclass
class OverrideWorld:
    """Operators, a keyring file and a verifier built on them."""

    directory: Path
    identities: dict[str, SigningIdentity] = field(default_factory=dict)
    decisions: dict[str, Decision] = field(default_factory=dict)
    keyring_path: Path = Path()
    nonce_path: Path = Path()

    def identity(self, name: str) -> SigningIdentity:
        return self.identities[name]

    def add_decision(self, decision: Decision) -> Decision:
        self.decisions[decision.decision_id] = decision
        return decision

    def keyring(self) -> Keyring:
        return load_keyring(self.keyring_path)

    def verifier(self, limits: VerifierLimits | None = None) -> OverrideVerifier:
        return OverrideVerifier(
            self.keyring(),
            NonceStore(self.nonce_path),
            refutable_by=POLICY.get,
            recent_decision=self.decisions.get,
            limits=limits,
        )


def make_world(directory: Path) -> OverrideWorld:
    """alice: operator, bob and carol: supervisors, mallory: a key revoked in the keyring."""
    world = OverrideWorld(directory=directory)
    roles = {
        "alice": Role.OPERATOR,
        "bob": Role.SUPERVISOR,
        "carol": Role.SUPERVISOR,
        "mallory": Role.SUPERVISOR,
    }
    for name, role in roles.items():
        world.identities[name] = SigningIdentity.generate(name, role)
    document = {
        "operators": [identity.operator_key().keyring_entry() for identity in world.identities.values()],
        "revoked": [world.identities["mallory"].key_id],
    }
    world.keyring_path = directory / "operators.yaml"
    world.keyring_path.write_text(yaml.safe_dump(document, sort_keys=False))
    world.nonce_path = directory / "nonces.sqlite3"
    return world
