"""Reading the audit trail back: export, and one user's access history.

`export_rows` gives records as plain dicts (secrets redacted once more on the way out,
whatever an older record may hold); `user_timeline` answers "who had access to what,
when, and why" for one person: their own records, the Gogs calls made for them, and
the records of the groups and teams that named them.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import IO, Any

from sqlalchemy import Connection, Text, cast, func, or_, select

from gogs_scim.audit.redaction import redact
from gogs_scim.store.tables import audit_events, users

EXPORT_FIELDS = (
    "seq",
    "at",
    "request_id",
    "actor",
    "action",
    "resource_type",
    "resource_id",
    "outcome",
    "detail",
    "prev_hash",
    "hash",
)

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(value: str, now: datetime | None = None) -> datetime:
    """`7d`, `12h`, `30m`, `2w`, `45s` ago, or an ISO 8601 time (UTC when no offset)."""
    match = _DURATION.match(value)
    if match:
        amount, unit = int(match.group(1)), match.group(2).lower()
        return (now or datetime.now(UTC)) - timedelta(**{_UNITS[unit]: amount})
    try:
        at = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"--since {value!r}: expected an ISO 8601 time (2026-01-31T12:00:00Z) "
            "or a duration such as 7d, 12h, 30m"
        ) from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _row(row: Any) -> dict[str, Any]:
    return {
        "seq": row.seq,
        "at": _utc(row.at).isoformat().replace("+00:00", "Z"),
        "request_id": row.request_id,
        "actor": row.actor,
        "action": row.action,
        "resource_type": row.resource_type,
        "resource_id": row.resource_id,
        "outcome": row.outcome,
        "detail": redact(row.detail),
        "prev_hash": row.prev_hash,
        "hash": row.hash,
    }


def export_rows(conn: Connection, since: datetime | None = None) -> Iterator[dict[str, Any]]:
    """Records in chain order, from `since` on (all when None)."""
    query = select(audit_events).order_by(audit_events.c.seq)
    if since is not None:
        query = query.where(audit_events.c.at >= since)
    for row in conn.execute(query):
        yield _row(row)


def write_jsonl(rows: Iterable[dict[str, Any]], out: IO[str]) -> int:
    count = 0
    for row in rows:
        out.write(json.dumps(row, sort_keys=True, default=str) + "\n")
        count += 1
    return count


def write_csv(rows: Iterable[dict[str, Any]], out: IO[str]) -> int:
    """One record a line; `detail` is its JSON text."""
    writer = csv.DictWriter(out, fieldnames=EXPORT_FIELDS, lineterminator="\n")
    writer.writeheader()
    count = 0
    for row in rows:
        writer.writerow({**row, "detail": json.dumps(row["detail"], sort_keys=True, default=str)})
        count += 1
    return count


# -- one user's history ---------------------------------------------------------


@dataclass(frozen=True)
class Person:
    """A stored user the question is about (deleted ones included)."""

    id: str
    user_name: str
    gogs_login: str | None
    deleted: bool


@dataclass(frozen=True)
class TimelineEntry:
    seq: int
    at: datetime
    actor: str | None
    request_id: str | None
    action: str
    resource: str
    outcome: str
    what: str


def find_people(conn: Connection, who: str) -> list[Person]:
    """Users whose SCIM id, userName or Gogs login is `who` (case-insensitive names)."""
    folded = who.strip().lower()
    rows = conn.execute(
        select(users.c.id, users.c.user_name, users.c.gogs_login, users.c.deleted_at).where(
            or_(
                users.c.id == who.strip(),
                func.lower(users.c.user_name) == folded,
                users.c.gogs_login_folded == folded,
            )
        )
    )
    return [
        Person(row.id, row.user_name, row.gogs_login, row.deleted_at is not None) for row in rows
    ]


def _changed(before: Any, after: Any) -> list[str]:
    before = before if isinstance(before, dict) else {}
    after = after if isinstance(after, dict) else {}
    return sorted(key for key in set(before) | set(after) if before.get(key) != after.get(key))


def _user_summary(action: str, detail: dict[str, Any]) -> str:
    before, after = detail.get("before"), detail.get("after")
    if action.endswith(".create"):
        active = (after or {}).get("active", True) is not False
        return f"created ({'active' if active else 'inactive'})"
    if action.endswith(".delete"):
        return "deleted: Gogs access to be removed"
    if action.endswith(".create_refused"):
        return f"refused: {detail.get('reason', '')}"
    changed = _changed(before, after)
    if "active" in changed:
        now_active = (after or {}).get("active", True) is not False
        rest = [name for name in changed if name != "active"]
        head = "reactivated" if now_active else "deactivated: Gogs access to be revoked"
        return head + (f"; also changed {', '.join(rest)}" if rest else "")
    return f"changed {', '.join(changed)}" if changed else "no change"


def _group_summary(action: str, detail: dict[str, Any], ids: set[str]) -> str:
    doc = detail.get("after") or detail.get("before") or {}
    name = doc.get("displayName", "?") if isinstance(doc, dict) else "?"
    added = ids & set(detail.get("members_added") or [])
    removed = ids & set(detail.get("members_removed") or [])
    if action.endswith(".delete"):
        return f"group {name!r} deleted: its members lose what it granted"
    if added:
        return f"added to group {name!r}"
    if removed:
        return f"removed from group {name!r}"
    return (
        f"group {name!r} changed ({', '.join(_changed(detail.get('before'), detail.get('after')))})"
    )


def _gogs_summary(action: str, detail: dict[str, Any]) -> str:
    if action.startswith("plan."):
        return _plan_summary(action, detail)
    if action == "reconcile.repair":
        # service/reconcile.py: a difference found in Gogs and the converge run for it.
        done = "repaired" if detail.get("repaired", True) else "not repaired"
        return (
            f"reconcile: {detail.get('what', '')} {done} (IdP: {detail.get('idp', '')}; "
            f"Gogs had: {detail.get('gogs_had', '')})"
        )
    call = action.removeprefix("gogs.")
    if call == "converge_failed":
        return f"Gogs not updated: {detail.get('error', '')}"
    if call == "residual_access":
        left = detail.get("residual") or []
        return "Gogs: still has " + ", ".join(map(str, left)) if left else "Gogs: nothing left"
    target = detail.get("target") or detail.get("login") or ""
    if call in ("add_team_member", "remove_team_member") and ":" in str(target):
        team = str(target).rsplit(":", 1)[0]
        verb = "added to" if call == "add_team_member" else "removed from"
        return f"Gogs: {verb} team {team}"
    reason = detail.get("reason")
    return f"Gogs: {call} {target}" + (f" (because: {reason})" if reason else "")


def _plan_summary(action: str, detail: dict[str, Any]) -> str:
    """Shadow mode's records (gogs/shadow.py): what apply would do, nothing done."""
    if action == "plan.failed":
        return f"planned, not done (shadow mode): apply would fail: {detail.get('error', '')}"
    if action == "plan.no_change":
        return "planned, not done (shadow mode): nothing to change in Gogs"
    return f"planned, not done (shadow mode): {detail.get('summary', action)}"


def _mentions(detail: Any, ids: set[str], logins: set[str]) -> bool:
    if not isinstance(detail, dict):
        return False
    named = set(detail.get("members_added") or []) | set(detail.get("members_removed") or [])
    if ids & named:
        return True
    for doc in (detail.get("before"), detail.get("after")):
        if isinstance(doc, dict):
            members = doc.get("members") or []
            if any(isinstance(m, dict) and m.get("value") in ids for m in members):
                return True
    target = str(detail.get("target") or "")
    return ":" in target and target.rsplit(":", 1)[1].lower() in logins


def user_timeline(conn: Connection, people: list[Person]) -> list[TimelineEntry]:
    """Every record about these users, and of the groups and teams naming them, by seq."""
    ids = {person.id for person in people}
    logins = {person.gogs_login.lower() for person in people if person.gogs_login}
    if not ids:
        return []
    own = audit_events.c.resource_id.in_(sorted(ids))
    # A cheap text prefilter on the JSON; `_mentions` then checks the record for real.
    needles = [*ids, *(f":{login}" for login in logins)]
    text_detail = func.lower(cast(audit_events.c.detail, Text))
    naming = or_(*(text_detail.like(f"%{needle.lower()}%") for needle in needles))
    query = (
        select(audit_events)
        .where(
            or_(
                own,
                (audit_events.c.resource_type.in_(["Group", "Team"])) & naming,
            )
        )
        .order_by(audit_events.c.seq)
    )
    entries: list[TimelineEntry] = []
    for row in conn.execute(query):
        detail = redact(row.detail) if isinstance(row.detail, dict) else {}
        if row.resource_id in ids:
            if row.action.startswith("scim."):
                what = _user_summary(row.action, detail)
            else:
                what = _gogs_summary(row.action, detail)
        elif not _mentions(detail, ids, logins):
            continue
        elif row.resource_type == "Group":
            what = _group_summary(row.action, detail, ids)
        else:
            what = _gogs_summary(row.action, detail)
        entries.append(
            TimelineEntry(
                seq=row.seq,
                at=_utc(row.at),
                actor=row.actor,
                request_id=row.request_id,
                action=row.action,
                resource=f"{row.resource_type}/{row.resource_id}",
                outcome=row.outcome,
                what=what,
            )
        )
    return entries
