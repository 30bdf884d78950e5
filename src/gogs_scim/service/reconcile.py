"""Reconciliation: compare what the IdP said with what Gogs has, and repair the drift.

Converging is level-triggered already; what reconciliation adds is *looking*: changes
made by hand in Gogs enqueue no job, so nothing would repair them until the next
change of the same user or group. A run reads the store and Gogs (gogs/drift.py),
and with `apply` queues converge jobs (reason "reconcile") for what drifted, runs them
through the same `ConvergeRunner` every change uses, then compares again: what the
second look no longer finds is repaired. A job another worker holds is left to it
(the second look then still finds the drift, and says so).

Every run is recorded (store/reconcile_runs.py) for /readyz and the metrics, and
audited: one `reconcile.repair` per difference it tried to repair, one `reconcile.run`
summary.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine

from gogs_scim.audit.trail import AuditEntry, append
from gogs_scim.background import BackgroundLoop
from gogs_scim.gogs.client import GogsError
from gogs_scim.gogs.drift import DriftDetector, DriftItem, Progress, Scan
from gogs_scim.gogs.reconciler import ConvergeRunner, worker_name
from gogs_scim.gogs.team_jobs import enqueue_teams
from gogs_scim.provisioning.teams import rule_matches
from gogs_scim.store import groups as group_store
from gogs_scim.store import jobs
from gogs_scim.store import reconcile_runs as runs
from gogs_scim.store import users as user_store

log = logging.getLogger(__name__)

REASON = "reconcile"


class ReconcileRefused(Exception):
    """`apply` asked for where nothing may change Gogs (shadow mode)."""


class ReconcileIncomplete(Exception):
    """The comparison could not finish (Gogs unreachable or refusing): no verdict."""


@dataclass(frozen=True)
class ReconcileReport:
    run_id: int
    applied: bool
    # The first comparison, and the second after the repairs (the same without apply).
    found: Scan
    left: Scan
    repaired: tuple[DriftItem, ...]
    # Resources whose converge job another worker held: left to it.
    busy: tuple[str, ...] = ()

    @property
    def clean(self) -> bool:
        return not self.left.items


class ReconcileService:
    def __init__(
        self,
        engine: Engine,
        detector: DriftDetector,
        runner: ConvergeRunner | None,
        *,
        worker: str | None = None,
    ) -> None:
        self._engine = engine
        self._detector = detector
        # None where nothing may change Gogs (shadow mode): runs only report.
        self._runner = runner
        self._worker = worker or worker_name()

    @property
    def can_apply(self) -> bool:
        return self._runner is not None

    def run(
        self,
        *,
        apply: bool,
        trigger: str,
        progress: Progress | None = None,
        recheck_progress: Progress | None = None,
    ) -> ReconcileReport:
        """Compare, and with `apply` repair and compare again.

        Raises ReconcileRefused (apply in shadow mode) before anything starts, and
        ReconcileIncomplete when Gogs could not be read (the run is recorded as such).
        """
        if apply and self._runner is None:
            raise ReconcileRefused(
                "provisioning.mode = shadow: nothing may change Gogs, so reconcile --apply "
                "is refused; run `gogs-scim reconcile` without --apply to see the drift"
            )
        with self._engine.begin() as conn:
            run_id = runs.start(
                conn,
                trigger=trigger,
                worker=self._worker,
                applied=apply,
                now=datetime.now(UTC),
            )
        actor = f"reconcile:{trigger}"
        try:
            found = self._detector.detect(progress)
            attempted = [item for item in found.items if item.repair != "manual"]
            busy: tuple[str, ...] = ()
            left = found
            if apply and attempted:
                busy = self._repair(attempted)
                left = self._detector.detect(recheck_progress)
        except Exception as exc:
            error = f"Gogs could not be read: {exc}" if isinstance(exc, GogsError) else repr(exc)
            with self._engine.begin() as conn:
                runs.finish(conn, run_id, now=datetime.now(UTC), error=error)
                append(
                    conn,
                    AuditEntry(
                        action="reconcile.run",
                        outcome="failed",
                        actor=actor,
                        detail={"run": run_id, "applied": apply, "error": error},
                    ),
                )
            if isinstance(exc, GogsError):
                raise ReconcileIncomplete(error) from exc
            raise
        remaining = {item.identity for item in left.items}
        repaired = tuple(item for item in attempted if apply and item.identity not in remaining)
        with self._engine.begin() as conn:
            runs.finish(
                conn,
                run_id,
                now=datetime.now(UTC),
                found=len(found.items),
                repaired=len(repaired),
                left=len(left.items),
            )
            settled = 0
            if apply:
                for item in attempted:
                    append(conn, _repair_entry(item, item.identity not in remaining, run_id, actor))
                settled = self._settle_unmapped_groups(conn)
            append(
                conn,
                AuditEntry(
                    action="reconcile.run",
                    outcome="ok" if not left.items else "drift",
                    actor=actor,
                    detail={
                        "run": run_id,
                        "applied": apply,
                        "users": found.users,
                        "teams": found.teams,
                        "drift_found": len(found.items),
                        "repaired": len(repaired),
                        "drift_left": len(left.items),
                        "groups_settled": settled,
                    },
                ),
            )
        if left.items:
            # A warning in the server's log; the CLI prints its own table instead.
            log.log(
                logging.DEBUG if trigger == "cli" else logging.WARNING,
                "reconciliation %s: %d difference(s) between the IdP and Gogs left (%d repaired)",
                run_id,
                len(left.items),
                len(repaired),
            )
        return ReconcileReport(run_id, apply, found, left, repaired, busy)

    def _settle_unmapped_groups(self, conn: Connection) -> int:
        """Groups no rule maps any more feed no team, so nothing in Gogs is left to
        follow them: a `pending` or `error` from the rules they had goes (else it
        would stay until the group's next change). The number settled."""
        rules = self._detector.rules
        unmapped = [
            group_id
            for group_id, display_name, external_id in group_store.unsettled_groups(conn)
            if not any(rule_matches(rule, display_name, external_id) for rule in rules)
        ]
        group_store.set_sync_state(conn, unmapped, "synced", None)
        return len(unmapped)

    def _repair(self, items: list[DriftItem]) -> tuple[str, ...]:
        """Queue and run the converges that repair `items`; the resources left busy."""
        assert self._runner is not None
        user_ids = list(dict.fromkeys(i.resource_id for i in items if i.repair == "user"))
        rewrite = {i.resource_id for i in items if i.rewrite}
        team_keys = list(dict.fromkeys(i.resource_id for i in items if i.repair == "team"))
        now = datetime.now(UTC)
        with self._engine.begin() as conn:
            for user_id in user_ids:
                user = user_store.get_user(conn, user_id, include_deleted=True)
                if user is None:
                    continue
                if user_id in rewrite and user.sync_state == user_store.SYNC_SYNCED:
                    # The converge sends the whole account (and allows login again, or
                    # takes site admin away) only when the user is not known synced.
                    user_store.set_sync_state(
                        conn, user_id, sync_state=user_store.SYNC_PENDING, sync_error=None
                    )
                jobs.enqueue(conn, user_store.USER_RESOURCE_TYPE, user_id, REASON, now)
            enqueue_teams(conn, team_keys, REASON, now)
        busy: list[str] = []
        for user_id in user_ids:
            if self._runner.converge_user_now(user_id).outcome == "busy":
                busy.append(f"{user_store.USER_RESOURCE_TYPE} {user_id}")
        self._runner.converge_teams_now(team_keys)
        return tuple(busy)


def _repair_entry(item: DriftItem, repaired: bool, run_id: int, actor: str) -> AuditEntry:
    return AuditEntry(
        action="reconcile.repair",
        outcome="ok" if repaired else "failed",
        resource_type=item.resource_type,
        resource_id=item.resource_id,
        actor=actor,
        detail={
            "run": run_id,
            "subject": item.subject,
            "what": item.what,
            "idp": item.idp,
            "gogs_had": item.gogs,
            "repair": item.repair_text,
            "repaired": repaired,
        },
    )


class ReconcileScheduler(BackgroundLoop):
    """serve's scheduled reconciliation: a daemon thread; of several replicas sharing a
    store, the one that takes the schedule's lease runs each interval."""

    # A replica that died mid-run holds the schedule this long at most.
    LEASE = timedelta(hours=1)

    def __init__(
        self,
        engine: Engine,
        service: ReconcileService,
        *,
        interval: timedelta,
        apply: bool,
        worker: str | None = None,
    ) -> None:
        self._engine = engine
        self._service = service
        self._interval = interval
        self._apply = apply and service.can_apply  # shadow mode only reports
        self._worker = worker or worker_name()
        super().__init__(
            "reconcile", poll_seconds=min(max(interval.total_seconds() / 4, 0.2), 30.0)
        )

    def run_if_due(self) -> bool:
        """Run the reconciliation if it is due and this replica takes it."""
        now = datetime.now(UTC)
        with self._engine.begin() as conn:
            taken = runs.take_schedule(
                conn, worker=self._worker, now=now, lease=self.LEASE, first_run_at=now
            )
        if not taken:
            return False
        try:
            self._service.run(apply=self._apply, trigger="schedule")
        except ReconcileIncomplete as exc:
            log.warning("scheduled reconciliation incomplete: %s", exc)
        finally:
            with self._engine.begin() as conn:
                runs.release_schedule(
                    conn, worker=self._worker, next_run_at=datetime.now(UTC) + self._interval
                )
        return True

    def round(self) -> bool:
        self.run_if_due()
        return False  # the next run is an interval away: wait a poll
