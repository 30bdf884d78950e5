"""Converging one Gogs team: make its members the union the mapped groups grant.

Level-triggered, like UserConverger: it reads the org, the team and its members from
Gogs and makes only the calls needed. It never widens access it was not asked for:
a team whose permission in Gogs differs from the rule is reported, not changed (the
API has no team edit); while it grants *more* than the rule, nobody is added to it;
and the org is only created when the rule says `create_org = true`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from gogs_scim.gogs.client import GogsClient, GogsError, GogsNotFound, GogsRejected, GogsTeam
from gogs_scim.gogs.converge import GogsCall
from gogs_scim.provisioning.teams import TeamTarget, plan_membership

log = logging.getLogger(__name__)

OWNERS_TEAM = "owners"
# Gogs's access modes in order (ParseAccessMode; "owner" is the Owners team's).
_RANK = {"read": 1, "write": 2, "admin": 3, "owner": 4}


class TeamUnavailable(Exception):
    """The team cannot be converged as configured (missing org, Gogs refused it)."""


class TeamConvergeInterrupted(Exception):
    """Gogs failed part-way through the membership changes.

    `added`/`removed` are the changes already made, so that the caller can remember
    whom the bridge added (team_grants) before it handles `cause` like any failure.
    """

    def __init__(self, cause: GogsError, added: list[str], removed: list[str]) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.added = tuple(added)
        self.removed = tuple(removed)


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
        wider = self._check_permission(team, target, warnings)
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
        removed: list[str] = []
        try:
            for login in () if wider else plan.add:
                try:
                    self._client.add_team_member(team.id, login)
                except GogsNotFound:
                    # The account vanished from Gogs; its user's converge recreates it
                    # and re-runs this team.
                    warnings.append(f"Gogs user {login!r} does not exist; not added to {where}")
                    continue
                added.append(login)
                calls.append(GogsCall("add_team_member", f"{where}:{login}"))
            for login in plan.remove:
                try:
                    self._client.remove_team_member(team.id, login)
                except GogsRejected as exc:
                    warnings.append(f"could not remove {login!r} from {where}: {exc.message}")
                    continue
                removed.append(login)
                calls.append(GogsCall("remove_team_member", f"{where}:{login}"))
        except GogsError as exc:
            if added or removed:
                raise TeamConvergeInterrupted(exc, added, removed) from exc
            raise
        return TeamConvergeResult(
            team.id, tuple(added), tuple(removed), tuple(calls), tuple(warnings)
        )

    def _check_permission(self, team: GogsTeam, target: TeamTarget, warnings: list[str]) -> bool:
        """Report a permission that differs from the rule; True when the team grants
        more than the rule (then joining it would over-permission: nobody is added)."""
        have = team.permission.lower()
        if have == target.permission or team.name.lower() == OWNERS_TEAM:
            return False
        wider = _RANK.get(have, 4) > _RANK[target.permission]
        consequence = "nobody is added to it" if wider else "members are added anyway"
        warnings.append(
            f"Gogs team {target.org}/{target.team} has permission {have!r}, the mapping "
            f"says {target.permission!r}; the bridge does not change it and {consequence} "
            "(fix the team in Gogs or the mapping)"
        )
        log.warning("%s", warnings[-1])
        return wider

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
