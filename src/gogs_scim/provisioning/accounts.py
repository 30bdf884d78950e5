"""What a SCIM user should look like as a Gogs account.

Gogs has few user fields: login, email, full name, website, location. The admin API
rewrites all of its string fields on every edit (gogs-facts §1.2), so the bridge
always sends the full set, computed here from the SCIM document alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

FULL_NAME_MAX = 100
WEBSITE_MAX = 50
LOCATION_MAX = 50
# Gogs requires an email. A user the IdP sends without one still gets an account,
# with an address under a reserved, undeliverable domain (RFC 2606).
FALLBACK_EMAIL_DOMAIN = "users.gogs-scim.invalid"


@dataclass(frozen=True)
class DesiredAccount:
    login: str
    email: str
    full_name: str
    website: str
    location: str


def _items(document: dict[str, Any], attribute: str) -> list[dict[str, Any]]:
    value = document.get(attribute) or []
    return [item for item in value if isinstance(item, dict)]


def _pick(items: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The primary item, else the first of type work, else the first."""
    for item in items:
        if item.get("primary") is True:
            return item
    for item in items:
        if str(item.get("type", "")).lower() == "work":
            return item
    return items[0] if items else None


def primary_email(document: dict[str, Any], login: str) -> str:
    chosen = _pick([item for item in _items(document, "emails") if item.get("value")])
    if chosen is not None:
        return str(chosen["value"]).strip().lower()
    user_name = str(document.get("userName", ""))
    if "@" in user_name and " " not in user_name.strip():
        return user_name.strip().lower()
    return f"{login.lower()}@{FALLBACK_EMAIL_DOMAIN}"


def full_name(document: dict[str, Any]) -> str:
    name = document.get("name") or {}
    parts = [name.get("givenName"), name.get("middleName"), name.get("familyName")]
    text = (
        document.get("displayName")
        or name.get("formatted")
        or " ".join(str(p) for p in parts if p)
        or ""
    )
    return " ".join(str(text).split())[:FULL_NAME_MAX]


def location(document: dict[str, Any]) -> str:
    address = _pick(_items(document, "addresses"))
    if address is None:
        return ""
    parts = [address.get("locality"), address.get("region"), address.get("country")]
    text = ", ".join(str(p) for p in parts if p) or str(address.get("formatted") or "")
    return " ".join(text.split())[:LOCATION_MAX]


def website(document: dict[str, Any]) -> str:
    url = str(document.get("profileUrl") or "")
    # A URL cut short would be a wrong URL: leave it out rather than truncate.
    return url if len(url) <= WEBSITE_MAX else ""


def desired_account(document: dict[str, Any], login: str) -> DesiredAccount:
    return DesiredAccount(
        login=login,
        email=primary_email(document, login),
        full_name=full_name(document),
        website=website(document),
        location=location(document),
    )
