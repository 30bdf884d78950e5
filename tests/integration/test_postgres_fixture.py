"""The throwaway PostgreSQL cluster fixture really works and isolates databases."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

pytestmark = pytest.mark.postgres


def test_select_one(postgres_url: str) -> None:
    engine = sa.create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("select 1")).scalar_one() == 1
            assert conn.execute(sa.text("select current_database()")).scalar_one() == (
                "gogs_scim_test"
            )
    finally:
        engine.dispose()


def _write_marker(url: str) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("create table marker (x int)"))
    finally:
        engine.dispose()


def _tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_fresh_database_is_empty_and_writable_one(fresh_postgres_url: str) -> None:
    assert _tables(fresh_postgres_url) == set()
    _write_marker(fresh_postgres_url)
    assert _tables(fresh_postgres_url) == {"marker"}


def test_fresh_database_is_empty_and_writable_two(
    fresh_postgres_url: str, postgres_url: str
) -> None:
    # Whatever the other test created lives in its own database, not in ours.
    assert fresh_postgres_url != postgres_url
    assert _tables(fresh_postgres_url) == set()
    _write_marker(fresh_postgres_url)
    assert "marker" not in _tables(postgres_url)
