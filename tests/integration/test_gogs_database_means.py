"""The database means on PostgreSQL: the same SQL as on SQLite (which
test_deprovisioning.py proves against the real Gogs), run on Gogs's PostgreSQL table
layout (xorm: BOOL flags, BIGINT ids, the `user` table quoted)."""

from __future__ import annotations

import pytest
from sqlalchemy import Connection, create_engine, text

from gogs_scim.gogs.database_means import GogsDatabase, gogs_database_engine

# The columns the means reads or writes, typed as Gogs's xorm creates them on PostgreSQL.
GOGS_TABLES = [
    'CREATE TABLE "user" (id BIGSERIAL PRIMARY KEY, lower_name VARCHAR(255) UNIQUE, '
    "name VARCHAR(255), type INTEGER, prohibit_login BOOL DEFAULT false, "
    "num_members INTEGER DEFAULT 0)",
    "CREATE TABLE team (id BIGSERIAL PRIMARY KEY, org_id BIGINT, lower_name VARCHAR(255), "
    "name VARCHAR(255), num_members INTEGER)",
    "CREATE TABLE team_user (id BIGSERIAL PRIMARY KEY, org_id BIGINT, team_id BIGINT, uid BIGINT)",
    "CREATE TABLE org_user (id BIGSERIAL PRIMARY KEY, uid BIGINT, org_id BIGINT, "
    "is_owner BOOL, num_teams INTEGER)",
    "CREATE TABLE repository (id BIGSERIAL PRIMARY KEY, owner_id BIGINT, lower_name VARCHAR(255), "
    "num_watches INTEGER DEFAULT 0)",
    "CREATE TABLE watch (id BIGSERIAL PRIMARY KEY, user_id BIGINT, repo_id BIGINT)",
    "CREATE TABLE collaboration (id BIGSERIAL PRIMARY KEY, repo_id BIGINT, user_id BIGINT, "
    "mode INTEGER)",
    "CREATE TABLE access (id BIGSERIAL PRIMARY KEY, user_id BIGINT, repo_id BIGINT, mode INTEGER)",
    "CREATE TABLE access_token (id BIGSERIAL PRIMARY KEY, uid BIGINT, name VARCHAR(255), "
    "sha256 VARCHAR(64))",
]

ROWS = [
    # 1 leo (the leaver), 2 ada (stays), 10 acme (org, 2 members), 11 solo (leo owns it alone)
    'INSERT INTO "user" (id, lower_name, name, type, num_members) VALUES '
    "(1, 'leo', 'Leo', 0, 0), (2, 'ada', 'Ada', 0, 0), (10, 'acme', 'acme', 1, 2), "
    "(11, 'solo', 'solo', 1, 1)",
    "INSERT INTO team (id, org_id, lower_name, name, num_members) VALUES "
    "(100, 10, 'owners', 'Owners', 1), (101, 10, 'devs', 'devs', 2), "
    "(110, 11, 'owners', 'Owners', 1)",
    "INSERT INTO team_user (org_id, team_id, uid) VALUES "
    "(10, 100, 2), (10, 101, 1), (10, 101, 2), (11, 110, 1)",
    "INSERT INTO org_user (uid, org_id, is_owner, num_teams) VALUES "
    "(1, 10, false, 1), (2, 10, true, 2), (1, 11, true, 1)",
    "INSERT INTO repository (id, owner_id, lower_name, num_watches) VALUES "
    "(1000, 10, 'app', 2), (1001, 2, 'adas', 2), (1002, 11, 'solo-repo', 1)",
    # leo watches all three; ada the two she reaches.
    "INSERT INTO watch (user_id, repo_id) VALUES (1, 1000), (1, 1001), (1, 1002), "
    "(2, 1000), (2, 1001)",
    "INSERT INTO collaboration (repo_id, user_id, mode) VALUES (1001, 1, 2)",
    "INSERT INTO access (user_id, repo_id, mode) VALUES "
    "(1, 1000, 2), (1, 1001, 2), (1, 1002, 4), (2, 1000, 4)",
    "INSERT INTO access_token (uid, name, sha256) VALUES (1, 'a', 'x'), (1, 'b', 'y'), "
    "(2, 'c', 'z')",
]


@pytest.fixture
def gogs_pg(fresh_postgres_url: str) -> str:
    engine = create_engine(fresh_postgres_url)
    with engine.begin() as conn:
        for statement in GOGS_TABLES + ROWS:
            conn.execute(text(statement))
    engine.dispose()
    # The form an operator writes: plain postgresql://, no driver named.
    return "postgresql://" + fresh_postgres_url.split("://", 1)[1]


def rows(conn: Connection, query: str) -> list[tuple[object, ...]]:
    return [tuple(row) for row in conn.execute(text(query))]


def test_revoke_on_postgresql_keeps_gogs_consistent(gogs_pg: str) -> None:
    means = GogsDatabase.from_url(gogs_pg)
    try:
        done = means.revoke(1, "Leo")
        again = means.revoke(1, "leo")  # idempotent: nothing left to do, counters intact
        assert means.revoke(2, "leo").found is False  # id and name must both match
        engine = gogs_database_engine(gogs_pg)
        with engine.connect() as conn:
            assert rows(
                conn, 'SELECT id, prohibit_login FROM "user" WHERE type = 0 ORDER BY id'
            ) == [
                (1, True),
                (2, False),
            ]
            assert rows(conn, "SELECT uid FROM access_token") == [(2,)]
            assert rows(conn, "SELECT team_id, uid FROM team_user ORDER BY team_id, uid") == [
                (100, 2),
                (101, 2),
                (110, 1),  # last owner of solo: kept
            ]
            assert rows(conn, "SELECT id, num_members FROM team ORDER BY id") == [
                (100, 1),
                (101, 1),
                (110, 1),
            ]
            assert rows(conn, "SELECT uid, org_id FROM org_user ORDER BY uid, org_id") == [
                (1, 11),
                (2, 10),
            ]
            assert rows(
                conn, 'SELECT num_members FROM "user" WHERE id IN (10, 11) ORDER BY id'
            ) == [
                (1,),
                (1,),
            ]
            assert rows(conn, "SELECT * FROM collaboration") == []
            assert rows(conn, "SELECT user_id, repo_id FROM access ORDER BY user_id, repo_id") == [
                (1, 1002),
                (2, 1000),
            ]
            # No more issue mails from what leo left; solo's, which leo still owns, stay.
            assert rows(conn, "SELECT user_id, repo_id FROM watch ORDER BY user_id, repo_id") == [
                (1, 1002),
                (2, 1000),
                (2, 1001),
            ]
            assert rows(conn, "SELECT id, num_watches FROM repository ORDER BY id") == [
                (1000, 1),
                (1001, 1),
                (1002, 1),
            ]
        assert (done.tokens, done.teams, done.orgs, done.collaborations) == (2, 1, ("acme",), 1)
        assert (done.watches, again.watches) == (2, 0)
        assert done.kept_owner_of == ("solo",)
        assert (again.tokens, again.teams, again.orgs) == (0, 0, ())
        assert means.login_prohibited(1)
        assert means.allow_login(1, "leo")
        assert not means.login_prohibited(1)
        engine.dispose()
    finally:
        means.close()
