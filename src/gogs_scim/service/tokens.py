"""SCIM bearer tokens kept in the store: create, list, revoke, rotate; and the lookup
the API uses to accept them without a restart.

A token is `gscim_` plus 256 random bits (URL-safe base64). The store keeps only its
SHA-256 digest: a fast hash is enough for a secret with that much entropy (nobody can
guess it offline from the digest; slow hashes exist for low-entropy passwords). The
secret is shown once, by `create` and `rotate`, and never written to the store, the
audit trail or a log.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from gogs_scim.audit.trail import AuditEntry, append
from gogs_scim.store import tokens as token_store

log = logging.getLogger(__name__)

TOKEN_PREFIX = "gscim_"  # noqa: S105 (a marker for secret scanners, not a secret)
RESOURCE_TYPE = "ScimToken"
# `last used` is written at most this often per token: no store write per request.
LAST_USED_INTERVAL = timedelta(minutes=1)
# How long the API trusts its copy of the store's tokens: a revoked token is refused
# within this. A token the copy lacks makes the API re-read (see TokenLookup.tokens),
# so a new token works at once.
LOOKUP_TTL_SECONDS = 1.0

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")


class TokenError(Exception):
    """A token command cannot be done; the message says why (and never holds a secret)."""


def new_secret() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def secret_digest(secret: str) -> str:
    """Hex SHA-256 of a token, as the store keeps it (see the module docstring)."""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedToken:
    """A freshly created secret: shown once, never stored."""

    name: str
    secret: str
    expires_at: datetime | None
    previous_expires_at: datetime | None = None


@dataclass(frozen=True)
class TokenInfo:
    """What `token list` shows: never the secret nor its digest."""

    name: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    # A previous secret still accepted after a rotation, until this moment.
    previous_until: datetime | None = None

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


class TokenService:
    """The token use cases, each one store transaction with its audit record."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime] | None = None) -> None:
        self._engine = engine
        self._clock = clock or (lambda: datetime.now(UTC))

    def create(self, name: str, expires_in: timedelta | None, actor: str) -> IssuedToken:
        if not _NAME.match(name):
            raise TokenError(
                f"token name {name!r}: use 1-100 letters, digits, '.', '_', '@' or '-'"
            )
        if expires_in is not None and expires_in <= timedelta():
            raise TokenError("--expires must be longer than zero")
        now = self._clock()
        secret = new_secret()
        expires_at = now + expires_in if expires_in is not None else None
        with self._engine.begin() as conn:
            try:
                token_id = token_store.insert_token(
                    conn, name, secret_digest(secret), now, expires_at
                )
            except token_store.DuplicateTokenName:
                raise TokenError(f"token {name!r} exists; rotate it, or revoke it first") from None
            append(
                conn,
                AuditEntry(
                    action="token.create",
                    resource_type=RESOURCE_TYPE,
                    resource_id=str(token_id),
                    actor=actor,
                    detail={"name": name, "expires_at": _iso(expires_at)},
                ),
                now,
            )
        return IssuedToken(name, secret, expires_at)

    def list(self) -> list[TokenInfo]:
        """Every name with a current secret (expired ones too, marked by the caller)."""
        now = self._clock()
        with self._engine.connect() as conn:
            rows = token_store.all_rows(conn)
        previous: dict[str, datetime] = {}
        for row in rows:
            if row.superseded_at is not None and row.usable(now) and row.expires_at:
                previous[row.name] = max(row.expires_at, previous.get(row.name, row.expires_at))
        return sorted(
            (
                TokenInfo(
                    name=row.name,
                    created_at=row.created_at,
                    expires_at=row.expires_at,
                    last_used_at=row.last_used_at,
                    previous_until=previous.get(row.name),
                )
                for row in rows
                if row.current
            ),
            key=lambda info: info.name,
        )

    def revoke(self, name: str, actor: str, *, previous_only: bool = False) -> int:
        """Revoke `name` (all its secrets), or only its previous secret; how many."""
        now = self._clock()
        with self._engine.begin() as conn:
            rows = [row for row in token_store.by_name(conn, name) if row.revoked_at is None]
            if previous_only:
                rows = [row for row in rows if row.superseded_at is not None]
            if not rows:
                what = "previous secret" if previous_only else "active secret"
                raise TokenError(f"token {name!r} has no {what} to revoke")
            token_store.revoke(conn, [row.id for row in rows], now)
            for row in rows:
                append(
                    conn,
                    AuditEntry(
                        action="token.revoke",
                        resource_type=RESOURCE_TYPE,
                        resource_id=str(row.id),
                        actor=actor,
                        detail={"name": name, "previous": row.superseded_at is not None},
                    ),
                    now,
                )
        return len(rows)

    def rotate(self, name: str, grace: timedelta, actor: str) -> IssuedToken:
        """A new current secret for `name`; the old one works until `grace` has passed.

        The new secret gets the lifetime the old one was created with. A secret left
        over from an earlier rotation is revoked: at most two secrets work per name.
        """
        if grace < timedelta():
            raise TokenError("--grace cannot be negative")
        now = self._clock()
        secret = new_secret()
        with self._engine.begin() as conn:
            old = token_store.current(conn, name, for_update=True)
            if old is None:
                raise TokenError(f"token {name!r} does not exist (create it first)")
            leftovers = [
                row.id
                for row in token_store.by_name(conn, name)
                if row.id != old.id and row.revoked_at is None
            ]
            token_store.revoke(conn, leftovers, now)
            previous_until = now + grace
            if old.expires_at is not None:
                previous_until = min(previous_until, old.expires_at)
            token_store.supersede(conn, old.id, now, previous_until)
            lifetime = old.expires_at - old.created_at if old.expires_at is not None else None
            expires_at = now + lifetime if lifetime is not None else None
            token_id = token_store.insert_token(conn, name, secret_digest(secret), now, expires_at)
            append(
                conn,
                AuditEntry(
                    action="token.rotate",
                    resource_type=RESOURCE_TYPE,
                    resource_id=str(token_id),
                    actor=actor,
                    detail={
                        "name": name,
                        "replaces": str(old.id),
                        "previous_until": _iso(previous_until),
                        "expires_at": _iso(expires_at),
                    },
                ),
                now,
            )
        return IssuedToken(name, secret, expires_at, previous_until)


@dataclass(frozen=True)
class StoredToken:
    """A secret the API may accept: its id (to record use), name and digest."""

    id: int
    name: str
    digest: bytes
    expires_at: datetime | None


class TokenLookup:
    """The store's usable tokens for the API, re-read at most every `ttl` seconds.

    The copy is small (one or two rows per IdP), so every request compares its digest
    against all of them (api/auth.py) rather than looking one up by a key. Expiry is
    checked at each call, not only at refresh.
    """

    def __init__(
        self,
        engine: Engine,
        ttl: float = LOOKUP_TTL_SECONDS,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._engine = engine
        self._ttl = ttl
        self._clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()
        self._loaded_at = float("-inf")
        self._tokens: tuple[StoredToken, ...] = ()
        self._last_touch: dict[int, float] = {}

    def tokens(self, fresh: bool = False) -> tuple[StoredToken, ...]:
        """The usable tokens, from a copy at most `ttl` seconds old; with `fresh`, from
        a read that began after this call (for a token the copy lacks).

        Fresh reads are single-flight: callers that wait for the lock while one runs
        reuse it when it began after they asked, so a burst of bad tokens costs about
        one query at a time, not one per request.
        """
        asked = time.monotonic()
        with self._lock:
            stale = time.monotonic() - self._loaded_at >= self._ttl
            if stale or (fresh and self._loaded_at < asked):
                self._loaded_at = time.monotonic()
                try:
                    with self._engine.connect() as conn:
                        rows = token_store.unrevoked(conn, self._clock())
                except Exception:
                    self._loaded_at = float("-inf")  # the next call tries again
                    raise
                self._tokens = tuple(
                    StoredToken(row.id, row.name, bytes.fromhex(row.digest), row.expires_at)
                    for row in rows
                )
            cached = self._tokens
        now = self._clock()
        return tuple(t for t in cached if t.expires_at is None or now < t.expires_at)

    def record_use(self, token_id: int) -> None:
        """Stamp `last used`, at most once a minute per token; never fails a request."""
        moment = time.monotonic()
        with self._lock:
            last = self._last_touch.get(token_id)
            if last is not None and moment - last < LAST_USED_INTERVAL.total_seconds():
                return
            self._last_touch[token_id] = moment
        try:
            with self._engine.begin() as conn:
                token_store.touch(conn, token_id, self._clock(), LAST_USED_INTERVAL)
        except Exception as exc:
            log.warning("could not record the use of SCIM token id %s: %s", token_id, exc)
