"""Shadow mode (`provisioning.mode = "shadow"`): a rehearsal that changes nothing in Gogs.

`ShadowReconciler` stands where `Reconciler` stands in apply mode (the services' inline
converge and the background worker) and does everything but the Gogs writes: it plans
each job (gogs/planning.py: the same convergers, on a client that only records
writes), appends the plan to the audit trail (`plan.<call>` records, outcome
"planned"; `plan.no_change`; `plan.failed` when apply would fail) and leaves the job
queued, due, for an apply-mode bridge on the same store to carry out.

What shadow mode writes is the store only: the SCIM resources, the audit trail, and
on the job queue the time each job's plan was recorded (`planned_at`, so the worker
plans each change once and does not re-plan the same jobs every second) and the
team jobs a user's change makes necessary (as apply would queue them). It never
marks anything converged: `syncState` stays "pending" until apply has run the job,
team grants stay as they are, and a conflict apply would answer with 409 is
accepted, stored and shown in the plan instead (docs/operations.md).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine

from gogs_scim.audit.trail import AuditEntry, append
from gogs_scim.gogs.planning import JobPlan, Planner
from gogs_scim.gogs.reconciler import LEASE, RunResult, worker_name
from gogs_scim.gogs.team_jobs import TeamJobRunner, enqueue_teams
from gogs_scim.provisioning.teams import TEAM_RESOURCE_TYPE
from gogs_scim.store import jobs
from gogs_scim.store import users as user_store

log = logging.getLogger(__name__)


class ShadowReconciler:
    """Plans jobs and records the plans; the ConvergeRunner of shadow mode."""

    def __init__(
        self,
        engine: Engine,
        planner: Planner,
        worker: str | None = None,
        *,
        teams: TeamJobRunner | None = None,
    ) -> None:
        self._engine = engine
        self._planner = planner
        self._worker = worker or worker_name()
        self._teams = teams

    def converge_user_now(
        self, user_id: str, *, password: str | None = None, request_id: str | None = None
    ) -> RunResult:
        now = datetime.now(UTC)
        with self._engine.begin() as conn:
            job = jobs.claim_resource(conn, "User", user_id, self._worker, now, LEASE)
        if job is None:
            return RunResult("busy", "another worker is planning this user")
        return self.run(job, password_sent=password is not None, request_id=request_id)

    def converge_teams_now(self, keys: list[str], *, request_id: str | None = None) -> None:
        for key in keys:
            now = datetime.now(UTC)
            with self._engine.begin() as conn:
                job = jobs.claim_resource(conn, TEAM_RESOURCE_TYPE, key, self._worker, now, LEASE)
            if job is not None:
                self.run(job, request_id=request_id)

    def run_due(self, limit: int = 20) -> int:
        """Plan the due jobs whose plan is not recorded yet; the number planned."""
        now = datetime.now(UTC)
        with self._engine.begin() as conn:
            due = jobs.claim(conn, self._worker, now, LEASE, limit, unplanned_only=True)
        for job in due:
            self.run(job)
        return len(due)

    def run(
        self, job: jobs.ConvergeJob, *, password_sent: bool = False, request_id: str | None = None
    ) -> RunResult:
        try:
            plan = self._planner.plan(job, password_sent=password_sent)
        except Exception:
            # E.g. the store is briefly unavailable: give the job back for the next round.
            with self._engine.begin() as conn:
                jobs.release(conn, job)
            raise
        now = datetime.now(UTC)
        if plan.outcome == "unreachable":
            # No plan without Gogs's answers: retried with backoff, like apply.
            with self._engine.begin() as conn:
                retry_at = jobs.retry_later(conn, job, f"planning: {plan.detail}", now)
                self._audit(conn, plan, job, request_id, "plan.failed", plan.outcome, retry_at)
            log.warning("planning %s %s: Gogs unreachable", job.resource_type, job.resource_id)
            return RunResult("unreachable", plan.detail)
        team_keys: list[str] = []
        with self._engine.begin() as conn:
            for call in plan.calls:
                append(
                    conn,
                    AuditEntry(
                        action=f"plan.{call.action}",
                        outcome="planned",
                        resource_type=job.resource_type,
                        resource_id=job.resource_id,
                        request_id=request_id,
                        detail=self._detail(plan, job, target=call.target, summary=call.summary),
                    ),
                )
            if plan.outcome in ("conflict", "rejected"):
                self._audit(conn, plan, job, request_id, "plan.failed", plan.outcome)
            elif not plan.calls:
                self._audit(conn, plan, job, request_id, "plan.no_change", "planned")
            if job.resource_type != TEAM_RESOURCE_TYPE:
                team_keys = self._user_teams(conn, job.resource_id, changed=bool(plan.calls))
            jobs.mark_planned(conn, job, now)
        # The teams the user's change moves are planned too, as apply would converge them.
        self.converge_teams_now(team_keys, request_id=request_id)
        return RunResult("planned", plan.detail)

    def _user_teams(self, conn: Connection, user_id: str, *, changed: bool) -> list[str]:
        """Queue the user's teams when apply would (Reconciler._user_teams): the user
        must leave them (deactivated, deleted) or the account changes in Gogs."""
        if self._teams is None:
            return []
        user = user_store.get_user(conn, user_id, include_deleted=True)
        if user is None or not (changed or not user.active or user.deleted_at is not None):
            return []
        keys = self._teams.teams_of_user(conn, user.id)
        return enqueue_teams(conn, keys, "user", datetime.now(UTC))

    @staticmethod
    def _detail(plan: JobPlan, job: jobs.ConvergeJob, **extra: str) -> dict[str, Any]:
        detail: dict[str, Any] = {"mode": "shadow", "resource": plan.resource, **extra}
        detail["reason"] = job.reason
        if plan.detail:
            # Why apply would fail, or what the plan notes (team warnings, a password).
            failed = plan.outcome in ("conflict", "rejected", "unreachable")
            detail["error" if failed else "note"] = plan.detail
        if plan.group_ids:
            detail["groups"] = list(plan.group_ids)
        return detail

    def _audit(
        self,
        conn: Connection,
        plan: JobPlan,
        job: jobs.ConvergeJob,
        request_id: str | None,
        action: str,
        outcome: str,
        retry_at: datetime | None = None,
    ) -> None:
        extra = {"retry_at": retry_at.isoformat()} if retry_at is not None else {}
        append(
            conn,
            AuditEntry(
                action=action,
                outcome=outcome,
                resource_type=job.resource_type,
                resource_id=job.resource_id,
                request_id=request_id,
                detail=self._detail(plan, job, **extra),
            ),
        )
