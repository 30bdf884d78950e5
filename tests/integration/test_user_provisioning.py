"""A SCIM user becomes a Gogs account, proven by reading Gogs back (real Gogs)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from gogs_scim.bootstrap import Bridge
from gogs_scim.gogs.client import GogsClient
from gogs_scim.gogs.sandbox import RunningGogs
from gogs_scim.scim.schema import GOGS_USER_SCHEMA, USER_SCHEMA
from tests.conftest import unique

pytestmark = pytest.mark.gogs


def password_works(gogs: RunningGogs, login: str, password: str) -> bool:
    """Whether Gogs accepts the password (Basic auth; its token listing takes only Basic)."""
    response = httpx.get(f"{gogs.url}/api/v1/users/{login}/tokens", auth=(login, password))
    assert response.status_code in (200, 401), response.text
    return response.status_code == 200


def new_user(user_name: str, **extra: Any) -> dict[str, Any]:
    return {
        "schemas": [USER_SCHEMA],
        "userName": user_name,
        "name": {"givenName": "Ada", "familyName": "Lovelace"},
        "emails": [{"value": user_name.upper(), "type": "work", "primary": True}],
        **extra,
    }


def test_post_creates_the_gogs_account_and_get_returns_it(
    scim: TestClient, gogs_client: GogsClient
) -> None:
    user_name = f"{unique('ada')}@Example.com"
    created = scim.post("/Users", json=new_user(user_name))
    assert created.status_code == 201, created.text
    body = created.json()
    login = body[GOGS_USER_SCHEMA]["login"]
    assert login == user_name.split("@")[0]
    assert body[GOGS_USER_SCHEMA]["syncState"] == "synced"
    assert created.headers["location"].endswith(f"/scim/v2/Users/{body['id']}")
    assert created.headers["etag"] == body["meta"]["version"]

    account = gogs_client.get_user(login)
    assert account is not None
    assert account.email == user_name.lower()  # Gogs gets the email lowercased
    assert account.full_name == "Ada Lovelace"
    assert body[GOGS_USER_SCHEMA]["userId"] == account.id

    fetched = scim.get(f"/Users/{body['id']}")
    assert fetched.status_code == 200
    assert fetched.json()["userName"] == user_name
    assert fetched.json()["emails"][0]["value"] == user_name.upper()


def test_idp_password_is_the_gogs_password_and_never_returned(
    scim: TestClient, gogs: RunningGogs
) -> None:
    user_name = unique("pw")
    password = "Correct-Horse-Battery-9"
    created = scim.post("/Users", json=new_user(f"{user_name}@example.com", password=password))
    assert created.status_code == 201, created.text
    assert "password" not in created.text
    assert password not in created.text
    login = created.json()[GOGS_USER_SCHEMA]["login"]
    assert password_works(gogs, login, password)
    assert password not in scim.get(f"/Users/{created.json()['id']}").text


def test_without_a_password_gogs_gets_a_random_one_not_an_empty_one(
    scim: TestClient, gogs: RunningGogs
) -> None:
    created = scim.post("/Users", json=new_user(f"{unique('np')}@example.com"))
    login = created.json()[GOGS_USER_SCHEMA]["login"]
    assert not password_works(gogs, login, "")


def test_user_name_taken_only_in_gogs_is_a_409_and_leaves_nothing(
    scim: TestClient, gogs_client: GogsClient
) -> None:
    login = unique("pre")
    gogs_client.create_user(
        login=login, email=f"{login}@other.example", full_name="Someone Else", password="x" * 20
    )
    refused = scim.post("/Users", json=new_user(f"{login}@example.com"))
    assert refused.status_code == 409
    assert refused.json()["scimType"] == "uniqueness"
    assert login in refused.json()["detail"]
    listed = scim.get("/Users", params={"filter": f'userName eq "{login}@example.com"'})
    assert listed.json()["totalResults"] == 0
    account = gogs_client.get_user(login)
    assert account is not None and account.full_name == "Someone Else"


def test_duplicate_user_name_is_409(scim: TestClient) -> None:
    user_name = f"{unique('dup')}@example.com"
    assert scim.post("/Users", json=new_user(user_name)).status_code == 201
    again = scim.post("/Users", json=new_user(user_name.upper()))
    assert again.status_code == 409
    assert again.json()["scimType"] == "uniqueness"


def test_deactivation_scrambles_the_gogs_password(scim: TestClient, gogs: RunningGogs) -> None:
    password = "Initial-Password-123"
    created = scim.post(
        "/Users", json=new_user(f"{unique('off')}@example.com", password=password)
    ).json()
    login = created[GOGS_USER_SCHEMA]["login"]
    assert password_works(gogs, login, password)
    patched = scim.patch(
        f"/Users/{created['id']}",
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "value": {"active": False}}],
        },
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["active"] is False
    assert not password_works(gogs, login, password)


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer wrong-token"}, 401),
        ({"Authorization": "Basic x"}, 401),
    ],
)
def test_requests_without_a_valid_token_are_refused_and_change_nothing(
    bridge: Bridge, scim: TestClient, headers: dict[str, str], status: int
) -> None:
    user_name = f"{unique('anon')}@example.com"
    with TestClient(bridge.app, base_url="http://testserver/scim/v2", headers=headers) as anon:
        response = anon.post("/Users", json=new_user(user_name))
        listing = anon.get("/Users")
    assert response.status_code == status
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert response.json()["status"] == "401"
    assert listing.status_code == 401
    found = scim.get("/Users", params={"filter": f'userName eq "{user_name}"'})
    assert found.json()["totalResults"] == 0


def test_etags_guard_writes_and_spare_reads(scim: TestClient) -> None:
    user = scim.post("/Users", json=new_user(f"{unique('etag')}@example.com")).json()
    tag = user["meta"]["version"]
    unchanged = scim.get(f"/Users/{user['id']}", headers={"If-None-Match": tag})
    assert unchanged.status_code == 304
    body = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "title", "value": "Engineer"}],
    }
    patched = scim.patch(f"/Users/{user['id']}", json=body, headers={"If-Match": tag})
    assert patched.status_code == 200
    new_tag = patched.headers["etag"]
    assert new_tag != tag
    assert patched.json()["meta"]["version"] == new_tag
    stale = scim.patch(f"/Users/{user['id']}", json=body, headers={"If-Match": tag})
    assert stale.status_code == 412
    assert scim.get(f"/Users/{user['id']}", headers={"If-None-Match": tag}).status_code == 200
    # A PATCH that changes nothing keeps the version, so caches stay valid.
    same = scim.patch(f"/Users/{user['id']}", json=body, headers={"If-Match": new_tag})
    assert same.status_code == 200
    assert same.headers["etag"] == new_tag


def test_list_pages_are_exact_and_disjoint(scim: TestClient) -> None:
    marker = unique("page")
    ids = {
        scim.post("/Users", json=new_user(f"{marker}-{n}@example.com")).json()["id"]
        for n in range(5)
    }
    seen: list[str] = []
    for start in (1, 3, 5):
        page = scim.get(
            "/Users",
            params={
                "filter": f'userName sw "{marker}"',
                "startIndex": start,
                "count": 2,
                "sortBy": "userName",
                "attributes": "userName",
            },
        ).json()
        assert page["totalResults"] == 5
        assert page["startIndex"] == start
        assert all(set(r) == {"id", "schemas", "userName"} for r in page["Resources"])
        seen.extend(r["id"] for r in page["Resources"])
    assert len(seen) == 5
    assert set(seen) == ids
    names = [
        r["userName"]
        for r in scim.get(
            "/Users",
            params={
                "filter": f'userName sw "{marker}"',
                "sortBy": "userName",
                "sortOrder": "descending",
            },
        ).json()["Resources"]
    ]
    assert names == sorted(names, reverse=True)


def test_root_search_spans_users_and_groups(scim: TestClient) -> None:
    marker = unique("root")
    user = scim.post("/Users", json=new_user(f"{marker}@example.com")).json()
    group = scim.post(
        "/Groups",
        json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": marker},
    ).json()
    search = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]}
    # displayName exists on both types; userName only on users (groups then match nothing).
    both = scim.post("/.search", json={**search, "filter": f'displayName sw "{marker}"'}).json()
    assert both["totalResults"] == 1  # the user's displayName is "Ada Lovelace"
    assert [r["id"] for r in both["Resources"]] == [group["id"]]
    by_name = scim.post(
        "/.search", json={**search, "filter": f'userName eq "{marker}@example.com"'}
    ).json()
    assert [r["id"] for r in by_name["Resources"]] == [user["id"]]
    either = scim.post(
        "/.search",
        json={
            **search,
            "filter": f'displayName eq "{marker}" or userName sw "{marker}"',
            "count": 1,
        },
    )
    assert either.status_code == 200, either.text
    bad = scim.post("/.search", json={**search, "filter": "shoeSize eq 1"})
    assert bad.status_code == 400
    assert bad.json()["scimType"] == "invalidFilter"
