"""The User use cases: one method per SCIM operation, each one store transaction.

Every write commits the desired state, an audit record and a converge job together,
then converges inline so that the IdP usually sees the Gogs result in the same
answer. When Gogs is down the answer still comes from the store, marked pending, and
the worker applies the change later: nothing is lost.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine

from gogs_scim.audit.trail import AuditEntry, append
from gogs_scim.gogs.reconciler import ConvergeRunner
from gogs_scim.provisioning.logins import LoginSource, derive_login
from gogs_scim.scim.document import normalize_resource
from gogs_scim.scim.errors import ScimError
from gogs_scim.scim.flatten import IndexedValue, flatten
from gogs_scim.scim.patch import apply_patch
from gogs_scim.scim.schema import USER_RESOURCE
from gogs_scim.service.listing import ListQuery, page_request
from gogs_scim.service.versions import check_if_match
from gogs_scim.service.versions import etag as version_etag
from gogs_scim.store import groups as group_store
from gogs_scim.store import jobs
from gogs_scim.store import users as user_store
from gogs_scim.store.tables import users as users_table
from gogs_scim.store.users import DuplicateUserName, UserRecord


@dataclass(frozen=True)
class RequestContext:
    """Who asked, for the audit trail: the SCIM token's name and the request id."""

    actor: str | None = None
    request_id: str | None = None


@dataclass(frozen=True)
class UserPage:
    total: int
    start_index: int
    users: list[UserRecord]


def etag(record: UserRecord) -> str:
    return version_etag(record.version)


def _index(document: dict[str, Any]) -> list[IndexedValue]:
    return flatten(document, USER_RESOURCE)


class UserService:
    def __init__(
        self,
        engine: Engine,
        reconciler: ConvergeRunner | None,
        *,
        login_from: LoginSource,
        accept_passwords: bool,
        reserved_logins: frozenset[str],
        max_results: int,
    ) -> None:
        self._engine = engine
        self._reconciler = reconciler
        self._login_from = login_from
        self._accept_passwords = accept_passwords
        self._reserved = frozenset(login.lower() for login in reserved_logins)
        self._max_results = max_results

    # -- reads ---------------------------------------------------------------------

    def get(self, user_id: str) -> UserRecord:
        with self._engine.connect() as conn:
            record = user_store.get_user(conn, user_id)
        if record is None:
            raise ScimError.not_found(f"User {user_id} not found")
        return record

    def search(self, query: ListQuery) -> UserPage:
        page = page_request(query, USER_RESOURCE, users_table, self._max_results)
        with self._engine.connect() as conn:
            total, records = user_store.search_users(
                conn, page.where, page.order_by, page.descending, page.offset, page.limit
            )
        return UserPage(total=total, start_index=page.start_index, users=records)

    # -- writes --------------------------------------------------------------------

    def create(self, payload: dict[str, Any], ctx: RequestContext) -> UserRecord:
        normalized = normalize_resource(payload, USER_RESOURCE)
        document = normalized.document
        now = datetime.now(UTC)
        user_id = str(uuid.uuid4())
        with self._engine.begin() as conn:
            login = derive_login(
                str(document["userName"]),
                lambda folded: folded in self._reserved or user_store.login_taken(conn, folded),
                self._login_from,
            )
            record = UserRecord(
                id=user_id,
                user_name=str(document["userName"]),
                external_id=document.get("externalId"),
                display_name=document.get("displayName"),
                active=document.get("active", True) is not False,
                document=document,
                version=1,
                created_at=now,
                updated_at=now,
                gogs_login=login,
            )
            try:
                user_store.insert_user(conn, record, _index(document))
            except DuplicateUserName:
                raise ScimError.uniqueness(
                    f"userName {record.user_name!r} is already taken"
                ) from None
            jobs.enqueue(conn, "User", user_id, "create", now)
            self._audit(conn, ctx, "scim.user.create", user_id, None, document)
        password = normalized.password if self._accept_passwords else None
        outcome = self._converge(user_id, password, ctx)
        if outcome is not None and outcome.outcome == "conflict":
            # Only Gogs could see this conflict; the IdP must hear it as a 409, and the
            # user must not linger in the store as if it had been created.
            with self._engine.begin() as conn:
                user_store.purge_user(conn, user_id)
                jobs.drop(conn, "User", user_id)
                self._audit(
                    conn,
                    ctx,
                    "scim.user.create_refused",
                    user_id,
                    None,
                    None,
                    outcome="conflict",
                    extra={"reason": outcome.detail},
                )
            raise ScimError.uniqueness(outcome.detail)
        return self.get(user_id)

    def replace(
        self, user_id: str, payload: dict[str, Any], if_match: str | None, ctx: RequestContext
    ) -> UserRecord:
        with self._engine.begin() as conn:
            current = self._locked(conn, user_id)
            check_if_match(current.version, if_match)
            normalized = normalize_resource(
                payload, USER_RESOURCE, current_id=user_id, current_document=current.document
            )
            record = self._write(conn, current, normalized.document, ctx, "scim.user.replace")
            password = normalized.password if self._accept_passwords else None
            self._password_only(conn, record, current, password)
        if record.version != current.version or password is not None:
            self._converge(user_id, password, ctx)
        return self.get(user_id)

    def patch(
        self, user_id: str, body: dict[str, Any], if_match: str | None, ctx: RequestContext
    ) -> UserRecord:
        with self._engine.begin() as conn:
            current = self._locked(conn, user_id)
            check_if_match(current.version, if_match)
            result = apply_patch(current.document, body, USER_RESOURCE)
            record = self._write(conn, current, result.document, ctx, "scim.user.patch")
            password = result.password if self._accept_passwords else None
            self._password_only(conn, record, current, password)
        if record.version != current.version or password is not None:
            self._converge(user_id, password, ctx)
        return self.get(user_id)

    def delete(self, user_id: str, if_match: str | None, ctx: RequestContext) -> None:
        now = datetime.now(UTC)
        with self._engine.begin() as conn:
            current = self._locked(conn, user_id)
            check_if_match(current.version, if_match)
            self._refuse_bridge_admin(current, "deleted")
            deleted = current.with_changes(
                deleted_at=now,
                updated_at=now,
                version=current.version + 1,
                sync_state=user_store.SYNC_PENDING,
            )
            user_store.update_user(conn, deleted, [])
            group_store.member_left(conn, user_id, now)
            jobs.enqueue(conn, "User", user_id, "delete", now)
            self._audit(conn, ctx, "scim.user.delete", user_id, current.document, None)
        self._converge(user_id, None, ctx)

    # -- internals -----------------------------------------------------------------

    def _locked(self, conn: Connection, user_id: str) -> UserRecord:
        record = user_store.get_user(conn, user_id, for_update=True)
        if record is None:
            raise ScimError.not_found(f"User {user_id} not found")
        return record

    def _write(
        self,
        conn: Connection,
        current: UserRecord,
        document: dict[str, Any],
        ctx: RequestContext,
        action: str,
    ) -> UserRecord:
        if document == current.document:
            # Nothing changed: version and lastModified stay, so ETags stay valid.
            return current
        if current.active and document.get("active", True) is False:
            self._refuse_bridge_admin(current, "deactivated")
        now = datetime.now(UTC)
        record = current.with_changes(
            user_name=str(document["userName"]),
            external_id=document.get("externalId"),
            display_name=document.get("displayName"),
            active=document.get("active", True) is not False,
            document=document,
            version=current.version + 1,
            updated_at=now,
            sync_state=user_store.SYNC_PENDING,
        )
        try:
            user_store.update_user(conn, record, _index(document))
        except DuplicateUserName:
            raise ScimError.uniqueness(f"userName {record.user_name!r} is already taken") from None
        reason = "deactivate" if current.active and not record.active else action
        jobs.enqueue(conn, "User", current.id, reason, now)
        self._audit(conn, ctx, action, current.id, current.document, document)
        return record

    def _refuse_bridge_admin(self, current: UserRecord, what: str) -> None:
        # Only reachable when gogs.admin_user was changed to a login SCIM had assigned.
        if current.gogs_login.lower() in self._reserved:
            raise ScimError(
                400,
                f"Gogs account {current.gogs_login!r} is the bridge's own admin account "
                f"(gogs.admin_user) and cannot be {what} through SCIM",
                "mutability",
            )

    def _password_only(
        self, conn: Connection, record: UserRecord, current: UserRecord, password: str | None
    ) -> None:
        if password is not None and record.version == current.version:
            # Only the password changed: Gogs still has to hear about it.
            jobs.enqueue(conn, "User", current.id, "password", datetime.now(UTC))

    def _converge(self, user_id: str, password: str | None, ctx: RequestContext) -> Any:
        if self._reconciler is None:
            return None
        return self._reconciler.converge_user_now(
            user_id, password=password, request_id=ctx.request_id
        )

    def _audit(
        self,
        conn: Connection,
        ctx: RequestContext,
        action: str,
        user_id: str,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        *,
        outcome: str = "ok",
        extra: dict[str, Any] | None = None,
    ) -> None:
        detail: dict[str, Any] = {"before": before, "after": after, **(extra or {})}
        append(
            conn,
            AuditEntry(
                action=action,
                outcome=outcome,
                resource_type="User",
                resource_id=user_id,
                actor=ctx.actor,
                request_id=ctx.request_id,
                detail=detail,
            ),
        )
