"""Request sequences as Okta and Microsoft Entra ID send them, and what Gogs then shows.

Payload shapes follow the vendors' public SCIM documentation (Okta "SCIM 2.0
protocol reference"; Microsoft "Tutorial: Develop and plan provisioning for a SCIM
endpoint", request/response examples).
"""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from gogs_scim.gogs.client import GogsClient
from gogs_scim.gogs.sandbox import RunningGogs
from gogs_scim.scim.schema import ENTERPRISE_USER_SCHEMA, GOGS_USER_SCHEMA, USER_SCHEMA
from tests.conftest import unique
from tests.integration.test_user_provisioning import password_works

pytestmark = pytest.mark.gogs

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def test_okta_user_lifecycle(scim: TestClient, gogs_client: GogsClient, gogs: RunningGogs) -> None:
    user_name = f"{unique('okta')}@example.com"
    # Okta looks the user up before creating it.
    lookup = scim.get(
        "/Users", params={"filter": f'userName eq "{user_name}"', "startIndex": 1, "count": 100}
    )
    assert lookup.status_code == 200
    assert lookup.json()["totalResults"] == 0
    assert lookup.json()["Resources"] == []

    created = scim.post(
        "/Users",
        json={
            "schemas": [USER_SCHEMA],
            "userName": user_name,
            "name": {"givenName": "John", "familyName": "Doe"},
            "emails": [{"primary": True, "value": user_name, "type": "work"}],
            "displayName": "John Doe",
            "locale": "en-US",
            "externalId": "00ujl29u0le5T6Aj10h7",
            "groups": [],
            "password": "1mz050nq-Okta-Pass",
            "active": True,
        },
    )
    assert created.status_code == 201, created.text
    user = created.json()
    login = user[GOGS_USER_SCHEMA]["login"]
    assert password_works(gogs, login, "1mz050nq-Okta-Pass")

    fetched = scim.get(f"/Users/{user['id']}")
    assert fetched.status_code == 200
    assert fetched.json()["externalId"] == "00ujl29u0le5T6Aj10h7"

    # Okta's profile push is a full PUT.
    replaced = scim.put(
        f"/Users/{user['id']}",
        json={
            "schemas": [USER_SCHEMA],
            "id": user["id"],
            "userName": user_name,
            "name": {"givenName": "Johnny", "familyName": "Doe"},
            "emails": [{"primary": True, "value": user_name, "type": "work"}],
            "displayName": "Johnny Doe",
            "locale": "en-US",
            "externalId": "00ujl29u0le5T6Aj10h7",
            "groups": [],
            "active": True,
        },
    )
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["displayName"] == "Johnny Doe"
    account = gogs_client.get_user(login)
    assert account is not None and account.full_name == "Johnny Doe"

    deactivated = scim.patch(
        f"/Users/{user['id']}",
        json={"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": {"active": False}}]},
    )
    assert deactivated.status_code == 200, deactivated.text
    assert deactivated.json()["active"] is False
    assert not password_works(gogs, login, "1mz050nq-Okta-Pass")

    reactivated = scim.patch(
        f"/Users/{user['id']}",
        json={"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": {"active": True}}]},
    )
    assert reactivated.status_code == 200
    assert reactivated.json()["active"] is True
    # Reactivation never brings the old password back.
    assert not password_works(gogs, login, "1mz050nq-Okta-Pass")


def test_entra_user_lifecycle(scim: TestClient, gogs_client: GogsClient, gogs: RunningGogs) -> None:
    manager = scim.post(
        "/Users", json={"schemas": [USER_SCHEMA], "userName": f"{unique('mgr')}@contoso.com"}
    ).json()
    upn = f"{unique('Test_User_')}@contoso.com"
    external_id = unique("0a21f0f2-")
    assert scim.get("/Users", params={"filter": f'userName eq "{upn}"'}).json()["totalResults"] == 0
    created = scim.post(
        "/Users",
        json={
            "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
            "externalId": external_id,
            "userName": upn,
            "active": True,
            "displayName": "Test User",
            "emails": [{"primary": True, "type": "work", "value": upn.lower()}],
            "meta": {"resourceType": "User"},
            "name": {
                "formatted": "givenName familyName",
                "familyName": "familyName",
                "givenName": "givenName",
            },
            "roles": [],
            ENTERPRISE_USER_SCHEMA: {"employeeNumber": "7", "department": "Research"},
        },
    )
    assert created.status_code == 201, created.text
    user = created.json()
    login = user[GOGS_USER_SCHEMA]["login"]
    assert login == upn.split("@")[0]
    assert user[ENTERPRISE_USER_SCHEMA]["department"] == "Research"

    by_external_id = scim.get("/Users", params={"filter": f'externalId eq "{external_id}"'})
    assert [r["id"] for r in by_external_id.json()["Resources"]] == [user["id"]]

    new_mail = f"{unique('renamed')}@contoso.com"
    patched = scim.patch(
        f"/Users/{user['id']}",
        json={
            "schemas": [PATCH_OP],
            "Operations": [
                {"op": "Replace", "path": "displayName", "value": "Renamed User"},
                {"op": "Add", "path": 'emails[type eq "work"].value', "value": new_mail},
                {"op": "Replace", "path": "name.givenName", "value": "Renamed"},
                {"op": "Add", "path": f"{ENTERPRISE_USER_SCHEMA}:manager", "value": manager["id"]},
            ],
        },
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["emails"][0]["value"] == new_mail
    assert body[ENTERPRISE_USER_SCHEMA]["manager"]["value"] == manager["id"]
    account = gogs_client.get_user(login)
    assert account is not None
    assert account.email == new_mail
    assert account.full_name == "Renamed User"

    dotted = scim.patch(
        f"/Users/{user['id']}",
        json={
            "schemas": [PATCH_OP],
            "Operations": [
                {
                    "op": "Replace",
                    "value": {"name.familyName": "Newfamily", "displayName": "Dotted Keys"},
                }
            ],
        },
    )
    assert dotted.status_code == 200, dotted.text
    assert dotted.json()["name"]["familyName"] == "Newfamily"
    account = gogs_client.get_user(login)
    assert account is not None and account.full_name == "Dotted Keys"

    scim.patch(
        f"/Users/{user['id']}",
        json={
            "schemas": [PATCH_OP],
            "Operations": [{"op": "Replace", "path": "password", "value": "Entra-Pass-123"}],
        },
    )
    assert password_works(gogs, login, "Entra-Pass-123")
    disabled = scim.patch(
        f"/Users/{user['id']}",
        json={
            "schemas": [PATCH_OP],
            "Operations": [{"op": "Replace", "path": "active", "value": "False"}],
        },
    )
    assert disabled.status_code == 200, disabled.text
    assert disabled.json()["active"] is False
    assert not password_works(gogs, login, "Entra-Pass-123")

    assert scim.delete(f"/Users/{user['id']}").status_code == 204
    gone = scim.get(f"/Users/{user['id']}")
    assert gone.status_code == 404
    assert gone.json()["status"] == "404"
    # The userName is free again for a new hire.
    again = scim.post("/Users", json={"schemas": [USER_SCHEMA], "userName": upn})
    assert again.status_code == 201, again.text
    assert again.json()[GOGS_USER_SCHEMA]["login"] != login  # the old login stays reserved
