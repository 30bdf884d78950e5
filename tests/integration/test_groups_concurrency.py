"""Many IdP requests at once on one group: nothing lost in the store or in Gogs,
and no Gogs call made twice."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from gogs_scim.gogs.client import GogsClient
from gogs_scim.scim.patch import PATCH_OP_SCHEMA
from tests.conftest import unique
from tests.integration.groups_support import (  # noqa: F401 (mapped is a fixture)
    Mapped,
    mapped_fixture,
    new_group,
    new_user,
    rule,
    team_members,
)

pytestmark = pytest.mark.gogs

CONCURRENT = 50


def test_fifty_concurrent_adds_all_land(mapped: Mapped, gogs_client: GogsClient) -> None:
    org, gname = unique("org"), unique("g")
    bridge, scim = mapped(rule(gname, org, "devs", create_org=True))
    database = bridge.engine.dialect.name
    users = dict(new_user(scim) for _ in range(CONCURRENT))
    gid = new_group(scim, gname, [])
    calls: Counter[str] = Counter()

    def count(method: str, path: str, _status: int) -> None:
        kind = "add_member" if method == "PUT" and "/members/" in path else f"{method} other"
        calls[kind] += 1

    # GogsClient's hook is set at construction; the bridge built its own client.
    bridge.gogs._on_call = count

    def add(user_id: str) -> int:
        response = scim.patch(
            f"/Groups/{gid}",
            params={"excludedAttributes": "members"},
            json={
                "schemas": [PATCH_OP_SCHEMA],
                "Operations": [{"op": "add", "path": "members", "value": [{"value": user_id}]}],
            },
        )
        return response.status_code

    with ThreadPoolExecutor(max_workers=CONCURRENT) as pool:
        statuses = list(pool.map(add, users))
    assert statuses == [200] * CONCURRENT
    # Whatever a request could not converge inline (its job was busy) is in the queue.
    while bridge.reconciler.run_due():
        pass

    group = scim.get(f"/Groups/{gid}").json()
    assert {m["value"] for m in group["members"]} == set(users)
    assert group["meta"]["version"] == f'W/"{CONCURRENT + 1}"'
    assert team_members(gogs_client, org, "devs") == {login.lower() for login in users.values()}
    # Each member was added to the team exactly once: no call repeated by a race.
    assert calls["add_member"] == CONCURRENT
    print(f"\nGogs calls for {CONCURRENT} concurrent adds ({database}): {dict(calls)}")


def test_fifty_concurrent_removes_empty_group_and_team(
    mapped: Mapped, gogs_client: GogsClient
) -> None:
    org, gname = unique("org"), unique("g")
    bridge, scim = mapped(rule(gname, org, "devs", create_org=True))
    database = bridge.engine.dialect.name
    users = dict(new_user(scim) for _ in range(CONCURRENT))
    gid = new_group(scim, gname, list(users))
    assert team_members(gogs_client, org, "devs") == {login.lower() for login in users.values()}
    calls: Counter[str] = Counter()

    def count(method: str, path: str, _status: int) -> None:
        if method == "DELETE" and "/members/" in path:
            kind = "remove_member"
        elif method == "GET":
            kind = "read"
        else:
            kind = f"{method} other"
        calls[kind] += 1

    bridge.gogs._on_call = count

    def remove(user_id: str) -> int:
        response = scim.patch(
            f"/Groups/{gid}",
            params={"excludedAttributes": "members"},
            json={
                "schemas": [PATCH_OP_SCHEMA],
                "Operations": [{"op": "remove", "path": f'members[value eq "{user_id}"]'}],
            },
        )
        return response.status_code

    with ThreadPoolExecutor(max_workers=CONCURRENT) as pool:
        statuses = list(pool.map(remove, users))
    assert statuses == [200] * CONCURRENT
    while bridge.reconciler.run_due():
        pass

    group = scim.get(f"/Groups/{gid}").json()
    assert "members" not in group
    assert group["meta"]["version"] == f'W/"{CONCURRENT + 1}"'
    assert team_members(gogs_client, org, "devs") == set()
    # Each member was removed from the team exactly once, and few converges did it: one
    # converge reads the org, its teams and the team's members (3 GETs), so a storm of
    # one converge per request would read 150 times. Requests that commit while the
    # team converges are taken up by the next run of the request holding the job
    # (observed: 2 to 8 converges in all).
    assert calls["remove_member"] == CONCURRENT
    assert calls["read"] <= 3 * (CONCURRENT // 3), dict(calls)
    assert set(calls) <= {"remove_member", "read"}, dict(calls)
    print(f"\nGogs calls for {CONCURRENT} concurrent removes ({database}): {dict(calls)}")
