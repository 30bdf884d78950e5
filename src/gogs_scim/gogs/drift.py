"""Drift: where Gogs differs from what the IdP said, found by reading only.

Reconciliation (service/reconcile.py) lists these items, and with `--apply` hands the
repairable ones to the same convergers every change goes through. Nothing here writes
to Gogs or to the store.

What is compared:

* active users: the Gogs account exists and is the one the bridge knows; email and
  full name; with the database means, `prohibit_login` is not set;
* deactivated or deleted users: SSH keys; with the database means, `prohibit_login`,
  site admin, access tokens, organization memberships and collaborations; without it,
  membership of the teams in the organizations the mappings name; with
  `on_delete = delete`, the account itself. What the user's residual access already
  says cannot be closed is left out (it is reported there);
* managed teams (`[[mappings]]`): the organization and team exist; the permission;
  members the groups grant are in it; nobody else is (exclusive teams), or nobody the
  bridge added that no group grants any more (non-exclusive teams: hand-made members
  stay, as the mapping allows).

Calls to Gogs: one user listing for every account (`/users/search` with a wildcard,
which returns every individual account with its email to an authenticated caller;
only when it is refused or hits its limit, one GET per login it does not return);
per deprovisioned user, its SSH keys; per managed organization, its teams and their
members (read once).
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Engine

from gogs_scim.config import TeamMapping
from gogs_scim.gogs.client import GogsClient, GogsError, GogsTeam, GogsUnreachable, GogsUser
from gogs_scim.gogs.database_means import GogsDatabase
from gogs_scim.gogs.deprovision import residual_last_owner
from gogs_scim.gogs.team_jobs import TeamJobRunner
from gogs_scim.gogs.teams import OWNERS_TEAM
from gogs_scim.provisioning.accounts import desired_account
from gogs_scim.provisioning.teams import TEAM_RESOURCE_TYPE, TeamTarget, plan_membership
from gogs_scim.store import users as user_store
from gogs_scim.store.users import USER_RESOURCE_TYPE, UserRecord

# What repairs an item: converging the user, converging the team, or a person.
Repair = Literal["user", "team", "manual"]
# done, total: for a progress bar over users and teams.
Progress = Callable[[int, int], None]

# `q` is matched with LIKE '%q%' and `%` is not escaped: a lone `%` matches every
# individual account (gogs-facts §1.3). Logins missing from the listing (a Gogs with
# more accounts than this) are looked up one by one.
_EVERYONE = "%"
_LISTING_LIMIT = 100_000
_RANK = {"read": 1, "write": 2, "admin": 3, "owner": 4}
_NOT_DELETED_PREFIX = "Gogs account kept, not deleted"


@dataclass(frozen=True)
class DriftItem:
    """One difference between what the IdP said and what Gogs has."""

    resource_type: str  # "User" or "Team"
    resource_id: str  # the SCIM id, or the team key
    subject: str  # the Gogs login, or org/team
    what: str
    idp: str  # what the IdP (the store) says
    gogs: str  # what Gogs has
    repair: Repair
    # For "manual": why the bridge cannot repair it.
    note: str = ""
    # The repair must rewrite the whole account (fields the converge only sends then).
    rewrite: bool = False

    @property
    def identity(self) -> tuple[str, str, str, str, str]:
        """Equal for the same difference found again (the re-check after a repair)."""
        return (self.resource_type, self.resource_id, self.what, self.idp, self.gogs)

    @property
    def repair_text(self) -> str:
        if self.repair == "user":
            return "converge the user"
        if self.repair == "team":
            return "converge the team"
        return f"manual: {self.note}"


@dataclass(frozen=True)
class Scan:
    """One comparison: the differences, and how much was compared."""

    items: tuple[DriftItem, ...]
    users: int
    teams: int


class DriftDetector:
    def __init__(
        self,
        engine: Engine,
        client: GogsClient,
        *,
        teams: TeamJobRunner,
        targets: Sequence[TeamTarget],
        admin_user: str,
        database: GogsDatabase | None,
        delete_accounts: bool,
    ) -> None:
        self._engine = engine
        self._client = client
        self._teams = teams
        self._targets = tuple(targets)
        self._admin = admin_user.lower()
        self._database = database
        self._delete_accounts = delete_accounts
        self._managed_orgs = tuple(dict.fromkeys(t.org for t in self._targets))

    @property
    def rules(self) -> tuple[TeamMapping, ...]:
        """Every mapping rule behind the managed teams."""
        return tuple(rule for target in self._targets for rule in target.rules)

    def detect(self, progress: Progress | None = None) -> Scan:
        """Every difference, teams first then users; raises GogsError when Gogs cannot
        be read (the comparison is then incomplete)."""
        with self._engine.connect() as conn:
            records = [
                record
                for record in user_store.every_user_with_login(conn)
                if record.gogs_login.lower() != self._admin
            ]
        total = len(records) + len(self._targets) + 1
        done = 0

        def step() -> None:
            nonlocal done
            done += 1
            if progress is not None:
                progress(done, total)

        accounts = self._accounts([record.gogs_login for record in records])
        step()
        reading = _OrgReader(self._client)
        items: list[DriftItem] = []
        # Team memberships a team item already reports, so a deprovisioned user's own
        # check does not count them again: (team id, folded login).
        reported: set[tuple[int, str]] = set()
        missing = {login for login, account in accounts.items() if account is None}
        for target in self._targets:
            items.extend(self._team(target, reading, missing, reported))
            step()
        for record in records:
            account = accounts[record.gogs_login.lower()]
            if record.active and record.deleted_at is None:
                items.extend(self._active(record, account))
            else:
                items.extend(self._deprovisioned(record, account, reading, reported))
            step()
        return Scan(tuple(items), len(records), len(self._targets))

    # -- reading Gogs ---------------------------------------------------------------

    def _accounts(self, logins: Iterable[str]) -> dict[str, GogsUser | None]:
        """The Gogs account of each login (folded), None where there is none."""
        wanted = {login.lower(): login for login in logins}
        if not wanted:
            return {}
        try:
            listed = self._client.search_users(_EVERYONE, limit=_LISTING_LIMIT)
            # Shorter than the limit: the listing holds every account, so a login it
            # lacks has none (deleted users' accounts cost no call each time).
            complete = len(listed) < _LISTING_LIMIT
        except GogsUnreachable:
            raise
        except GogsError:
            listed, complete = [], False  # refused: read one account at a time
        found: dict[str, GogsUser | None] = {u.login.lower(): u for u in listed if u.login}
        return {
            folded: found.get(folded)
            if folded in found or complete
            else self._client.get_user(login)
            for folded, login in wanted.items()
        }

    # -- teams ----------------------------------------------------------------------

    def _team(
        self,
        target: TeamTarget,
        reading: _OrgReader,
        missing: set[str],
        reported: set[tuple[int, str]],
    ) -> list[DriftItem]:
        where = f"{target.org}/{target.team}"

        def item(what: str, idp: str, gogs: str, repair: Repair, note: str = "") -> DriftItem:
            return DriftItem(TEAM_RESOURCE_TYPE, target.key, where, what, idp, gogs, repair, note)

        if not reading.org_exists(target.org):
            if target.create_org:
                return [item("organization", "exists (create_org)", "missing", "team")]
            return [
                item(
                    "organization",
                    "exists",
                    "missing",
                    "manual",
                    "create the organization in Gogs, or set create_org = true",
                )
            ]
        team = reading.team(target.org, target.team)
        if team is None:
            return [item("team", f"exists ({target.permission})", "missing", "team")]
        items: list[DriftItem] = []
        owners = team.name.lower() == OWNERS_TEAM
        have = team.permission.lower()
        wider = not owners and _RANK.get(have, 4) > _RANK[target.permission]
        if not owners and have != target.permission:
            items.append(
                item(
                    "permission",
                    target.permission,
                    have,
                    "manual",
                    "the Gogs API cannot change a team's permission; fix it in Gogs",
                )
            )
        desired = self._teams.desired(target.key)
        if desired is None:
            return items
        current = [member.login for member in reading.members(team)]
        plan = plan_membership(
            desired=desired.members,
            current=current,
            granted=desired.granted,
            exclusive=target.exclusive,
            protected=[self._admin],
            is_owners=owners,
        )
        for login in plan.add:
            if login.lower() in missing:
                continue  # the user's own item says the account is missing
            if wider:
                items.append(
                    item(
                        "member missing",
                        f"{login}: member",
                        f"{login}: not a member",
                        "manual",
                        "the team grants more than the mapping; the bridge adds nobody",
                    )
                )
            else:
                items.append(
                    item("member missing", f"{login}: member", f"{login}: not a member", "team")
                )
        why = "not in the mapped groups" if target.exclusive else "no group grants it any more"
        for login in plan.remove:
            reported.add((team.id, login.lower()))
            items.append(item("unexpected member", f"{login}: {why}", f"{login}: member", "team"))
        return items

    # -- users ----------------------------------------------------------------------

    def _active(self, record: UserRecord, account: GogsUser | None) -> list[DriftItem]:
        login = record.gogs_login

        def item(
            what: str,
            idp: str,
            gogs: str,
            repair: Repair = "user",
            note: str = "",
            rewrite: bool = False,
        ) -> DriftItem:
            return DriftItem(
                USER_RESOURCE_TYPE, record.id, login, what, idp, gogs, repair, note, rewrite
            )

        if account is None:
            return [item("account", "exists", "missing")]
        if record.gogs_user_id is None:
            why = record.sync_error or "the bridge has not adopted it"
            return [
                item("account", "the bridge's", f"id {account.id}, not adopted", "manual", note=why)
            ]
        if account.id != record.gogs_user_id:
            return [
                item(
                    "account",
                    f"id {record.gogs_user_id}",
                    f"id {account.id} (replaced by hand)",
                    "manual",
                    note="the account was replaced in Gogs; delete it or re-link the user",
                )
            ]
        desired = desired_account(record.document, login)
        items: list[DriftItem] = []
        if account.email.lower() != desired.email:
            items.append(item("email", desired.email, account.email))
        if html.unescape(account.full_name) != desired.full_name:
            # Gogs HTML-escapes full names when it loads them (`&` reads `&amp;`).
            items.append(item("full name", desired.full_name, html.unescape(account.full_name)))
        if self._database is not None and self._database.login_prohibited(account.id):
            items.append(item("prohibit_login", "off (active)", "on", rewrite=True))
        return items

    def _deprovisioned(
        self,
        record: UserRecord,
        account: GogsUser | None,
        reading: _OrgReader,
        reported: set[tuple[int, str]],
    ) -> list[DriftItem]:
        if account is None or record.gogs_user_id is None or account.id != record.gogs_user_id:
            return []  # no account of ours: no way in to close
        login = record.gogs_login
        state = "deleted" if record.deleted_at is not None else "inactive"

        def item(what: str, gogs: str, idp: str = "", rewrite: bool = False) -> DriftItem:
            return DriftItem(
                USER_RESOURCE_TYPE,
                record.id,
                login,
                what,
                idp or f"none ({state})",
                gogs,
                "user",
                rewrite=rewrite,
            )

        items: list[DriftItem] = []
        residual = record.residual_access
        if (
            record.deleted_at is not None
            and self._delete_accounts
            and not any(line.startswith(_NOT_DELETED_PREFIX) for line in residual)
        ):
            items.append(item("account", "exists", idp="deleted (on_delete = delete)"))
        if record.revoked_at is None:
            items.append(item("password", "not scrambled", idp="scrambled (revoked)"))
        items.extend(item("ssh key", key.title) for key in self._client.list_user_keys(login))
        if self._database is not None:
            items.extend(self._database_ways_in(account.id, login, item))
            return items
        for org in self._managed_orgs:
            if not reading.org_exists(org):
                continue
            for team in reading.teams(org):
                if (team.id, login.lower()) in reported:
                    continue
                if login.lower() not in {m.login.lower() for m in reading.members(team)}:
                    continue
                if team.name.lower() == OWNERS_TEAM and residual_last_owner(org) in residual:
                    continue  # the residual access says why it stays
                items.append(item("team membership", f"member of {org}/{team.name}"))
        return items

    def _database_ways_in(
        self, user_id: int, login: str, item: Callable[..., DriftItem]
    ) -> list[DriftItem]:
        assert self._database is not None
        database = self._database
        found: list[DriftItem] = []
        if not database.login_prohibited(user_id):
            found.append(item("prohibit_login", "off", idp="on (revoked)"))
        if database.is_site_admin(user_id):
            found.append(item("site admin", "yes", idp="no (revoked)", rewrite=True))
        # What `revoke` would remove now; orgs where the user is the last owner are
        # not counted (kept, and reported as residual access).
        scope = database.plan_revoke(user_id, login)
        if scope.tokens:
            found.append(item("access tokens", f"{scope.tokens} token(s)"))
        found.extend(item("organization membership", org) for org in scope.orgs)
        if scope.teams and not scope.orgs:
            found.append(item("team membership", f"{scope.teams} team(s)"))
        if scope.collaborations:
            found.append(item("collaborations", f"{scope.collaborations} repositories"))
        return found


class _OrgReader:
    """Organizations, teams and members read once per detection."""

    def __init__(self, client: GogsClient) -> None:
        self._client = client
        self._orgs: dict[str, bool] = {}
        self._teams: dict[str, list[GogsTeam]] = {}
        self._members: dict[int, list[GogsUser]] = {}

    def org_exists(self, org: str) -> bool:
        folded = org.lower()
        if folded not in self._orgs:
            self._orgs[folded] = self._client.get_org(org) is not None
        return self._orgs[folded]

    def teams(self, org: str) -> list[GogsTeam]:
        folded = org.lower()
        if folded not in self._teams:
            self._teams[folded] = self._client.list_org_teams(org)
        return self._teams[folded]

    def team(self, org: str, name: str) -> GogsTeam | None:
        return next((t for t in self.teams(org) if t.name.lower() == name.lower()), None)

    def members(self, team: GogsTeam) -> list[GogsUser]:
        if team.id not in self._members:
            self._members[team.id] = self._client.list_team_members(team.id)
        return self._members[team.id]
