"""TeamConverger's decisions on a scripted Gogs (the real one is in integration tests)."""

from __future__ import annotations

from typing import Literal

import pytest

from gogs_scim.config import TeamMapping
from gogs_scim.gogs.client import GogsClient, GogsOrg, GogsTeam, GogsUnreachable, GogsUser
from gogs_scim.gogs.teams import TeamConvergeInterrupted, TeamConverger, TeamUnavailable
from gogs_scim.provisioning.teams import TeamTarget, team_targets


class ScriptedGogs(GogsClient):
    """Answers from memory; `fail_on_add` makes that add an outage."""

    def __init__(self, permission: str = "write", members: tuple[str, ...] = ()) -> None:
        super().__init__("http://gogs.invalid", "x" * 40)
        self.orgs = {"acme"}
        self.team = GogsTeam(7, "devs", permission)
        self.members = list(members)
        self.fail_on_add: str | None = None
        self.made: list[str] = []

    def get_org(self, name: str) -> GogsOrg | None:
        return GogsOrg(1, name, "") if name in self.orgs else None

    def list_org_teams(self, org: str) -> list[GogsTeam]:
        return [self.team]

    def list_team_members(self, team_id: int) -> list[GogsUser]:
        return [GogsUser(i, login, "", "") for i, login in enumerate(self.members)]

    def add_team_member(self, team_id: int, login: str) -> None:
        if login == self.fail_on_add:
            raise GogsUnreachable(0, "connection refused")
        self.made.append(f"add {login}")
        self.members.append(login)

    def remove_team_member(self, team_id: int, login: str) -> None:
        self.made.append(f"remove {login}")
        self.members.remove(login)


def target(permission: Literal["read", "write", "admin"] = "write") -> TeamTarget:
    rule = TeamMapping(group="g", org="acme", team="devs", permission=permission)
    [only] = team_targets([rule]).values()
    return only


def test_wider_team_gets_nobody_but_still_loses_the_unwanted() -> None:
    gogs = ScriptedGogs(permission="admin", members=("mallory",))
    result = TeamConverger(gogs, admin_user="scim-admin").converge(
        target("read"),
        ["alice"],
        [],
    )
    assert gogs.made == ["remove mallory"]
    assert result.added == () and "nobody is added" in result.warnings[0]


def test_outage_part_way_reports_what_was_done() -> None:
    gogs = ScriptedGogs()
    gogs.fail_on_add = "bob"
    with pytest.raises(TeamConvergeInterrupted) as caught:
        TeamConverger(gogs, admin_user="scim-admin").converge(
            target(),
            ["alice", "bob"],
            [],
        )
    assert caught.value.added == ("alice",)
    assert isinstance(caught.value.cause, GogsUnreachable)


def test_missing_org_without_consent() -> None:
    gogs = ScriptedGogs()
    gogs.orgs.clear()
    with pytest.raises(TeamUnavailable, match="create_org"):
        TeamConverger(gogs, admin_user="scim-admin").converge(
            target(),
            ["alice"],
            [],
        )
