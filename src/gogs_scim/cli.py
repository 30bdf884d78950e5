"""The `gogs-scim` command line."""

from __future__ import annotations

import dataclasses
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from rich.console import Console
from rich.table import Table

from gogs_scim.config import ConfigError, Settings, load_settings
from gogs_scim.service.status import StatusReport

app = typer.Typer(
    help="SCIM 2.0 bridge that makes a Gogs server follow an identity provider.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)
out = Console()


class _State:
    config: Path | None = None


ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="TOML config file (default: $GOGS_SCIM_CONFIG). GOGS_SCIM_* variables override it.",
        show_default=False,
    ),
]


@app.callback()
def _main(config: ConfigOption = None) -> None:
    _State.config = config


def settings_or_exit(config: Path | None = None) -> Settings:
    """Settings, or exit 2 with the one line saying which setting is wrong."""
    try:
        return load_settings(config or _State.config)
    except ConfigError as exc:
        err.print(
            f"gogs-scim: configuration error: {exc}", markup=False, highlight=False, soft_wrap=True
        )
        raise typer.Exit(2) from None


def serve_bridge(settings: Settings, host: str, port: int) -> None:
    """Run the API and the converge worker until SIGINT/SIGTERM."""
    from gogs_scim.bootstrap import build_bridge

    try:
        settings.require_gogs()
        if not settings.scim.all_tokens():
            raise ConfigError(
                "scim.tokens is empty: add [[scim.tokens]] name/token to the config file "
                "or set GOGS_SCIM_SCIM_TOKEN"
            )
        bridge = build_bridge(settings)
    except ConfigError as exc:
        err.print(
            f"gogs-scim: configuration error: {exc}", markup=False, highlight=False, soft_wrap=True
        )
        raise typer.Exit(2) from None
    bridge.worker.start()
    try:
        server = uvicorn.Server(
            uvicorn.Config(
                bridge.app, host=host, port=port, log_level="info", access_log=False, lifespan="off"
            )
        )
        server.run()
    finally:
        bridge.close()


@app.command()
def serve(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="Listen address (server.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (server.port).")] = None,
) -> None:
    """Serve SCIM for the configured Gogs: the production entry point."""
    settings = settings_or_exit(config)
    serve_bridge(settings, host or settings.server.host, port or settings.server.port)


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="Port for the SCIM service (0 = any free).")] = 8080,
    info_file: Annotated[
        Path | None, typer.Option("--info-file", help="Write the demo's details here as JSON.")
    ] = None,
) -> None:
    """Start a throwaway Gogs and the bridge in front of it, until Ctrl-C or SIGTERM."""
    from gogs_scim.demo import run_demo

    raise typer.Exit(run_demo(port=port, info_file=info_file))


@app.command()
def status(
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """What Gogs still lacks of what the IdP said: pending changes, errors, unmapped
    groups, managed teams, and what deactivation has not revoked. Reads the store only."""
    from gogs_scim.bootstrap import open_store
    from gogs_scim.service.status import build_report

    settings = settings_or_exit(config)
    engine = open_store(settings)
    try:
        with engine.connect() as conn:
            report = build_report(conn, settings.mappings)
    finally:
        engine.dispose()
    if as_json:
        out.print_json(data=dataclasses.asdict(report), default=str)
        return
    print_status(report)


def print_status(report: StatusReport) -> None:
    states = ", ".join(f"{n} {state}" for state, n in sorted(report.users_by_state.items()))
    out.print(
        f"Users: {report.active_users} active, {report.inactive_users} inactive "
        f"({states or 'none'}); {report.deleted_pending} deleted and not yet followed by Gogs",
        highlight=False,
    )
    out.print(
        f"Groups: {report.groups_total}, of which unmapped (grant nothing in Gogs): "
        f"{', '.join(report.unmapped_groups) or 'none'}",
        highlight=False,
    )
    oldest = f", oldest queued {report.oldest_job:%Y-%m-%d %H:%M:%S}" if report.oldest_job else ""
    out.print(f"Converge jobs pending: {report.pending_jobs}{oldest}", highlight=False)
    if report.teams:
        teams = Table("team", "permission", "owned by the IdP", "fed by groups", title="Teams")
        for team in report.teams:
            teams.add_row(
                f"{team.org}/{team.team}",
                team.permission,
                "yes" if team.exclusive else "no",
                ", ".join(team.groups)
                or "none match: no member is granted (a deleted group's team stays in Gogs)",
            )
        out.print(teams)
    if report.problems:
        problems = Table("kind", "name", "state", "detail", title="Not in step with Gogs")
        for problem in report.problems:
            problems.add_row(problem.kind, problem.name, problem.state, problem.detail)
        out.print(problems)
    if report.residual_access:
        residual = Table(
            "user", "not revoked in Gogs", title="Residual access of deactivated users"
        )
        for who, what in report.residual_access:
            residual.add_row(who, what)
        out.print(residual)


def main() -> None:
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    # Migration chatter and per-request client lines would drown what matters.
    for noisy in ("alembic", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    app()
