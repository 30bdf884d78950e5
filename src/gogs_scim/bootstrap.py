"""The one place that wires settings into a running bridge: store, Gogs, services, app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, text
from starlette.applications import Starlette

from gogs_scim.api.app import create_app
from gogs_scim.api.auth import KnownToken, TokenVerifier, token_digest
from gogs_scim.api.endpoints import ApiSettings
from gogs_scim.config import Settings
from gogs_scim.gogs.client import GogsClient, GogsError
from gogs_scim.gogs.converge import UserConverger
from gogs_scim.gogs.reconciler import Reconciler
from gogs_scim.gogs.team_jobs import TeamJobRunner
from gogs_scim.gogs.teams import TeamConverger
from gogs_scim.gogs.worker import ConvergeWorker
from gogs_scim.service.groups import GroupService
from gogs_scim.service.user_groups import UserServiceWithGroups
from gogs_scim.service.users import UserService
from gogs_scim.store import jobs
from gogs_scim.store.database import create_store_engine, migrate


@dataclass
class Bridge:
    settings: Settings
    engine: Engine
    gogs: GogsClient
    reconciler: Reconciler
    users: UserService
    app: Starlette
    worker: ConvergeWorker
    groups: GroupService | None = None

    def close(self) -> None:
        self.worker.stop()
        self.gogs.close()
        self.engine.dispose()


def open_store(settings: Settings) -> Engine:
    """The store's engine, migrated to the current schema."""
    engine = create_store_engine(settings.database.url)
    migrate(engine)
    return engine


def _verifier(settings: Settings) -> TokenVerifier:
    known = tuple(
        KnownToken(token.name, token_digest(token.token.get_secret_value()))
        for token in settings.scim.all_tokens()
    )
    return TokenVerifier(lambda: known)


def build_bridge(settings: Settings) -> Bridge:
    """Everything `serve` runs; the caller starts the worker and serves `app`."""
    gogs_url, gogs_token = settings.require_gogs()
    engine = open_store(settings)
    gogs = GogsClient(gogs_url, gogs_token, timeout=settings.gogs.timeout_seconds)
    converger = UserConverger(
        gogs,
        adoption=settings.provisioning.adoption,
        protected_logins=frozenset({settings.gogs.admin_user}),
    )
    teams = TeamJobRunner(
        engine,
        TeamConverger(gogs, admin_user=settings.gogs.admin_user),
        settings.mappings,
    )
    reconciler = Reconciler(engine, converger, teams=teams)
    groups = GroupService(
        engine, reconciler, mappings=settings.mappings, max_results=settings.scim.max_results
    )
    users = UserServiceWithGroups(
        engine,
        reconciler,
        groups=groups,
        login_from=settings.provisioning.login_from,
        accept_passwords=settings.provisioning.password == "idp",  # noqa: S105
        reserved_logins=frozenset({settings.gogs.admin_user}),
        max_results=settings.scim.max_results,
    )

    def readiness() -> dict[str, Any]:
        report: dict[str, Any] = {"ready": True}
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
                report["pending_converge_jobs"] = jobs.pending_count(conn)
            report["store"] = "ok"
        except Exception as exc:
            report.update(ready=False, store=f"unavailable: {type(exc).__name__}")
        try:
            gogs.whoami()
            report["gogs"] = "ok"
        except GogsError as exc:
            report.update(ready=False, gogs=f"unavailable: {exc}")
        return report

    app = create_app(
        users,
        _verifier(settings),
        ApiSettings(
            public_url=settings.server.public_url,
            max_body_bytes=settings.server.max_body_bytes,
            max_results=settings.scim.max_results,
        ),
        readiness,
        groups=groups,
    )
    return Bridge(
        settings=settings,
        engine=engine,
        gogs=gogs,
        reconciler=reconciler,
        users=users,
        groups=groups,
        app=app,
        worker=ConvergeWorker(reconciler),
    )
