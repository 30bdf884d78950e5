"""Shared by the groups tests: a bridge with mapping rules, SCIM and Gogs helpers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from gogs_scim.bootstrap import Bridge, build_bridge
from gogs_scim.config import TeamMapping
from gogs_scim.gogs.client import GogsClient
from gogs_scim.gogs.sandbox import RunningGogs
from gogs_scim.scim.patch import PATCH_OP_SCHEMA
from gogs_scim.scim.schema import GROUP_SCHEMA, USER_SCHEMA
from gogs_scim.store.tables import groups as groups_table
from tests.conftest import make_settings, unique

Mapped = Callable[..., tuple[Bridge, TestClient]]


@contextmanager
def open_mapped(gogs: RunningGogs, store_url: str, scim_token: str) -> Iterator[Mapped]:
    """A builder of bridges on `gogs` with the given mapping rules, each with an
    IdP-like client; closes them all on exit."""
    opened: list[tuple[Bridge, TestClient]] = []

    def build(
        *rules: TeamMapping, database_url: str | None = None, **sections: dict[str, Any]
    ) -> tuple[Bridge, TestClient]:
        url = database_url or store_url
        settings = make_settings(gogs, url, scim_token, **sections)
        settings = settings.model_copy(update={"mappings": rules})
        bridge = build_bridge(settings)
        client = TestClient(
            bridge.app,
            base_url="http://testserver/scim/v2",
            headers={"Authorization": f"Bearer {scim_token}"},
        )
        client.__enter__()
        opened.append((bridge, client))
        return bridge, client

    try:
        yield build
    finally:
        for bridge, client in opened:
            client.__exit__(None, None, None)
            bridge.close()


@pytest.fixture(name="mapped")
def mapped_fixture(gogs: RunningGogs, store_url: str, scim_token: str) -> Iterator[Mapped]:
    """Build a bridge with the given mapping rules and an IdP-like client for it; by
    default on the test's fresh store (SQLite and PostgreSQL, see conftest)."""
    with open_mapped(gogs, store_url, scim_token) as build:
        yield build


def rule(group: str, org: str, team: str, **extra: Any) -> TeamMapping:
    return TeamMapping(group=group, org=org, team=team, **extra)


def new_user(scim: TestClient, **extra: Any) -> tuple[str, str]:
    """(SCIM id, Gogs login) of a fresh, synced user."""
    name = unique("m")
    body = {"schemas": [USER_SCHEMA], "userName": f"{name}@example.com", **extra}
    response = scim.post("/Users", json=body)
    assert response.status_code == 201, response.text
    assert (
        response.json()["urn:gogs-scim:params:scim:schemas:extension:gogs:2.0:User"]["syncState"]
        == "synced"
    )
    return str(response.json()["id"]), name


def new_group(scim: TestClient, name: str, members: list[str], **extra: Any) -> str:
    body = {
        "schemas": [GROUP_SCHEMA],
        "displayName": name,
        "members": [{"value": m} for m in members],
        **extra,
    }
    response = scim.post("/Groups", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def patch(scim: TestClient, path: str, *ops: dict[str, Any]) -> None:
    response = scim.patch(path, json={"schemas": [PATCH_OP_SCHEMA], "Operations": list(ops)})
    assert response.status_code == 200, response.text


def add(scim: TestClient, group_id: str, *user_ids: str) -> None:
    patch(
        scim,
        f"/Groups/{group_id}",
        {"op": "add", "path": "members", "value": [{"value": u} for u in user_ids]},
    )


def remove(scim: TestClient, group_id: str, user_id: str) -> None:
    patch(scim, f"/Groups/{group_id}", {"op": "remove", "path": f'members[value eq "{user_id}"]'})


def team_members(gogs_client: GogsClient, org: str, team: str) -> set[str]:
    for found in gogs_client.list_org_teams(org):
        if found.name.lower() == team.lower():
            return {m.login.lower() for m in gogs_client.list_team_members(found.id)}
    raise AssertionError(f"team {org}/{team} does not exist")


def team_permission(gogs_client: GogsClient, org: str, team: str) -> str:
    [found] = [t for t in gogs_client.list_org_teams(org) if t.name.lower() == team.lower()]
    return found.permission


def group_sync(bridge: Bridge, group_id: str) -> tuple[str, str | None]:
    with bridge.engine.connect() as conn:
        row = conn.execute(
            select(groups_table.c.sync_state, groups_table.c.sync_error).where(
                groups_table.c.id == group_id
            )
        ).one()
    return row.sync_state, row.sync_error
