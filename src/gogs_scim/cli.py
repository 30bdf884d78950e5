"""The `gogs-scim` command line."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
import uvicorn
from rich.console import Console
from rich.table import Table

from gogs_scim.cli_audit import audit_app
from gogs_scim.cli_plan import plan_command
from gogs_scim.cli_reconcile import reconcile_command
from gogs_scim.cli_support import ConfigOption
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

# The audit sub-commands live in cli_audit.py (they import settings_or_exit lazily).
app.add_typer(audit_app, name="audit")
# `gogs-scim plan`: the rehearsal's answer (shadow mode), in cli_plan.py.
app.command("plan")(plan_command)
# `gogs-scim reconcile [--apply]`: drift between the IdP and Gogs, in cli_reconcile.py.
app.command("reconcile")(reconcile_command)


class _State:
    config: Path | None = None


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
        bridge = build_bridge(settings)
        if not settings.scim.all_tokens() and not _store_has_tokens(bridge.engine):
            bridge.close()
            raise ConfigError(
                "scim.tokens is empty: add [[scim.tokens]] name/token to the config file, "
                "set GOGS_SCIM_SCIM_TOKEN, or run `gogs-scim token create --name NAME`"
            )
    except ConfigError as exc:
        err.print(
            f"gogs-scim: configuration error: {exc}", markup=False, highlight=False, soft_wrap=True
        )
        raise typer.Exit(2) from None
    bridge.start()  # the converge worker, and the scheduled reconciliation
    try:
        server = uvicorn.Server(
            uvicorn.Config(
                bridge.app,
                host=host,
                port=port,
                log_level="info",
                access_log=False,
                lifespan="off",
                log_config=None,  # uvicorn's lines go through our handler (logs.py)
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
    shadow: Annotated[
        bool,
        typer.Option(
            "--shadow",
            help="Rehearse: store and plan every change, change nothing in Gogs "
            "(provisioning.mode = shadow; see `gogs-scim plan`).",
        ),
    ] = False,
) -> None:
    """Start a throwaway Gogs and the bridge in front of it, until Ctrl-C or SIGTERM."""
    from gogs_scim.demo import run_demo

    mode = "shadow" if shadow else "apply"
    raise typer.Exit(run_demo(port=port, info_file=info_file, mode=mode))


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
            report = build_report(
                conn,
                settings.mappings,
                audit_window=settings.reconcile.audit_window,
                mode=settings.provisioning.mode,
            )
    finally:
        engine.dispose()
    if as_json:
        out.print_json(data=dataclasses.asdict(report), default=str)
        return
    if settings.provisioning.mode == "shadow":
        out.print(
            "Mode: shadow (a rehearsal: nothing reaches Gogs; pending changes are planned, "
            "see `gogs-scim plan`)",
            highlight=False,
        )
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
    if report.reconcile is not None:
        out.print(_reconcile_line(report.reconcile), highlight=False)
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


def _reconcile_line(fresh: Any) -> str:
    """`fresh` is a store.reconcile_runs.Freshness (imported lazily, like the store)."""
    window = f"audit window {fresh.window}"
    if fresh.last_complete_at is None:
        return f"Last complete reconciliation: never (run `gogs-scim reconcile`; {window})"
    state = "STALE, older than the" if fresh.stale else "within the"
    return (
        f"Last complete reconciliation: {fresh.last_complete_at:%Y-%m-%d %H:%M:%S} UTC, "
        f"{int(fresh.age.total_seconds()) // 60} min ago, {fresh.drift} difference(s) left; "
        f"{state} {window}"
    )


def main() -> None:
    import os

    from gogs_scim.logs import configure_logging, wants_json

    # JSON lines on stderr (human lines for `demo`); GOGS_SCIM_LOG_FORMAT=json|human.
    configure_logging(json=wants_json(sys.argv[1:], os.environ))
    app()


# -- gogs-scim token: SCIM bearer tokens kept in the store (service/tokens.py) ------------

token_app = typer.Typer(
    help="SCIM bearer tokens for identity providers, kept (hashed) in the store. They "
    "take effect within a second, also while `serve` runs.",
    no_args_is_help=True,
)
app.add_typer(token_app, name="token")

_CLI_ACTOR = "cli"
_T = TypeVar("_T")


def _store_has_tokens(engine: Any) -> bool:
    from gogs_scim.service.tokens import TokenService

    return bool(TokenService(engine).list())


def _duration_or_exit(option: str, text: str) -> timedelta:
    from gogs_scim.durations import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        err.print(f"gogs-scim: {option}: {exc}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def _with_tokens(config: Path | None, use: Callable[[Any], _T]) -> _T:
    """Run `use(TokenService)` on the configured store; a TokenError exits 1."""
    from gogs_scim.bootstrap import open_store
    from gogs_scim.service.tokens import TokenError, TokenService

    engine = open_store(settings_or_exit(config))
    try:
        return use(TokenService(engine))
    except TokenError as exc:
        err.print(f"gogs-scim: {exc}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    finally:
        engine.dispose()


def _when(moment: datetime | None, never: str = "never") -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC" if moment is not None else never


def _print_secret(issued: Any, verb: str) -> None:
    # The secret alone on stdout (for scripts); everything else on stderr.
    err.print(
        f"{verb} token {issued.name!r}, expires {_when(issued.expires_at)}. "
        "Copy it now: it is not stored and cannot be shown again.",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    if issued.previous_expires_at is not None:
        err.print(
            f"The previous secret works until {_when(issued.previous_expires_at)}, or until "
            f"`gogs-scim token revoke {issued.name} --previous`.",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    out.print(issued.secret, markup=False, highlight=False, soft_wrap=True)


NameArgument = Annotated[str, typer.Argument(help="The token's name.", show_default=False)]


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Option("--name", help="A name for the token, e.g. the IdP.")],
    expires: Annotated[
        str | None, typer.Option(help="Lifetime, e.g. 90d, 24h, 30m (default: no expiry).")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Create a token and print it, once."""
    lifetime = _duration_or_exit("--expires", expires) if expires is not None else None
    issued = _with_tokens(config, lambda tokens: tokens.create(name, lifetime, _CLI_ACTOR))
    _print_secret(issued, "Created")


@token_app.command("list")
def token_list(
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the list as JSON.")] = False,
) -> None:
    """Name, created, expires and last used of every token; never a secret."""
    infos = _with_tokens(config, lambda tokens: tokens.list())
    if as_json:
        out.print_json(data=[dataclasses.asdict(info) for info in infos], default=str)
        return
    now = datetime.now(UTC)
    table = Table("name", "created", "expires", "last used", "previous secret until")
    for info in infos:
        expires = _when(info.expires_at)
        table.add_row(
            info.name,
            _when(info.created_at),
            f"{expires} (expired)" if info.expired(now) else expires,
            _when(info.last_used_at),
            _when(info.previous_until, "-"),
        )
    out.print(table)


@token_app.command("revoke")
def token_revoke(
    name: NameArgument,
    previous: Annotated[
        bool,
        typer.Option("--previous", help="Revoke only the secret a rotation replaced."),
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Revoke a token (refused within a second), or only its previous secret."""
    count = _with_tokens(
        config, lambda tokens: tokens.revoke(name, _CLI_ACTOR, previous_only=previous)
    )
    what = "previous secret" if previous else "token"
    err.print(f"Revoked the {what} of {name!r} ({count} secret(s)).", highlight=False)


@token_app.command("rotate")
def token_rotate(
    name: NameArgument,
    grace: Annotated[
        str, typer.Option(help="How long the previous secret keeps working, e.g. 24h, 30m.")
    ] = "24h",
    config: ConfigOption = None,
) -> None:
    """Issue a new secret for a token; the previous one works during the grace period."""
    period = _duration_or_exit("--grace", grace)
    issued = _with_tokens(config, lambda tokens: tokens.rotate(name, period, _CLI_ACTOR))
    _print_secret(issued, "Rotated")
