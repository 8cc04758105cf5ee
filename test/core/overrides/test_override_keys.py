"""Keyring loading, malformed entries, private key files and their permissions."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest
import yaml

from nc_safety.core.overrides import OverrideError, Role, SigningIdentity, load_keyring
from nc_safety.core.overrides.keys import load_private_key, write_private_key


def entry(identity: SigningIdentity) -> dict[str, str]:
    return identity.operator_key().keyring_entry()


def write_keyring(path: Path, document: object) -> Path:
    path.write_text(yaml.safe_dump(document))
    return path


def test_keyring_loads_operators(tmp_path: Path) -> None:
    alice = SigningIdentity.generate("alice", Role.OPERATOR)
    keyring = load_keyring(
        write_keyring(tmp_path / "k.yaml", {"operators": [entry(alice)], "revoked": ["old-1"]})
    )
    key = keyring.get(alice.key_id)
    assert key is not None
    assert key.public_key == alice.public_key
    assert key.role is Role.OPERATOR
    assert keyring.is_revoked("old-1")


def test_keyring_bad_base64_names_entry(tmp_path: Path) -> None:
    alice = entry(SigningIdentity.generate("alice", Role.OPERATOR))
    alice["public_key"] = "not base64!"
    path = write_keyring(tmp_path / "k.yaml", {"operators": [alice]})
    with pytest.raises(OverrideError, match=rf"operators\[0\] \(key_id '{alice['key_id']}'\): public_key"):
        load_keyring(path)


def test_keyring_short_key_names_entry(tmp_path: Path) -> None:
    bob = entry(SigningIdentity.generate("bob", Role.SUPERVISOR))
    bob["public_key"] = base64.b64encode(b"x" * 16).decode()
    path = write_keyring(tmp_path / "k.yaml", {"operators": [bob]})
    with pytest.raises(OverrideError, match=r"operators\[0\].*decodes to 16 bytes, expected 32"):
        load_keyring(path)


def test_keyring_lists_every_bad_entry(tmp_path: Path) -> None:
    good = entry(SigningIdentity.generate("alice", Role.OPERATOR))
    bad_role = entry(SigningIdentity.generate("bob", Role.OPERATOR)) | {"role": "admin"}
    missing = {"operator_id": "carol", "key_id": "carol-1"}
    path = write_keyring(tmp_path / "k.yaml", {"operators": [good, bad_role, missing]})
    with pytest.raises(OverrideError, match=r"2 problem\(s\)") as raised:
        load_keyring(path)
    assert "operators[1]" in str(raised.value)
    assert "role 'admin'" in str(raised.value)
    assert "operators[2] (key_id 'carol-1'): missing field(s) public_key, role" in str(raised.value)


def test_keyring_duplicate_key_id_rejected(tmp_path: Path) -> None:
    alice = entry(SigningIdentity.generate("alice", Role.OPERATOR))
    other = entry(SigningIdentity.generate("alice", Role.OPERATOR)) | {"key_id": alice["key_id"]}
    path = write_keyring(tmp_path / "k.yaml", {"operators": [alice, other]})
    with pytest.raises(OverrideError, match=r"operators\[1\].*duplicate key_id"):
        load_keyring(path)


def test_keyring_unknown_field_rejected(tmp_path: Path) -> None:
    alice = entry(SigningIdentity.generate("alice", Role.OPERATOR)) | {"email": "a@example.org"}
    path = write_keyring(tmp_path / "k.yaml", {"operators": [alice]})
    with pytest.raises(OverrideError, match=r"unknown field\(s\) email"):
        load_keyring(path)


def test_keyring_invalid_yaml_rejected(tmp_path: Path) -> None:
    path = tmp_path / "k.yaml"
    path.write_text("operators: [\n")
    with pytest.raises(OverrideError, match=r"not valid YAML"):
        load_keyring(path)


def test_keyring_missing_file_rejected(tmp_path: Path) -> None:
    with pytest.raises(OverrideError, match=r"cannot read keyring .*missing\.yaml"):
        load_keyring(tmp_path / "missing.yaml")


def test_private_key_file_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "alice.key"
    write_private_key(SigningIdentity.generate("alice", Role.OPERATOR), path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_private_key_round_trips(tmp_path: Path) -> None:
    identity = SigningIdentity.generate("alice", Role.SUPERVISOR)
    path = tmp_path / "alice.key"
    write_private_key(identity, path)
    assert load_private_key(path) == identity


def test_private_key_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "alice.key"
    write_private_key(SigningIdentity.generate("alice", Role.OPERATOR), path)
    with pytest.raises(OverrideError, match=r"alice\.key already exists"):
        write_private_key(SigningIdentity.generate("alice", Role.OPERATOR), path)


def test_private_key_readable_by_others_rejected(tmp_path: Path) -> None:
    path = tmp_path / "alice.key"
    write_private_key(SigningIdentity.generate("alice", Role.OPERATOR), path)
    os.chmod(path, 0o644)
    with pytest.raises(OverrideError, match=r"mode 0644, readable by others; run `chmod 600"):
        load_private_key(path)


def test_identity_repr_hides_seed() -> None:
    identity = SigningIdentity.generate("alice", Role.OPERATOR)
    assert base64.b64encode(identity.seed).decode() not in repr(identity)
    assert "seed" not in repr(identity)


def test_invalid_operator_id_rejected() -> None:
    with pytest.raises(OverrideError, match=r"operator id 'al ice' must match"):
        SigningIdentity.generate("al ice", Role.OPERATOR)
