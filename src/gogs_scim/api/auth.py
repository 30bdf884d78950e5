"""Bearer-token authentication for the SCIM routes."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@dataclass(frozen=True)
class KnownToken:
    name: str
    digest: bytes
    # Called when a request authenticates with this token (store tokens record use).
    on_use: Callable[[], None] | None = field(default=None, compare=False)


class TokenVerifier:
    """Names the SCIM token a request carries, or None.

    Tokens are compared as SHA-256 digests with `hmac.compare_digest`, against every
    known token, so neither the length nor the position of a match leaks by timing.
    `source` is asked on every call, so a token added or revoked in the store takes
    effect without a restart. `fresh_source`, when given, is asked after a miss: a
    source that caches can re-read, so a token created a moment ago works at once.
    """

    def __init__(
        self,
        source: Callable[[], Iterable[KnownToken]],
        fresh_source: Callable[[], Iterable[KnownToken]] | None = None,
    ) -> None:
        self._source = source
        self._fresh_source = fresh_source

    def verify(self, presented: str) -> str | None:
        digest = token_digest(presented)
        found = self._match(self._source(), digest)
        if found is None and self._fresh_source is not None:
            found = self._match(self._fresh_source(), digest)
        if found is None:
            return None
        if found.on_use is not None:
            found.on_use()
        return found.name

    @staticmethod
    def _match(known_tokens: Iterable[KnownToken], digest: bytes) -> KnownToken | None:
        found: KnownToken | None = None
        for known in known_tokens:
            if hmac.compare_digest(known.digest, digest) and found is None:
                found = known
        return found


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (scheme case-insensitive)."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
