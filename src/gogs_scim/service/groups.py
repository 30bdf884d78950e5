"""The Group use cases: one method per SCIM operation, each one store transaction.

A write commits the group, its membership rows, an audit record and a converge job
for every Gogs team the group feeds (before and after the change, so a rename or a
new externalId also converges the team it leaves), then converges those teams inline.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine

from gogs_scim.audit.trail import AuditEntry, append
from gogs_scim.config import TeamMapping
from gogs_scim.gogs.reconciler import ConvergeRunner
from gogs_scim.gogs.team_jobs import enqueue_teams
from gogs_scim.provisioning.teams import rule_matches, teams_of_group
from gogs_scim.scim.document import normalize_resource
from gogs_scim.scim.errors import ScimError
from gogs_scim.scim.flatten import IndexedValue, flatten
from gogs_scim.scim.groups import GroupTeam
from gogs_scim.scim.members import MEMBERS, MemberChange, member_items, split_patch
from gogs_scim.scim.patch import apply_patch
from gogs_scim.scim.schema import GROUP_RESOURCE
from gogs_scim.service.listing import ListQuery, page_request
from gogs_scim.service.users import RequestContext
from gogs_scim.service.versions import check_if_match
from gogs_scim.service.versions import etag as version_etag
from gogs_scim.store import groups as group_store
from gogs_scim.store.groups import GroupRecord, Member
from gogs_scim.store.tables import groups as groups_table

log = logging.getLogger(__name__)

# How many member ids an audit record lists; the counts are always complete.
_AUDITED_IDS = 1000
# How many unknown member ids an error names.
_NAMED_IDS = 5


@dataclass(frozen=True)
class GroupView:
    """A group as read: `members` is None when the caller did not ask to load them;
    `teams` are the Gogs teams the mapping rules give it (none when unmapped)."""

    record: GroupRecord
    members: list[Member] | None
    teams: tuple[GroupTeam, ...] = ()


@dataclass(frozen=True)
class GroupPage:
    total: int
    start_index: int
    groups: list[GroupView]


def etag(record: GroupRecord) -> str:
    return version_etag(record.version)


def _index(document: dict[str, Any]) -> list[IndexedValue]:
    return flatten(document, GROUP_RESOURCE)


def _without_members(document: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    rest = {k: v for k, v in document.items() if k != MEMBERS}
    return rest, member_items(document.get(MEMBERS))


@dataclass(frozen=True)
class _Delta:
    add: list[Member]
    remove: set[str]


class GroupService:
    def __init__(
        self,
        engine: Engine,
        reconciler: ConvergeRunner | None,
        *,
        mappings: Sequence[TeamMapping],
        max_results: int,
    ) -> None:
        self._engine = engine
        self._reconciler = reconciler
        self._mappings = tuple(mappings)
        self._max_results = max_results

    # -- reads ---------------------------------------------------------------------

    def get(self, group_id: str, *, with_members: bool = True) -> GroupView:
        with self._engine.connect() as conn:
            record = group_store.get_group(conn, group_id)
            if record is None:
                raise ScimError.not_found(f"Group {group_id} not found")
            members = group_store.list_members(conn, group_id) if with_members else None
        return self._view(record, members)

    def search(self, query: ListQuery, *, with_members: bool = True) -> GroupPage:
        page = page_request(query, GROUP_RESOURCE, groups_table, self._max_results)
        with self._engine.connect() as conn:
            total, records = group_store.search_groups(
                conn, page.where, page.order_by, page.descending, page.offset, page.limit
            )
            views = [
                self._view(r, group_store.list_members(conn, r.id) if with_members else None)
                for r in records
            ]
        return GroupPage(total=total, start_index=page.start_index, groups=views)

    def memberships(self, user_ids: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
        """(group id, displayName) of each user's groups, for Users' `groups`."""
        if not user_ids:
            return {}
        with self._engine.connect() as conn:
            return group_store.memberships(conn, user_ids)

    # -- writes --------------------------------------------------------------------

    def create(
        self, payload: dict[str, Any], ctx: RequestContext, *, with_members: bool = True
    ) -> GroupView:
        normalized = normalize_resource(payload, GROUP_RESOURCE)
        document, items = _without_members(normalized.document)
        now = datetime.now(UTC)
        record = GroupRecord(
            id=str(uuid.uuid4()),
            display_name=str(document["displayName"]),
            external_id=document.get("externalId"),
            document=document,
            version=1,
            created_at=now,
            updated_at=now,
        )
        record = record.with_changes(sync_state=self._sync_state(record))
        change = MemberChange()
        change.added(items)
        with self._engine.begin() as conn:
            delta = self._delta(conn, record.id, change, existing=set())
            group_store.insert_group(conn, record, _index(document))
            group_store.add_members(conn, record.id, delta.add)
            keys = self._enqueue(conn, None, record, bool(delta.add), "group.create", now)
            self._audit(conn, ctx, "scim.group.create", record.id, None, document, delta)
        self._converge(keys, ctx)
        return self.get(record.id, with_members=with_members)

    def replace(
        self,
        group_id: str,
        payload: dict[str, Any],
        if_match: str | None,
        ctx: RequestContext,
        *,
        with_members: bool = True,
    ) -> GroupView:
        with self._engine.begin() as conn:
            current = self._locked(conn, group_id)
            check_if_match(current.version, if_match)
            normalized = normalize_resource(
                payload,
                GROUP_RESOURCE,
                current_id=group_id,
                current_document=current.document,
            )
            document, items = _without_members(normalized.document)
            change = MemberChange()
            # PUT replaces the whole resource: members absent means no members.
            change.replaced(items)
            keys = self._write(conn, current, document, change, ctx, "scim.group.replace")
        self._converge(keys, ctx)
        return self.get(group_id, with_members=with_members)

    def patch(
        self,
        group_id: str,
        body: dict[str, Any],
        if_match: str | None,
        ctx: RequestContext,
        *,
        with_members: bool = True,
    ) -> GroupView:
        split = split_patch(body)
        with self._engine.begin() as conn:
            current = self._locked(conn, group_id)
            check_if_match(current.version, if_match)
            document = current.document
            if not split.needs_full and split.document_body is not None:
                document = apply_patch(
                    current.document, split.document_body, GROUP_RESOURCE, current_id=group_id
                ).document
            change = split.members
            # Members written some way the split does not know (nested under the core
            # schema URN) must not end up in the document: take the exact path.
            if split.needs_full or MEMBERS in document:
                document, change = self._patch_materialised(conn, current, body)
            keys = self._write(conn, current, document, change, ctx, "scim.group.patch")
        self._converge(keys, ctx)
        return self.get(group_id, with_members=with_members)

    def delete(self, group_id: str, if_match: str | None, ctx: RequestContext) -> None:
        now = datetime.now(UTC)
        with self._engine.begin() as conn:
            current = self._locked(conn, group_id)
            check_if_match(current.version, if_match)
            # The team stays (Gogs has no team delete); its converge drops the members
            # only this group granted.
            keys = enqueue_teams(
                conn,
                teams_of_group(self._mappings, current.display_name, current.external_id),
                "group.delete",
                now,
            )
            # The audit record names who lost what the group granted.
            gone = _Delta([], group_store.member_ids(conn, group_id))
            group_store.delete_group(conn, group_id)
            self._audit(conn, ctx, "scim.group.delete", group_id, current.document, None, gone)
        self._converge(keys, ctx)

    # -- internals -----------------------------------------------------------------

    def _view(self, record: GroupRecord, members: list[Member] | None) -> GroupView:
        teams: dict[tuple[str, str], GroupTeam] = {}
        for rule in self._mappings:
            if rule_matches(rule, record.display_name, record.external_id):
                # Several rules may name one team (Gogs names are case-insensitive);
                # Settings makes them agree on the permission.
                key = (rule.org.lower(), rule.team.lower())
                teams.setdefault(key, GroupTeam(rule.org, rule.team, rule.permission))
        return GroupView(record, members, tuple(teams[key] for key in sorted(teams)))

    def _locked(self, conn: Connection, group_id: str) -> GroupRecord:
        record = group_store.get_group(conn, group_id, for_update=True)
        if record is None:
            raise ScimError.not_found(f"Group {group_id} not found")
        return record

    def _patch_materialised(
        self, conn: Connection, current: GroupRecord, body: dict[str, Any]
    ) -> tuple[dict[str, Any], MemberChange]:
        """The exact, slow path: apply the body to the document with all members."""
        members = group_store.list_members(conn, current.id)
        full = dict(current.document)
        if members:
            full[MEMBERS] = [
                {
                    "value": m.user_id,
                    "type": "User",
                    **({"display": m.display} if m.display else {}),
                }
                for m in members
            ]
        patched = apply_patch(full, body, GROUP_RESOURCE, current_id=current.id).document
        document, items = _without_members(patched)
        change = MemberChange()
        change.replaced(items)
        return document, change

    def _delta(
        self, conn: Connection, group_id: str, change: MemberChange, existing: set[str] | None
    ) -> _Delta:
        """The rows to insert and delete; 400 if an added member is not a live user.

        `existing` is the full member set when known (a new group: empty).
        """
        unknown = set(change.add) - group_store.live_user_ids(conn, change.add)
        if unknown:
            named = ", ".join(sorted(unknown)[:_NAMED_IDS])
            more = f" and {len(unknown) - _NAMED_IDS} more" if len(unknown) > _NAMED_IDS else ""
            raise ScimError.invalid_value(f"members: no such user: {named}{more}")
        if existing is None:
            if change.reset:
                existing = group_store.member_ids(conn, group_id)
            else:
                among = sorted(set(change.add) | change.remove)
                existing = group_store.member_ids(conn, group_id, among)
        remove = existing - set(change.add) if change.reset else change.remove & existing
        add = [
            Member(user_id, display)
            for user_id, display in change.add.items()
            if user_id not in existing
        ]
        return _Delta(add, remove)

    def _write(
        self,
        conn: Connection,
        current: GroupRecord,
        document: dict[str, Any],
        change: MemberChange,
        ctx: RequestContext,
        action: str,
    ) -> list[str]:
        """Store a change; the team keys to converge (none when nothing changed)."""
        delta = self._delta(conn, current.id, change, None)
        members_changed = bool(delta.add or delta.remove)
        document_changed = document != current.document
        if not (members_changed or document_changed):
            # Nothing changed: version and lastModified stay, so ETags stay valid.
            return []
        now = datetime.now(UTC)
        record = current.with_changes(
            display_name=str(document["displayName"]),
            external_id=document.get("externalId"),
            document=document,
            version=current.version + 1,
            updated_at=now,
        )
        record = record.with_changes(sync_state=self._sync_state(record))
        group_store.update_group(conn, record, _index(document) if document_changed else None)
        group_store.remove_members(conn, current.id, delta.remove)
        group_store.add_members(conn, current.id, delta.add)
        keys = self._enqueue(conn, current, record, members_changed, action, now)
        self._audit(conn, ctx, action, current.id, current.document, document, delta)
        return keys

    def _sync_state(self, record: GroupRecord) -> str:
        # A group no rule maps has nothing to wait for in Gogs.
        fed = teams_of_group(self._mappings, record.display_name, record.external_id)
        return "pending" if fed else "synced"

    def _enqueue(
        self,
        conn: Connection,
        before: GroupRecord | None,
        after: GroupRecord,
        members_changed: bool,
        reason: str,
        now: datetime,
    ) -> list[str]:
        new = teams_of_group(self._mappings, after.display_name, after.external_id)
        old = (
            teams_of_group(self._mappings, before.display_name, before.external_id)
            if before is not None
            else set()
        )
        if before is not None and old != new:
            self._warn_rename(before, after)
        keys = new ^ old if not members_changed else new | old
        return enqueue_teams(conn, keys, reason, now)

    def _warn_rename(self, before: GroupRecord, after: GroupRecord) -> None:
        for rule in self._mappings:
            if rule_matches(rule, before.display_name, before.external_id) and not rule_matches(
                rule, after.display_name, after.external_id
            ):
                log.warning(
                    "group %s no longer matches mapping %r -> %s/%s (by %s) after a change; "
                    "its members leave that team",
                    after.id,
                    rule.group,
                    rule.org,
                    rule.team,
                    rule.match,
                )

    def _converge(self, keys: list[str], ctx: RequestContext) -> None:
        if self._reconciler is not None and keys:
            self._reconciler.converge_teams_now(keys, request_id=ctx.request_id)

    def _audit(
        self,
        conn: Connection,
        ctx: RequestContext,
        action: str,
        group_id: str,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        delta: _Delta | None,
    ) -> None:
        detail: dict[str, Any] = {"before": before, "after": after}
        if delta is not None:
            added = sorted(m.user_id for m in delta.add)
            removed = sorted(delta.remove)
            detail.update(
                members_added=added[:_AUDITED_IDS],
                members_added_count=len(added),
                members_removed=removed[:_AUDITED_IDS],
                members_removed_count=len(removed),
            )
        append(
            conn,
            AuditEntry(
                action=action,
                resource_type="Group",
                resource_id=group_id,
                actor=ctx.actor,
                request_id=ctx.request_id,
                detail=detail,
            ),
        )
