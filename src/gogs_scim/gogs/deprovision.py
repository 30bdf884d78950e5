"""Closing every way into Gogs for a deactivated or deleted user, and saying what stays.

`Deprovisioner.revoke` runs on every converge of a user who must not have access
(level-triggered: each step is idempotent, a failed run is retried whole). The
password scramble and the loss of site-admin rights are part of the user's edit in
`UserConverger`; everything else is here:

* SSH keys: API (`GET /users/:u/keys`, `DELETE /user/keys/:id`).
* With the database means (`[gogs] database_url`): `prohibit_login`, access tokens,
  team and org memberships in every org, collaborations (database_means.py). It
  does every step the web session could, so when both are configured the database
  means does them all and the web session is not used.
* Else with the admin web session means (`[gogs] admin_password`): `prohibit_login`,
  every org (and so team) membership, collaborations on every repository the admin
  panel lists (web_session.py, collaborators through the API). Tokens stay.
* Else: teams and collaborations in the organizations the bridge manages (the orgs
  of `[[mappings]]`), through the API.

What no means closed is returned as residual access, one sentence per way in that
stays open. Deploy keys on the repositories the user owns or could administer are
listed for review, never deleted: they belong to the repository, not to the user,
and may serve CI.

See docs/deprovisioning.md for the table of ways in and means.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from gogs_scim.gogs.client import GogsClient, GogsNotFound, GogsRejected
from gogs_scim.gogs.database_means import GogsDatabase
from gogs_scim.gogs.web_session import GogsWebSession, WebSessionError

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
RESIDUAL_TOKENS_WEB = (
    "access tokens: not deleted (neither the Gogs API nor its admin web UI can delete "
    "another user's tokens); with prohibit_login set the API refuses them, but they "
    "still work for git over HTTP on the user's own repositories"
)
_ORG_PREFIX = "organization membership in "


def residual_private_repos_unreviewed(login: str) -> str:
    return (
        f"deploy keys on private repositories of {login}: not reviewed (the Gogs API "
        "lists only another user's public repositories)"
    )


def residual_deploy_key(repo: str, title: str) -> str:
    return (
        f'deploy key "{title}" on {repo}: review it (not deleted: a deploy key '
        "belongs to the repository, not to a user, and may serve CI; whoever holds its "
        f"private key can still clone {repo})"
    )


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
        web: GogsWebSession | None = None,
    ) -> None:
        self._client = client
        self._database = database
        self._web = web
        self._orgs = tuple(dict.fromkeys(managed_orgs))

    @property
    def has_database(self) -> bool:
        return self._database is not None

    def revoke(self, login: str, gogs_user_id: int, previous: Iterable[str] = ()) -> Revocation:
        """Close every way in this means can close; raises GogsError to be retried.

        `previous` is the residual access of the last run: the repositories whose
        deploy keys it listed are reviewed again (the user's rights there, which
        made them worth listing, are gone by now).
        """
        calls: list[tuple[str, str]] = []
        review = _reviewed_before(previous)
        for key in self._client.list_user_keys(login):
            self._client.delete_key(key.id)
            calls.append(("delete_ssh_key", f"{login}:{key.title}"))
        if self._database is not None:
            review.update(self._database.administered_repos(gogs_user_id))
            done = self._database.revoke(gogs_user_id, login)
            if not done.found:
                return Revocation(tuple(calls), ())
            calls.extend((action, target) for action, target, _ in done.changes(login))
            residual = [residual_last_owner(org) for org in done.kept_owner_of]
            review.update((login, name) for name in self._database.owned_repos(gogs_user_id))
            residual.extend(self._deploy_keys(review))
            return Revocation(tuple(calls), tuple(residual))
        if self._web is not None:
            return self._revoke_with_web(self._web, login, gogs_user_id, calls, review)
        return self._revoke_with_api(login, previous, calls, review)

    def _revoke_with_web(
        self,
        web: GogsWebSession,
        login: str,
        gogs_user_id: int,
        calls: list[tuple[str, str]],
        review: set[tuple[str, str]],
    ) -> Revocation:
        if not web.set_prohibit_login(gogs_user_id, login, True):
            return Revocation(tuple(calls), ())  # the account is gone (or was replaced)
        calls.append(("prohibit_login", login))
        residual: list[str] = [RESIDUAL_TOKENS_WEB]
        repos = web.all_repos()
        orgs = web.orgs_of(login)
        owner_of = {org.lower() for org in orgs if self._in_owners(org, login)}
        review.update((owner, name) for owner, name in repos if owner.lower() in owner_of)
        for org in orgs:
            web.remove_org_member(org, gogs_user_id)
        # Gogs redirects whether or not the removal worked: the profile tells.
        still = {org.lower() for org in web.orgs_of(login)}
        for org in orgs:
            if org.lower() not in still:
                calls.append(("leave_org", f"{org}:{login}"))
            elif org.lower() in owner_of and self._in_owners(org, login, alone=True):
                residual.append(residual_last_owner(org))
            else:
                raise WebSessionError(200, f"Gogs kept {login} in organization {org}")
        for owner, name in repos:
            if owner.lower() == login.lower():
                review.add((owner, name))
            else:
                self._leave_repo(owner, name, login, calls, review)
        residual.extend(self._deploy_keys(review))
        return Revocation(tuple(calls), tuple(residual))

    def _in_owners(self, org: str, login: str, *, alone: bool = False) -> bool:
        """Whether `login` is in the org's Owners team (`alone`: as its only member)."""
        for team in self._client.list_org_teams(org):
            if team.name.lower() == "owners":
                members = [m.login.lower() for m in self._client.list_team_members(team.id)]
                return members == [login.lower()] if alone else login.lower() in members
        return False

    def _leave_repo(
        self,
        owner: str,
        name: str,
        login: str,
        calls: list[tuple[str, str]],
        review: set[tuple[str, str]],
    ) -> None:
        """Remove `login` as a collaborator; an admin one leaves deploy keys to review."""
        mode = self._client.collaborator_modes(owner, name).get(login.lower())
        if mode is None:
            return
        if mode == "admin":
            review.add((owner, name))
        self._client.remove_collaborator(owner, name, login)
        calls.append(("remove_collaborator", f"{owner}/{name}:{login}"))

    def _revoke_with_api(
        self,
        login: str,
        previous: Iterable[str],
        calls: list[tuple[str, str]],
        review: set[tuple[str, str]],
    ) -> Revocation:
        residual: list[str] = []
        orgs = {item for item in previous if item.startswith(_ORG_PREFIX)}
        for org in self._orgs:
            if self._client.get_org(org) is None:
                continue
            repos = self._client.list_org_repos(org)
            for team in self._client.list_org_teams(org):
                members = {m.login.lower() for m in self._client.list_team_members(team.id)}
                if login.lower() not in members:
                    continue
                orgs.add(residual_org(org))
                if team.name.lower() == "owners":
                    review.update((repo.owner or org, repo.name) for repo in repos)
                try:
                    self._client.remove_team_member(team.id, login)
                except GogsRejected:
                    residual.append(residual_last_owner(org))
                    continue
                calls.append(("remove_team_member", f"{org}/{team.name}:{login}"))
            for repo in repos:
                self._leave_repo(repo.owner or org, repo.name, login, calls, review)
        residual = [RESIDUAL_TOKENS, RESIDUAL_PROHIBIT_LOGIN, *sorted(orgs), *residual]
        residual.append(RESIDUAL_COLLABORATIONS)
        review.update((login, repo.name) for repo in self._client.list_user_repos(login))
        residual.extend(self._deploy_keys(review))
        residual.append(residual_private_repos_unreviewed(login))
        return Revocation(tuple(calls), tuple(residual))

    def _deploy_keys(self, repos: Iterable[tuple[str, str]]) -> list[str]:
        """The deploy keys of `repos`, for review (never deleted)."""
        found: list[str] = []
        for owner, name in sorted(set(repos), key=lambda repo: (repo[0].lower(), repo[1].lower())):
            try:
                keys = self._client.list_deploy_keys(owner, name)
            except GogsNotFound:
                continue  # the repository is gone, and its keys with it
            found.extend(residual_deploy_key(f"{owner}/{name}", key.title) for key in keys)
        return found

    def restore(self, login: str, gogs_user_id: int) -> tuple[tuple[str, str], ...]:
        """Reactivation: allow login again (tokens and keys stay revoked)."""
        if self._database is not None:
            allowed = self._database.allow_login(gogs_user_id, login)
        elif self._web is not None:
            allowed = self._web.set_prohibit_login(gogs_user_id, login, False)
        else:
            allowed = False
        return (("allow_login", login),) if allowed else ()


def _reviewed_before(previous: Iterable[str]) -> set[tuple[str, str]]:
    """(owner, name) of the repositories named in earlier deploy-key review lines."""
    repos = set()
    for line in previous:
        if line.startswith('deploy key "'):
            where = line.rpartition('" on ')[2].partition(": review it")[0]
            owner, _, name = where.partition("/")
            if owner and name:
                repos.add((owner, name))
    return repos
