"""Deriving a Gogs login from a SCIM userName.

Gogs accepts only ASCII letters, digits, `-`, `_` and `.`, at most 35 characters,
unique case-insensitively across users and organizations, minus a reserved list
(gogs-facts §2). IdPs send `alice@contoso.com` or `Zoë Ng`. The rule, documented in
docs/provisioning.md:

1. `login_from = "local-part"` takes what stands before the last `@`
   (`"username"` keeps the whole userName, with `@` turned into `-`);
2. letters are transliterated to ASCII (`Zoë` -> `Zoe`, `ß` -> `ss`), anything else
   outside `[A-Za-z0-9_.-]` becomes `-`, runs of separators collapse, and separators
   at either end are dropped;
3. the result is cut to 35 characters; an empty result becomes `scim-user`;
4. a reserved name, or one ending in `.keys`, gets the suffix `-user`;
5. on a collision with a login the bridge already assigned, a suffix of six hex
   characters from SHA-256 of the folded userName is appended (cut to fit), then
   `-2`, `-3`... if even that is taken. The suffix depends only on the userName, so
   the same directory yields the same logins in any order of arrival.

The login is assigned once, when the user is created, and never changes afterwards,
whatever the IdP later renames.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable
from typing import Literal

MAX_LOGIN_LENGTH = 35

# [v0.14.3:internal/database/users.go reservedUsernames]
RESERVED_LOGINS = frozenset(
    [
        "-",
        "explore",
        "create",
        "assets",
        "css",
        "img",
        "js",
        "less",
        "plugins",
        "debug",
        "raw",
        "install",
        "api",
        "avatar",
        "user",
        "org",
        "help",
        "stars",
        "issues",
        "pulls",
        "commits",
        "repo",
        "template",
        "admin",
        "new",
        ".",
        "..",
    ]
)

# Letters NFKD does not decompose into ASCII.
_TRANSLITERATIONS = str.maketrans(
    {
        "ß": "ss",
        "æ": "ae",
        "Æ": "AE",
        "ø": "o",
        "Ø": "O",
        "đ": "d",
        "Đ": "D",
        "ł": "l",
        "Ł": "L",
        "þ": "th",
        "Þ": "Th",
        "œ": "oe",
        "Œ": "OE",
        "\u0131": "i",  # dotless i
    }
)
_DISALLOWED = re.compile(r"[^A-Za-z0-9_.-]+")
_SEPARATOR_RUN = re.compile(r"[-_.]{2,}")
_VALID_LOGIN = re.compile(r"[A-Za-z0-9_.-]{1,35}")

LoginSource = Literal["local-part", "username"]


def is_valid_login(login: str) -> bool:
    """Whether Gogs would accept `login` as a new username."""
    folded = login.strip().lower()
    return (
        bool(_VALID_LOGIN.fullmatch(login))
        and folded not in RESERVED_LOGINS
        and not folded.endswith(".keys")
    )


def _ascii(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.translate(_TRANSLITERATIONS))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def base_login(user_name: str, source: LoginSource = "local-part") -> str:
    """Steps 1-4 of the rule: a valid login, before collisions are considered."""
    text = user_name.strip()
    if source == "local-part" and "@" in text:
        text = text.rsplit("@", 1)[0]
    text = _DISALLOWED.sub("-", _ascii(text))
    # Keep the first separator of a run so `a._b` reads `a.b`, not `a-b`.
    text = _SEPARATOR_RUN.sub(lambda m: m.group(0)[0], text).strip("-_.")
    text = text[:MAX_LOGIN_LENGTH].rstrip("-_.") or "scim-user"
    if not is_valid_login(text):
        text = text[: MAX_LOGIN_LENGTH - len("-user")] + "-user"
    return text


def _with_suffix(base: str, suffix: str) -> str:
    return base[: MAX_LOGIN_LENGTH - len(suffix)].rstrip("-_.") + suffix


def derive_login(
    user_name: str,
    is_taken: Callable[[str], bool],
    source: LoginSource = "local-part",
) -> str:
    """The login for a new user: the base login, or a deterministic variant if taken.

    `is_taken(login)` answers for the folded login whether another user already has it.
    """
    base = base_login(user_name, source)
    if not is_taken(base.lower()):
        return base
    digest = hashlib.sha256(user_name.strip().lower().encode()).hexdigest()[:6]
    candidate = _with_suffix(base, f"-{digest}")
    counter = 2
    while is_taken(candidate.lower()):
        candidate = _with_suffix(base, f"-{digest}-{counter}")
        counter += 1
    return candidate
