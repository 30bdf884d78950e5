"""Users as read with their readOnly `groups` attribute (RFC 7643 §4.1.2).

The attribute is derived from scim_group_members at read time, never stored in the
user's document, so a group change never rewrites its members' documents. One indexed
query per read (per page for lists).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import Engine

from gogs_scim.gogs.reconciler import ConvergeRunner
from gogs_scim.service.groups import GroupService
from gogs_scim.service.listing import ListQuery
from gogs_scim.service.users import UserPage, UserService
from gogs_scim.store.users import UserRecord

GROUPS = "groups"


class UserServiceWithGroups(UserService):
    """UserService whose reads (and so every answer) carry `groups`."""

    def __init__(
        self,
        engine: Engine,
        reconciler: ConvergeRunner | None,
        *,
        groups: GroupService,
        **options: Any,
    ) -> None:
        super().__init__(engine, reconciler, **options)
        self._groups = groups

    def get(self, user_id: str) -> UserRecord:
        return self._with_groups([super().get(user_id)])[0]

    def search(self, query: ListQuery) -> UserPage:
        page = super().search(query)
        return replace(page, users=self._with_groups(page.users))

    def _with_groups(self, records: list[UserRecord]) -> list[UserRecord]:
        memberships = self._groups.memberships([record.id for record in records])
        out = []
        for record in records:
            document = {k: v for k, v in record.document.items() if k != GROUPS}
            if memberships.get(record.id):
                document[GROUPS] = [
                    {"value": group_id, "display": name, "type": "direct"}
                    for group_id, name in memberships[record.id]
                ]
            out.append(record.with_changes(document=document))
        return out
