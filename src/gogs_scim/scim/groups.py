"""A stored group as the SCIM Group resource the IdP reads back."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gogs_scim.scim.schema import GROUP_SCHEMA
from gogs_scim.scim.users import scim_datetime, user_location
from gogs_scim.store.groups import GroupRecord, Member


def group_location(base_url: str, group_id: str) -> str:
    return f"{base_url.rstrip('/')}/Groups/{group_id}"


def render_group(
    record: GroupRecord, members: Sequence[Member] | None, base_url: str
) -> dict[str, Any]:
    """The resource: document, `id`, `meta`, and `members` when they were loaded.

    `members` is None when the caller excluded them: they were not read at all.
    """
    document = dict(record.document)
    document.pop("schemas", None)
    body: dict[str, Any] = {"schemas": [GROUP_SCHEMA], "id": record.id, **document}
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
    body["meta"] = {
        "resourceType": "Group",
        "created": scim_datetime(record.created_at),
        "lastModified": scim_datetime(record.updated_at),
        "location": group_location(base_url, record.id),
        "version": f'W/"{record.version}"',
    }
    return body
