"""A 20,000-member group: reads that exclude members and one-member PATCHes stay small."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, insert
from starlette.testclient import TestClient

from gogs_scim.bootstrap import Bridge
from gogs_scim.scim.patch import PATCH_OP_SCHEMA
from gogs_scim.store.tables import group_members, users
from tests.integration.test_groups_protocol import make_group, make_user

pytestmark = pytest.mark.gogs

SIZE = 20_000


def _bulk_members(bridge: Bridge, group_id: str) -> list[str]:
    """Insert SIZE users and memberships straight into the store (no Gogs needed)."""
    now = datetime.now(UTC)
    ids = [str(uuid.uuid4()) for _ in range(SIZE)]
    rows = [
        {
            "id": user_id,
            "user_name": f"bulk{n}",
            "user_name_folded": f"bulk{n}-{user_id}",
            "active": True,
            "document": {"userName": f"bulk{n}"},
            "version": 1,
            "created_at": now,
            "updated_at": now,
            "gogs_login": f"b{user_id[:30]}",
            "gogs_login_folded": f"b{user_id[:30]}",
            "gogs_adopted": False,
            "sync_state": "synced",
        }
        for n, user_id in enumerate(ids)
    ]
    with bridge.engine.begin() as conn:
        conn.execute(insert(users), rows)
        conn.execute(insert(group_members), [{"group_id": group_id, "user_id": u} for u in ids])
    return ids


class _MemberQueries:
    """Records the SQL that reads scim_group_members during a block."""

    def __init__(self, bridge: Bridge) -> None:
        self.engine = bridge.engine
        self.statements: list[str] = []

    def _spy(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "scim_group_members" in statement and statement.lstrip().upper().startswith("SELECT"):
            self.statements.append(" ".join(statement.split()))

    def __enter__(self) -> _MemberQueries:
        event.listen(self.engine, "before_cursor_execute", self._spy)
        return self

    def __exit__(self, *_exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._spy)


def test_big_group_reads_and_patches_without_loading_members(
    scim: TestClient, bridge: Bridge
) -> None:
    group = make_group(scim)
    gid = group["id"]
    bulk = _bulk_members(bridge, gid)
    newcomer = make_user(scim)

    with _MemberQueries(bridge) as lean:
        got = scim.get(f"/Groups/{gid}", params={"excludedAttributes": "members"})
        listed = scim.get(
            "/Groups",
            params={"filter": f'members[value eq "{bulk[123]}"]', "excludedAttributes": "members"},
        )
    assert got.status_code == 200 and "members" not in got.json()
    assert len(got.content) < 2_000
    assert [g["id"] for g in listed.json()["Resources"]] == [gid]
    # Only the filter touched the membership table; nothing listed the members (the
    # listing is the only query that reads their `display`).
    assert not [s for s in lean.statements if "scim_group_members.display" in s]

    with _MemberQueries(bridge) as patching:
        response = scim.patch(
            f"/Groups/{gid}",
            params={"excludedAttributes": "members"},
            json={
                "schemas": [PATCH_OP_SCHEMA],
                "Operations": [
                    {"op": "add", "path": "members", "value": [{"value": newcomer}]},
                    {"op": "remove", "path": f'members[value eq "{bulk[0]}"]'},
                ],
            },
        )
    assert response.status_code == 200, response.text
    assert response.json()["meta"]["version"] == 'W/"2"'
    # Every read of the membership table was restricted to the ids the PATCH names.
    assert patching.statements and all(" IN " in s.upper() for s in patching.statements)

    full = scim.get(f"/Groups/{gid}").json()
    ids = {m["value"] for m in full["members"]}
    assert len(ids) == SIZE and newcomer in ids and bulk[0] not in ids
