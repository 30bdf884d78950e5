"""Token durations (`--expires 90d`, `--grace 24h`) and how the verifier matches tokens."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gogs_scim.api.auth import KnownToken, TokenVerifier, token_digest
from gogs_scim.durations import parse_duration
from gogs_scim.service.tokens import TOKEN_PREFIX, new_secret, secret_digest


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90d", timedelta(days=90)),
        ("24h", timedelta(hours=24)),
        ("30m", timedelta(minutes=30)),
        ("45s", timedelta(seconds=45)),
        ("2w", timedelta(weeks=2)),
        ("1d12h", timedelta(days=1, hours=12)),
        (" 24H ", timedelta(hours=24)),
        ("0m", timedelta()),
    ],
)
def test_durations_parse(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "90", "d", "90x", "1.5h", "-3d", "24 h", "h24", "1d x"])
def test_bad_durations_are_refused_with_an_example(text: str) -> None:
    with pytest.raises(ValueError, match=r"e\.g\. 90d"):
        parse_duration(text)


def test_secrets_are_256_random_bits_stored_as_their_sha256() -> None:
    one, two = new_secret(), new_secret()
    assert one != two
    assert one.startswith(TOKEN_PREFIX)
    assert len(one) - len(TOKEN_PREFIX) == 43  # 32 bytes, URL-safe base64 unpadded
    assert bytes.fromhex(secret_digest(one)) == token_digest(one)


def test_verifier_names_the_token_records_use_and_asks_fresh_source_on_a_miss() -> None:
    used: list[str] = []
    cached = [KnownToken("okta", token_digest("a" * 20), on_use=lambda: used.append("okta"))]
    fresh = [*cached, KnownToken("entra", token_digest("b" * 20))]
    fresh_calls: list[int] = []

    def fresh_source() -> list[KnownToken]:
        fresh_calls.append(1)
        return fresh

    verifier = TokenVerifier(lambda: cached, fresh_source)
    assert verifier.verify("a" * 20) == "okta"
    assert used == ["okta"]
    assert fresh_calls == []
    assert verifier.verify("b" * 20) == "entra"
    assert verifier.verify("c" * 20) is None
    assert len(fresh_calls) == 2
    assert TokenVerifier(lambda: cached).verify("b" * 20) is None
