"""Every rejection case of the verifier, each with its own reason code, on real keys."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import replace
from pathlib import Path

import pytest
from override_helpers import OverrideWorld, make_world, refusal

from nc_safety.core.overrides import (
    Acceptance,
    Constraints,
    OverrideError,
    OverrideVerifier,
    RejectCode,
    Rejection,
    RequestKind,
    SigningIdentity,
    VerifierLimits,
    new_request,
)
from nc_safety.core.overrides.request import OverrideRequest
from nc_safety.core.verdict import RefutableBy

ROS_NOW = 1000.0


@pytest.fixture
def world(tmp_path: Path) -> OverrideWorld:
    return make_world(tmp_path)


def override(
    world: OverrideWorld,
    signer: str = "alice",
    *,
    rule_ids: tuple[str, ...] = ("motion.obstacle.braking",),
    decision_id: str | None = None,
    now: float | None = None,
    lifetime_s: float = 30.0,
    reason: str = "pallet blocks the aisle, driving past at walking speed",
) -> OverrideRequest:
    return new_request(
        RequestKind.OVERRIDE,
        world.identity(signer),
        now=time.time() if now is None else now,
        lifetime_s=lifetime_s,
        reason=reason,
        rule_ids=rule_ids,
        decision_id=decision_id,
    )


def wire(request: OverrideRequest) -> str:
    return json.dumps(request.to_json())


def verify(
    verifier: OverrideVerifier, raw: str | bytes, wall_now: float | None = None
) -> Acceptance | Rejection:
    return verifier.verify(raw, wall_now=time.time() if wall_now is None else wall_now, ros_now=ROS_NOW)


def rejection_code(outcome: Acceptance | Rejection) -> RejectCode | None:
    return outcome.code if isinstance(outcome, Rejection) else None


def test_valid_override_grants_rule(world: OverrideWorld) -> None:
    verifier = world.verifier()
    outcome = verify(verifier, wire(override(world)))
    assert isinstance(outcome, Acceptance), outcome
    assert outcome.grant is not None
    assert outcome.grant.rule_ids == frozenset({"motion.obstacle.braking"})
    assert outcome.grant.operator_id == "alice"
    assert outcome.grant.issued_at == ROS_NOW
    assert outcome.grant.expires_at == pytest.approx(ROS_NOW + 30.0, abs=0.5)


def test_grant_keeps_speed_constraints(world: OverrideWorld) -> None:
    request = new_request(
        RequestKind.OVERRIDE,
        world.identity("alice"),
        now=time.time(),
        lifetime_s=20.0,
        reason="slow pass",
        rule_ids=("motion.obstacle.braking",),
        constraints=Constraints(max_linear_speed=0.1, max_angular_speed=0.3),
    )
    outcome = verify(world.verifier(), wire(request))
    assert isinstance(outcome, Acceptance) and outcome.grant is not None, outcome
    assert outcome.grant.max_linear_speed == 0.1
    assert outcome.grant.max_angular_speed == 0.3


def test_forged_signature_rejected(world: OverrideWorld) -> None:
    document = override(world).to_json()
    forged = SigningIdentity.generate("alice", world.identity("alice").role).sign(b"anything")
    document["signatures"] = [
        {"key_id": world.identity("alice").key_id, "signature": base64.b64encode(forged).decode()}
    ]
    assert rejection_code(verify(world.verifier(), json.dumps(document))) is RejectCode.BAD_SIGNATURE


def test_unknown_key_rejected(world: OverrideWorld) -> None:
    stranger = SigningIdentity.generate("alice", world.identity("alice").role)
    request = new_request(
        RequestKind.OVERRIDE,
        stranger,
        now=time.time(),
        lifetime_s=30,
        reason="r",
        rule_ids=("motion.obstacle.braking",),
    )
    assert rejection_code(verify(world.verifier(), wire(request))) is RejectCode.UNKNOWN_KEY


def test_key_of_other_operator_rejected(world: OverrideWorld) -> None:
    document = override(world, "bob").to_json()
    document["operator_id"] = "alice"
    assert rejection_code(verify(world.verifier(), json.dumps(document))) is RejectCode.KEY_OPERATOR_MISMATCH


def test_revoked_key_rejected(world: OverrideWorld) -> None:
    assert (
        rejection_code(verify(world.verifier(), wire(override(world, "mallory")))) is RejectCode.REVOKED_KEY
    )


def test_replayed_nonce_rejected(world: OverrideWorld) -> None:
    verifier = world.verifier()
    raw = wire(override(world))
    assert isinstance(verify(verifier, raw), Acceptance)
    assert rejection_code(verify(verifier, raw)) is RejectCode.NONCE_REUSED


def test_replay_after_restart_rejected(world: OverrideWorld) -> None:
    raw = wire(override(world))
    first = world.verifier()
    assert isinstance(verify(first, raw), Acceptance)
    first.nonces.close()
    restarted = world.verifier()
    assert rejection_code(verify(restarted, raw)) is RejectCode.NONCE_REUSED


def test_nonce_reused_with_new_request_id(world: OverrideWorld) -> None:
    verifier = world.verifier()
    request = override(world)
    assert isinstance(verify(verifier, wire(request)), Acceptance)
    again = replace(request, request_id="another-id", signatures=(), signed_bytes=b"").signed_by(
        world.identity("alice")
    )
    assert rejection_code(verify(verifier, wire(again))) is RejectCode.NONCE_REUSED


def test_expired_request_rejected(world: OverrideWorld) -> None:
    request = override(world, now=time.time() - 60.0, lifetime_s=30.0)
    assert rejection_code(verify(world.verifier(), wire(request))) is RejectCode.EXPIRED


def test_not_yet_valid_rejected(world: OverrideWorld) -> None:
    request = override(world, now=time.time() + 60.0)
    assert rejection_code(verify(world.verifier(), wire(request))) is RejectCode.NOT_YET_VALID


def test_issue_time_within_skew_accepted(world: OverrideWorld) -> None:
    request = override(world, now=time.time() + 2.0)
    outcome = verify(world.verifier(VerifierLimits(clock_skew_s=5.0)), wire(request))
    assert isinstance(outcome, Acceptance), outcome


def test_lifetime_beyond_maximum_rejected(world: OverrideWorld) -> None:
    request = override(world, lifetime_s=120.0)
    outcome = verify(world.verifier(VerifierLimits(max_lifetime_s=60.0)), wire(request))
    assert rejection_code(outcome) is RejectCode.LIFETIME_TOO_LONG


def test_wrong_decision_id_rejected(world: OverrideWorld) -> None:
    world.add_decision(refusal("motion.obstacle.braking"))
    request = override(world, rule_ids=(), decision_id="0123456789abcdef")
    assert rejection_code(verify(world.verifier(), wire(request))) is RejectCode.UNKNOWN_DECISION


def test_decision_id_grants_its_rules(world: OverrideWorld) -> None:
    decision = world.add_decision(refusal("motion.obstacle.braking", "motion.people.separation"))
    outcome = verify(world.verifier(), wire(override(world, rule_ids=(), decision_id=decision.decision_id)))
    assert isinstance(outcome, Acceptance) and outcome.grant is not None, outcome
    assert outcome.grant.rule_ids == frozenset({"motion.obstacle.braking"})
    assert outcome.not_waived == ("motion.people.separation",)
    assert outcome.grant.decision_id == decision.decision_id


def test_rule_outside_decision_rejected(world: OverrideWorld) -> None:
    decision = world.add_decision(refusal("motion.obstacle.braking"))
    request = override(world, "bob", rule_ids=("motion.limit.linear_x",), decision_id=decision.decision_id)
    assert rejection_code(verify(world.verifier(), wire(request))) is RejectCode.RULE_NOT_IN_DECISION


def test_hard_rule_rejected(world: OverrideWorld) -> None:
    request = override(world, "bob", rule_ids=("motion.people.separation",))
    assert rejection_code(verify(world.verifier(), wire(request))) is RejectCode.HARD_RULE


def test_decision_of_hard_rules_rejected(world: OverrideWorld) -> None:
    decision = world.add_decision(refusal("motion.non_finite", "motion.people.separation"))
    request = override(world, "bob", rule_ids=(), decision_id=decision.decision_id)
    assert rejection_code(verify(world.verifier(), wire(request))) is RejectCode.HARD_RULE


def test_unknown_rule_rejected(world: OverrideWorld) -> None:
    request = override(world, rule_ids=("motion.no_such_rule",))
    assert rejection_code(verify(world.verifier(), wire(request))) is RejectCode.UNKNOWN_RULE


def test_missing_reason_rejected(world: OverrideWorld) -> None:
    document = override(world).to_json()
    del document["reason"]
    assert rejection_code(verify(world.verifier(), json.dumps(document))) is RejectCode.MISSING_REASON


def test_blank_reason_rejected(world: OverrideWorld) -> None:
    request = override(world, reason="   ")
    assert rejection_code(verify(world.verifier(), wire(request))) is RejectCode.MISSING_REASON


def test_oversized_request_rejected(world: OverrideWorld) -> None:
    request = override(world, reason="x" * 400)
    outcome = verify(world.verifier(VerifierLimits(max_request_bytes=512)), wire(request))
    assert rejection_code(outcome) is RejectCode.TOO_LARGE


def test_oversized_garbage_rejected_before_parsing(world: OverrideWorld) -> None:
    outcome = verify(world.verifier(VerifierLimits(max_request_bytes=256)), b"{" * 300)
    assert rejection_code(outcome) is RejectCode.TOO_LARGE


@pytest.mark.parametrize(
    "raw",
    ['{"kind": "override",', "not json", b"\xff\xfe{}", '{"a": NaN}', '{"a": 1, "a": 2}'],
    ids=["truncated", "text", "not-utf8", "nan", "duplicate-field"],
)
def test_malformed_json_rejected(world: OverrideWorld, raw: str | bytes) -> None:
    assert rejection_code(verify(world.verifier(), raw)) is RejectCode.MALFORMED_JSON


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("kind", "launch"),
        ("nonce", "short"),
        ("issued_at", "yesterday"),
        ("expires_at", True),
        ("extra", 1),
        ("signatures", []),
        ("targets", ["estop.software"]),
    ],
)
def test_invalid_shape_rejected(world: OverrideWorld, field: str, value: object) -> None:
    document = override(world).to_json()
    document[field] = value  # type: ignore[assignment]
    assert rejection_code(verify(world.verifier(), json.dumps(document))) is RejectCode.INVALID_SHAPE


def test_json_array_rejected_as_shape(world: OverrideWorld) -> None:
    assert rejection_code(verify(world.verifier(), "[1, 2]")) is RejectCode.INVALID_SHAPE


def test_operator_cannot_override_supervisor_rule(world: OverrideWorld) -> None:
    request = override(world, "alice", rule_ids=("motion.limit.linear_x",))
    assert rejection_code(verify(world.verifier(), wire(request))) is RejectCode.ROLE_NOT_ALLOWED


def test_supervisor_overrides_supervisor_rule(world: OverrideWorld) -> None:
    request = override(world, "bob", rule_ids=("motion.limit.linear_x",))
    assert isinstance(verify(world.verifier(), wire(request)), Acceptance)


def test_two_supervisors_accepted(world: OverrideWorld) -> None:
    request = override(world, "bob", rule_ids=("motion.geofence.keep_out",)).signed_by(
        world.identity("carol")
    )
    outcome = verify(world.verifier(), wire(request))
    assert isinstance(outcome, Acceptance), outcome
    assert [key.operator_id for key in outcome.signers] == ["bob", "carol"]


def test_two_supervisors_same_person_rejected(world: OverrideWorld) -> None:
    request = override(world, "bob", rule_ids=("motion.geofence.keep_out",)).signed_by(world.identity("bob"))
    assert rejection_code(verify(world.verifier(), wire(request))) is RejectCode.DUPLICATE_SIGNER


def test_two_supervisors_second_key_same_person_rejected(world: OverrideWorld) -> None:
    second_key = SigningIdentity.generate("bob", world.identity("bob").role)
    document = {
        "operators": [
            *(identity.operator_key().keyring_entry() for identity in world.identities.values()),
            second_key.operator_key().keyring_entry(),
        ]
    }
    world.keyring_path.write_text(json.dumps(document))
    request = override(world, "bob", rule_ids=("motion.geofence.keep_out",)).signed_by(second_key)
    assert rejection_code(verify(world.verifier(), wire(request))) is RejectCode.DUPLICATE_SIGNER


def test_two_supervisors_single_signature_rejected(world: OverrideWorld) -> None:
    request = override(world, "bob", rule_ids=("motion.geofence.keep_out",))
    assert rejection_code(verify(world.verifier(), wire(request))) is RejectCode.SECOND_SUPERVISOR_MISSING


def test_two_supervisors_cosigned_by_operator_rejected(world: OverrideWorld) -> None:
    request = override(world, "bob", rule_ids=("motion.geofence.keep_out",)).signed_by(
        world.identity("alice")
    )
    assert rejection_code(verify(world.verifier(), wire(request))) is RejectCode.SECOND_SUPERVISOR_MISSING


def test_forged_cosignature_rejected(world: OverrideWorld) -> None:
    request = override(world, "bob", rule_ids=("motion.geofence.keep_out",)).signed_by(
        world.identity("carol")
    )
    document = request.to_json()
    signatures = document["signatures"]
    assert isinstance(signatures, list)
    signatures[1] = {"key_id": world.identity("carol").key_id, "signature": signatures[0]["signature"]}  # type: ignore[index]
    assert rejection_code(verify(world.verifier(), json.dumps(document))) is RejectCode.BAD_SIGNATURE


def test_rate_limit_per_operator(world: OverrideWorld) -> None:
    verifier = world.verifier(VerifierLimits(rate_limit_count=3, rate_limit_window_s=60.0))
    now = time.time()
    outcomes = [verify(verifier, wire(override(world, now=now)), wall_now=now) for _ in range(4)]
    assert all(isinstance(outcome, Acceptance) for outcome in outcomes[:3])
    assert rejection_code(outcomes[3]) is RejectCode.RATE_LIMITED


def test_rate_limit_leaves_other_operators(world: OverrideWorld) -> None:
    verifier = world.verifier(VerifierLimits(rate_limit_count=1, rate_limit_window_s=60.0))
    now = time.time()
    assert isinstance(verify(verifier, wire(override(world, "alice", now=now)), wall_now=now), Acceptance)
    assert isinstance(verify(verifier, wire(override(world, "bob", now=now)), wall_now=now), Acceptance)


def test_rate_limit_window_slides(world: OverrideWorld) -> None:
    verifier = world.verifier(VerifierLimits(rate_limit_count=1, rate_limit_window_s=10.0))
    now = time.time()
    assert isinstance(verify(verifier, wire(override(world, now=now)), wall_now=now), Acceptance)
    later = now + 11.0
    assert isinstance(verify(verifier, wire(override(world, now=later)), wall_now=later), Acceptance)


def test_flipped_byte_in_any_field_breaks_signature(world: OverrideWorld) -> None:
    request = new_request(
        RequestKind.OVERRIDE,
        world.identity("alice"),
        now=time.time(),
        lifetime_s=30.0,
        reason="pass the pallet",
        rule_ids=("motion.obstacle.braking",),
        decision_id="abc123",
        constraints=Constraints(max_linear_speed=0.2),
    )
    key = world.identity("alice").operator_key()
    signature = request.signatures[0].signature
    for index in range(len(request.signed_bytes)):
        for bit in (0x01, 0x80):
            changed = bytearray(request.signed_bytes)
            changed[index] ^= bit
            assert not key.verify(bytes(changed), signature), f"byte {index} bit {bit:#x}"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("request_id", "0" * 32),
        ("issued_at", 1.0),
        ("expires_at", 9e9),
        ("nonce", "f" * 32),
        ("reason", "pass the pallet!"),
        ("rule_ids", ["motion.obstacle.brakinh"]),
        ("decision_id", "abc124"),
        ("constraints", {"max_linear_speed": 0.3}),
        ("kind", "reset"),
        ("key_id", "alice-0000000000000000"),
    ],
)
def test_changed_field_fails_verification(world: OverrideWorld, field: str, value: object) -> None:
    document = new_request(
        RequestKind.OVERRIDE,
        world.identity("alice"),
        now=time.time(),
        lifetime_s=30.0,
        reason="pass the pallet",
        rule_ids=("motion.obstacle.braking",),
        decision_id="abc123",
        constraints=Constraints(max_linear_speed=0.2),
    ).to_json()
    document[field] = value  # type: ignore[assignment]
    outcome = verify(world.verifier(), json.dumps(document))
    assert isinstance(outcome, Rejection), outcome
    assert outcome.code in {RejectCode.BAD_SIGNATURE, RejectCode.INVALID_SHAPE, RejectCode.UNKNOWN_KEY}


def test_nonce_used_even_when_role_fails(world: OverrideWorld) -> None:
    verifier = world.verifier()
    raw = wire(override(world, "alice", rule_ids=("motion.limit.linear_x",)))
    assert rejection_code(verify(verifier, raw)) is RejectCode.ROLE_NOT_ALLOWED
    assert rejection_code(verify(verifier, raw)) is RejectCode.NONCE_REUSED


def test_reset_request_verified(world: OverrideWorld) -> None:
    request = new_request(
        RequestKind.RESET,
        world.identity("alice"),
        now=time.time(),
        lifetime_s=10,
        reason="area clear",
        targets=["estop.software"],
    )
    outcome = verify(world.verifier(), wire(request))
    assert isinstance(outcome, Acceptance), outcome
    assert outcome.grant is None


def test_reset_unknown_target_rejected(world: OverrideWorld) -> None:
    request = new_request(
        RequestKind.RESET,
        world.identity("alice"),
        now=time.time(),
        lifetime_s=10,
        reason="r",
        targets=["estop.all"],
    )
    assert rejection_code(verify(world.verifier(), wire(request))) is RejectCode.INVALID_SHAPE


def test_risk_clear_needs_supervisor(world: OverrideWorld) -> None:
    request = new_request(
        RequestKind.RISK_CLEAR,
        world.identity("alice"),
        now=time.time(),
        lifetime_s=10,
        reason="r",
        targets=["cmd_vel_in"],
    )
    assert rejection_code(verify(world.verifier(), wire(request))) is RejectCode.ROLE_NOT_ALLOWED


def test_risk_clear_by_supervisor_verified(world: OverrideWorld) -> None:
    request = new_request(
        RequestKind.RISK_CLEAR,
        world.identity("bob"),
        now=time.time(),
        lifetime_s=10,
        reason="r",
        targets=["cmd_vel_in"],
    )
    assert isinstance(verify(world.verifier(), wire(request)), Acceptance)


def test_keyring_replacement_revokes_at_once(world: OverrideWorld) -> None:
    verifier = world.verifier()
    document = json.loads(
        json.dumps({"operators": [i.operator_key().keyring_entry() for i in world.identities.values()]})
    )
    document["revoked"] = [world.identity("alice").key_id]
    world.keyring_path.write_text(json.dumps(document))
    verifier.replace_keyring(world.keyring())
    assert rejection_code(verify(verifier, wire(override(world)))) is RejectCode.REVOKED_KEY


def test_limits_reject_invalid_values() -> None:
    with pytest.raises(OverrideError, match=r"clock_skew_s -1\.0 must be in \[0, 300\] s"):
        VerifierLimits(clock_skew_s=-1.0)


def test_limits_list_every_problem() -> None:
    with pytest.raises(OverrideError, match=r"2 problem\(s\)"):
        VerifierLimits(rate_limit_count=0, max_request_bytes=10)


def test_elevated_requester_needs_supervisor(world: OverrideWorld) -> None:
    decision = world.add_decision(refusal("motion.obstacle.braking"))
    verifier = OverrideVerifier(
        world.keyring(),
        world.verifier().nonces,
        refutable_by=lambda rule_id: RefutableBy.OPERATOR if rule_id == "motion.obstacle.braking" else None,
        recent_decision=world.decisions.get,
        requester_elevated=lambda requester: requester == decision.requester,
    )
    by_operator = verify(verifier, wire(override(world, "alice", decision_id=decision.decision_id)))
    by_supervisor = verify(verifier, wire(override(world, "bob", decision_id=decision.decision_id)))
    assert rejection_code(by_operator) is RejectCode.ROLE_NOT_ALLOWED
    assert isinstance(by_supervisor, Acceptance)
