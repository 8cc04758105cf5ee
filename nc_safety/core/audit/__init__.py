"""Tamper-evident audit trail: a hash-chained, append-only SQLite file and its writer.

Record format and guarantees are described in docs/audit.md.
"""

from nc_safety.core.audit.record import (
    AUDIT_FORMAT,
    AUDIT_FORMAT_VERSION,
    STANDARD_KINDS,
    AuditError,
    AuditPayload,
    AuditRecord,
    derive_columns,
    genesis_hash,
    record_hash,
    validate_kind,
)
from nc_safety.core.audit.store import AuditQuery, AuditReader, AuditStore, PendingRecord
from nc_safety.core.audit.verify import VerifyResult, verify_file
from nc_safety.core.audit.writer import (
    AuditFailure,
    AuditWriter,
    FailureKind,
    FailurePolicy,
    WriterConfig,
    flush_on_signals,
)

__all__ = [
    "AUDIT_FORMAT",
    "AUDIT_FORMAT_VERSION",
    "STANDARD_KINDS",
    "AuditError",
    "AuditFailure",
    "AuditPayload",
    "AuditQuery",
    "AuditReader",
    "AuditRecord",
    "AuditStore",
    "AuditWriter",
    "FailureKind",
    "FailurePolicy",
    "PendingRecord",
    "VerifyResult",
    "WriterConfig",
    "derive_columns",
    "flush_on_signals",
    "genesis_hash",
    "record_hash",
    "validate_kind",
    "verify_file",
]
