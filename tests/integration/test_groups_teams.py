"""Mapped SCIM groups become Gogs team memberships, read back from a real Gogs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import update

from gogs_scim.gogs.client import GogsClient
from gogs_scim.gogs.sandbox import RunningGogs
from gogs_scim.scim.patch import PATCH_OP_SCHEMA
from gogs_scim.scim.schema import GOGS_GROUP_SCHEMA
from gogs_scim.store.tables import converge_jobs
from tests.conftest import unique
from tests.integration.groups_support import (  # noqa: F401 (mapped is a fixture)
    Mapped,
    add,
    group_sync,
    mapped_fixture,
    new_group,
    new_user,
    patch,
    remove,
    rule,
    team_members,
    team_permission,
)

pytestmark = pytest.mark.gogs


def test_member_of_a_mapped_group_joins_the_team(
    mapped: Mapped, gogs_client: GogsClient, gogs: RunningGogs
) -> None:
    org, gname = unique("org"), unique("eng")
    bridge, scim = mapped(rule(gname, org, "developers", permission="write", create_org=True))
    alice, alice_login = new_user(scim)
    gid = new_group(scim, gname.upper(), [alice])  # displayName matches case-insensitively
    assert gogs_client.get_org(org) is not None
    assert team_permission(gogs_client, org, "developers") == "write"
    assert team_members(gogs_client, org, "developers") == {alice_login}
    assert group_sync(bridge, gid) == ("synced", None)
    assert scim.get(f"/Groups/{gid}").json()[GOGS_GROUP_SCHEMA] == {
        "syncState": "synced",
        "teams": [{"org": org, "team": "developers", "permission": "write"}],
    }
    # The bridge's admin owns the org it created.
    assert team_members(gogs_client, org, "Owners") == {gogs.admin_user.lower()}


def test_union_of_two_groups(mapped: Mapped, gogs_client: GogsClient) -> None:
    org = unique("org")
    g1, g2 = unique("a"), unique("b")
    _, scim = mapped(
        rule(g1, org, "devs", create_org=True),
        rule(g2, org, "devs", create_org=True),
    )
    alice, login = new_user(scim)
    first = new_group(scim, g1, [alice])
    second = new_group(scim, g2, [alice])
    assert team_members(gogs_client, org, "devs") == {login}
    remove(scim, first, alice)
    assert team_members(gogs_client, org, "devs") == {login}
    remove(scim, second, alice)
    assert team_members(gogs_client, org, "devs") == set()


def test_exclusive_removes_hand_added_members(
    mapped: Mapped, gogs_client: GogsClient, gogs: RunningGogs
) -> None:
    org, gname = unique("org"), unique("g")
    _, scim = mapped(rule(gname, org, "devs", create_org=True, exclusive=True))
    alice, alice_login = new_user(scim)
    bob, bob_login = new_user(scim)
    gid = new_group(scim, gname, [alice])
    [team] = [t for t in gogs_client.list_org_teams(org) if t.name == "devs"]
    gogs_client.add_team_member(team.id, bob_login)
    gogs_client.add_team_member(team.id, gogs.admin_user)
    # The next converge of the team (any change to the group) takes bob out.
    patch(scim, f"/Groups/{gid}", {"op": "replace", "path": "externalId", "value": "x"})
    add(scim, gid, alice)  # already a member: no change, no converge needed
    remove(scim, gid, bob)  # not a member of the group: no change
    patch(scim, f"/Groups/{gid}", {"op": "remove", "path": "members"})
    add(scim, gid, alice)
    members = team_members(gogs_client, org, "devs")
    assert bob_login not in members
    assert members == {alice_login, gogs.admin_user.lower()}  # never the bridge's admin
    del bob


def test_non_exclusive_keeps_hand_added_but_drops_its_own(
    mapped: Mapped, gogs_client: GogsClient
) -> None:
    org, gname = unique("org"), unique("g")
    _, scim = mapped(rule(gname, org, "devs", create_org=True, exclusive=False))
    alice, alice_login = new_user(scim)
    carol, carol_login = new_user(scim)
    _, hand_login = new_user(scim)
    gid = new_group(scim, gname, [alice, carol])
    [team] = [t for t in gogs_client.list_org_teams(org) if t.name == "devs"]
    gogs_client.add_team_member(team.id, hand_login)
    remove(scim, gid, carol)
    assert team_members(gogs_client, org, "devs") == {alice_login, hand_login}
    assert carol_login not in team_members(gogs_client, org, "devs")


def test_deactivated_and_deleted_users_leave_the_team(
    mapped: Mapped, gogs_client: GogsClient
) -> None:
    org, gname = unique("org"), unique("g")
    _, scim = mapped(rule(gname, org, "devs", create_org=True))
    alice, alice_login = new_user(scim)
    bob, bob_login = new_user(scim)
    new_group(scim, gname, [alice, bob])
    assert team_members(gogs_client, org, "devs") == {alice_login, bob_login}
    patch(scim, f"/Users/{alice}", {"op": "replace", "path": "active", "value": False})
    assert team_members(gogs_client, org, "devs") == {bob_login}
    assert scim.delete(f"/Users/{bob}").status_code == 204
    assert team_members(gogs_client, org, "devs") == set()
    # Reactivation brings the user back.
    patch(scim, f"/Users/{alice}", {"op": "replace", "path": "active", "value": True})
    assert team_members(gogs_client, org, "devs") == {alice_login}


def test_missing_org_is_an_error_not_created(mapped: Mapped, gogs_client: GogsClient) -> None:
    org, gname = unique("org"), unique("g")
    bridge, scim = mapped(rule(gname, org, "devs"))
    alice, _ = new_user(scim)
    gid = new_group(scim, gname, [alice])
    assert gogs_client.get_org(org) is None
    state, error = group_sync(bridge, gid)
    assert state == "error"
    assert error is not None and "create_org" in error
    # The IdP (and whoever looks at it) sees why, and which team it is about.
    shown = scim.get(f"/Groups/{gid}", params={"excludedAttributes": "members"}).json()
    assert shown[GOGS_GROUP_SCHEMA] == {
        "syncState": "error",
        "syncError": error,
        "teams": [{"org": org, "team": "devs", "permission": "read"}],
    }
    assert f"organization {org!r} does not exist" in error


def test_group_extension_filters_and_is_read_only(mapped: Mapped) -> None:
    org, gname = unique("org"), unique("g")
    _, scim = mapped(rule(gname, org, "devs"))  # the org does not exist: error
    broken = new_group(scim, gname, [])
    fine = new_group(scim, unique("unmapped"), [])

    def found(filter_: str) -> list[str]:
        response = scim.get("/Groups", params={"filter": filter_})
        assert response.status_code == 200, response.text
        return [g["id"] for g in response.json()["Resources"]]

    assert found(f'{GOGS_GROUP_SCHEMA}:syncState eq "error"') == [broken]
    assert found(f'{GOGS_GROUP_SCHEMA}:syncState eq "ERROR"') == [broken]
    assert found(f'{GOGS_GROUP_SCHEMA}:syncError co "create_org"') == [broken]
    assert fine in found(f'{GOGS_GROUP_SCHEMA}:syncState eq "synced"')
    assert broken not in found(f'{GOGS_GROUP_SCHEMA}:syncState eq "synced"')
    # `teams` comes from the configuration, not the store: not filterable.
    for unsupported in (
        f'{GOGS_GROUP_SCHEMA}:teams.org eq "{org}"',
        f"{GOGS_GROUP_SCHEMA}:teams pr",
    ):
        response = scim.get("/Groups", params={"filter": unsupported})
        assert response.status_code == 400, (unsupported, response.text)
        assert response.json()["scimType"] == "invalidFilter"

    before = scim.get(f"/Groups/{broken}").json()
    # Writing the extension is refused; echoing it back in a PUT changes nothing.
    response = scim.patch(
        f"/Groups/{broken}",
        json={
            "schemas": [PATCH_OP_SCHEMA],
            "Operations": [
                {"op": "replace", "path": f"{GOGS_GROUP_SCHEMA}:syncState", "value": "synced"}
            ],
        },
    )
    assert response.status_code == 400 and response.json()["scimType"] == "mutability"
    echoed = {k: v for k, v in before.items() if k not in ("id", "meta")}
    echoed[GOGS_GROUP_SCHEMA] = {"syncState": "synced", "teams": []}
    put = scim.put(f"/Groups/{broken}", json=echoed)
    assert put.status_code == 200, put.text
    assert put.json()[GOGS_GROUP_SCHEMA] == before[GOGS_GROUP_SCHEMA]
    assert put.json()["meta"]["version"] == before["meta"]["version"]


def test_wider_team_is_reported_and_never_joined(
    mapped: Mapped, gogs_client: GogsClient, gogs: RunningGogs
) -> None:
    org, gname = unique("org"), unique("g")
    gogs_client.create_org(gogs.admin_user, org)
    gogs_client.create_team(org, "devs", "admin")
    bridge, scim = mapped(rule(gname, org, "devs", permission="read"))
    alice, _ = new_user(scim)
    gid = new_group(scim, gname, [alice])
    assert team_permission(gogs_client, org, "devs") == "admin"
    # Joining an admin team when the rule says read would over-permission alice.
    assert team_members(gogs_client, org, "devs") == set()
    state, error = group_sync(bridge, gid)
    assert state == "error"
    assert error is not None and "'admin'" in error and "'read'" in error
    assert "nobody is added" in error


def test_narrower_team_is_reported_and_joined(
    mapped: Mapped, gogs_client: GogsClient, gogs: RunningGogs
) -> None:
    org, gname = unique("org"), unique("g")
    gogs_client.create_org(gogs.admin_user, org)
    gogs_client.create_team(org, "devs", "read")
    bridge, scim = mapped(rule(gname, org, "devs", permission="write"))
    alice, alice_login = new_user(scim)
    gid = new_group(scim, gname, [alice])
    assert team_permission(gogs_client, org, "devs") == "read"
    assert team_members(gogs_client, org, "devs") == {alice_login}
    state, error = group_sync(bridge, gid)
    assert state == "error" and error is not None and "'read'" in error


def test_delete_group_removes_its_memberships_and_keeps_the_team(
    mapped: Mapped, gogs_client: GogsClient
) -> None:
    org, gname = unique("org"), unique("g")
    _, scim = mapped(rule(gname, org, "devs", create_org=True))
    alice, _ = new_user(scim)
    gid = new_group(scim, gname, [alice])
    assert scim.delete(f"/Groups/{gid}").status_code == 204
    assert team_members(gogs_client, org, "devs") == set()


def test_rename_by_display_name_leaves_by_external_id_stays(
    mapped: Mapped, gogs_client: GogsClient
) -> None:
    org = unique("org")
    by_name, by_ext = unique("n"), unique("e")
    _, scim = mapped(
        rule(by_name, org, "named", create_org=True),
        rule(by_ext, org, "pinned", match="externalId", create_org=True),
    )
    alice, login = new_user(scim)
    named = new_group(scim, by_name, [alice])
    pinned = new_group(scim, unique("whatever"), [alice], externalId=by_ext)
    assert team_members(gogs_client, org, "named") == {login}
    assert team_members(gogs_client, org, "pinned") == {login}
    for gid in (named, pinned):
        patch(
            scim, f"/Groups/{gid}", {"op": "replace", "path": "displayName", "value": unique("r")}
        )
    assert team_members(gogs_client, org, "named") == set()
    assert team_members(gogs_client, org, "pinned") == {login}
    # Renaming back re-joins.
    patch(scim, f"/Groups/{named}", {"op": "replace", "path": "displayName", "value": by_name})
    assert team_members(gogs_client, org, "named") == {login}


def test_owners_team_keeps_the_admin(
    mapped: Mapped, gogs_client: GogsClient, gogs: RunningGogs
) -> None:
    org, gname = unique("org"), unique("g")
    _, scim = mapped(rule(gname, org, "Owners", create_org=True, allow_owners=True))
    alice, login = new_user(scim)
    gid = new_group(scim, gname, [alice])
    assert team_members(gogs_client, org, "Owners") == {login, gogs.admin_user.lower()}
    remove(scim, gid, alice)
    assert team_members(gogs_client, org, "Owners") == {gogs.admin_user.lower()}


def test_group_changes_while_gogs_is_down_reach_it_later(
    mapped: Mapped, gogs_client: GogsClient, store_url: str
) -> None:
    org, gname = unique("org"), unique("g")
    mapping = rule(gname, org, "devs", create_org=True)
    store = store_url  # both bridges share it
    up, up_scim = mapped(mapping, database_url=store)
    alice, login = new_user(up_scim)
    down, down_scim = mapped(
        mapping, database_url=store, gogs={"url": "http://127.0.0.1:9", "timeout_seconds": 2}
    )
    gid = new_group(down_scim, gname, [alice])  # stored and answered although Gogs is down
    state, error = group_sync(down, gid)
    assert state == "pending" and error is not None and "unreachable" in error.lower()
    assert gogs_client.get_org(org) is None
    # Gogs is back: the queued team job (due after its backoff) converges the team.
    with up.engine.begin() as conn:
        conn.execute(update(converge_jobs).values(not_before=datetime.now(UTC)))
    assert up.reconciler.run_due() >= 1
    assert team_members(gogs_client, org, "devs") == {login}
    assert group_sync(up, gid) == ("synced", None)


def test_idp_patch_forms_reach_the_team_and_bad_ones_change_nothing(
    mapped: Mapped, gogs_client: GogsClient
) -> None:
    org, gname = unique("org"), unique("g")
    _, scim = mapped(rule(gname, org, "devs", create_org=True))
    (a, la), (b, lb), (c, lc) = (new_user(scim) for _ in range(3))
    gid = new_group(scim, gname, [a])
    # Entra: several operations in one request.
    patch(
        scim,
        f"/Groups/{gid}",
        {"op": "Add", "path": "members", "value": [{"value": b}, {"value": c}]},
        {"op": "Remove", "path": "members", "value": [{"value": a}]},
    )
    assert team_members(gogs_client, org, "devs") == {lb, lc}
    # Okta group push: a pathless replace of the whole group.
    patch(
        scim,
        f"/Groups/{gid}",
        {"op": "replace", "value": {"id": gid, "displayName": gname, "members": [{"value": a}]}},
    )
    assert team_members(gogs_client, org, "devs") == {la}
    # An unknown member refuses the whole request: neither the store nor Gogs move.
    refused = scim.patch(
        f"/Groups/{gid}",
        json={
            "schemas": [PATCH_OP_SCHEMA],
            "Operations": [
                {"op": "add", "path": "members", "value": [{"value": b}]},
                {"op": "add", "path": "members", "value": [{"value": "no-such-user"}]},
            ],
        },
    )
    assert refused.status_code == 400 and refused.json()["scimType"] == "invalidValue"
    assert {m["value"] for m in scim.get(f"/Groups/{gid}").json()["members"]} == {a}
    assert team_members(gogs_client, org, "devs") == {la}
