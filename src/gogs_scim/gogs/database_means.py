"""Deprovisioning through Gogs's own database: what the API cannot do.

Configured explicitly with `[gogs] database_url` (SQLite file of Gogs, or its
PostgreSQL or MySQL/MariaDB DSN). Only the steps the API lacks are done here (gogs-facts.md §4):
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

from sqlalchemy import (
    Connection,
    Engine,
    TextClause,
    bindparam,
    create_engine,
    event,
    make_url,
    text,
)

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
    # Repositories the user stops watching (no more issue mails from them).
    watches: int = 0

    def changes(self, login: str) -> list[tuple[str, str, str]]:
        """(action, target, sentence) per kind of change: the audit trail's calls, and
        shadow mode's plan; nothing when the account was not found."""
        if not self.found:
            return []
        out = [("prohibit_login", login, f"set prohibit_login on {login} (Gogs database)")]
        if self.tokens:
            out.append(
                (
                    "delete_access_tokens",
                    f"{login}:{self.tokens}",
                    f"delete the {self.tokens} access token(s) of {login} (Gogs database)",
                )
            )
        out.extend(
            ("leave_org", f"{org}:{login}", f"remove {login} from organization {org}")
            for org in self.orgs
        )
        if self.teams:
            out.append(
                (
                    "leave_teams",
                    f"{login}:{self.teams}",
                    f"remove {login} from {self.teams} team(s) (Gogs database)",
                )
            )
        if self.collaborations:
            out.append(
                (
                    "remove_collaborations",
                    f"{login}:{self.collaborations}",
                    f"remove {login} from {self.collaborations} collaboration(s) (Gogs database)",
                )
            )
        if self.watches:
            out.append(
                (
                    "unwatch_repositories",
                    f"{login}:{self.watches}",
                    f"stop {login} watching {self.watches} repositories they leave (Gogs database)",
                )
            )
        return out


@dataclass(frozen=True)
class _Scope:
    team_ids: tuple[int, ...]
    orgs: tuple[tuple[int, str], ...]
    kept_owner_of: tuple[str, ...]
    # Owners whose repositories the user keeps reaching: themself, and the orgs kept.
    keeps_reaching: tuple[int, ...] = ()


# The user's watches of repositories they no longer reach. Gogs mails a watcher every
# issue and comment of the repository while the account `is_active` (which the bridge
# keeps: gogs-facts.md §3.1), so a watch would go on disclosing private content.
_LEFT_WATCHES = (
    "FROM watch WHERE user_id = :uid AND repo_id IN "
    "(SELECT id FROM repository WHERE owner_id NOT IN :keep)"
)
# The counter first, while the rows exist; its subquery reads `watch` only (MySQL
# refuses a subquery on the table an UPDATE writes).
_UNCOUNT_LEFT_WATCHES = (
    "UPDATE repository SET num_watches = num_watches - 1 WHERE num_watches > 0 "
    "AND owner_id NOT IN :keep AND id IN (SELECT repo_id FROM watch WHERE user_id = :uid)"
)


def _left_watches(sql: str) -> TextClause:
    return text(sql).bindparams(bindparam("keep", expanding=True))


def _sqlite_busy_timeout(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA busy_timeout = 10000")
    cursor.close()


def _mysql_ansi_quotes(dbapi_connection: object, _record: object) -> None:
    # The statements here quote the `user` table as "user" (standard SQL, as SQLite
    # and PostgreSQL read it); MySQL reads double quotes as identifiers only in
    # ANSI_QUOTES mode, set for this session alone.
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("SET SESSION sql_mode = CONCAT(@@SESSION.sql_mode, ',ANSI_QUOTES')")
    cursor.close()


def gogs_database_engine(url: str) -> Engine:
    """An engine on Gogs's database; `postgresql://` uses psycopg (3), `mysql://` and
    `mariadb://` PyMySQL."""
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
    if backend in ("mysql", "mariadb"):
        if "+" not in parsed.drivername:
            parsed = parsed.set(drivername=f"{backend}+pymysql")
        # Gogs creates its MySQL database as utf8mb4 (logins and names may be any
        # Unicode); the connection must speak it too.
        parsed = parsed.update_query_dict({"charset": "utf8mb4"})
        engine = create_engine(parsed, pool_pre_ping=True, pool_size=2, max_overflow=2)
        event.listen(engine, "connect", _mysql_ansi_quotes)
        return engine
    raise ValueError(f"gogs.database_url: unsupported database {backend!r}")


class GogsDatabase:
    """Revocation steps as SQL on Gogs's tables (SQLite, PostgreSQL, MySQL alike)."""

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
            scope = self._scope(conn, user_id)
            params = {"uid": user_id}
            for team_id in scope.team_ids:
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
            for org_id, _ in scope.orgs:
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
            watching = {"uid": user_id, "keep": list(scope.keeps_reaching)}
            conn.execute(_left_watches(_UNCOUNT_LEFT_WATCHES), watching)
            watches = conn.execute(_left_watches("DELETE " + _LEFT_WATCHES), watching).rowcount
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
            teams=len(scope.team_ids),
            orgs=tuple(name for _, name in scope.orgs),
            collaborations=max(collaborations, 0),
            kept_owner_of=scope.kept_owner_of,
            watches=max(watches, 0),
        )

    def plan_revoke(self, user_id: int, login: str) -> DatabaseRevocation:
        """What `revoke` would change now, counted with SELECTs only (shadow mode)."""
        with self._engine.connect() as conn:
            if not self._exists(conn, user_id, login):
                return DatabaseRevocation(found=False)
            scope = self._scope(conn, user_id)
            params = {"uid": user_id}
            collaborations = conn.execute(
                text("SELECT COUNT(*) FROM collaboration WHERE user_id = :uid"), params
            ).scalar_one()
            tokens = conn.execute(
                text("SELECT COUNT(*) FROM access_token WHERE uid = :uid"), params
            ).scalar_one()
            watches = conn.execute(
                _left_watches("SELECT COUNT(*) " + _LEFT_WATCHES),
                {"uid": user_id, "keep": list(scope.keeps_reaching)},
            ).scalar_one()
        return DatabaseRevocation(
            found=True,
            tokens=int(tokens),
            teams=len(scope.team_ids),
            orgs=tuple(name for _, name in scope.orgs),
            collaborations=int(collaborations),
            kept_owner_of=scope.kept_owner_of,
            watches=int(watches),
        )

    def _scope(self, conn: Connection, user_id: int) -> _Scope:
        """The team and org memberships a revocation removes: all but those of the
        orgs where the user is the last owner."""
        kept = self._sole_owner_orgs(conn, user_id)
        kept_ids = {org_id for org_id, _ in kept}
        params = {"uid": user_id}
        team_ids = tuple(
            int(team_id)
            for team_id, org_id in conn.execute(
                text("SELECT team_id, org_id FROM team_user WHERE uid = :uid ORDER BY team_id"),
                params,
            ).all()
            if org_id not in kept_ids
        )
        orgs = tuple(
            (int(org_id), str(org_name))
            for org_id, org_name in conn.execute(
                text(
                    'SELECT ou.org_id, o.name FROM org_user ou JOIN "user" o ON o.id = ou.org_id '
                    "WHERE ou.uid = :uid ORDER BY o.lower_name"
                ),
                params,
            ).all()
            if org_id not in kept_ids
        )
        return _Scope(
            team_ids,
            orgs,
            tuple(name for _, name in kept),
            (user_id, *(org_id for org_id, _ in kept)),
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

    def account_exists(self, user_id: int, login: str) -> bool:
        with self._engine.connect() as conn:
            return self._exists(conn, user_id, login)

    def login_prohibited(self, user_id: int) -> bool:
        with self._engine.connect() as conn:
            value = conn.execute(
                text('SELECT prohibit_login FROM "user" WHERE id = :uid'), {"uid": user_id}
            ).scalar()
        return bool(value)

    def is_site_admin(self, user_id: int) -> bool:
        """`is_admin`, which the API never shows (read by reconciliation's drift check)."""
        with self._engine.connect() as conn:
            value = conn.execute(
                text('SELECT is_admin FROM "user" WHERE id = :uid'), {"uid": user_id}
            ).scalar()
        return bool(value)

    def owned_repos(self, user_id: int) -> list[str]:
        """Names of the repositories the user owns, private ones included (the API
        lists only another user's public ones): their deploy keys are reviewed."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                text("SELECT name FROM repository WHERE owner_id = :uid ORDER BY lower_name"),
                {"uid": user_id},
            ).all()
        return [str(name) for (name,) in rows]

    def administered_repos(self, user_id: int) -> list[tuple[str, str]]:
        """(owner, name) of the repositories of others the user may administer now
        (`access.mode` 3 admin or 4 owner: an admin team, Owners, an admin
        collaboration); read before `revoke`, which deletes those rows."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT o.name, r.name FROM access a JOIN repository r ON r.id = a.repo_id "
                    'JOIN "user" o ON o.id = r.owner_id '
                    "WHERE a.user_id = :uid AND a.mode >= 3 AND r.owner_id <> :uid "
                    "ORDER BY o.lower_name, r.lower_name"
                ),
                {"uid": user_id},
            ).all()
        return [(str(owner), str(name)) for owner, name in rows]

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
