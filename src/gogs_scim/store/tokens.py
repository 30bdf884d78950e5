"""SCIM bearer tokens in the store: only digests, never a secret.

A row is one secret. The name's current secret has `current_name` set; a rotation
marks the previous row superseded (with an expiry at the end of its grace period) and
inserts a new current row; a revocation stamps `revoked_at`. Rows are kept for the
record; `usable` is what the API accepts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from gogs_scim.store.tables import scim_tokens


class DuplicateTokenName(Exception):
    """The name already has a current (unrevoked) token."""


@dataclass(frozen=True)
class TokenRow:
    id: int
    name: str
    digest: str  # hex SHA-256 of the secret
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    superseded_at: datetime | None
    revoked_at: datetime | None

    @property
    def current(self) -> bool:
        return self.superseded_at is None and self.revoked_at is None

    def usable(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


def _utc(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; everything the store writes is UTC.
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _row(row: Any) -> TokenRow:
    return TokenRow(
        id=row.id,
        name=row.name,
        digest=row.digest,
        created_at=_utc(row.created_at) or row.created_at,
        expires_at=_utc(row.expires_at),
        last_used_at=_utc(row.last_used_at),
        superseded_at=_utc(row.superseded_at),
        revoked_at=_utc(row.revoked_at),
    )


def insert_token(
    conn: Connection, name: str, digest: str, now: datetime, expires_at: datetime | None
) -> int:
    """Add `name`'s current secret; DuplicateTokenName if it already has one."""
    try:
        with conn.begin_nested():
            result = conn.execute(
                insert(scim_tokens).values(
                    name=name,
                    current_name=name,
                    digest=digest,
                    created_at=now,
                    expires_at=expires_at,
                )
            )
    except IntegrityError as exc:
        raise DuplicateTokenName(name) from exc
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def current(conn: Connection, name: str, *, for_update: bool = False) -> TokenRow | None:
    query = select(scim_tokens).where(scim_tokens.c.current_name == name)
    if for_update:
        query = query.with_for_update()
    row = conn.execute(query).first()
    return _row(row) if row is not None else None


def by_name(conn: Connection, name: str) -> list[TokenRow]:
    """Every row of `name`, oldest first."""
    query = select(scim_tokens).where(scim_tokens.c.name == name).order_by(scim_tokens.c.id)
    return [_row(row) for row in conn.execute(query)]


def all_rows(conn: Connection) -> list[TokenRow]:
    return [_row(row) for row in conn.execute(select(scim_tokens).order_by(scim_tokens.c.id))]


def unrevoked(conn: Connection, now: datetime) -> list[TokenRow]:
    """Rows the API may accept: not revoked and not expired at `now`."""
    query = select(scim_tokens).where(
        scim_tokens.c.revoked_at.is_(None),
        or_(scim_tokens.c.expires_at.is_(None), scim_tokens.c.expires_at > now),
    )
    return [_row(row) for row in conn.execute(query)]


def supersede(conn: Connection, token_id: int, now: datetime, expires_at: datetime) -> None:
    """Make `token_id` a previous secret that stops working at `expires_at`."""
    conn.execute(
        update(scim_tokens)
        .where(scim_tokens.c.id == token_id)
        .values(current_name=None, superseded_at=now, expires_at=expires_at)
    )


def revoke(conn: Connection, token_ids: Sequence[int], now: datetime) -> None:
    if token_ids:
        conn.execute(
            update(scim_tokens)
            .where(scim_tokens.c.id.in_(token_ids), scim_tokens.c.revoked_at.is_(None))
            .values(current_name=None, revoked_at=now)
        )


def touch(conn: Connection, token_id: int, now: datetime, interval: timedelta) -> None:
    """Record a use, unless one was recorded less than `interval` ago (by any replica)."""
    conn.execute(
        update(scim_tokens)
        .where(
            scim_tokens.c.id == token_id,
            or_(
                scim_tokens.c.last_used_at.is_(None),
                scim_tokens.c.last_used_at <= now - interval,
            ),
        )
        .values(last_used_at=now)
    )
