"""Running "Team" converge jobs: read the desired members, converge, record the outcome.

The Reconciler hands every job whose resource type is "Team" to `TeamJobRunner.run`;
the job's resource id is the team key (provisioning.teams.team_key). Also here:
`enqueue_teams`, which every write that can change a team's members calls in its own
transaction, so the job is committed with the change that makes it necessary.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import Connection, Engine

from gogs_scim.audit.trail import AuditEntry, append
from gogs_scim.config import TeamMapping
from gogs_scim.gogs.client import GogsError, GogsUnreachable
from gogs_scim.gogs.teams import TeamConvergeInterrupted, TeamConverger, TeamUnavailable
from gogs_scim.provisioning.teams import (
    TEAM_RESOURCE_TYPE,
    TeamTarget,
    team_targets,
    teams_of_group,
)
from gogs_scim.store import groups as group_store
from gogs_scim.store import jobs, team_grants

log = logging.getLogger(__name__)

# "rejected": Gogs refused, or the team cannot exist as configured (missing org).
TeamOutcome = Literal["synced", "unreachable", "rejected", "gone"]


@dataclass(frozen=True)
class TeamRunResult:
    outcome: TeamOutcome
    detail: str = ""


@dataclass(frozen=True)
class DesiredTeam:
    """A team's converge input: the rule, the groups feeding it (the why), the logins
    they grant and the logins the bridge added to it before."""

    target: TeamTarget
    group_ids: list[str]
    members: frozenset[str]
    granted: frozenset[str]


def enqueue_teams(conn: Connection, keys: Iterable[str], reason: str, now: datetime) -> list[str]:
    """Ask for each team in `keys` to be converged; the keys, sorted, for the inline run."""
    ordered = sorted(set(keys))
    for key in ordered:
        jobs.enqueue(conn, TEAM_RESOURCE_TYPE, key, reason, now)
    return ordered


def _matching_groups(conn: Connection, target: TeamTarget) -> list[group_store.GroupRecord]:
    names = [rule.group for rule in target.rules if rule.match == "displayName"]
    ids = [rule.group for rule in target.rules if rule.match == "externalId"]
    return group_store.groups_matching(conn, names, ids)


class TeamJobRunner:
    def __init__(
        self, engine: Engine, converger: TeamConverger, mappings: Sequence[TeamMapping]
    ) -> None:
        self._engine = engine
        self._converger = converger
        self._targets = team_targets(mappings)

    def teams_of_user(self, conn: Connection, user_id: str) -> set[str]:
        """The keys of the teams the user's groups feed."""
        if not self._targets:
            return set()
        rules = [rule for target in self._targets.values() for rule in target.rules]
        keys: set[str] = set()
        for group in group_store.groups_of_user(conn, user_id):
            keys |= teams_of_group(rules, group.display_name, group.external_id)
        return keys

    def desired(self, key: str) -> DesiredTeam | None:
        """What the store says team `key` should be; None when no mapping names it."""
        target = self._targets.get(key)
        if target is None:
            return None
        with self._engine.connect() as conn:
            matched = _matching_groups(conn, target)
            group_ids = [group.id for group in matched]
            members = group_store.active_member_logins(conn, group_ids)
            granted = team_grants.granted_logins(conn, target.key)
        return DesiredTeam(target, group_ids, frozenset(members), frozenset(granted))

    def run(self, job: jobs.ConvergeJob, request_id: str | None = None) -> TeamRunResult:
        wanted = self.desired(job.resource_id)
        if wanted is None:
            # The mapping was removed from the configuration since the job was queued.
            with self._engine.begin() as conn:
                jobs.complete(conn, job)
            return TeamRunResult("gone")
        target, group_ids = wanted.target, wanted.group_ids
        desired, granted = wanted.members, wanted.granted
        try:
            try:
                result = self._converger.converge(target, desired, granted)
            except TeamConvergeInterrupted as interrupted:
                with self._engine.begin() as conn:
                    _remember(conn, target, interrupted.added, interrupted.removed)
                raise interrupted.cause from interrupted
        except GogsUnreachable as exc:
            detail = f"Gogs is unreachable: {exc}"
            return self._failed(job, target, group_ids, "unreachable", detail, request_id)
        except TeamUnavailable as exc:
            return self._failed(job, target, group_ids, "rejected", str(exc), request_id)
        except GogsError as exc:
            detail = f"Gogs refused: {exc}"
            return self._failed(job, target, group_ids, "rejected", detail, request_id)
        warning = "; ".join(result.warnings) or None
        with self._engine.begin() as conn:
            _remember(conn, target, result.added, result.removed)
            group_store.set_sync_state(conn, group_ids, "error" if warning else "synced", warning)
            jobs.complete(conn, job)
            for call in result.calls:
                append(
                    conn,
                    AuditEntry(
                        action=f"gogs.{call.action}",
                        resource_type=TEAM_RESOURCE_TYPE,
                        resource_id=target.key,
                        request_id=request_id,
                        # `groups`: the groups whose members the team follows (the why).
                        detail={"target": call.target, "reason": job.reason, "groups": group_ids},
                    ),
                )
        return TeamRunResult("synced", warning or "")

    def _failed(
        self,
        job: jobs.ConvergeJob,
        target: TeamTarget,
        group_ids: list[str],
        outcome: TeamOutcome,
        detail: str,
        request_id: str | None,
    ) -> TeamRunResult:
        now = datetime.now(UTC)
        message = f"team {target.org}/{target.team}: {detail}"
        with self._engine.begin() as conn:
            retry_at = jobs.retry_later(conn, job, message, now)
            state = "pending" if outcome == "unreachable" else "error"
            group_store.set_sync_state(conn, group_ids, state, message)
            append(
                conn,
                AuditEntry(
                    action="gogs.converge_failed",
                    outcome=outcome,
                    resource_type=TEAM_RESOURCE_TYPE,
                    resource_id=target.key,
                    request_id=request_id,
                    detail={"error": message, "retry_at": retry_at.isoformat()},
                ),
            )
        log.warning("converge of %s failed (%s): %s", target.key, outcome, message)
        return TeamRunResult(outcome, message)


def _remember(
    conn: Connection, target: TeamTarget, added: Iterable[str], removed: Iterable[str]
) -> None:
    """Record whom the bridge added to (removed from) the team: team_grants."""
    team_grants.record_changes(
        conn,
        target.key,
        target.org,
        target.team,
        added=added,
        removed=removed,
        now=datetime.now(UTC),
    )
