"""GogsClient's mapping of replies to errors (pure logic: a fake transport suffices)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from gogs_scim.gogs.client import (
    GogsAuthFailed,
    GogsClient,
    GogsError,
    GogsNotFound,
    GogsRejected,
    GogsUnreachable,
)

TOKEN = "a" * 40


def _client(handler: Callable[[httpx.Request], httpx.Response]) -> GogsClient:
    return GogsClient("http://gogs.test/", TOKEN, transport=httpx.MockTransport(handler))


def test_sends_the_token_header_to_api_v1() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": 1, "login": "x", "full_name": "", "email": ""})

    _client(handler).whoami()
    assert seen[0].headers["Authorization"] == f"token {TOKEN}"
    assert str(seen[0].url) == "http://gogs.test/api/v1/user"


def test_html_reply_is_unreachable_even_with_200() -> None:
    # What Gogs sends to a prohibit_login account for every API call.
    client = _client(lambda _: httpx.Response(200, html="<html>prohibit login</html>"))
    with pytest.raises(GogsUnreachable) as caught:
        client.whoami()
    assert caught.value.status == 200
    assert "HTML" in caught.value.message


def test_binding_errors_are_summarised() -> None:
    body = [
        {"fieldNames": ["UserName"], "classification": "AlphaDashDotError", "message": ""},
        {"fieldNames": ["Email"], "classification": "RequiredError", "message": "Required"},
    ]
    client = _client(lambda _: httpx.Response(422, json=body))
    with pytest.raises(GogsRejected) as caught:
        client.create_user(login="a b", email="", full_name="", password="p")
    assert caught.value.status == 422
    assert "UserName: AlphaDashDotError" in caught.value.message
    assert "Email: Required" in caught.value.message


def test_message_422_is_kept() -> None:
    body = {"message": "user already exists [name: bob]", "url": "https://github.com/gogs/docs-api"}
    client = _client(lambda _: httpx.Response(422, json=body))
    with pytest.raises(GogsRejected, match=r"user already exists \[name: bob\]"):
        client.create_user(login="bob", email="b@example.invalid", full_name="", password="p")


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (401, GogsAuthFailed),
        (403, GogsAuthFailed),
        (404, GogsNotFound),
        (422, GogsRejected),
        (500, GogsUnreachable),
        (503, GogsUnreachable),
        (415, GogsError),
    ],
)
def test_status_mapping(status: int, error: type[GogsError]) -> None:
    client = _client(lambda _: httpx.Response(status))
    with pytest.raises(error) as caught:
        client.delete_user("bob")
    assert type(caught.value) is error
    assert caught.value.status == status


def test_get_user_404_is_none() -> None:
    assert _client(lambda _: httpx.Response(404)).get_user("ghost") is None


def test_connection_error_is_unreachable_and_counted() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    seen: list[tuple[str, str, int]] = []
    client = GogsClient(
        "http://gogs.test",
        TOKEN,
        transport=httpx.MockTransport(handler),
        on_call=lambda *c: seen.append(c),
    )
    with pytest.raises(GogsUnreachable) as caught:
        client.whoami()
    assert caught.value.status == 0
    assert client.calls == 1
    assert seen == [("GET", "/user", 0)]


def test_a_reply_echoing_the_token_is_scrubbed() -> None:
    client = _client(lambda _: httpx.Response(400, json={"message": f"bad token {TOKEN}"}))
    with pytest.raises(GogsError) as caught:
        client.whoami()
    assert TOKEN not in str(caught.value)
    assert TOKEN not in repr(client)


def test_basic_auth_replaces_the_token_for_token_creation() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json={"name": "n", "sha1": "b" * 40})

    assert _client(handler).create_token_with_password("bob", "pw", "n") == "b" * 40
    assert seen[0].headers["Authorization"].startswith("Basic ")
