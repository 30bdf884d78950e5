"""The one place that wires settings into a running bridge: store, Gogs, services, app."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy import Engine, text
from starlette.applications import Starlette

from gogs_scim.api.app import create_app
from gogs_scim.api.auth import KnownToken, TokenVerifier, token_digest
from gogs_scim.api.endpoints import ApiSettings
from gogs_scim.config import Settings
from gogs_scim.gogs.client import GogsClient, GogsError
from gogs_scim.gogs.converge import UserConverger
from gogs_scim.gogs.database_means import GogsDatabase
from gogs_scim.gogs.deprovision import Deprovisioner
from gogs_scim.gogs.reconciler import Reconciler
from gogs_scim.gogs.team_jobs import TeamJobRunner
from gogs_scim.gogs.teams import TeamConverger
from gogs_scim.gogs.worker import ConvergeWorker
from gogs_scim.logs import AccessLog
from gogs_scim.metrics import Metrics
from gogs_scim.service.groups import GroupService
from gogs_scim.service.tokens import TokenLookup
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
    gogs_database: GogsDatabase | None = None
    metrics: Metrics | None = None

    def close(self) -> None:
        self.worker.stop()
        self.gogs.close()
        if self.gogs_database is not None:
            self.gogs_database.close()
        self.engine.dispose()


def open_store(settings: Settings) -> Engine:
    """The store's engine, migrated to the current schema."""
    engine = create_store_engine(settings.database.url)
    migrate(engine)
    return engine


def _verifier(settings: Settings, engine: Engine | None = None) -> TokenVerifier:
    """Config tokens, plus (given the store) `gogs-scim token` tokens, seen within a
    second of being created or revoked."""
    known = tuple(
        KnownToken(token.name, token_digest(token.token.get_secret_value()))
        for token in settings.scim.all_tokens()
    )
    if engine is None:
        return TokenVerifier(lambda: known)
    lookup = TokenLookup(engine)

    def source(fresh: bool = False) -> tuple[KnownToken, ...]:
        stored = tuple(
            KnownToken(t.name, t.digest, on_use=partial(lookup.record_use, t.id))
            for t in lookup.tokens(fresh)
        )
        return known + stored

    return TokenVerifier(source, partial(source, fresh=True))


def build_bridge(settings: Settings) -> Bridge:
    """Everything `serve` runs; the caller starts the worker and serves `app`."""
    gogs_url, gogs_token = settings.require_gogs()
    engine = open_store(settings)
    metrics = Metrics(engine)  # this bridge's own registry, served at /metrics
    # With a token file, the client re-reads it before each call: rotation needs no restart.
    gogs = GogsClient(
        gogs_url,
        settings.gogs.token if settings.gogs.admin_token_file else gogs_token,
        timeout=settings.gogs.timeout_seconds,
        on_call=metrics.gogs_call,
    )
    database_url = settings.gogs.database_url
    gogs_database = GogsDatabase.from_url(database_url.get_secret_value()) if database_url else None
    converger = UserConverger(
        gogs,
        adoption=settings.provisioning.adoption,
        protected_logins=frozenset({settings.gogs.admin_user}),
        deprovisioner=Deprovisioner(
            gogs, database=gogs_database, managed_orgs=[rule.org for rule in settings.mappings]
        ),
        delete_accounts=settings.provisioning.on_delete == "delete",
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
        _verifier(settings, engine),
        ApiSettings(
            public_url=settings.server.public_url,
            max_body_bytes=settings.server.max_body_bytes,
            max_results=settings.scim.max_results,
        ),
        readiness,
        groups=groups,
    )
    metrics.instrument(app)
    app.add_middleware(AccessLog)  # outermost: one line per request, with its id
    return Bridge(
        settings=settings,
        engine=engine,
        gogs=gogs,
        reconciler=reconciler,
        users=users,
        groups=groups,
        app=app,
        worker=ConvergeWorker(reconciler),
        gogs_database=gogs_database,
        metrics=metrics,
    )
