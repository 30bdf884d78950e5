"""A stored group as the SCIM Group resource the IdP reads back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gogs_scim.scim.schema import GOGS_GROUP_SCHEMA, GROUP_SCHEMA
from gogs_scim.scim.users import scim_datetime, user_location
from gogs_scim.store.groups import GroupRecord, Member


@dataclass(frozen=True)
class GroupTeam:
    """A Gogs team a mapping rule gives a group's members (the Gogs extension's `teams`)."""

    org: str
    team: str
    permission: str


def group_location(base_url: str, group_id: str) -> str:
    return f"{base_url.rstrip('/')}/Groups/{group_id}"


def render_group(
    record: GroupRecord,
    members: Sequence[Member] | None,
    base_url: str,
    teams: Sequence[GroupTeam] = (),
) -> dict[str, Any]:
    """The resource: document, `id`, `members` when they were loaded, our Gogs
    extension (sync state, the mapped `teams`) and `meta`.

    `members` is None when the caller excluded them: they were not read at all.
    """
    document = dict(record.document)
    document.pop("schemas", None)
    body: dict[str, Any] = {
        "schemas": [GROUP_SCHEMA, GOGS_GROUP_SCHEMA],
        "id": record.id,
        **document,
    }
    if members:
        body["members"] = [
            {
                "value": member.user_id,
                "$ref": user_location(base_url, member.user_id),
                "type": "User",
                **({"display": member.display} if member.display else {}),
            }
            for member in members
        ]
    gogs: dict[str, Any] = {"syncState": record.sync_state}
    if record.sync_error:
        gogs["syncError"] = record.sync_error
    gogs["teams"] = [
        {"org": team.org, "team": team.team, "permission": team.permission} for team in teams
    ]
    body[GOGS_GROUP_SCHEMA] = gogs
    body["meta"] = {
        "resourceType": "Group",
        "created": scim_datetime(record.created_at),
        "lastModified": scim_datetime(record.updated_at),
        "location": group_location(base_url, record.id),
        "version": f'W/"{record.version}"',
    }
    return body
