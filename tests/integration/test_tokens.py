"""`gogs-scim token ...` against the store a running bridge uses, and the Gogs admin
token read from a file that can be rotated without a restart."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from starlette.testclient import TestClient
from typer.testing import CliRunner, Result

from gogs_scim.bootstrap import Bridge
from gogs_scim.cli import app
from gogs_scim.gogs.client import GogsAuthFailed, GogsClient
from gogs_scim.gogs.sandbox import RunningGogs
from gogs_scim.scim.schema import GOGS_USER_SCHEMA, USER_SCHEMA
from gogs_scim.service.tokens import LOOKUP_TTL_SECONDS, secret_digest
from gogs_scim.store.tables import audit_events
from tests.conftest import unique

pytestmark = pytest.mark.gogs

USERS = "/scim/v2/Users?count=1"


class Cli:
    """`gogs-scim --config <file pointing at the bridge's store> ...`."""

    def __init__(self, bridge: Bridge, tmp_path: Path) -> None:
        self.config = tmp_path / "tokens.toml"
        self.config.write_text(f"[database]\nurl = {json.dumps(bridge.settings.database.url)}\n")
        self.runner = CliRunner()

    def __call__(self, *args: str, code: int = 0) -> Result:
        result = self.runner.invoke(app, ["--config", str(self.config), "token", *args], env={})
        assert result.exit_code == code, result.output
        return result

    def create(self, name: str, *more: str) -> str:
        secret = self("create", "--name", name, *more).stdout.strip()
        assert secret.startswith("gscim_")
        return secret


@pytest.fixture
def cli(bridge: Bridge, tmp_path: Path) -> Cli:
    return Cli(bridge, tmp_path)


@pytest.fixture
def http(bridge: Bridge) -> TestClient:
    return TestClient(bridge.app)


def get(http: TestClient, token: str) -> Any:
    return http.get(USERS, headers={"Authorization": f"Bearer {token}"})


def status_within(http: TestClient, token: str, expected: int, seconds: float) -> float:
    """Seconds until a request with `token` answers `expected` (fails after `seconds`)."""
    start = time.monotonic()
    while True:
        status = get(http, token).status_code
        waited = time.monotonic() - start
        if status == expected:
            return waited
        assert waited < seconds, f"still {status} after {waited:.1f}s, wanted {expected}"
        time.sleep(0.05)


def assert_refused(response: Any) -> None:
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


def audit_details(bridge: Bridge) -> list[tuple[str, str]]:
    with bridge.engine.connect() as conn:
        rows = conn.execute(select(audit_events.c.action, audit_events.c.detail))
        return [(row.action, json.dumps(row.detail)) for row in rows]


def test_created_token_works_at_once_beside_config_tokens_and_is_never_shown_again(
    bridge: Bridge, cli: Cli, http: TestClient, scim_token: str
) -> None:
    assert get(http, scim_token).status_code == 200  # the lookup has loaded (no tokens)
    secret = cli.create("okta", "--expires", "90d")

    assert get(http, secret).status_code == 200  # a miss re-reads: no wait for a new token
    assert get(http, scim_token).status_code == 200  # config tokens keep working
    assert_refused(get(http, secret + "x"))
    assert_refused(http.get(USERS))

    table = cli("list").stdout
    assert "okta" in table
    listed = json.loads(cli("list", "--json").stdout)
    assert [entry["name"] for entry in listed] == ["okta"]
    assert listed[0]["expires_at"] is not None
    assert listed[0]["last_used_at"] is not None  # the uses above were recorded
    everything = table + json.dumps(listed) + json.dumps(audit_details(bridge))
    assert secret not in everything
    assert secret_digest(secret) not in everything
    assert ("token.create" in [action for action, _ in audit_details(bridge)]) is True

    again = cli("create", "--name", "okta", code=1)
    assert "exists" in again.output
    bad = cli("create", "--name", "x", "--expires", "ninety days", code=2)
    assert "e.g. 90d" in bad.output


def test_last_used_is_written_at_most_once_a_minute(
    bridge: Bridge, cli: Cli, http: TestClient
) -> None:
    secret = cli.create("entra")
    assert get(http, secret).status_code == 200
    first = json.loads(cli("list", "--json").stdout)[0]["last_used_at"]
    for _ in range(5):
        assert get(http, secret).status_code == 200
    assert json.loads(cli("list", "--json").stdout)[0]["last_used_at"] == first


def test_revoked_token_is_refused_within_the_cache_period(
    bridge: Bridge, cli: Cli, http: TestClient
) -> None:
    secret = cli.create("okta")
    assert get(http, secret).status_code == 200
    cli("revoke", "okta")
    waited = status_within(http, secret, 401, LOOKUP_TTL_SECONDS + 1)
    assert waited <= LOOKUP_TTL_SECONDS + 0.5
    assert_refused(get(http, secret))
    assert cli("list", "--json").stdout.strip() == "[]"
    assert "has no active secret" in cli("revoke", "okta", code=1).output
    assert "token.revoke" in [action for action, _ in audit_details(bridge)]
    # The name is free again.
    assert get(http, cli.create("okta")).status_code == 200


def test_expired_token_is_refused(bridge: Bridge, cli: Cli, http: TestClient) -> None:
    secret = cli.create("short", "--expires", "2s")
    assert get(http, secret).status_code == 200
    time.sleep(2.1)
    assert_refused(get(http, secret))
    assert "(expired)" in cli("list").stdout


def test_rotation_under_load_fails_no_request(bridge: Bridge, cli: Cli) -> None:
    old = cli.create("idp")
    current = {"token": old}
    results: list[tuple[str, int]] = []
    stop = threading.Event()

    def idp() -> None:
        with TestClient(bridge.app) as client:
            while not stop.is_set():
                token = current["token"]
                results.append((token, get(client, token).status_code))

    worker = threading.Thread(target=idp)
    worker.start()
    try:
        wait_for(lambda: len(results) >= 5)
        new = cli("rotate", "idp", "--grace", "1h").stdout.strip()
        assert new.startswith("gscim_") and new != old
        rotated = len(results)
        wait_for(lambda: len(results) >= rotated + 5)  # the old token still works
        current["token"] = new  # the IdP is switched
        switched = len(results)
        wait_for(lambda: len(results) >= switched + 5)
        listed = json.loads(cli("list", "--json").stdout)
        assert listed[0]["previous_until"] is not None
        cli("revoke", "idp", "--previous")
        revoked = len(results)
        wait_for(lambda: len(results) >= revoked + 5)
    finally:
        stop.set()
        worker.join(timeout=30)
    assert [status for _, status in results if status != 200] == []
    assert {token for token, _ in results[:switched]} == {old}
    assert {token for token, _ in results[switched + 1 :]} == {new}
    with TestClient(bridge.app) as client:
        status_within(client, old, 401, LOOKUP_TTL_SECONDS + 1)
        assert get(client, new).status_code == 200
    cli("revoke", "idp", "--previous", code=1)
    assert not any(old in detail or new in detail for _, detail in audit_details(bridge))


def wait_for(condition: Callable[[], bool], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_admin_token_file_is_reread_so_it_rotates_without_restart(
    bridge_factory: Callable[..., Bridge], gogs: RunningGogs, tmp_path: Path, scim_token: str
) -> None:
    with GogsClient(gogs.url, gogs.admin_token) as admin:
        second = admin.create_token_with_password(
            gogs.admin_user, gogs.admin_password, unique("rotated")
        )
    assert second != gogs.admin_token
    token_file = tmp_path / "gogs-admin-token"
    token_file.write_text(second + "\n")
    bridge = bridge_factory(gogs={"admin_token_file": str(token_file)})
    scim = TestClient(
        bridge.app,
        base_url="http://testserver/scim/v2",
        headers={"Authorization": f"Bearer {scim_token}"},
    )
    assert bridge.gogs.whoami().login == gogs.admin_user

    broken = "0" * 40
    token_file.write_text(broken)
    with pytest.raises(GogsAuthFailed) as failed:
        bridge.gogs.whoami()
    assert broken not in str(failed.value)
    assert scim.get("http://testserver/readyz").status_code == 503
    name = unique("rot")
    pending = scim.post("/Users", json={"schemas": [USER_SCHEMA], "userName": name})
    assert pending.status_code == 201
    assert pending.json()[GOGS_USER_SCHEMA]["syncState"] != "synced"
    assert broken not in pending.text

    token_file.write_text(second)
    assert bridge.gogs.whoami().login == gogs.admin_user
    assert scim.get("http://testserver/readyz").status_code == 200
    created = scim.post("/Users", json={"schemas": [USER_SCHEMA], "userName": unique("rot")})
    assert created.status_code == 201
    assert created.json()[GOGS_USER_SCHEMA]["syncState"] == "synced"


def test_serve_needs_a_token_and_sees_store_tokens_without_restart(
    gogs: RunningGogs, tmp_path: Path
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = tmp_path / "serve.toml"
    store = f"sqlite:///{tmp_path / 'store.db'}"
    config.write_text(
        f"[gogs]\nurl = {json.dumps(gogs.url)}\nadmin_token = {json.dumps(gogs.admin_token)}\n"
        f"admin_user = {json.dumps(gogs.admin_user)}\n"
        f"[database]\nurl = {json.dumps(store)}\n"
        f'[server]\nhost = "127.0.0.1"\nport = {port}\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOGS_SCIM_")}
    command = [sys.executable, "-m", "gogs_scim", "--config", str(config), "serve"]
    refused = subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert refused.returncode == 2
    assert "gogs-scim token create" in refused.stderr

    runner = CliRunner()

    def token(*args: str) -> str:
        result = runner.invoke(app, ["--config", str(config), "token", *args], env={})
        assert result.exit_code == 0, result.output
        return result.stdout.strip()

    first = token("create", "--name", "first")
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: _answers(f"{base}/healthz"), 30)
        with httpx.Client(base_url=f"{base}/scim/v2") as client:

            def status(secret: str) -> int:
                auth = {"Authorization": f"Bearer {secret}"}
                return client.get("/Users?count=1", headers=auth).status_code

            assert status(first) == 200
            second = token("create", "--name", "second")
            assert status(second) == 200  # created while serving: works at once
            token("revoke", "first")
            wait_for(lambda: status(first) == 401, LOOKUP_TTL_SECONDS + 1)
            assert status(second) == 200
    finally:
        server.terminate()
        _, errors = server.communicate(timeout=30)
    assert first not in errors.decode() and second not in errors.decode()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
