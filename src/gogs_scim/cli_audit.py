"""`gogs-scim audit ...`: verify the chain, export records, one user's access history.

All three read the store only (they never call Gogs) and need nothing but
`database.url` from the configuration.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy import Engine

from gogs_scim.audit.report import (
    export_rows,
    find_people,
    parse_since,
    user_timeline,
    write_csv,
    write_jsonl,
)
from gogs_scim.audit.trail import check, snapshot
from gogs_scim.cli_support import ConfigOption, fail, wide_console

audit_app = typer.Typer(
    help="The audit trail: verify its hash chain, export it, show one user's history.",
    no_args_is_help=True,
)
_out = Console()


class ExportFormat(StrEnum):
    jsonl = "jsonl"
    csv = "csv"


def _engine(config: Path | None) -> Engine:
    from gogs_scim.bootstrap import open_store
    from gogs_scim.cli import settings_or_exit

    return open_store(settings_or_exit(config))


@audit_app.command("verify")
def verify_command(config: ConfigOption = None) -> None:
    """Check that no record was edited, deleted, reordered or cut off the end.

    Exit 0 with "N records, chain intact", or 1 naming the first broken record."""
    engine = _engine(config)
    try:
        with snapshot(engine) as conn:
            report = check(conn)
    finally:
        engine.dispose()
    if report.broken is not None:
        raise fail(f"audit trail broken at record {report.broken.seq}: {report.broken.reason}", 1)
    _out.print(f"{report.records} records, chain intact", highlight=False)


@audit_app.command("export")
def export_command(
    config: ConfigOption = None,
    since: Annotated[
        str | None,
        typer.Option(help="Only records from then on: ISO 8601 time, or a duration (7d, 12h)."),
    ] = None,
    fmt: Annotated[
        ExportFormat, typer.Option("--format", help="jsonl (one JSON object a line) or csv.")
    ] = ExportFormat.jsonl,
) -> None:
    """Write the records to stdout, oldest first, secrets redacted."""
    try:
        start = parse_since(since) if since else None
    except ValueError as exc:
        raise fail(str(exc)) from None
    engine = _engine(config)
    try:
        with snapshot(engine) as conn:
            rows = export_rows(conn, start)
            if fmt is ExportFormat.csv:
                write_csv(rows, sys.stdout)
            else:
                write_jsonl(rows, sys.stdout)
    finally:
        engine.dispose()
    sys.stdout.flush()


@audit_app.command("show")
def show_command(
    user: Annotated[str, typer.Argument(help="SCIM id, userName or Gogs login.")],
    config: ConfigOption = None,
) -> None:
    """Who had access to what, when, and why: one user's timeline, with the group and team changes that named them."""  # noqa: E501
    engine = _engine(config)
    try:
        with engine.connect() as conn:
            people = find_people(conn, user)
            if not people:
                raise fail(f"no user with SCIM id, userName or Gogs login {user!r}", 1)
            entries = user_timeline(conn, people)
    finally:
        engine.dispose()
    out = wide_console()
    for person in people:
        state = " (deleted)" if person.deleted else ""
        out.print(
            f"{person.user_name}{state}: SCIM id {person.id}, Gogs login {person.gogs_login}",
            highlight=False,
            markup=False,
        )
    table = Table(
        "when (UTC)",
        "seq",
        "by",
        "request",
        "action",
        "resource",
        "outcome",
        "what",
        title=f"Audit trail of {user}",
    )
    for column in table.columns:
        column.overflow = "fold"  # a narrow terminal wraps cells, never cuts them
    for entry in entries:
        table.add_row(
            f"{entry.at:%Y-%m-%d %H:%M:%S}",
            str(entry.seq),
            entry.actor or "(bridge)",
            (entry.request_id or "")[:12],
            entry.action,
            escape(entry.resource),
            entry.outcome,
            escape(entry.what),
        )
    out.print(table)
