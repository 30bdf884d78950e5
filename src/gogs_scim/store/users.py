"""Reading and writing SCIM users in the store."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from gogs_scim.scim.flatten import IndexedValue, fold_text
from gogs_scim.store.attribute_index import delete_index, write_index
from gogs_scim.store.paging import live_page
from gogs_scim.store.tables import users

USER_RESOURCE_TYPE = "User"

# Where a user stands with Gogs.
SYNC_PENDING = "pending"
SYNC_SYNCED = "synced"
SYNC_ERROR = "error"


class DuplicateUserName(Exception):
    """Another live user already has this userName (compared case-insensitively)."""


@dataclass(frozen=True)
class UserRecord:
    id: str
    user_name: str
    external_id: str | None
    display_name: str | None
    active: bool
    document: dict[str, Any]
    version: int
    created_at: datetime
    updated_at: datetime
    gogs_login: str
    gogs_user_id: int | None = None
    gogs_adopted: bool = False
    sync_state: str = SYNC_PENDING
    sync_error: str | None = None
    deleted_at: datetime | None = None
    # When the Gogs password was last scrambled because the user was deactivated;
    # None while the user is active (or the scramble has not happened yet).
    revoked_at: datetime | None = None
    # What deprovisioning could not revoke in Gogs, one sentence per way in.
    residual_access: tuple[str, ...] = ()

    def with_changes(self, **changes: Any) -> UserRecord:
        return replace(self, **changes)


def _record(row: Any) -> UserRecord:
    return UserRecord(
        id=row.id,
        user_name=row.user_name,
        external_id=row.external_id,
        display_name=row.display_name,
        active=bool(row.active),
        document=dict(row.document),
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
        gogs_login=row.gogs_login,
        gogs_user_id=row.gogs_user_id,
        gogs_adopted=bool(row.gogs_adopted),
        sync_state=row.sync_state,
        sync_error=row.sync_error,
        deleted_at=row.deleted_at,
        revoked_at=row.revoked_at,
        residual_access=tuple(row.residual_access or ()),
    )


def _values(record: UserRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "user_name": record.user_name,
        # Folded exactly as filters fold their operand, so `userName eq` finds it.
        "user_name_folded": fold_text(record.user_name) if record.deleted_at is None else None,
        "external_id": record.external_id,
        "display_name": record.display_name,
        "active": record.active,
        "document": record.document,
        "version": record.version,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "deleted_at": record.deleted_at,
        "gogs_login": record.gogs_login,
        "gogs_login_folded": record.gogs_login.lower(),
        "gogs_user_id": record.gogs_user_id,
        "gogs_adopted": record.gogs_adopted,
        "sync_state": record.sync_state,
        "sync_error": record.sync_error,
        "revoked_at": record.revoked_at,
        "residual_access": list(record.residual_access) or None,
    }


def insert_user(conn: Connection, record: UserRecord, index: Sequence[IndexedValue]) -> None:
    """Add a user; DuplicateUserName if a live user already has the userName."""
    try:
        with conn.begin_nested():
            conn.execute(insert(users).values(**_values(record)))
    except IntegrityError as exc:
        raise DuplicateUserName(record.user_name) from exc
    write_index(conn, USER_RESOURCE_TYPE, record.id, index)


def update_user(conn: Connection, record: UserRecord, index: Sequence[IndexedValue] | None) -> None:
    """Write `record` over the stored row; the index is rewritten when given."""
    try:
        with conn.begin_nested():
            conn.execute(update(users).where(users.c.id == record.id).values(**_values(record)))
    except IntegrityError as exc:
        raise DuplicateUserName(record.user_name) from exc
    if index is not None:
        write_index(conn, USER_RESOURCE_TYPE, record.id, index)


def set_sync_state(
    conn: Connection,
    user_id: str,
    *,
    sync_state: str,
    sync_error: str | None,
    **gogs_fields: Any,
) -> None:
    """Record how far Gogs has followed, without touching what the IdP asked for."""
    conn.execute(
        update(users)
        .where(users.c.id == user_id)
        .values(sync_state=sync_state, sync_error=sync_error, **gogs_fields)
    )


def get_user(
    conn: Connection, user_id: str, *, include_deleted: bool = False, for_update: bool = False
) -> UserRecord | None:
    query = select(users).where(users.c.id == user_id)
    if not include_deleted:
        query = query.where(users.c.deleted_at.is_(None))
    if for_update:
        query = query.with_for_update()
    row = conn.execute(query).first()
    return _record(row) if row is not None else None


def every_user_with_login(conn: Connection) -> list[UserRecord]:
    """Every user that has a Gogs login, deleted ones included (their rows stay until
    Gogs has followed): what reconciliation compares with Gogs, in a stable order."""
    query = select(users).where(users.c.gogs_login.is_not(None)).order_by(users.c.gogs_login_folded)
    return [_record(row) for row in conn.execute(query)]


def purge_user(conn: Connection, user_id: str) -> None:
    """Remove every trace of a user that never reached Gogs (a refused create)."""
    delete_index(conn, USER_RESOURCE_TYPE, user_id)
    conn.execute(delete(users).where(users.c.id == user_id))


def login_taken(conn: Connection, folded_login: str) -> bool:
    """Whether any user, live or deleted, was assigned this login."""
    query = select(users.c.id).where(users.c.gogs_login_folded == folded_login).limit(1)
    return conn.execute(query).first() is not None


def search_users(
    conn: Connection,
    where: ColumnElement[bool] | None,
    order_by: ColumnElement[Any] | None,
    descending: bool,
    offset: int,
    limit: int,
) -> tuple[int, list[UserRecord]]:
    """One page of live users matching `where`, and the exact total."""
    total, rows = live_page(conn, users, where, order_by, descending, offset, limit)
    return total, [_record(row) for row in rows]
