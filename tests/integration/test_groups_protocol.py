"""SCIM Groups over HTTP: CRUD, every PATCH member form, filters, ETags (real Gogs)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy import event, func, select
from starlette.testclient import TestClient

from gogs_scim.bootstrap import Bridge
from gogs_scim.scim.patch import PATCH_OP_SCHEMA
from gogs_scim.scim.schema import GOGS_GROUP_SCHEMA, GROUP_SCHEMA, USER_SCHEMA
from gogs_scim.store.tables import group_members
from tests.conftest import unique

pytestmark = pytest.mark.gogs

SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"


def make_user(scim: TestClient, **extra: Any) -> str:
    name = unique("m")
    body = {"schemas": [USER_SCHEMA], "userName": f"{name}@example.com", **extra}
    response = scim.post("/Users", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def make_group(scim: TestClient, members: Sequence[str] = (), **extra: Any) -> dict[str, Any]:
    body = {
        "schemas": [GROUP_SCHEMA],
        "displayName": unique("g"),
        "members": [{"value": m} for m in members],
        **extra,
    }
    response = scim.post("/Groups", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def patch(scim: TestClient, group_id: str, *ops: dict[str, Any], **headers: str) -> Any:
    return scim.patch(
        f"/Groups/{group_id}",
        json={"schemas": [PATCH_OP_SCHEMA], "Operations": list(ops)},
        headers=headers,
    )


def member_ids(scim: TestClient, group_id: str) -> set[str]:
    body = scim.get(f"/Groups/{group_id}").json()
    return {m["value"] for m in body.get("members", [])}


def test_create_get_and_render(scim: TestClient) -> None:
    alice = make_user(scim, displayName="Alice A")
    created = scim.post(
        "/Groups",
        json={
            "schemas": [GROUP_SCHEMA],
            "displayName": "Engineering",
            "externalId": "ext-eng",
            "members": [{"value": alice}],
        },
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert created.headers["location"].endswith(f"/scim/v2/Groups/{body['id']}")
    assert created.headers["etag"] == body["meta"]["version"] == 'W/"1"'
    assert body["schemas"] == [GROUP_SCHEMA, GOGS_GROUP_SCHEMA]
    # No mapping rule names it: no team to wait for.
    assert body[GOGS_GROUP_SCHEMA] == {"syncState": "synced", "teams": []}
    assert body["displayName"] == "Engineering"
    assert body["externalId"] == "ext-eng"
    assert body["meta"]["resourceType"] == "Group"
    [member] = body["members"]
    assert member["value"] == alice
    assert member["display"] == "Alice A"
    assert member["$ref"].endswith(f"/Users/{alice}")
    fetched = scim.get(f"/Groups/{body['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == body


def test_unknown_group_and_bad_bodies(scim: TestClient) -> None:
    assert scim.get("/Groups/nope").status_code == 404
    missing_name = scim.post("/Groups", json={"schemas": [GROUP_SCHEMA]})
    assert missing_name.status_code == 400
    no_value = scim.post(
        "/Groups",
        json={"schemas": [GROUP_SCHEMA], "displayName": "x", "members": [{"display": "d"}]},
    )
    assert no_value.status_code == 400
    assert no_value.json()["scimType"] == "invalidValue"
    group = make_group(scim)
    bad_op = patch(scim, group["id"], {"op": "frobnicate", "path": "members", "value": []})
    assert bad_op.status_code == 400
    assert bad_op.json()["scimType"] == "invalidSyntax"
    bad_path = patch(scim, group["id"], {"op": "add", "path": "nosuch", "value": "x"})
    assert bad_path.status_code == 400
    assert bad_path.json()["scimType"] == "invalidPath"


def test_unknown_or_deleted_member_is_refused_and_nothing_changes(
    scim: TestClient, bridge: Bridge
) -> None:
    alice, gone = make_user(scim), make_user(scim)
    assert scim.delete(f"/Users/{gone}").status_code == 204
    group = make_group(scim, [alice])
    for bad in ("no-such-user", gone):
        response = patch(
            scim,
            group["id"],
            {"op": "replace", "path": "displayName", "value": "renamed"},
            {"op": "add", "path": "members", "value": [{"value": bad}]},
        )
        assert response.status_code == 400, response.text
        assert response.json()["scimType"] == "invalidValue"
        assert bad in response.json()["detail"]
    after = scim.get(f"/Groups/{group['id']}").json()
    assert after["displayName"] == group["displayName"]
    assert after["meta"]["version"] == group["meta"]["version"]
    assert {m["value"] for m in after["members"]} == {alice}
    created = scim.post(
        "/Groups",
        json={"schemas": [GROUP_SCHEMA], "displayName": "x", "members": [{"value": "nope"}]},
    )
    assert created.status_code == 400
    listed = scim.get("/Groups", params={"filter": 'displayName eq "x"'}).json()
    assert listed["totalResults"] == 0


def test_patch_member_forms(scim: TestClient) -> None:
    a, b, c, d = (make_user(scim) for _ in range(4))
    group = make_group(scim)
    gid = group["id"]
    # Entra / Okta add: a list of {value}.
    assert (
        patch(
            scim, gid, {"op": "add", "path": "members", "value": [{"value": a}, {"value": b}]}
        ).status_code
        == 200
    )
    assert member_ids(scim, gid) == {a, b}
    # Okta remove: a value filter in the path.
    assert patch(scim, gid, {"op": "remove", "path": f'members[value eq "{a}"]'}).status_code == 200
    assert member_ids(scim, gid) == {b}
    # Entra remove: path "members" and a value list; ops in any letter case.
    response = patch(
        scim,
        gid,
        {"op": "Add", "path": "members", "value": [{"value": c}, {"value": d}]},
        {"op": "Remove", "path": "members", "value": [{"value": b}]},
    )
    assert response.status_code == 200
    assert member_ids(scim, gid) == {c, d}
    # Replace the whole list.
    assert (
        patch(scim, gid, {"op": "replace", "path": "members", "value": [{"value": a}]}).status_code
        == 200
    )
    assert member_ids(scim, gid) == {a}
    # Okta group push: a pathless replace carrying id, displayName and members.
    response = patch(
        scim,
        gid,
        {
            "op": "replace",
            "value": {
                "id": gid,
                "displayName": "Pushed",
                "members": [{"value": b, "display": "B"}],
            },
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["displayName"] == "Pushed"
    assert response.json()["members"][0]["display"] == "B"
    assert member_ids(scim, gid) == {b}
    # Entra: many ops in one request, including a remove of all members.
    response = patch(
        scim,
        gid,
        {"op": "remove", "path": "members"},
        {"op": "add", "path": "members", "value": [{"value": c}]},
        {"op": "add", "path": "members", "value": [{"value": d}]},
        {"op": "remove", "path": f'members[value eq "{c}" or value eq "{a}"]'},
        {"op": "replace", "path": "externalId", "value": "e1"},
    )
    assert response.status_code == 200, response.text
    assert member_ids(scim, gid) == {d}
    assert response.json()["externalId"] == "e1"
    # A filter on another sub-attribute still works (the exact, slow path).
    response = patch(scim, gid, {"op": "remove", "path": 'members[type eq "User"]'})
    assert response.status_code == 200, response.text
    assert member_ids(scim, gid) == set()
    # Removing a member that is not one changes nothing.
    before = scim.get(f"/Groups/{gid}").json()["meta"]["version"]
    assert patch(scim, gid, {"op": "remove", "path": f'members[value eq "{a}"]'}).status_code == 200
    assert scim.get(f"/Groups/{gid}").json()["meta"]["version"] == before


def test_nested_groups_are_refused(scim: TestClient) -> None:
    inner = make_group(scim)
    outer = make_group(scim)
    response = patch(
        scim,
        outer["id"],
        {"op": "add", "path": "members", "value": [{"value": inner["id"], "type": "Group"}]},
    )
    assert response.status_code == 400
    assert response.json()["scimType"] == "invalidValue"


def test_put_replaces_members_and_keeps_id(scim: TestClient) -> None:
    a, b = make_user(scim), make_user(scim)
    group = make_group(scim, [a])
    response = scim.put(
        f"/Groups/{group['id']}",
        json={"schemas": [GROUP_SCHEMA], "displayName": "Renamed", "members": [{"value": b}]},
    )
    assert response.status_code == 200, response.text
    assert response.json()["displayName"] == "Renamed"
    assert {m["value"] for m in response.json()["members"]} == {b}
    without = scim.put(
        f"/Groups/{group['id']}", json={"schemas": [GROUP_SCHEMA], "displayName": "Renamed"}
    )
    assert "members" not in without.json()


def test_etags_and_if_match(scim: TestClient) -> None:
    a = make_user(scim)
    group = make_group(scim)
    gid, v1 = group["id"], group["meta"]["version"]
    added = patch(scim, gid, {"op": "add", "path": "members", "value": [{"value": a}]})
    v2 = added.json()["meta"]["version"]
    assert v2 != v1 and added.headers["etag"] == v2
    stale = patch(scim, gid, {"op": "remove", "path": "members"}, **{"If-Match": v1})
    assert stale.status_code == 412
    assert member_ids(scim, gid) == {a}
    assert (
        scim.put(
            f"/Groups/{gid}",
            json={"schemas": [GROUP_SCHEMA], "displayName": "x"},
            headers={"If-Match": v1},
        ).status_code
        == 412
    )
    assert scim.delete(f"/Groups/{gid}", headers={"If-Match": v1}).status_code == 412
    cached = scim.get(f"/Groups/{gid}", headers={"If-None-Match": v2})
    assert cached.status_code == 304
    ok = patch(scim, gid, {"op": "remove", "path": "members"}, **{"If-Match": v2})
    assert ok.status_code == 200
    assert (
        scim.delete(
            f"/Groups/{gid}", headers={"If-Match": ok.json()["meta"]["version"]}
        ).status_code
        == 204
    )
    assert scim.get(f"/Groups/{gid}").status_code == 404


def test_list_filters_paging_sort_and_search(scim: TestClient) -> None:
    tag = unique("t")
    a = make_user(scim)
    names = [f"{tag}-{n}" for n in ("c", "a", "b")]
    made = [
        make_group(
            scim, [a] if name.endswith("a") else [], displayName=name, externalId=f"x-{name}"
        )
        for name in names
    ]
    by_name = scim.get("/Groups", params={"filter": f'displayName eq "{names[1].upper()}"'}).json()
    assert [g["id"] for g in by_name["Resources"]] == [made[1]["id"]]
    by_ext = scim.get("/Groups", params={"filter": f'externalId eq "x-{names[2]}"'}).json()
    assert [g["id"] for g in by_ext["Resources"]] == [made[2]["id"]]
    by_member = scim.get("/Groups", params={"filter": f'members[value eq "{a}"]'}).json()
    assert [g["id"] for g in by_member["Resources"]] == [made[1]["id"]]
    page = scim.get(
        "/Groups",
        params={"filter": f'displayName sw "{tag}"', "sortBy": "displayName", "count": 2},
    ).json()
    assert page["totalResults"] == 3
    assert [g["displayName"] for g in page["Resources"]] == sorted(names)[:2]
    second = scim.get(
        "/Groups",
        params={
            "filter": f'displayName sw "{tag}"',
            "sortBy": "displayName",
            "sortOrder": "descending",
            "startIndex": 3,
            "count": 2,
        },
    ).json()
    assert [g["displayName"] for g in second["Resources"]] == [sorted(names)[0]]
    searched = scim.post(
        "/Groups/.search",
        json={
            "schemas": [SEARCH],
            "filter": f'members[value eq "{a}"]',
            "attributes": ["displayName"],
        },
    ).json()
    assert searched["Resources"] == [
        {
            "schemas": [GROUP_SCHEMA, GOGS_GROUP_SCHEMA],
            "id": made[1]["id"],
            "displayName": names[1],
        }
    ]
    bad = scim.get("/Groups", params={"filter": 'nosuch eq "1"'})
    assert bad.status_code == 400 and bad.json()["scimType"] == "invalidFilter"


def test_excluded_members_are_never_loaded(scim: TestClient, bridge: Bridge) -> None:
    users = [make_user(scim) for _ in range(3)]
    group = make_group(scim, users)
    loads: list[str] = []
    original = bridge.engine

    def spy(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "scim_group_members" in statement:
            loads.append(statement)

    event.listen(original, "before_cursor_execute", spy)
    try:
        lean = scim.get(f"/Groups/{group['id']}", params={"excludedAttributes": "members"})
        listed = scim.get(
            "/Groups",
            params={
                "filter": f'displayName eq "{group["displayName"]}"',
                "excludedAttributes": "members",
            },
        )
        only_name = scim.get(f"/Groups/{group['id']}", params={"attributes": "displayName"})
    finally:
        event.remove(original, "before_cursor_execute", spy)
    assert "members" not in lean.json() and lean.json()["displayName"]
    assert "members" not in listed.json()["Resources"][0]
    assert "members" not in only_name.json()
    assert loads == []
    with bridge.engine.connect() as conn:
        count = conn.execute(
            select(func.count())
            .select_from(group_members)
            .where(group_members.c.group_id == group["id"])
        ).scalar_one()
    assert count == 3


def test_deleted_user_disappears_from_members(scim: TestClient) -> None:
    a, b = make_user(scim), make_user(scim)
    group = make_group(scim, [a, b])
    other = make_group(scim, [b])
    untouched = make_group(scim, [a])
    assert scim.delete(f"/Users/{b}").status_code == 204
    assert member_ids(scim, group["id"]) == {a}
    # Its groups changed: a new version (an IdP's stale If-Match is refused) and
    # lastModified; a group it was not in keeps both.
    for changed in (group, other):
        now = scim.get(f"/Groups/{changed['id']}").json()
        assert now["meta"]["version"] == 'W/"2"'
        assert now["meta"]["lastModified"] > changed["meta"]["lastModified"]
    assert scim.get(f"/Groups/{untouched['id']}").json()["meta"] == untouched["meta"]
    stale = patch(
        scim,
        group["id"],
        {"op": "replace", "path": "displayName", "value": unique("g")},
        **{"If-Match": group["meta"]["version"]},
    )
    assert stale.status_code == 412


def test_users_show_their_groups(scim: TestClient) -> None:
    a, b = make_user(scim), make_user(scim)
    first = make_group(scim, [a], displayName=unique("first"))
    second = make_group(scim, [a, b])
    user = scim.get(f"/Users/{a}").json()
    assert sorted(g["value"] for g in user["groups"]) == sorted([first["id"], second["id"]])
    assert {g["display"] for g in user["groups"]} == {first["displayName"], second["displayName"]}
    assert all(g["type"] == "direct" for g in user["groups"])
    listed = scim.get("/Users", params={"filter": f'id eq "{b}"'}).json()
    assert [g["value"] for g in listed["Resources"][0]["groups"]] == [second["id"]]
    lean = scim.get(f"/Users/{a}", params={"excludedAttributes": "groups"}).json()
    assert "groups" not in lean
    # A PUT echoing the readOnly attribute changes nothing about membership.
    echoed = scim.put(f"/Users/{b}", json={**scim.get(f"/Users/{b}").json(), "groups": []})
    assert echoed.status_code == 200, echoed.text
    assert [g["value"] for g in echoed.json()["groups"]] == [second["id"]]
    assert scim.delete(f"/Groups/{second['id']}").status_code == 204
    assert "groups" not in scim.get(f"/Users/{b}").json()


def test_members_under_the_core_urn_are_members_not_document(scim: TestClient) -> None:
    a = make_user(scim)
    group = make_group(scim)
    b = make_user(scim)
    qualified = {"op": "add", "value": {f"{GROUP_SCHEMA}:members": [{"value": a}]}}
    response = patch(scim, group["id"], qualified)
    assert response.status_code == 200, response.text
    assert member_ids(scim, group["id"]) == {a}
    core_path = {"op": "add", "path": GROUP_SCHEMA, "value": {"members": [{"value": b}]}}
    assert patch(scim, group["id"], core_path).status_code == 200
    assert member_ids(scim, group["id"]) == {a, b}
    lean = scim.get(f"/Groups/{group['id']}", params={"excludedAttributes": "members"}).json()
    assert "members" not in lean
