"""Operator keys: Ed25519 key pairs, the keyring of public keys and private key files.

The keyring (`config/operators.yaml`) lists who may sign requests:

    operators:
      - operator_id: alice
        role: operator            # operator | supervisor
        key_id: alice-3f9c2a7d41b0e865
        public_key: <base64 of the 32-byte Ed25519 public key>
    revoked:                      # key ids that no longer verify
      - bob-0c1d2e3f40516273

A private key file is JSON with the operator id, role, key id and the base64 seed; it
must not be readable by group or others (mode 0600), like an SSH private key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import yaml
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from nc_safety.core.overrides.errors import OverrideError

IDENTIFIER_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
"""Operator ids and key ids: 1 to 64 characters, letters, digits and `_ . : -`."""

PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64
PRIVATE_KEY_FORMAT = "nc_safety/operator_key"
KEYRING_FIELDS = frozenset({"operator_id", "role", "key_id", "public_key"})


class Role(str, Enum):
    """What an operator may override; a supervisor may do everything an operator may."""

    OPERATOR = "operator"
    SUPERVISOR = "supervisor"


def key_fingerprint(public_key: bytes) -> str:
    """Return the first 16 hex digits of the SHA-256 of a raw public key."""
    return hashlib.sha256(public_key).hexdigest()[:16]


def encode_base64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def decode_base64(text: str, *, expected_bytes: int, what: str) -> bytes:
    """Decode strict base64 of exactly `expected_bytes` bytes; raise OverrideError otherwise."""
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as error:
        raise OverrideError(f"{what} {text[:24]!r} is not valid base64: {error}") from error
    if len(data) != expected_bytes:
        raise OverrideError(f"{what} decodes to {len(data)} bytes, expected {expected_bytes}")
    return data


@dataclass(frozen=True, slots=True)
class OperatorKey:
    """One public key of the keyring and the operator it belongs to."""

    key_id: str
    operator_id: str
    role: Role
    public_key: bytes
    """Raw 32-byte Ed25519 public key."""

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Return whether `signature` is this key's Ed25519 signature over `message`."""
        try:
            VerifyKey(self.public_key).verify(message, signature)
        except (BadSignatureError, ValueError):
            return False
        return True

    def keyring_entry(self) -> dict[str, str]:
        """The mapping to append under `operators:` in the keyring file."""
        return {
            "operator_id": self.operator_id,
            "role": self.role.value,
            "key_id": self.key_id,
            "public_key": encode_base64(self.public_key),
        }


@dataclass(frozen=True, slots=True)
class Keyring:
    """Public keys that may sign requests, and the key ids that were revoked."""

    keys: Mapping[str, OperatorKey] = field(default_factory=dict)
    """Key id -> key."""
    revoked: frozenset[str] = frozenset()
    source: str = "keyring"
    """File the keyring came from, for messages."""

    def get(self, key_id: str) -> OperatorKey | None:
        return self.keys.get(key_id)

    def is_revoked(self, key_id: str) -> bool:
        return key_id in self.revoked


def _parse_entry(index: int, entry: object, problems: list[str]) -> OperatorKey | None:
    """Parse one `operators[index]` entry, appending every problem found to `problems`."""
    if not isinstance(entry, Mapping):
        problems.append(f"operators[{index}]: expected a mapping, got {type(entry).__name__} {entry!r}")
        return None
    key_id = entry.get("key_id")
    label = f"operators[{index}] (key_id {key_id!r})"
    missing = sorted(KEYRING_FIELDS - set(entry))
    unknown = sorted(str(name) for name in set(entry) - KEYRING_FIELDS)
    if missing:
        problems.append(f"{label}: missing field(s) {', '.join(missing)}")
    if unknown:
        problems.append(f"{label}: unknown field(s) {', '.join(unknown)}; expected {sorted(KEYRING_FIELDS)}")
    if missing:
        return None
    entry_problems = len(problems)
    operator_id = entry["operator_id"]
    if not isinstance(operator_id, str) or not IDENTIFIER_PATTERN.match(operator_id):
        problems.append(f"{label}: operator_id {operator_id!r} must match {IDENTIFIER_PATTERN.pattern}")
    if not isinstance(key_id, str) or not IDENTIFIER_PATTERN.match(key_id):
        problems.append(f"{label}: key_id {key_id!r} must match {IDENTIFIER_PATTERN.pattern}")
    role_text = entry["role"]
    if role_text not in {role.value for role in Role}:
        problems.append(f"{label}: role {role_text!r} must be one of {[role.value for role in Role]}")
    public_key = b""
    public_text = entry["public_key"]
    if not isinstance(public_text, str):
        problems.append(f"{label}: public_key must be a base64 string, got {public_text!r}")
    else:
        try:
            public_key = decode_base64(public_text, expected_bytes=PUBLIC_KEY_BYTES, what="public_key")
        except OverrideError as error:
            problems.append(f"{label}: {error}")
    if len(problems) > entry_problems:
        return None
    return OperatorKey(
        key_id=str(key_id), operator_id=str(operator_id), role=Role(role_text), public_key=public_key
    )


def parse_keyring(document: object, *, source: str = "keyring") -> Keyring:
    """Build a keyring from a parsed YAML document.

    Raises OverrideError listing every malformed entry by index and key id, so an operator
    can fix the file in one pass.
    """
    if not isinstance(document, Mapping):
        raise OverrideError(
            f"invalid keyring {source}: expected a mapping with `operators:`, got {document!r}"
        )
    problems: list[str] = []
    unknown = sorted(str(name) for name in set(document) - {"operators", "revoked"})
    if unknown:
        problems.append(f"unknown top-level field(s) {', '.join(unknown)}; expected operators, revoked")
    entries = document.get("operators")
    if not isinstance(entries, list):
        problems.append(f"operators: expected a list of keys, got {entries!r}")
        entries = []
    keys: dict[str, OperatorKey] = {}
    seen_public: dict[bytes, str] = {}
    for index, entry in enumerate(entries):
        key = _parse_entry(index, entry, problems)
        if key is None:
            continue
        if key.key_id in keys:
            problems.append(f"operators[{index}] (key_id {key.key_id!r}): duplicate key_id")
            continue
        if key.public_key in seen_public:
            problems.append(
                f"operators[{index}] (key_id {key.key_id!r}): "
                f"same public key as key_id {seen_public[key.public_key]!r}"
            )
            continue
        keys[key.key_id] = key
        seen_public[key.public_key] = key.key_id
    revoked_list = document.get("revoked") or []
    if not isinstance(revoked_list, list):
        problems.append(f"revoked: expected a list of key ids, got {revoked_list!r}")
        revoked_list = []
    for index, revoked in enumerate(revoked_list):
        if not isinstance(revoked, str) or not IDENTIFIER_PATTERN.match(revoked):
            problems.append(f"revoked[{index}]: {revoked!r} is not a key id")
    if problems:
        raise OverrideError(f"invalid keyring {source}", problems=problems)
    return Keyring(keys=keys, revoked=frozenset(str(item) for item in revoked_list), source=source)


def load_keyring(path: str | Path) -> Keyring:
    """Read and validate a keyring YAML file; raise OverrideError naming the bad entries."""
    keyring_path = Path(path)
    try:
        text = keyring_path.read_text(encoding="utf-8")
    except OSError as error:
        raise OverrideError(f"cannot read keyring {keyring_path}: {error.strerror}") from error
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise OverrideError(f"invalid keyring {keyring_path}: not valid YAML: {error}") from error
    return parse_keyring(document, source=str(keyring_path))


@dataclass(frozen=True, slots=True)
class SigningIdentity:
    """An operator's private key with the identity the keyring knows it by."""

    operator_id: str
    role: Role
    key_id: str
    seed: bytes = field(repr=False)
    """Raw 32-byte Ed25519 seed: the secret. Never printed."""

    @classmethod
    def generate(cls, operator_id: str, role: Role) -> SigningIdentity:
        """Create a fresh key pair; the key id is the operator id plus the key's fingerprint."""
        if not IDENTIFIER_PATTERN.match(operator_id):
            raise OverrideError(f"operator id {operator_id!r} must match {IDENTIFIER_PATTERN.pattern}")
        signing_key = SigningKey.generate()
        public_key = bytes(signing_key.verify_key)
        key_id = f"{operator_id}-{key_fingerprint(public_key)}"
        return cls(operator_id=operator_id, role=role, key_id=key_id, seed=bytes(signing_key))

    @property
    def public_key(self) -> bytes:
        return bytes(SigningKey(self.seed).verify_key)

    def sign(self, message: bytes) -> bytes:
        """Return the 64-byte Ed25519 signature over `message`."""
        return SigningKey(self.seed).sign(message).signature

    def operator_key(self) -> OperatorKey:
        return OperatorKey(
            key_id=self.key_id, operator_id=self.operator_id, role=self.role, public_key=self.public_key
        )

    def to_file_json(self) -> dict[str, str]:
        return {
            "format": PRIVATE_KEY_FORMAT,
            "operator_id": self.operator_id,
            "role": self.role.value,
            "key_id": self.key_id,
            "seed": encode_base64(self.seed),
        }


def write_private_key(identity: SigningIdentity, path: str | Path) -> None:
    """Write the private key file with mode 0600; never overwrites an existing file.

    The file is created with O_EXCL and mode 0600 in one call, so the secret is never
    readable by others, even for an instant.
    """
    key_path = Path(path)
    text = json.dumps(identity.to_file_json(), indent=2) + "\n"
    try:
        descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as error:
        raise OverrideError(
            f"key file {key_path} already exists; choose another --out or remove it"
        ) from error
    except OSError as error:
        raise OverrideError(f"cannot create key file {key_path}: {error.strerror}") from error
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    # The umask can only remove bits from 0600, but a pre-set ACL or odd umask should not matter.
    os.chmod(key_path, 0o600)


def load_private_key(path: str | Path) -> SigningIdentity:
    """Read a private key file; raise OverrideError when it is readable by group or others."""
    key_path = Path(path)
    try:
        mode = stat.S_IMODE(key_path.stat().st_mode)
        text = key_path.read_text(encoding="utf-8")
    except OSError as error:
        raise OverrideError(f"cannot read key file {key_path}: {error.strerror}") from error
    if mode & 0o077:
        raise OverrideError(
            f"key file {key_path} has mode {mode:04o}, readable by others; run `chmod 600 {key_path}`"
        )
    try:
        document: Any = json.loads(text)
    except json.JSONDecodeError as error:
        raise OverrideError(f"key file {key_path} is not valid JSON: {error}") from error
    if not isinstance(document, dict) or document.get("format") != PRIVATE_KEY_FORMAT:
        raise OverrideError(
            f"key file {key_path} is not an nc_safety operator key (format {PRIVATE_KEY_FORMAT!r})"
        )
    try:
        role = Role(document["role"])
        seed = decode_base64(str(document["seed"]), expected_bytes=32, what="seed")
        return SigningIdentity(
            operator_id=str(document["operator_id"]), role=role, key_id=str(document["key_id"]), seed=seed
        )
    except (KeyError, ValueError) as error:
        raise OverrideError(f"key file {key_path} is missing or has an invalid field: {error}") from error
