"""Planning: what converging a job would change in Gogs, computed without changing it.

Shadow mode (`provisioning.mode = "shadow"`, gogs/shadow.py) and `gogs-scim plan` run
the SAME UserConverger and TeamConverger as apply mode, on a `PlanningClient`: every
read goes to the real Gogs, every write is recorded as a `PlannedCall` instead of
being sent, and answers what Gogs would plausibly answer so the converger carries on.
`PlanningDatabase` does the same for the database means (SELECTs only). So a plan and
its later apply come from one decision logic, never two copies of it.

A plan is what the job would do if it ran now, against Gogs as it is now: each job is
planned on its own (what one job would create, a later job does not see).
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Engine

from gogs_scim.gogs.client import (
    GogsAuthFailed,
    GogsClient,
    GogsError,
    GogsKey,
    GogsNotFound,
    GogsOrg,
    GogsRejected,
    GogsTeam,
    GogsUnreachable,
    GogsUser,
    is_reserved_team_name,
)
from gogs_scim.gogs.converge import AccountConflict, UserConverger
from gogs_scim.gogs.database_means import DatabaseRevocation, GogsDatabase
from gogs_scim.gogs.team_jobs import TeamJobRunner
from gogs_scim.gogs.teams import TeamConverger, TeamUnavailable
from gogs_scim.gogs.web_session import GogsWebSession, UserForm
from gogs_scim.provisioning.teams import TEAM_RESOURCE_TYPE
from gogs_scim.store import jobs
from gogs_scim.store import users as user_store

# "unreachable": Gogs could not be read (no reply, or the token refused): no plan.
PlanOutcome = Literal["planned", "conflict", "rejected", "unreachable", "gone"]
# Gogs's Owners team (teams.OWNERS_TEAM); its last member cannot be removed.
_OWNERS = "owners"
# The note a plan carries when the IdP sent a password shadow mode will not keep.
NOT_KEPT_NOTE = (
    "the IdP sent a password: it is never stored, so it reaches Gogs only if the IdP "
    "sends it again while the bridge is in apply mode"
)


class PlanningRefused(RuntimeError):
    """A write reached the planning client's transport: a bug, and never sent."""


@dataclass(frozen=True)
class PlannedCall:
    """One change a converge would make in Gogs (never carries a secret).

    `action` names the change (the client method, or the database step as apply's
    audit names it), `target` what it is made on, in the form apply's audit records
    use ("login", "org/team:login"), and `summary` says it in a sentence."""

    action: str
    target: str
    summary: str


class PlanningClient(GogsClient):
    """A GogsClient that reads from `gogs` and only records what it would write.

    It keeps what it planned to create (orgs, teams, their members) so that later
    reads in the same plan see them, as they would after the real calls. Any write
    without an override below reaches `_request` and is refused, never sent.
    """

    def __init__(self, gogs: GogsClient) -> None:
        # Deliberately not GogsClient.__init__: no connection of its own; reads go
        # through `gogs` (its token, its timeout, its metrics hook).
        self._gogs = gogs
        self.planned: list[PlannedCall] = []
        self._next_id = 0
        self._orgs: dict[str, GogsOrg] = {}
        self._org_teams: dict[str, list[GogsTeam]] = {}
        self._members: dict[int, list[str]] = {}
        self._team_names: dict[int, str] = {}
        self._keys: dict[int, str] = {}
        self._users: dict[str, GogsUser] = {}

    def __repr__(self) -> str:
        return f"PlanningClient({self._gogs!r})"

    def close(self) -> None:
        """The real client belongs to whoever made it."""

    @property
    def base_url(self) -> str:
        return self._gogs.base_url

    @property
    def calls(self) -> int:
        return self._gogs.calls

    def record(self, action: str, target: str, summary: str) -> None:
        self.planned.append(PlannedCall(action, target, summary))

    def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str | int] | None = None,
        basic_auth: tuple[str, str] | None = None,
    ) -> Any:
        if method != "GET":
            raise PlanningRefused(f"planning never sends {method} {path}")
        return self._gogs._request(method, path, params=params, basic_auth=basic_auth)

    def _planned_id(self) -> int:
        # Negative: never the id of anything real in Gogs.
        self._next_id -= 1
        return self._next_id

    # -- reads that see what the plan created -------------------------------------

    def get_user(self, login: str) -> GogsUser | None:
        found = super().get_user(login)
        if found is not None:
            self._users[login.lower()] = found
        return found

    def list_user_keys(self, login: str) -> list[GogsKey]:
        keys = super().list_user_keys(login)
        for key in keys:
            self._keys[key.id] = f"{login}:{key.title}"
        return keys

    def get_org(self, name: str) -> GogsOrg | None:
        return self._orgs.get(name.lower()) or super().get_org(name)

    def list_org_teams(self, org: str) -> list[GogsTeam]:
        teams = [] if org.lower() in self._orgs else super().list_org_teams(org)
        teams = [*teams, *self._org_teams.get(org.lower(), [])]
        for team in teams:
            self._team_names[team.id] = f"{org}/{team.name}"
        return teams

    def list_team_members(self, team_id: int) -> list[GogsUser]:
        if team_id < 0:
            return [GogsUser(0, login, "", "") for login in self._members.get(team_id, [])]
        return super().list_team_members(team_id)

    # -- writes, planned ----------------------------------------------------------

    def create_user(
        self,
        *,
        login: str,
        email: str,
        full_name: str,
        password: str,
        login_name: str = "",
        source_id: int = 0,
    ) -> GogsUser:
        named = f" ({full_name})" if full_name else ""
        self.record("create_user", login, f"create Gogs account {login}{named} <{email}>")
        return GogsUser(self._planned_id(), login, full_name, email)

    def edit_user(
        self,
        login: str,
        *,
        email: str,
        full_name: str,
        website: str = "",
        location: str = "",
        login_name: str = "",
        source_id: int = 0,
        password: str | None = None,
        active: bool | None = None,
        admin: bool | None = None,
        allow_git_hook: bool | None = None,
        allow_import_local: bool | None = None,
        max_repo_creation: int | None = None,
    ) -> GogsUser:
        seen = self._users.get(login.lower())
        changes: list[str] = []
        if seen is not None and seen.email.lower() != email.lower():
            changes.append(f"email {seen.email} -> {email}")
        if seen is not None and html.unescape(seen.full_name) != full_name:
            changes.append(f"full name {html.unescape(seen.full_name)!r} -> {full_name!r}")
        if password:
            changes.append("a new password (old password and remember-me cookies stop working)")
        if admin is False:
            changes.append("no site-admin rights")
        if allow_git_hook is False:
            changes.append("no git hook editing")
        if allow_import_local is False:
            changes.append("no local-path imports")
        what = ", ".join(changes) or "profile rewritten as the IdP has it (no visible change)"
        self.record("edit_user", login, f"update Gogs account {login}: {what}")
        return GogsUser(seen.id if seen else 0, login, full_name, email)

    def delete_user(self, login: str) -> None:
        self.record("delete_user", login, f"delete Gogs account {login}")

    def delete_key(self, key_id: int) -> None:
        target = self._keys.get(key_id, f"key {key_id}")
        login, _, title = target.partition(":")
        self.record("delete_key", target, f"delete SSH key {title!r} of {login}")

    def create_org(self, owner_login: str, name: str, full_name: str = "") -> GogsOrg:
        org = GogsOrg(self._planned_id(), name, full_name)
        self._orgs[name.lower()] = org
        # Gogs gives a new org an Owners team holding its owner.
        owners = GogsTeam(self._planned_id(), "Owners", "owner")
        self._org_teams[name.lower()] = [owners]
        self._members[owners.id] = [owner_login]
        self.record("create_org", name, f"create organization {name}, owned by {owner_login}")
        return org

    def create_team(self, org: str, name: str, permission: str, description: str = "") -> GogsTeam:
        if is_reserved_team_name(name):
            raise GogsRejected(422, f"team name {name!r} is reserved by Gogs")
        # Gogs reads any permission other than "write" or "admin" as "read".
        granted = permission if permission in ("write", "admin") else "read"
        team = GogsTeam(self._planned_id(), name, granted)
        self._org_teams.setdefault(org.lower(), []).append(team)
        self._members[team.id] = []
        self._team_names[team.id] = f"{org}/{name}"
        self.record("create_team", f"{org}/{name}", f"create team {org}/{name} ({granted})")
        return team

    def add_team_member(self, team_id: int, login: str) -> None:
        team = self._team_names.get(team_id, f"team {team_id}")
        if team_id < 0:
            self._members[team_id].append(login)
        self.record(
            "add_team_member",
            f"{team}:{login}",
            f"add {login} to team {team} (and so to its organization)",
        )

    def remove_team_member(self, team_id: int, login: str) -> None:
        team = self._team_names.get(team_id, f"team {team_id}")
        if team.rpartition("/")[2].lower() == _OWNERS:
            members = [member.login.lower() for member in self.list_team_members(team_id)]
            if members == [login.lower()]:
                # What Gogs would answer (client.remove_team_member): retrying never helps.
                raise GogsRejected(
                    422, f"{login} is the last member of the Owners team of this org"
                )
        self.record("remove_team_member", f"{team}:{login}", f"remove {login} from team {team}")

    def remove_collaborator(self, owner: str, repo: str, login: str) -> None:
        self.record(
            "remove_collaborator",
            f"{owner}/{repo}:{login}",
            f"remove {login} as collaborator of repository {owner}/{repo}",
        )


class PlanningDatabase(GogsDatabase):
    """The database means, planned: counts what `revoke` would change with SELECTs and
    records it on `client`; never writes (not even in a transaction rolled back)."""

    def __init__(self, database: GogsDatabase, client: PlanningClient) -> None:
        # Deliberately not GogsDatabase.__init__: every read goes through `database`.
        self._database = database
        self._client = client

    def close(self) -> None:
        """The real database belongs to whoever opened it."""

    def revoke(self, user_id: int, login: str) -> DatabaseRevocation:
        done = self._database.plan_revoke(user_id, login)
        for change in done.changes(login):
            self._client.record(*change)
        return done
        record = self._client.record
        record("prohibit_login", login, f"set prohibit_login on {login} (Gogs database)")
        if done.tokens:
            record(
                "delete_access_tokens",
                f"{login}:{done.tokens}",
                f"delete the {done.tokens} access token(s) of {login} (Gogs database)",
            )
        for org in done.orgs:
            record("leave_org", f"{org}:{login}", f"remove {login} from organization {org}")
        if done.teams:
            record(
                "leave_teams",
                f"{login}:{done.teams}",
                f"remove {login} from {done.teams} team(s) (Gogs database)",
            )
        if done.collaborations:
            record(
                "remove_collaborations",
                f"{login}:{done.collaborations}",
                f"remove {login} from {done.collaborations} collaboration(s) (Gogs database)",
            )
        if done.watches:
            record(
                "unwatch_repositories",
                f"{login}:{done.watches}",
                f"stop {login} watching {done.watches} repositories they leave (Gogs database)",
            )
        return done

    def allow_login(self, user_id: int, login: str) -> bool:
        if not self._database.account_exists(user_id, login):
            return False
        self._client.record(
            "allow_login", login, f"clear prohibit_login on {login} (Gogs database)"
        )
        return True

    def account_exists(self, user_id: int, login: str) -> bool:
        return self._database.account_exists(user_id, login)

    def login_prohibited(self, user_id: int) -> bool:
        return self._database.login_prohibited(user_id)

    def owned_repos(self, user_id: int) -> list[str]:
        return self._database.owned_repos(user_id)

    def administered_repos(self, user_id: int) -> list[tuple[str, str]]:
        return self._database.administered_repos(user_id)


class PlanningWebSession(GogsWebSession):
    """The admin web session means, planned: reads the pages it needs, records on
    `client` what it would post. Signing in is the one request it makes that is not
    a read; it changes nothing a user or the IdP could notice."""

    def __init__(self, web: GogsWebSession, client: PlanningClient) -> None:
        # Deliberately not GogsWebSession.__init__: every read goes through `web`.
        self._web = web
        self._client = client
        self._left: set[str] = set()
        self._logins: dict[int, str] = {}

    def close(self) -> None:
        """The real session belongs to whoever opened it."""

    def user_form(self, user_id: int) -> UserForm:
        return self._web.user_form(user_id)

    def all_repos(self) -> list[tuple[str, str]]:
        return self._web.all_repos()

    def orgs_of(self, login: str) -> list[str]:
        return [org for org in self._web.orgs_of(login) if org.lower() not in self._left]

    def set_prohibit_login(self, user_id: int, login: str, on: bool) -> bool:
        try:
            form = self._web.user_form(user_id)
        except GogsNotFound:
            return False
        if form.login.lower() != login.lower():
            return False
        self._logins[user_id] = login
        if form.prohibit_login != on:
            verb = "set" if on else "clear"
            self._client.record(
                "prohibit_login" if on else "allow_login",
                login,
                f"{verb} prohibit_login on {login} (admin web session)",
            )
        return True

    def remove_org_member(self, org: str, user_id: int) -> None:
        # Gogs keeps the last owner of an org (its answer is the same redirect);
        # deprovisioning reads the membership again and reports that case itself.
        for team in self._client.list_org_teams(org):
            if team.name.lower() == _OWNERS:
                owners = self._client.list_team_members(team.id)
                if [member.id for member in owners] == [user_id]:
                    return
        self._left.add(org.lower())
        who = self._logins.get(user_id, f"user #{user_id}")
        self._client.record(
            "leave_org",
            f"{org}:{who}",
            f"remove {who} from organization {org} and its teams (admin web session)",
        )


@dataclass(frozen=True)
class Convergers:
    users: UserConverger
    teams: TeamConverger


ConvergersFor = Callable[[GogsClient, GogsDatabase | None, GogsWebSession | None], Convergers]
"""Builds the convergers of this configuration on a given client and deprovisioning
means (bootstrap.convergers): the same for apply and for planning."""


@dataclass(frozen=True)
class JobPlan:
    """What one job would change in Gogs now; `detail` says why it would not, or notes."""

    resource_type: str
    resource_id: str
    # A human name: "alice@example.com (Gogs alice)", "org/devs".
    resource: str
    outcome: PlanOutcome
    calls: tuple[PlannedCall, ...] = ()
    detail: str = ""
    # Team jobs: the groups whose members the team follows (the why).
    group_ids: tuple[str, ...] = field(default=())


class Planner:
    """Plans jobs from the store and Gogs, read-only for both."""

    def __init__(
        self,
        engine: Engine,
        gogs: GogsClient,
        convergers: ConvergersFor,
        *,
        database: GogsDatabase | None = None,
        web: GogsWebSession | None = None,
        teams: TeamJobRunner | None = None,
    ) -> None:
        self._engine = engine
        self._gogs = gogs
        self._convergers = convergers
        self._database = database
        self._web = web
        self._teams = teams

    def plan(self, job: jobs.ConvergeJob, *, password_sent: bool = False) -> JobPlan:
        client = PlanningClient(self._gogs)
        database = PlanningDatabase(self._database, client) if self._database else None
        web = PlanningWebSession(self._web, client) if self._web else None
        convergers = self._convergers(client, database, web)
        if job.resource_type == TEAM_RESOURCE_TYPE:
            return self._plan_team(job, client, convergers.teams)
        return self._plan_user(job, client, convergers.users, password_sent)

    def _plan_user(
        self,
        job: jobs.ConvergeJob,
        client: PlanningClient,
        converger: UserConverger,
        password_sent: bool,
    ) -> JobPlan:
        with self._engine.connect() as conn:
            user = user_store.get_user(conn, job.resource_id, include_deleted=True)
        if user is None:
            return JobPlan("User", job.resource_id, job.resource_id, "gone", detail="user gone")
        name = f"{user.user_name} (Gogs {user.gogs_login})"
        note = NOT_KEPT_NOTE if password_sent else ""
        try:
            # Never the IdP's password: apply will not have it either (it is not stored).
            converger.converge(user, None)
        except AccountConflict as exc:
            return self._failed("User", job, name, client, "conflict", str(exc))
        except (GogsUnreachable, GogsAuthFailed) as exc:
            return self._failed("User", job, name, client, "unreachable", str(exc))
        except GogsError as exc:
            return self._failed("User", job, name, client, "rejected", f"Gogs refused: {exc}")
        return JobPlan("User", job.resource_id, name, "planned", tuple(client.planned), note)

    def _plan_team(
        self, job: jobs.ConvergeJob, client: PlanningClient, converger: TeamConverger
    ) -> JobPlan:
        wanted = self._teams.desired(job.resource_id) if self._teams is not None else None
        if wanted is None:
            return JobPlan(
                TEAM_RESOURCE_TYPE,
                job.resource_id,
                job.resource_id,
                "gone",
                detail="no mapping names this team any more",
            )
        target = wanted.target
        name = f"{target.org}/{target.team}"
        groups = tuple(wanted.group_ids)
        try:
            result = converger.converge(target, wanted.members, wanted.granted)
        except (GogsUnreachable, GogsAuthFailed) as exc:
            failed = self._failed(TEAM_RESOURCE_TYPE, job, name, client, "unreachable", str(exc))
        except TeamUnavailable as exc:
            failed = self._failed(TEAM_RESOURCE_TYPE, job, name, client, "rejected", str(exc))
        except GogsError as exc:
            detail = f"Gogs refused: {exc}"
            failed = self._failed(TEAM_RESOURCE_TYPE, job, name, client, "rejected", detail)
        else:
            warnings = "; ".join(result.warnings)
            return JobPlan(
                TEAM_RESOURCE_TYPE,
                job.resource_id,
                name,
                "planned",
                tuple(client.planned),
                warnings,
                groups,
            )
        return JobPlan(
            failed.resource_type,
            failed.resource_id,
            failed.resource,
            failed.outcome,
            failed.calls,
            failed.detail,
            groups,
        )

    @staticmethod
    def _failed(
        resource_type: str,
        job: jobs.ConvergeJob,
        name: str,
        client: PlanningClient,
        outcome: PlanOutcome,
        detail: str,
    ) -> JobPlan:
        # The calls planned before the failure would be made too: they stay in the plan.
        return JobPlan(resource_type, job.resource_id, name, outcome, tuple(client.planned), detail)
