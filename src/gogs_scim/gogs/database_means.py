"""Deprovisioning through Gogs's own database: what the API cannot do.

Configured explicitly with `[gogs] database_url` (SQLite file of Gogs, or its
PostgreSQL DSN). Only the steps the API lacks are done here (gogs-facts.md §4):
setting `prohibit_login`, deleting access tokens, and leaving organizations (team and
org membership rows) and collaborations everywhere. Gogs keeps no cache of users,
tokens or permissions, so each change counts from the next request.

Pitfalls handled (gogs-facts.md §4 "SQL mechanics"): the denormalised `access` rows
are deleted together with the rows they derive from, and the counters Gogs keeps
(`team.num_members`, org `user.num_members`) are decremented. The Owners team of an
org where the user is the last owner is left alone (Gogs needs an owner): reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine, create_engine, event, make_url, text

OWNERS = "owners"


@dataclass(frozen=True)
class DatabaseRevocation:
    """What one revocation changed; `found` is False when the account is gone."""

    found: bool
    tokens: int = 0
    teams: int = 0
    orgs: tuple[str, ...] = ()
    collaborations: int = 0
    kept_owner_of: tuple[str, ...] = field(default=())


def _sqlite_busy_timeout(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA busy_timeout = 10000")
    cursor.close()


def gogs_database_engine(url: str) -> Engine:
    """An engine on Gogs's database; `postgresql://` uses psycopg (3)."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        engine = create_engine(url, connect_args={"timeout": 10})
        event.listen(engine, "connect", _sqlite_busy_timeout)
        return engine
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return create_engine(parsed, pool_pre_ping=True, pool_size=2, max_overflow=2)
    raise ValueError(f"gogs.database_url: unsupported database {backend!r}")


class GogsDatabase:
    """Revocation steps as SQL on Gogs's tables (SQLite and PostgreSQL alike)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @classmethod
    def from_url(cls, url: str) -> GogsDatabase:
        return cls(gogs_database_engine(url))

    def close(self) -> None:
        self._engine.dispose()

    def revoke(self, user_id: int, login: str) -> DatabaseRevocation:
        """Block login, delete tokens, leave every org and collaboration; idempotent."""
        with self._engine.begin() as conn:
            if not self._exists(conn, user_id, login):
                return DatabaseRevocation(found=False)
            kept = self._sole_owner_orgs(conn, user_id)
            kept_ids = {org_id for org_id, _ in kept}
            params = {"uid": user_id}
            teams = 0
            for team_id, org_id in conn.execute(
                text("SELECT team_id, org_id FROM team_user WHERE uid = :uid"), params
            ).all():
                if org_id in kept_ids:
                    continue
                conn.execute(
                    text("DELETE FROM team_user WHERE uid = :uid AND team_id = :team"),
                    {"uid": user_id, "team": team_id},
                )
                conn.execute(
                    text(
                        "UPDATE team SET num_members = num_members - 1 "
                        "WHERE id = :team AND num_members > 0"
                    ),
                    {"team": team_id},
                )
                teams += 1
            orgs: list[str] = []
            for org_id, org_name in conn.execute(
                text(
                    'SELECT ou.org_id, o.name FROM org_user ou JOIN "user" o ON o.id = ou.org_id '
                    "WHERE ou.uid = :uid ORDER BY o.lower_name"
                ),
                params,
            ).all():
                if org_id in kept_ids:
                    continue
                conn.execute(
                    text("DELETE FROM org_user WHERE uid = :uid AND org_id = :org"),
                    {"uid": user_id, "org": org_id},
                )
                conn.execute(
                    text(
                        'UPDATE "user" SET num_members = num_members - 1 '
                        "WHERE id = :org AND num_members > 0"
                    ),
                    {"org": org_id},
                )
                orgs.append(str(org_name))
            collaborations = conn.execute(
                text("DELETE FROM collaboration WHERE user_id = :uid"), params
            ).rowcount
            # `access` derives from the rows just deleted; a stale row would keep
            # granting until Gogs rebuilds that repository, so it goes too (except
            # for the orgs kept because the user is their last owner).
            conn.execute(
                text(
                    "DELETE FROM access WHERE user_id = :uid AND repo_id NOT IN "
                    "(SELECT id FROM repository WHERE owner_id IN "
                    "(SELECT org_id FROM org_user WHERE uid = :uid))"
                ),
                params,
            )
            tokens = conn.execute(
                text("DELETE FROM access_token WHERE uid = :uid"), params
            ).rowcount
            conn.execute(
                text('UPDATE "user" SET prohibit_login = :on WHERE id = :uid'),
                {"on": True, "uid": user_id},
            )
        return DatabaseRevocation(
            found=True,
            tokens=max(tokens, 0),
            teams=teams,
            orgs=tuple(orgs),
            collaborations=max(collaborations, 0),
            kept_owner_of=tuple(name for _, name in kept),
        )

    def allow_login(self, user_id: int, login: str) -> bool:
        """Clear `prohibit_login` (reactivation); False when the account is gone."""
        with self._engine.begin() as conn:
            if not self._exists(conn, user_id, login):
                return False
            conn.execute(
                text('UPDATE "user" SET prohibit_login = :off WHERE id = :uid'),
                {"off": False, "uid": user_id},
            )
        return True

    def login_prohibited(self, user_id: int) -> bool:
        with self._engine.connect() as conn:
            value = conn.execute(
                text('SELECT prohibit_login FROM "user" WHERE id = :uid'), {"uid": user_id}
            ).scalar()
        return bool(value)

    @staticmethod
    def _exists(conn: Connection, user_id: int, login: str) -> bool:
        # Both id and name: never act on an account that replaced the one we know.
        row = conn.execute(
            text('SELECT id FROM "user" WHERE id = :uid AND lower_name = :name AND type = 0'),
            {"uid": user_id, "name": login.lower()},
        ).first()
        return row is not None

    @staticmethod
    def _sole_owner_orgs(conn: Connection, user_id: int) -> list[tuple[int, str]]:
        rows = conn.execute(
            text(
                "SELECT t.org_id, o.name FROM team t JOIN team_user tu ON tu.team_id = t.id "
                'JOIN "user" o ON o.id = t.org_id '
                "WHERE tu.uid = :uid AND t.lower_name = :owners AND "
                "(SELECT COUNT(*) FROM team_user x WHERE x.team_id = t.id) <= 1"
            ),
            {"uid": user_id, "owners": OWNERS},
        ).all()
        return [(int(org_id), str(name)) for org_id, name in rows]
