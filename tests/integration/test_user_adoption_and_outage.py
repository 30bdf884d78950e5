"""Accounts that predate SCIM (adoption policies) and Gogs outages (nothing is lost)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import update
from starlette.testclient import TestClient

from gogs_scim.bootstrap import Bridge
from gogs_scim.gogs.client import GogsClient
from gogs_scim.scim.schema import GOGS_USER_SCHEMA
from gogs_scim.store import jobs
from gogs_scim.store.tables import converge_jobs
from tests.conftest import unique
from tests.integration.test_user_provisioning import new_user

pytestmark = pytest.mark.gogs


def client_for(bridge: Bridge, token: str) -> TestClient:
    return TestClient(
        bridge.app,
        base_url="http://testserver/scim/v2",
        headers={"Authorization": f"Bearer {token}"},
    )


def existing_account(gogs_client: GogsClient, email_domain: str = "example.com") -> str:
    login = unique("old")
    gogs_client.create_user(
        login=login,
        email=f"{login}@{email_domain}",
        full_name="Before Scim",
        password="pre-existing-password-1",
    )
    return login


@pytest.mark.parametrize(
    ("policy", "same_email", "adopted"),
    [
        ("refuse", True, False),
        ("match-email", True, True),
        ("match-email", False, False),
        ("login", False, True),
    ],
)
def test_adoption_policy(
    bridge_factory: Callable[..., Bridge],
    scim_token: str,
    gogs_client: GogsClient,
    policy: str,
    same_email: bool,
    adopted: bool,
) -> None:
    bridge = bridge_factory(provisioning={"adoption": policy})
    login = existing_account(gogs_client, "example.com" if same_email else "elsewhere.example")
    before = gogs_client.get_user(login)
    assert before is not None
    with client_for(bridge, scim_token) as scim:
        response = scim.post("/Users", json=new_user(f"{login}@example.com"))
    after = gogs_client.get_user(login)
    assert after is not None
    if adopted:
        assert response.status_code == 201, response.text
        extension = response.json()[GOGS_USER_SCHEMA]
        assert extension["adopted"] is True
        assert extension["userId"] == before.id
        assert extension["login"] == login
        # Adopted accounts follow the IdP from then on.
        assert after.full_name == "Ada Lovelace"
        assert after.email == f"{login}@example.com"
    else:
        assert response.status_code == 409, response.text
        assert response.json()["scimType"] == "uniqueness"
        assert policy in response.json()["detail"]
        assert after == before  # untouched


def test_bridge_admin_account_is_never_adopted(
    bridge_factory: Callable[..., Bridge], scim_token: str, gogs_client: GogsClient
) -> None:
    bridge = bridge_factory(provisioning={"adoption": "login"})
    admin = bridge.settings.gogs.admin_user
    before = gogs_client.get_user(admin)
    assert before is not None
    with client_for(bridge, scim_token) as scim:
        response = scim.post("/Users", json=new_user(f"{admin}@{unique('corp')}.example"))
    assert response.status_code == 201, response.text
    assert response.json()[GOGS_USER_SCHEMA]["login"] != admin
    assert response.json()[GOGS_USER_SCHEMA]["userId"] != before.id
    assert gogs_client.get_user(admin) == before


def test_changes_made_while_gogs_is_down_reach_it_later(
    bridge_factory: Callable[..., Bridge],
    scim_token: str,
    gogs_client: GogsClient,
    tmp_path: Path,
) -> None:
    store = f"sqlite:///{tmp_path / 'shared.db'}"
    # The same store, once with Gogs unreachable (a closed port), once with Gogs back.
    down = bridge_factory(store, gogs={"url": "http://127.0.0.1:9", "timeout_seconds": 2})
    user_name = f"{unique('late')}@example.com"
    with client_for(down, scim_token) as scim:
        created = scim.post("/Users", json=new_user(user_name))
        assert created.status_code == 201, created.text
        body = created.json()
        assert body[GOGS_USER_SCHEMA]["syncState"] == "pending"
        assert "unreachable" in body[GOGS_USER_SCHEMA]["syncError"]
        renamed = scim.patch(
            f"/Users/{body['id']}",
            json={
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "displayName", "value": "Late Comer"}],
            },
        )
        assert renamed.status_code == 200, renamed.text
        assert renamed.json()["displayName"] == "Late Comer"
    login = body[GOGS_USER_SCHEMA]["login"]
    assert gogs_client.get_user(login) is None

    back = bridge_factory(store)
    with back.engine.begin() as conn:
        # Skip the backoff the failed attempts earned, as time passing would.
        conn.execute(update(converge_jobs).values(not_before=datetime(2000, 1, 1, tzinfo=UTC)))
    assert back.reconciler.run_due() >= 1
    with back.engine.connect() as conn:
        assert jobs.pending_count(conn) == 0  # done, not left to loop
    account = gogs_client.get_user(login)
    assert account is not None
    assert account.full_name == "Late Comer"
    with client_for(back, scim_token) as scim:
        now = scim.get(f"/Users/{body['id']}").json()
    assert now[GOGS_USER_SCHEMA]["syncState"] == "synced"
    assert now[GOGS_USER_SCHEMA]["userId"] == account.id
