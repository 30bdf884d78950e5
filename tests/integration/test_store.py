"""The store on both engines: migrations, users, the converge queue, the audit chain."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from gogs_scim.audit.trail import AuditEntry, append, verify
from gogs_scim.store import jobs
from gogs_scim.store import users as user_store
from gogs_scim.store.database import create_store_engine, migrate
from gogs_scim.store.tables import metadata
from gogs_scim.store.users import DuplicateUserName, UserRecord


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    engine = create_store_engine(store_url)
    migrate(engine)
    yield engine
    engine.dispose()


def record(user_id: str, user_name: str, login: str) -> UserRecord:
    now = datetime.now(UTC)
    return UserRecord(
        id=user_id,
        user_name=user_name,
        external_id=None,
        display_name=None,
        active=True,
        document={"userName": user_name},
        version=1,
        created_at=now,
        updated_at=now,
        gogs_login=login,
    )


def test_migrations_create_the_schema_and_are_idempotent(engine: Engine) -> None:
    migrate(engine)  # a second start changes nothing
    tables = set(inspect(engine).get_table_names())
    assert {"scim_users", "scim_attribute_values", "converge_jobs", "audit_events"} <= tables
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()


def test_migrations_match_the_table_definitions(engine: Engine) -> None:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn)
        assert compare_metadata(context, metadata) == []


def test_user_names_are_unique_case_insensitively_until_deleted(engine: Engine) -> None:
    with engine.begin() as conn:
        user_store.insert_user(conn, record("a", "Alice@x", "alice"), [])
    with engine.begin() as conn, pytest.raises(DuplicateUserName):
        user_store.insert_user(conn, record("b", "alice@X", "alice2"), [])
    with engine.begin() as conn:
        alice = user_store.get_user(conn, "a")
        assert alice is not None
        user_store.update_user(conn, alice.with_changes(deleted_at=datetime.now(UTC)), [])
        user_store.insert_user(conn, record("b", "alice@X", "alice2"), [])
        assert user_store.get_user(conn, "a") is None
        assert user_store.get_user(conn, "a", include_deleted=True) is not None
        assert user_store.login_taken(conn, "alice")


def test_jobs_coalesce_claim_once_and_back_off(engine: Engine) -> None:
    now = datetime.now(UTC)
    lease = timedelta(seconds=60)
    with engine.begin() as conn:
        jobs.enqueue(conn, "User", "u1", "create", now)
        jobs.enqueue(conn, "User", "u1", "patch", now)
        assert jobs.pending_count(conn) == 1
    with engine.begin() as conn:
        claimed = jobs.claim(conn, "w1", now, lease, 10)
    with engine.begin() as conn:
        assert jobs.claim(conn, "w2", now, lease, 10) == []  # leased to w1
    assert [job.reason for job in claimed] == ["patch"]
    with engine.begin() as conn:
        retry_at = jobs.retry_later(conn, claimed[0], "Gogs down", now)
    assert retry_at > now
    with engine.begin() as conn:
        assert jobs.claim(conn, "w2", now, lease, 10) == []  # not due yet
        again = jobs.claim(conn, "w2", retry_at, lease, 10)
        assert [job.attempts for job in again] == [1]
        jobs.complete(conn, again[0])
        assert jobs.pending_count(conn) == 0


def test_a_change_during_a_run_keeps_its_job(engine: Engine) -> None:
    now = datetime.now(UTC)
    with engine.begin() as conn:
        jobs.enqueue(conn, "User", "u1", "create", now)
    with engine.begin() as conn:
        [job] = jobs.claim(conn, "w1", now, timedelta(seconds=60), 10)
    with engine.begin() as conn:
        jobs.enqueue(conn, "User", "u1", "patch", now + timedelta(seconds=1))
    with engine.begin() as conn:
        jobs.complete(conn, job)
        assert jobs.pending_count(conn) == 1  # the newer change still has to reach Gogs


def test_audit_chain_verifies_and_catches_an_edit(engine: Engine) -> None:
    with engine.begin() as conn:
        for n in range(3):
            append(conn, AuditEntry(action="test", resource_id=str(n), detail={"n": n}))
    with engine.connect() as conn:
        assert verify(conn) is None
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE seq = 2"))
    with engine.connect() as conn:
        broken = verify(conn)
    assert broken is not None
    assert broken.seq == 2


def test_audit_never_keeps_a_secret(engine: Engine) -> None:
    with engine.begin() as conn:
        append(conn, AuditEntry(action="t", detail={"after": {"password": "hunter2", "x": 1}}))
    with engine.connect() as conn:
        raw = conn.execute(text("SELECT detail FROM audit_events")).scalar_one()
    assert "hunter2" not in str(raw)
