"""A signed-in Gogs admin web session: what only the web UI can do (gogs-facts.md §4).

Configured explicitly with `[gogs] admin_password` (or `admin_password_file`); the
account is `[gogs] admin_user`. Deprovisioning uses it to set `prohibit_login`,
to take a user out of every organization and to find every repository (so every
collaboration) -- none of which the API can do. Access tokens stay: no web page lets
an admin delete another user's tokens.

Mechanics (checked against Gogs 0.14.3 by tests/integration/test_web_session.py):

* `POST /user/login` needs no CSRF token; success is a 302 (to the two-factor page
  when the admin has 2FA, which this means cannot pass). The account must then reach
  `/admin`: without site-admin rights every admin page would look like a missing
  account, and a revocation would seem done when it is not.
* every other POST needs the `_csrf` token of the session, read from the
  `<meta name="_csrf">` tag of any page.
* a session can expire (memory sessions die with a Gogs restart): Gogs then redirects
  to the login page or refuses the CSRF token; one fresh sign-in, then one retry.
* the admin user edit form is a FULL REPLACE: every field is sent back as the edit
  page shows it, with only `prohibit_login` changed, and the page is read again to
  check that nothing else moved.

Pages are parsed with the standard library's `html.parser`: the few elements read
(one form, a table, a list of avatars) do not justify a scraping dependency.
"""

from __future__ import annotations

import html
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from types import TracebackType
from urllib.parse import quote, urlsplit

import httpx

from gogs_scim.gogs.client import (
    GogsAuthFailed,
    GogsError,
    GogsNotFound,
    GogsRejected,
    GogsUnreachable,
    OnCall,
)

PasswordProvider = Callable[[], str]
"""Returns the admin's web password (e.g. re-read from a file that may be rotated)."""

# The token is in a meta tag of every page Gogs renders for a signed-in user; a regex
# is enough for one attribute of one tag (Gogs writes it exactly this way).
_CSRF_META = re.compile(r'<meta\s+name="_csrf"\s+content="([^"]+)"')
_LOGIN_PATH = "/user/login"
_TWO_FACTOR_PATH = "/user/login/two_factor"
_MAX_PAGES = 10_000  # /admin/repos pages (50 repositories each): a loop guard


class WebSessionError(GogsError):
    """A web page was not what this module expects (Gogs changed, or a proxy answered)."""


@dataclass(frozen=True)
class UserForm:
    """The admin edit form of one account, as the edit page shows it."""

    login: str
    fields: tuple[tuple[str, str], ...]

    def value(self, name: str) -> str | None:
        return dict(self.fields).get(name)

    @property
    def prohibit_login(self) -> bool:
        return self.value("prohibit_login") is not None

    def with_prohibit_login(self, on: bool) -> dict[str, str]:
        """The form to send back: every field as shown, `prohibit_login` as asked.

        Two boxes cannot be read back exactly, and are then sent OFF, the side that
        never grants a right by accident: for a site admin Gogs shows `allow_git_hook`
        and `allow_import_local` ticked whatever is stored (admin rights imply them),
        and it hides `allow_import_local` when local path migration is disabled (the
        flag does nothing then). Deprovisioning clears both through the API first.
        """
        unreadable = {"allow_git_hook", "allow_import_local"} if self.value("admin") else set()
        data = {
            name: value
            for name, value in self.fields
            if name != "prohibit_login" and name not in unreadable
        }
        if on:
            data["prohibit_login"] = "on"
        return data


class _EditPage(HTMLParser):
    """The fields of `<form action=".../admin/users/ID">` and the username it shows."""

    def __init__(self, action: str) -> None:
        super().__init__(convert_charrefs=True)
        self._action = action
        self._in_form = False
        self._in_name_field = False
        self._in_name_span = False
        self.found_form = False
        self.login = ""
        self.fields: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("action", "").endswith(self._action):
            self._in_form = self.found_form = True
        elif not self._in_form:
            return
        elif tag == "label" and a.get("for") == "user_name":
            self._in_name_field = True
        elif tag == "span" and self._in_name_field:
            self._in_name_span = True
        elif tag == "input" and a.get("name") and a["name"] != "_csrf":
            kind = a.get("type", "text")
            if kind == "checkbox":
                if "checked" in a:
                    self.fields.append((a["name"], "on"))
            elif kind != "password":  # the password is sent empty: unchanged
                self.fields.append((a["name"], a.get("value", "")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False
        elif tag == "span" and self._in_name_span:
            self._in_name_span = self._in_name_field = False

    def handle_data(self, data: str) -> None:
        if self._in_name_span:
            self.login += data.strip()


class _ProfileOrgs(HTMLParser):
    """The organizations on a user's profile (a site admin sees private memberships)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.orgs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        classes = set(a.get("class", "").split())
        # Each org is an avatar `<img class="ui mini image poping up" data-content=NAME>`.
        if tag == "img" and {"mini", "image"} <= classes and a.get("data-content"):
            self.orgs.append(a["data-content"])


class _AdminRepos(HTMLParser):
    """`/admin/repos`: one table row per repository, links `/owner` then `/owner/name`."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._in_body = False
        self._row: list[str] | None = None
        self.rows: list[list[str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self._row = []
        elif tag == "a" and self._row is not None:
            href = dict(attrs).get("href")
            if href:
                self._row.append(href)

    def handle_endtag(self, tag: str) -> None:
        if tag == "tbody":
            self._in_body = False
        elif tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None


class GogsWebSession:
    """One admin web session (cookie jar), signed in on first use and when it expired."""

    def __init__(
        self,
        base_url: str,
        admin_user: str,
        password: str | PasswordProvider,
        *,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        on_call: OnCall | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        # Gogs may live under a sub-path; its links then carry it.
        self._subpath = urlsplit(self._base_url).path.rstrip("/")
        self._admin_user = admin_user
        self._password: PasswordProvider = (
            (lambda: password) if isinstance(password, str) else password
        )
        self._on_call = on_call
        self._csrf: str | None = None
        self._signed_in = False
        # One cookie jar for every thread (SCIM requests converge inline while the
        # worker runs): a sign-in must not clear the cookies under another's request.
        self._lock = threading.RLock()
        self._http = httpx.Client(
            base_url=self._base_url, timeout=timeout, transport=transport, follow_redirects=False
        )

    def __repr__(self) -> str:
        return f"GogsWebSession({self._base_url!r}, {self._admin_user!r})"  # never the password

    def __enter__(self) -> GogsWebSession:
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

    # -- signing in, and the one place requests are sent -------------------------------

    def sign_in(self) -> None:
        """`POST /user/login`; raises GogsAuthFailed naming the setting on refusal."""
        with self._lock:
            self._sign_in_locked()

    def _sign_in_locked(self) -> None:
        self._http.cookies.clear()
        self._csrf = None
        try:
            password = self._password()
        except Exception as exc:
            # E.g. the password file is unreadable: the message names the file only.
            raise GogsAuthFailed(0, str(exc)) from exc
        form = {"user_name": self._admin_user, "password": password, "login_source": "0"}
        response = self._send("POST", _LOGIN_PATH, data=form)
        where = self._redirect_path(response)
        if response.status_code in (302, 303) and where.startswith(_TWO_FACTOR_PATH):
            raise GogsAuthFailed(
                response.status_code,
                f"Gogs web sign-in of {self._admin_user!r}: the account has two-factor "
                "authentication, which the web session means cannot pass (use an admin "
                "account without 2FA for gogs.admin_user, or unset gogs.admin_password)",
            )
        if response.status_code not in (302, 303) or where.startswith(_LOGIN_PATH):
            raise GogsAuthFailed(
                response.status_code,
                f"Gogs web sign-in of {self._admin_user!r} refused: check gogs.admin_user "
                "and gogs.admin_password",
            )
        # Signed in is not enough: without site-admin rights every admin page would
        # look like a missing account, and a revocation would seem done when it is not.
        admin = self._send("GET", "/admin")
        if admin.status_code != 200 or not _CSRF_META.search(admin.text):
            raise GogsAuthFailed(
                admin.status_code,
                f"Gogs web session of {self._admin_user!r} has no site-admin rights "
                "(gogs.admin_user must be a site admin)",
            )
        self._remember_csrf(admin.text)
        self._signed_in = True

    def _remember_csrf(self, page: str) -> None:
        token = _CSRF_META.search(page)
        if token:
            self._csrf = html.unescape(token.group(1))

    def _send(
        self,
        method: str,
        path: str,
        *,
        data: Mapping[str, str] | None = None,
        params: Mapping[str, str | int] | None = None,
    ) -> httpx.Response:
        status = 0
        try:
            try:
                response = self._http.request(method, path, data=data, params=params)
            except httpx.TransportError as exc:
                # str(exc) names the host/port or the timeout, never the form body.
                raise GogsUnreachable(0, f"web {method} {path}: {exc}") from exc
            status = response.status_code
            if status >= 500 and "does not exist" in response.text:
                # Admin pages render a missing user or org as a 500 page that (to a
                # site admin, also in production) reads "... does not exist".
                raise GogsNotFound(status, f"web {method} {path}: does not exist")
            if status >= 500:
                raise GogsUnreachable(status, f"web {method} {path}: Gogs answered {status}")
            return response
        finally:
            if self._on_call is not None:
                self._on_call(method, f"web:{path}", status)

    def _redirect_path(self, response: httpx.Response) -> str:
        location: str = response.headers.get("location", "")
        path = urlsplit(location).path
        return path.removeprefix(self._subpath) if self._subpath else path

    def _expired(self, response: httpx.Response) -> bool:
        """The session is gone: Gogs sends the login page's way, or refuses the token."""
        if response.status_code in (302, 303) and self._redirect_path(response).startswith(
            _LOGIN_PATH
        ):
            return True
        return response.status_code == 400 and "csrf" in response.text.lower()

    def _page(self, path: str, params: Mapping[str, str | int] | None = None) -> str:
        """GET a page as the admin; signs in (again) when needed."""
        with self._lock:
            return self._page_locked(path, params)

    def _page_locked(self, path: str, params: Mapping[str, str | int] | None) -> str:
        for attempt in (1, 2):
            if not self._signed_in:
                self.sign_in()
            response = self._send("GET", path, params=params)
            if self._expired(response) and attempt == 1:
                self._signed_in = False
                continue
            if response.status_code != 200:
                raise WebSessionError(response.status_code, f"web GET {path}: unexpected answer")
            self._remember_csrf(response.text)
            return response.text
        raise GogsAuthFailed(0, f"web GET {path}: the session expired again right after sign-in")

    def _post(
        self,
        path: str,
        data: Mapping[str, str],
        params: Mapping[str, str | int] | None = None,
    ) -> httpx.Response:
        """POST a form with the session's CSRF token; signs in again once if expired."""
        with self._lock:
            return self._post_locked(path, data, params)

    def _post_locked(
        self, path: str, data: Mapping[str, str], params: Mapping[str, str | int] | None
    ) -> httpx.Response:
        for attempt in (1, 2):
            if self._csrf is None or not self._signed_in:
                self._page("/admin")  # any page carries the token
            if self._csrf is None:
                raise WebSessionError(200, "Gogs pages carry no _csrf token")
            response = self._send("POST", path, data={**data, "_csrf": self._csrf}, params=params)
            if self._expired(response) and attempt == 1:
                self._signed_in = False
                self._csrf = None
                continue
            return response
        raise GogsAuthFailed(0, f"web POST {path}: the session expired again right after sign-in")

    # -- the admin user edit form ------------------------------------------------------

    def user_form(self, user_id: int) -> UserForm:
        """Read `/admin/users/:id`: every field as stored (see the module docstring)."""
        action = f"/admin/users/{user_id}"
        page = _EditPage(action)
        page.feed(self._page(action))
        if not page.found_form or not page.login:
            raise WebSessionError(200, f"web GET {action}: no user edit form on the page")
        fields = []
        for name, value in page.fields:
            # Gogs sanitises full names when it loads a user (`&` becomes `&amp;`, the
            # way the API shows them too) and the page escapes that again; sending the
            # page's text back would store the escaped form, so undo the sanitiser's.
            fields.append((name, html.unescape(value) if name == "full_name" else value))
        fields.append(("password", ""))  # empty: unchanged
        return UserForm(page.login, tuple(fields))

    def set_prohibit_login(self, user_id: int, login: str, on: bool) -> bool:
        """Set or clear `prohibit_login` and nothing else (but see
        UserForm.with_prohibit_login); False when the account with this id is not
        `login` any more (never act on a replaced account)."""
        try:
            before = self.user_form(user_id)
        except GogsNotFound:
            return False
        if before.login.lower() != login.lower():
            return False
        if before.prohibit_login == on:
            return True
        action = f"/admin/users/{user_id}"
        response = self._post(action, before.with_prohibit_login(on))
        if response.status_code not in (302, 303) or self._redirect_path(response) != action:
            raise GogsRejected(
                response.status_code or 422,
                f"web POST {action} (prohibit_login for {login}) refused: "
                f"{_flash_error(response.text) or 'no reason shown'}",
            )
        after = self.user_form(user_id)
        if after.prohibit_login != on:
            raise WebSessionError(200, f"web POST {action}: prohibit_login of {login} unchanged")
        moved = sorted(
            {name for name, _ in set(before.fields) ^ set(after.fields)} - {"prohibit_login"}
        )
        if moved:
            # Never the values: they may be personal data; the names say what to check.
            raise WebSessionError(
                200, f"web POST {action}: editing {login} also changed {', '.join(moved)}"
            )
        return True

    # -- organizations -------------------------------------------------------------

    def orgs_of(self, login: str) -> list[str]:
        """Every organization `login` belongs to (the profile, as a site admin sees it)."""
        parser = _ProfileOrgs()
        parser.feed(self._page(f"/{quote(login, safe='')}"))
        return parser.orgs

    def remove_org_member(self, org: str, user_id: int) -> None:
        """`POST /org/:org/members/action/remove?uid=`: leaves the org and all its teams.

        Gogs answers a redirect whether or not it worked (the last owner is refused
        with a flash message): the caller re-reads the membership to know.
        """
        path = f"/org/{quote(org, safe='')}/members/action/remove"
        response = self._post(path, {}, params={"uid": user_id})
        if response.status_code not in (200, 302, 303):
            raise WebSessionError(response.status_code, f"web POST {path}: unexpected answer")

    # -- repositories --------------------------------------------------------------

    def all_repos(self) -> list[tuple[str, str]]:
        """(owner, name) of every repository, from the admin panel's pages."""
        seen: dict[tuple[str, str], None] = {}
        for page in range(1, _MAX_PAGES + 1):
            parser = _AdminRepos()
            parser.feed(self._page("/admin/repos", params={"page": page}))
            fresh = 0
            for links in parser.rows:
                parts = [self._strip(href) for href in links]
                repo = next((p for p in parts if p.count("/") == 2), None)
                if repo is None:
                    continue
                owner, name = repo.strip("/").split("/")
                if (owner, name) not in seen:
                    seen[(owner, name)] = None
                    fresh += 1
            if not fresh:
                break
        return list(seen)

    def _strip(self, href: str) -> str:
        path = urlsplit(href).path
        return path.removeprefix(self._subpath) if self._subpath else path


def _flash_error(page: str) -> str:
    """The text of Gogs's red flash/alert box, if the page has one."""
    match = re.search(r'<div class="ui negative message">\s*<p>(.*?)</p>', page, re.S)
    return html.unescape(match.group(1)).strip() if match else ""
