"""`gogs-scim plan`: what every pending converge job would change in Gogs, right now.

Each job is planned again against Gogs as it is now, with the convergers apply uses
on a client that only reads (gogs/planning.py): the store and Gogs are left exactly
as they were. In shadow mode it is the rehearsal's answer (what switching to apply
will do); in apply mode it shows what the queue is about to do.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gogs_scim.cli_support import ConfigOption, fail, store_and_gogs, wide_console
from gogs_scim.config import Settings
from gogs_scim.gogs.planning import JobPlan
from gogs_scim.store.jobs import PendingJob


class PlanFormat(StrEnum):
    table = "table"
    json = "json"


# A job's outcome, as the table says it.
_FAILED = {
    "conflict": "apply would refuse it (account conflict)",
    "rejected": "apply would fail",
    "unreachable": "Gogs unreachable: not planned",
}


def plan_command(
    config: ConfigOption = None,
    output: Annotated[
        PlanFormat, typer.Option("--format", help="table (default) or json.")
    ] = PlanFormat.table,
) -> None:
    """What every pending change would do in Gogs now (read-only: changes nothing).

    In shadow mode (provisioning.mode), what switching to apply will carry out. Exit 0;
    2 when the configuration is wrong or Gogs cannot be read."""
    from gogs_scim.cli import settings_or_exit

    settings = settings_or_exit(config)
    pairs = _plan_all(settings)
    if output is PlanFormat.json:
        Console().print_json(data=_as_json(settings, pairs), default=str)
        return
    _print_table(settings, pairs)


def _plan_all(settings: Settings) -> list[tuple[PendingJob, JobPlan]]:
    from gogs_scim.bootstrap import convergers, planner
    from gogs_scim.gogs.team_jobs import TeamJobRunner
    from gogs_scim.store import jobs

    with store_and_gogs(settings) as (engine, adapters):
        applying = convergers(settings, adapters.gogs, adapters.database, adapters.web)
        # The runner only reads the store here (desired members); it never runs a job.
        teams = TeamJobRunner(engine, applying.teams, settings.mappings)
        jobs_planner = planner(settings, engine, adapters, teams)
        with engine.connect() as conn:
            pending = jobs.pending(conn)
        pairs = [(item, jobs_planner.plan(item.job)) for item in pending]
    unreachable = next((plan for _, plan in pairs if plan.outcome == "unreachable"), None)
    if unreachable is not None:
        raise fail(f"cannot read Gogs at {settings.gogs.url}: {unreachable.detail}")
    return pairs


def _as_json(settings: Settings, pairs: list[tuple[PendingJob, JobPlan]]) -> dict[str, Any]:
    return {
        "mode": settings.provisioning.mode,
        "pending": [
            {
                "resource_type": plan.resource_type,
                "resource_id": plan.resource_id,
                "resource": plan.resource,
                "reason": item.job.reason,
                "queued_since": item.job.not_before,
                "planned_at": item.planned_at,
                "last_error": item.last_error,
                "outcome": plan.outcome,
                "detail": plan.detail,
                "groups": list(plan.group_ids),
                "calls": [
                    {"action": call.action, "target": call.target, "summary": call.summary}
                    for call in plan.calls
                ],
            }
            for item, plan in pairs
        ],
    }


def _print_table(settings: Settings, pairs: list[tuple[PendingJob, JobPlan]]) -> None:
    out = wide_console()
    mode = settings.provisioning.mode
    if not pairs:
        out.print(
            f"Mode: {mode}. Nothing pending: Gogs has every change the store holds.",
            highlight=False,
        )
        return
    carried = (
        "what switching to apply will carry out"
        if mode == "shadow"
        else "what the bridge is about to do"
    )
    out.print(
        f"Mode: {mode}. {len(pairs)} pending change(s), planned against Gogs now ({carried}); "
        "nothing was changed.",
        highlight=False,
    )
    table = Table("resource", "because", "Gogs target", "planned change", title="Plan")
    for item, plan in pairs:
        resource = f"{plan.resource_type} {plan.resource}"
        rows: list[tuple[str, str]] = [(call.target, call.summary) for call in plan.calls]
        if plan.outcome in _FAILED:
            rows.append(("", f"{_FAILED[plan.outcome]}: {plan.detail}"))
        elif plan.outcome == "gone":
            rows.append(("", f"nothing: {plan.detail}"))
        else:
            if not rows:
                rows.append(("", "nothing to change (Gogs already matches)"))
            if plan.detail:
                rows.append(("", f"note: {plan.detail}"))
        for index, (target, summary) in enumerate(rows):
            first = index == 0
            table.add_row(
                escape(resource) if first else "",
                escape(item.job.reason) if first else "",
                escape(target),
                escape(summary),
            )
        table.add_section()
    out.print(table)
