"""Every malformed request gets a SCIM error and changes nothing, in the store or in Gogs."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.testclient import TestClient

from gogs_scim.gogs.client import GogsClient
from gogs_scim.scim.schema import GOGS_USER_SCHEMA, USER_SCHEMA
from tests.conftest import unique

pytestmark = pytest.mark.gogs

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"

JSON = {"Content-Type": "application/scim+json"}


def patch(*operations: dict[str, Any]) -> str:
    return json.dumps({"schemas": [PATCH_OP], "Operations": list(operations)})


# (method, path template, headers, body, status, scimType)
CASES: list[tuple[str, str, dict[str, str], str | bytes, int, str | None]] = [
    ("POST", "/Users", JSON, "{not json", 400, "invalidSyntax"),
    ("POST", "/Users", JSON, "[1, 2]", 400, "invalidSyntax"),
    ("POST", "/Users", {"Content-Type": "text/plain"}, '{"userName": "x"}', 415, "invalidSyntax"),
    ("POST", "/Users", JSON, json.dumps({"schemas": [USER_SCHEMA]}), 400, "invalidValue"),
    ("POST", "/Users", JSON, json.dumps({"userName": "x", "shoeSize": 44}), 400, "invalidSyntax"),
    ("POST", "/Users", JSON, json.dumps({"userName": "x", "active": "maybe"}), 400, "invalidValue"),
    ("POST", "/Users", JSON, json.dumps({"userName": "x", "emails": "nope@x"}), None, None),
    ("POST", "/Users", JSON, b'{"userName": "' + b"x" * 2_000_000 + b'"}', 413, "invalidSyntax"),
    ("PUT", "/Users/{id}", JSON, json.dumps({"id": "other", "userName": "x"}), 400, "mutability"),
    (
        "PUT",
        "/Users/{id}",
        JSON,
        json.dumps({"name": {"givenName": "no userName"}}),
        400,
        "invalidValue",
    ),
    (
        "PATCH",
        "/Users/{id}",
        JSON,
        patch({"op": "explode", "path": "title", "value": "x"}),
        400,
        "invalidSyntax",
    ),
    (
        "PATCH",
        "/Users/{id}",
        JSON,
        patch({"op": "replace", "path": "id", "value": "x"}),
        400,
        "mutability",
    ),
    (
        "PATCH",
        "/Users/{id}",
        JSON,
        patch({"op": "replace", "path": "meta.created", "value": "x"}),
        400,
        "mutability",
    ),
    ("PATCH", "/Users/{id}", JSON, patch({"op": "remove", "path": "userName"}), 400, "mutability"),
    (
        "PATCH",
        "/Users/{id}",
        JSON,
        patch({"op": "replace", "path": "nope[", "value": 1}),
        400,
        "invalidPath",
    ),
    # Atomic: the first operation is fine, the second fails, neither is applied.
    (
        "PATCH",
        "/Users/{id}",
        JSON,
        patch(
            {"op": "replace", "path": "displayName", "value": "Changed"},
            {"op": "replace", "path": "active", "value": "perhaps"},
        ),
        400,
        "invalidValue",
    ),
    (
        "PATCH",
        "/Users/{id}",
        JSON,
        json.dumps({"schemas": [PATCH_OP], "Operations": []}),
        400,
        "invalidSyntax",
    ),
    (
        "PATCH",
        "/Users/{id}",
        {**JSON, "If-Match": 'W/"999"'},
        patch({"op": "replace", "path": "displayName", "value": "Changed"}),
        412,
        None,
    ),
    (
        "PUT",
        "/Users/{id}",
        {**JSON, "If-Match": 'W/"999"'},
        json.dumps({"userName": "x"}),
        412,
        None,
    ),
    ("DELETE", "/Users/{id}", {"If-Match": 'W/"999"'}, "", 412, None),
    ("GET", "/Users?filter=userName%20eq", {}, "", 400, "invalidFilter"),
    ("GET", "/Users?filter=shoeSize%20eq%20%2244%22", {}, "", 400, "invalidFilter"),
    (
        "GET",
        "/Users?filter=userName%20eq%20%22x%22%20and%20title%20eq",
        {},
        "",
        400,
        "invalidFilter",
    ),
    ("GET", "/Users?count=many", {}, "", 400, "invalidValue"),
    (
        "PATCH",
        "/Users/00000000-0000-0000-0000-000000000000",
        JSON,
        patch({"op": "replace", "path": "title", "value": "x"}),
        404,
        None,
    ),
    ("DELETE", "/Users/00000000-0000-0000-0000-000000000000", {}, "", 404, None),
]


@pytest.mark.parametrize(("method", "path", "headers", "body", "status", "scim_type"), CASES)
def test_bad_request_is_a_scim_error_and_changes_nothing(
    scim: TestClient,
    gogs_client: GogsClient,
    method: str,
    path: str,
    headers: dict[str, str],
    body: str | bytes,
    status: int | None,
    scim_type: str | None,
) -> None:
    user_name = f"{unique('bad')}@example.com"
    user = scim.post(
        "/Users",
        json={
            "schemas": [USER_SCHEMA],
            "userName": user_name,
            "displayName": "Original",
            "emails": [{"value": user_name, "primary": True}],
        },
    ).json()
    login = user[GOGS_USER_SCHEMA]["login"]
    gogs_before = gogs_client.get_user(login)
    users_before = scim.get("/Users", params={"count": 0}).json()["totalResults"]

    response = scim.request(method, path.format(id=user["id"]), headers=headers, content=body)

    if status is None:  # lenient dialect handling: accepted, but must be valid then
        assert response.status_code in (201, 400), response.text
        if response.status_code == 201:
            scim.delete(f"/Users/{response.json()['id']}")
        return
    assert response.status_code == status, response.text
    error = response.json()
    assert error["schemas"] == [ERROR_SCHEMA]
    assert error["status"] == str(status)
    assert error["detail"]
    assert error.get("scimType") == scim_type
    assert response.headers["content-type"].startswith("application/scim+json")

    after = scim.get(f"/Users/{user['id']}").json()
    assert after["meta"]["version"] == user["meta"]["version"]
    assert after["displayName"] == "Original"
    assert scim.get("/Users", params={"count": 0}).json()["totalResults"] == users_before
    assert gogs_client.get_user(login) == gogs_before
