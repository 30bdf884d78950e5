"""Bearer-token authentication for the SCIM routes."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable
from dataclasses import dataclass


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@dataclass(frozen=True)
class KnownToken:
    name: str
    digest: bytes


class TokenVerifier:
    """Names the SCIM token a request carries, or None.

    Tokens are compared as SHA-256 digests with `hmac.compare_digest`, against every
    known token, so neither the length nor the position of a match leaks by timing.
    `source` is asked on every call, so a token added or revoked in the store takes
    effect without a restart.
    """

    def __init__(self, source: Callable[[], Iterable[KnownToken]]) -> None:
        self._source = source

    def verify(self, presented: str) -> str | None:
        digest = token_digest(presented)
        found: str | None = None
        for known in self._source():
            if hmac.compare_digest(known.digest, digest) and found is None:
                found = known.name
        return found


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (scheme case-insensitive)."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
