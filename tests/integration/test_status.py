"""`gogs-scim status` tells an admin what Gogs still lacks, from the store alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from gogs_scim.bootstrap import Bridge
from gogs_scim.cli import app
from gogs_scim.scim.schema import GROUP_SCHEMA, USER_SCHEMA
from tests.conftest import unique

pytestmark = pytest.mark.gogs


def test_status_reports_states_unmapped_groups_teams_and_residual_access(
    bridge: Bridge, scim: TestClient, tmp_path: Path
) -> None:
    active = scim.post("/Users", json={"schemas": [USER_SCHEMA], "userName": unique("on")})
    leaver_name = unique("off")
    leaver = scim.post("/Users", json={"schemas": [USER_SCHEMA], "userName": leaver_name}).json()
    scim.patch(
        f"/Users/{leaver['id']}",
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "active", "value": False}],
        },
    )
    mapped = unique("Mapped")
    unmapped = unique("Unmapped")
    for name in (mapped, unmapped):
        created = scim.post(
            "/Groups",
            json={
                "schemas": [GROUP_SCHEMA],
                "displayName": name,
                "members": [{"value": active.json()["id"]}],
            },
        )
        assert created.status_code == 201, created.text
    config = tmp_path / "status.toml"
    config.write_text(
        f'[database]\nurl = "{bridge.settings.database.url}"\n'
        f'[[mappings]]\ngroup = "{mapped}"\norg = "acme"\nteam = "devs"\npermission = "write"\n'
        '[[mappings]]\ngroup = "Gone"\norg = "acme"\nteam = "old"\npermission = "read"\n'
    )
    runner = CliRunner()
    result = runner.invoke(app, ["status", "--config", str(config), "--json"], env={})
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["active_users"] == 1
    assert report["inactive_users"] == 1
    assert report["users_by_state"] == {"synced": 2}
    assert report["unmapped_groups"] == [unmapped]
    teams = {f"{t['org']}/{t['team']}": t["groups"] for t in report["teams"]}
    assert teams == {"acme/devs": [mapped], "acme/old": []}
    residual = {who: what for who, what in report["residual_access"]}
    assert [who for who in residual] == [f"{leaver_name} (Gogs {leaver_name})"]
    assert "access tokens" in residual[f"{leaver_name} (Gogs {leaver_name})"]

    table = runner.invoke(app, ["status", "--config", str(config)], env={})
    assert table.exit_code == 0
    assert "Residual access" in table.output
    assert "none match" in table.output
