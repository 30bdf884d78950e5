"""`gogs-scim demo`: a throwaway Gogs, the bridge in front of it, and how to try it.

Everything lives in one temporary directory (Gogs's data, the bridge's SQLite store,
the demo's own config file) and is removed when the demo stops.
"""

from __future__ import annotations

import json
import secrets
import shutil
import signal
import socket
import tempfile
from pathlib import Path
from types import FrameType
from typing import Any

from rich.console import Console
from rich.table import Table

from gogs_scim.config import load_settings
from gogs_scim.gogs.client import GogsClient
from gogs_scim.gogs.sandbox import GogsSandbox, GogsUnavailable, RunningGogs

DEMO_ORG = "demo"
DEMO_TEAM = "developers"
DEMO_GROUP = "Developers"
DEMO_PERMISSION = "write"

console = Console()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _toml_string(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def write_demo_config(
    path: Path,
    gogs: RunningGogs,
    database_url: str,
    token: str,
    port: int,
    mode: str = "apply",
) -> None:
    path.write_text(
        "\n".join(
            [
                "# Written by `gogs-scim demo`; removed when the demo stops.",
                "[gogs]",
                f"url = {_toml_string(gogs.url)}",
                f"admin_token = {_toml_string(gogs.admin_token)}",
                f"admin_user = {_toml_string(gogs.admin_user)}",
                # The complete deprovisioning means: Gogs's own database (docs/deprovisioning.md).
                f"database_url = {_toml_string('sqlite:///' + str(gogs.database_path))}",
                "",
                "[database]",
                f"url = {_toml_string(database_url)}",
                "",
                "[server]",
                'host = "127.0.0.1"',
                f"port = {port}",
                "",
                # "shadow": a rehearsal, nothing changes in Gogs (docs/operations.md).
                "[provisioning]",
                f"mode = {_toml_string(mode)}",
                "",
                "[[scim.tokens]]",
                'name = "demo"',
                f"token = {_toml_string(token)}",
                "",
                "[[mappings]]",
                f"group = {_toml_string(DEMO_GROUP)}",
                f"org = {_toml_string(DEMO_ORG)}",
                f"team = {_toml_string(DEMO_TEAM)}",
                f"permission = {_toml_string(DEMO_PERMISSION)}",
                "exclusive = true",
                "",
            ]
        ),
        encoding="utf-8",
    )
    path.chmod(0o600)


def _prepare_gogs(gogs: RunningGogs) -> None:
    """The example mapping's organization and team, created in Gogs."""
    with GogsClient(gogs.url, gogs.admin_token) as client:
        if client.get_org(DEMO_ORG) is None:
            client.create_org(gogs.admin_user, DEMO_ORG, "gogs-scim demo")
        if not any(team.name == DEMO_TEAM for team in client.list_org_teams(DEMO_ORG)):
            client.create_team(DEMO_ORG, DEMO_TEAM, DEMO_PERMISSION, "Owned by the IdP")


def demo_info(
    gogs: RunningGogs, scim_base_url: str, token: str, database_url: str, config_file: Path
) -> dict[str, Any]:
    return {
        "scim_base_url": scim_base_url,
        "scim_token": token,
        "gogs_url": gogs.url,
        "gogs_ssh_port": gogs.ssh_port,
        "gogs_admin_user": gogs.admin_user,
        "gogs_admin_password": gogs.admin_password,
        "gogs_admin_token": gogs.admin_token,
        "database_url": database_url,
        "config_file": str(config_file),
        "mapped_groups": [
            {
                "group": DEMO_GROUP,
                "org": DEMO_ORG,
                "team": DEMO_TEAM,
                "permission": DEMO_PERMISSION,
                "exclusive": True,
            }
        ],
    }


def _print_info(info: dict[str, Any]) -> None:
    table = Table(title="gogs-scim demo", show_header=False)
    for key in (
        "scim_base_url",
        "scim_token",
        "gogs_url",
        "gogs_ssh_port",
        "gogs_admin_user",
        "gogs_admin_password",
        "config_file",
    ):
        table.add_row(key, str(info[key]))
    console.print(table)
    console.print(
        "Try it:\n"
        f"  curl -s -H 'Authorization: Bearer {info['scim_token']}' "
        "-H 'Content-Type: application/scim+json' \\\n"
        '    -d \'{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],'
        '"userName":"alice@example.com","name":{"givenName":"Alice","familyName":"Ng"},'
        '"emails":[{"value":"alice@example.com","primary":true}]}\' \\\n'
        f"    {info['scim_base_url']}/Users\n"
        f"Then see the user in Gogs: {info['gogs_url']}/alice (log in as "
        f"{info['gogs_admin_user']}).\n"
        f"Other commands act on this demo with: gogs-scim --config {info['config_file']} ...\n"
        "Stop with Ctrl-C.",
        highlight=False,
        soft_wrap=True,
    )


def _raise_keyboard_interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run_demo(port: int, info_file: Path | None, mode: str = "apply") -> int:
    """Run until SIGINT/SIGTERM; the exit code."""
    from gogs_scim.cli import serve_bridge

    # SIGTERM while Gogs is still starting must clean up like Ctrl-C does; once the
    # server runs, uvicorn installs its own handlers for both.
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    workdir = Path(tempfile.mkdtemp(prefix="gogs-scim-demo-"))
    try:
        with GogsSandbox() as gogs:
            _prepare_gogs(gogs)
            port = port or _free_port()
            token = secrets.token_urlsafe(32)
            database_url = f"sqlite:///{workdir / 'gogs-scim.db'}"
            config_file = workdir / "gogs-scim.toml"
            write_demo_config(config_file, gogs, database_url, token, port, mode)
            settings = load_settings(config_file, environ={})
            info = demo_info(
                gogs, f"http://127.0.0.1:{port}/scim/v2", token, database_url, config_file
            )
            _print_info(info)
            if info_file is not None:
                info_file.write_text(json.dumps(info, indent=2), encoding="utf-8")
                info_file.chmod(0o600)
            serve_bridge(settings, "127.0.0.1", port)
    except GogsUnavailable as exc:
        console.print(f"gogs-scim demo: cannot start Gogs: {exc}", highlight=False)
        return 1
    except KeyboardInterrupt:
        pass
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if info_file is not None:
            info_file.unlink(missing_ok=True)
    return 0
