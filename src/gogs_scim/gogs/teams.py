"""Converging one Gogs team: make its members the union the mapped groups grant.

Level-triggered, like UserConverger: it reads the org, the team and its members from
Gogs and makes only the calls needed. It never widens access it was not asked for:
a team whose permission in Gogs differs from the rule is reported, not changed (the
API has no team edit, and a wider team may be intended by an owner), and the org is
only created when the rule says `create_org = true`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from gogs_scim.gogs.client import GogsClient, GogsNotFound, GogsRejected, GogsTeam
from gogs_scim.gogs.converge import GogsCall
from gogs_scim.provisioning.teams import TeamTarget, plan_membership

log = logging.getLogger(__name__)

OWNERS_TEAM = "owners"


class TeamUnavailable(Exception):
    """The team cannot be converged as configured (missing org, Gogs refused it)."""


@dataclass(frozen=True)
class TeamConvergeResult:
    team_id: int
    added: tuple[str, ...]
    removed: tuple[str, ...]
    calls: tuple[GogsCall, ...]
    # Problems that did not stop the converge but someone must see (sync error).
    warnings: tuple[str, ...] = field(default=())


class TeamConverger:
    def __init__(self, client: GogsClient, *, admin_user: str) -> None:
        self._client = client
        # The bridge's own account: owner of the orgs it creates, never removed.
        self._admin = admin_user

    def converge(
        self, target: TeamTarget, desired: Iterable[str], granted: Iterable[str]
    ) -> TeamConvergeResult:
        """Make `target`'s members match; `granted` = logins the bridge added before.

        Raises TeamUnavailable, or GogsUnreachable / GogsError for the caller to retry.
        """
        calls: list[GogsCall] = []
        warnings: list[str] = []
        where = f"{target.org}/{target.team}"
        if self._client.get_org(target.org) is None:
            if not target.create_org:
                raise TeamUnavailable(
                    f"Gogs organization {target.org!r} does not exist and the mapping does "
                    "not allow creating it (create_org = false)"
                )
            self._client.create_org(self._admin, target.org)
            calls.append(GogsCall("create_org", target.org))
        team = self._find_team(target)
        if team is None:
            team = self._create_team(target)
            calls.append(GogsCall("create_team", where))
        elif team.permission.lower() != target.permission:
            warnings.append(
                f"Gogs team {where} has permission {team.permission!r}, the mapping says "
                f"{target.permission!r}; the bridge does not change it (fix it in Gogs)"
            )
            log.warning("%s", warnings[-1])
        current = [member.login for member in self._client.list_team_members(team.id)]
        plan = plan_membership(
            desired=desired,
            current=current,
            granted=granted,
            exclusive=target.exclusive,
            protected=[self._admin],
            is_owners=team.name.lower() == OWNERS_TEAM,
        )
        added: list[str] = []
        for login in plan.add:
            try:
                self._client.add_team_member(team.id, login)
            except GogsNotFound:
                # The account vanished from Gogs; its user's converge will recreate it
                # and re-run this team.
                warnings.append(f"Gogs user {login!r} does not exist; not added to {where}")
                continue
            added.append(login)
            calls.append(GogsCall("add_team_member", f"{where}:{login}"))
        removed: list[str] = []
        for login in plan.remove:
            try:
                self._client.remove_team_member(team.id, login)
            except GogsRejected as exc:
                warnings.append(f"could not remove {login!r} from {where}: {exc.message}")
                continue
            removed.append(login)
            calls.append(GogsCall("remove_team_member", f"{where}:{login}"))
        return TeamConvergeResult(
            team.id, tuple(added), tuple(removed), tuple(calls), tuple(warnings)
        )

    def _find_team(self, target: TeamTarget) -> GogsTeam | None:
        folded = target.team.lower()
        for team in self._client.list_org_teams(target.org):
            if team.name.lower() == folded:
                return team
        return None

    def _create_team(self, target: TeamTarget) -> GogsTeam:
        try:
            return self._client.create_team(
                target.org,
                target.team,
                target.permission,
                description="Managed by gogs-scim",
            )
        except GogsRejected as exc:
            # A concurrent converge (another replica) may have created it meanwhile.
            team = self._find_team(target)
            if team is not None:
                return team
            raise TeamUnavailable(f"Gogs refused to create team {target.team!r}: {exc}") from exc
