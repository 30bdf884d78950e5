"""Reconciliation runs and their schedule: what each run found, and who runs the next.

`freshness` is what /readyz and the metrics read: how old the last complete run is,
compared with the audit window (`[reconcile] audit_window`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from gogs_scim.store.tables import reconcile_runs, reconcile_schedule

_SCHEDULE = "reconcile"


def _utc(moment: datetime) -> datetime:
    # SQLite hands timezone-aware columns back naive; they were written in UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def start(conn: Connection, *, trigger: str, worker: str, applied: bool, now: datetime) -> int:
    """Record a run that has begun; its id, for `finish`."""
    result = conn.execute(
        insert(reconcile_runs).values(
            trigger=trigger, worker=worker, applied=applied, started_at=now, complete=False
        )
    )
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def finish(
    conn: Connection,
    run_id: int,
    *,
    now: datetime,
    found: int | None = None,
    repaired: int | None = None,
    left: int | None = None,
    error: str | None = None,
) -> None:
    """Record how a run ended: complete (counts) or not (`error`)."""
    conn.execute(
        update(reconcile_runs)
        .where(reconcile_runs.c.id == run_id)
        .values(
            finished_at=now,
            complete=error is None,
            drift_found=found,
            repaired=repaired,
            drift_left=left,
            error=error[:2000] if error else None,
        )
    )


@dataclass(frozen=True)
class Freshness:
    """How current the comparison of the store with Gogs is."""

    last_complete_at: datetime | None
    # Drift left by the last complete run (None: no run has completed).
    drift: int | None
    age: timedelta | None
    window: timedelta
    stale: bool


def freshness(
    conn: Connection, *, now: datetime, window: timedelta, up_since: datetime
) -> Freshness:
    """Stale when the last complete run is older than `window`; with none yet, only
    once the bridge has been up longer than the window (a new bridge is not red)."""
    row = conn.execute(
        select(reconcile_runs.c.finished_at, reconcile_runs.c.drift_left)
        .where(reconcile_runs.c.complete.is_(True), reconcile_runs.c.finished_at.is_not(None))
        .order_by(reconcile_runs.c.finished_at.desc())
        .limit(1)
    ).first()
    if row is None:
        return Freshness(None, None, None, window, now - up_since > window)
    finished = _utc(row.finished_at)
    age = now - finished
    return Freshness(finished, row.drift_left, age, window, age > window)


def take_schedule(
    conn: Connection, *, worker: str, now: datetime, lease: timedelta, first_run_at: datetime
) -> bool:
    """Whether `worker` runs the scheduled reconciliation now: it is due and no other
    replica holds it. The conditional UPDATE is atomic on both engines (PostgreSQL
    re-checks the condition on the row a concurrent taker just changed)."""
    exists = select(reconcile_schedule.c.name).where(reconcile_schedule.c.name == _SCHEDULE)
    if conn.execute(exists).first() is None:
        try:
            with conn.begin_nested():
                conn.execute(
                    insert(reconcile_schedule).values(name=_SCHEDULE, next_run_at=first_run_at)
                )
        except IntegrityError:
            pass  # another replica created it in between
    taken = conn.execute(
        update(reconcile_schedule)
        .where(
            reconcile_schedule.c.name == _SCHEDULE,
            reconcile_schedule.c.next_run_at <= now,
            (reconcile_schedule.c.held_until.is_(None)) | (reconcile_schedule.c.held_until < now),
        )
        .values(held_by=worker, held_until=now + lease)
    )
    return taken.rowcount == 1


def release_schedule(conn: Connection, *, worker: str, next_run_at: datetime) -> None:
    """The scheduled run is over: the next is due at `next_run_at`, for any replica."""
    conn.execute(
        update(reconcile_schedule)
        .where(reconcile_schedule.c.name == _SCHEDULE, reconcile_schedule.c.held_by == worker)
        .values(next_run_at=next_run_at, held_by=None, held_until=None)
    )
