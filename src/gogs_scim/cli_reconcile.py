"""`gogs-scim reconcile`: what differs between the IdP and Gogs, and with --apply, repair it.

Exit codes are for cron and CI: 0 no drift (or all of it repaired), 1 drift remains,
2 the comparison could not be made (configuration, Gogs unreachable, --apply in
shadow mode). Works beside a running `serve` on the same store.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from gogs_scim.cli_support import ConfigOption, err, fail, store_and_gogs, wide_console
from gogs_scim.config import Settings
from gogs_scim.gogs.drift import DriftItem
from gogs_scim.service.reconcile import (
    ReconcileIncomplete,
    ReconcileRefused,
    ReconcileReport,
    ReconcileService,
)


class ReconcileFormat(StrEnum):
    table = "table"
    json = "json"


def reconcile_command(
    config: ConfigOption = None,
    apply: Annotated[
        bool,
        typer.Option(
            "--apply", help="Repair the drift (each repair is audited), then check again."
        ),
    ] = False,
    output: Annotated[
        ReconcileFormat, typer.Option("--format", help="table (default) or json.")
    ] = ReconcileFormat.table,
) -> None:
    """Compare what the IdP said with what Gogs has, and print the drift.

    Exit 0: no drift (or all of it repaired); 1: drift remains; 2: could not compare
    (configuration error, Gogs unreachable, --apply in shadow mode)."""
    from gogs_scim.cli import settings_or_exit

    settings = settings_or_exit(config)
    if apply and settings.provisioning.mode == "shadow":
        raise fail(
            "provisioning.mode = shadow: nothing may change Gogs, so reconcile --apply is "
            "refused; run `gogs-scim reconcile` without --apply to see the drift"
        )
    with _service(settings) as service, _progress() as progress:
        first = progress.add_task("comparing", total=None)
        second = progress.add_task("checking again", total=None, visible=False)

        def compared(done: int, total: int) -> None:
            progress.update(first, completed=done, total=total)

        def rechecked(done: int, total: int) -> None:
            progress.update(second, completed=done, total=total, visible=True)

        try:
            report = service.run(
                apply=apply, trigger="cli", progress=compared, recheck_progress=rechecked
            )
        except ReconcileRefused as exc:
            raise fail(str(exc)) from None
        except ReconcileIncomplete as exc:
            raise fail(f"reconciliation incomplete: {exc}") from None
    if output is ReconcileFormat.json:
        Console().print_json(data=_as_json(settings, report), default=str)
    else:
        _print_table(report)
    raise typer.Exit(0 if report.clean else 1)


@contextmanager
def _progress() -> Iterator[Progress]:
    # On stderr, so stdout stays the table (or JSON) alone; drawn only on a terminal.
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    ) as progress:
        yield progress


@contextmanager
def _service(settings: Settings) -> Iterator[ReconcileService]:
    from gogs_scim.bootstrap import convergers, reconciliation
    from gogs_scim.gogs.reconciler import Reconciler
    from gogs_scim.gogs.team_jobs import TeamJobRunner

    with store_and_gogs(settings) as (engine, adapters):
        applying = convergers(settings, adapters.gogs, adapters.database, adapters.web)
        teams = TeamJobRunner(engine, applying.teams, settings.mappings)
        runner = Reconciler(engine, applying.users, teams=teams)
        yield reconciliation(settings, engine, adapters, teams, runner)


def _item_json(item: DriftItem) -> dict[str, Any]:
    return {
        "resource_type": item.resource_type,
        "resource_id": item.resource_id,
        "subject": item.subject,
        "what": item.what,
        "idp": item.idp,
        "gogs": item.gogs,
        "repair": item.repair,
        "note": item.note,
    }


def _as_json(settings: Settings, report: ReconcileReport) -> dict[str, Any]:
    repaired = {item.identity for item in report.repaired}
    return {
        "run": report.run_id,
        "mode": settings.provisioning.mode,
        "applied": report.applied,
        "compared": {"users": report.found.users, "teams": report.found.teams},
        "drift": [
            {**_item_json(item), "repaired": item.identity in repaired}
            for item in report.found.items
        ],
        # After --apply: what the second comparison still found (may include new drift).
        "left": [_item_json(item) for item in report.left.items],
        "busy": list(report.busy),
    }


def _print_table(report: ReconcileReport) -> None:
    out = wide_console()
    found, left = report.found, report.left
    compared = f"{found.users} user(s) and {found.teams} managed team(s) compared"
    if not found.items:
        out.print(f"No drift: Gogs matches what the IdP said ({compared}).", highlight=False)
        return
    repaired = {item.identity for item in report.repaired}
    table = Table("resource", "subject", "what", "IdP says", "Gogs has", "repair", title="Drift")
    if report.applied:
        table.add_column("result")
    for item in found.items:
        row = [
            # The SCIM id or team key is in --format json; people read the subject.
            escape(item.resource_type),
            escape(item.subject),
            escape(item.what),
            escape(item.idp),
            escape(item.gogs),
            escape(item.repair_text),
        ]
        if report.applied:
            row.append("repaired" if item.identity in repaired else "left")
        table.add_row(*row)
    out.print(table)
    if report.applied:
        out.print(
            f"{len(found.items)} difference(s) found ({compared}); {len(report.repaired)} "
            f"repaired, {len(left.items)} left.",
            highlight=False,
        )
        for resource in report.busy:
            out.print(
                f"{resource}: another worker was converging it; left to that worker.",
                highlight=False,
            )
        new = [
            item for item in left.items if item.identity not in {i.identity for i in found.items}
        ]
        for item in new:
            out.print(
                f"New since the first look: {item.subject}: {item.what} "
                f"(IdP: {item.idp}; Gogs: {item.gogs}).",
                markup=False,
                highlight=False,
            )
    else:
        manual = sum(1 for item in found.items if item.repair == "manual")
        out.print(
            f"{len(found.items)} difference(s) found ({compared}); "
            f"{len(found.items) - manual} repairable with `gogs-scim reconcile --apply`"
            + (f", {manual} need a person." if manual else "."),
            highlight=False,
        )
