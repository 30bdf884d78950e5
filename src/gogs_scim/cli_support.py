"""What every `gogs-scim` sub-command shares: the --config option, consoles, failing
with one line, and opening the store and Gogs for the commands that read both.

Kept apart from cli.py so that the sub-command modules (cli_audit, cli_plan,
cli_reconcile), which cli.py imports, need not import cli.py back.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from gogs_scim.config import ConfigError, Settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from gogs_scim.bootstrap import GogsAdapters

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="TOML config file (default: $GOGS_SCIM_CONFIG). GOGS_SCIM_* variables override it.",
        show_default=False,
    ),
]

err = Console(stderr=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print `gogs-scim: message` on stderr; raise the result to exit with `code`."""
    err.print(f"gogs-scim: {message}", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(code)


def wide_console() -> Console:
    """A console sized now (COLUMNS is read at creation); wide when writing to a file
    or pipe, so a saved table is not cut to 80 columns."""
    console = Console()
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(width=240)
    return console


@contextmanager
def store_and_gogs(settings: Settings) -> Iterator[tuple[Engine, GogsAdapters]]:
    """The migrated store and the Gogs adapters, Gogs checked reachable first; exits 2
    with one line on a configuration error or an unreachable Gogs. Closes both."""
    from gogs_scim.bootstrap import gogs_adapters, open_store
    from gogs_scim.gogs.client import GogsError

    try:
        adapters = gogs_adapters(settings)
    except ConfigError as exc:
        raise fail(f"configuration error: {exc}") from None
    engine = open_store(settings)
    try:
        try:
            adapters.gogs.whoami()
        except GogsError as exc:
            raise fail(f"cannot read Gogs at {adapters.gogs.base_url}: {exc}") from None
        yield engine, adapters
    finally:
        adapters.close()
        engine.dispose()
