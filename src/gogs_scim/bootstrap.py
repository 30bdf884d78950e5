"""The one place that wires settings into a running bridge: store, Gogs, services, app."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
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
from gogs_scim.gogs.drift import DriftDetector
from gogs_scim.gogs.planning import Convergers, Planner
from gogs_scim.gogs.reconciler import ConvergeRunner, Reconciler
from gogs_scim.gogs.shadow import ShadowReconciler
from gogs_scim.gogs.team_jobs import TeamJobRunner
from gogs_scim.gogs.teams import TeamConverger
from gogs_scim.gogs.web_session import GogsWebSession
from gogs_scim.gogs.worker import ConvergeWorker
from gogs_scim.logs import AccessLog
from gogs_scim.metrics import Metrics
from gogs_scim.provisioning.teams import team_targets
from gogs_scim.service.groups import GroupService
from gogs_scim.service.reconcile import ReconcileScheduler, ReconcileService
from gogs_scim.service.tokens import TokenLookup
from gogs_scim.service.user_groups import UserServiceWithGroups
from gogs_scim.service.users import UserService
from gogs_scim.store import jobs, reconcile_runs
from gogs_scim.store.database import create_store_engine, migrate

log = logging.getLogger(__name__)


@dataclass
class Bridge:
    settings: Settings
    engine: Engine
    adapters: GogsAdapters
    reconciler: ConvergeRunner
    users: UserService
    app: Starlette
    worker: ConvergeWorker
    groups: GroupService | None = None
    metrics: Metrics | None = None
    reconcile: ReconcileService | None = None
    # serve's scheduled reconciliation; None when `[reconcile] interval` is 0.
    scheduler: ReconcileScheduler | None = None
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def gogs(self) -> GogsClient:
        return self.adapters.gogs

    @property
    def gogs_database(self) -> GogsDatabase | None:
        return self.adapters.database

    @property
    def gogs_web(self) -> GogsWebSession | None:
        return self.adapters.web

    def start(self) -> None:
        """Start the background work `serve` runs beside the API."""
        self.worker.start()
        if self.scheduler is not None:
            self.scheduler.start()

    def close(self) -> None:
        if self.scheduler is not None:
            self.scheduler.stop()
        self.worker.stop()
        self.adapters.close()
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


def web_session(settings: Settings, metrics: Metrics | None = None) -> GogsWebSession | None:
    """The admin web session means, when `[gogs] admin_password(_file)` is set; the
    password is read at each sign-in, so a rotated file needs no restart."""
    if not settings.gogs.has_web_session or not settings.gogs.url:
        return None
    settings.gogs.web_password()  # a missing or empty password stops start-up, named
    return GogsWebSession(
        settings.gogs.url,
        settings.gogs.admin_user,
        settings.gogs.web_password,
        timeout=settings.gogs.timeout_seconds,
        on_call=metrics.gogs_call if metrics is not None else None,
    )


@dataclass
class GogsAdapters:
    """What reaches Gogs: the API client and the optional deprovisioning means."""

    gogs: GogsClient
    database: GogsDatabase | None
    web: GogsWebSession | None

    def close(self) -> None:
        self.gogs.close()
        if self.database is not None:
            self.database.close()
        if self.web is not None:
            self.web.close()


def gogs_adapters(settings: Settings, metrics: Metrics | None = None) -> GogsAdapters:
    """The Gogs client and the means the configuration names; ConfigError when the
    URL or admin token is missing."""
    url, token = settings.require_gogs()
    web = web_session(settings, metrics)  # first: it may refuse its settings
    on_call = metrics.gogs_call if metrics is not None else None
    # With a token file, the client re-reads it before each call: rotation needs no restart.
    gogs = GogsClient(
        url,
        settings.gogs.token if settings.gogs.admin_token_file else token,
        timeout=settings.gogs.timeout_seconds,
        on_call=on_call,
    )
    database_url = settings.gogs.database_url
    database = GogsDatabase.from_url(database_url.get_secret_value()) if database_url else None
    return GogsAdapters(gogs, database, web)


def convergers(
    settings: Settings,
    client: GogsClient,
    database: GogsDatabase | None,
    web: GogsWebSession | None,
) -> Convergers:
    """The convergers of this configuration on `client` and the deprovisioning means;
    the same for apply and for planning (a PlanningClient: shadow mode, `plan`)."""
    return Convergers(
        users=UserConverger(
            client,
            adoption=settings.provisioning.adoption,
            protected_logins=frozenset({settings.gogs.admin_user}),
            deprovisioner=Deprovisioner(
                client,
                database=database,
                web=web,
                managed_orgs=[rule.org for rule in settings.mappings],
            ),
            delete_accounts=settings.provisioning.on_delete == "delete",
        ),
        teams=TeamConverger(client, admin_user=settings.gogs.admin_user),
    )


def planner(
    settings: Settings, engine: Engine, adapters: GogsAdapters, teams: TeamJobRunner
) -> Planner:
    """Plans jobs with this configuration's convergers, reading the store and Gogs."""

    def build(
        client: GogsClient, database: GogsDatabase | None, web: GogsWebSession | None
    ) -> Convergers:
        return convergers(settings, client, database, web)

    return Planner(
        engine, adapters.gogs, build, database=adapters.database, web=adapters.web, teams=teams
    )


def reconciliation(
    settings: Settings,
    engine: Engine,
    adapters: GogsAdapters,
    teams: TeamJobRunner,
    runner: ConvergeRunner | None,
) -> ReconcileService:
    """Reconciliation with this configuration; `runner` repairs (None in shadow mode:
    runs only report)."""
    detector = DriftDetector(
        engine,
        adapters.gogs,
        teams=teams,
        targets=list(team_targets(settings.mappings).values()),
        admin_user=settings.gogs.admin_user,
        database=adapters.database,
        delete_accounts=settings.provisioning.on_delete == "delete",
    )
    return ReconcileService(
        engine, detector, runner if settings.provisioning.mode == "apply" else None
    )


def build_bridge(settings: Settings) -> Bridge:
    """Everything `serve` runs; the caller starts the worker and serves `app`."""
    settings.require_gogs()
    engine = open_store(settings)
    started_at = datetime.now(UTC)
    # This bridge's own registry, served at /metrics.
    metrics = Metrics(engine, reconcile_window=settings.reconcile.audit_window, up_since=started_at)
    adapters = gogs_adapters(settings, metrics)
    gogs, gogs_database, gogs_web = adapters.gogs, adapters.database, adapters.web
    applying = convergers(settings, gogs, gogs_database, gogs_web)
    teams = TeamJobRunner(engine, applying.teams, settings.mappings)
    reconciler: ConvergeRunner
    if settings.provisioning.mode == "shadow":
        log.warning(
            "provisioning.mode = shadow: changes are stored and planned, nothing is "
            "changed in Gogs (see `gogs-scim plan`)"
        )
        reconciler = ShadowReconciler(
            engine,
            planner(settings, engine, adapters, teams),
            teams=teams,
        )
    else:
        reconciler = Reconciler(engine, applying.users, teams=teams)
    groups = GroupService(
        engine, reconciler, mappings=settings.mappings, max_results=settings.scim.max_results
    )
    reconcile = reconciliation(settings, engine, adapters, teams, reconciler)
    scheduler = (
        ReconcileScheduler(
            engine,
            reconcile,
            interval=settings.reconcile.interval,
            apply=settings.reconcile.apply,
        )
        if settings.reconcile.interval
        else None
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
                fresh = reconcile_runs.freshness(
                    conn,
                    now=datetime.now(UTC),
                    window=settings.reconcile.audit_window,
                    up_since=started_at,
                )
            report["store"] = "ok"
            report["mode"] = settings.provisioning.mode
            report["reconcile"] = {
                "last_complete_at": (
                    fresh.last_complete_at.isoformat() if fresh.last_complete_at else None
                ),
                "age_seconds": fresh.age.total_seconds() if fresh.age is not None else None,
                "audit_window_seconds": fresh.window.total_seconds(),
                "drift": fresh.drift,
                "stale": fresh.stale,
            }
            if fresh.stale:
                report["ready"] = False
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
        adapters=adapters,
        reconciler=reconciler,
        users=users,
        groups=groups,
        app=app,
        worker=ConvergeWorker(reconciler),
        metrics=metrics,
        reconcile=reconcile,
        scheduler=scheduler,
        started_at=started_at,
    )
