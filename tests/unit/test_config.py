"""Configuration: TOML plus GOGS_SCIM_* variables, with one clear line per mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from gogs_scim.config import ConfigError, load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gogs-scim.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_need_no_file() -> None:
    settings = load_settings(None, environ={})
    assert settings.database.url == "sqlite:///gogs-scim.db"
    assert settings.server.port == 8080
    assert settings.mappings == ()


def test_file_then_environment_wins(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[gogs]\nurl = "http://file:3000"\nadmin_token = "from-file"\n[server]\nport = 9000\n',
    )
    settings = load_settings(path, environ={"GOGS_SCIM_GOGS_URL": "http://env:3000"})
    assert settings.gogs.url == "http://env:3000"
    assert settings.server.port == 9000
    assert settings.require_gogs() == ("http://env:3000", "from-file")


def test_config_file_from_environment_variable(tmp_path: Path) -> None:
    path = write(tmp_path, "[server]\nport = 9100\n")
    settings = load_settings(None, environ={"GOGS_SCIM_CONFIG": str(path)})
    assert settings.server.port == 9100
    assert settings.config_file == path.resolve()


def test_admin_token_from_file_is_reread(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("first\n")
    path = write(tmp_path, f'[gogs]\nurl = "http://g"\nadmin_token_file = "{token_file}"\n')
    settings = load_settings(path, environ={})
    assert settings.require_gogs()[1] == "first"
    token_file.write_text("second\n")
    assert settings.require_gogs()[1] == "second"


@pytest.mark.parametrize(
    ("environ", "fragment"),
    [
        ({}, "gogs.url is not set"),
        ({"GOGS_SCIM_GOGS_URL": "http://g"}, "gogs.admin_token is not set"),
    ],
)
def test_missing_gogs_settings_are_named(environ: dict[str, str], fragment: str) -> None:
    settings = load_settings(None, environ=environ)
    with pytest.raises(ConfigError, match=fragment):
        settings.require_gogs()


@pytest.mark.parametrize(
    ("text", "environ", "fragment"),
    [
        ("[server]\nport = 99999\n", {}, "server.port"),
        ("[server]\nprot = 1\n", {}, "server.prot"),
        ("[server\n", {}, "not valid TOML"),
        ("", {"GOGS_SCIM_NOPE": "1"}, "GOGS_SCIM_NOPE: not a known setting"),
        ("", {"GOGS_SCIM_SERVER_PORT": "abc"}, "server.port"),
        ('[provisioning]\nadoption = "yes"\n', {}, "provisioning.adoption"),
    ],
)
def test_wrong_settings_are_one_line_naming_them(
    tmp_path: Path, text: str, environ: dict[str, str], fragment: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text), environ=environ)
    assert fragment in str(caught.value)
    assert "\n" not in str(caught.value)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml", environ={})


def test_mappings_shape_and_ambiguity(tmp_path: Path) -> None:
    ok = write(
        tmp_path,
        '[[mappings]]\ngroup = "Eng"\norg = "acme"\nteam = "dev"\npermission = "write"\n'
        '[[mappings]]\ngroup = "Ops"\nmatch = "externalId"\norg = "acme"\nteam = "dev"\n'
        'permission = "write"\nexclusive = false\n',
    )
    settings = load_settings(ok, environ={})
    assert [m.group for m in settings.mappings] == ["Eng", "Ops"]
    assert settings.mappings[1].match == "externalId"
    clash = write(
        tmp_path,
        '[[mappings]]\ngroup = "Eng"\norg = "acme"\nteam = "dev"\npermission = "write"\n'
        '[[mappings]]\ngroup = "Ops"\norg = "acme"\nteam = "Dev"\npermission = "admin"\n',
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(clash, environ={})
    assert "'Eng'" in str(caught.value) and "'Ops'" in str(caught.value)


def test_owners_team_needs_explicit_consent(tmp_path: Path) -> None:
    path = write(tmp_path, '[[mappings]]\ngroup = "Eng"\norg = "acme"\nteam = "Owners"\n')
    with pytest.raises(ConfigError, match="allow_owners"):
        load_settings(path, environ={})


def test_secrets_do_not_show_in_repr(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[gogs]\nadmin_token = "supersecret-admin"\n'
        '[[scim.tokens]]\nname = "okta"\ntoken = "supersecret-scim-token"\n',
    )
    settings = load_settings(path, environ={})
    assert "supersecret" not in repr(settings)


def test_web_session_means_is_on_only_when_its_password_is_set(tmp_path: Path) -> None:
    assert not load_settings(None, environ={}).gogs.has_web_session
    settings = load_settings(
        None, environ={"GOGS_SCIM_GOGS_ADMIN_PASSWORD": "supersecret-web-password"}
    )
    assert settings.gogs.has_web_session
    assert settings.gogs.web_password() == "supersecret-web-password"
    assert "supersecret" not in repr(settings)

    password_file = tmp_path / "web-password"
    password_file.write_text("from-file\n")
    path = write(tmp_path, f'[gogs]\nadmin_password_file = "{password_file}"\n')
    from_file = load_settings(path, environ={}).gogs
    assert from_file.web_password() == "from-file"
    password_file.write_text("rotated\n")
    assert from_file.web_password() == "rotated"
    password_file.unlink()
    with pytest.raises(ConfigError, match=r"gogs\.admin_password_file: cannot read"):
        from_file.web_password()
    empty = load_settings(None, environ={"GOGS_SCIM_GOGS_ADMIN_PASSWORD": ""}).gogs
    with pytest.raises(ConfigError, match=r"gogs\.admin_password is empty"):
        empty.web_password()


def test_reconcile_schedule_turned_off_from_the_environment() -> None:
    # A bare number is seconds, also as the text an environment variable gives.
    settings = load_settings(
        None,
        environ={"GOGS_SCIM_RECONCILE_INTERVAL": "0", "GOGS_SCIM_RECONCILE_AUDIT_WINDOW": "90"},
    )
    assert settings.reconcile.interval.total_seconds() == 0
    assert settings.reconcile.audit_window.total_seconds() == 90


@pytest.mark.parametrize(
    ("url", "driver"),
    [
        ("sqlite:////var/lib/gogs/data/gogs.db", "pysqlite"),
        ("postgresql://gogs:pw@db:5432/gogs", "psycopg"),
        ("mysql://gogs:pw@db:3306/gogs", "pymysql"),
        ("mariadb://gogs:pw@db/gogs", "pymysql"),
    ],
)
def test_gogs_database_url_names_the_database_gogs_uses(url: str, driver: str) -> None:
    from gogs_scim.gogs.database_means import gogs_database_engine

    settings = load_settings(None, environ={"GOGS_SCIM_GOGS_DATABASE_URL": url})
    assert settings.gogs.database_url is not None
    engine = gogs_database_engine(settings.gogs.database_url.get_secret_value())
    try:
        assert engine.dialect.driver == driver
        if driver == "pymysql":
            # Gogs's MySQL database is utf8mb4; so must the connection be.
            assert engine.url.query["charset"] == "utf8mb4"
    finally:
        engine.dispose()


def test_an_unknown_gogs_database_is_refused_naming_the_setting() -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(None, environ={"GOGS_SCIM_GOGS_DATABASE_URL": "oracle://gogs@db/gogs"})
    message = str(refused.value)
    assert message.startswith("gogs: database_url must be sqlite:///..., postgresql://")
    assert "oracle" not in message  # the DSN may carry a password: never echoed
