"""Shared fixtures: a real Gogs and PostgreSQL (plugins), and bridges wired to them."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from gogs_scim.bootstrap import Bridge, build_bridge
from gogs_scim.config import Settings, load_settings
from gogs_scim.gogs.sandbox import RunningGogs

# The database plugins first: the Gogs plugin imports them (assertion rewriting).
pytest_plugins = ["tests.fixtures.postgres", "tests.fixtures.mysql", "tests.fixtures.gogs"]

SCIM_TOKEN_NAME = "test-idp"


def unique(prefix: str = "u") -> str:
    """A name no other test (or xdist worker) uses."""
    return f"{prefix}{uuid.uuid4().hex[:10]}"


@pytest.fixture
def scim_token() -> str:
    return secrets.token_urlsafe(24)


def make_settings(
    running: RunningGogs, database_url: str, scim_token: str, **sections: dict[str, Any]
) -> Settings:
    """Settings for a bridge on `running`; `sections` override, e.g. gogs={"url": ...}."""
    environ = {
        "GOGS_SCIM_GOGS_URL": running.url,
        "GOGS_SCIM_GOGS_ADMIN_TOKEN": running.admin_token,
        "GOGS_SCIM_GOGS_ADMIN_USER": running.admin_user,
        "GOGS_SCIM_DATABASE_URL": database_url,
        "GOGS_SCIM_SCIM_TOKEN": scim_token,
    }
    for section, values in sections.items():
        for key, value in values.items():
            environ[f"GOGS_SCIM_{section}_{key}".upper()] = str(value)
    return load_settings(None, environ=environ)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty store on each engine: the same tests run on both."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    url: str = request.getfixturevalue("fresh_postgres_url")
    return url


@pytest.fixture
def bridge_factory(
    gogs: RunningGogs, store_url: str, scim_token: str
) -> Iterator[Callable[..., Bridge]]:
    """Build bridges on the session's Gogs; by default on the test's fresh store."""
    built: list[Bridge] = []

    def build(database_url: str | None = None, **sections: dict[str, Any]) -> Bridge:
        url = database_url or store_url
        bridge = build_bridge(make_settings(gogs, url, scim_token, **sections))
        built.append(bridge)
        return bridge

    yield build
    for bridge in built:
        bridge.close()


@pytest.fixture
def bridge(bridge_factory: Callable[..., Bridge]) -> Bridge:
    return bridge_factory()


@pytest.fixture
def scim(bridge: Bridge, scim_token: str) -> Iterator[TestClient]:
    """An HTTP client for the bridge's SCIM API, authenticated like an IdP."""
    with TestClient(
        bridge.app,
        base_url="http://testserver/scim/v2",
        headers={"Authorization": f"Bearer {scim_token}"},
    ) as client:
        yield client
