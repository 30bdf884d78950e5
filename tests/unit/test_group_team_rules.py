"""The pure group -> team rules and the split of Group PATCH bodies."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gogs_scim.config import TeamMapping
from gogs_scim.provisioning.teams import (
    plan_membership,
    rule_matches,
    team_key,
    team_targets,
    teams_of_group,
)
from gogs_scim.scim.errors import ScimError
from gogs_scim.scim.members import split_patch
from gogs_scim.scim.patch import PATCH_OP_SCHEMA


def rule(group: str, org: str = "acme", team: str = "devs", **extra: Any) -> TeamMapping:
    return TeamMapping(group=group, org=org, team=team, **extra)


# -- mapping rules -------------------------------------------------------------------------


def test_team_key_is_short_stable_and_case_insensitive() -> None:
    assert team_key("Acme", "Devs") == team_key("acme", "devs")
    assert team_key("acme", "devs") != team_key("acme", "ops")
    assert len(team_key("a" * 255, "b" * 255)) <= 36


def test_rules_for_one_team_merge() -> None:
    targets = team_targets(
        [
            rule("eng", exclusive=True, create_org=False),
            rule("ops", team="DEVS", exclusive=False, create_org=True),
            rule("x", team="other"),
        ]
    )
    assert len(targets) == 2
    devs = targets[team_key("acme", "devs")]
    assert [r.group for r in devs.rules] == ["eng", "ops"]
    # One non-exclusive rule means hand-added members are expected: keep them.
    assert devs.exclusive is False
    assert devs.create_org is True


def test_rule_matching() -> None:
    by_name = rule("Engineering")
    by_ext = rule("ID-1", match="externalId")
    assert rule_matches(by_name, "engineering", None)
    assert not rule_matches(by_name, "Engineering2", "Engineering")
    assert rule_matches(by_ext, "anything", "ID-1")
    assert not rule_matches(by_ext, "ID-1", "id-1")  # externalId is caseExact
    assert teams_of_group([by_name, by_ext], "ENGINEERING", "ID-1") == {team_key("acme", "devs")}


# -- membership plans ------------------------------------------------------------------------


def test_exclusive_plan_removes_everyone_not_desired_but_the_admin() -> None:
    plan = plan_membership(
        desired=["alice", "Bob"],
        current=["bob", "mallory", "scim-admin"],
        granted=[],
        exclusive=True,
        protected=["SCIM-admin"],
        is_owners=False,
    )
    assert plan.add == ("alice",)
    assert plan.remove == ("mallory",)


def test_non_exclusive_plan_removes_only_its_own_grants() -> None:
    plan = plan_membership(
        desired=["alice"],
        current=["alice", "carol", "hand"],
        granted=["alice", "Carol"],
        exclusive=False,
        protected=[],
        is_owners=False,
    )
    assert plan.add == ()
    assert plan.remove == ("carol",)


def test_owners_never_lose_their_last_member() -> None:
    plan = plan_membership(
        desired=[],
        current=["zed", "amy"],
        granted=[],
        exclusive=True,
        protected=[],
        is_owners=True,
    )
    assert plan.add == ()
    assert len(plan.remove) == 1
    # With someone joining, all the others may go.
    plan = plan_membership(
        desired=["new"],
        current=["zed"],
        granted=[],
        exclusive=True,
        protected=[],
        is_owners=True,
    )
    assert plan.add == ("new",) and plan.remove == ("zed",)


logins = st.sets(st.sampled_from(["a", "b", "c", "d", "e", "admin"]))


@given(logins, logins, logins, st.booleans())
def test_plan_properties(
    desired: set[str], current: set[str], granted: set[str], exclusive: bool
) -> None:
    plan = plan_membership(
        desired=desired,
        current=current,
        granted=granted,
        exclusive=exclusive,
        protected=["admin"],
        is_owners=False,
    )
    after = (current | set(plan.add)) - set(plan.remove)
    assert desired <= after  # everyone the groups grant is in
    assert "admin" not in plan.remove
    assert not set(plan.remove) & desired
    assert not set(plan.add) & current  # no needless calls
    if not exclusive:
        # Members nobody here added are left alone.
        assert set(plan.remove) <= granted


# -- Group PATCH bodies ------------------------------------------------------------------------


def body(*ops: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP_SCHEMA], "Operations": list(ops)}


def test_member_forms_become_a_change() -> None:
    split = split_patch(
        body(
            {"op": "Add", "path": "members", "value": [{"value": "a"}, {"value": "b"}]},
            {"op": "remove", "path": 'members[value eq "b" or value eq "c"]'},
            {"op": "Remove", "path": "members", "value": [{"value": "d"}]},
            {"op": "replace", "path": "displayName", "value": "New"},
        )
    )
    assert not split.needs_full
    assert split.members.reset is False
    assert split.members.add == {"a": None}
    assert split.members.remove == {"b", "c", "d"}
    assert split.document_body is not None
    assert split.document_body["Operations"] == [
        {"op": "replace", "path": "displayName", "value": "New"}
    ]


def test_replace_and_remove_all_reset_the_members() -> None:
    split = split_patch(
        body(
            {"op": "add", "path": "members", "value": [{"value": "x"}]},
            {"op": "replace", "path": "members", "value": [{"value": "a", "display": "A"}]},
        )
    )
    assert split.members.reset and split.members.add == {"a": "A"}
    cleared = split_patch(body({"op": "remove", "path": "members"}))
    assert cleared.members.reset and not cleared.members.add
    assert cleared.document_body is None


def test_okta_pathless_replace_splits_members_from_the_document() -> None:
    split = split_patch(
        body(
            {
                "op": "replace",
                "value": {"id": "g1", "displayName": "Push", "members": [{"value": "u1"}]},
            }
        )
    )
    assert split.members.reset and split.members.add == {"u1": None}
    assert split.document_body is not None
    [op] = split.document_body["Operations"]
    assert op["value"] == {"id": "g1", "displayName": "Push"}


def test_other_member_filters_need_the_full_list() -> None:
    assert split_patch(body({"op": "remove", "path": 'members[display eq "x"]'})).needs_full
    assert split_patch(
        body({"op": "replace", "path": 'members[value eq "x"].display', "value": "y"})
    ).needs_full


@pytest.mark.parametrize(
    ("ops", "scim_type"),
    [
        ([{"op": "add", "path": "members", "value": [{"display": "no value"}]}], "invalidValue"),
        (
            [{"op": "add", "path": "members", "value": [{"value": "g", "type": "Group"}]}],
            "invalidValue",
        ),
        ([{"op": "add", "path": "members", "value": [{"value": 42}]}], None),
        ([{"op": "remove"}], "noTarget"),
        ([{"op": "add", "path": "members[", "value": []}], "invalidPath"),
    ],
)
def test_bad_member_operations(ops: list[dict[str, Any]], scim_type: str | None) -> None:
    with pytest.raises(ScimError) as caught:
        split_patch(body(*ops))
    assert caught.value.status == 400
    if scim_type is not None:
        assert caught.value.scim_type == scim_type
