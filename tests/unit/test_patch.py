"""PATCH on stored documents (scim/patch.py): the resulting document a client reads back,
or the 400 and scimType it is told."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gogs_scim.scim.document import normalize_resource
from gogs_scim.scim.errors import ScimError
from gogs_scim.scim.patch import PATCH_OP_SCHEMA, PatchResult, apply_patch, patch_operations
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
MANAGER_ID = "26118915-6090-4610-87e4-49d8ca9f808d"


def body(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP_SCHEMA], "Operations": list(operations)}


def user(**attributes: Any) -> dict[str, Any]:
    payload = {"userName": "bjensen@example.com", **attributes}
    return normalize_resource(payload, USER_RESOURCE).document


def group(**attributes: Any) -> dict[str, Any]:
    payload = {"displayName": "Engineering", **attributes}
    return normalize_resource(payload, GROUP_RESOURCE).document


def patched(
    document: dict[str, Any],
    *operations: dict[str, Any],
    resource: ResourceSchema = USER_RESOURCE,
    **kwargs: Any,
) -> PatchResult:
    return apply_patch(document, body(*operations), resource, **kwargs)


def refused(
    document: dict[str, Any],
    *operations: dict[str, Any],
    resource: ResourceSchema = USER_RESOURCE,
    raw: Any = None,
    **kwargs: Any,
) -> ScimError:
    before = copy.deepcopy(document)
    with pytest.raises(ScimError) as caught:
        apply_patch(document, raw if raw is not None else body(*operations), resource, **kwargs)
    assert document == before
    return caught.value


def status(error: ScimError) -> tuple[int, str | None]:
    return error.status, error.scim_type


# -- Microsoft Entra ID -----------------------------------------------------------------


def test_entra_disable_user_with_string_boolean() -> None:
    raw = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Replace", "path": "active", "value": "False"}],
    }
    result = apply_patch(user(active=True), raw, USER_RESOURCE)
    assert result.document["active"] is False
    assert result.changed


def test_entra_add_work_email_to_a_user_without_one() -> None:
    document = user(emails=[{"value": "home@example.com", "type": "home"}])
    result = patched(
        document, {"op": "Add", "path": 'emails[type eq "work"].value', "value": "x@y.com"}
    )
    assert result.document["emails"] == [
        {"value": "home@example.com", "type": "home"},
        {"type": "work", "value": "x@y.com"},
    ]


def test_entra_add_work_email_replaces_the_existing_work_email() -> None:
    document = user(emails=[{"value": "old@example.com", "type": "work", "primary": True}])
    result = patched(
        document, {"op": "Add", "path": 'emails[type eq "work"].value', "value": "x@y.com"}
    )
    assert result.document["emails"] == [{"value": "x@y.com", "type": "work", "primary": True}]


def test_entra_update_user_multi_valued_properties() -> None:
    # Entra "Update User [Multi-valued properties]" example.
    document = user(name={"familyName": "Jensen"})
    result = patched(
        document,
        {
            "op": "Replace",
            "path": 'emails[type eq "work"].value',
            "value": "updatedEmail@microsoft.com",
        },
        {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"},
    )
    assert result.document["emails"] == [{"type": "work", "value": "updatedEmail@microsoft.com"}]
    assert result.document["name"] == {"familyName": "updatedFamilyName"}


def test_entra_replace_without_path_with_dotted_names() -> None:
    document = user(name={"givenName": "Barbara", "familyName": "Jensen", "formatted": "BJ"})
    result = patched(
        document, {"op": "Replace", "value": {"name.givenName": "A", "name.familyName": "B"}}
    )
    assert result.document["name"] == {"givenName": "A", "familyName": "B", "formatted": "BJ"}


def test_entra_add_manager_as_a_plain_string() -> None:
    result = patched(
        user(),
        {
            "op": "Add",
            "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
            "value": MANAGER_ID,
        },
    )
    assert result.document[ENTERPRISE] == {"manager": {"value": MANAGER_ID}}
    assert result.document["schemas"] == [USER_SCHEMA, ENTERPRISE]


def test_entra_replace_manager_drops_the_old_reference() -> None:
    document = user(**{ENTERPRISE: {"manager": {"value": "m-1", "$ref": "../Users/m-1"}}})
    result = patched(
        document, {"op": "Replace", "path": f"{ENTERPRISE}:manager", "value": MANAGER_ID}
    )
    assert result.document[ENTERPRISE] == {"manager": {"value": MANAGER_ID}}


def test_entra_remove_manager_drops_the_extension() -> None:
    document = user(**{ENTERPRISE: {"manager": "m-1"}})
    result = patched(document, {"op": "Remove", "path": f"{ENTERPRISE}:manager"})
    assert ENTERPRISE not in result.document
    assert result.document["schemas"] == [USER_SCHEMA]


def test_entra_replace_enterprise_department() -> None:
    result = patched(
        user(),
        {
            "op": "Replace",
            "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
            "value": "IT",
        },
    )
    assert result.document[ENTERPRISE] == {"department": "IT"}


def test_entra_title_and_email_together() -> None:
    # From a Microsoft Q&A thread: Entra's "Add" on a filtered email, "Replace" on title.
    document = user(
        title="scim tester", emails=[{"primary": True, "type": "work", "value": "a@joe.com"}]
    )
    result = patched(
        document,
        {"op": "Replace", "path": "title", "value": "tester"},
        {"op": "Add", "path": 'emails[type eq "work"].value', "value": "b@joe.com"},
    )
    assert result.document["title"] == "tester"
    assert result.document["emails"] == [{"primary": True, "type": "work", "value": "b@joe.com"}]


def test_entra_add_group_members() -> None:
    result = patched(
        group(members=[{"value": "u-1"}]),
        {"op": "Add", "path": "members", "value": [{"value": "u-2"}, {"value": "u-3"}]},
        resource=GROUP_RESOURCE,
    )
    assert result.document["members"] == [{"value": "u-1"}, {"value": "u-2"}, {"value": "u-3"}]


def test_entra_remove_group_members_listed_in_value() -> None:
    result = patched(
        group(members=[{"value": "u-1"}, {"value": "u-2"}, {"value": "u-3"}]),
        {"op": "Remove", "path": "members", "value": [{"value": "u-1"}, {"value": "u-3"}]},
        resource=GROUP_RESOURCE,
    )
    assert result.document["members"] == [{"value": "u-2"}]


def test_entra_rename_group() -> None:
    result = patched(
        group(),
        {"op": "Replace", "path": "displayName", "value": "1879db59updatedDisplayName"},
        resource=GROUP_RESOURCE,
    )
    assert result.document == {
        "schemas": [GROUP_SCHEMA],
        "displayName": "1879db59updatedDisplayName",
    }


# -- Okta -------------------------------------------------------------------------------


def test_okta_deactivate_user() -> None:
    raw = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "value": {"active": False}}],
    }
    result = apply_patch(user(active=True), raw, USER_RESOURCE)
    assert result.document["active"] is False


def test_okta_password_change_is_returned_never_stored() -> None:
    document = user()
    result = patched(document, {"op": "replace", "value": {"password": "n3w-Secret"}})
    assert result.password == "n3w-Secret"
    assert "password" not in result.document
    assert result.document == document
    assert not result.changed


def test_okta_password_change_with_path() -> None:
    result = patched(user(), {"op": "replace", "path": "password", "value": "n3w-Secret"})
    assert result.password == "n3w-Secret"
    assert "password" not in result.document


def test_okta_rename_group_echoing_its_id() -> None:
    result = patched(
        group(members=[{"value": "u-1"}]),
        {
            "op": "replace",
            "value": {"id": "abf4dd94-a4c0-4f67-89c9-76b03340cb9b", "displayName": "Test SCIMv2"},
        },
        resource=GROUP_RESOURCE,
        current_id="abf4dd94-a4c0-4f67-89c9-76b03340cb9b",
    )
    assert result.document == {
        "schemas": [GROUP_SCHEMA],
        "displayName": "Test SCIMv2",
        "members": [{"value": "u-1"}],
    }


def test_okta_add_members_with_display() -> None:
    result = patched(
        group(),
        {
            "op": "add",
            "path": "members",
            "value": [
                {"value": "23a35c27-23d3-4c03-b4c5-6443c09e7173", "display": "test.user@okta.local"}
            ],
        },
        resource=GROUP_RESOURCE,
    )
    assert result.document["members"] == [
        {"value": "23a35c27-23d3-4c03-b4c5-6443c09e7173", "display": "test.user@okta.local"}
    ]


def test_okta_remove_member_by_filter() -> None:
    result = patched(
        group(members=[{"value": "89bb1940-b905-4575-9e7f-6f887cfb368e"}, {"value": "u-2"}]),
        {"op": "remove", "path": 'members[value eq "89bb1940-b905-4575-9e7f-6f887cfb368e"]'},
        resource=GROUP_RESOURCE,
    )
    assert result.document["members"] == [{"value": "u-2"}]


def test_replace_all_members() -> None:
    result = patched(
        group(members=[{"value": "u-1"}, {"value": "u-2"}]),
        {"op": "replace", "path": "members", "value": [{"value": "u-9"}]},
        resource=GROUP_RESOURCE,
    )
    assert result.document["members"] == [{"value": "u-9"}]


def test_replace_members_with_an_empty_list_removes_them_all() -> None:
    result = patched(
        group(members=[{"value": "u-1"}]),
        {"op": "replace", "path": "members", "value": []},
        resource=GROUP_RESOURCE,
    )
    assert "members" not in result.document


# -- Keycloak (keycloak-scim client) ---------------------------------------------------


def test_keycloak_patch_mode_sends_string_booleans_and_unchanged_user_name() -> None:
    # mitodl/keycloak-scim UserAdapter.toPatchBuilder with the `user-patchOp` option:
    # `active` is written as the string "true"/"false" (SCIM-SDK puts a one-item value
    # as a bare string), `userName` is replaced by the same value each time.
    document = user(displayName="John Doe", active=True)
    result = patched(
        document,
        {"path": "active", "op": "replace", "value": "false"},
        {"path": "userName", "op": "replace", "value": "bjensen@example.com"},
        {"path": "displayName", "op": "replace", "value": "John Smith"},
    )
    assert result.document["active"] is False
    assert result.document["userName"] == "bjensen@example.com"
    assert result.document["displayName"] == "John Smith"
    again = patched(result.document, {"path": "active", "op": "replace", "value": "true"})
    assert again.document["active"] is True


# -- envelope ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        {"Operations": [{"op": "replace", "path": "title", "value": "x"}]},
        {
            "schemas": [USER_SCHEMA],
            "Operations": [{"op": "replace", "path": "title", "value": "x"}],
        },
        {
            "schemas": PATCH_OP_SCHEMA,
            "Operations": [{"op": "replace", "path": "title", "value": "x"}],
        },
        {"schemas": [PATCH_OP_SCHEMA]},
        {"schemas": [PATCH_OP_SCHEMA], "Operations": []},
        {"schemas": [PATCH_OP_SCHEMA], "Operations": {"op": "replace"}},
        {"schemas": [PATCH_OP_SCHEMA], "Operations": ["replace"]},
        [{"op": "replace", "path": "title", "value": "x"}],
    ],
)
def test_malformed_envelopes(raw: Any) -> None:
    assert status(refused(user(), raw=raw)) == (400, "invalidSyntax")


def test_lenient_on_letter_case_of_envelope() -> None:
    raw = {
        "SCHEMAS": [PATCH_OP_SCHEMA.upper()],
        "operations": [{"OP": "REPLACE", "Path": "title", "Value": "Boss"}],
    }
    assert apply_patch(user(), raw, USER_RESOURCE).document["title"] == "Boss"


@pytest.mark.parametrize(
    ("operation", "scim_type"),
    [
        ({"op": "copy", "path": "title", "value": "x"}, "invalidSyntax"),
        ({"path": "title", "value": "x"}, "invalidSyntax"),
        ({"op": "add", "path": "title"}, "invalidSyntax"),
        ({"op": "replace", "value": "x"}, "invalidSyntax"),
        ({"op": "replace", "value": {"shoeSize": 42}}, "invalidSyntax"),
        ({"op": "remove"}, "noTarget"),
        ({"op": "remove", "value": {"title": "x"}}, "noTarget"),
        ({"op": "replace", "path": "emails[type eq", "value": "x"}, "invalidPath"),
        ({"op": "replace", "path": "shoeSize", "value": "x"}, "invalidPath"),
        ({"op": "replace", "path": "name.nickName", "value": "x"}, "invalidPath"),
        ({"op": "replace", "path": "urn:example:unknown:2.0:User:x", "value": "x"}, "invalidPath"),
        ({"op": "replace", "path": 'title[value eq "x"]', "value": "x"}, "invalidPath"),
        ({"op": "replace", "path": 42, "value": "x"}, "invalidPath"),
        ({"op": "replace", "path": 'emails[kind eq "work"].value', "value": "x"}, "invalidFilter"),
        ({"op": "replace", "path": "emails[primary gt true].value", "value": "x"}, "invalidFilter"),
        ({"op": "remove", "path": USER_SCHEMA}, "invalidPath"),
    ],
)
def test_malformed_operations(operation: dict[str, Any], scim_type: str) -> None:
    assert status(refused(user(), operation)) == (400, scim_type)


# -- add / replace / remove semantics ---------------------------------------------------


def test_add_appends_to_a_multi_valued_attribute() -> None:
    document = user(emails=[{"value": "a@x.example", "type": "work"}])
    result = patched(
        document,
        {"op": "add", "path": "emails", "value": [{"value": "b@x.example", "type": "home"}]},
    )
    assert result.document["emails"] == [
        {"value": "a@x.example", "type": "work"},
        {"value": "b@x.example", "type": "home"},
    ]


def test_add_merges_an_item_with_the_same_value() -> None:
    document = user(emails=[{"value": "a@x.example", "type": "work"}])
    result = patched(
        document,
        {"op": "add", "path": "emails", "value": {"value": "A@X.example", "display": "A"}},
    )
    assert result.document["emails"] == [{"value": "A@X.example", "type": "work", "display": "A"}]


def test_add_of_an_existing_member_changes_nothing() -> None:
    document = group(members=[{"value": "u-1"}])
    result = patched(
        document,
        {"op": "add", "path": "members", "value": [{"value": "u-1"}]},
        resource=GROUP_RESOURCE,
    )
    assert result.document == document
    assert not result.changed


def test_member_values_are_case_exact() -> None:
    document = group(members=[{"value": "u-1"}])
    result = patched(
        document,
        {"op": "add", "path": "members", "value": [{"value": "U-1"}]},
        resource=GROUP_RESOURCE,
    )
    assert result.document["members"] == [{"value": "u-1"}, {"value": "U-1"}]


def test_add_to_a_single_valued_attribute_sets_it() -> None:
    result = patched(user(title="old"), {"op": "add", "path": "title", "value": "new"})
    assert result.document["title"] == "new"


def test_add_without_path_merges_attributes() -> None:
    document = user(emails=[{"value": "a@x.example"}])
    result = patched(
        document,
        {
            "op": "add",
            "value": {
                "emails": [{"value": "b@x.example"}],
                "nickName": "Babs",
                ENTERPRISE: {"department": "Tour Operations"},
            },
        },
    )
    assert result.document["emails"] == [{"value": "a@x.example"}, {"value": "b@x.example"}]
    assert result.document["nickName"] == "Babs"
    assert result.document[ENTERPRISE] == {"department": "Tour Operations"}


def test_replace_without_path_replaces_multi_valued_attributes() -> None:
    document = user(emails=[{"value": "a@x.example"}])
    result = patched(document, {"op": "replace", "value": {"emails": [{"value": "b@x.example"}]}})
    assert result.document["emails"] == [{"value": "b@x.example"}]


def test_replace_complex_keeps_unmentioned_sub_attributes() -> None:
    document = user(name={"givenName": "Barbara", "familyName": "Jensen"})
    result = patched(document, {"op": "replace", "path": "name", "value": {"givenName": "Babs"}})
    assert result.document["name"] == {"givenName": "Babs", "familyName": "Jensen"}


def test_replace_complex_with_null_sub_attribute_removes_it() -> None:
    document = user(name={"givenName": "Barbara", "familyName": "Jensen"})
    result = patched(document, {"op": "replace", "path": "name", "value": {"givenName": None}})
    assert result.document["name"] == {"familyName": "Jensen"}


def test_replace_filtered_items_replaces_them_whole() -> None:
    document = user(
        addresses=[
            {"type": "work", "streetAddress": "100 Universal City Plaza", "locality": "Hollywood"},
            {"type": "home", "streetAddress": "456 Hollywood Blvd"},
        ]
    )
    result = patched(
        document,
        {
            "op": "replace",
            "path": 'addresses[type eq "work"]',
            "value": {"type": "work", "streetAddress": "911 Universal City Plaza"},
        },
    )
    assert result.document["addresses"] == [
        {"type": "work", "streetAddress": "911 Universal City Plaza"},
        {"type": "home", "streetAddress": "456 Hollywood Blvd"},
    ]


def test_replace_filtered_sub_attribute_creates_the_address() -> None:
    result = patched(
        user(),
        {"op": "Replace", "path": 'addresses[type eq "work"].streetAddress', "value": "1 Main St"},
    )
    assert result.document["addresses"] == [{"type": "work", "streetAddress": "1 Main St"}]


def test_replace_through_a_filter_that_cannot_describe_an_item_is_no_target() -> None:
    document = user(emails=[{"value": "a@x.example", "type": "work"}])
    error = refused(
        document, {"op": "replace", "path": 'emails[value co "zzz"].display', "value": "Z"}
    )
    assert status(error) == (400, "noTarget")


def test_filter_matching_is_case_insensitive_where_the_schema_says_so() -> None:
    document = user(emails=[{"value": "a@x.example", "type": "Work"}])
    result = patched(
        document, {"op": "replace", "path": 'EMAILS[TYPE eq "work"].VALUE', "value": "b@x.example"}
    )
    assert result.document["emails"] == [{"value": "b@x.example", "type": "Work"}]


@pytest.mark.parametrize(
    ("path", "left"),
    [
        ('emails[type eq "work"]', ["h@x", "o@x"]),
        ('emails[type eq "work" or type eq "home"]', ["o@x"]),
        ('emails[type eq "work" and primary eq true]', ["w@x", "h@x", "o@x"]),
        ('emails[not (type eq "other")]', ["o@x"]),
        ("emails[display pr]", ["w@x", "o@x"]),
        ('emails[value sw "h"]', ["w@x", "o@x"]),
        ('emails[value ew "@X"]', []),
        ('emails.type eq "home"', ["w@x", "o@x"]),
        ('emails[type eq "fax"]', ["w@x", "h@x", "o@x"]),
    ],
)
def test_remove_with_filters(path: str, left: list[str]) -> None:
    document = user(
        emails=[
            {"value": "w@x", "type": "work"},
            {"value": "h@x", "type": "home", "display": "Home"},
            {"value": "o@x", "type": "other"},
        ]
    )
    result = patched(document, {"op": "remove", "path": path})
    assert [email["value"] for email in result.document.get("emails", [])] == left


def test_remove_of_nothing_is_a_no_op() -> None:
    document = user()
    for path in ("title", 'emails[type eq "work"]', f"{ENTERPRISE}:manager", "name.givenName"):
        result = patched(document, {"op": "remove", "path": path})
        assert result.document == document
        assert not result.changed


def test_remove_a_sub_attribute_of_matched_items() -> None:
    document = user(
        emails=[{"value": "w@x", "type": "work", "display": "W"}, {"value": "h@x", "display": "H"}]
    )
    result = patched(document, {"op": "remove", "path": 'emails[type eq "work"].display'})
    assert result.document["emails"] == [
        {"value": "w@x", "type": "work"},
        {"value": "h@x", "display": "H"},
    ]


def test_remove_a_sub_attribute_of_every_item() -> None:
    document = user(emails=[{"value": "w@x", "type": "work"}, {"type": "home"}])
    result = patched(document, {"op": "remove", "path": "emails.type"})
    assert result.document["emails"] == [{"value": "w@x"}]


def test_replace_a_sub_attribute_of_every_item() -> None:
    document = user(emails=[{"value": "w@x", "type": "work"}, {"value": "h@x"}])
    result = patched(document, {"op": "replace", "path": "emails.type", "value": "other"})
    assert result.document["emails"] == [
        {"value": "w@x", "type": "other"},
        {"value": "h@x", "type": "other"},
    ]


def test_remove_last_sub_attribute_drops_the_complex_attribute() -> None:
    result = patched(user(name={"givenName": "B"}), {"op": "remove", "path": "name.givenName"})
    assert "name" not in result.document


def test_replace_with_null_removes_add_with_null_adds_nothing() -> None:
    document = user(title="Boss")
    assert (
        "title" not in patched(document, {"op": "replace", "path": "title", "value": None}).document
    )
    assert patched(document, {"op": "add", "path": "title", "value": None}).document == document


def test_whole_extension_path() -> None:
    result = patched(
        user(),
        {"op": "add", "path": ENTERPRISE, "value": {"division": "Theme Park", "manager": "m-1"}},
    )
    assert result.document[ENTERPRISE] == {"division": "Theme Park", "manager": {"value": "m-1"}}
    removed = patched(result.document, {"op": "remove", "path": ENTERPRISE})
    assert ENTERPRISE not in removed.document
    assert removed.document["schemas"] == [USER_SCHEMA]


def test_core_schema_path_means_the_resource() -> None:
    result = patched(user(), {"op": "replace", "path": USER_SCHEMA, "value": {"title": "Boss"}})
    assert result.document["title"] == "Boss"


def test_ops_apply_in_order() -> None:
    result = patched(
        user(),
        {"op": "add", "path": "emails", "value": [{"value": "a@x", "type": "work"}]},
        {"op": "replace", "path": 'emails[type eq "work"].value', "value": "b@x"},
        {"op": "add", "path": "title", "value": "x"},
        {"op": "remove", "path": "title"},
    )
    assert result.document == user(emails=[{"value": "b@x", "type": "work"}])


def test_same_value_is_not_a_change() -> None:
    document = user(title="Boss", active=True)
    result = patched(
        document,
        {"op": "Replace", "path": "title", "value": "Boss"},
        {"op": "Replace", "path": "active", "value": "True"},
    )
    assert not result.changed


# -- primary ----------------------------------------------------------------------------


def test_a_new_primary_email_unmarks_the_old_one() -> None:
    document = user(emails=[{"value": "a@x", "primary": True}])
    result = patched(
        document, {"op": "add", "path": "emails", "value": [{"value": "b@x", "primary": "True"}]}
    )
    assert result.document["emails"] == [
        {"value": "a@x", "primary": False},
        {"value": "b@x", "primary": True},
    ]


def test_marking_an_existing_email_primary_through_a_filter() -> None:
    document = user(emails=[{"value": "a@x", "primary": True}, {"value": "b@x", "type": "home"}])
    result = patched(
        document, {"op": "replace", "path": 'emails[type eq "home"].primary', "value": True}
    )
    assert result.document["emails"] == [
        {"value": "a@x", "primary": False},
        {"value": "b@x", "type": "home", "primary": True},
    ]


@pytest.mark.parametrize(
    "operation",
    [
        {
            "op": "add",
            "path": "emails",
            "value": [{"value": "b@x", "primary": True}, {"value": "c@x", "primary": True}],
        },
        {
            "op": "replace",
            "path": "emails",
            "value": [{"value": "b@x", "primary": True}, {"value": "c@x", "primary": True}],
        },
        {"op": "replace", "path": "emails.primary", "value": True},
    ],
)
def test_two_primaries_in_one_operation(operation: dict[str, Any]) -> None:
    document = user(emails=[{"value": "a@x"}, {"value": "d@x"}])
    assert status(refused(document, operation)) == (400, "invalidValue")


# -- mutability and required ------------------------------------------------------------


@pytest.mark.parametrize(
    "operation",
    [
        {"op": "replace", "path": "id", "value": "other"},
        {"op": "replace", "path": "meta.created", "value": "2020-01-01T00:00:00Z"},
        {"op": "add", "path": "groups", "value": [{"value": "g-1"}]},
        {"op": "remove", "path": "groups"},
        {"op": "replace", "path": f"{GOGS_USER_SCHEMA}:login", "value": "root"},
        {"op": "replace", "path": GOGS_USER_SCHEMA, "value": {"login": "root"}},
        {"op": "replace", "path": f"{ENTERPRISE}:manager.displayName", "value": "Boss"},
        {"op": "replace", "value": {"groups": [{"value": "g-1"}]}},
        {"op": "replace", "value": {GOGS_USER_SCHEMA: {"syncState": "synced"}}},
        {"op": "remove", "path": "userName"},
        {"op": "replace", "path": "userName", "value": None},
        {"op": "replace", "value": {"userName": None}},
        {"op": "remove", "path": "password"},
    ],
)
def test_mutability_errors(operation: dict[str, Any]) -> None:
    assert status(refused(user(), operation)) == (400, "mutability")


def test_id_in_a_pathless_value_must_match_the_resource() -> None:
    operation = {"op": "replace", "value": {"id": "someone-else", "title": "x"}}
    assert status(refused(user(), operation, current_id="u-1")) == (400, "mutability")
    assert patched(user(), operation).document["title"] == "x"


def test_group_display_name_cannot_be_removed() -> None:
    error = refused(group(), {"op": "remove", "path": "displayName"}, resource=GROUP_RESOURCE)
    assert status(error) == (400, "mutability")


def test_empty_user_name_is_an_invalid_value() -> None:
    assert status(refused(user(), {"op": "replace", "path": "userName", "value": ""})) == (
        400,
        "invalidValue",
    )


def test_member_value_is_immutable() -> None:
    document = group(members=[{"value": "u-1"}])
    error = refused(
        document,
        {"op": "replace", "path": 'members[value eq "u-1"].value', "value": "u-2"},
        resource=GROUP_RESOURCE,
    )
    assert status(error) == (400, "mutability")


def test_member_display_can_change() -> None:
    document = group(members=[{"value": "u-1"}])
    result = patched(
        document,
        {"op": "replace", "path": 'members[value eq "u-1"].display', "value": "Babs"},
        resource=GROUP_RESOURCE,
    )
    assert result.document["members"] == [{"value": "u-1", "display": "Babs"}]


THING = ResourceSchema(
    name="Thing",
    endpoint="/Things",
    description="",
    core=SchemaDef(
        urn="urn:example:params:scim:schemas:core:2.0:Thing",
        name="Thing",
        description="",
        attributes=(
            AttributeDef("userName", required=True),
            AttributeDef("badge", mutability="immutable"),
        ),
    ),
)


def test_immutable_attribute_can_be_added_once() -> None:
    document = {"schemas": [THING.core.urn], "userName": "a"}
    first = patched(document, {"op": "add", "path": "badge", "value": "b-1"}, resource=THING)
    assert first.document["badge"] == "b-1"
    same = patched(
        first.document, {"op": "replace", "path": "badge", "value": "b-1"}, resource=THING
    )
    assert not same.changed
    for operation in (
        {"op": "replace", "path": "badge", "value": "b-2"},
        {"op": "remove", "path": "badge"},
    ):
        assert status(refused(first.document, operation, resource=THING)) == (400, "mutability")


# -- values -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "operation",
    [
        {"op": "replace", "path": "active", "value": "maybe"},
        {"op": "replace", "path": "userName", "value": 42},
        {"op": "replace", "path": f"{ENTERPRISE}:employeeNumber", "value": 701984},
        {"op": "replace", "path": "name", "value": "Barbara Jensen"},
        {"op": "replace", "path": "emails", "value": [7]},
        {"op": "replace", "path": "password", "value": None},
        {"op": "add", "path": 'emails[type eq "work"]', "value": [{"value": "a"}, {"value": "b"}]},
    ],
)
def test_wrong_values(operation: dict[str, Any]) -> None:
    assert status(refused(user(), operation)) == (400, "invalidValue")


def test_unknown_sub_attribute_in_value() -> None:
    operation = {"op": "replace", "path": "name", "value": {"nickName": "B"}}
    assert status(refused(user(), operation)) == (400, "invalidSyntax")


def test_a_failing_operation_rejects_the_whole_patch() -> None:
    document = user(title="Boss", emails=[{"value": "a@x"}])
    error = refused(
        document,
        {"op": "replace", "path": "title", "value": "Intern"},
        {"op": "add", "path": "emails", "value": [{"value": "b@x"}]},
        {"op": "replace", "path": "active", "value": "sometimes"},
    )
    assert status(error) == (400, "invalidValue")


def test_input_document_and_body_are_not_modified() -> None:
    document = user(emails=[{"value": "a@x", "primary": True}], name={"givenName": "B"})
    raw = body(
        {"op": "add", "path": "emails", "value": [{"value": "b@x", "primary": True}]},
        {"op": "replace", "path": "name", "value": {"familyName": "J"}},
    )
    before, raw_before = copy.deepcopy(document), copy.deepcopy(raw)
    result = apply_patch(document, raw, USER_RESOURCE)
    assert document == before
    assert raw == raw_before
    result.document["emails"][0]["value"] = "mutated"
    assert raw == raw_before


# -- patch_operations -------------------------------------------------------------------


def test_patch_operations_describe_what_each_operation_touches() -> None:
    operations = patch_operations(
        body(
            {"op": "Add", "path": "members", "value": [{"value": "u-1"}]},
            {"op": "Remove", "path": 'members[value eq "u-2"]'},
            {"op": "replace", "value": {"id": "g-1", "displayName": "New"}},
            {"op": "replace", "path": 'members[value eq "u-3"].display', "value": "x"},
        ),
        GROUP_RESOURCE,
    )
    assert [op.op for op in operations] == ["add", "remove", "replace", "replace"]
    assert [op.touches("members") for op in operations] == [True, True, False, True]
    assert operations[2].touches("displayName")
    assert operations[1].target is not None
    assert operations[1].target.canonical_path == "members"
    assert str(operations[1].value_filter) == 'value eq "u-2"'
    assert operations[3].target is not None
    assert operations[3].target.canonical_path == "members.display"
    assert operations[0].value == [{"value": "u-1"}]


def test_patch_operations_resolve_extension_paths() -> None:
    (operation,) = patch_operations(
        body({"op": "Add", "path": f"{ENTERPRISE.upper()}:MANAGER", "value": MANAGER_ID}),
        USER_RESOURCE,
    )
    assert operation.target is not None
    assert operation.target.canonical_path == f"{ENTERPRISE}:manager"
    assert operation.touches("manager")


# -- properties -------------------------------------------------------------------------

_documents = st.sampled_from(
    [
        {"userName": "a"},
        {"userName": "b", "title": "Boss", "active": True, "name": {"givenName": "B"}},
        {
            "userName": "c",
            "emails": [
                {"value": "w@x", "type": "work", "primary": True},
                {"value": "h@x", "type": "home"},
            ],
            ENTERPRISE: {"department": "D", "manager": "m-1"},
        },
    ]
).map(lambda payload: normalize_resource(payload, USER_RESOURCE).document)

_paths = st.sampled_from(
    [
        None,
        "title",
        "active",
        "userName",
        "name",
        "name.givenName",
        "emails",
        "emails.type",
        'emails[type eq "work"]',
        'emails[type eq "work"].value',
        'emails[type eq "home"].primary',
        'emails[value co "x"].display',
        f"{ENTERPRISE}:manager",
        f"{ENTERPRISE}:department",
        ENTERPRISE,
        "groups",
        "id",
        "password",
        "shoeSize",
        "emails[",
    ]
)
_values = st.sampled_from(
    [
        "x",
        "True",
        True,
        None,
        42,
        [],
        {"givenName": "G"},
        {"value": "n@x", "primary": True},
        [{"value": "n@x", "type": "work"}, {"value": "m@x", "primary": True}],
        {"title": "T", "name.familyName": "F"},
        {"active": "False"},
        {"department": "E"},
    ]
)
_operations = st.lists(
    st.fixed_dictionaries(
        {"op": st.sampled_from(["add", "replace", "remove", "Add", "Replace", "move"])},
        optional={"path": _paths, "value": _values},
    ),
    min_size=1,
    max_size=4,
)


@settings(max_examples=300)
@given(_documents, _operations)
def test_apply_patch_never_mutates_its_input(
    document: dict[str, Any], operations: list[dict[str, Any]]
) -> None:
    raw = body(*operations)
    before, raw_before = copy.deepcopy(document), copy.deepcopy(raw)
    refusal: ScimError | None = None
    try:
        result = apply_patch(document, raw, USER_RESOURCE)
    except ScimError as error:
        refusal = error
    if refusal is not None:
        # A refusal is always the client's to fix, never a server error.
        assert refusal.status == 400
    else:
        # What a patch leaves is a canonical document, as a PUT would have stored it.
        assert normalize_resource(result.document, USER_RESOURCE).document == result.document
        assert result.changed == (result.document != document)
    assert document == before
    assert raw == raw_before
