"""Deprovisioning closes every way into Gogs, proven by trying every way in (real Gogs).

A user gets every way in (password, access token, SSH key over Gogs's builtin SSH
server, an open web session, a mapped team with a private repository, a collaboration,
a repository of their own with a deploy key, site-admin and git-hook rights); each is
shown to work; the IdP deactivates them; each is tried again. Run once per means:
"api-only" (no `gogs.database_url`), "database" and "web-session"
(`gogs.admin_password`): each must close what it can and report exactly what stays
open as residual access, and those ways must really still work.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text, update
from starlette.testclient import TestClient

from gogs_scim.bootstrap import Bridge, build_bridge
from gogs_scim.gogs.client import GogsClient
from gogs_scim.gogs.database_means import gogs_database_engine
from gogs_scim.gogs.deprovision import (
    RESIDUAL_COLLABORATIONS,
    RESIDUAL_PROHIBIT_LOGIN,
    RESIDUAL_TOKENS,
    RESIDUAL_TOKENS_WEB,
    residual_deploy_key,
    residual_org,
    residual_private_repos_unreviewed,
)
from gogs_scim.gogs.sandbox import GogsSandbox, RunningGogs
from gogs_scim.scim.patch import PATCH_OP_SCHEMA
from gogs_scim.scim.schema import GOGS_USER_SCHEMA, USER_SCHEMA
from gogs_scim.service.status import build_report
from gogs_scim.store.tables import audit_events, converge_jobs, users
from tests.conftest import make_settings, unique
from tests.integration.groups_support import (  # noqa: F401 (mapped is a fixture)
    Mapped,
    mapped_fixture,
    new_group,
    open_mapped,
    rule,
)

pytestmark = pytest.mark.gogs

PASSWORD = "Corr3ct-Horse-Battery-" + "y" * 8
NEW_PASSWORD = "Anoth3r-Horse-Battery-" + "z" * 8


# -- trying the ways in --------------------------------------------------------------


def git(home: Path, *args: str, cwd: Path | None = None, ssh: str | None = None) -> bool:
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        "SSH_AUTH_SOCK": "",
    }
    if ssh:
        env["GIT_SSH_COMMAND"] = ssh
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    return done.returncode == 0


@dataclass
class Ways:
    """Everything one person could use to get into Gogs."""

    gogs: RunningGogs
    home: Path
    login: str
    token: str
    key: Path
    session: httpx.Client
    _n: int = 0

    def _dest(self) -> Path:
        self._n += 1
        return self.home / f"clone{self._n}"

    def http_url(self, repo: str, secret: str, user: str | None = None) -> str:
        host = self.gogs.url.removeprefix("http://")
        return f"http://{user or self.login}:{secret}@{host}/{repo}.git"

    def clone_http(self, repo: str, secret: str) -> bool:
        return git(self.home, "clone", self.http_url(repo, secret), str(self._dest()))

    def push_http(self, repo: str, secret: str) -> bool:
        """Push a commit to a new branch with `secret` (password or token)."""
        dest = self._dest()
        assert git(self.home, "init", "-q", str(dest))
        (dest / f"f{self._n}.txt").write_text("x")
        assert git(self.home, "add", ".", cwd=dest)
        assert git(self.home, "commit", "-q", "-m", "x", cwd=dest)
        branch = f"HEAD:refs/heads/b{self._n}"
        return git(self.home, "push", self.http_url(repo, secret), branch, cwd=dest)

    def _ssh(self, key: Path | None) -> str:
        return (
            f"ssh -i {key or self.key} -o IdentitiesOnly=yes -o StrictHostKeyChecking=no "
            f"-o UserKnownHostsFile=/dev/null -o BatchMode=yes -p {self.gogs.ssh_port}"
        )

    def clone_ssh(self, repo: str, key: Path | None = None) -> bool:
        url = f"ssh://git@127.0.0.1/{repo}.git"
        return git(self.home, "clone", url, str(self._dest()), ssh=self._ssh(key))

    def push_ssh(self, repo: str, key: Path) -> bool:
        dest = self._dest()
        assert git(self.home, "init", "-q", str(dest))
        (dest / "f.txt").write_text("x")
        assert git(self.home, "add", ".", cwd=dest)
        assert git(self.home, "commit", "-q", "-m", "x", cwd=dest)
        url = f"ssh://git@127.0.0.1/{repo}.git"
        branch = f"HEAD:refs/heads/s{self._n}"
        return git(self.home, "push", url, branch, cwd=dest, ssh=self._ssh(key))

    def api_with_token(self) -> bool:
        """`GET /api/v1/user` (token only) answers this user's JSON; a prohibit_login
        account gets an HTML page instead."""
        response = httpx.get(
            f"{self.gogs.url}/api/v1/user", headers={"Authorization": f"token {self.token}"}
        )
        return (
            response.status_code == 200
            and response.headers.get("content-type", "").startswith("application/json")
            and response.json()["login"] == self.login
        )

    def api_with_password(self, password: str) -> bool:
        """The API with Basic auth (`GET /users/:u/tokens` takes only Basic)."""
        response = httpx.get(
            f"{self.gogs.url}/api/v1/users/{self.login}/tokens", auth=(self.login, password)
        )
        return response.status_code == 200 and response.headers.get("content-type", "").startswith(
            "application/json"
        )

    def is_site_admin(self, team_id: int, auth: dict[str, Any]) -> bool:
        """An admin-only endpoint answers (403 for anyone else; a prohibit_login
        account gets an HTML page with 200 instead of the JSON)."""
        response = httpx.get(f"{self.gogs.url}/api/v1/admin/teams/{team_id}/members", **auth)
        return response.status_code == 200 and response.headers.get("content-type", "").startswith(
            "application/json"
        )

    def web_login(self, password: str) -> bool:
        with httpx.Client(base_url=self.gogs.url, follow_redirects=False) as web:
            web.post("/user/login", data={"user_name": self.login, "password": password})
            return reaches_settings(web, self.login)

    def session_works(self) -> bool:
        return reaches_settings(self.session, self.login)

    def edits_git_hooks(self, repo: str, session: httpx.Client | None = None) -> bool:
        """A web session reaches the git hooks editor (code run on the server)."""
        page = (session or self.session).get(f"/{repo}/settings/hooks/git")
        return page.status_code == 200 and f"/{repo}/settings/hooks/git/" in page.text


def reaches_settings(web: httpx.Client, login: str) -> bool:
    """The signed-in settings page, not the login form nor the prohibit-login page."""
    page = web.get("/user/settings")
    return page.status_code == 200 and f'value="{login}"' in page.text


def open_session(gogs: RunningGogs, login: str, password: str) -> httpx.Client:
    web = httpx.Client(base_url=gogs.url, follow_redirects=False)
    signed_in = web.post("/user/login", data={"user_name": login, "password": password})
    assert signed_in.status_code == 302, signed_in.text[:300]
    return web


def watch(web: httpx.Client, repo: str) -> None:
    """Watch a repository through the web UI, as the signed-in user (the API has no
    watch endpoint): Gogs then mails them its issues and comments."""
    page = web.get(f"/{repo}")
    found = re.search(r'<meta name="_csrf" content="([^"]+)"', page.text)
    assert found is not None, page.text[:300]
    done = web.post(f"/{repo}/action/watch", data={"_csrf": found.group(1)})
    assert done.status_code in (200, 302), done.text[:300]


def watched(gogs: RunningGogs, login: str) -> set[str]:
    """owner/name of the repositories `login` watches, checked against the counters."""
    rows = gogs_rows(
        gogs,
        "SELECT o.name, r.name, r.num_watches, "
        "(SELECT COUNT(*) FROM watch x WHERE x.repo_id = r.id) "
        'FROM watch w JOIN repository r ON r.id = w.repo_id JOIN "user" o ON o.id = r.owner_id '
        'JOIN "user" u ON u.id = w.user_id WHERE u.lower_name = ?',
        login.lower(),
    )
    for owner, name, counter, actual in rows:
        assert counter == actual, f"{owner}/{name}: num_watches {counter}, {actual} watches"
    return {f"{owner}/{name}" for owner, name, _, _ in rows}


def gogs_rows(gogs: RunningGogs, query: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows of Gogs's own database, whichever it runs on (`?` placeholders)."""
    parts = query.split("?")
    named = parts[0] + "".join(f":p{i}{part}" for i, part in enumerate(parts[1:]))
    engine = gogs_database_engine(gogs.database_url)
    try:
        with engine.connect() as conn:
            result = conn.execute(text(named), {f"p{i}": value for i, value in enumerate(params)})
            return [tuple(row) for row in result]
    finally:
        engine.dispose()


# -- building a person with every way in ---------------------------------------------


@dataclass
class Person:
    scim_id: str
    ways: Ways
    team_repo: str
    collab_repo: str
    own_repo: str
    org: str
    team_id: int
    deploy_key: Path


def ssh_key(where: Path, name: str = "key") -> Path:
    key = where / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
        check=True,
        capture_output=True,
    )
    return key


def give_every_way_in(
    scim: TestClient, gogs: RunningGogs, gogs_client: GogsClient, tmp_path: Path, group: str
) -> Person:
    login = unique("leo")
    created = scim.post(
        "/Users",
        json={"schemas": [USER_SCHEMA], "userName": f"{login}@example.com", "password": PASSWORD},
    )
    assert created.status_code == 201, created.text
    scim_id = created.json()["id"]
    new_group(scim, group, [scim_id])
    [(org_name, team_id)] = [
        (row[0], row[1])
        for row in gogs_rows(
            gogs,
            'SELECT o.name, t.id FROM team t JOIN "user" o ON o.id = t.org_id '
            'JOIN team_user tu ON tu.team_id = t.id JOIN "user" u ON u.id = tu.uid '
            "WHERE u.lower_name = ?",
            login.lower(),
        )
    ]
    team_repo = unique("team")
    gogs_client.create_repo(org_name, team_repo, private=True)
    gogs_client.add_team_repo(team_id, team_repo)

    owner = unique("own")
    gogs_client.create_user(
        login=owner, email=f"{owner}@example.com", full_name="Other", password="o" * 24
    )
    collab_repo = unique("col")
    gogs_client.create_repo(owner, collab_repo, private=True)
    # An admin collaboration: the user could add deploy keys there too.
    gogs_client.add_collaborator(owner, collab_repo, login, "admin")
    own_repo = unique("mine")
    gogs_client.create_repo(login, own_repo, private=True)

    with GogsClient(gogs.url, token="") as anonymous:
        token = anonymous.create_token_with_password(login, PASSWORD, "laptop")
    home = tmp_path / "home"
    home.mkdir()
    key = ssh_key(tmp_path)
    gogs_client.add_user_key(login, "laptop", key.with_suffix(".pub").read_text().strip())
    # A deploy key on their own repository: it belongs to the repository, not to them.
    deploy_key = ssh_key(tmp_path, "deploy")
    public_key = deploy_key.with_suffix(".pub").read_text().strip()
    gogs_client.add_deploy_key(login, own_repo, "ci", public_key)
    gogs_client.add_deploy_key(owner, collab_repo, "ci-collab", public_key)
    account = gogs_client.get_user(login)
    assert account is not None
    gogs_client.edit_user(
        login,
        email=account.email,
        full_name=account.full_name,
        admin=True,
        allow_git_hook=True,
        allow_import_local=True,
    )
    ways = Ways(gogs, home, login, token, key, open_session(gogs, login, PASSWORD))
    for repo in (f"{org_name}/{team_repo}", f"{owner}/{collab_repo}"):
        watch(ways.session, repo)
    return Person(
        scim_id,
        ways,
        f"{org_name}/{team_repo}",
        f"{owner}/{collab_repo}",
        f"{login}/{own_repo}",
        org_name,
        team_id,
        deploy_key,
    )


def set_active(scim: TestClient, scim_id: str, active: bool, **extra: Any) -> dict[str, Any]:
    response = scim.patch(
        f"/Users/{scim_id}",
        json={
            "schemas": [PATCH_OP_SCHEMA],
            "Operations": [{"op": "replace", "value": {"active": active, **extra}}],
        },
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def means_sections(means: str, gogs: RunningGogs) -> dict[str, dict[str, Any]]:
    if means == "database":
        return {"gogs": {"database_url": gogs.database_url}}
    if means == "web-session":
        return {"gogs": {"admin_password": gogs.admin_password}}
    return {}


# -- the proof -----------------------------------------------------------------------


@pytest.mark.parametrize("means", ["api-only", "database", "web-session"])
def test_deactivation_closes_every_way_in_or_reports_it(
    means: str, mapped: Mapped, gogs: RunningGogs, gogs_client: GogsClient, tmp_path: Path
) -> None:
    prove_every_way_closed_or_reported(means, mapped, gogs, gogs_client, tmp_path)


@pytest.mark.parametrize("gogs_database", ["mysql", "postgres"])
def test_the_database_means_on_gogs_running_on_mysql_and_postgresql(
    gogs_database: str, request: pytest.FixtureRequest, scim_token: str, tmp_path: Path
) -> None:
    """The same proof with Gogs itself on MariaDB and on PostgreSQL: the database
    means speaks each (`[gogs] database_url = "mysql://..."` / `"postgresql://..."`).
    The bridge's own store is SQLite here: its engine is not what is proven."""
    running: RunningGogs = request.getfixturevalue(f"gogs_on_{gogs_database}")
    assert running.database_url.startswith(("mysql://", "postgresql://"))
    store = f"sqlite:///{tmp_path / 'store.db'}"
    with (
        open_mapped(running, store, scim_token) as mapped_here,
        GogsClient(running.url, running.admin_token) as client,
    ):
        prove_every_way_closed_or_reported("database", mapped_here, running, client, tmp_path)


def prove_every_way_closed_or_reported(
    means: str, mapped: Mapped, gogs: RunningGogs, gogs_client: GogsClient, tmp_path: Path
) -> None:
    group, org = unique("Dev"), unique("org")
    bridge, scim = mapped(
        rule(group, org, "devs", permission="write", create_org=True),
        **means_sections(means, gogs),
    )
    person = give_every_way_in(scim, gogs, gogs_client, tmp_path, group)
    ways = person.ways
    token_auth = {"headers": {"Authorization": f"token {ways.token}"}}

    # Every way in works.
    assert ways.web_login(PASSWORD)
    assert ways.session_works()
    assert ways.api_with_token()
    assert ways.api_with_password(PASSWORD)
    assert ways.is_site_admin(person.team_id, token_auth)
    for repo in (person.team_repo, person.collab_repo, person.own_repo):
        assert ways.clone_http(repo, PASSWORD), repo
        assert ways.clone_http(repo, ways.token), repo
    assert ways.push_http(person.team_repo, PASSWORD)
    assert ways.push_http(person.collab_repo, ways.token)
    assert ways.clone_ssh(person.team_repo)
    assert ways.clone_ssh(person.own_repo)
    assert ways.clone_ssh(person.own_repo, key=person.deploy_key)
    assert ways.push_ssh(person.own_repo, ways.key)
    assert ways.edits_git_hooks(person.own_repo)
    assert watched(gogs, ways.login) == {person.own_repo, person.team_repo, person.collab_repo}

    # The IdP deactivates them.
    body = set_active(scim, person.scim_id, False)
    extension = body[GOGS_USER_SCHEMA]
    assert extension["syncState"] == "synced", extension

    # Closed whatever the means: password, SSH key, team, site admin.
    assert not ways.web_login(PASSWORD)
    assert not ways.api_with_password(PASSWORD)
    for repo in (person.team_repo, person.collab_repo, person.own_repo):
        assert not ways.clone_http(repo, PASSWORD), repo
    assert not ways.push_http(person.own_repo, PASSWORD)
    assert not ways.clone_ssh(person.team_repo)
    assert not ways.clone_ssh(person.own_repo)
    assert gogs_client.list_user_keys(ways.login) == []
    assert not ways.clone_http(person.team_repo, ways.token), "the team repository is gone"
    assert not ways.push_http(person.team_repo, ways.token)
    assert not ways.is_site_admin(person.team_id, token_auth)
    # Editing git hooks runs code on the server: the right is gone with admin rights.
    assert not ways.edits_git_hooks(person.own_repo)
    assert gogs_rows(
        gogs,
        'SELECT is_admin, allow_git_hook, allow_import_local FROM "user" WHERE lower_name = ?',
        ways.login.lower(),
    ) == [(0, 0, 0)]
    # A deploy key is the repository's, not the user's: kept, and listed for review.
    assert ways.clone_ssh(person.own_repo, key=person.deploy_key)
    assert not ways.push_ssh(person.own_repo, person.deploy_key), "deploy keys are read-only"
    # Listed: the user's own repository, and the one they administered as collaborator.
    reviewed = [(person.own_repo, "ci"), (person.collab_repo, "ci-collab")]
    deploy_keys = [residual_deploy_key(repo, title) for repo, title in sorted(reviewed)]

    org_rows = gogs_rows(
        gogs,
        'SELECT 1 FROM org_user ou JOIN "user" u ON u.id = ou.uid WHERE u.lower_name = ?',
        ways.login.lower(),
    )
    with bridge.engine.connect() as conn:
        status = dict(build_report(conn, bridge.settings.mappings).residual_access)
    who = f"{ways.login}@example.com (Gogs {ways.login})"
    gauge = next(
        line
        for line in scim.get("http://testserver/metrics").text.splitlines()
        if line.startswith("gogs_scim_users_with_residual_access ")
    )
    assert gauge.split()[1] == "1.0"
    watching = watched(gogs, ways.login)
    if means == "database":
        # No more issue mails from what they left; their own repository they still own.
        assert watching == {person.own_repo}
        assert extension["residualAccess"] == deploy_keys
        assert status[who] == "; ".join(deploy_keys)
        assert not ways.api_with_token()
        assert not ways.session_works(), "an open web session survived"
        for repo in (person.collab_repo, person.own_repo):
            assert not ways.clone_http(repo, ways.token), repo
        assert not ways.push_http(person.own_repo, ways.token)
        assert not ways.push_http(person.collab_repo, ways.token)
        assert org_rows == []
    elif means == "web-session":
        # Gogs unwatches an org's repositories when it removes the member; a removed
        # collaboration keeps its watch (docs/deprovisioning.md, "Not covered").
        assert watching == {person.own_repo, person.collab_repo}
        assert extension["residualAccess"] == [RESIDUAL_TOKENS_WEB, *deploy_keys]
        assert status[who] == "; ".join([RESIDUAL_TOKENS_WEB, *deploy_keys])
        assert not ways.api_with_token(), "prohibit_login makes the API refuse the token"
        assert not ways.session_works(), "an open web session survived"
        assert not ways.clone_http(person.collab_repo, ways.token), "collaboration kept"
        assert not ways.push_http(person.collab_repo, ways.token)
        assert org_rows == []
        # ... and what it reports really is still open: the token, over git HTTP.
        assert ways.clone_http(person.own_repo, ways.token)
        assert ways.push_http(person.own_repo, ways.token)
    else:
        expected = [
            RESIDUAL_TOKENS,
            RESIDUAL_PROHIBIT_LOGIN,
            residual_org(org),
            RESIDUAL_COLLABORATIONS,
            residual_private_repos_unreviewed(ways.login),
        ]
        assert extension["residualAccess"] == expected
        assert status[who] == "; ".join(expected)
        assert watching == {person.own_repo, person.team_repo, person.collab_repo}
        # ... and each of those really is still open.
        assert ways.api_with_token()
        assert ways.session_works()
        assert ways.clone_http(person.own_repo, ways.token)
        assert ways.clone_http(person.collab_repo, ways.token)
        assert ways.push_http(person.collab_repo, ways.token)
        assert org_rows == [(1,)]
    # The next converge (any change, or the scheduled repair) says the same, although
    # the collaboration that made a repository worth reviewing is gone by then ...
    again = set_active(scim, person.scim_id, False, displayName="Leo, again")
    assert again[GOGS_USER_SCHEMA]["residualAccess"] == extension["residualAccess"]
    if means != "api-only":
        # ... until someone deletes that deploy key: then its line goes.
        owner, name = person.collab_repo.split("/")
        [key] = [k for k in gogs_client.list_deploy_keys(owner, name) if k.title == "ci-collab"]
        deleted = httpx.delete(
            f"{gogs.url}/api/v1/repos/{person.collab_repo}/keys/{key.id}",
            headers={"Authorization": f"token {gogs.admin_token}"},
        )
        assert deleted.status_code == 204
        reviewed_now = set_active(scim, person.scim_id, False, displayName="Leo, reviewed")
        left = reviewed_now[GOGS_USER_SCHEMA]["residualAccess"]
        assert left == [line for line in extension["residualAccess"] if "ci-collab" not in line]
        assert residual_deploy_key(person.own_repo, "ci") in left
    with bridge.engine.connect() as conn:
        actions = [
            row.action
            for row in conn.execute(
                select(audit_events.c.action)
                .where(audit_events.c.resource_id == person.scim_id)
                .order_by(audit_events.c.seq)
            )
        ]
    assert "gogs.delete_ssh_key" in actions
    assert "gogs.residual_access" in actions
    assert ("gogs.prohibit_login" in actions) == (means != "api-only")

    # Reactivation gives back what current group membership grants, nothing more.
    back = set_active(scim, person.scim_id, True, password=NEW_PASSWORD)
    assert back[GOGS_USER_SCHEMA]["syncState"] == "synced"
    assert "residualAccess" not in back[GOGS_USER_SCHEMA]
    assert ways.web_login(NEW_PASSWORD), "prohibit_login was not cleared"
    assert ways.api_with_password(NEW_PASSWORD)
    assert not ways.is_site_admin(person.team_id, {"auth": (ways.login, NEW_PASSWORD)})
    assert ways.clone_http(person.team_repo, NEW_PASSWORD)
    assert ways.push_http(person.team_repo, NEW_PASSWORD)
    assert ways.clone_http(person.own_repo, NEW_PASSWORD)
    assert not ways.clone_ssh(person.own_repo), "the SSH key came back"
    assert gogs_client.list_user_keys(ways.login) == []
    fresh = open_session(gogs, ways.login, NEW_PASSWORD)
    assert reaches_settings(fresh, ways.login)
    assert not ways.edits_git_hooks(person.own_repo, fresh), "allow_git_hook came back"
    fresh.close()
    if means == "database":
        assert not ways.api_with_token(), "the token came back"
        assert not ways.clone_http(person.own_repo, ways.token)
        assert not ways.clone_http(person.collab_repo, NEW_PASSWORD), "collaboration came back"
    elif means == "web-session":
        assert ways.api_with_token()  # never deleted: it was reported all along
        assert not ways.clone_http(person.collab_repo, NEW_PASSWORD), "collaboration came back"
    else:
        assert ways.api_with_token()  # never revoked: it was reported all along
    ways.session.close()


@pytest.mark.parametrize("means", ["api-only", "database", "web-session"])
def test_delete_with_on_delete_delete(
    means: str, mapped: Mapped, gogs: RunningGogs, gogs_client: GogsClient
) -> None:
    group, org = unique("Dev"), unique("org")
    bridge, scim = mapped(
        rule(group, org, "devs", permission="write", create_org=True),
        provisioning={"on_delete": "delete"},
        **means_sections(means, gogs),
    )
    ids, logins = [], []
    for _ in range(2):
        login = unique("del")
        created = scim.post(
            "/Users", json={"schemas": [USER_SCHEMA], "userName": f"{login}@example.com"}
        )
        assert created.status_code == 201, created.text
        ids.append(created.json()["id"])
        logins.append(login)
    new_group(scim, group, ids)
    # The second one owns a repository: Gogs refuses to delete such an account.
    gogs_client.create_repo(logins[1], unique("mine"), private=True)

    for scim_id in ids:
        assert scim.delete(f"/Users/{scim_id}").status_code == 204
    first, second = (gogs_client.get_user(login) for login in logins)
    with bridge.engine.connect() as conn:
        residual = {
            row.id: tuple(row.residual_access or ())
            for row in conn.execute(select(users.c.id, users.c.residual_access))
        }
    if means != "api-only":
        assert first is None, "a member of an org is deleted once the org rows are gone"
        assert residual[ids[0]] == ()
    else:
        assert first is not None, "Gogs keeps an org member (the API cannot remove org rows)"
        assert residual[ids[0]][-1].startswith("Gogs account kept, not deleted")
        assert "organization membership" in residual[ids[0]][-1]
    assert second is not None, "Gogs refuses to delete a repository owner"
    assert "repository ownership" in residual[ids[1]][-1]


def test_the_bridge_admin_account_cannot_be_deprovisioned(
    bridge_factory: Callable[..., Bridge], scim_token: str, gogs: RunningGogs
) -> None:
    login = unique("ops")
    first = bridge_factory()
    with client_for(first, scim_token) as scim:
        created = scim.post(
            "/Users",
            json={
                "schemas": [USER_SCHEMA],
                "userName": f"{login}@example.com",
                "password": PASSWORD,
            },
        )
        assert created.status_code == 201, created.text
    scim_id = created.json()["id"]
    # The operator later makes that account the bridge's own admin account.
    second = bridge_factory(gogs={"admin_user": login})
    with client_for(second, scim_token) as scim:
        refused = scim.patch(
            f"/Users/{scim_id}",
            json={
                "schemas": [PATCH_OP_SCHEMA],
                "Operations": [{"op": "replace", "path": "active", "value": False}],
            },
        )
        assert refused.status_code == 400, refused.text
        assert "bridge's own admin account" in refused.json()["detail"]
        assert scim.delete(f"/Users/{scim_id}").status_code == 400
        assert scim.get(f"/Users/{scim_id}").json().get("active", True) is True
    with GogsClient(gogs.url, token="") as anonymous:
        assert anonymous.create_token_with_password(login, PASSWORD, "still-works")


@pytest.fixture
def own_gogs() -> Iterator[GogsSandbox]:
    """A Gogs of its own, for the one test that stops and restarts it."""
    sandbox = GogsSandbox()
    sandbox.start()
    try:
        yield sandbox
    finally:
        sandbox.stop()


@pytest.mark.parametrize("means", ["database", "web-session"])
def test_gogs_going_down_mid_deprovisioning_ends_with_every_way_closed(
    means: str, own_gogs: GogsSandbox, scim_token: str, tmp_path: Path
) -> None:
    """For the web session the restart also loses its session (memory sessions): the
    worker's retry signs in again."""
    running = own_gogs.running
    group, org = unique("Dev"), unique("org")
    settings = make_settings(
        running,
        f"sqlite:///{tmp_path / 'store.db'}",
        scim_token,
        gogs={**means_sections(means, running)["gogs"], "timeout_seconds": 3},
    ).model_copy(update={"mappings": (rule(group, org, "devs", create_org=True),)})
    bridge = build_bridge(settings)
    try:
        with (
            GogsClient(running.url, running.admin_token) as admin,
            client_for(bridge, scim_token) as scim,
        ):
            person = give_every_way_in(scim, running, admin, tmp_path, group)
            ways = person.ways
            assert ways.clone_ssh(person.team_repo)
            assert ways.clone_http(person.team_repo, ways.token)

            # Gogs stops right after the password was scrambled, before anything else.
            halted: list[str] = []
            counting = bridge.gogs._on_call

            def stop_after_edit(method: str, path: str, status: int) -> None:
                if counting is not None:
                    counting(method, path, status)
                if method == "PATCH" and path.startswith("/admin/users/") and not halted:
                    halted.append(path)
                    own_gogs.halt()

            bridge.gogs._on_call = stop_after_edit
            web_cookie = None
            if bridge.gogs_web is not None:
                # Signed in before the restart, which forgets every (memory) session.
                assert bridge.gogs_web.orgs_of(running.admin_user) == [org]
                web_cookie = bridge.gogs_web._http.cookies.get("i_like_gogs")
                assert web_cookie
            body = set_active(scim, person.scim_id, False)
            assert halted
            assert body[GOGS_USER_SCHEMA]["syncState"] == "pending"
            assert "unreachable" in body[GOGS_USER_SCHEMA]["syncError"]

            own_gogs.restart()
            # Still open: only the password was changed before Gogs went down.
            assert ways.clone_ssh(person.team_repo)
            assert ways.api_with_token()
            with bridge.engine.begin() as conn:
                # Skip the backoff the failed attempt earned, as time passing would.
                conn.execute(
                    update(converge_jobs).values(not_before=datetime(2000, 1, 1, tzinfo=UTC))
                )
            for _ in range(10):
                if not bridge.reconciler.run_due():
                    break
            else:
                with bridge.engine.connect() as conn:
                    left = conn.exec_driver_sql(
                        "SELECT resource_type, reason, attempts, last_error FROM converge_jobs"
                    ).all()
                raise AssertionError(f"jobs keep coming back: {left}")

            after = scim.get(f"/Users/{person.scim_id}").json()[GOGS_USER_SCHEMA]
            assert after["syncState"] == "synced"
            if bridge.gogs_web is not None:
                assert bridge.gogs_web._http.cookies.get("i_like_gogs") != web_cookie
            reviewed = [(person.own_repo, "ci"), (person.collab_repo, "ci-collab")]
            deploy_keys = [residual_deploy_key(repo, title) for repo, title in sorted(reviewed)]
            if means == "database":
                assert after["residualAccess"] == deploy_keys
            else:
                assert after["residualAccess"] == [RESIDUAL_TOKENS_WEB, *deploy_keys]
                assert ways.clone_http(person.own_repo, ways.token)  # as reported
            assert not ways.web_login(PASSWORD)
            assert not ways.api_with_password(PASSWORD)
            assert not ways.api_with_token()
            assert not ways.session_works()
            assert not ways.clone_ssh(person.team_repo)
            for repo in (person.team_repo, person.collab_repo):
                assert not ways.clone_http(repo, ways.token), repo
            for repo in (person.team_repo, person.collab_repo, person.own_repo):
                assert not ways.clone_http(repo, PASSWORD), repo
            if means == "database":
                assert not ways.clone_http(person.own_repo, ways.token)
            ways.session.close()
    finally:
        bridge.close()


def client_for(bridge: Bridge, scim_token: str) -> TestClient:
    return TestClient(
        bridge.app,
        base_url="http://testserver/scim/v2",
        headers={"Authorization": f"Bearer {scim_token}"},
    )
