"""GogsClient with a token provider: asked before every call, so a rotated admin token
is used at once (the real-Gogs proof is in tests/integration/test_tokens.py)."""

from __future__ import annotations

import httpx
import pytest

from gogs_scim.config import ConfigError
from gogs_scim.gogs.client import GogsAuthFailed, GogsClient

ME = {"id": 1, "login": "scim-admin", "full_name": "", "email": ""}


def test_provider_is_asked_before_every_call_and_errors_never_show_a_token() -> None:
    current = {"token": "a" * 40}
    sent: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.headers["Authorization"])
        if request.headers["Authorization"] == "token " + "b" * 40:
            return httpx.Response(401, json={"message": "bad token " + "b" * 40})
        return httpx.Response(200, json=ME)

    client = GogsClient(
        "http://gogs.test", lambda: current["token"], transport=httpx.MockTransport(handler)
    )
    client.whoami()
    current["token"] = "b" * 40
    with pytest.raises(GogsAuthFailed) as failed:
        client.whoami()
    assert "b" * 40 not in str(failed.value)
    current["token"] = "c" * 40
    client.whoami()
    assert sent == ["token " + t * 40 for t in "abc"]


def test_an_unreadable_token_file_is_an_auth_failure_sent_nowhere() -> None:
    def provider() -> str:
        raise ConfigError("gogs.admin_token_file: cannot read /run/token: Permission denied")

    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json=ME)

    client = GogsClient("http://gogs.test", provider, transport=httpx.MockTransport(handler))
    with pytest.raises(GogsAuthFailed, match="cannot read /run/token"):
        client.whoami()
    assert sent == []
