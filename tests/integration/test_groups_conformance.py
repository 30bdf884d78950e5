"""The external compliance suite (scim2-tester) on the Groups endpoints (real Gogs)."""

from __future__ import annotations

import httpx2
import pytest
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

from gogs_scim.bootstrap import Bridge
from tests.live_server import serving

pytestmark = pytest.mark.gogs

# The server-root `/.search` (all resource types at once) is not a Groups endpoint; it
# is tracked with the Users conformance work (docs/conformance.md).
NOT_GROUPS = {"search_with_attributes"}


def test_group_checks_pass(bridge: Bridge, scim_token: str) -> None:
    with (
        serving(bridge.app) as base,
        httpx2.Client(
            base_url=f"{base}/scim/v2",
            headers={"Authorization": f"Bearer {scim_token}"},
            timeout=30,
        ) as http,
    ):
        client = SyncSCIMClient(http)
        client.discover()
        results = list(check_server(client, resource_types=["Group"]))
    group_checks = [r for r in results if getattr(r, "resource_type", None) == "Group"]
    ran = [r for r in group_checks if r.status != Status.SKIPPED]
    failed = [
        r
        for r in group_checks
        if r.status in (Status.ERROR, Status.CRITICAL) and r.title not in NOT_GROUPS
    ]
    assert len(ran) >= 10, f"too few Group checks ran: {len(ran)}"
    assert not failed, "\n".join(repr(r) for r in failed)
