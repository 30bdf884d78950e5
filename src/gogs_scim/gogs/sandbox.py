"""A throwaway, real Gogs server on loopback, for `gogs-scim demo` and the test suite.

The integration tests must run against the real Gogs binary (a fake cannot prove that
Gogs changed), so this module finds or builds that binary, starts it on free loopback
ports inside a private temporary directory, creates a site admin through Gogs's own CLI
and an API token through its API, and tears everything down afterwards.

Every sandbox owns its ports, directory, database and process group, so any number of
them can run side by side (pytest-xdist workers, repeated runs).
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import pwd
import secrets
import shutil
import signal
import socket
import string
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Literal
from urllib.parse import quote

import httpx

from gogs_scim.gogs.client import GogsClient, GogsError

GOGS_VERSION = "0.14.3"
GOGS_MODULE = "gogs.io/gogs"
BINARY_ENV = "GOGS_SCIM_GOGS_BINARY"
ADMIN_USER = "scim-admin"  # "admin" is reserved by Gogs.
ADMIN_EMAIL = "scim-admin@example.invalid"
TOKEN_NAME = "gogs-scim"  # noqa: S105 (the token's label, not a secret)

_STARTUP_TIMEOUT_S = 60.0
_STOP_GRACE_S = 10.0
_BUILD_TIMEOUT_S = 900.0
_LOG_TAIL_LINES = 30
# Letters and digits only: Gogs passes every app.ini value through os.ExpandEnv, so a
# `$` would be eaten, and `;`/`#` could start an ini comment.
_SECRET_ALPHABET = string.ascii_letters + string.digits


class GogsUnavailable(RuntimeError):
    """The real Gogs binary could not be found, built or started."""


def gogs_cache_dir() -> Path:
    """Where the built binary is cached, keyed by version, outside the repository."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gogs-scim" / f"gogs-v{GOGS_VERSION}"


def find_gogs_binary(*, build: bool = True) -> Path:
    """Return an absolute path to a Gogs v0.14.3 binary, building it if allowed.

    Order: `$GOGS_SCIM_GOGS_BINARY`, then the cache, then (if `build`) `go install` into
    the cache. Raises GogsUnavailable with a message saying how to provide one.
    """
    explicit = os.environ.get(BINARY_ENV)
    if explicit:
        binary = Path(explicit).expanduser().resolve()
        if not binary.is_file():
            raise GogsUnavailable(f"{BINARY_ENV}={explicit} does not point to a file.")
        _check_version(binary)
        return binary

    cache_dir = gogs_cache_dir()
    binary = cache_dir / "gogs"
    if not binary.is_file():
        if not build:
            raise GogsUnavailable(_missing_binary_message(binary, reason="building is disabled"))
        _build_once(cache_dir, binary)
    _check_version(binary)
    return binary.resolve()


def _missing_binary_message(binary: Path, *, reason: str) -> str:
    return (
        f"No Gogs v{GOGS_VERSION} binary at {binary} ({reason}).\n"
        f"Provide one: build it with `GOBIN={binary.parent} go install "
        f"{GOGS_MODULE}@v{GOGS_VERSION}` (Go >= 1.25, module proxy access), or build it "
        f"from a checkout of https://github.com/gogs/gogs at tag v{GOGS_VERSION} with "
        f"`go build -o gogs .`, then either copy it to {binary} or set "
        f"{BINARY_ENV}=/absolute/path/to/gogs."
    )


def _build_once(cache_dir: Path, binary: Path) -> None:
    """Run `go install` under an exclusive file lock.

    pytest-xdist workers all call this at once; the lock makes one of them build while
    the others wait and then find the finished binary.
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    with (cache_dir / ".build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if binary.is_file():
                return
            _go_install(cache_dir, binary)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _go_install(cache_dir: Path, binary: Path) -> None:
    go = shutil.which("go")
    if go is None:
        raise GogsUnavailable(_missing_binary_message(binary, reason="`go` is not on PATH"))
    env = {**os.environ, "GOBIN": str(cache_dir)}
    try:
        done = subprocess.run(
            [go, "install", f"{GOGS_MODULE}@v{GOGS_VERSION}"],
            env=env,
            capture_output=True,
            text=True,
            timeout=_BUILD_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise GogsUnavailable(
            _missing_binary_message(binary, reason=f"`go install` timed out after {exc.timeout}s")
        ) from exc
    if done.returncode != 0 or not binary.is_file():
        tail = _tail(done.stderr or done.stdout, 8)
        raise GogsUnavailable(
            _missing_binary_message(binary, reason="`go install` failed") + f"\ngo said:\n{tail}"
        )


def _check_version(binary: Path) -> None:
    try:
        done = subprocess.run(
            [str(binary), "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except OSError as exc:
        raise GogsUnavailable(f"Cannot run {binary}: {exc}") from exc
    if GOGS_VERSION not in done.stdout + done.stderr:
        seen = _tail(done.stdout + done.stderr, 3) or "(no output)"
        raise GogsUnavailable(
            f"{binary} is not Gogs v{GOGS_VERSION}; `--version` printed: {seen}. "
            f"Point {BINARY_ENV} at a v{GOGS_VERSION} binary."
        )


def _tail(text: str, lines: int) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _random_secret(length: int) -> str:
    return "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(length))


def _free_loopback_port() -> int:
    # The OS picks an unused port; there is a small window before Gogs binds it, which
    # GogsSandbox covers by retrying with fresh ports on "address already in use".
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _current_username() -> str:
    # Gogs refuses to start unless RUN_USER equals the user it runs as.
    return pwd.getpwuid(os.geteuid()).pw_name


@dataclass(frozen=True)
class ExternalDatabase:
    """A MySQL/MariaDB or PostgreSQL database for the sandbox Gogs to run on, instead
    of its own SQLite file (the Gogs-database deprovisioning means is proven on each)."""

    kind: Literal["mysql", "postgres"]
    host: str
    port: int
    name: str
    user: str
    password: str = field(default="", repr=False)

    @property
    def url(self) -> str:
        """The DSN an operator would give gogs-scim as `[gogs] database_url`."""
        scheme = "mysql" if self.kind == "mysql" else "postgresql"
        password = f":{quote(self.password, safe='')}" if self.password else ""
        return f"{scheme}://{self.user}{password}@{self.host}:{self.port}/{self.name}"

    def app_ini(self) -> str:
        """Gogs's `[database]` keys (conf/app.ini at v0.14.3)."""
        lines = [
            f"TYPE = {self.kind}",
            f"HOST = {self.host}:{self.port}",
            f"NAME = {self.name}",
            f"USER = {self.user}",
            # Backquotes: go-ini takes what stands between them literally.
            f"PASSWORD = `{self.password}`" if self.password else "PASSWORD =",
        ]
        if self.kind == "postgres":
            lines.append("SSL_MODE = disable")
        return "\n".join(lines)


@dataclass(frozen=True)
class RunningGogs:
    """How to reach a started sandbox Gogs.

    `url` is the web root WITHOUT a trailing slash (``http://127.0.0.1:PORT``), so
    ``f"{url}/api/v1/..."`` and ``f"{url}/owner/repo.git"`` compose without doubling.
    Credentials are kept out of ``repr`` so they never land in test output.
    """

    url: str
    ssh_port: int
    admin_user: str
    admin_password: str = field(repr=False)
    admin_token: str = field(repr=False)
    app_ini: Path
    work_dir: Path
    # Gogs's SQLite file; with an ExternalDatabase it is not used (nor created).
    database_path: Path
    repos_root: Path
    pid: int
    # Gogs's database as a gogs-scim `[gogs] database_url` (sqlite:///..., mysql://...);
    # it may carry a password, so it stays out of repr too.
    database_url: str = field(default="", repr=False)

    @property
    def http_port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])


class _PortInUse(Exception):
    """Gogs lost the race for a port we picked; retry with fresh ones."""


class GogsSandbox:
    """Context manager running one private Gogs; `__enter__` returns RunningGogs.

    `restart()` stops and starts the same Gogs (same ports, same data); `stop()` ends
    it and deletes its directory. A stopped sandbox cannot be started again.
    """

    def __init__(
        self,
        binary: Path | None = None,
        *,
        startup_timeout: float = _STARTUP_TIMEOUT_S,
        database: ExternalDatabase | None = None,
    ) -> None:
        self._binary = binary
        self._database = database
        self._startup_timeout = startup_timeout
        self._work_dir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._running: RunningGogs | None = None
        self._http_port = 0
        self._ssh_port = 0

    # -- public API ---------------------------------------------------------------

    def __enter__(self) -> RunningGogs:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> RunningGogs:
        if self._running is None:
            raise RuntimeError("the Gogs sandbox is not running")
        return self._running

    def start(self) -> RunningGogs:
        """Create the directory, start Gogs, and make the admin user and token."""
        if self._work_dir is not None:
            raise RuntimeError("this GogsSandbox was already started")
        binary = (self._binary or find_gogs_binary()).resolve()
        self._binary = binary
        self._work_dir = Path(tempfile.mkdtemp(prefix="gogs-scim-gogs-"))
        # Kill Gogs even if the caller never reaches stop() (Ctrl-C, a crashed worker).
        atexit.register(self.stop)
        try:
            self._start_on_free_ports()
            password = _random_secret(32)
            self._create_admin(password)
            token = self._create_admin_token(password)
        except BaseException:
            self.stop()
            raise
        self._running = RunningGogs(
            url=self._url,
            ssh_port=self._ssh_port,
            admin_user=ADMIN_USER,
            admin_password=password,
            admin_token=token,
            app_ini=self._app_ini,
            work_dir=self._work_dir,
            database_path=self._database_path,
            repos_root=self._repos_root,
            pid=self._pid,
            database_url=self._database_url,
        )
        return self._running

    def restart(self) -> RunningGogs:
        """Stop Gogs and start it again on the same ports and data; returns the new pid.

        The admin user and token survive (they are in the database); sessions do not
        (the session provider is memory).
        """
        running = self.running
        self._stop_process()
        self._launch_and_wait()
        self._running = RunningGogs(
            url=running.url,
            ssh_port=running.ssh_port,
            admin_user=running.admin_user,
            admin_password=running.admin_password,
            admin_token=running.admin_token,
            app_ini=running.app_ini,
            work_dir=running.work_dir,
            database_path=running.database_path,
            repos_root=running.repos_root,
            pid=self._pid,
            database_url=running.database_url,
        )
        return self._running

    def halt(self) -> None:
        """Stop the Gogs process only, keeping its data; `restart()` starts it again."""
        self._stop_process()

    def stop(self) -> None:
        """Stop Gogs (SIGTERM, then SIGKILL after 10 s) and delete its directory."""
        atexit.unregister(self.stop)
        self._stop_process()
        self._running = None
        if self._work_dir is not None:
            shutil.rmtree(self._work_dir, ignore_errors=True)

    # -- layout -------------------------------------------------------------------

    @property
    def _dir(self) -> Path:
        assert self._work_dir is not None
        return self._work_dir

    @property
    def _app_ini(self) -> Path:
        return self._dir / "custom" / "conf" / "app.ini"

    @property
    def _database_path(self) -> Path:
        return self._dir / "data" / "gogs.db"

    @property
    def _database_url(self) -> str:
        if self._database is not None:
            return self._database.url
        return f"sqlite:///{self._database_path}"

    @property
    def _repos_root(self) -> Path:
        return self._dir / "repos"

    @property
    def _log_path(self) -> Path:
        return self._dir / "gogs.log"

    @property
    def _url(self) -> str:
        return f"http://127.0.0.1:{self._http_port}"

    @property
    def _pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def _env(self) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            # GIT_DIR & co. (set when tests run from a git hook) would redirect the git
            # commands Gogs runs; GOGS_* would override our work and custom dirs.
            if not key.startswith(("GIT_", "GOGS_"))
        }
        home = self._dir / "home"
        home.mkdir(exist_ok=True)
        # Gogs checks each SSH key by writing it to <TMPDIR>/<nanoseconds>/id_rsa.pub and
        # never removes that directory: inside the sandbox, it goes with the sandbox.
        tmp = self._dir / "tmp"
        tmp.mkdir(exist_ok=True)
        user = _current_username()
        env.update(
            TMPDIR=str(tmp),
            # Gogs may write ~/.gitconfig; keep it out of the real home.
            HOME=str(home),
            USER=user,
            LOGNAME=user,
            GOGS_WORK_DIR=str(self._dir),
            GOGS_CUSTOM=str(self._dir / "custom"),
        )
        return env

    def _write_app_ini(self) -> None:
        d = self._dir
        self._app_ini.parent.mkdir(parents=True, exist_ok=True)
        for sub in ("data", "repos", "ssh", "log"):
            (d / sub).mkdir(exist_ok=True)
        database = (
            self._database.app_ini()
            if self._database is not None
            else f"TYPE = sqlite3\nPATH = {self._database_path}"
        )
        # Key names from conf/app.ini at v0.14.3; see gogs-facts.md section 5.
        self._app_ini.write_text(
            f"""\
RUN_USER = {_current_username()}
RUN_MODE = prod

[server]
PROTOCOL = http
HTTP_ADDR = 127.0.0.1
HTTP_PORT = {self._http_port}
DOMAIN = 127.0.0.1
EXTERNAL_URL = {self._url}/
APP_DATA_PATH = {d / "data"}
OFFLINE_MODE = true
DISABLE_SSH = false
START_SSH_SERVER = true
SSH_DOMAIN = 127.0.0.1
SSH_PORT = {self._ssh_port}
SSH_LISTEN_HOST = 127.0.0.1
SSH_LISTEN_PORT = {self._ssh_port}
; Key deletion rewrites <SSH_ROOT_PATH>/authorized_keys even with the builtin server;
; the default would be the real ~/.ssh.
SSH_ROOT_PATH = {d / "ssh"}

[repository]
ROOT = {self._repos_root}

[database]
{database}

[security]
INSTALL_LOCK = true
SECRET_KEY = {_random_secret(40)}

[auth]
DISABLE_REGISTRATION = true
REQUIRE_SIGNIN_VIEW = false
REQUIRE_EMAIL_CONFIRMATION = false
ENABLE_REGISTRATION_CAPTCHA = false

[email]
ENABLED = false

[session]
PROVIDER = memory

[picture]
DISABLE_GRAVATAR = true

[log]
MODE = console
LEVEL = Warn
ROOT_PATH = {d / "log"}
""",
            encoding="utf-8",
        )

    # -- process ------------------------------------------------------------------

    def _start_on_free_ports(self) -> None:
        for attempt in range(3):
            self._http_port = _free_loopback_port()
            self._ssh_port = _free_loopback_port()
            while self._ssh_port == self._http_port:
                self._ssh_port = _free_loopback_port()
            self._write_app_ini()
            try:
                self._launch_and_wait()
                return
            except _PortInUse:
                self._stop_process()
                if attempt == 2:
                    raise GogsUnavailable(
                        "Gogs could not bind a free loopback port after 3 tries:\n"
                        + self._log_tail()
                    ) from None

    def _launch_and_wait(self) -> None:
        assert self._binary is not None
        with self._log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [str(self._binary), "web", "-c", str(self._app_ini)],
                cwd=self._dir,
                env=self._env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own process group, so stop() also reaches `gogs serv` children.
                start_new_session=True,
            )
        self._wait_healthy()

    def _wait_healthy(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self._startup_timeout
        with httpx.Client(timeout=2.0) as http:
            while time.monotonic() < deadline:
                code = self._process.poll()
                if code is not None:
                    tail = self._log_tail()
                    if "address already in use" in tail:
                        raise _PortInUse
                    raise GogsUnavailable(
                        f"Gogs exited with status {code} during start-up. Log tail "
                        f"({self._log_path}):\n{tail}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if http.get(f"{self._url}/healthcheck").status_code == 200:
                        return
                time.sleep(0.1)
        raise GogsUnavailable(
            f"Gogs did not answer /healthcheck within {self._startup_timeout:.0f}s. "
            f"Log tail:\n{self._log_tail()}"
        )

    def _stop_process(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        for sig, wait_s in ((signal.SIGTERM, _STOP_GRACE_S), (signal.SIGKILL, _STOP_GRACE_S)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
            try:
                process.wait(timeout=wait_s)
                return
            except subprocess.TimeoutExpired:
                continue

    def _log_tail(self) -> str:
        try:
            text = self._log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return _tail(text, _LOG_TAIL_LINES) or "(empty log)"

    # -- admin account ------------------------------------------------------------

    def _create_admin(self, password: str) -> None:
        assert self._binary is not None
        command = [
            str(self._binary), "admin", "create-user",
            "--name", ADMIN_USER,
            "--password", password,
            "--email", ADMIN_EMAIL,
            "--admin",
            "-c", str(self._app_ini),
        ]  # fmt: skip
        output = ""
        # Usually succeeds at once (web has created the tables), but SQLite may report
        # "database is locked" while the web process is still writing at start-up.
        for _ in _retries(attempts=10, pause_s=0.5):
            done = subprocess.run(
                command,
                cwd=self._dir,
                env=self._env(),
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            output = done.stdout + done.stderr
            if done.returncode == 0:
                return
        raise GogsUnavailable(
            # The password is an argument, never in Gogs's output, so the tail is safe.
            f"`gogs admin create-user` kept failing:\n{_tail(output, 10)}"
        )

    def _create_admin_token(self, password: str) -> str:
        with GogsClient(self._url, token="") as client:
            try:
                return client.create_token_with_password(ADMIN_USER, password, TOKEN_NAME)
            except GogsError as exc:
                raise GogsUnavailable(f"Could not create the admin API token: {exc}") from exc


def _retries(*, attempts: int, pause_s: float) -> Iterator[int]:
    for attempt in range(attempts):
        if attempt:
            time.sleep(pause_s)
        yield attempt
