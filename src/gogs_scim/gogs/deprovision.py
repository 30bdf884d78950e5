"""Closing every way into Gogs for a deactivated or deleted user, and saying what stays.

`Deprovisioner.revoke` runs on every converge of a user who must not have access
(level-triggered: each step is idempotent, a failed run is retried whole). The
password scramble and the loss of site-admin rights are part of the user's edit in
`UserConverger`; everything else is here:

* SSH keys: API (`GET /users/:u/keys`, `DELETE /user/keys/:id`).
* With the database means (`[gogs] database_url`): `prohibit_login`, access tokens,
  team and org memberships in every org, collaborations (database_means.py).
* Without it: teams and collaborations in the organizations the bridge manages
  (the orgs of `[[mappings]]`), through the API; what the API cannot do is returned
  as residual access, one sentence per way in that stays open.

See docs/deprovisioning.md for the table of ways in and means.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from gogs_scim.gogs.client import GogsClient, GogsRejected
from gogs_scim.gogs.database_means import GogsDatabase

RESIDUAL_TOKENS = (
    "access tokens: not deleted (the Gogs API cannot list or delete another user's "
    "tokens); they still work for the API and for git over HTTP"
)
RESIDUAL_PROHIBIT_LOGIN = (
    "prohibit_login: not set (the Gogs API cannot set it); web sessions opened "
    "before the deactivation stay signed in"
)
RESIDUAL_COLLABORATIONS = (
    "collaborations on repositories outside the managed organizations: not removed "
    "(the Gogs API cannot list them)"
)
_ORG_PREFIX = "organization membership in "


def residual_org(org: str) -> str:
    return (
        f"{_ORG_PREFIX}{org}: kept (the Gogs API cannot remove it); it grants no "
        "repository access by itself"
    )


def residual_last_owner(org: str) -> str:
    return (
        f"last owner of organization {org}: kept in its Owners team (Gogs needs an "
        "owner; add another owner, then deprovision again)"
    )


def residual_not_deleted(reason: str) -> str:
    return f"Gogs account kept, not deleted (provisioning.on_delete = delete): {reason}"


@dataclass(frozen=True)
class Revocation:
    """The calls made (action, target) and the ways in that stay open."""

    calls: tuple[tuple[str, str], ...]
    residual: tuple[str, ...]


class Deprovisioner:
    def __init__(
        self,
        client: GogsClient,
        *,
        database: GogsDatabase | None,
        managed_orgs: Iterable[str],
    ) -> None:
        self._client = client
        self._database = database
        self._orgs = tuple(dict.fromkeys(managed_orgs))

    @property
    def has_database(self) -> bool:
        return self._database is not None

    def revoke(self, login: str, gogs_user_id: int, previous: Iterable[str] = ()) -> Revocation:
        """Close every way in this means can close; raises GogsError to be retried."""
        calls: list[tuple[str, str]] = []
        residual: list[str] = []
        for key in self._client.list_user_keys(login):
            self._client.delete_key(key.id)
            calls.append(("delete_ssh_key", f"{login}:{key.title}"))
        if self._database is not None:
            done = self._database.revoke(gogs_user_id, login)
            if done.found:
                calls.append(("prohibit_login", login))
                if done.tokens:
                    calls.append(("delete_access_tokens", f"{login}:{done.tokens}"))
                calls.extend(("leave_org", f"{org}:{login}") for org in done.orgs)
                if done.teams:
                    calls.append(("leave_teams", f"{login}:{done.teams}"))
                if done.collaborations:
                    calls.append(("remove_collaborations", f"{login}:{done.collaborations}"))
                residual.extend(residual_last_owner(org) for org in done.kept_owner_of)
            return Revocation(tuple(calls), tuple(residual))

        orgs = {item for item in previous if item.startswith(_ORG_PREFIX)}
        for org in self._orgs:
            if self._client.get_org(org) is None:
                continue
            for team in self._client.list_org_teams(org):
                members = {m.login.lower() for m in self._client.list_team_members(team.id)}
                if login.lower() not in members:
                    continue
                orgs.add(residual_org(org))
                try:
                    self._client.remove_team_member(team.id, login)
                except GogsRejected:
                    residual.append(residual_last_owner(org))
                    continue
                calls.append(("remove_team_member", f"{org}/{team.name}:{login}"))
            for repo in self._client.list_org_repos(org):
                collaborators = self._client.list_collaborators(repo.owner or org, repo.name)
                if login.lower() in {c.login.lower() for c in collaborators}:
                    self._client.remove_collaborator(repo.owner or org, repo.name, login)
                    calls.append(("remove_collaborator", f"{org}/{repo.name}:{login}"))
        residual = [RESIDUAL_TOKENS, RESIDUAL_PROHIBIT_LOGIN, *sorted(orgs), *residual]
        residual.append(RESIDUAL_COLLABORATIONS)
        return Revocation(tuple(calls), tuple(residual))

    def restore(self, login: str, gogs_user_id: int) -> tuple[tuple[str, str], ...]:
        """Reactivation: allow login again (tokens and keys stay revoked)."""
        if self._database is not None and self._database.allow_login(gogs_user_id, login):
            return (("allow_login", login),)
        return ()
