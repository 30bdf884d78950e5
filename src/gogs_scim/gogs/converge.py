"""Converging one user: read Gogs, compare with what the IdP asked, make the few calls needed.

Level-triggered and idempotent: the same function serves the inline apply right
after a request, the retry after a Gogs outage and the scheduled repair. It never
reads the request that caused it, only the stored desired state.
"""

from __future__ import annotations

import html
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from gogs_scim.gogs.client import GogsClient, GogsRejected, GogsUser
from gogs_scim.gogs.deprovision import Deprovisioner, residual_not_deleted
from gogs_scim.provisioning.accounts import DesiredAccount, desired_account
from gogs_scim.store.users import UserRecord

AdoptionPolicy = Literal["refuse", "match-email", "login"]


def random_password() -> str:
    """A password nobody knows: 48 URL-safe characters (Gogs allows up to 255)."""
    return secrets.token_urlsafe(36)


@dataclass(frozen=True)
class GogsCall:
    """One change made in Gogs, for the audit trail (never carries a secret)."""

    action: str
    target: str


@dataclass(frozen=True)
class UserConvergeResult:
    """Where the user stands in Gogs after a converge."""

    gogs_user_id: int | None
    adopted: bool
    revoked_at: datetime | None
    calls: tuple[GogsCall, ...] = field(default=())
    # Ways into Gogs a deactivation could not close (docs/deprovisioning.md).
    residual: tuple[str, ...] = field(default=())


class AccountConflict(Exception):
    """Gogs holds the login or email for an account the bridge may not take over."""


class UserConverger:
    def __init__(
        self,
        client: GogsClient,
        *,
        adoption: AdoptionPolicy,
        protected_logins: frozenset[str],
        deprovisioner: Deprovisioner | None = None,
        delete_accounts: bool = False,
    ) -> None:
        self._client = client
        self._adoption = adoption
        self._deprovisioner = deprovisioner or Deprovisioner(client, database=None, managed_orgs=())
        # provisioning.on_delete = "delete": SCIM DELETE also deletes the Gogs account.
        self._delete_accounts = delete_accounts
        # Accounts never touched through SCIM: the bridge's own admin above all.
        self._protected = frozenset(login.lower() for login in protected_logins)

    def converge(self, user: UserRecord, password: str | None = None) -> UserConvergeResult:
        """Make the Gogs account of `user` match it; `password` is the IdP's, if any.

        Raises AccountConflict, GogsRejected (Gogs refused a value) or GogsUnreachable.
        """
        if user.gogs_login.lower() in self._protected:
            raise AccountConflict(
                f"Gogs account {user.gogs_login!r} is the bridge's own and is never "
                "managed through SCIM"
            )
        desired = desired_account(user.document, user.gogs_login)
        wants_access = user.active and user.deleted_at is None
        existing = self._client.get_user(user.gogs_login)
        calls: list[GogsCall] = []

        if existing is None:
            if not wants_access:
                # No account means no way in: nothing to revoke.
                return UserConvergeResult(user.gogs_user_id, user.gogs_adopted, user.revoked_at)
            created = self._create(desired, password)
            calls.append(GogsCall("create_user", created.login))
            return UserConvergeResult(created.id, False, None, tuple(calls))

        adopted = user.gogs_adopted
        if user.gogs_user_id is None:
            self._check_adoption(existing, desired)
            adopted = True
            calls.append(GogsCall("adopt_user", existing.login))
        elif existing.id != user.gogs_user_id:
            raise AccountConflict(
                f"Gogs account {existing.login!r} is not the one the bridge created "
                f"(id {existing.id}, expected {user.gogs_user_id}); it was replaced by hand"
            )

        revoked_at = user.revoked_at
        new_password: str | None = None
        if not wants_access and revoked_at is None:
            # Deactivation: a password nobody knows, which also voids remember-me
            # cookies (Gogs renews `rands`). What else is revoked is deprovisioning's.
            new_password = random_password()
            revoked_at = datetime.now(UTC)
        elif wants_access and revoked_at is not None:
            # Reactivation: a fresh password, never the one from before.
            new_password = password or random_password()
            revoked_at = None
        elif wants_access and password is not None:
            new_password = password

        if new_password is not None or _differs(existing, desired) or user.sync_state != "synced":
            self._client.edit_user(
                existing.login,
                email=desired.email,
                full_name=desired.full_name,
                website=desired.website,
                location=desired.location,
                password=new_password,
                # A deprovisioned site admin loses admin rights, and anyone the right to
                # edit git hooks (code run on the server) or to import local paths
                # (files of the server): never given back.
                admin=False if not wants_access else None,
                allow_git_hook=False if not wants_access else None,
                allow_import_local=False if not wants_access else None,
            )
            action = "scramble_password" if not wants_access else "edit_user"
            calls.append(GogsCall(action, existing.login))
        if wants_access:
            # Also after an unfinished converge: a deactivation may have got as far as
            # prohibit_login before it failed, and was then undone by the IdP.
            if user.revoked_at is not None or user.sync_state != "synced":
                restored = self._deprovisioner.restore(existing.login, existing.id)
                calls.extend(GogsCall(action, target) for action, target in restored)
            return UserConvergeResult(existing.id, adopted, revoked_at, tuple(calls))
        revocation = self._deprovisioner.revoke(existing.login, existing.id, user.residual_access)
        calls.extend(GogsCall(action, target) for action, target in revocation.calls)
        residual = revocation.residual
        if user.deleted_at is not None and self._delete_accounts:
            try:
                self._client.delete_user(existing.login)
            except GogsRejected as exc:
                residual = (*residual, residual_not_deleted(exc.message))
            else:
                calls.append(GogsCall("delete_user", existing.login))
                residual = ()
        return UserConvergeResult(existing.id, adopted, revoked_at, tuple(calls), residual)

    def _create(self, desired: DesiredAccount, password: str | None) -> GogsUser:
        try:
            return self._client.create_user(
                login=desired.login,
                email=desired.email,
                full_name=desired.full_name,
                password=password or random_password(),
            )
        except GogsRejected as exc:
            message = exc.message.lower()
            if "email" in message and ("used" in message or "exist" in message):
                raise AccountConflict(
                    f"email {desired.email!r} is already used by another Gogs account"
                ) from exc
            if "already exists" in message or "name has been" in message:
                raise AccountConflict(
                    f"Gogs login {desired.login!r} was taken while the user was being created"
                ) from exc
            raise

    def _check_adoption(self, existing: GogsUser, desired: DesiredAccount) -> None:
        if self._adoption == "login":
            return
        if self._adoption == "match-email" and existing.email.lower() == desired.email:
            return
        why = {
            "refuse": "adoption of existing accounts is off (provisioning.adoption = refuse)",
            "match-email": f"its email is not {desired.email!r} "
            "(provisioning.adoption = match-email)",
        }[self._adoption]
        raise AccountConflict(f"Gogs account {existing.login!r} already exists and {why}")


def _differs(existing: GogsUser, desired: DesiredAccount) -> bool:
    # Gogs HTML-escapes full names when it loads them (`&` reads back as `&amp;`).
    return (
        existing.email.lower() != desired.email
        or html.unescape(existing.full_name) != desired.full_name
    )
