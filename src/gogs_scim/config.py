"""Configuration: a TOML file plus `GOGS_SCIM_*` environment variables (env wins).

Every setting has one name in both places: `[gogs] url` in the file is
`GOGS_SCIM_GOGS_URL` in the environment. A wrong or missing setting stops start-up
with one line that names it (`ConfigError`).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)

from gogs_scim.durations import parse_duration

CONFIG_ENV = "GOGS_SCIM_CONFIG"
ENV_PREFIX = "GOGS_SCIM_"
DEFAULT_DATABASE_URL = "sqlite:///gogs-scim.db"


class ConfigError(Exception):
    """A setting is missing or wrong; the message is one line naming it."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GogsSettings(_Section):
    url: str | None = None
    admin_token: SecretStr | None = None
    # A file holding the token, re-read when it changes, so the token can rotate
    # without a restart.
    admin_token_file: Path | None = None
    # The bridge's own Gogs account: never provisioned or deprovisioned through SCIM.
    admin_user: str = "scim-admin"
    timeout_seconds: float = Field(default=10.0, gt=0)
    # Gogs's own database (`sqlite:///path/gogs.db`, a PostgreSQL or a MySQL/MariaDB
    # DSN): lets deprovisioning do what the API cannot (docs/deprovisioning.md).
    # Unset = API only.
    database_url: SecretStr | None = None
    # The password of `admin_user` for Gogs's web UI: turns on the admin web session
    # means of deprovisioning (gogs/web_session.py, docs/deprovisioning.md). Unset = off.
    admin_password: SecretStr | None = None
    # A file holding that password, re-read at each sign-in (rotation without restart).
    admin_password_file: Path | None = None

    @model_validator(mode="after")
    def _database_supported(self) -> GogsSettings:
        url = self.database_url.get_secret_value() if self.database_url else ""
        if url and not url.startswith(("sqlite:///", "postgresql", "mysql", "mariadb")):
            raise ValueError(
                "database_url must be sqlite:///..., postgresql://... or mysql://... "
                "(the database Gogs itself uses)"
            )
        return self

    def token(self) -> str | None:
        """The current admin token: the file's content when a file is named."""
        if self.admin_token_file is not None:
            try:
                return self.admin_token_file.read_text(encoding="utf-8").strip() or None
            except OSError as exc:
                raise ConfigError(
                    f"gogs.admin_token_file: cannot read {self.admin_token_file}: {exc.strerror}"
                ) from exc
        return self.admin_token.get_secret_value() if self.admin_token else None

    @property
    def has_web_session(self) -> bool:
        return self.admin_password is not None or self.admin_password_file is not None

    def web_password(self) -> str:
        """The admin's web password; the error names the setting, never the value."""
        if self.admin_password_file is not None:
            try:
                password = self.admin_password_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(
                    f"gogs.admin_password_file: cannot read {self.admin_password_file}: "
                    f"{exc.strerror}"
                ) from exc
        else:
            password = self.admin_password.get_secret_value() if self.admin_password else ""
        if not password:
            raise ConfigError(
                "gogs.admin_password is empty (set [gogs] admin_password or "
                "admin_password_file, or GOGS_SCIM_GOGS_ADMIN_PASSWORD / "
                "GOGS_SCIM_GOGS_ADMIN_PASSWORD_FILE)"
            )
        return password


class DatabaseSettings(_Section):
    url: str = DEFAULT_DATABASE_URL


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    # The externally visible base URL, for `meta.location`; derived from the request
    # when unset.
    public_url: str | None = None
    max_body_bytes: int = Field(default=1_048_576, gt=0)


class ScimToken(_Section):
    name: str = Field(min_length=1)
    token: SecretStr = Field(min_length=16)


class ScimSettings(_Section):
    tokens: tuple[ScimToken, ...] = ()
    # A single token from the environment (GOGS_SCIM_SCIM_TOKEN), named "env".
    token: SecretStr | None = None
    max_results: int = Field(default=1000, gt=0)

    def all_tokens(self) -> tuple[ScimToken, ...]:
        if self.token is not None:
            return (*self.tokens, ScimToken(name="env", token=self.token))
        return self.tokens


class ProvisioningSettings(_Section):
    # How a Gogs login is derived from userName (see provisioning/logins.py):
    # "local-part" takes what stands before "@"; "username" uses the whole userName.
    login_from: Literal["local-part", "username"] = "local-part"
    # What to do when the derived login already exists in Gogs and is not ours:
    # "refuse" answers 409; "match-email" adopts it when the email matches too;
    # "login" adopts it by login alone.
    adoption: Literal["refuse", "match-email", "login"] = "refuse"
    # "idp": a password the IdP sends becomes the Gogs password; "random": always a
    # long random one (sites that authenticate Gogs users elsewhere).
    password: Literal["idp", "random"] = "idp"  # noqa: S105 (a policy name, not a secret)
    # SCIM DELETE: "suspend" revokes access and keeps the Gogs account; "delete" also
    # deletes the account when Gogs allows it (else suspends and says why).
    on_delete: Literal["suspend", "delete"] = "suspend"
    # "apply": changes reach Gogs. "shadow": a rehearsal; everything is accepted and
    # stored, the plans of what would change in Gogs are recorded (audit trail,
    # `gogs-scim plan`) and nothing in Gogs changes. Switching back to "apply" carries
    # the pending plans out.
    mode: Literal["apply", "shadow"] = "apply"


def _duration(value: object) -> object:
    """`24h`, `90d`, ... (durations.parse_duration); a number is seconds, also as text
    (an environment variable: GOGS_SCIM_RECONCILE_INTERVAL=0 turns the schedule off)."""
    if isinstance(value, str):
        if value.strip().isdigit():
            return timedelta(seconds=int(value))
        return parse_duration(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    return value


Duration = Annotated[timedelta, BeforeValidator(_duration)]


class ReconcileSettings(_Section):
    # How often `serve` compares the store with Gogs and repairs drift; 0 = never.
    interval: Duration = timedelta(hours=1)
    # Whether the scheduled runs repair what they find (else they only report it).
    apply: bool = True
    # /readyz and the gogs_scim_reconcile_stale metric turn red when the last complete
    # reconciliation is older than this.
    audit_window: Duration = timedelta(hours=24)

    @model_validator(mode="after")
    def _window_covers_interval(self) -> ReconcileSettings:
        if self.interval < timedelta() or self.audit_window <= timedelta():
            raise ValueError("interval must be >= 0 and audit_window > 0")
        if self.interval and self.audit_window < self.interval:
            raise ValueError(
                f"audit_window ({self.audit_window}) is shorter than interval "
                f"({self.interval}): readiness would be red between every two runs"
            )
        return self


class TeamMapping(_Section):
    """One rule: members of SCIM group `group` get `permission` on Gogs team org/team."""

    group: str = Field(min_length=1)
    match: Literal["displayName", "externalId"] = "displayName"
    org: str = Field(min_length=1)
    team: str = Field(min_length=1)
    permission: Literal["read", "write", "admin"] = "read"
    exclusive: bool = True
    create_org: bool = False
    allow_owners: bool = False

    @model_validator(mode="after")
    def _owners_need_consent(self) -> TeamMapping:
        if self.team == "Owners" and not self.allow_owners:
            raise ValueError(
                f"mapping {self.group!r} -> {self.org}/Owners needs allow_owners = true"
            )
        return self


class Settings(_Section):
    gogs: GogsSettings = GogsSettings()
    database: DatabaseSettings = DatabaseSettings()
    server: ServerSettings = ServerSettings()
    scim: ScimSettings = ScimSettings()
    provisioning: ProvisioningSettings = ProvisioningSettings()
    reconcile: ReconcileSettings = ReconcileSettings()
    mappings: tuple[TeamMapping, ...] = ()
    config_file: Path | None = None

    @model_validator(mode="after")
    def _mappings_unambiguous(self) -> Settings:
        seen: dict[tuple[str, str], TeamMapping] = {}
        for rule in self.mappings:
            key = (rule.org.lower(), rule.team.lower())
            other = seen.setdefault(key, rule)
            if other.permission != rule.permission:
                raise ValueError(
                    f"mappings: team {rule.org}/{rule.team} gets {other.permission!r} from "
                    f"group {other.group!r} but {rule.permission!r} from group {rule.group!r}"
                )
        return self

    def require_gogs(self) -> tuple[str, str]:
        """The Gogs URL and admin token, or a ConfigError naming what is missing."""
        if not self.gogs.url:
            raise ConfigError(
                "gogs.url is not set (set [gogs] url in the config file or GOGS_SCIM_GOGS_URL)"
            )
        token = self.gogs.token()
        if not token:
            raise ConfigError(
                "gogs.admin_token is not set (set [gogs] admin_token or admin_token_file, "
                "or GOGS_SCIM_GOGS_ADMIN_TOKEN / GOGS_SCIM_GOGS_ADMIN_TOKEN_FILE)"
            )
        return self.gogs.url.rstrip("/"), token


def _env_overrides(environ: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """`GOGS_SCIM_GOGS_ADMIN_TOKEN=x` -> {"gogs": {"admin_token": "x"}}."""
    sections = {name for name, field in Settings.model_fields.items() if name not in ("mappings",)}
    sections.discard("config_file")
    out: dict[str, dict[str, str]] = {}
    for key, value in environ.items():
        if not key.startswith(ENV_PREFIX) or key == CONFIG_ENV:
            continue
        rest = key[len(ENV_PREFIX) :].lower()
        section, _, name = rest.partition("_")
        if section not in sections or not name:
            raise ConfigError(f"{key}: not a known setting")
        out.setdefault(section, {})[name] = value
    return out


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "config"
    message = str(error["msg"]).removeprefix("Value error, ")
    env = ENV_PREFIX + "_".join(str(p) for p in error["loc"][:2]).upper()
    hint = f" (or {env})" if len(error["loc"]) == 2 and error["loc"][0] != "mappings" else ""
    return f"{where}: {message}{hint}"


def load_settings(
    config_file: Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read the file (from the argument or GOGS_SCIM_CONFIG), overlay the environment."""
    env = os.environ if environ is None else environ
    if config_file is None and env.get(CONFIG_ENV):
        config_file = Path(env[CONFIG_ENV])
    data: dict[str, Any] = {}
    if config_file is not None:
        try:
            data = tomllib.loads(config_file.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"config file {config_file} does not exist") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {config_file} is not valid TOML: {exc}") from exc
    for section, values in _env_overrides(env).items():
        current = data.get(section, {})
        if not isinstance(current, dict):
            raise ConfigError(f"{section}: must be a table")
        data[section] = {**current, **values}
    data["config_file"] = config_file.resolve() if config_file is not None else None
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_first_error(exc)) from None
