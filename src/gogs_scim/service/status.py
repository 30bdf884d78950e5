"""`gogs-scim status`: where Gogs stands against what the IdP said, read from the store.

It reads only the store (no Gogs call), so it answers while `serve` or `demo` runs and
while Gogs is down; what it reports as pending or in error is what the worker still
has to do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, func, select

from gogs_scim.config import TeamMapping
from gogs_scim.provisioning.teams import rule_matches, team_targets
from gogs_scim.store import reconcile_runs
from gogs_scim.store.tables import converge_jobs, groups, users


@dataclass(frozen=True)
class Problem:
    kind: str
    name: str
    state: str
    detail: str


@dataclass(frozen=True)
class TeamStatus:
    org: str
    team: str
    permission: str
    exclusive: bool
    groups: tuple[str, ...]

    @property
    def orphaned(self) -> bool:
        """No group in the store feeds it: in Gogs it stays, emptied (no team delete API)."""
        return not self.groups


@dataclass(frozen=True)
class StatusReport:
    users_by_state: dict[str, int]
    active_users: int
    inactive_users: int
    deleted_pending: int
    groups_total: int
    unmapped_groups: tuple[str, ...]
    teams: tuple[TeamStatus, ...]
    pending_jobs: int
    oldest_job: datetime | None
    problems: tuple[Problem, ...]
    residual_access: tuple[tuple[str, str], ...] = field(default=())
    # The last complete `gogs-scim reconcile` (None: the report was built without a
    # window, or no run has completed: `last_complete_at` None).
    reconcile: reconcile_runs.Freshness | None = None
    mode: str = "apply"

    @property
    def healthy(self) -> bool:
        return not self.problems


def _users_by_state(conn: Connection) -> dict[str, int]:
    rows = conn.execute(
        select(users.c.sync_state, func.count())
        .where(users.c.deleted_at.is_(None))
        .group_by(users.c.sync_state)
    )
    return {str(state): int(count) for state, count in rows}


def build_report(
    conn: Connection,
    mappings: Sequence[TeamMapping],
    *,
    audit_window: timedelta | None = None,
    mode: str = "apply",
) -> StatusReport:
    live = users.c.deleted_at.is_(None)
    users_by_state = _users_by_state(conn)
    active = conn.execute(select(func.count()).where(live, users.c.active.is_(True))).scalar_one()
    inactive = conn.execute(
        select(func.count()).where(live, users.c.active.is_(False))
    ).scalar_one()
    deleted_pending = conn.execute(
        select(func.count()).where(users.c.deleted_at.is_not(None), users.c.sync_state != "synced")
    ).scalar_one()

    group_rows = conn.execute(
        select(
            groups.c.display_name, groups.c.external_id, groups.c.sync_state, groups.c.sync_error
        ).where(groups.c.deleted_at.is_(None))
    ).all()
    unmapped = tuple(
        sorted(
            row.display_name
            for row in group_rows
            if not any(rule_matches(rule, row.display_name, row.external_id) for rule in mappings)
        )
    )
    teams = tuple(
        TeamStatus(
            org=target.org,
            team=target.team,
            permission=target.permission,
            exclusive=target.exclusive,
            groups=tuple(
                sorted(
                    row.display_name
                    for row in group_rows
                    if any(
                        rule_matches(rule, row.display_name, row.external_id)
                        for rule in target.rules
                    )
                )
            ),
        )
        for target in team_targets(mappings).values()
    )

    problems: list[Problem] = []
    for row in conn.execute(
        select(users.c.user_name, users.c.gogs_login, users.c.sync_state, users.c.sync_error)
        .where(users.c.sync_state != "synced")
        .order_by(users.c.user_name)
    ):
        problems.append(
            Problem(
                "User",
                f"{row.user_name} (Gogs {row.gogs_login})",
                row.sync_state,
                row.sync_error or "waiting for the worker",
            )
        )
    for row in sorted(group_rows, key=lambda r: r.display_name):
        if row.sync_state != "synced":
            problems.append(
                Problem("Group", row.display_name, row.sync_state, row.sync_error or "waiting")
            )

    # What deprovisioning could not close, per user, as the last converge recorded it
    # (docs/deprovisioning.md), so nobody reads "inactive" as "locked out".
    residual = tuple(
        (f"{row.user_name} (Gogs {row.gogs_login})", "; ".join(row.residual_access))
        for row in conn.execute(
            select(users.c.user_name, users.c.gogs_login, users.c.residual_access)
            .where(users.c.residual_access.is_not(None))
            .order_by(users.c.user_name)
        )
        if row.residual_access
    )
    pending, oldest = conn.execute(select(func.count(), func.min(converge_jobs.c.created_at))).one()
    return StatusReport(
        users_by_state=users_by_state,
        active_users=int(active),
        inactive_users=int(inactive),
        deleted_pending=int(deleted_pending),
        groups_total=len(group_rows),
        unmapped_groups=unmapped,
        teams=teams,
        pending_jobs=int(pending),
        oldest_job=oldest,
        problems=tuple(problems),
        residual_access=residual,
        reconcile=_reconcile_freshness(conn, audit_window),
        mode=mode,
    )


def _reconcile_freshness(
    conn: Connection, window: timedelta | None
) -> reconcile_runs.Freshness | None:
    if window is None:
        return None
    now = datetime.now(UTC)
    # `status` is not the server: "never reconciled" is reported as such, not as stale
    # by uptime (up_since = now).
    return reconcile_runs.freshness(conn, now=now, window=window, up_since=now)
