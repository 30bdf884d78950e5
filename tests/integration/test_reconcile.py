"""`gogs-scim reconcile`: drift between the IdP and a real Gogs, reported and repaired."""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient
from typer.testing import CliRunner, Result

from gogs_scim.bootstrap import Bridge
from gogs_scim.cli import app
from gogs_scim.gogs.client import GogsClient
from gogs_scim.gogs.sandbox import RunningGogs
from gogs_scim.scim.patch import PATCH_OP_SCHEMA
from gogs_scim.scim.schema import GOGS_GROUP_SCHEMA, GOGS_USER_SCHEMA
from gogs_scim.store import reconcile_runs
from gogs_scim.store.tables import audit_events
from gogs_scim.store.tables import reconcile_runs as runs_table
from tests.conftest import unique
from tests.integration.groups_support import (  # noqa: F401 (mapped is a fixture)
    Mapped,
    mapped_fixture,
    new_group,
    new_user,
    rule,
    team_members,
)
from tests.integration.test_deprovisioning import ssh_key

pytestmark = pytest.mark.gogs


def _toml(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, bool) else str(value).lower()


def write_config(bridge: Bridge, gogs: RunningGogs, where: Path, **provisioning: Any) -> Path:
    """The bridge's settings as a config file, for the CLI (as an admin would run it)."""
    settings = bridge.settings
    lines = [
        "[gogs]",
        f"url = {_toml(gogs.url)}",
        f"admin_token = {_toml(gogs.admin_token)}",
        f"admin_user = {_toml(gogs.admin_user)}",
        "[database]",
        f"url = {_toml(settings.database.url)}",
        "[provisioning]",
        *(f"{key} = {_toml(value)}" for key, value in provisioning.items()),
    ]
    for mapping in settings.mappings:
        lines.append("[[mappings]]")
        lines.extend(f"{key} = {_toml(value)}" for key, value in mapping.model_dump().items())
    path = where / "reconcile.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def reconcile(config: Path, *args: str) -> Result:
    # Wide, so that no table cell is wrapped mid-login.
    return CliRunner().invoke(
        app, ["reconcile", "--config", str(config), *args], env={"COLUMNS": "300"}
    )


def drift_of(config: Path) -> tuple[int, list[dict[str, Any]]]:
    result = reconcile(config, "--format", "json")
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.stdout)["drift"]


def audit(bridge: Bridge, action: str) -> list[Any]:
    with bridge.engine.connect() as conn:
        return list(
            conn.execute(
                select(audit_events)
                .where(audit_events.c.action == action)
                .order_by(audit_events.c.seq)
            )
        )


def test_hand_added_member_of_exclusive_team_is_drift_and_apply_removes_it(
    mapped: Mapped, gogs_client: GogsClient, gogs: RunningGogs, tmp_path: Path
) -> None:
    org, gname = unique("org"), unique("g")
    bridge, scim = mapped(rule(gname, org, "devs", create_org=True, exclusive=True))
    alice, alice_login = new_user(scim)
    _, bob_login = new_user(scim)
    new_group(scim, gname, [alice])
    config = write_config(bridge, gogs, tmp_path)
    assert reconcile(config).exit_code == 0

    [team] = [t for t in gogs_client.list_org_teams(org) if t.name == "devs"]
    gogs_client.add_team_member(team.id, bob_login)  # by hand, in Gogs

    table = reconcile(config)
    assert table.exit_code == 1, table.output
    assert bob_login in table.stdout
    assert "unexpected member" in table.stdout
    code, drift = drift_of(config)
    assert code == 1
    assert [(d["subject"], d["what"], d["gogs"], d["repair"]) for d in drift] == [
        (f"{org}/devs", "unexpected member", f"{bob_login}: member", "team")
    ]
    assert team_members(gogs_client, org, "devs") == {alice_login, bob_login}  # only read

    applied = reconcile(config, "--apply")
    assert applied.exit_code == 0, applied.output
    assert "1 repaired, 0 left" in applied.stdout
    assert team_members(gogs_client, org, "devs") == {alice_login}
    [repair] = audit(bridge, "reconcile.repair")
    assert repair.outcome == "ok"
    assert repair.resource_type == "Team"
    assert repair.detail["subject"] == f"{org}/devs"
    assert repair.detail["gogs_had"] == f"{bob_login}: member"
    assert [r.detail["drift_left"] for r in audit(bridge, "reconcile.run")] == [0, 1, 1, 0]

    again = reconcile(config)
    assert again.exit_code == 0, again.output
    assert "No drift" in again.stdout


def test_hand_added_member_of_non_exclusive_team_is_not_drift(
    mapped: Mapped, gogs_client: GogsClient, gogs: RunningGogs, tmp_path: Path
) -> None:
    org, gname = unique("org"), unique("g")
    bridge, scim = mapped(rule(gname, org, "devs", create_org=True, exclusive=False))
    alice, alice_login = new_user(scim)
    _, bob_login = new_user(scim)
    new_group(scim, gname, [alice])
    [team] = [t for t in gogs_client.list_org_teams(org) if t.name == "devs"]
    gogs_client.add_team_member(team.id, bob_login)

    config = write_config(bridge, gogs, tmp_path)
    assert drift_of(config) == (0, [])
    assert reconcile(config, "--apply").exit_code == 0
    assert team_members(gogs_client, org, "devs") == {alice_login, bob_login}


def test_email_changed_in_gogs_is_drift_and_repaired(
    mapped: Mapped, gogs_client: GogsClient, gogs: RunningGogs, tmp_path: Path
) -> None:
    bridge, scim = mapped()
    _, login = new_user(scim, name={"givenName": "Ada", "familyName": "Lovelace & Co"})
    gogs_client.edit_user(login, email=f"{login}@elsewhere.test", full_name="Ada Lovelace & Co")
    config = write_config(bridge, gogs, tmp_path)

    code, drift = drift_of(config)
    assert code == 1
    # The `&` Gogs reads back HTML-escaped is no difference; the email is.
    assert [(d["subject"], d["what"], d["idp"], d["gogs"]) for d in drift] == [
        (login, "email", f"{login}@example.com", f"{login}@elsewhere.test")
    ]
    assert reconcile(config, "--apply").exit_code == 0
    account = gogs_client.get_user(login)
    assert account is not None and account.email == f"{login}@example.com"
    assert drift_of(config) == (0, [])
    history = CliRunner().invoke(
        app, ["audit", "show", login, "--config", str(config)], env={"COLUMNS": "300"}
    )
    assert history.exit_code == 0, history.output
    assert f"reconcile: email repaired (IdP: {login}@example.com; Gogs had: " in history.stdout


def test_ssh_key_added_to_a_deprovisioned_user_is_drift_and_deleted(
    mapped: Mapped, gogs_client: GogsClient, gogs: RunningGogs, tmp_path: Path
) -> None:
    bridge, scim = mapped()
    user_id, login = new_user(scim)
    response = scim.patch(
        f"/Users/{user_id}",
        json={
            "schemas": [PATCH_OP_SCHEMA],
            "Operations": [{"op": "replace", "path": "active", "value": False}],
        },
    )
    assert response.status_code == 200, response.text
    key = ssh_key(tmp_path)
    gogs_client.add_user_key(login, "added-by-hand", key.with_suffix(".pub").read_text())
    config = write_config(bridge, gogs, tmp_path)

    code, drift = drift_of(config)
    assert code == 1
    assert [(d["subject"], d["what"], d["gogs"]) for d in drift] == [
        (login, "ssh key", "added-by-hand")
    ]
    assert reconcile(config, "--apply").exit_code == 0
    assert gogs_client.list_user_keys(login) == []
    [repair] = audit(bridge, "reconcile.repair")
    assert (repair.resource_id, repair.detail["what"]) == (user_id, "ssh key")


def test_apply_is_refused_in_shadow_mode(
    mapped: Mapped, gogs_client: GogsClient, gogs: RunningGogs, tmp_path: Path
) -> None:
    bridge, scim = mapped()
    _, login = new_user(scim)
    gogs_client.edit_user(login, email=f"{login}@elsewhere.test", full_name="")
    config = write_config(bridge, gogs, tmp_path, mode="shadow")

    refused = reconcile(config, "--apply")
    assert refused.exit_code == 2
    assert "shadow" in refused.output and "refused" in refused.output
    account = gogs_client.get_user(login)
    assert account is not None and account.email == f"{login}@elsewhere.test"
    assert reconcile(config).exit_code == 1  # reporting is allowed


def test_unreachable_gogs_exits_2_without_a_traceback(
    mapped: Mapped, gogs: RunningGogs, tmp_path: Path
) -> None:
    bridge, _ = mapped()
    config = write_config(bridge, gogs, tmp_path)
    config.write_text(config.read_text().replace(gogs.url, "http://127.0.0.1:9"))
    result = reconcile(config)
    assert result.exit_code == 2
    assert "cannot read Gogs" in result.output
    assert "Traceback" not in result.output


def readyz(bridge: Bridge) -> tuple[int, dict[str, Any]]:
    with TestClient(bridge.app) as client:
        response = client.get("/readyz")
    return response.status_code, response.json()


def metric(bridge: Bridge, name: str) -> float | None:
    with TestClient(bridge.app) as client:
        text = client.get("/metrics").text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def test_readiness_and_metrics_turn_red_when_reconciliation_is_older_than_the_window(
    mapped: Mapped, gogs_client: GogsClient
) -> None:
    bridge, scim = mapped(reconcile={"interval": 0, "audit_window": "3s"})
    _, login = new_user(scim)
    status, report = readyz(bridge)
    assert status == 200, report  # a new bridge is not red before the window has passed
    assert report["reconcile"]["last_complete_at"] is None
    time.sleep(3.2)
    status, report = readyz(bridge)
    assert status == 503 and report["reconcile"]["stale"] is True
    assert metric(bridge, "gogs_scim_reconcile_stale") == 1

    gogs_client.edit_user(login, email=f"{login}@elsewhere.test", full_name="")
    assert bridge.reconcile is not None
    report_run = bridge.reconcile.run(apply=False, trigger="test")
    assert len(report_run.left.items) == 1
    status, report = readyz(bridge)
    assert status == 200, report
    assert report["reconcile"]["drift"] == 1
    assert metric(bridge, "gogs_scim_reconcile_stale") == 0
    assert metric(bridge, "gogs_scim_drift_items") == 1
    seconds = metric(bridge, "gogs_scim_seconds_since_last_reconcile")
    assert seconds is not None and seconds < 3

    time.sleep(3.2)
    assert readyz(bridge)[0] == 503


def test_serve_reconciles_on_its_schedule(
    mapped: Mapped, gogs_client: GogsClient, gogs: RunningGogs
) -> None:
    org, gname = unique("org"), unique("g")
    bridge, scim = mapped(
        rule(gname, org, "devs", create_org=True),
        reconcile={"interval": "1s", "audit_window": "1h"},
    )
    alice, alice_login = new_user(scim)
    _, bob_login = new_user(scim)
    new_group(scim, gname, [alice])
    [team] = [t for t in gogs_client.list_org_teams(org) if t.name == "devs"]
    gogs_client.add_team_member(team.id, bob_login)

    bridge.start()
    deadline = time.monotonic() + 30
    while team_members(gogs_client, org, "devs") != {alice_login}:
        assert time.monotonic() < deadline, "the scheduled reconciliation did not run"
        time.sleep(0.5)
    with bridge.engine.connect() as conn:
        triggers = {row.trigger for row in conn.execute(select(runs_table))}
    assert triggers == {"schedule"}
    assert audit(bridge, "reconcile.repair")[0].actor == "reconcile:schedule"


def test_one_replica_takes_each_scheduled_run(mapped: Mapped) -> None:
    bridge, _ = mapped()
    now = datetime.now(UTC)
    lease = timedelta(minutes=5)

    def take(worker: str, at: datetime) -> bool:
        with bridge.engine.begin() as conn:
            return reconcile_runs.take_schedule(
                conn, worker=worker, now=at, lease=lease, first_run_at=now
            )

    assert take("a", now) is True
    assert take("b", now) is False  # held by a
    with bridge.engine.begin() as conn:
        reconcile_runs.release_schedule(conn, worker="a", next_run_at=now + timedelta(hours=1))
    assert take("b", now + timedelta(minutes=1)) is False  # not due
    assert take("b", now + timedelta(hours=1)) is True
    assert take("a", now + timedelta(hours=1, minutes=10)) is True  # b's lease ran out


def test_every_account_is_read_in_one_gogs_call(
    mapped: Mapped, gogs_client: GogsClient, gogs: RunningGogs
) -> None:
    """Gogs fact: `/users/search?q=%` lists every account, with emails for a token,
    prohibited ones too (else each missing login would cost a GET)."""
    bridge, scim = mapped()
    logins = [new_user(scim)[1] for _ in range(3)]
    gogs_client.edit_user(logins[1], email=f"{logins[1]}@elsewhere.test", full_name="")
    gogs_prohibit_login(gogs, logins[2], True)
    assert bridge.reconcile is not None
    before = bridge.gogs.calls
    report = bridge.reconcile.run(apply=False, trigger="test")
    assert bridge.gogs.calls - before == 1
    assert [(item.subject, item.what) for item in report.found.items] == [(logins[1], "email")]


def gogs_prohibit_login(gogs: RunningGogs, login: str, value: bool) -> None:
    with sqlite3.connect(gogs.database_path) as conn:
        conn.execute(
            "UPDATE user SET prohibit_login = ? WHERE lower_name = ?", (value, login.lower())
        )


def test_prohibit_login_set_by_hand_on_an_active_user_is_repaired(
    mapped: Mapped, gogs: RunningGogs, gogs_client: GogsClient
) -> None:
    """With the database means: Gogs's API cannot show the flag, the database can."""
    bridge, scim = mapped(gogs={"database_url": f"sqlite:///{gogs.database_path}"})
    user_id, login = new_user(scim)
    gogs_prohibit_login(gogs, login, True)
    assert bridge.reconcile is not None

    report = bridge.reconcile.run(apply=True, trigger="test")
    assert [(i.subject, i.what, i.gogs) for i in report.found.items] == [
        (login, "prohibit_login", "on")
    ]
    assert report.clean and len(report.repaired) == 1
    with sqlite3.connect(gogs.database_path) as conn:
        [(prohibited,)] = conn.execute(
            "SELECT prohibit_login FROM user WHERE lower_name = ?", (login.lower(),)
        ).fetchall()
    assert not prohibited
    assert scim.get(f"/Users/{user_id}").json()[GOGS_USER_SCHEMA]["syncState"] == "synced"


def test_scheduled_runs_only_report_in_shadow_mode(mapped: Mapped, gogs_client: GogsClient) -> None:
    applying, scim = mapped()
    _, login = new_user(scim)
    gogs_client.edit_user(login, email=f"{login}@elsewhere.test", full_name="")
    shadow, _ = mapped(
        database_url=applying.settings.database.url,
        provisioning={"mode": "shadow"},
        reconcile={"interval": "1s"},
    )
    shadow.start()
    deadline = time.monotonic() + 30
    while True:
        with shadow.engine.connect() as conn:
            done = conn.execute(select(runs_table).where(runs_table.c.complete.is_(True))).first()
        if done is not None:
            break
        assert time.monotonic() < deadline, "no scheduled run completed"
        time.sleep(0.3)
    assert (done.trigger, done.applied, done.drift_left) == ("schedule", False, 1)
    account = gogs_client.get_user(login)
    assert account is not None and account.email == f"{login}@elsewhere.test"


def test_status_shows_the_last_complete_reconciliation(
    mapped: Mapped, gogs_client: GogsClient, gogs: RunningGogs, tmp_path: Path
) -> None:
    org, gname = unique("org"), unique("g")
    bridge, scim = mapped(rule(gname, org, "devs", create_org=True, exclusive=True))
    _, bob_login = new_user(scim)
    new_group(scim, gname, [])
    config = write_config(bridge, gogs, tmp_path)

    def status() -> str:
        result = CliRunner().invoke(
            app, ["status", "--config", str(config)], env={"COLUMNS": "300"}
        )
        assert result.exit_code == 0, result.output
        # The console may wrap a long line: compare words, not line breaks.
        return " ".join(result.stdout.split())

    assert "Last complete reconciliation: never" in status()
    [team] = [t for t in gogs_client.list_org_teams(org) if t.name == "devs"]
    gogs_client.add_team_member(team.id, bob_login)
    assert reconcile(config).exit_code == 1
    assert "min ago, 1 difference(s) left; within the audit window 1 day" in status()
    assert reconcile(config, "--apply").exit_code == 0
    assert "0 difference(s) left" in status()


def test_apply_settles_a_group_no_rule_maps_any_more(
    mapped: Mapped, gogs: RunningGogs, tmp_path: Path
) -> None:
    gname = unique("g")
    missing_org = unique("nosuchorg")  # create_org = false: the team cannot exist
    bridge, scim = mapped(rule(gname, missing_org, "devs"))
    user_id, _ = new_user(scim)
    group_id = new_group(scim, gname, [user_id])

    def group_state(client: TestClient) -> tuple[str, list[Any]]:
        ext = client.get(f"/Groups/{group_id}").json()[GOGS_GROUP_SCHEMA]
        return ext["syncState"], ext["teams"]

    assert group_state(scim)[0] == "error"
    # The rule goes from the configuration: the group maps to nothing now ...
    unmapped, scim_after = mapped(database_url=bridge.settings.database.url)
    assert group_state(scim_after) == ("error", [])  # ... but its state is stale
    config = write_config(unmapped, gogs, tmp_path)
    assert reconcile(config).exit_code == 0  # a read-only run changes nothing
    assert group_state(scim_after) == ("error", [])
    assert reconcile(config, "--apply").exit_code == 0
    assert group_state(scim_after) == ("synced", [])
    [*_, last] = audit(unmapped, "reconcile.run")
    assert last.detail["groups_settled"] == 1
