"""`attributes` / `excludedAttributes` (scim/projection.py): the resource a client sees."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from gogs_scim.scim.projection import excludes_top_level, parse_attribute_list, project
from gogs_scim.scim.schema import (
    ENTERPRISE_USER_SCHEMA,
    GOGS_USER_SCHEMA,
    GROUP_RESOURCE,
    GROUP_SCHEMA,
    USER_RESOURCE,
    USER_SCHEMA,
    AttributeDef,
    ResourceSchema,
    SchemaDef,
)

ENTERPRISE = ENTERPRISE_USER_SCHEMA
META = {
    "resourceType": "User",
    "created": "2024-01-01T00:00:00.000Z",
    "lastModified": "2024-01-02T00:00:00.000Z",
    "location": "https://scim.example/scim/v2/Users/u-1",
    "version": 'W/"3"',
}


def rendered_user() -> dict[str, Any]:
    return {
        "schemas": [USER_SCHEMA, ENTERPRISE, GOGS_USER_SCHEMA],
        "id": "u-1",
        "externalId": "ext-1",
        "userName": "bjensen",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "displayName": "Babs",
        "active": True,
        "emails": [
            {"value": "b@x.example", "type": "work", "primary": True},
            {"value": "h@x.example", "type": "home"},
        ],
        ENTERPRISE: {"department": "Tour Operations", "manager": {"value": "m-1"}},
        GOGS_USER_SCHEMA: {"login": "bjensen", "adopted": False, "syncState": "synced"},
        "meta": META,
    }


def rendered_group() -> dict[str, Any]:
    return {
        "schemas": [GROUP_SCHEMA],
        "id": "g-1",
        "displayName": "Engineering",
        "members": [{"value": "u-1", "display": "Babs"}, {"value": "u-2"}],
        "meta": {**META, "resourceType": "Group"},
    }


# -- parse_attribute_list ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "names"),
    [
        (None, None),
        ("", None),
        (" , ", None),
        ("userName", ["userName"]),
        ("userName, name.givenName ,emails.value", ["userName", "name.givenName", "emails.value"]),
        (f"{ENTERPRISE}:manager,id", [f"{ENTERPRISE}:manager", "id"]),
    ],
)
def test_parse_attribute_list(raw: str | None, names: list[str] | None) -> None:
    assert parse_attribute_list(raw) == names


# -- default set ------------------------------------------------------------------------


def test_without_parameters_everything_but_never_returned_comes_back() -> None:
    resource = rendered_user()
    resource["password"] = "should never be here"
    expected = rendered_user()
    assert project(resource, USER_RESOURCE, None, None) == expected


def test_the_input_is_not_modified() -> None:
    resource = rendered_user()
    projected = project(resource, USER_RESOURCE, ["emails.value"], ["name"])
    projected["emails"][0]["value"] = "changed"
    assert resource == rendered_user()


# -- attributes -------------------------------------------------------------------------


def test_attributes_returns_only_those_plus_always_returned() -> None:
    assert project(rendered_user(), USER_RESOURCE, ["userName"], None) == {
        "schemas": [USER_SCHEMA, ENTERPRISE, GOGS_USER_SCHEMA],
        "id": "u-1",
        "userName": "bjensen",
    }


def test_attributes_are_case_insensitive() -> None:
    projected = project(rendered_user(), USER_RESOURCE, ["USERNAME", "Name.GivenName"], None)
    assert projected == {
        "schemas": [USER_SCHEMA, ENTERPRISE, GOGS_USER_SCHEMA],
        "id": "u-1",
        "userName": "bjensen",
        "name": {"givenName": "Barbara"},
    }


def test_sub_attribute_of_a_multi_valued_attribute() -> None:
    projected = project(rendered_user(), USER_RESOURCE, ["emails.value", "emails.type"], None)
    assert projected["emails"] == [
        {"value": "b@x.example", "type": "work"},
        {"value": "h@x.example", "type": "home"},
    ]


def test_sub_attribute_and_whole_attribute_together_mean_the_whole() -> None:
    projected = project(rendered_user(), USER_RESOURCE, ["name.givenName", "name"], None)
    assert projected["name"] == {"givenName": "Barbara", "familyName": "Jensen"}


def test_extension_attribute_by_qualified_name() -> None:
    projected = project(rendered_user(), USER_RESOURCE, [f"{ENTERPRISE}:department"], None)
    assert projected == {
        "schemas": [USER_SCHEMA, ENTERPRISE, GOGS_USER_SCHEMA],
        "id": "u-1",
        ENTERPRISE: {"department": "Tour Operations"},
    }


def test_extension_sub_attribute_and_whole_extension() -> None:
    projected = project(
        rendered_user(),
        USER_RESOURCE,
        [f"{ENTERPRISE.upper()}:manager.value", GOGS_USER_SCHEMA],
        None,
    )
    assert projected[ENTERPRISE] == {"manager": {"value": "m-1"}}
    assert projected[GOGS_USER_SCHEMA] == {
        "login": "bjensen",
        "adopted": False,
        "syncState": "synced",
    }


def test_core_qualified_name() -> None:
    projected = project(rendered_user(), USER_RESOURCE, [f"{USER_SCHEMA}:displayName"], None)
    assert projected["displayName"] == "Babs"
    assert "userName" not in projected


def test_meta_is_only_returned_when_asked_for_with_attributes() -> None:
    assert "meta" not in project(rendered_user(), USER_RESOURCE, ["userName"], None)
    projected = project(rendered_user(), USER_RESOURCE, ["meta.lastModified"], None)
    assert projected["meta"] == {"lastModified": "2024-01-02T00:00:00.000Z"}


def test_unknown_names_are_ignored() -> None:
    assert project(rendered_user(), USER_RESOURCE, ["shoeSize", "name.nickName"], ["bogus"]) == {
        "schemas": [USER_SCHEMA, ENTERPRISE, GOGS_USER_SCHEMA],
        "id": "u-1",
    }


def test_names_from_a_search_body_that_are_not_strings_are_ignored() -> None:
    names: Any = ["userName", 42, None, " displayName "]
    assert project(rendered_user(), USER_RESOURCE, names, [7]) == {
        "schemas": [USER_SCHEMA, ENTERPRISE, GOGS_USER_SCHEMA],
        "id": "u-1",
        "userName": "bjensen",
        "displayName": "Babs",
    }


def test_asking_for_an_attribute_the_resource_lacks() -> None:
    projected = project(rendered_user(), USER_RESOURCE, ["title", "name.middleName"], None)
    assert projected == {"schemas": [USER_SCHEMA, ENTERPRISE, GOGS_USER_SCHEMA], "id": "u-1"}


def test_password_is_never_returned_even_when_asked() -> None:
    resource = {**rendered_user(), "password": "secret"}
    assert "password" not in project(resource, USER_RESOURCE, ["password", "userName"], None)


# -- excludedAttributes -----------------------------------------------------------------


def test_excluded_attributes_are_removed() -> None:
    projected = project(rendered_user(), USER_RESOURCE, None, ["emails", "NAME", ENTERPRISE])
    expected = rendered_user()
    for key in ("emails", "name", ENTERPRISE):
        del expected[key]
    assert projected == expected


def test_excluded_sub_attributes_are_removed() -> None:
    projected = project(rendered_user(), USER_RESOURCE, None, ["emails.primary", "name.familyName"])
    assert projected["emails"] == [
        {"value": "b@x.example", "type": "work"},
        {"value": "h@x.example", "type": "home"},
    ]
    assert projected["name"] == {"givenName": "Barbara"}


def test_always_returned_attributes_cannot_be_excluded() -> None:
    projected = project(rendered_user(), USER_RESOURCE, None, ["id", "schemas", "userName"])
    assert projected["id"] == "u-1"
    assert projected["schemas"] == [USER_SCHEMA, ENTERPRISE, GOGS_USER_SCHEMA]
    assert "userName" not in projected


def test_excluding_the_only_sub_attribute_drops_the_attribute() -> None:
    projected = project(rendered_user(), USER_RESOURCE, None, [f"{ENTERPRISE}:manager.value"])
    assert projected[ENTERPRISE] == {"department": "Tour Operations"}


def test_group_members_excluded() -> None:
    projected = project(rendered_group(), GROUP_RESOURCE, None, ["members"])
    assert projected == {
        "schemas": [GROUP_SCHEMA],
        "id": "g-1",
        "displayName": "Engineering",
        "meta": {**META, "resourceType": "Group"},
    }


def test_group_with_display_name_only() -> None:
    assert project(rendered_group(), GROUP_RESOURCE, ["displayName"], None) == {
        "schemas": [GROUP_SCHEMA],
        "id": "g-1",
        "displayName": "Engineering",
    }


def test_attributes_and_excluded_together() -> None:
    projected = project(rendered_group(), GROUP_RESOURCE, ["members"], ["members.display"])
    assert projected["members"] == [{"value": "u-1"}, {"value": "u-2"}]


# -- returned: request ------------------------------------------------------------------

GADGET = ResourceSchema(
    name="Gadget",
    endpoint="/Gadgets",
    description="",
    core=SchemaDef(
        urn="urn:example:params:scim:schemas:core:2.0:Gadget",
        name="Gadget",
        description="",
        attributes=(
            AttributeDef("label"),
            AttributeDef("secretNotes", returned="request"),
            AttributeDef(
                "parts",
                type="complex",
                multi_valued=True,
                sub_attributes=(
                    AttributeDef("value", returned="always"),
                    AttributeDef("cost", type="decimal", returned="request"),
                    AttributeDef("color"),
                ),
            ),
        ),
    ),
)


def gadget() -> dict[str, Any]:
    return {
        "schemas": [GADGET.core.urn],
        "id": "x-1",
        "label": "L",
        "secretNotes": "N",
        "parts": [{"value": "p-1", "cost": 2.5, "color": "red"}],
    }


def test_request_attributes_only_when_asked() -> None:
    default = project(gadget(), GADGET, None, None)
    assert "secretNotes" not in default
    assert default["parts"] == [{"value": "p-1", "color": "red"}]
    asked = project(gadget(), GADGET, ["secretNotes", "parts.cost"], None)
    assert asked == {
        "schemas": [GADGET.core.urn],
        "id": "x-1",
        "secretNotes": "N",
        "parts": [{"value": "p-1", "cost": 2.5}],
    }


def test_always_returned_sub_attribute_survives_exclusion() -> None:
    assert project(gadget(), GADGET, None, ["parts.value", "parts.color"])["parts"] == [
        {"value": "p-1"}
    ]


# -- excludes_top_level -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("attributes", "excluded", "skipped"),
    [
        (None, None, False),
        (None, ["members"], True),
        (None, ["MEMBERS"], True),
        (None, ["members.display"], False),
        (["displayName"], None, True),
        (["members.value"], None, False),
        (["members"], ["members"], True),
        ([GROUP_SCHEMA], None, False),
        (["shoeSize"], None, True),
    ],
)
def test_excludes_top_level_members(
    attributes: list[str] | None, excluded: list[str] | None, skipped: bool
) -> None:
    assert excludes_top_level(GROUP_RESOURCE, attributes, excluded, "members") is skipped


def test_excludes_top_level_agrees_with_project() -> None:
    cases: list[tuple[list[str] | None, list[str] | None]] = [
        (None, None),
        (None, ["members"]),
        (["displayName"], None),
        (["members.display"], None),
        (["id"], ["displayName"]),
    ]
    for attributes, excluded in cases:
        projected = project(copy.deepcopy(rendered_group()), GROUP_RESOURCE, attributes, excluded)
        skipped = excludes_top_level(GROUP_RESOURCE, attributes, excluded, "members")
        assert ("members" not in projected) is skipped


def test_excludes_top_level_for_never_and_always() -> None:
    assert excludes_top_level(USER_RESOURCE, None, None, "password")
    assert not excludes_top_level(USER_RESOURCE, ["userName"], ["id"], "id")
    assert not excludes_top_level(USER_RESOURCE, None, None, "shoeSize")
