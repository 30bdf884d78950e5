"""Running converge jobs: claim, converge, record the outcome and audit it.

The inline apply after a request and the background worker both come through
`Reconciler.run`, so a change reaches Gogs the same way whichever runs it.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol

from sqlalchemy import Connection, Engine

from gogs_scim.audit.trail import AuditEntry, append
from gogs_scim.gogs.client import GogsError, GogsUnreachable
from gogs_scim.gogs.converge import AccountConflict, UserConverger
from gogs_scim.gogs.team_jobs import TeamJobRunner, enqueue_teams
from gogs_scim.provisioning.teams import TEAM_RESOURCE_TYPE
from gogs_scim.store import jobs
from gogs_scim.store import users as user_store
from gogs_scim.store.users import UserRecord

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)
# How often one request re-runs a team job that was re-armed while it ran; past that
# (a steady stream of changes) the worker takes over.
_INLINE_RERUNS = 5

# "planned": shadow mode recorded the plan and left the job for apply (gogs/shadow.py).
Outcome = Literal["synced", "conflict", "rejected", "unreachable", "gone", "busy", "planned"]


@dataclass(frozen=True)
class RunResult:
    outcome: Outcome
    detail: str = ""


class ConvergeRunner(Protocol):
    """What the services and the worker need of whatever converges jobs: `Reconciler`
    in apply mode, `ShadowReconciler` (gogs/shadow.py) in shadow mode."""

    def converge_user_now(
        self, user_id: str, *, password: str | None = None, request_id: str | None = None
    ) -> RunResult: ...

    def converge_teams_now(self, keys: list[str], *, request_id: str | None = None) -> None: ...

    def run_due(self, limit: int = 20) -> int: ...


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Reconciler:
    def __init__(
        self,
        engine: Engine,
        converger: UserConverger,
        worker: str | None = None,
        *,
        teams: TeamJobRunner | None = None,
    ):
        self._engine = engine
        self._converger = converger
        self._worker = worker or worker_name()
        # Group -> team mappings; None when the bridge manages no teams.
        self._teams = teams

    def converge_user_now(
        self, user_id: str, *, password: str | None = None, request_id: str | None = None
    ) -> RunResult:
        """Converge one user right away, if no other worker holds its job."""
        now = datetime.now(UTC)
        with self._engine.begin() as conn:
            job = jobs.claim_resource(conn, "User", user_id, self._worker, now, LEASE)
        if job is None:
            return RunResult("busy", "another worker is converging this user")
        return self.run(job, password=password, request_id=request_id)

    def converge_teams_now(self, keys: list[str], *, request_id: str | None = None) -> None:
        """Converge teams right away (after a group change).

        A team whose job another request holds is left to it: when a change re-arms
        a job while it runs, `jobs.complete` keeps it, and the holder runs it again
        here, so concurrent group changes reach Gogs without waiting for the worker.
        """
        for key in keys:
            for _ in range(_INLINE_RERUNS):
                now = datetime.now(UTC)
                with self._engine.begin() as conn:
                    job = jobs.claim_resource(
                        conn, TEAM_RESOURCE_TYPE, key, self._worker, now, LEASE
                    )
                if job is None or self.run(job, request_id=request_id).outcome != "synced":
                    break

    def run_due(self, limit: int = 20) -> int:
        """Run the jobs that are due; the number run."""
        now = datetime.now(UTC)
        with self._engine.begin() as conn:
            due = jobs.claim(conn, self._worker, now, LEASE, limit)
        for job in due:
            self.run(job)
        return len(due)

    def run(
        self, job: jobs.ConvergeJob, *, password: str | None = None, request_id: str | None = None
    ) -> RunResult:
        if job.resource_type == TEAM_RESOURCE_TYPE:
            return self._run_team(job, request_id)
        with self._engine.connect() as conn:
            user = user_store.get_user(conn, job.resource_id, include_deleted=True)
        if user is None:
            with self._engine.begin() as conn:
                jobs.complete(conn, job)
            return RunResult("gone")
        if self._teams is not None and (not user.active or user.deleted_at is not None):
            # Team access goes whatever becomes of the account itself: a conflict or a
            # refusal below must not leave a deactivated user in a team.
            with self._engine.begin() as conn:
                self._user_teams(conn, user, changed=True)
        try:
            result = self._converger.converge(user, password)
        except GogsUnreachable as exc:
            return self._failed(job, "unreachable", f"Gogs is unreachable: {exc}", request_id)
        except AccountConflict as exc:
            return self._failed(job, "conflict", str(exc), request_id)
        except GogsError as exc:
            return self._failed(job, "rejected", f"Gogs refused: {exc}", request_id)
        with self._engine.begin() as conn:
            user_store.set_sync_state(
                conn,
                user.id,
                sync_state=user_store.SYNC_SYNCED,
                sync_error=None,
                gogs_user_id=result.gogs_user_id,
                gogs_adopted=result.adopted,
                revoked_at=result.revoked_at,
                residual_access=list(result.residual) or None,
            )
            if result.residual != user.residual_access:
                append(
                    conn,
                    AuditEntry(
                        action="gogs.residual_access",
                        outcome="partial" if result.residual else "ok",
                        resource_type="User",
                        resource_id=user.id,
                        request_id=request_id,
                        detail={"login": user.gogs_login, "residual": list(result.residual)},
                    ),
                )
            team_keys = self._user_teams(conn, user, changed=bool(result.calls))
            jobs.complete(conn, job)
            for call in result.calls:
                append(
                    conn,
                    AuditEntry(
                        action=f"gogs.{call.action}",
                        resource_type="User",
                        resource_id=user.id,
                        request_id=request_id,
                        detail={"login": call.target, "reason": job.reason},
                    ),
                )
        self.converge_teams_now(team_keys, request_id=request_id)
        return RunResult("synced")

    def _user_teams(self, conn: Connection, user: UserRecord, *, changed: bool) -> list[str]:
        """Queue the teams a user's groups feed when the user's access may have moved:
        deactivated or deleted (leave), or the account changed or appeared in Gogs
        (join, now that it exists). Committed with the user's own outcome."""
        if self._teams is None or not (changed or not user.active or user.deleted_at):
            return []
        keys = self._teams.teams_of_user(conn, user.id)
        return enqueue_teams(conn, keys, "user", datetime.now(UTC))

    def _run_team(self, job: jobs.ConvergeJob, request_id: str | None) -> RunResult:
        if self._teams is None:
            # Team jobs left from a configuration that had mappings: nothing to do.
            with self._engine.begin() as conn:
                jobs.complete(conn, job)
            return RunResult("gone")
        result = self._teams.run(job, request_id)
        return RunResult(result.outcome, result.detail)

    def _failed(
        self, job: jobs.ConvergeJob, outcome: Outcome, detail: str, request_id: str | None
    ) -> RunResult:
        now = datetime.now(UTC)
        with self._engine.begin() as conn:
            retry_at = jobs.retry_later(conn, job, detail, now)
            state = user_store.SYNC_PENDING if outcome == "unreachable" else user_store.SYNC_ERROR
            user_store.set_sync_state(conn, job.resource_id, sync_state=state, sync_error=detail)
            append(
                conn,
                AuditEntry(
                    action="gogs.converge_failed",
                    outcome=outcome,
                    resource_type=job.resource_type,
                    resource_id=job.resource_id,
                    request_id=request_id,
                    detail={"error": detail, "retry_at": retry_at.isoformat()},
                ),
            )
        log.warning(
            "converge of %s %s failed (%s): %s", job.resource_type, job.resource_id, outcome, detail
        )
        return RunResult(outcome, detail)
