"""Shadow mode, the rehearsal: everything stored and planned, nothing changed in Gogs;
`gogs-scim plan` and the audit trail show the plan; apply mode then carries it out."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from starlette.testclient import TestClient
from typer.testing import CliRunner

from gogs_scim.bootstrap import Bridge
from gogs_scim.cli import app
from gogs_scim.config import TeamMapping
from gogs_scim.gogs.client import GogsClient
from gogs_scim.gogs.planning import PlanningClient, PlanningRefused
from gogs_scim.gogs.sandbox import RunningGogs
from gogs_scim.scim.schema import GOGS_USER_SCHEMA, USER_SCHEMA
from gogs_scim.store.tables import audit_events, converge_jobs
from tests.conftest import unique
from tests.integration.groups_support import (  # noqa: F401 (mapped is a fixture)
    Mapped,
    mapped_fixture,
    new_group,
    new_user,
    patch,
    rule,
    team_members,
)

pytestmark = pytest.mark.gogs

SHADOW = {"provisioning": {"mode": "shadow"}}
PASSWORD = "Correct-Horse-Battery-9"


def plan_config(
    path: Path, gogs: RunningGogs, store_url: str, *mappings: TeamMapping, **extra: str
) -> Path:
    """A config file like an admin's: the store `serve` uses, Gogs, the mappings."""
    lines = [
        "[gogs]",
        f'url = "{gogs.url}"',
        f'admin_token = "{gogs.admin_token}"',
        f'admin_user = "{gogs.admin_user}"',
        *(f'{key} = "{value}"' for key, value in extra.items()),
        "[database]",
        f'url = "{store_url}"',
        "[provisioning]",
        'mode = "shadow"',
    ]
    for mapping in mappings:
        lines += [
            "[[mappings]]",
            f'group = "{mapping.group}"',
            f'org = "{mapping.org}"',
            f'team = "{mapping.team}"',
            f"create_org = {str(mapping.create_org).lower()}",
        ]
    config = path / "gogs-scim.toml"
    config.write_text("\n".join(lines) + "\n")
    return config


def run_plan(config: Path, *args: str) -> tuple[int, str]:
    # Wide, as a saved plan is (a pipe or file gets 200 columns unless COLUMNS says).
    result = CliRunner().invoke(
        app, ["plan", "--config", str(config), *args], env={"COLUMNS": "250"}
    )
    return result.exit_code, result.output


def plan_json(config: Path) -> dict[str, Any]:
    code, output = run_plan(config, "--format", "json")
    assert code == 0, output
    body: dict[str, Any] = json.loads(output)
    return body


def gogs_methods(scim: TestClient) -> dict[str, float]:
    """Requests the bridge sent to Gogs, by HTTP method, from its own /metrics."""
    text = scim.get("http://testserver/metrics").text
    counted: dict[str, float] = {}
    for method, value in re.findall(
        r'^gogs_scim_gogs_calls_total\{method="(\w+)",status="\d+"\} (\S+)$', text, re.M
    ):
        counted[method] = counted.get(method, 0.0) + float(value)
    return counted


def plan_records(bridge: Bridge, resource_id: str | None = None) -> list[Any]:
    query = select(audit_events).where(audit_events.c.action.like("plan.%"))
    if resource_id is not None:
        query = query.where(audit_events.c.resource_id == resource_id)
    with bridge.engine.connect() as conn:
        return list(conn.execute(query.order_by(audit_events.c.seq)))


def sync_state(scim: TestClient, user_id: str) -> str:
    return str(scim.get(f"/Users/{user_id}").json()[GOGS_USER_SCHEMA]["syncState"])


def password_works(gogs: RunningGogs, login: str, password: str) -> bool:
    """The API with Basic auth (`GET /users/:u/tokens` takes only Basic)."""
    reply = httpx.get(f"{gogs.url}/api/v1/users/{login}/tokens", auth=(login, password), timeout=10)
    return reply.status_code == 200 and "json" in reply.headers.get("content-type", "")


def test_group_removal_rehearsed_in_shadow_then_applied(
    mapped: Mapped, gogs_client: GogsClient, gogs: RunningGogs, store_url: str, tmp_path: Path
) -> None:
    org, gname = unique("org"), unique("eng")
    mapping = rule(gname, org, "devs", create_org=True)
    production, live = mapped(mapping)
    alice, alice_login = new_user(live)
    bob, bob_login = new_user(live)
    gid = new_group(live, gname, [alice, bob])
    assert team_members(gogs_client, org, "devs") == {alice_login, bob_login}

    # The same store, now served by a bridge in shadow mode: the IdP deletes the group.
    rehearsal, shadow = mapped(mapping, **SHADOW)
    assert shadow.delete(f"/Groups/{gid}").status_code == 204
    assert shadow.get(f"/Groups/{gid}").status_code == 404  # accepted and stored
    assert team_members(gogs_client, org, "devs") == {alice_login, bob_login}
    methods = gogs_methods(shadow)
    assert methods.get("GET", 0) > 0
    assert {method for method, count in methods.items() if count} == {"GET"}
    # Planned once: the worker does not plan the same job again.
    assert rehearsal.reconciler.run_due() == 0

    config = plan_config(tmp_path, gogs, store_url, mapping)
    code, table = run_plan(config)
    assert code == 0, table
    assert "Mode: shadow" in table
    assert f"remove {alice_login} from team {org}/devs" in table
    assert f"remove {bob_login} from team {org}/devs" in table
    [pending] = plan_json(config)["pending"]
    assert pending["resource"] == f"{org}/devs"
    assert pending["reason"] == "group.delete"
    assert {(c["action"], c["target"]) for c in pending["calls"]} == {
        ("remove_team_member", f"{org}/devs:{alice_login}"),
        ("remove_team_member", f"{org}/devs:{bob_login}"),
    }
    status = CliRunner().invoke(app, ["status", "--config", str(config)], env={})
    assert status.exit_code == 0, status.output
    assert "Mode: shadow" in status.output
    # `plan` read Gogs and changed nothing either.
    assert team_members(gogs_client, org, "devs") == {alice_login, bob_login}

    records = plan_records(rehearsal)
    assert {(r.action, r.outcome, r.detail["target"]) for r in records} == {
        ("plan.remove_team_member", "planned", f"{org}/devs:{alice_login}"),
        ("plan.remove_team_member", "planned", f"{org}/devs:{bob_login}"),
    }
    assert all(r.detail["mode"] == "shadow" for r in records)
    assert all(r.request_id for r in records)  # tied to the IdP's DELETE

    # Back to apply: the queued change is carried out, and Gogs matches.
    assert production.reconciler.run_due() >= 1
    assert team_members(gogs_client, org, "devs") == set()
    code, table = run_plan(config)
    assert code == 0
    assert "Nothing pending" in table


def test_member_removal_in_shadow_plans_only_that_member(
    mapped: Mapped, gogs_client: GogsClient
) -> None:
    org, gname = unique("org"), unique("eng")
    mapping = rule(gname, org, "devs", create_org=True)
    production, live = mapped(mapping)
    alice, alice_login = new_user(live)
    bob, bob_login = new_user(live)
    gid = new_group(live, gname, [alice, bob])
    rehearsal, shadow = mapped(mapping, **SHADOW)
    patch(shadow, f"/Groups/{gid}", {"op": "remove", "path": f'members[value eq "{bob}"]'})
    assert team_members(gogs_client, org, "devs") == {alice_login, bob_login}
    [record] = plan_records(rehearsal)
    assert record.action == "plan.remove_team_member"
    assert record.detail["target"] == f"{org}/devs:{bob_login}"
    assert record.detail["groups"] == [gid]
    assert production.reconciler.run_due() >= 1
    assert team_members(gogs_client, org, "devs") == {alice_login}
    del alice


def test_user_created_in_shadow_gets_no_account_until_apply(
    mapped: Mapped, gogs_client: GogsClient, gogs: RunningGogs, store_url: str, tmp_path: Path
) -> None:
    production, _ = mapped()
    rehearsal, shadow = mapped(**SHADOW)
    login = unique("new")
    created = shadow.post(
        "/Users",
        json={"schemas": [USER_SCHEMA], "userName": f"{login}@example.com", "password": PASSWORD},
    )
    assert created.status_code == 201, created.text
    user_id = created.json()["id"]
    # Not in Gogs, and the IdP can see it is not (yet).
    assert created.json()[GOGS_USER_SCHEMA]["syncState"] == "pending"
    assert gogs_client.get_user(login) is None
    assert {m for m, n in gogs_methods(shadow).items() if n} == {"GET"}

    [record] = plan_records(rehearsal, user_id)
    assert (record.action, record.outcome, record.detail["target"]) == (
        "plan.create_user",
        "planned",
        login,
    )
    assert "password" in record.detail["note"]  # it was sent, and is not kept
    assert PASSWORD not in json.dumps(record.detail)

    code, table = run_plan(plan_config(tmp_path, gogs, store_url))
    assert code == 0, table
    assert f"create Gogs account {login}" in table
    assert PASSWORD not in table
    assert gogs_client.get_user(login) is None

    assert production.reconciler.run_due() >= 1
    account = gogs_client.get_user(login)
    assert account is not None and account.email == f"{login}@example.com"
    assert sync_state(shadow, user_id) == "synced"


@pytest.mark.parametrize("means", ["api-only", "database", "web-session"])
def test_deactivation_in_shadow_revokes_nothing_and_plans_every_step(
    mapped: Mapped,
    gogs_client: GogsClient,
    gogs: RunningGogs,
    store_url: str,
    tmp_path: Path,
    means: str,
) -> None:
    org, gname = unique("org"), unique("eng")
    mapping = rule(gname, org, "devs", create_org=True)
    extra = {
        "api-only": {},
        "database": {"database_url": f"sqlite:///{gogs.database_path}"},
        "web-session": {"admin_password": gogs.admin_password},
    }[means]
    sections = {"gogs": extra} if extra else {}
    production, live = mapped(mapping, **sections)
    login = unique("leo")
    created = live.post(
        "/Users",
        json={"schemas": [USER_SCHEMA], "userName": f"{login}@example.com", "password": PASSWORD},
    )
    assert created.status_code == 201, created.text
    user_id = created.json()["id"]
    new_group(live, gname, [user_id])
    gogs_client.add_user_key(login, "laptop", _public_key(tmp_path))
    with GogsClient(gogs.url, token="") as anonymous:
        token = anonymous.create_token_with_password(login, PASSWORD, "laptop")

    assert password_works(gogs, login, PASSWORD)
    rehearsal, shadow = mapped(mapping, **SHADOW, **sections)
    patch(shadow, f"/Users/{user_id}", {"op": "replace", "path": "active", "value": False})
    # Every way in still works: nothing was revoked.
    assert password_works(gogs, login, PASSWORD)
    assert [key.title for key in gogs_client.list_user_keys(login)] == ["laptop"]
    with GogsClient(gogs.url, token=token) as own:
        assert own.whoami().login == login
    assert team_members(gogs_client, org, "devs") == {login}
    # Signing in to the web UI is the one POST (the web session means only).
    signed_in = {"POST": 1.0} if means == "web-session" else {}
    assert {m: n for m, n in gogs_methods(shadow).items() if n and m != "GET"} == signed_in
    assert sync_state(shadow, user_id) == "pending"

    planned = {(r.action, r.detail["target"]) for r in plan_records(rehearsal)}
    assert ("plan.edit_user", login) in planned  # the password scramble
    assert ("plan.delete_key", f"{login}:laptop") in planned
    assert ("plan.remove_team_member", f"{org}/devs:{login}") in planned
    if means != "api-only":
        assert ("plan.prohibit_login", login) in planned
        assert ("plan.leave_org", f"{org}:{login}") in planned
    if means == "database":
        assert ("plan.delete_access_tokens", f"{login}:1") in planned
    config = plan_config(tmp_path, gogs, store_url, mapping, **extra)
    code, table = run_plan(config)
    assert code == 0, table
    assert f"update Gogs account {login}: a new password" in table
    assert f"delete SSH key 'laptop' of {login}" in table
    assert password_works(gogs, login, PASSWORD)
    history = CliRunner().invoke(
        app, ["audit", "show", login, "--config", str(config)], env={"COLUMNS": "250"}
    )
    assert history.exit_code == 0, history.output
    assert f"planned, not done (shadow mode): delete SSH key 'laptop' of {login}" in (
        history.output
    )

    assert production.reconciler.run_due() >= 1
    while production.reconciler.run_due():
        pass
    assert not password_works(gogs, login, PASSWORD)
    assert gogs_client.list_user_keys(login) == []
    assert team_members(gogs_client, org, "devs") == set()
    assert sync_state(shadow, user_id) == "synced"


def test_conflict_is_accepted_in_shadow_and_shown_in_the_plan(
    mapped: Mapped, gogs_client: GogsClient, gogs: RunningGogs, store_url: str, tmp_path: Path
) -> None:
    taken = unique("hand")
    gogs_client.create_user(
        login=taken, email=f"{taken}@elsewhere.example", full_name="By hand", password="h" * 24
    )
    rehearsal, shadow = mapped(**SHADOW)
    created = shadow.post(
        "/Users", json={"schemas": [USER_SCHEMA], "userName": f"{taken}@example.com"}
    )
    # Apply mode would answer 409; the rehearsal stores it and says so in the plan.
    assert created.status_code == 201, created.text
    [record] = plan_records(rehearsal, created.json()["id"])
    assert (record.action, record.outcome) == ("plan.failed", "conflict")
    assert "already exists" in record.detail["error"]
    code, table = run_plan(plan_config(tmp_path, gogs, store_url))
    assert code == 0
    assert "apply would refuse it" in table


def test_gogs_down_in_shadow_is_retried_not_marked_planned(
    mapped: Mapped, gogs_client: GogsClient
) -> None:
    rehearsal, shadow = mapped(gogs={"url": "http://127.0.0.1:9"}, **SHADOW)
    login = unique("late")
    created = shadow.post(
        "/Users", json={"schemas": [USER_SCHEMA], "userName": f"{login}@example.com"}
    )
    assert created.status_code == 201, created.text
    assert created.json()[GOGS_USER_SCHEMA]["syncState"] == "pending"
    [record] = plan_records(rehearsal, created.json()["id"])
    assert (record.action, record.outcome) == ("plan.failed", "unreachable")
    assert "retry_at" in record.detail
    with rehearsal.engine.connect() as conn:
        [job] = conn.execute(select(converge_jobs)).all()
    assert (job.attempts, job.planned_at) == (1, None)  # backing off, then planned again
    assert gogs_client.get_user(login) is None


def test_plan_in_apply_mode_and_its_errors(
    mapped: Mapped, gogs: RunningGogs, store_url: str, tmp_path: Path
) -> None:
    mapped()  # creates the store
    config = plan_config(tmp_path, gogs, store_url)
    config.write_text(config.read_text().replace('mode = "shadow"', 'mode = "apply"'))
    code, output = run_plan(config)
    assert code == 0
    assert "Mode: apply. Nothing pending" in output

    down = config.read_text().replace(gogs.url, "http://127.0.0.1:9")
    config.write_text(down)
    code, output = run_plan(config)
    assert code == 2
    assert "cannot read Gogs at http://127.0.0.1:9" in output
    assert gogs.admin_token not in output

    config.write_text(down.replace("[provisioning]", "[provisioning]\nbogus = 1"))
    code, output = run_plan(config)
    assert code == 2
    assert "configuration error" in output


def test_planning_client_records_writes_and_never_sends_one(
    gogs_client: GogsClient, gogs: RunningGogs
) -> None:
    planning = PlanningClient(gogs_client)
    login, repo = unique("plan"), unique("repo")
    planned = planning.create_user(
        login=login, email=f"{login}@example.com", full_name="P", password=PASSWORD
    )
    assert planned.login == login and planned.id < 0
    assert gogs_client.get_user(login) is None
    # A write the planner has no plan for is refused before anything is sent.
    sent = gogs_client.calls
    with pytest.raises(PlanningRefused):
        planning.create_repo(gogs.admin_user, repo, private=False)
    assert gogs_client.calls == sent
    assert repo not in {r.name for r in gogs_client.list_user_repos(gogs.admin_user)}
    [call] = planning.planned
    assert (call.action, call.target) == ("create_user", login)
    assert PASSWORD not in repr(planning.planned)


def _public_key(where: Path) -> str:
    key = where / "key"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
        check=True,
        capture_output=True,
    )
    return key.with_suffix(".pub").read_text().strip()
