"""A stored user as the SCIM User resource the IdP reads back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from gogs_scim.scim.schema import GOGS_USER_SCHEMA, USER_SCHEMA
from gogs_scim.store.users import UserRecord


def scim_datetime(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def user_location(base_url: str, user_id: str) -> str:
    return f"{base_url.rstrip('/')}/Users/{user_id}"


def render_user(record: UserRecord, base_url: str) -> dict[str, Any]:
    """The full resource: stored document, `id`, `meta` and our Gogs extension."""
    document = dict(record.document)
    schemas = [USER_SCHEMA]
    for key in document.get("schemas", []):
        if key not in schemas and key in document:
            schemas.append(key)
    schemas.append(GOGS_USER_SCHEMA)
    gogs: dict[str, Any] = {
        "login": record.gogs_login,
        "adopted": record.gogs_adopted,
        "syncState": record.sync_state,
    }
    if record.gogs_user_id is not None:
        gogs["userId"] = record.gogs_user_id
    if record.sync_error:
        gogs["syncError"] = record.sync_error
    if record.residual_access:
        gogs["residualAccess"] = list(record.residual_access)
    document.pop("schemas", None)
    return {
        "schemas": schemas,
        "id": record.id,
        **document,
        GOGS_USER_SCHEMA: gogs,
        "meta": {
            "resourceType": "User",
            "created": scim_datetime(record.created_at),
            "lastModified": scim_datetime(record.updated_at),
            "location": user_location(base_url, record.id),
            "version": f'W/"{record.version}"',
        },
    }
