"""Authenticated operator overrides: keys, signed requests, nonce store and the verifier.

A request becomes an `OverrideGrant` (or a verified reset, risk clear or revoke) only
after `OverrideVerifier.verify` has run every check in a fixed order; each failed check
has its own `RejectCode`.
"""

from nc_safety.core.overrides.errors import OverrideError
from nc_safety.core.overrides.keys import Keyring, OperatorKey, Role, SigningIdentity, load_keyring
from nc_safety.core.overrides.nonces import NonceStore
from nc_safety.core.overrides.request import Constraints, OverrideRequest, RequestKind, new_request
from nc_safety.core.overrides.verifier import (
    Acceptance,
    OverrideVerifier,
    RejectCode,
    Rejection,
    VerifierLimits,
)

__all__ = [
    "Acceptance",
    "Constraints",
    "Keyring",
    "NonceStore",
    "OperatorKey",
    "OverrideError",
    "OverrideRequest",
    "OverrideVerifier",
    "RejectCode",
    "Rejection",
    "RequestKind",
    "Role",
    "SigningIdentity",
    "VerifierLimits",
    "load_keyring",
    "new_request",
]
