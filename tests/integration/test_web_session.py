"""The admin web session means against the real Gogs: sign-in, CSRF, the full-replace
edit form, org removal (last owner kept), and the errors an operator must understand."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from gogs_scim.gogs.client import GogsAuthFailed, GogsClient
from gogs_scim.gogs.deprovision import Deprovisioner, residual_last_owner
from gogs_scim.gogs.sandbox import RunningGogs
from gogs_scim.gogs.web_session import GogsWebSession
from tests.conftest import unique

pytestmark = pytest.mark.gogs

# Everything the admin edit form can change, besides prohibit_login.
_COLUMNS = (
    "name, full_name, email, website, location, max_repo_creation, is_active, is_admin, "
    "allow_git_hook, allow_import_local, login_source, login_name, passwd, salt, rands"
)
FULL_NAME = "Zoë & Co <i>x</i> \"quoted\" 'single'"


@pytest.fixture
def web(gogs: RunningGogs) -> Iterator[GogsWebSession]:
    with GogsWebSession(gogs.url, gogs.admin_user, gogs.admin_password) as session:
        yield session


def row(gogs: RunningGogs, user_id: int, columns: str = _COLUMNS) -> tuple[Any, ...]:
    with sqlite3.connect(gogs.database_path, timeout=10) as db:
        found: tuple[Any, ...] = db.execute(
            f'SELECT {columns} FROM "user" WHERE id = ?',  # noqa: S608 (constant columns)
            (user_id,),
        ).fetchone()
    return found


def prohibited(gogs: RunningGogs, user_id: int) -> bool:
    return bool(row(gogs, user_id, "prohibit_login")[0])


def new_account(gogs_client: GogsClient, **flags: Any) -> tuple[int, str]:
    login = unique("web")
    created = gogs_client.create_user(
        login=login, email=f"{login}@example.com", full_name=FULL_NAME, password="p" * 24
    )
    gogs_client.edit_user(
        login,
        email=f"{login}@example.com",
        full_name=FULL_NAME,
        website="https://example.com/~me",
        location="Zürich",
        **flags,
    )
    return created.id, login


@pytest.mark.parametrize(
    "flags",
    [
        {"max_repo_creation": 7, "allow_git_hook": True},
        {"max_repo_creation": -1, "admin": True, "active": False},
    ],
    ids=["git-hook-user", "inactive-admin"],
)
def test_the_edit_form_round_trip_changes_nothing_but_prohibit_login(
    flags: dict[str, Any], gogs: RunningGogs, gogs_client: GogsClient, web: GogsWebSession
) -> None:
    user_id, login = new_account(gogs_client, **flags)
    before = row(gogs, user_id)
    assert before[1] == FULL_NAME

    assert web.set_prohibit_login(user_id, login, True)
    assert prohibited(gogs, user_id)
    assert row(gogs, user_id) == before
    assert web.set_prohibit_login(user_id, login, True)  # idempotent
    assert web.set_prohibit_login(user_id, login, False)
    assert not prohibited(gogs, user_id)
    assert row(gogs, user_id) == before, "the full-replace form changed another field"
    # The password was not touched: it still signs in.
    with GogsClient(gogs.url, token="") as anonymous:
        assert anonymous.create_token_with_password(login, "p" * 24, "still")


def test_flags_the_form_cannot_show_are_sent_off(
    gogs: RunningGogs, gogs_client: GogsClient, web: GogsWebSession
) -> None:
    """For a site admin the page ticks allow_git_hook whatever is stored, and it hides
    allow_import_local while local path migration is off (the sandbox's default):
    those are written off, never granted by a round trip."""
    user_id, login = new_account(
        gogs_client, admin=True, allow_git_hook=False, allow_import_local=True
    )
    assert web.user_form(user_id).value("allow_git_hook") == "on"  # what the page shows
    assert web.set_prohibit_login(user_id, login, True)
    flags = row(gogs, user_id, "is_admin, allow_git_hook, allow_import_local, prohibit_login")
    assert flags == (1, 0, 0, 1)


def test_a_replaced_account_is_left_alone(
    gogs: RunningGogs, gogs_client: GogsClient, web: GogsWebSession
) -> None:
    user_id, login = new_account(gogs_client)
    assert not web.set_prohibit_login(user_id, "someone-else", True)
    assert not web.set_prohibit_login(10_000_000, login, True)
    assert not prohibited(gogs, user_id)


def test_an_expired_session_signs_in_again(
    gogs: RunningGogs, gogs_client: GogsClient, web: GogsWebSession
) -> None:
    user_id, login = new_account(gogs_client)
    web.user_form(user_id)  # signed in, CSRF token read
    # The session dies (a Gogs restart loses memory sessions): Gogs no longer knows it.
    web._http.cookies.clear()
    assert web.set_prohibit_login(user_id, login, True)
    assert prohibited(gogs, user_id)
    # A stale CSRF token (another session's) is refused by Gogs, then renewed.
    web._csrf = "stale"
    assert web.set_prohibit_login(user_id, login, False)
    assert not prohibited(gogs, user_id)


def test_a_wrong_password_is_a_clear_error_without_the_password(gogs: RunningGogs) -> None:
    wrong = "Wrong-" + "q" * 20
    with (
        GogsWebSession(gogs.url, gogs.admin_user, wrong) as web,
        pytest.raises(GogsAuthFailed) as raised,
    ):
        web.orgs_of(gogs.admin_user)
    message = str(raised.value)
    assert "gogs.admin_password" in message
    assert wrong not in message
    assert wrong not in repr(web)


def test_an_account_without_site_admin_rights_is_a_clear_error(
    gogs: RunningGogs, gogs_client: GogsClient
) -> None:
    """Otherwise every admin page would look like a missing account, and a revocation
    would seem done when nothing was done."""
    _, login = new_account(gogs_client)
    web = GogsWebSession(gogs.url, login, "p" * 24)
    with web, pytest.raises(GogsAuthFailed, match="site-admin"):
        web.orgs_of(login)


def test_an_admin_with_two_factor_authentication_is_a_clear_error(
    gogs: RunningGogs, gogs_client: GogsClient
) -> None:
    user_id, login = new_account(gogs_client, admin=True)
    # Enrolling 2FA through the web needs a TOTP app; Gogs only checks a row exists.
    with sqlite3.connect(gogs.database_path, timeout=10) as db:
        db.execute(
            "INSERT INTO two_factor (user_id, secret, created_unix) VALUES (?, 'x', 0)",
            (user_id,),
        )
    web = GogsWebSession(gogs.url, login, "p" * 24)
    with web, pytest.raises(GogsAuthFailed, match="two-factor"):
        web.orgs_of(login)


def test_org_removal_keeps_the_last_owner_and_reports_it(
    gogs: RunningGogs, gogs_client: GogsClient, web: GogsWebSession
) -> None:
    user_id, login = new_account(gogs_client)
    owned, joined = unique("solo"), unique("club")
    gogs_client.create_org(login, owned)  # the user is its only owner
    gogs_client.create_org(gogs.admin_user, joined)
    team = gogs_client.create_team(joined, "devs", "write")
    gogs_client.add_team_member(team.id, login)
    assert sorted(web.orgs_of(login)) == sorted([owned, joined])

    deprovisioner = Deprovisioner(gogs_client, database=None, web=web, managed_orgs=())
    done = deprovisioner.revoke(login, user_id)
    assert ("leave_org", f"{joined}:{login}") in done.calls
    assert residual_last_owner(owned) in done.residual
    assert web.orgs_of(login) == [owned]
    assert gogs_client.list_team_members(team.id) == []
    # Idempotent: the next converge changes nothing and says the same.
    again = deprovisioner.revoke(login, user_id)
    assert [c for c in again.calls if c[0] == "leave_org"] == []
    assert again.residual == done.residual


def test_the_admin_panel_lists_every_repository_private_ones_included(
    gogs: RunningGogs, gogs_client: GogsClient, web: GogsWebSession
) -> None:
    _, login = new_account(gogs_client)
    # More than one page of the panel (50 a page), whatever other tests created.
    count = max(3, 52 - len(web.all_repos()))
    names = {unique("r") for _ in range(count)}
    for name in names:
        gogs_client.create_repo(login, name, private=True, auto_init=False)
    listed = web.all_repos()
    assert len(listed) > 50
    assert {(login, name) for name in names} <= set(listed)
    assert len(listed) == len(set(listed))
    # The API shows an admin only another user's public repositories (gogs-facts §1.7).
    assert gogs_client.list_user_repos(login) == []


def test_threads_share_one_session_safely(
    gogs: RunningGogs, gogs_client: GogsClient, web: GogsWebSession
) -> None:
    """SCIM requests converge inline while the worker runs: all through one session,
    which every thread finds expired at once here, so each may start a sign-in."""
    accounts = [new_account(gogs_client) for _ in range(4)]
    web.sign_in()
    web._http.cookies.clear()
    with ThreadPoolExecutor(max_workers=4) as pool:
        done = list(pool.map(lambda a: web.set_prohibit_login(a[0], a[1], True), accounts))
    assert done == [True] * 4
    assert all(prohibited(gogs, user_id) for user_id, _ in accounts)
