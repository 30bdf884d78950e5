"""Reading and writing SCIM groups and their members in the store.

The group document never holds `members`: membership is rows of scim_group_members,
so one PATCH adding a member writes one row, and a read that excludes members never
touches them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, delete, insert, or_, select, update

from gogs_scim.scim.flatten import IndexedValue
from gogs_scim.store.attribute_index import delete_index, write_index
from gogs_scim.store.paging import live_page
from gogs_scim.store.tables import group_members, groups, users

GROUP_RESOURCE_TYPE = "Group"

# Large IN lists are sent in chunks: SQLite caps bound parameters per statement.
_CHUNK = 500


@dataclass(frozen=True)
class GroupRecord:
    id: str
    display_name: str
    external_id: str | None
    document: dict[str, Any]
    version: int
    created_at: datetime
    updated_at: datetime
    sync_state: str = "pending"
    sync_error: str | None = None

    def with_changes(self, **changes: Any) -> GroupRecord:
        return replace(self, **changes)


@dataclass(frozen=True)
class Member:
    user_id: str
    display: str | None


def _chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def _record(row: Any) -> GroupRecord:
    return GroupRecord(
        id=row.id,
        display_name=row.display_name,
        external_id=row.external_id,
        document=dict(row.document),
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
        sync_state=row.sync_state,
        sync_error=row.sync_error,
    )


def _values(record: GroupRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "display_name": record.display_name,
        "display_name_folded": record.display_name.lower(),
        "external_id": record.external_id,
        "document": record.document,
        "version": record.version,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "sync_state": record.sync_state,
        "sync_error": record.sync_error,
    }


def insert_group(conn: Connection, record: GroupRecord, index: Sequence[IndexedValue]) -> None:
    conn.execute(insert(groups).values(**_values(record)))
    write_index(conn, GROUP_RESOURCE_TYPE, record.id, index)


def update_group(
    conn: Connection, record: GroupRecord, index: Sequence[IndexedValue] | None
) -> None:
    conn.execute(update(groups).where(groups.c.id == record.id).values(**_values(record)))
    if index is not None:
        write_index(conn, GROUP_RESOURCE_TYPE, record.id, index)


def delete_group(conn: Connection, group_id: str) -> None:
    """Remove a group, its members and its index rows (teams follow by converge)."""
    conn.execute(delete(group_members).where(group_members.c.group_id == group_id))
    delete_index(conn, GROUP_RESOURCE_TYPE, group_id)
    conn.execute(delete(groups).where(groups.c.id == group_id))


def get_group(conn: Connection, group_id: str, *, for_update: bool = False) -> GroupRecord | None:
    query = select(groups).where(groups.c.id == group_id, groups.c.deleted_at.is_(None))
    if for_update:
        query = query.with_for_update()
    row = conn.execute(query).first()
    return _record(row) if row is not None else None


def search_groups(
    conn: Connection,
    where: ColumnElement[bool] | None,
    order_by: ColumnElement[Any] | None,
    descending: bool,
    offset: int,
    limit: int,
) -> tuple[int, list[GroupRecord]]:
    """One page of groups matching `where`, and the exact total."""
    total, rows = live_page(conn, groups, where, order_by, descending, offset, limit)
    return total, [_record(row) for row in rows]


def set_sync_state(
    conn: Connection, group_ids: Iterable[str], sync_state: str, sync_error: str | None
) -> None:
    ids = list(group_ids)
    for chunk in _chunks(ids):
        conn.execute(
            update(groups)
            .where(groups.c.id.in_(chunk))
            .values(sync_state=sync_state, sync_error=sync_error)
        )


def unsettled_groups(conn: Connection) -> list[tuple[str, str, str | None]]:
    """(id, displayName, externalId) of the live groups not marked `synced`."""
    rows = conn.execute(
        select(groups.c.id, groups.c.display_name, groups.c.external_id).where(
            groups.c.deleted_at.is_(None), groups.c.sync_state != "synced"
        )
    )
    return [(row.id, row.display_name, row.external_id) for row in rows]


# -- members ----------------------------------------------------------------------------

_LIVE_MEMBER = (group_members.c.user_id == users.c.id) & users.c.deleted_at.is_(None)


def list_members(conn: Connection, group_id: str) -> list[Member]:
    """The group's members that are live users (a deleted user is no member).

    `display` is what the IdP sent, else the user's displayName, else userName.
    """
    query = (
        select(
            group_members.c.user_id,
            group_members.c.display,
            users.c.display_name,
            users.c.user_name,
        )
        .join(users, _LIVE_MEMBER)
        .where(group_members.c.group_id == group_id)
        .order_by(group_members.c.user_id)
    )
    return [
        Member(row.user_id, row.display or row.display_name or row.user_name)
        for row in conn.execute(query)
    ]


def member_ids(conn: Connection, group_id: str, among: Sequence[str] | None = None) -> set[str]:
    """Ids of the group's members; only those in `among` when it is given."""
    query = select(group_members.c.user_id).where(group_members.c.group_id == group_id)
    if among is None:
        return set(conn.execute(query).scalars())
    found: set[str] = set()
    for chunk in _chunks(list(among)):
        found.update(conn.execute(query.where(group_members.c.user_id.in_(chunk))).scalars())
    return found


def live_user_ids(conn: Connection, ids: Iterable[str]) -> set[str]:
    """Which of `ids` are users that exist and are not deleted."""
    found: set[str] = set()
    for chunk in _chunks(sorted(set(ids))):
        query = select(users.c.id).where(users.c.id.in_(chunk), users.c.deleted_at.is_(None))
        found.update(conn.execute(query).scalars())
    return found


def add_members(conn: Connection, group_id: str, members: Sequence[Member]) -> None:
    """Insert membership rows; the caller passes only users not yet members."""
    if members:
        conn.execute(
            insert(group_members),
            [{"group_id": group_id, "user_id": m.user_id, "display": m.display} for m in members],
        )


def remove_members(conn: Connection, group_id: str, user_ids: Iterable[str]) -> None:
    for chunk in _chunks(sorted(set(user_ids))):
        conn.execute(
            delete(group_members).where(
                group_members.c.group_id == group_id, group_members.c.user_id.in_(chunk)
            )
        )


def clear_members(conn: Connection, group_id: str) -> None:
    conn.execute(delete(group_members).where(group_members.c.group_id == group_id))


def member_left(conn: Connection, user_id: str, now: datetime) -> None:
    """The user is deleted, so it leaves the `members` of each live group it was in:
    those groups get a new version and lastModified (their rows stay, hidden)."""
    conn.execute(
        update(groups)
        .where(
            groups.c.id.in_(
                select(group_members.c.group_id).where(group_members.c.user_id == user_id)
            ),
            groups.c.deleted_at.is_(None),
        )
        .values(version=groups.c.version + 1, updated_at=now)
    )


def groups_of_user(conn: Connection, user_id: str) -> list[GroupRecord]:
    """The live groups `user_id` is a member of (one indexed lookup)."""
    query = (
        select(groups)
        .join(group_members, group_members.c.group_id == groups.c.id)
        .where(group_members.c.user_id == user_id, groups.c.deleted_at.is_(None))
        .order_by(groups.c.display_name_folded, groups.c.id)
    )
    return [_record(row) for row in conn.execute(query)]


def memberships(conn: Connection, user_ids: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
    """(group id, displayName) of the live groups of each user, in one indexed query
    per chunk of users; users in no group are absent."""
    found: dict[str, list[tuple[str, str]]] = {}
    for chunk in _chunks(list(user_ids)):
        query = (
            select(group_members.c.user_id, groups.c.id, groups.c.display_name)
            .join(groups, groups.c.id == group_members.c.group_id)
            .where(group_members.c.user_id.in_(chunk), groups.c.deleted_at.is_(None))
            .order_by(groups.c.display_name_folded, groups.c.id)
        )
        for row in conn.execute(query):
            found.setdefault(row.user_id, []).append((row.id, row.display_name))
    return found


# -- what the team rules read -------------------------------------------------------------


def groups_matching(
    conn: Connection, display_names: Iterable[str], external_ids: Iterable[str]
) -> list[GroupRecord]:
    """Live groups whose displayName (case-insensitively) or externalId is listed."""
    folded = sorted({name.lower() for name in display_names})
    exact = sorted(set(external_ids))
    terms = []
    if folded:
        terms.append(groups.c.display_name_folded.in_(folded))
    if exact:
        terms.append(groups.c.external_id.in_(exact))
    if not terms:
        return []
    query = select(groups).where(groups.c.deleted_at.is_(None), or_(*terms))
    return [_record(row) for row in conn.execute(query)]


def active_member_logins(conn: Connection, group_ids: Sequence[str]) -> set[str]:
    """The Gogs logins of the active, live users in any of `group_ids`.

    Users that have no Gogs account yet are left out: adding them would fail; their
    own converge re-runs the team once the account exists.
    """
    logins: set[str] = set()
    for chunk in _chunks(list(group_ids)):
        query = (
            select(users.c.gogs_login)
            .join(group_members, group_members.c.user_id == users.c.id)
            .where(
                group_members.c.group_id.in_(chunk),
                users.c.deleted_at.is_(None),
                users.c.active.is_(True),
                users.c.gogs_user_id.is_not(None),
            )
            .distinct()
        )
        logins.update(conn.execute(query).scalars())
    return logins
