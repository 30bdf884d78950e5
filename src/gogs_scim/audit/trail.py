"""The audit trail: append-only records, each chained to the one before by SHA-256.

A record's hash covers its content and the previous record's hash, so editing,
deleting or reordering any record breaks the chain from that record on; `verify`
names the first record where it breaks.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, insert, select, text

from gogs_scim.audit.redaction import redact
from gogs_scim.store.tables import audit_events

GENESIS_HASH = "0" * 64


@dataclass(frozen=True)
class AuditEntry:
    action: str
    outcome: str = "ok"
    resource_type: str | None = None
    resource_id: str | None = None
    actor: str | None = None
    request_id: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)


def _canonical_at(at: datetime) -> str:
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def record_hash(prev_hash: str, at: datetime, entry: AuditEntry) -> str:
    body = json.dumps(
        {
            "prev": prev_hash,
            "at": _canonical_at(at),
            "action": entry.action,
            "outcome": entry.outcome,
            "resource_type": entry.resource_type,
            "resource_id": entry.resource_id,
            "actor": entry.actor,
            "request_id": entry.request_id,
            "detail": entry.detail,
        },
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(body.encode()).hexdigest()


def _lock_chain(conn: Connection) -> None:
    # Two writers must not both chain onto the same predecessor. SQLite serialises
    # writers already (BEGIN IMMEDIATE); PostgreSQL needs a lock held to commit.
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(4242001)"))


def append(conn: Connection, entry: AuditEntry, now: datetime | None = None) -> None:
    """Add one record at the end of the chain (in the caller's transaction)."""
    entry = AuditEntry(
        action=entry.action,
        outcome=entry.outcome,
        resource_type=entry.resource_type,
        resource_id=entry.resource_id,
        actor=entry.actor,
        request_id=entry.request_id,
        detail=redact(dict(entry.detail)),
    )
    at = now or datetime.now(UTC)
    _lock_chain(conn)
    last = conn.execute(
        select(audit_events.c.hash).order_by(audit_events.c.seq.desc()).limit(1)
    ).scalar_one_or_none()
    prev_hash = last or GENESIS_HASH
    conn.execute(
        insert(audit_events).values(
            at=at,
            request_id=entry.request_id,
            actor=entry.actor,
            action=entry.action,
            resource_type=entry.resource_type,
            resource_id=entry.resource_id,
            outcome=entry.outcome,
            detail=dict(entry.detail),
            prev_hash=prev_hash,
            hash=record_hash(prev_hash, at, entry),
        )
    )


@dataclass(frozen=True)
class ChainBreak:
    seq: int
    reason: str


def iter_records(conn: Connection) -> Iterator[Any]:
    yield from conn.execute(select(audit_events).order_by(audit_events.c.seq))


def verify(conn: Connection) -> ChainBreak | None:
    """The first record where the chain breaks, or None when it is whole."""
    # Sequence numbers may have gaps (PostgreSQL does not reuse rolled-back ones), so
    # the chain of hashes, not the numbering, is what proves nothing was removed.
    prev_hash = GENESIS_HASH
    for row in iter_records(conn):
        if row.prev_hash != prev_hash:
            return ChainBreak(row.seq, "does not follow the record before it (deleted or moved)")
        entry = AuditEntry(
            action=row.action,
            outcome=row.outcome,
            resource_type=row.resource_type,
            resource_id=row.resource_id,
            actor=row.actor,
            request_id=row.request_id,
            detail=row.detail,
        )
        if record_hash(prev_hash, row.at, entry) != row.hash:
            return ChainBreak(row.seq, "content was changed after it was written")
        prev_hash = row.hash
    return None
