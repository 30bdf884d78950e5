"""The audit trail: append-only records, each chained to the one before by SHA-256.

A record's hash covers its content and the previous record's hash, so editing,
deleting or reordering any record breaks the chain from that record on; `verify`
names the first record where it breaks.

A chain alone cannot tell that records were cut off its *end*: what is left is still a
valid chain. So every append also updates `audit_chain_head`, one row holding how many
records the trail has, the seq of the last and its hash, in the same transaction as
the record itself (both or neither commit). `verify` walks the chain and then checks it
ends where the head says: deleting the last record(s), truncating the table, or adding
a record at the end without going through `append`, all show as a mismatch.

What this proves and what it does not: the hashes are not keyed, so someone who can
write the database *and* recomputes every later hash and the head can rewrite history
undetected. Against that, keep the head outside the database's reach: `verify` prints
nothing secret, and `gogs-scim audit export` shipped to write-once storage (or the last
hash noted elsewhere) anchors the chain; any later rewrite then contradicts the copy.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, text, update

from gogs_scim.audit.redaction import redact
from gogs_scim.store.tables import audit_chain_head, audit_events

GENESIS_HASH = "0" * 64
_HEAD_ID = 1


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
    head = _head(conn)
    if head is None:
        # The first record (or a trail written before the head existed): start the
        # head from whatever the table holds.
        last = conn.execute(
            select(audit_events.c.seq, audit_events.c.hash)
            .order_by(audit_events.c.seq.desc())
            .limit(1)
        ).one_or_none()
        count = conn.execute(select(func.count()).select_from(audit_events)).scalar_one()
        conn.execute(
            insert(audit_chain_head).values(
                id=_HEAD_ID,
                records=count,
                last_seq=last.seq if last else None,
                last_hash=last.hash if last else GENESIS_HASH,
                updated_at=at,
            )
        )
        head = ChainHead(count, last.seq if last else None, last.hash if last else GENESIS_HASH)
    prev_hash = head.last_hash
    digest = record_hash(prev_hash, at, entry)
    result = conn.execute(
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
            hash=digest,
        )
    )
    key = result.inserted_primary_key
    seq = key[0] if key is not None else None
    conn.execute(
        update(audit_chain_head)
        .where(audit_chain_head.c.id == _HEAD_ID)
        .values(records=head.records + 1, last_seq=seq, last_hash=digest, updated_at=at)
    )


@dataclass(frozen=True)
class ChainHead:
    records: int
    last_seq: int | None
    last_hash: str


def _head(conn: Connection) -> ChainHead | None:
    row = conn.execute(
        select(audit_chain_head).where(audit_chain_head.c.id == _HEAD_ID)
    ).one_or_none()
    return None if row is None else ChainHead(row.records, row.last_seq, row.last_hash)


@dataclass(frozen=True)
class ChainBreak:
    seq: int
    reason: str


@dataclass(frozen=True)
class ChainReport:
    """What `check` found: how many records it read, and the first break if any."""

    records: int
    broken: ChainBreak | None
    last_hash: str


def iter_records(conn: Connection) -> Iterator[Any]:
    yield from conn.execute(select(audit_events).order_by(audit_events.c.seq))


def _entry(row: Any) -> AuditEntry:
    return AuditEntry(
        action=row.action,
        outcome=row.outcome,
        resource_type=row.resource_type,
        resource_id=row.resource_id,
        actor=row.actor,
        request_id=row.request_id,
        detail=row.detail,
    )


def check(conn: Connection) -> ChainReport:
    """Walk the whole chain, then compare where it ends with the head.

    Run it in one transaction with a stable snapshot (`snapshot`), or a record
    appended meanwhile would look like one added behind the head's back.
    """
    # Sequence numbers may have gaps (PostgreSQL does not reuse rolled-back ones), so
    # the chain of hashes, not the numbering, is what proves nothing was removed.
    prev_hash = GENESIS_HASH
    count = 0
    last_seq: int | None = None
    for row in iter_records(conn):
        if row.prev_hash != prev_hash:
            where = f"record {last_seq}" if last_seq is not None else "the start of the trail"
            return ChainReport(
                count,
                ChainBreak(
                    row.seq,
                    f"does not follow {where} (a record before it was deleted or moved)",
                ),
                prev_hash,
            )
        if record_hash(prev_hash, row.at, _entry(row)) != row.hash:
            return ChainReport(
                count, ChainBreak(row.seq, "content was changed after it was written"), prev_hash
            )
        prev_hash = row.hash
        last_seq = row.seq
        count += 1
    head = _head(conn)
    if head is None:
        if count:
            return ChainReport(
                count,
                ChainBreak(last_seq or 0, "the chain head is missing (audit_chain_head)"),
                prev_hash,
            )
        return ChainReport(0, None, prev_hash)
    if head.records != count or head.last_hash != prev_hash:
        if head.records > count or (head.last_seq or 0) > (last_seq or 0):
            ends = f"record {last_seq}" if last_seq is not None else "no record at all"
            missing = head.last_seq if head.last_seq is not None else 0
            return ChainReport(
                count,
                ChainBreak(
                    missing,
                    f"is missing: the chain ends at {ends}, but its head says "
                    f"{head.records} records ending at record {head.last_seq} "
                    "(records at the end were deleted)",
                ),
                prev_hash,
            )
        return ChainReport(
            count,
            ChainBreak(
                last_seq or 0,
                f"was not written through the audit trail: the head says {head.records} "
                f"records ending at record {head.last_seq}",
            ),
            prev_hash,
        )
    return ChainReport(count, None, prev_hash)


@contextmanager
def snapshot(engine: Engine) -> Iterator[Connection]:
    """A read transaction that sees one state of the trail throughout, for `check`.

    PostgreSQL needs REPEATABLE READ for that; a SQLite transaction is one already.
    """
    if engine.dialect.name == "postgresql":
        with (
            engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn,
            conn.begin(),
        ):
            yield conn
        return
    with engine.begin() as conn:
        yield conn


def verify(conn: Connection) -> ChainBreak | None:
    """The first record where the chain breaks, or None when it is whole."""
    return check(conn).broken
