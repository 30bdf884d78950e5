"""The audit trail: what SCIM writes record, `audit verify` catching tampering,
`audit export` and `audit show`."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, delete, insert, select, update
from starlette.testclient import TestClient
from typer.testing import CliRunner

from gogs_scim.bootstrap import Bridge
from gogs_scim.cli import app
from gogs_scim.scim.schema import GOGS_USER_SCHEMA, GROUP_SCHEMA, USER_SCHEMA
from gogs_scim.store.tables import audit_events
from tests.conftest import unique

pytestmark = pytest.mark.gogs

PASSWORD = "Audit-Secret-Pw-9f3e2c"
# The name config.py gives the one token from GOGS_SCIM_SCIM_TOKEN (the fixtures).
ACTOR = "env"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def _config(bridge: Bridge, tmp_path: Path) -> Path:
    config = tmp_path / "audit.toml"
    config.write_text(f'[database]\nurl = "{bridge.settings.database.url}"\n')
    return config


def _cli(config: Path, *args: str) -> Any:
    return CliRunner().invoke(app, [*args[:2], "--config", str(config), *args[2:]], env={})


def _writes(scim: TestClient) -> dict[str, Any]:
    """A few SCIM writes; the ids and request ids they produced."""
    name = unique("aud")
    created = scim.post(
        "/Users", json={"schemas": [USER_SCHEMA], "userName": name, "password": PASSWORD}
    )
    assert created.status_code == 201, created.text
    user = created.json()
    other = scim.post("/Users", json={"schemas": [USER_SCHEMA], "userName": unique("aud")})
    assert other.status_code == 201, other.text
    group_name = unique("AuditGroup")
    group = scim.post(
        "/Groups",
        json={
            "schemas": [GROUP_SCHEMA],
            "displayName": group_name,
            "members": [{"value": user["id"]}],
        },
    )
    assert group.status_code == 201, group.text
    patched = scim.patch(
        f"/Users/{user['id']}",
        json={
            "schemas": [PATCH_OP],
            "Operations": [
                {"op": "replace", "path": "active", "value": False},
                {"op": "replace", "path": "password", "value": PASSWORD + "-2"},
            ],
        },
    )
    assert patched.status_code == 200, patched.text
    return {
        "user": user,
        "user_name": name,
        "group_name": group_name,
        "group_id": group.json()["id"],
        "create_request": created.headers["X-Request-Id"],
        "patch_request": patched.headers["X-Request-Id"],
        "group_request": group.headers["X-Request-Id"],
    }


def _rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(select(audit_events).order_by("seq"))]


def _verify(config: Path) -> tuple[int, str]:
    result = _cli(config, "audit", "verify")
    return result.exit_code, result.output.strip()


def test_writes_are_recorded_and_verify_names_any_tampered_record(
    bridge: Bridge, scim: TestClient, tmp_path: Path
) -> None:
    made = _writes(scim)
    config = _config(bridge, tmp_path)
    rows = _rows(bridge.engine)
    code, output = _verify(config)
    assert (code, output) == (0, f"{len(rows)} records, chain intact")

    # What was recorded: the SCIM write with its token name and before/after, and the
    # Gogs calls it caused, all under the request's id.
    create = [r for r in rows if r["request_id"] == made["create_request"]]
    assert create[0]["action"] == "scim.user.create"
    assert create[0]["actor"] == ACTOR
    assert create[0]["detail"]["after"]["userName"] == made["user_name"]
    assert any(r["action"].startswith("gogs.") for r in create)
    patch = [r for r in rows if r["request_id"] == made["patch_request"]]
    assert patch[0]["action"] == "scim.user.patch"
    assert patch[0]["detail"]["before"].get("active", True) is True
    assert patch[0]["detail"]["after"]["active"] is False
    group = [r for r in rows if r["request_id"] == made["group_request"]]
    assert group[0]["action"] == "scim.group.create"
    assert group[0]["detail"]["members_added"] == [made["user"]["id"]]

    engine = bridge.engine
    assert len(rows) >= 5
    middle = rows[2]
    last = rows[-1]

    # 1. an edited detail
    with engine.begin() as conn:
        conn.execute(
            update(audit_events)
            .where(audit_events.c.seq == middle["seq"])
            .values(detail={**middle["detail"], "note": "edited"})
        )
    code, output = _verify(config)
    assert code == 1
    assert f"record {middle['seq']}:" in output
    assert "changed" in output
    assert len(output.splitlines()) == 1
    with engine.begin() as conn:
        conn.execute(
            update(audit_events)
            .where(audit_events.c.seq == middle["seq"])
            .values(detail=middle["detail"])
        )
    assert _verify(config)[0] == 0

    # 2. a deleted record in the middle: the one after it no longer follows
    with engine.begin() as conn:
        conn.execute(delete(audit_events).where(audit_events.c.seq == middle["seq"]))
    code, output = _verify(config)
    assert code == 1
    assert f"record {rows[3]['seq']}:" in output
    with engine.begin() as conn:
        conn.execute(insert(audit_events).values(**middle))
    assert _verify(config)[0] == 0

    # 3. two records swapped (reordered)
    first, second = rows[1], rows[3]
    columns = {k: v for k, v in first.items() if k != "seq"}
    with engine.begin() as conn:
        conn.execute(
            update(audit_events)
            .where(audit_events.c.seq == first["seq"])
            .values(**{k: v for k, v in second.items() if k != "seq"})
        )
        conn.execute(
            update(audit_events).where(audit_events.c.seq == second["seq"]).values(**columns)
        )
    code, output = _verify(config)
    assert code == 1
    assert f"record {first['seq']}:" in output
    with engine.begin() as conn:
        for row in (first, second):
            conn.execute(
                update(audit_events)
                .where(audit_events.c.seq == row["seq"])
                .values(**{k: v for k, v in row.items() if k != "seq"})
            )
    assert _verify(config)[0] == 0

    # 4. the last record deleted: the chain left is valid, the head is not
    with engine.begin() as conn:
        conn.execute(delete(audit_events).where(audit_events.c.seq == last["seq"]))
    code, output = _verify(config)
    assert code == 1
    assert f"record {last['seq']}" in output
    assert "missing" in output


def test_export_carries_request_ids_and_never_a_secret(
    bridge: Bridge, scim: TestClient, scim_token: str, tmp_path: Path
) -> None:
    made = _writes(scim)
    config = _config(bridge, tmp_path)
    secrets = [PASSWORD, scim_token, bridge.settings.require_gogs()[1]]

    jsonl = _cli(config, "audit", "export", "--since", "7d", "--format", "jsonl")
    assert jsonl.exit_code == 0, jsonl.output
    records = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert len(records) == len(_rows(bridge.engine))
    request_ids = {r["request_id"] for r in records}
    assert {made["create_request"], made["patch_request"], made["group_request"]} <= request_ids
    assert {"seq", "at", "actor", "action", "detail", "hash", "prev_hash"} <= set(records[0])

    as_csv = _cli(config, "audit", "export", "--format", "csv")
    assert as_csv.exit_code == 0, as_csv.output
    table = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [int(r["seq"]) for r in table] == [r["seq"] for r in records]
    assert json.loads(table[0]["detail"]) == records[0]["detail"]
    assert made["patch_request"] in {r["request_id"] for r in table}

    for output in (jsonl.stdout, as_csv.stdout):
        for secret in secrets:
            assert secret not in output
    assert "Audit-Secret" not in jsonl.stdout + as_csv.stdout

    later = _cli(config, "audit", "export", "--since", "2999-01-01T00:00:00Z")
    assert later.exit_code == 0
    assert later.stdout == ""
    bad = _cli(config, "audit", "export", "--since", "last tuesday")
    assert bad.exit_code == 2


def test_show_gives_one_users_history_with_the_groups_that_named_them(
    bridge: Bridge, scim: TestClient, tmp_path: Path
) -> None:
    made = _writes(scim)
    config = _config(bridge, tmp_path)
    removed = scim.patch(
        f"/Groups/{made['group_id']}",
        json={
            "schemas": [PATCH_OP],
            "Operations": [{"op": "remove", "path": f'members[value eq "{made["user"]["id"]}"]'}],
        },
    )
    assert removed.status_code in (200, 204), removed.text
    login = made["user"][GOGS_USER_SCHEMA]["login"]
    for who in (made["user_name"], made["user"]["id"], login.upper()):
        result = CliRunner().invoke(
            app, ["audit", "show", who, "--config", str(config)], env={"COLUMNS": "250"}
        )
        assert result.exit_code == 0, result.output
        assert made["user"]["id"] in result.output
        assert "scim.user.create" in result.output
        assert "deactivated" in result.output
        assert f"added to group '{made['group_name']}'" in result.output
        assert f"removed from group '{made['group_name']}'" in result.output
        assert ACTOR in result.output
        assert PASSWORD not in result.output
    unknown = _cli(config, "audit", "show", "nobody-" + unique())
    assert unknown.exit_code == 1
