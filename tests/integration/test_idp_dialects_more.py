"""Request sequences as authentik, Keycloak, OneLogin and JumpCloud send them, and what
Gogs then shows.

Each test names, in its docstring, where the payloads come from. Where a vendor's
public material shows the body but not the HTTP method of a step, the docstring says
so and which form is replayed. None of these IdPs sends a password, so a test that
checks deactivation first gives the Gogs account a password of its own (as a person
who set one for git over HTTPS would have) and then checks it stops working.
"""

from __future__ import annotations

import json
from typing import Any

import httpx2
import pytest
from starlette.testclient import TestClient

from gogs_scim.gogs.client import GogsClient
from gogs_scim.gogs.sandbox import RunningGogs
from gogs_scim.scim.schema import ENTERPRISE_USER_SCHEMA, GOGS_USER_SCHEMA, USER_SCHEMA
from tests.conftest import unique
from tests.integration.test_user_provisioning import password_works

pytestmark = pytest.mark.gogs

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SCIM_JSON = "application/scim+json"


def send(
    scim: TestClient, method: str, path: str, body: dict[str, Any], media_type: str
) -> httpx2.Response:
    """A request with the body and Content-Type the IdP uses."""
    return scim.request(
        method, path, content=json.dumps(body), headers={"Content-Type": media_type}
    )


def set_own_password(gogs_client: GogsClient, login: str, password: str) -> None:
    """The person sets a Gogs password themselves (the IdP never sends one)."""
    account = gogs_client.get_user(login)
    assert account is not None
    gogs_client.edit_user(
        login, email=account.email, full_name=account.full_name, password=password
    )


def test_authentik_user_lifecycle(
    scim: TestClient, gogs_client: GogsClient, gogs: RunningGogs
) -> None:
    """authentik's SCIM provider (goauthentik/authentik).

    Bodies: `authentik/providers/scim/clients/users.py` (POST on create; PUT with `id`
    set to the SCIM id on every update, deactivation included; DELETE; on a 409 the
    look-up `GET /Users?filter=userName eq "<userName>"`, taken only when
    `/ServiceProviderConfig` says filters are supported), the default mapping in
    `blueprints/system/providers-scim.yaml` (`name.formatted`, `displayName`,
    `emails` of type `other`, `photos` of type `photo`, `locale`, `active`), and the
    exact request bodies asserted in `authentik/providers/scim/tests/test_user.py`.
    `externalId` is the authentik user's `uid` (a SHA-256 hex digest). Content-Type
    is `application/scim+json` (`clients/base.py`).
    """
    config = scim.get("/ServiceProviderConfig")
    assert config.status_code == 200
    assert config.json()["filter"]["supported"] is True

    username = unique("akuser")
    uid = "5b1d0c1e5d0f8e6c" + unique("")  # authentik's user.uid: a hex digest
    avatar = "https://secure.gravatar.com/avatar/0bc83cb571cd1c50ba6f3e8a78ef1346?size=158"
    body: dict[str, Any] = {
        "schemas": [USER_SCHEMA],
        "active": True,
        "emails": [{"primary": True, "type": "other", "value": f"{username}@GoAuthentik.io"}],
        "externalId": uid,
        "name": {"familyName": "Sobolewski", "formatted": "Jens Sobolewski", "givenName": "Jens"},
        "displayName": "Jens Sobolewski",
        "userName": username,
        "photos": [{"value": avatar, "type": "photo"}],
        "locale": "de",
    }
    created = send(scim, "POST", "/Users", body, SCIM_JSON)
    assert created.status_code == 201, created.text
    user = created.json()
    assert user["id"]  # authentik stops the sync when the answer has no id
    assert user["photos"] == [{"value": avatar, "type": "photo"}]
    assert user["locale"] == "de"
    login = user[GOGS_USER_SCHEMA]["login"]
    assert login == username  # no "@": the whole userName is the login
    account = gogs_client.get_user(login)
    assert account is not None
    assert account.email == f"{username}@goauthentik.io"
    assert account.full_name == "Jens Sobolewski"

    # A second create of the same user (authentik lost its connection object): 409,
    # then the look-up it does to adopt the existing one.
    again = send(scim, "POST", "/Users", body, SCIM_JSON)
    assert again.status_code == 409
    assert again.json()["scimType"] == "uniqueness"
    found = scim.get("/Users", params={"filter": f'userName eq "{username}"'})
    assert found.status_code == 200
    assert [r["id"] for r in found.json()["Resources"]] == [user["id"]]
    # authentik <= 2025.8.1 sends that look-up unquoted (goauthentik/authentik#16455).
    unquoted = scim.get("/Users", params={"filter": f"userName eq {username}"})
    assert unquoted.status_code == 200, unquoted.text
    assert [r["id"] for r in unquoted.json()["Resources"]] == [user["id"]]

    # Rename in authentik: a full PUT carrying the SCIM id.
    renamed = {
        **body,
        "id": user["id"],
        "name": {"familyName": "bar", "formatted": "foo bar", "givenName": "foo"},
        "displayName": "foo bar",
    }
    replaced = send(scim, "PUT", f"/Users/{user['id']}", renamed, SCIM_JSON)
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["name"]["formatted"] == "foo bar"
    account = gogs_client.get_user(login)
    assert account is not None and account.full_name == "foo bar"

    # Deactivating the authentik user is the same PUT with `active: false`.
    set_own_password(gogs_client, login, "Ak-own-pass-1")
    assert password_works(gogs, login, "Ak-own-pass-1")
    disabled = send(scim, "PUT", f"/Users/{user['id']}", {**renamed, "active": False}, SCIM_JSON)
    assert disabled.status_code == 200, disabled.text
    assert disabled.json()["active"] is False
    assert not password_works(gogs, login, "Ak-own-pass-1")

    enabled = send(scim, "PUT", f"/Users/{user['id']}", renamed, SCIM_JSON)
    assert enabled.status_code == 200
    assert enabled.json()["active"] is True

    # Deleting the authentik user (or taking it out of the provider's scope).
    set_own_password(gogs_client, login, "Ak-own-pass-2")
    assert password_works(gogs, login, "Ak-own-pass-2")
    assert scim.delete(f"/Users/{user['id']}").status_code == 204
    assert scim.get(f"/Users/{user['id']}").status_code == 404
    assert not password_works(gogs, login, "Ak-own-pass-2")


def test_keycloak_scim_client_lifecycle(
    scim: TestClient, gogs_client: GogsClient, gogs: RunningGogs
) -> None:
    """Keycloak with the keycloak-scim extension ("keycloak-scim-client": libre.sh's
    keycloak-scim, maintained fork mitodl/keycloak-scim), built on Captain-P-Goldfish's
    SCIM-SDK client.

    Bodies: `src/main/java/sh/libre/scim/core/UserAdapter.java` (`toSCIM`: `externalId`
    is the Keycloak user id, `id` the SCIM id, `displayName` "first last",
    `name.givenName`/`familyName`, one email with neither `type` nor `primary`,
    `active` = Keycloak's "enabled", `roles` = realm roles marked `scim=true`;
    `toPatchBuilder`: three `replace` operations, `active` as the *string* "true" or
    "false", `userName`, `displayName`) and `ScimClient.java` (POST on create; PUT of
    the whole user on every update, or the PATCH above when the provider option
    `user-patchOp` is on; DELETE; the import sync lists `GET /Users` with no filter
    and matches by userName or email). Content-Type is the provider's `content-type`
    setting, `application/json` in the README. The SDK writes a one-item PATCH value
    as a bare string (`PatchRequestOperation.setValues` in SCIM-SDK).

    Scim-for-keycloak (Captain-P-Goldfish) makes Keycloak a SCIM *server*; it sends
    nothing to a service provider, so it has no sequence here.
    """
    kc_id = "f4b3c2a1-0000-4000-8000-" + unique("")[:12].rjust(12, "0")
    username = unique("jdoe")
    body: dict[str, Any] = {
        "schemas": [USER_SCHEMA],
        "externalId": kc_id,
        "userName": username,
        "displayName": "John Doe",
        "name": {"givenName": "John", "familyName": "Doe"},
        "emails": [{"value": f"{username}@Example.org"}],
        "active": True,
        "roles": [{"value": "developer"}],
    }
    created = scim.post("/Users", json=body)
    assert created.status_code == 201, created.text
    user = created.json()
    assert user["roles"] == [{"value": "developer"}]
    login = user[GOGS_USER_SCHEMA]["login"]
    account = gogs_client.get_user(login)
    assert account is not None
    assert account.email == f"{username}@example.org"  # the only email, untyped
    assert account.full_name == "John Doe"

    # The import sync: a plain list, matched by userName/email on Keycloak's side.
    listed = scim.get("/Users")
    assert listed.status_code == 200
    mine = [r for r in listed.json()["Resources"] if r["id"] == user["id"]]
    assert [(r["userName"], r["emails"][0]["value"]) for r in mine] == [
        (username, f"{username}@Example.org")
    ]

    # Default mode: a profile change is a PUT of the whole user with its SCIM id.
    changed = {
        **body,
        "id": user["id"],
        "displayName": "John Smith",
        "name": {"givenName": "John", "familyName": "Smith"},
    }
    replaced = scim.put(f"/Users/{user['id']}", json=changed)
    assert replaced.status_code == 200, replaced.text
    account = gogs_client.get_user(login)
    assert account is not None and account.full_name == "John Smith"

    # Disabling the user in Keycloak: the same PUT with `active: false`.
    set_own_password(gogs_client, login, "Kc-own-pass-1")
    assert password_works(gogs, login, "Kc-own-pass-1")
    disabled = scim.put(f"/Users/{user['id']}", json={**changed, "active": False})
    assert disabled.status_code == 200, disabled.text
    assert disabled.json()["active"] is False
    assert not password_works(gogs, login, "Kc-own-pass-1")

    # `user-patchOp` mode: re-enable, then disable again, with string booleans.
    def patch_mode(active: str, display_name: str) -> httpx2.Response:
        return scim.patch(
            f"/Users/{user['id']}",
            json={
                "schemas": [PATCH_OP],
                "Operations": [
                    {"path": "active", "op": "replace", "value": active},
                    {"path": "userName", "op": "replace", "value": username},
                    {"path": "displayName", "op": "replace", "value": display_name},
                ],
            },
        )

    enabled = patch_mode("true", "John Q. Smith")
    assert enabled.status_code == 200, enabled.text
    assert enabled.json()["active"] is True
    assert enabled.json()["userName"] == username
    account = gogs_client.get_user(login)
    assert account is not None and account.full_name == "John Q. Smith"
    set_own_password(gogs_client, login, "Kc-own-pass-2")
    assert password_works(gogs, login, "Kc-own-pass-2")
    disabled = patch_mode("false", "John Q. Smith")
    assert disabled.status_code == 200, disabled.text
    assert disabled.json()["active"] is False
    assert not password_works(gogs, login, "Kc-own-pass-2")

    assert scim.delete(f"/Users/{user['id']}").status_code == 204
    assert scim.get(f"/Users/{user['id']}").status_code == 404


def test_onelogin_scim_v2_enterprise_template(
    scim: TestClient, gogs_client: GogsClient, gogs: RunningGogs
) -> None:
    """OneLogin's "SCIM Provisioner with SAML (SCIM v2 Enterprise)" connector.

    OneLogin sends whatever its SCIM JSON template renders. The template is the one
    OneLogin's KB article "SCIM Custom Connector" (KB0013904) sets up for that
    connector, as vendors' OneLogin setup pages reproduce it: `title`, `userType`,
    `timezone`, one work `addresses` item, the Enterprise `organization`, `division`,
    `department` and `manager {value: external_manager_id, displayName: "first last"}`.
    A parameter the user has no value for renders as an empty string (so a user
    without a manager sends `manager {"value": "", "displayName": " "}`).
    OneLogin's developer page "Define Your SCIM User Schema" writes `emails` as a
    single object rather than a list (noted as "OneLogin sends a dict despite the
    spec" in django-scim based servers); the update below uses that form.
    Templates that map `active` to `{$user.active}` send it as a string.

    The HTTP method of OneLogin's update and suspend calls is not in its public
    developer pages; the rendered template is replayed as a PUT (the template is a
    whole user). Delete is "When users are deleted in OneLogin: Delete".
    """
    user_name = f"{unique('jane.doe')}@example.com"
    created = scim.post(
        "/Users",
        json={
            "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
            "userName": user_name,
            "name": {"familyName": "Doe", "givenName": "Jane"},
            "title": "",
            "userType": "",
            "timezone": "",
            "emails": [
                {"value": user_name.replace("jane", "Jane"), "type": "work", "primary": True}
            ],
            "addresses": [{"locality": "", "region": "", "country": ""}],
            ENTERPRISE_USER_SCHEMA: {
                "organization": "",
                "division": "",
                "department": "",
                "manager": {"value": "", "displayName": " "},
            },
        },
    )
    assert created.status_code == 201, created.text
    user = created.json()
    login = user[GOGS_USER_SCHEMA]["login"]
    assert login == user_name.split("@")[0]
    account = gogs_client.get_user(login)
    assert account is not None
    assert account.email == user_name  # lowercased
    assert account.full_name == "Jane Doe"  # given + family: the template has no displayName

    # The user gets a title, a city and a manager in OneLogin: the template again.
    template: dict[str, Any] = {
        "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
        "userName": user_name,
        "name": {"familyName": "Doe-Smith", "givenName": "Jane"},
        "title": "Engineer",
        "userType": "",
        "timezone": "Europe/Paris",
        "emails": {"value": user_name, "type": "work", "primary": True},
        "addresses": [{"locality": "Paris", "region": "", "country": "FR"}],
        ENTERPRISE_USER_SCHEMA: {
            "organization": "Example",
            "division": "",
            "department": "R&D",
            "manager": {"value": "48211931", "displayName": "Ada Lovelace"},
        },
    }
    replaced = scim.put(f"/Users/{user['id']}", json=template)
    assert replaced.status_code == 200, replaced.text
    body = replaced.json()
    assert body["title"] == "Engineer"
    assert body[ENTERPRISE_USER_SCHEMA]["manager"]["value"] == "48211931"
    assert body["emails"] == [{"value": user_name, "type": "work", "primary": True}]
    account = gogs_client.get_user(login)
    assert account is not None and account.full_name == "Jane Doe-Smith"

    # Suspended in OneLogin, with a template mapping `active` to `{$user.active}`.
    set_own_password(gogs_client, login, "Ol-own-pass-1")
    assert password_works(gogs, login, "Ol-own-pass-1")
    suspended = scim.put(f"/Users/{user['id']}", json={**template, "active": "false"})
    assert suspended.status_code == 200, suspended.text
    assert suspended.json()["active"] is False
    assert not password_works(gogs, login, "Ol-own-pass-1")

    assert scim.delete(f"/Users/{user['id']}").status_code == 204
    assert scim.get(f"/Users/{user['id']}").status_code == 404


def test_jumpcloud_custom_scim_lifecycle(
    scim: TestClient, gogs_client: GogsClient, gogs: RunningGogs
) -> None:
    """JumpCloud's "Custom SCIM" Identity Management connector.

    Sequence: JumpCloud support article "Identity Management using a Custom SCIM
    Integration" (Test Connection creates a test user from the admin-given email and
    deletes it again; with DELETE supported nothing is left behind; afterwards users
    bound to the application are looked up, created, updated and set inactive, the
    "user_lookup_provision", "user_create_provision", "user_update_provision" and
    "user_deprovision" events of its Directory Insights list). Attributes: the
    connector pages' "JumpCloud Property / SCIM v2 Mapping" tables (`username` ->
    `userName`, `firstname` -> `name.givenName`, `lastname` -> `name.familyName`,
    `email` -> the work email, `displayname` -> `displayName`, `jobTitle` -> `title`,
    `department`/`employeeIdentifier` -> the Enterprise `department`/`employeeNumber`).

    JumpCloud publishes neither the wire bodies nor the HTTP method of its updates;
    the test replays the mapped attributes as the standard `filter=userName eq`
    look-up, POST, and PUT (whole user), deactivation being that PUT with `active`
    false. Nothing JumpCloud-specific (string booleans, extension URNs) is documented.
    """
    # Test Connection with a test user; DELETE is supported, so it is removed.
    test_user = f"{unique('jc-test')}@example.com"
    probe = scim.post(
        "/Users",
        json={
            "schemas": [USER_SCHEMA],
            "userName": test_user,
            "name": {"givenName": "JumpCloud", "familyName": "Test"},
            "emails": [{"value": test_user, "type": "work", "primary": True}],
            "active": True,
        },
    )
    assert probe.status_code == 201, probe.text
    assert scim.delete(f"/Users/{probe.json()['id']}").status_code == 204
    assert scim.get(f"/Users/{probe.json()['id']}").status_code == 404

    user_name = f"{unique('Sam.Jones')}@Example.com"
    lookup = scim.get("/Users", params={"filter": f'userName eq "{user_name}"'})
    assert lookup.status_code == 200 and lookup.json()["totalResults"] == 0

    body: dict[str, Any] = {
        "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
        "userName": user_name,
        "name": {"givenName": "Sam", "familyName": "Jones"},
        "displayName": "Sam Jones",
        "title": "Support",
        "emails": [{"value": user_name, "type": "work", "primary": True}],
        "active": True,
        ENTERPRISE_USER_SCHEMA: {"employeeNumber": "1042", "department": "Support"},
    }
    created = scim.post("/Users", json=body)
    assert created.status_code == 201, created.text
    user = created.json()
    login = user[GOGS_USER_SCHEMA]["login"]
    assert login == user_name.split("@")[0]
    assert user[ENTERPRISE_USER_SCHEMA]["employeeNumber"] == "1042"
    account = gogs_client.get_user(login)
    assert account is not None
    assert account.email == user_name.lower()
    assert account.full_name == "Sam Jones"
    # The next look-up (JumpCloud checks before updating) finds it, case-insensitively.
    lookup = scim.get("/Users", params={"filter": f'userName eq "{user_name.lower()}"'})
    assert [r["id"] for r in lookup.json()["Resources"]] == [user["id"]]

    new_mail = f"{unique('sam.jones-smith')}@example.com"
    changed = {
        **body,
        "displayName": "Sam Jones-Smith",
        "name": {"givenName": "Sam", "familyName": "Jones-Smith"},
        "emails": [{"value": new_mail, "type": "work", "primary": True}],
    }
    replaced = scim.put(f"/Users/{user['id']}", json=changed)
    assert replaced.status_code == 200, replaced.text
    account = gogs_client.get_user(login)
    assert account is not None
    assert account.email == new_mail
    assert account.full_name == "Sam Jones-Smith"

    set_own_password(gogs_client, login, "Jc-own-pass-1")
    assert password_works(gogs, login, "Jc-own-pass-1")
    inactive = scim.put(f"/Users/{user['id']}", json={**changed, "active": False})
    assert inactive.status_code == 200, inactive.text
    assert inactive.json()["active"] is False
    assert not password_works(gogs, login, "Jc-own-pass-1")
