"""Prometheus metrics: `/metrics`, in the text exposition format.

Each bridge has its own `CollectorRegistry` (never prometheus-client's global one), so
several apps in one process (the tests) do not share or clash over series.

* requests by resource, method and status, and their latency (an ASGI middleware
  outermost, so refused and failed requests count too);
* Gogs calls by method and status, and the failed ones (GogsClient's `on_call` hook);
* read from the store at scrape time: converge jobs pending, users and groups whose
  last converge failed, whether the store answered at all, and how current the last
  complete reconciliation is (drift items, seconds since, stale against the audit window).

`/metrics` needs no SCIM token: it carries counts, never names or secrets. It still
tells an outsider how busy the bridge is, so do not expose it beyond the scrapers
(see docs/operations.md).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gogs_scim.store import reconcile_runs
from gogs_scim.store.tables import converge_jobs, groups, users

SCIM_PREFIX = "/scim/v2"
_gogs_log = logging.getLogger("gogs_scim.gogs.calls")
_SCIM_RESOURCES = frozenset(
    {"Users", "Groups", ".search", "ServiceProviderConfig", "ResourceTypes", "Schemas"}
)
_PLAIN_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


def resource_of(path: str) -> str:
    """A label with few values: the SCIM resource or endpoint, never an id."""
    if path in _PLAIN_ROUTES:
        return path[1:]
    if path.startswith(SCIM_PREFIX + "/"):
        first = path[len(SCIM_PREFIX) + 1 :].split("/", 1)[0]
        return first if first in _SCIM_RESOURCES else "other"
    return "other"


def _method(method: str) -> str:
    method = method.upper()
    return method if method in _METHODS else "other"


def gogs_call_failed(status: int) -> bool:
    """No reply, or an error status; 404 is how Gogs answers "no such user/team" to
    the lookups made before every create, so it is not counted as a failure."""
    return status == 0 or (status >= 400 and status != 404)


class _StoreCollector(Collector):
    """Backlog and error counts, read from the store at each scrape."""

    def __init__(
        self, engine: Engine, reconcile_window: timedelta | None, up_since: datetime
    ) -> None:
        self._engine = engine
        self._window = reconcile_window
        self._up_since = up_since

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily("gogs_scim_store_up", "1 if the store answered this scrape, else 0.")
        try:
            with self._engine.connect() as conn:
                pending = conn.execute(select(func.count()).select_from(converge_jobs)).scalar_one()
                users_in_error = conn.execute(
                    select(func.count()).select_from(users).where(users.c.sync_state == "error")
                ).scalar_one()
                groups_in_error = conn.execute(
                    select(func.count())
                    .select_from(groups)
                    .where(groups.c.sync_state == "error", groups.c.deleted_at.is_(None))
                ).scalar_one()
                with_residual = conn.execute(
                    select(func.count())
                    .select_from(users)
                    .where(users.c.residual_access.is_not(None))
                ).scalar_one()
                fresh = (
                    reconcile_runs.freshness(
                        conn, now=datetime.now(UTC), window=self._window, up_since=self._up_since
                    )
                    if self._window is not None
                    else None
                )
        except Exception:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield GaugeMetricFamily(
            "gogs_scim_converge_jobs_pending",
            "Converge jobs waiting to run or retry (changes Gogs has not followed yet).",
            value=pending,
        )
        yield GaugeMetricFamily(
            "gogs_scim_users_in_error",
            "Users whose last converge Gogs refused (syncState error).",
            value=users_in_error,
        )
        yield GaugeMetricFamily(
            "gogs_scim_users_with_residual_access",
            "Deactivated or deleted users with a way into Gogs deprovisioning could not "
            "close (docs/deprovisioning.md).",
            value=with_residual,
        )
        yield GaugeMetricFamily(
            "gogs_scim_groups_in_error",
            "Groups whose teams could not be converged (syncState error).",
            value=groups_in_error,
        )
        if fresh is None:
            return
        yield GaugeMetricFamily(
            "gogs_scim_reconcile_stale",
            "1 when the last complete reconciliation is older than [reconcile] audit_window "
            "(or none has completed in that long), else 0.",
            value=int(fresh.stale),
        )
        if fresh.age is not None and fresh.drift is not None:
            yield GaugeMetricFamily(
                "gogs_scim_seconds_since_last_reconcile",
                "Seconds since the last complete reconciliation finished.",
                value=fresh.age.total_seconds(),
            )
            yield GaugeMetricFamily(
                "gogs_scim_drift_items",
                "Differences between the IdP and Gogs the last complete reconciliation left.",
                value=fresh.drift,
            )


class Metrics:
    """One bridge's metrics; `gogs_call` is the GogsClient hook, `instrument` the app."""

    def __init__(
        self,
        engine: Engine | None = None,
        *,
        reconcile_window: timedelta | None = None,
        up_since: datetime | None = None,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "gogs_scim_http_requests",
            "HTTP requests answered, by SCIM resource, method and status.",
            ["resource", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "gogs_scim_http_request_duration_seconds",
            "Time to answer a request (including the inline converge with Gogs).",
            ["resource", "method"],
            registry=self.registry,
        )
        self.gogs_calls = Counter(
            "gogs_scim_gogs_calls",
            "Requests sent to the Gogs API, by method and HTTP status (0: no reply).",
            ["method", "status"],
            registry=self.registry,
        )
        self.gogs_errors = Counter(
            "gogs_scim_gogs_call_errors",
            "Gogs API calls that failed: no reply, or an error status other than 404.",
            ["method"],
            registry=self.registry,
        )
        if engine is not None:
            self.registry.register(
                _StoreCollector(engine, reconcile_window, up_since or datetime.now(UTC))
            )

    def gogs_call(self, method: str, path: str, status: int) -> None:
        """GogsClient's `on_call`: count the call, and log it (with the request id of
        the SCIM request it was made for, if any)."""
        _gogs_log.info("gogs call %s %s -> %s", method, path, status or "no reply")
        method = _method(method)
        self.gogs_calls.labels(method, str(status)).inc()
        if gogs_call_failed(status):
            self.gogs_errors.labels(method).inc()

    def observe(self, resource: str, method: str, status: int, seconds: float) -> None:
        method = _method(method)
        self.requests.labels(resource, method, str(status)).inc()
        self.latency.labels(resource, method).observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def instrument(self, app: Starlette) -> None:
        """Add the `/metrics` route and the request-counting middleware to `app`
        (before it serves its first request)."""

        async def metrics_endpoint(_request: Request) -> Response:
            body = await run_in_threadpool(self.exposition)
            return Response(body, media_type=CONTENT_TYPE_LATEST)

        app.router.routes.append(Route("/metrics", metrics_endpoint, methods=["GET"]))
        app.add_middleware(RequestMetrics, metrics=self)


class RequestMetrics:
    """Pure ASGI middleware: counts and times every HTTP request."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self._app = app
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self._app(scope, receive, send_status)
        finally:
            path: Any = scope.get("path", "")
            self._metrics.observe(
                resource_of(str(path)),
                str(scope.get("method", "")),
                status,
                time.perf_counter() - started,
            )
