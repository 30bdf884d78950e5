"""The Gogs login derivation rule (provisioning/logins.py, docs/provisioning.md)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gogs_scim.provisioning.logins import base_login, derive_login, is_valid_login


@pytest.mark.parametrize(
    ("user_name", "login"),
    [
        ("alice@contoso.com", "alice"),
        ("Zoë Ng", "Zoe-Ng"),
        ("jean-luc.picard@starfleet.example", "jean-luc.picard"),
        ("Ægir Þór", "AEgir-Thor"),
        ("straße@x.de", "strasse"),
        ("admin@corp.example", "admin-user"),
        ("api", "api-user"),
        ("deploy.keys", "deploy.keys-user"),
        ("李小龍@example.com", "scim-user"),
        ("  spaced   out  ", "spaced-out"),
        ("a" * 60 + "@x", "a" * 35),
        ("weird!!name##", "weird-name"),
    ],
)
def test_base_login(user_name: str, login: str) -> None:
    assert base_login(user_name) == login
    assert is_valid_login(login)


def test_whole_username_source_keeps_the_domain() -> None:
    assert base_login("alice@contoso.com", "username") == "alice-contoso.com"


def test_collision_gets_a_suffix_that_depends_only_on_the_user_name() -> None:
    taken = {"alice"}
    first = derive_login("alice@b.example", lambda login: login in taken)
    again = derive_login("alice@b.example", lambda login: login in taken)
    other = derive_login("alice@c.example", lambda login: login in taken)
    assert first == again
    assert first.startswith("alice-") and len(first) == len("alice-") + 6
    assert other != first


def test_suffix_collision_falls_back_to_a_counter() -> None:
    first = derive_login("alice@b.example", lambda login: login == "alice")
    taken = {"alice", first.lower()}
    assert derive_login("alice@b.example", lambda login: login in taken) == f"{first}-2"


def test_long_logins_stay_within_35_characters_with_suffix() -> None:
    user_name = "x" * 40 + "@example.com"
    login = derive_login(user_name, lambda login: login == "x" * 35)
    assert len(login) <= 35
    assert is_valid_login(login)


@given(st.text(min_size=0, max_size=80))
def test_any_user_name_yields_a_valid_login(user_name: str) -> None:
    assert is_valid_login(base_login(user_name))
    assert is_valid_login(base_login(user_name, "username"))
