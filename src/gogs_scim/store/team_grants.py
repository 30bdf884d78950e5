"""Who the bridge added to which Gogs team (see tables.team_grants for why)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection, delete, insert, select

from gogs_scim.store.tables import team_grants


def granted_logins(conn: Connection, team_key: str) -> set[str]:
    """Folded logins the bridge added to the team and has not removed since."""
    query = select(team_grants.c.login_folded).where(team_grants.c.team_key == team_key)
    return set(conn.execute(query).scalars())


def record_changes(
    conn: Connection,
    team_key: str,
    org: str,
    team: str,
    *,
    added: Iterable[str],
    removed: Iterable[str],
    now: datetime,
) -> None:
    """Remember members the bridge added, forget those it removed."""
    gone = sorted({login.lower() for login in removed})
    if gone:
        conn.execute(
            delete(team_grants).where(
                team_grants.c.team_key == team_key, team_grants.c.login_folded.in_(gone)
            )
        )
    new = sorted({login.lower() for login in added} - granted_logins(conn, team_key))
    if new:
        conn.execute(
            insert(team_grants),
            [
                {
                    "team_key": team_key,
                    "login_folded": login,
                    "org": org,
                    "team": team,
                    "granted_at": now,
                }
                for login in new
            ],
        )
