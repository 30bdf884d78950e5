"""`gogs-scim demo`: starts, publishes its details, provisions, and leaves nothing behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from gogs_scim.gogs.client import GogsClient
from tests.conftest import unique

pytestmark = pytest.mark.gogs

INFO_KEYS = {
    "scim_base_url",
    "scim_token",
    "gogs_url",
    "gogs_ssh_port",
    "gogs_admin_user",
    "gogs_admin_password",
    "gogs_admin_token",
    "database_url",
    "config_file",
    "mapped_groups",
}


def _children(pid: int) -> set[int]:
    """Every live descendant of `pid` (from /proc, no extra dependency)."""
    found: set[int] = set()
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == parent and int(entry.name) not in found:
                found.add(int(entry.name))
                frontier.append(int(entry.name))
    return found


def _wait_for(path: Path, process: subprocess.Popen[bytes], seconds: float) -> dict[str, object]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"demo exited early with {process.returncode}")
        if path.exists() and path.stat().st_size:
            try:
                data: dict[str, object] = json.loads(path.read_text())
                return data
            except json.JSONDecodeError:
                pass
        time.sleep(0.2)
    pytest.fail("demo wrote no info file in time")


def _wait_ready(url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail(f"{url} did not answer in time")


def test_demo_runs_provisions_and_cleans_up(tmp_path: Path) -> None:
    info_file = tmp_path / "demo.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "gogs_scim", "demo", "--port", "0", "--info-file", str(info_file)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    try:
        info = _wait_for(info_file, process, 120)
        assert set(info) >= INFO_KEYS
        base = str(info["scim_base_url"])
        _wait_ready(base.removesuffix("/scim/v2") + "/healthz", 30)
        config_file = Path(str(info["config_file"]))
        assert config_file.exists()
        assert info["mapped_groups"] == [
            {
                "group": "Developers",
                "org": "demo",
                "team": "developers",
                "permission": "write",
                "exclusive": True,
            }
        ]
        workdir = config_file.parent

        login = unique("demo")
        created = httpx.post(
            f"{base}/Users",
            headers={
                "Authorization": f"Bearer {info['scim_token']}",
                "Content-Type": "application/scim+json",
            },
            json={
                "userName": f"{login}@example.com",
                "emails": [{"value": f"{login}@example.com"}],
            },
            timeout=30,
        )
        assert created.status_code == 201, created.text
        with GogsClient(str(info["gogs_url"]), str(info["gogs_admin_token"])) as gogs:
            account = gogs.get_user(login)
            assert account is not None and account.email == f"{login}@example.com"
            assert any(team.name == "developers" for team in gogs.list_org_teams("demo"))
        descendants = _children(process.pid)
        assert descendants, "Gogs should run as a child of the demo"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert code == 0
    assert not workdir.exists()
    assert not info_file.exists()
    for pid in descendants:
        assert not Path(f"/proc/{pid}").exists() or _is_zombie(pid), f"process {pid} left running"


def _is_zombie(pid: int) -> bool:
    try:
        return (Path(f"/proc/{pid}") / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_serve_without_gogs_url_names_the_setting(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOGS_SCIM_")}
    result = subprocess.run(
        [sys.executable, "-m", "gogs_scim", "serve"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "gogs.url" in lines[0]


def test_serve_without_gogs_token_names_the_setting(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOGS_SCIM_")}
    env["GOGS_SCIM_GOGS_URL"] = "http://127.0.0.1:9"
    result = subprocess.run(
        [sys.executable, "-m", "gogs_scim", "serve"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "gogs.admin_token" in lines[0]
