"""GogsClient against the real Gogs v0.14.3 started by the `gogs` fixture."""

from __future__ import annotations

import os
import secrets
import subprocess
import uuid
from pathlib import Path

import pytest

from gogs_scim.gogs.client import (
    GogsAuthFailed,
    GogsClient,
    GogsError,
    GogsNotFound,
    GogsRejected,
    GogsUnreachable,
    GogsUser,
)
from gogs_scim.gogs.sandbox import GogsSandbox, RunningGogs

pytestmark = pytest.mark.gogs


def _name(prefix: str) -> str:
    # One Gogs serves the whole session: every test makes its own names.
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _make_user(client: GogsClient, full_name: str = "Ada Lovelace") -> tuple[GogsUser, str]:
    login = _name("u")
    password = secrets.token_urlsafe(24)
    user = client.create_user(
        login=login, email=f"{login}@example.invalid", full_name=full_name, password=password
    )
    return user, password


def test_whoami_is_the_sandbox_admin(gogs: RunningGogs, gogs_client: GogsClient) -> None:
    me = gogs_client.whoami()
    assert me.login == gogs.admin_user


def test_create_user_and_read_it_back(gogs_client: GogsClient) -> None:
    user, _ = _make_user(gogs_client)
    fetched = gogs_client.get_user(user.login)
    assert fetched == user
    assert fetched.full_name == "Ada Lovelace"
    assert fetched.email == f"{user.login}@example.invalid"
    assert gogs_client.search_users(user.login, limit=5) == [user]


def test_get_unknown_user_is_none(gogs_client: GogsClient) -> None:
    assert gogs_client.get_user(_name("nobody")) is None


def test_edit_user_keeps_the_fields_it_is_given(gogs_client: GogsClient) -> None:
    user, _ = _make_user(gogs_client)
    edited = gogs_client.edit_user(
        user.login, email=user.email, full_name="Ada King", website="https://a.example"
    )
    assert edited.full_name == "Ada King"
    again = gogs_client.edit_user(user.login, email=user.email, full_name="Ada King", active=True)
    assert again == gogs_client.get_user(user.login)
    assert again.full_name == "Ada King"
    assert again.email == user.email


def test_duplicate_login_is_rejected(gogs_client: GogsClient) -> None:
    user, _ = _make_user(gogs_client)
    with pytest.raises(GogsRejected) as caught:
        gogs_client.create_user(
            login=user.login.upper(),  # Gogs names are case-insensitive
            email=f"other-{user.login}@example.invalid",
            full_name="",
            password=secrets.token_urlsafe(24),
        )
    assert caught.value.status == 422
    assert "already" in caught.value.message.lower()


def test_invalid_login_is_rejected_with_the_field_named(gogs_client: GogsClient) -> None:
    with pytest.raises(GogsRejected) as caught:
        gogs_client.create_user(
            login="has space", email="x@example.invalid", full_name="", password="p" * 20
        )
    assert "UserName" in caught.value.message or "username" in caught.value.message.lower()


def test_org_team_membership_round_trip(gogs: RunningGogs, gogs_client: GogsClient) -> None:
    user, _ = _make_user(gogs_client)
    org = gogs_client.create_org(gogs.admin_user, _name("org"), full_name="Engineering")
    assert gogs_client.get_org(org.login) == org
    team = gogs_client.create_team(org.login, "devs", "write", description="developers")
    assert team.permission == "write"
    assert {t.name for t in gogs_client.list_org_teams(org.login)} == {"Owners", "devs"}

    gogs_client.add_team_member(team.id, user.login)
    gogs_client.add_team_member(team.id, user.login)  # idempotent
    assert [m.login for m in gogs_client.list_team_members(team.id)] == [user.login]

    gogs_client.remove_team_member(team.id, user.login)
    gogs_client.remove_team_member(team.id, user.login)  # idempotent
    assert gogs_client.list_team_members(team.id) == []


def test_unknown_org_and_team(gogs_client: GogsClient) -> None:
    assert gogs_client.get_org(_name("noorg")) is None
    with pytest.raises(GogsNotFound):
        gogs_client.list_team_members(987654321)


def test_reserved_team_name_is_rejected_without_a_call(
    gogs: RunningGogs, gogs_client: GogsClient
) -> None:
    org = gogs_client.create_org(gogs.admin_user, _name("org"))
    before = gogs_client.calls
    with pytest.raises(GogsRejected):
        gogs_client.create_team(org.login, "New", "read")
    assert gogs_client.calls == before


def test_repo_in_org_added_to_team_and_collaborators(
    gogs: RunningGogs, gogs_client: GogsClient
) -> None:
    user, _ = _make_user(gogs_client)
    org = gogs_client.create_org(gogs.admin_user, _name("org"))
    repo = gogs_client.create_repo(org.login, "service", private=True)
    assert (repo.owner, repo.name, repo.private) == (org.login, "service", True)
    assert (gogs.repos_root / org.login.lower() / "service.git").is_dir()

    team = gogs_client.create_team(org.login, "readers", "read")
    gogs_client.add_team_repo(team.id, repo.name)
    gogs_client.add_team_repo(team.id, repo.name)  # idempotent
    with pytest.raises(GogsNotFound):
        gogs_client.add_team_repo(team.id, "no-such-repo")

    gogs_client.add_collaborator(org.login, repo.name, user.login, "write")
    assert [c.login for c in gogs_client.list_collaborators(org.login, repo.name)] == [user.login]
    gogs_client.remove_collaborator(org.login, repo.name, user.login)
    assert gogs_client.list_collaborators(org.login, repo.name) == []


def test_admin_adds_and_deletes_a_users_key(gogs_client: GogsClient, tmp_path: Path) -> None:
    user, _ = _make_user(gogs_client)
    key_file = tmp_path / "id_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "t", "-f", str(key_file)],
        check=True,
    )
    public = key_file.with_suffix(".pub").read_text().strip()

    key = gogs_client.add_user_key(user.login, "laptop", public)
    assert key.title == "laptop"
    assert key.key.split()[:2] == public.split()[:2]
    assert gogs_client.list_user_keys(user.login) == [key]

    gogs_client.delete_key(key.id)
    assert gogs_client.list_user_keys(user.login) == []
    gogs_client.delete_key(key.id)  # Gogs answers 204 for a missing key too


def test_user_token_from_password(gogs: RunningGogs, gogs_client: GogsClient) -> None:
    user, password = _make_user(gogs_client)
    token = gogs_client.create_token_with_password(user.login, password, "tests")
    assert len(token) == 40
    with GogsClient(gogs.url, token) as as_user:
        assert as_user.whoami().login == user.login
        with pytest.raises(GogsAuthFailed):  # not a site admin
            as_user.create_user(
                login=_name("x"), email="x@example.invalid", full_name="", password="p" * 20
            )
    with pytest.raises(GogsAuthFailed):
        gogs_client.create_token_with_password(user.login, "wrong-password", "tests2")


def test_delete_user(gogs_client: GogsClient) -> None:
    user, _ = _make_user(gogs_client)
    gogs_client.delete_user(user.login)
    assert gogs_client.get_user(user.login) is None
    with pytest.raises(GogsNotFound):
        gogs_client.delete_user(user.login)


def test_errors_never_show_the_token(gogs: RunningGogs) -> None:
    token = gogs.admin_token
    failures: list[GogsError] = []
    with GogsClient(gogs.url, token) as client:
        for call in (
            lambda: client.delete_user(_name("ghost")),
            lambda: client.create_user(login="bad name", email="", full_name="", password=""),
            lambda: client.list_team_members(987654321),
        ):
            with pytest.raises(GogsError) as caught:
                call()
            failures.append(caught.value)
        assert token not in repr(client)
    with GogsClient(gogs.url, "0" * 40) as bad, pytest.raises(GogsAuthFailed) as caught:
        bad.whoami()
    failures.append(caught.value)
    with GogsClient("http://127.0.0.1:9", token, timeout=2) as dead:
        with pytest.raises(GogsUnreachable) as unreachable:
            dead.whoami()
        failures.append(unreachable.value)
    for failure in failures:
        assert token not in str(failure)
        assert token not in repr(failure)
        assert token not in failure.message
    assert token not in repr(gogs)


def test_calls_are_counted_and_reported(gogs: RunningGogs) -> None:
    seen: list[tuple[str, str, int]] = []
    with GogsClient(gogs.url, gogs.admin_token, on_call=lambda *c: seen.append(c)) as client:
        client.whoami()
        assert client.get_user(_name("nobody")) is None
        assert client.calls == 2
    assert seen[0] == ("GET", "/user", 200)
    assert seen[1][0] == "GET"
    assert seen[1][2] == 404


def test_removing_the_last_owner_is_rejected(gogs: RunningGogs, gogs_client: GogsClient) -> None:
    org = gogs_client.create_org(gogs.admin_user, _name("org"))
    owners = next(t for t in gogs_client.list_org_teams(org.login) if t.name == "Owners")
    with pytest.raises(GogsRejected, match="last member"):
        gogs_client.remove_team_member(owners.id, gogs.admin_user)
    assert [m.login for m in gogs_client.list_team_members(owners.id)] == [gogs.admin_user]


def test_sandbox_restart_keeps_data_and_stop_cleans_up() -> None:
    # Its own sandbox: restarting the session's Gogs would disturb other tests.
    sandbox = GogsSandbox()
    first = sandbox.start()
    try:
        with GogsClient(first.url, first.admin_token) as client:
            user, _ = _make_user(client)
        second = sandbox.restart()
        assert second.pid != first.pid
        assert (second.url, second.ssh_port, second.admin_token) == (
            first.url,
            first.ssh_port,
            first.admin_token,
        )
        with GogsClient(second.url, second.admin_token) as client:
            assert client.get_user(user.login) == user
    finally:
        sandbox.stop()
    assert not first.work_dir.exists()
    with pytest.raises(ProcessLookupError):
        os.kill(second.pid, 0)
