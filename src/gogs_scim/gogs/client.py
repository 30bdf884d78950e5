"""A small synchronous client for the Gogs v0.14.3 API v1.

Every request goes through `GogsClient._request`, the single place where Gogs's replies
are mapped to the GogsError family, calls are counted and the token is kept out of
anything printable. Endpoint behaviour is documented in shared/gogs-facts.md section 1.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

# Gogs answers a bare 500 for some deterministic refusals (the reserved team name "new",
# removing the last member of Owners); those two are reported as GogsRejected (see
# create_team, remove_team_member). Every other 5xx is treated as an outage to retry.
_RESERVED_TEAM_NAMES = frozenset({"new"})
_MAX_MESSAGE_CHARS = 300

OnCall = Callable[[str, str, int], None]
"""Hook called after every request with (method, path, status); status 0 = no reply."""


class GogsError(Exception):
    """Gogs refused or failed a call. `status` is the HTTP status (0 if none arrived)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"Gogs {status}: {message}" if status else f"Gogs: {message}")
        self.status = status
        self.message = message


class GogsUnreachable(GogsError):
    """No usable reply: connection error, timeout, 5xx, or an HTML page for an API call.

    Worth retrying later; the desired state is safe in the store.
    """


class GogsNotFound(GogsError):
    """404: the user, org, team or repo does not exist (Gogs sends an empty body)."""


class GogsRejected(GogsError):
    """422 (or a known deterministic refusal): Gogs will not do this, retrying won't help."""


class GogsAuthFailed(GogsError):
    """401/403: the token is wrong, revoked, or lacks site-admin rights."""


@dataclass(frozen=True)
class GogsUser:
    id: int
    login: str
    full_name: str
    email: str


@dataclass(frozen=True)
class GogsKey:
    id: int
    title: str
    key: str


@dataclass(frozen=True)
class GogsTeam:
    id: int
    name: str
    permission: str


@dataclass(frozen=True)
class GogsOrg:
    id: int
    login: str
    full_name: str


@dataclass(frozen=True)
class GogsRepo:
    id: int
    owner: str
    name: str
    private: bool


def is_reserved_team_name(name: str) -> bool:
    """A team name Gogs refuses (with a bare 500, so it is checked before sending)."""
    return name.strip().lower() in _RESERVED_TEAM_NAMES


def _seg(value: str | int) -> str:
    """One URL path segment; names are AlphaDashDot in Gogs, but never trust input."""
    return quote(str(value), safe="")


def _user(data: Mapping[str, Any]) -> GogsUser:
    # /users/search returns login "" and only `username`; other endpoints fill both.
    return GogsUser(
        id=int(data["id"]),
        login=str(data.get("login") or data.get("username") or ""),
        full_name=str(data.get("full_name") or ""),
        email=str(data.get("email") or ""),
    )


def _key(data: Mapping[str, Any]) -> GogsKey:
    return GogsKey(id=int(data["id"]), title=str(data["title"]), key=str(data["key"]))


def _team(data: Mapping[str, Any]) -> GogsTeam:
    return GogsTeam(id=int(data["id"]), name=str(data["name"]), permission=str(data["permission"]))


def _org(data: Mapping[str, Any]) -> GogsOrg:
    return GogsOrg(
        id=int(data["id"]),
        login=str(data.get("username") or data.get("login") or ""),
        full_name=str(data.get("full_name") or ""),
    )


def _repo(data: Mapping[str, Any]) -> GogsRepo:
    owner = data.get("owner") or {}
    return GogsRepo(
        id=int(data["id"]),
        owner=str(owner.get("login") or owner.get("username") or ""),
        name=str(data["name"]),
        private=bool(data["private"]),
    )


def _summarise(body: Any) -> str:
    """Gogs's error text: `{"message": ...}` or binding's `[{fieldNames, classification}]`."""
    if isinstance(body, Mapping) and body.get("message"):
        return str(body["message"])
    if isinstance(body, list) and body:
        parts = []
        for item in body:
            if not isinstance(item, Mapping):
                continue
            fields = ",".join(str(f) for f in item.get("fieldNames") or []) or "?"
            detail = item.get("message") or item.get("classification") or "invalid"
            parts.append(f"{fields}: {detail}")
        if parts:
            return "; ".join(parts)
    return ""


TokenProvider = Callable[[], str | None]
"""Returns the admin token to use now (e.g. re-read from a file that may be rotated)."""


class GogsClient:
    """Gogs API v1 over a token (`Authorization: token <tok>`), as a site admin.

    `base_url` is the Gogs web root, with or without a trailing slash; `/api/v1` is
    appended here. `token` is the token, or a callable asked before every request, so
    a rotated token is used without a restart. `calls` counts the requests sent;
    `on_call` is told about each one.
    """

    def __init__(
        self,
        base_url: str,
        token: str | TokenProvider,
        *,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        on_call: OnCall | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._token_source: TokenProvider = (lambda: token) if isinstance(token, str) else token
        self._token: str | None = token if isinstance(token, str) else None
        self._previous_token: str | None = None
        self._on_call = on_call
        self._calls = 0
        self._http = httpx.Client(
            base_url=f"{self._base_url}/api/v1",
            timeout=timeout,
            transport=transport,
            # Redirects from an API call mean something is wrong (a login page); report it.
            follow_redirects=False,
            headers={"Accept": "application/json"},
        )

    def __repr__(self) -> str:
        return f"GogsClient({self._base_url!r})"  # never the token

    def __enter__(self) -> GogsClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    @property
    def base_url(self) -> str:
        return self._base_url

    @property
    def calls(self) -> int:
        """How many HTTP requests this client has sent (including failed ones)."""
        return self._calls

    # -- the one place replies become results or errors ---------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str | int] | None = None,
        basic_auth: tuple[str, str] | None = None,
    ) -> Any:
        """Send one request; return the decoded JSON (None for an empty body) or raise."""
        headers: dict[str, str] = {}
        auth: httpx.BasicAuth | None = None
        if basic_auth is not None:
            auth = httpx.BasicAuth(*basic_auth)
        else:
            token = self._fresh_token(method, path)
            if token != self._token:
                self._previous_token, self._token = self._token, token
            if token:
                headers["Authorization"] = f"token {token}"
        self._calls += 1
        status = 0
        try:
            try:
                response = self._http.request(
                    method, path, json=json, params=params, headers=headers, auth=auth
                )
            except httpx.TransportError as exc:
                # str(exc) names the host/port or the timeout, never request headers.
                raise GogsUnreachable(0, self._scrub(f"{method} {path}: {exc}")) from exc
            status = response.status_code
            return self._decode(method, path, response)
        finally:
            if self._on_call is not None:
                self._on_call(method, path, status)

    def _decode(self, method: str, path: str, response: httpx.Response) -> Any:
        status = response.status_code
        content_type = response.headers.get("content-type", "")
        # A prohibit_login account gets Gogs's HTML "prohibit login" page with 200 for
        # every API call, without the handler running: that is never a success.
        if "text/html" in content_type:
            raise GogsUnreachable(
                status,
                f"{method} {path}: Gogs answered with an HTML page instead of JSON "
                "(is the token's account prohibited from logging in, or is the URL not "
                "a Gogs root?)",
            )
        body: Any = None
        if response.content:
            try:
                body = response.json()
            except ValueError:
                body = None
        if 200 <= status < 300:
            return body
        text = self._scrub(_summarise(body) or response.text[:_MAX_MESSAGE_CHARS].strip())
        message = f"{method} {path}: {text}" if text else f"{method} {path}"
        if status in (401, 403):
            raise GogsAuthFailed(status, message)
        if status == 404:
            raise GogsNotFound(status, message)
        if status == 422:
            raise GogsRejected(status, message)
        if status >= 500:
            raise GogsUnreachable(status, message)
        raise GogsError(status, message)

    def _fresh_token(self, method: str, path: str) -> str | None:
        try:
            return self._token_source()
        except Exception as exc:
            # E.g. the token file is unreadable: the message names the file, never a token.
            raise GogsAuthFailed(0, f"{method} {path}: no admin token: {exc}") from exc

    def _scrub(self, text: str) -> str:
        # Belt and braces: no reply should echo the token, but never print it if one does.
        # The token in use may have just changed (rotation): scrub the one before too.
        for token in (self._token, self._previous_token):
            if token:
                text = text.replace(token, "***")
        return text

    # -- users --------------------------------------------------------------------

    def whoami(self) -> GogsUser:
        """`GET /user`: the token's own account."""
        return _user(self._request("GET", "/user"))

    def get_user(self, login: str) -> GogsUser | None:
        """`GET /users/:username`; None if no such user (or org: they look the same)."""
        try:
            return _user(self._request("GET", f"/users/{_seg(login)}"))
        except GogsNotFound:
            return None

    def search_users(self, q: str, limit: int = 10) -> list[GogsUser]:
        """`GET /users/search?q=&limit=`: substring of login or full name, never email."""
        body = self._request("GET", "/users/search", params={"q": q, "limit": limit})
        return [_user(item) for item in (body or {}).get("data") or []]

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
        """`POST /admin/users`. Always pass a long random password: an empty one lets
        anyone authenticate with Basic auth and an empty password."""
        body = {
            "username": login,
            "email": email,
            "full_name": full_name,
            "password": password,
            "login_name": login_name,
            "source_id": source_id,
            "send_notify": False,
        }
        return _user(self._request("POST", "/admin/users", json=body))

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
        """`PATCH /admin/users/:username`.

        Gogs writes every string field whether sent or not (omitted = blanked), so all
        of them are always sent; the optional flags change only when given.
        """
        body: dict[str, Any] = {
            "email": email,
            "full_name": full_name,
            "website": website,
            "location": location,
            "login_name": login_name,
            "source_id": source_id,
            "password": password or "",  # "" means "unchanged" to Gogs
        }
        flags = {
            "active": active,
            "admin": admin,
            "allow_git_hook": allow_git_hook,
            "allow_import_local": allow_import_local,
            "max_repo_creation": max_repo_creation,
        }
        body.update({name: value for name, value in flags.items() if value is not None})
        return _user(self._request("PATCH", f"/admin/users/{_seg(login)}", json=body))

    def delete_user(self, login: str) -> None:
        """`DELETE /admin/users/:username`. 422 (GogsRejected) while the user still owns
        repos or has any org membership row."""
        self._request("DELETE", f"/admin/users/{_seg(login)}")

    def create_token_with_password(self, login: str, password: str, name: str) -> str:
        """`POST /users/:username/tokens` with Basic auth; returns the new token.

        Gogs accepts only Basic auth here and acts on the authenticated user.
        """
        body = self._request(
            "POST",
            f"/users/{_seg(login)}/tokens",
            json={"name": name},
            basic_auth=(login, password),
        )
        return str(body["sha1"])

    # -- SSH keys -----------------------------------------------------------------

    def list_user_keys(self, login: str) -> list[GogsKey]:
        """`GET /users/:username/keys`."""
        return [_key(item) for item in self._request("GET", f"/users/{_seg(login)}/keys")]

    def add_user_key(self, login: str, title: str, key: str) -> GogsKey:
        """`POST /admin/users/:username/keys` (admin endpoint)."""
        body = {"title": title, "key": key}
        return _key(self._request("POST", f"/admin/users/{_seg(login)}/keys", json=body))

    def delete_key(self, key_id: int) -> None:
        """`DELETE /user/keys/:id`: a site-admin token may delete anyone's key; 204 even
        when the key does not exist."""
        self._request("DELETE", f"/user/keys/{_seg(key_id)}")

    # -- organizations and teams --------------------------------------------------

    def get_org(self, name: str) -> GogsOrg | None:
        """`GET /orgs/:orgname`; None if unknown. Gogs does not check it is an org."""
        try:
            return _org(self._request("GET", f"/orgs/{_seg(name)}"))
        except GogsNotFound:
            return None

    def create_org(self, owner_login: str, name: str, full_name: str = "") -> GogsOrg:
        """`POST /admin/users/:username/orgs`; `owner_login` becomes the sole Owner."""
        body = {"username": name, "full_name": full_name}
        return _org(self._request("POST", f"/admin/users/{_seg(owner_login)}/orgs", json=body))

    def list_org_teams(self, org: str) -> list[GogsTeam]:
        """`GET /orgs/:orgname/teams`: the only way to learn team ids."""
        return [_team(item) for item in self._request("GET", f"/orgs/{_seg(org)}/teams")]

    def create_team(self, org: str, name: str, permission: str, description: str = "") -> GogsTeam:
        """`POST /admin/orgs/:orgname/teams`. Gogs reads any permission other than
        "write" or "admin" as "read"."""
        if is_reserved_team_name(name):
            # Gogs answers this with an unmapped 500; say what it really is, unsent.
            raise GogsRejected(422, f"team name {name!r} is reserved by Gogs")
        body = {"name": name, "permission": permission, "description": description}
        return _team(self._request("POST", f"/admin/orgs/{_seg(org)}/teams", json=body))

    def list_team_members(self, team_id: int) -> list[GogsUser]:
        """`GET /admin/teams/:teamid/members`."""
        return [_user(u) for u in self._request("GET", f"/admin/teams/{_seg(team_id)}/members")]

    def add_team_member(self, team_id: int, login: str) -> None:
        """`PUT /admin/teams/:teamid/members/:username`; idempotent, also adds the user
        to the org."""
        self._request("PUT", f"/admin/teams/{_seg(team_id)}/members/{_seg(login)}")

    def remove_team_member(self, team_id: int, login: str) -> None:
        """`DELETE /admin/teams/:teamid/members/:username`; idempotent. The org
        membership row stays (the API cannot remove it).

        Removing the last member of an org's Owners team is refused with a bare 500;
        that is reported as GogsRejected, since retrying can never succeed.
        """
        try:
            self._request("DELETE", f"/admin/teams/{_seg(team_id)}/members/{_seg(login)}")
        except GogsUnreachable as exc:
            if exc.status != 500:
                raise
            # Removing the sole member of any other team succeeds, so a 500 while the
            # user is the team's only member is Gogs's unmapped ErrLastOrgOwner.
            members = self.list_team_members(team_id)
            if [m.login.lower() for m in members] == [login.lower()]:
                raise GogsRejected(
                    422, f"{login} is the last member of the Owners team of this org"
                ) from exc
            raise

    def add_team_repo(self, team_id: int, repo_name: str) -> None:
        """`PUT /admin/teams/:teamid/repos/:reponame`; the repo must be in the team's org."""
        self._request("PUT", f"/admin/teams/{_seg(team_id)}/repos/{_seg(repo_name)}")

    # -- repositories -------------------------------------------------------------

    def create_repo(
        self, owner_login: str, name: str, *, private: bool, auto_init: bool = True
    ) -> GogsRepo:
        """`POST /admin/users/:username/repos` (admin endpoint; works for orgs too)."""
        body: dict[str, Any] = {"name": name, "private": private, "auto_init": auto_init}
        if auto_init:
            body["readme"] = "Default"  # without it Gogs fails auto_init with a 500
        return _repo(self._request("POST", f"/admin/users/{_seg(owner_login)}/repos", json=body))

    def list_org_repos(self, org: str) -> list[GogsRepo]:
        """`GET /orgs/:orgname/repos`: all of them for an owner of the org (the bridge's
        admin owns the orgs it creates); otherwise public ones and its teams' repos."""
        return [_repo(item) for item in self._request("GET", f"/orgs/{_seg(org)}/repos")]

    def list_user_repos(self, login: str) -> list[GogsRepo]:
        """`GET /users/:username/repos`: for another user, even as a site admin, only
        their PUBLIC repositories (Gogs lists private ones to their owner alone)."""
        return [_repo(item) for item in self._request("GET", f"/users/{_seg(login)}/repos")]

    def list_deploy_keys(self, owner: str, repo: str) -> list[GogsKey]:
        """`GET /repos/:owner/:repo/keys`: the repository's deploy keys (read-only keys
        that belong to the repository, not to a user)."""
        path = f"/repos/{_seg(owner)}/{_seg(repo)}/keys"
        return [_key(item) for item in self._request("GET", path)]

    def add_deploy_key(self, owner: str, repo: str, title: str, key: str) -> GogsKey:
        """`POST /repos/:owner/:repo/keys`."""
        path = f"/repos/{_seg(owner)}/{_seg(repo)}/keys"
        return _key(self._request("POST", path, json={"title": title, "key": key}))

    def add_collaborator(self, owner: str, repo: str, login: str, permission: str) -> None:
        """`PUT /repos/:owner/:repo/collaborators/:user` with `{"permission": ...}`."""
        path = f"/repos/{_seg(owner)}/{_seg(repo)}/collaborators/{_seg(login)}"
        self._request("PUT", path, json={"permission": permission})

    def remove_collaborator(self, owner: str, repo: str, login: str) -> None:
        """`DELETE /repos/:owner/:repo/collaborators/:user`."""
        self._request("DELETE", f"/repos/{_seg(owner)}/{_seg(repo)}/collaborators/{_seg(login)}")

    def list_collaborators(self, owner: str, repo: str) -> list[GogsUser]:
        """`GET /repos/:owner/:repo/collaborators`."""
        path = f"/repos/{_seg(owner)}/{_seg(repo)}/collaborators"
        return [_user(item) for item in self._request("GET", path)]

    def collaborator_modes(self, owner: str, repo: str) -> dict[str, str]:
        """`GET /repos/:owner/:repo/collaborators` as lowercase login -> "admin",
        "write" or "read" (from each collaborator's `permissions`)."""
        path = f"/repos/{_seg(owner)}/{_seg(repo)}/collaborators"
        modes: dict[str, str] = {}
        for item in self._request("GET", path):
            granted = item.get("permissions") or {}
            mode = "admin" if granted.get("admin") else "write" if granted.get("push") else "read"
            modes[_user(item).login.lower()] = mode
        return modes
