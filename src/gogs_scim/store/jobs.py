"""The converge queue: "make Gogs match resource X", committed with the change itself.

A job is written in the same transaction as the desired state, so a crash or a Gogs
outage delays a change but never loses it. Jobs are coalesced per resource: converge
is level-triggered and reads the newest desired state, so one pending job per
resource is all that is ever needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, and_, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from gogs_scim.store.tables import converge_jobs


@dataclass(frozen=True)
class ConvergeJob:
    id: int
    resource_type: str
    resource_id: str
    reason: str
    attempts: int
    not_before: datetime


@dataclass(frozen=True)
class PendingJob:
    job: ConvergeJob
    last_error: str | None
    # When shadow mode last recorded the job's plan (None: not planned since queued).
    planned_at: datetime | None


def enqueue(
    conn: Connection, resource_type: str, resource_id: str, reason: str, now: datetime
) -> None:
    """Ask for resource X to be converged now (merging with a pending job for it)."""
    merged = conn.execute(
        update(converge_jobs)
        .where(
            converge_jobs.c.resource_type == resource_type,
            converge_jobs.c.resource_id == resource_id,
        )
        # A new change needs a new plan in shadow mode.
        .values(reason=reason, not_before=now, attempts=0, planned_at=None)
    )
    if merged.rowcount:
        return
    try:
        with conn.begin_nested():
            conn.execute(
                insert(converge_jobs).values(
                    resource_type=resource_type,
                    resource_id=resource_id,
                    reason=reason,
                    not_before=now,
                    attempts=0,
                    created_at=now,
                )
            )
    except IntegrityError:
        # Another transaction enqueued the same resource in between: that job will do.
        return


def claim(
    conn: Connection,
    worker: str,
    now: datetime,
    lease: timedelta,
    limit: int,
    *,
    unplanned_only: bool = False,
) -> list[ConvergeJob]:
    """Take up to `limit` due jobs for `worker`; a lease that runs out frees them again.

    `unplanned_only`: skip the jobs whose plan shadow mode has recorded already."""
    due = and_(
        converge_jobs.c.not_before <= now,
        or_(converge_jobs.c.claimed_until.is_(None), converge_jobs.c.claimed_until < now),
    )
    if unplanned_only:
        due = and_(due, converge_jobs.c.planned_at.is_(None))
    query = select(converge_jobs).where(due).order_by(converge_jobs.c.not_before).limit(limit)
    if conn.dialect.name == "postgresql":
        # Replicas sharing PostgreSQL never take the same job.
        query = query.with_for_update(skip_locked=True)
    rows = conn.execute(query).all()
    jobs = [_job(row) for row in rows]
    if jobs:
        conn.execute(
            update(converge_jobs)
            .where(converge_jobs.c.id.in_([job.id for job in jobs]))
            .values(claimed_by=worker, claimed_until=now + lease)
        )
    return jobs


def claim_resource(
    conn: Connection,
    resource_type: str,
    resource_id: str,
    worker: str,
    now: datetime,
    lease: timedelta,
) -> ConvergeJob | None:
    """Claim the pending job of one resource, for the inline converge after a request."""
    query = select(converge_jobs).where(
        converge_jobs.c.resource_type == resource_type,
        converge_jobs.c.resource_id == resource_id,
        or_(converge_jobs.c.claimed_until.is_(None), converge_jobs.c.claimed_until < now),
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    row = conn.execute(query).first()
    if row is None:
        return None
    conn.execute(
        update(converge_jobs)
        .where(converge_jobs.c.id == row.id)
        .values(claimed_by=worker, claimed_until=now + lease)
    )
    return _job(row)


def complete(conn: Connection, job: ConvergeJob) -> None:
    """Done — unless the resource changed meanwhile (then the job was re-armed: keep it)."""
    conn.execute(
        delete(converge_jobs).where(
            converge_jobs.c.id == job.id,
            converge_jobs.c.not_before == job.not_before,
        )
    )
    conn.execute(
        update(converge_jobs)
        .where(converge_jobs.c.id == job.id)
        .values(claimed_by=None, claimed_until=None)
    )


def retry_later(conn: Connection, job: ConvergeJob, error: str, now: datetime) -> datetime:
    """Release the job with exponential backoff (1 s doubling, capped at 5 minutes)."""
    delay = timedelta(seconds=min(300, 2 ** min(job.attempts, 9)))
    when = now + delay
    conn.execute(
        update(converge_jobs)
        .where(converge_jobs.c.id == job.id, converge_jobs.c.not_before == job.not_before)
        .values(
            attempts=job.attempts + 1,
            last_error=error[:2000],
            not_before=when,
            claimed_by=None,
            claimed_until=None,
        )
    )
    # Re-armed while it ran: the newer change is due now, so only free the claim.
    release(conn, job)
    return when


def mark_planned(conn: Connection, job: ConvergeJob, now: datetime) -> None:
    """Shadow mode recorded the job's plan: keep the job for an apply-mode bridge, due
    as it is, and free the claim. Re-armed while it was planned: stays unplanned."""
    conn.execute(
        update(converge_jobs)
        .where(converge_jobs.c.id == job.id, converge_jobs.c.not_before == job.not_before)
        .values(planned_at=now)
    )
    release(conn, job)


def pending(conn: Connection) -> list[PendingJob]:
    """Every queued job, oldest change first (for `gogs-scim plan`)."""
    rows = conn.execute(
        select(converge_jobs).order_by(converge_jobs.c.not_before, converge_jobs.c.id)
    ).all()
    return [
        PendingJob(
            job=_job(row),
            last_error=row.last_error,
            planned_at=row.planned_at,
        )
        for row in rows
    ]


def release(conn: Connection, job: ConvergeJob) -> None:
    """Give a claimed job back untouched (the worker is stopping)."""
    conn.execute(
        update(converge_jobs)
        .where(converge_jobs.c.id == job.id)
        .values(claimed_by=None, claimed_until=None)
    )


def drop(conn: Connection, resource_type: str, resource_id: str) -> None:
    conn.execute(
        delete(converge_jobs).where(
            converge_jobs.c.resource_type == resource_type,
            converge_jobs.c.resource_id == resource_id,
        )
    )


def pending_count(conn: Connection) -> int:
    return conn.execute(select(func.count()).select_from(converge_jobs)).scalar_one()


def _job(row: Row[Any]) -> ConvergeJob:
    return ConvergeJob(
        id=row.id,
        resource_type=row.resource_type,
        resource_id=row.resource_id,
        reason=row.reason,
        attempts=row.attempts,
        not_before=row.not_before,
    )
