"""The proof that matters: team membership from SCIM is what git over HTTP allows."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from gogs_scim.gogs.client import GogsClient
from gogs_scim.gogs.sandbox import RunningGogs
from gogs_scim.scim.schema import USER_SCHEMA
from tests.conftest import unique
from tests.integration.groups_support import (  # noqa: F401 (mapped is a fixture)
    Mapped,
    mapped_fixture,
    new_group,
    remove,
    rule,
)

pytestmark = pytest.mark.gogs

PASSWORD = "Corr3ct-Horse-Battery-" + "x" * 8


def git(home: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_git_clone_and_push_follow_team_membership(
    mapped: Mapped, gogs_client: GogsClient, gogs: RunningGogs, tmp_path: Path
) -> None:
    org, writers, readers = unique("org"), unique("w"), unique("r")
    _, scim = mapped(
        rule(writers, org, "writers", permission="write", create_org=True),
        rule(readers, org, "readers", permission="read", create_org=True),
    )
    logins: dict[str, str] = {}
    ids: dict[str, str] = {}
    for who in ("wanda", "rita"):
        login = unique(who)
        created = scim.post(
            "/Users",
            json={
                "schemas": [USER_SCHEMA],
                "userName": f"{login}@example.com",
                "password": PASSWORD,
            },
        )
        assert created.status_code == 201, created.text
        logins[who], ids[who] = login, created.json()["id"]
    writers_id = new_group(scim, writers, [ids["wanda"]])
    new_group(scim, readers, [ids["rita"]])
    repo = unique("repo")
    gogs_client.create_repo(org, repo, private=True)
    for team in gogs_client.list_org_teams(org):
        if team.name in ("writers", "readers"):
            gogs_client.add_team_repo(team.id, repo)

    def url(who: str) -> str:
        host = gogs.url.removeprefix("http://")
        return f"http://{logins[who]}:{PASSWORD}@{host}/{org}/{repo}.git"

    home = tmp_path / "home"
    home.mkdir()
    for who in ("wanda", "rita"):
        target = tmp_path / who
        cloned = git(home, "clone", url(who), str(target))
        assert cloned.returncode == 0, cloned.stderr
        (target / f"{who}.txt").write_text(who)
        assert git(home, "add", ".", cwd=target).returncode == 0
        assert git(home, "commit", "-m", who, cwd=target).returncode == 0
        pushed = git(home, "push", "origin", "HEAD", cwd=target)
        if who == "wanda":
            assert pushed.returncode == 0, pushed.stderr
        else:
            assert pushed.returncode != 0, "a read-only team member could push"

    remove(scim, writers_id, ids["wanda"])
    again = git(home, "clone", url("wanda"), str(tmp_path / "again"))
    assert again.returncode != 0, "a user removed from the group can still clone"
