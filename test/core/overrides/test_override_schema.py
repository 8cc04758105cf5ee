"""Requests built by the signer match docs/schemas/override.schema.json."""

from __future__ import annotations

import json
import time
from pathlib import Path

import jsonschema
import pytest

from nc_safety.core.overrides import Constraints, RequestKind, Role, SigningIdentity, new_request

SCHEMA_PATH = Path(__file__).resolve().parents[3] / "docs" / "schemas" / "override.schema.json"


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize(
    ("kind", "fields"),
    [
        (RequestKind.OVERRIDE, {"decision_id": "abc", "constraints": Constraints(max_linear_speed=0.1)}),
        (RequestKind.OVERRIDE, {"rule_ids": ["motion.obstacle.stop"]}),
        (RequestKind.RESET, {"targets": ["estop.software", "estop.board"]}),
        (RequestKind.RISK_CLEAR, {"targets": ["cmd_vel_in"]}),
        (RequestKind.REVOKE, {"targets": ["0123abcd"]}),
    ],
)
def test_signed_request_matches_schema(
    validator: jsonschema.Draft202012Validator, kind: RequestKind, fields: dict[str, object]
) -> None:
    identity = SigningIdentity.generate("alice", Role.SUPERVISOR)
    request = new_request(kind, identity, now=time.time(), lifetime_s=30.0, reason="checked", **fields)  # type: ignore[arg-type]
    validator.validate(request.to_json())


def test_schema_rejects_override_with_targets(validator: jsonschema.Draft202012Validator) -> None:
    identity = SigningIdentity.generate("alice", Role.OPERATOR)
    document = new_request(
        RequestKind.OVERRIDE, identity, now=time.time(), lifetime_s=30.0, reason="r", rule_ids=["motion.x"]
    ).to_json()
    document["targets"] = ["estop.software"]
    with pytest.raises(jsonschema.ValidationError, match=r"should not be valid"):
        validator.validate(document)
