"""POST/PUT bodies made canonical (scim/document.py): what the store keeps, what the IdP
is told when a body is refused."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gogs_scim.scim.document import normalize_resource
from gogs_scim.scim.errors import ScimError
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


def refused(payload: Any, resource: ResourceSchema = USER_RESOURCE, **kwargs: Any) -> ScimError:
    with pytest.raises(ScimError) as caught:
        normalize_resource(payload, resource, **kwargs)
    return caught.value


# -- bodies real identity providers send --------------------------------------------


def test_entra_create_user() -> None:
    # Microsoft Entra provisioning, "Create User" (learn.microsoft.com SCIM examples).
    body = {
        "schemas": [USER_SCHEMA, ENTERPRISE],
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "userName": "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1",
        "active": True,
        "emails": [
            {
                "primary": True,
                "type": "work",
                "value": "Test_User_fd0ea19b-0777-472c-9f96-4f70d2226f2e@testuser.com",
            }
        ],
        "meta": {"resourceType": "User"},
        "name": {
            "formatted": "givenName familyName",
            "familyName": "familyName",
            "givenName": "givenName",
        },
        "roles": [],
    }
    result = normalize_resource(body, USER_RESOURCE)
    assert result.document == {
        # The enterprise schema is listed only once the user carries enterprise data.
        "schemas": [USER_SCHEMA],
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "userName": "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1",
        "active": True,
        "emails": [
            {
                "primary": True,
                "type": "work",
                "value": "Test_User_fd0ea19b-0777-472c-9f96-4f70d2226f2e@testuser.com",
            }
        ],
        "name": {
            "formatted": "givenName familyName",
            "familyName": "familyName",
            "givenName": "givenName",
        },
    }
    assert result.password is None
    assert result.external_id == "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"
    assert result.schemas == [USER_SCHEMA]


def test_entra_create_user_with_enterprise_attributes_and_string_booleans() -> None:
    body = {
        "schemas": [USER_SCHEMA, ENTERPRISE],
        "userName": "AdeleV@contoso.example",
        "active": "True",
        "displayName": "Adele Vance",
        "emails": [{"primary": "true", "type": "work", "value": "AdeleV@contoso.example"}],
        "name": {"givenName": "Adele", "familyName": "Vance"},
        f"{ENTERPRISE}:employeeNumber": "701984",
        f"{ENTERPRISE}:department": "Retail",
        f"{ENTERPRISE}:manager": "26118915-6090-4610-87e4-49d8ca9f808d",
    }
    document = normalize_resource(body, USER_RESOURCE).document
    assert document["active"] is True
    assert document["emails"][0]["primary"] is True
    assert document[ENTERPRISE] == {
        "employeeNumber": "701984",
        "department": "Retail",
        "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"},
    }
    assert document["schemas"] == [USER_SCHEMA, ENTERPRISE]


def test_entra_create_group_with_its_private_schema() -> None:
    # Entra lists its ADSCIM schema in a Group's `schemas` without sending any of it.
    body = {
        "schemas": [
            GROUP_SCHEMA,
            "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group",
        ],
        "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
        "displayName": "displayName",
        "meta": {"resourceType": "Group"},
    }
    result = normalize_resource(body, GROUP_RESOURCE)
    assert result.document == {
        "schemas": [GROUP_SCHEMA],
        "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
        "displayName": "displayName",
    }


def test_okta_create_user_with_password() -> None:
    # Okta SCIM 2.0 "Create User" (developer.okta.com SCIM 2.0 reference).
    body = {
        "schemas": [USER_SCHEMA],
        "userName": "test.user@okta.local",
        "name": {"givenName": "Test", "familyName": "User"},
        "emails": [{"primary": True, "value": "test.user@okta.local", "type": "work"}],
        "displayName": "Test User",
        "locale": "en-US",
        "externalId": "00ujl29u0le5T6Aj10h7",
        "groups": [],
        "password": "1mz050nq",
        "active": True,
    }
    result = normalize_resource(body, USER_RESOURCE)
    assert result.password == "1mz050nq"
    assert "password" not in result.document
    assert "groups" not in result.document
    assert result.document == {
        "schemas": [USER_SCHEMA],
        "userName": "test.user@okta.local",
        "name": {"givenName": "Test", "familyName": "User"},
        "emails": [{"primary": True, "value": "test.user@okta.local", "type": "work"}],
        "displayName": "Test User",
        "locale": "en-US",
        "externalId": "00ujl29u0le5T6Aj10h7",
        "active": True,
    }


def test_okta_create_group_with_members() -> None:
    body = {
        "schemas": [GROUP_SCHEMA],
        "displayName": "Test SCIMv2",
        "members": [
            {"value": "23a35c27-23d3-4c03-b4c5-6443c09e7173", "display": "test.user@okta.local"}
        ],
    }
    document = normalize_resource(body, GROUP_RESOURCE).document
    assert document["members"] == [
        {"value": "23a35c27-23d3-4c03-b4c5-6443c09e7173", "display": "test.user@okta.local"}
    ]


def test_authentik_create_user_keeps_photos_and_locale() -> None:
    # authentik's default SCIM mapping (blueprints/system/providers-scim.yaml): an email
    # of type "other", the avatar as a photo, the user's locale.
    body = {
        "schemas": [USER_SCHEMA],
        "active": True,
        "emails": [{"primary": True, "type": "other", "value": "jens@goauthentik.io"}],
        "externalId": "5b1d0c1e5d0f8e6c",
        "name": {"familyName": "Sobolewski", "formatted": "Jens Sobolewski", "givenName": "Jens"},
        "displayName": "Jens Sobolewski",
        "userName": "jens",
        "photos": [{"value": "https://secure.gravatar.com/avatar/0bc8?size=158", "type": "photo"}],
        "locale": "de",
    }
    document = normalize_resource(body, USER_RESOURCE).document
    assert document["photos"] == body["photos"]
    assert document["locale"] == "de"
    assert document["emails"] == body["emails"]


def test_onelogin_v2_enterprise_template_with_unset_parameters() -> None:
    # OneLogin renders its SCIM JSON template; a parameter without a value becomes "",
    # the manager's displayName " ". `id: null`, `meta` and `active` as a string come
    # from templates that map them (`"active": "{$user.active}"`).
    body = {
        "schemas": [USER_SCHEMA, ENTERPRISE],
        "id": None,
        "meta": {"resourceType": "User"},
        "active": "false",
        "userName": "jane.doe@example.com",
        "name": {"familyName": "Doe", "givenName": "Jane"},
        "title": "",
        "emails": {"value": "Jane.Doe@example.com", "type": "work", "primary": True},
        "addresses": [{"locality": "", "region": "", "country": ""}],
        ENTERPRISE: {"department": "", "manager": {"value": "", "displayName": " "}},
    }
    document = normalize_resource(body, USER_RESOURCE).document
    assert document["active"] is False
    assert document["emails"] == [
        {"value": "Jane.Doe@example.com", "type": "work", "primary": True}
    ]
    # The manager's displayName is readOnly (RFC 7643 §4.3): dropped, not refused.
    assert document[ENTERPRISE] == {"department": "", "manager": {"value": ""}}
    assert "id" not in document and "meta" not in document


def test_scim_1_1_manager_id_is_refused_by_name() -> None:
    # OneLogin's SCIM 1.1 example template names the manager's id `managerId`; SCIM 2.0
    # calls it `value`. The refusal names the sub-attribute so the admin can fix the
    # template.
    error = refused(
        {
            "schemas": [USER_SCHEMA, ENTERPRISE],
            "userName": "jane.doe@example.com",
            ENTERPRISE: {"manager": {"managerId": "48211931", "displayName": "Ada Lovelace"}},
        }
    )
    assert (error.status, error.scim_type) == (400, "invalidSyntax")
    assert "managerId" in error.detail


# -- names ------------------------------------------------------------------------------


def test_names_are_matched_case_insensitively_and_made_canonical() -> None:
    body = {
        "SCHEMAS": [USER_SCHEMA.upper(), ENTERPRISE.lower()],
        "USERNAME": "bjensen",
        "Name": {"GIVENNAME": "Barbara", "familyname": "Jensen"},
        "EMAILS": [{"VALUE": "bjensen@example.com", "Type": "work", "PRIMARY": True}],
        ENTERPRISE.upper(): {"EmployeeNumber": "42", "MANAGER": {"Value": "m-1"}},
    }
    document = normalize_resource(body, USER_RESOURCE).document
    assert document == {
        "schemas": [USER_SCHEMA, ENTERPRISE],
        "userName": "bjensen",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "emails": [{"value": "bjensen@example.com", "type": "work", "primary": True}],
        ENTERPRISE: {"employeeNumber": "42", "manager": {"value": "m-1"}},
    }


def test_dotted_top_level_keys_are_nested() -> None:
    body = {"userName": "a", "name.givenName": "A", "name": {"familyName": "B"}}
    document = normalize_resource(body, USER_RESOURCE).document
    assert document["name"] == {"givenName": "A", "familyName": "B"}


def test_qualified_extension_keys_merge_with_the_extension_object() -> None:
    body = {
        "userName": "a",
        ENTERPRISE: {"department": "Sales"},
        f"{ENTERPRISE}:costCenter": "4130",
        f"{ENTERPRISE.upper()}:manager.value": "m-7",
    }
    document = normalize_resource(body, USER_RESOURCE).document
    assert document[ENTERPRISE] == {
        "department": "Sales",
        "costCenter": "4130",
        "manager": {"value": "m-7"},
    }


def test_core_qualified_keys_are_accepted() -> None:
    document = normalize_resource({f"{USER_SCHEMA}:userName": "q"}, USER_RESOURCE).document
    assert document["userName"] == "q"


# -- IdP dialects -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "stored"),
    [("True", True), ("False", False), ("true", True), ("false", False), (False, False)],
)
def test_booleans_sent_as_strings(sent: Any, stored: bool) -> None:
    document = normalize_resource({"userName": "a", "active": sent}, USER_RESOURCE).document
    assert document["active"] is stored


def test_single_object_for_a_multi_valued_attribute_becomes_a_list() -> None:
    body = {"userName": "a", "emails": {"value": "a@x.example", "type": "work"}}
    document = normalize_resource(body, USER_RESOURCE).document
    assert document["emails"] == [{"value": "a@x.example", "type": "work"}]


@pytest.mark.parametrize(
    "manager",
    [
        "26118915-6090-4610-87e4-49d8ca9f808d",
        {"value": "26118915-6090-4610-87e4-49d8ca9f808d"},
        [{"$ref": None, "value": "26118915-6090-4610-87e4-49d8ca9f808d"}],
        {"value": "26118915-6090-4610-87e4-49d8ca9f808d", "displayName": "read only"},
    ],
)
def test_manager_shapes(manager: Any) -> None:
    body = {"userName": "a", ENTERPRISE: {"manager": manager}}
    document = normalize_resource(body, USER_RESOURCE).document
    assert document[ENTERPRISE] == {"manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}}


def test_emails_are_kept_as_sent() -> None:
    body = {"userName": "a", "emails": [{"value": "Mixed.Case@Example.COM"}]}
    document = normalize_resource(body, USER_RESOURCE).document
    assert document["emails"] == [{"value": "Mixed.Case@Example.COM"}]


def test_nulls_and_empty_lists_are_absent() -> None:
    body = {
        "userName": "a",
        "displayName": None,
        "emails": [],
        "phoneNumbers": [None],
        "name": {"givenName": None},
        "addresses": [{"type": None}],
        ENTERPRISE: {"department": None},
    }
    assert normalize_resource(body, USER_RESOURCE).document == {
        "schemas": [USER_SCHEMA],
        "userName": "a",
    }


def test_missing_schemas_is_filled_in() -> None:
    result = normalize_resource({"userName": "a"}, USER_RESOURCE)
    assert result.document == {"schemas": [USER_SCHEMA], "userName": "a"}
    assert result.schemas == [USER_SCHEMA]


# -- readOnly, writeOnly, immutable -----------------------------------------------------


def test_read_only_attributes_are_ignored() -> None:
    body = {
        "schemas": [USER_SCHEMA, GOGS_USER_SCHEMA],
        "id": "client-chosen",
        "userName": "a",
        "meta": {"resourceType": "User", "created": "2024-01-01T00:00:00Z"},
        "groups": [{"value": "g1", "display": "Admins"}],
        GOGS_USER_SCHEMA: {"login": "hijack", "syncState": "synced"},
    }
    assert normalize_resource(body, USER_RESOURCE).document == {
        "schemas": [USER_SCHEMA],
        "userName": "a",
    }


def test_put_with_the_same_id_is_accepted() -> None:
    result = normalize_resource({"id": "u-1", "userName": "a"}, USER_RESOURCE, current_id="u-1")
    assert "id" not in result.document


def test_put_with_another_id_is_a_mutability_error() -> None:
    error = refused({"id": "u-2", "userName": "a"}, current_id="u-1")
    assert (error.status, error.scim_type) == (400, "mutability")


def test_put_of_a_rendered_resource_round_trips() -> None:
    stored = normalize_resource(
        {
            "userName": "bjensen",
            "name": {"givenName": "Barbara"},
            "emails": [{"value": "b@x.example", "primary": True}],
            ENTERPRISE: {"manager": "m-1"},
        },
        USER_RESOURCE,
    ).document
    # What GET answers: the stored document plus what the service adds.
    rendered = {
        **copy.deepcopy(stored),
        "schemas": [*stored["schemas"], GOGS_USER_SCHEMA],
        "id": "u-1",
        GOGS_USER_SCHEMA: {"login": "bjensen", "adopted": False, "syncState": "synced"},
        "meta": {
            "resourceType": "User",
            "created": "2024-01-01T00:00:00.000Z",
            "lastModified": "2024-01-01T00:00:00.000Z",
            "location": "https://scim.example/scim/v2/Users/u-1",
            "version": 'W/"1"',
        },
    }
    rendered[ENTERPRISE]["manager"]["displayName"] = "Boss"
    result = normalize_resource(rendered, USER_RESOURCE, current_id="u-1", current_document=stored)
    assert result.document == stored


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
            AttributeDef(
                "card",
                type="complex",
                sub_attributes=(
                    AttributeDef("serial", mutability="immutable"),
                    AttributeDef("label"),
                ),
            ),
        ),
    ),
)


def test_immutable_attribute_set_on_create() -> None:
    document = normalize_resource({"userName": "a", "badge": "b-1"}, THING).document
    assert document["badge"] == "b-1"


def test_immutable_attribute_kept_on_put() -> None:
    current = {"schemas": [THING.core.urn], "userName": "a", "badge": "b-1"}
    body = {"userName": "renamed", "badge": "b-1"}
    result = normalize_resource(body, THING, current_document=current)
    assert result.document["userName"] == "renamed"


@pytest.mark.parametrize(
    "body",
    [
        {"userName": "a", "badge": "b-2"},
        {"userName": "a"},
        {"userName": "a", "badge": "b-1", "card": {"serial": "s-2"}},
    ],
)
def test_immutable_attribute_changed_on_put(body: dict[str, Any]) -> None:
    current = {
        "schemas": [THING.core.urn],
        "userName": "a",
        "badge": "b-1",
        "card": {"serial": "s-1"},
    }
    error = refused(body, THING, current_document=current)
    assert (error.status, error.scim_type) == (400, "mutability")


def test_immutable_attribute_may_be_set_on_put_when_it_had_no_value() -> None:
    current = {"schemas": [THING.core.urn], "userName": "a"}
    result = normalize_resource({"userName": "a", "badge": "b-1"}, THING, current_document=current)
    assert result.document["badge"] == "b-1"


def test_replacing_group_members_is_not_an_immutable_change() -> None:
    current = normalize_resource(
        {"displayName": "g", "members": [{"value": "u-1"}]}, GROUP_RESOURCE
    ).document
    body = {"displayName": "g", "members": [{"value": "u-2"}]}
    result = normalize_resource(body, GROUP_RESOURCE, current_document=current)
    assert result.document["members"] == [{"value": "u-2"}]


# -- refusals ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"userName": "a", "nickname2": "x"}, "nickname2"),
        ({"userName": "a", "name": {"nickName": "x"}}, "nickName"),
        ({"userName": "a", "emails": [{"value": "a@x", "kind": "work"}]}, "kind"),
        ({"userName": "a", "urn:example:unknown:2.0:User": {"x": 1}}, "urn:example:unknown"),
        ({"userName": "a", "urn:example:unknown:2.0:User:x": 1}, "urn:example:unknown"),
        ({"userName": "a", ENTERPRISE: {"shoeSize": "42"}}, "shoeSize"),
        ({"userName": "a", f"{ENTERPRISE}:shoeSize": "42"}, "shoeSize"),
        ({"userName": "a", "emails.value": "a@x"}, "emails.value"),
    ],
)
def test_unknown_attributes_are_reported(body: dict[str, Any], named: str) -> None:
    error = refused(body)
    assert (error.status, error.scim_type) == (400, "invalidSyntax")
    assert named in error.detail


@pytest.mark.parametrize(
    "schemas",
    [
        [ENTERPRISE],
        [USER_SCHEMA, "urn:example:unknown:2.0:User"],
        "urn:ietf:params:scim:schemas:core:2.0:User",
        [USER_SCHEMA, 3],
    ],
)
def test_bad_schemas_are_refused(schemas: Any) -> None:
    error = refused({"schemas": schemas, "userName": "a"})
    assert (error.status, error.scim_type) == (400, "invalidSyntax")


@pytest.mark.parametrize("body", [[], "userName", None])
def test_body_must_be_an_object(body: Any) -> None:
    error = refused(body)
    assert (error.status, error.scim_type) == (400, "invalidSyntax")


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"userName": 42}, "userName"),
        ({"userName": "a", "active": "yes"}, "active"),
        ({"userName": "a", "active": 1}, "active"),
        ({"userName": "a", "displayName": ["A"]}, "displayName"),
        ({"userName": "a", "name": "Barbara Jensen"}, "name"),
        ({"userName": "a", "emails": [{"value": "a@x", "primary": "maybe"}]}, "emails.primary"),
        ({"userName": "a", "emails": [42]}, "emails"),
        ({"userName": "a", "profileUrl": 7}, "profileUrl"),
        ({"userName": "a", "x509Certificates": [{"value": "not base64!"}]}, "x509Certificates"),
        ({"userName": "a", ENTERPRISE: {"employeeNumber": 42}}, "employeeNumber"),
        ({"userName": "a", ENTERPRISE: "Sales"}, ENTERPRISE),
        ({"userName": "a", ENTERPRISE: {"manager": ["m-1", "m-2"]}}, "manager"),
        ({"userName": "a", "password": 1234}, "password"),
    ],
)
def test_wrong_types_are_invalid_values(body: dict[str, Any], named: str) -> None:
    error = refused(body)
    assert (error.status, error.scim_type) == (400, "invalidValue")
    assert named in error.detail


def test_valid_binary_is_kept() -> None:
    body = {"userName": "a", "x509Certificates": [{"value": "MIIDQzCCAqygAwIBAgICEAAwDQYJ"}]}
    document = normalize_resource(body, USER_RESOURCE).document
    assert document["x509Certificates"] == [{"value": "MIIDQzCCAqygAwIBAgICEAAwDQYJ"}]


@pytest.mark.parametrize(
    ("body", "resource"),
    [
        ({}, USER_RESOURCE),
        ({"userName": ""}, USER_RESOURCE),
        ({"userName": "   "}, USER_RESOURCE),
        ({"userName": None}, USER_RESOURCE),
        ({"displayName": "a"}, USER_RESOURCE),
        ({"members": []}, GROUP_RESOURCE),
        ({"displayName": ""}, GROUP_RESOURCE),
    ],
)
def test_required_attributes(body: dict[str, Any], resource: ResourceSchema) -> None:
    error = refused(body, resource)
    assert (error.status, error.scim_type) == (400, "invalidValue")


def test_two_primary_emails_are_refused() -> None:
    body = {
        "userName": "a",
        "emails": [{"value": "a@x", "primary": True}, {"value": "b@x", "primary": "True"}],
    }
    error = refused(body)
    assert (error.status, error.scim_type) == (400, "invalidValue")
    assert "emails" in error.detail


def test_one_primary_and_others_false_is_fine() -> None:
    body = {
        "userName": "a",
        "emails": [{"value": "a@x", "primary": True}, {"value": "b@x", "primary": False}],
    }
    assert len(normalize_resource(body, USER_RESOURCE).document["emails"]) == 2


def test_the_password_is_never_named_in_an_error() -> None:
    error = refused({"userName": "a", "password": "hunter2", "active": "nope"})
    assert "hunter2" not in error.detail


def test_input_is_not_modified() -> None:
    body = {"userName": "a", "emails": {"value": "a@x"}, "name.givenName": "A", "active": "True"}
    before = copy.deepcopy(body)
    normalize_resource(body, USER_RESOURCE)
    assert body == before


# -- properties -------------------------------------------------------------------------

_names = st.text(alphabet="abcdefgh.@-", min_size=1, max_size=12)
_payloads = st.fixed_dictionaries(
    {"userName": _names},
    optional={
        "active": st.sampled_from([True, False, "True", "false"]),
        "displayName": _names,
        "name": st.fixed_dictionaries({}, optional={"givenName": _names, "familyName": _names}),
        "emails": st.lists(
            st.fixed_dictionaries(
                {"value": _names}, optional={"type": st.sampled_from(["work", "home"])}
            ),
            max_size=3,
        ),
        ENTERPRISE: st.fixed_dictionaries(
            {}, optional={"department": _names, "manager": _names.map(lambda v: {"value": v})}
        ),
    },
)


@given(_payloads)
def test_normalizing_is_idempotent(payload: dict[str, Any]) -> None:
    once = normalize_resource(payload, USER_RESOURCE).document
    twice = normalize_resource(once, USER_RESOURCE).document
    assert twice == once
