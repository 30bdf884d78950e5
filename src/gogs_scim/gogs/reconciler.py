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
from typing import Literal

from sqlalchemy import Engine

from gogs_scim.audit.trail import AuditEntry, append
from gogs_scim.gogs.client import GogsError, GogsUnreachable
from gogs_scim.gogs.converge import AccountConflict, UserConverger
from gogs_scim.store import jobs
from gogs_scim.store import users as user_store

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)

Outcome = Literal["synced", "conflict", "rejected", "unreachable", "gone", "busy"]


@dataclass(frozen=True)
class RunResult:
    outcome: Outcome
    detail: str = ""


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Reconciler:
    def __init__(self, engine: Engine, converger: UserConverger, worker: str | None = None):
        self._engine = engine
        self._converger = converger
        self._worker = worker or worker_name()

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
        with self._engine.connect() as conn:
            user = user_store.get_user(conn, job.resource_id, include_deleted=True)
        if user is None:
            with self._engine.begin() as conn:
                jobs.complete(conn, job)
            return RunResult("gone")
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
            )
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
        return RunResult("synced")

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
