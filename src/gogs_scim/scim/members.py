"""Group membership in PATCH and PUT bodies, as changes to a relation, not a list.

A group's members are rows (store/groups.py), so a PATCH is split in two: the
operations on `members` become a `MemberChange` (ids to add, ids to remove, or
"start from empty"), every other operation stays a PatchOp body for the document.
A 20,000-member group is never loaded to add one member.

Every form identity providers send is understood without loading members:

* `add` `members` with a list of `{"value": id}` (Entra, Okta);
* `remove` with path `members[value eq "id"]` (Okta; `or` of such terms too);
* `remove` with path `members` and a value list (Entra), or without value (all);
* `replace` `members` with the whole list; an operation without path whose value
  holds `members` (Okta's group push sends `displayName` that way too).

Anything else on `members` (a filter on `display`, a sub-attribute path) returns
`needs_full = True`: the caller then applies the whole body to the document with
its members materialised, which is exact but reads them all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from scim2_models.path import CompareOperator, Comparison, FilterNode, LogicalExpr, LogicalOperator

from gogs_scim.scim.document import coerce_items
from gogs_scim.scim.errors import ScimError
from gogs_scim.scim.patch import PATCH_OP_SCHEMA, PatchOperation, patch_operations
from gogs_scim.scim.schema import GROUP_RESOURCE, AttributeDef

MEMBERS = "members"


def _members_attribute() -> AttributeDef:
    attribute = GROUP_RESOURCE.core.attribute(MEMBERS)
    assert attribute is not None  # the Group schema always has it
    return attribute


@dataclass
class MemberChange:
    """What a request does to a group's members, in order-independent form.

    Applied as: if `reset`, drop every member; then remove `remove`; then add `add`
    (user id -> display as sent, or None).
    """

    reset: bool = False
    add: dict[str, str | None] = field(default_factory=dict)
    remove: set[str] = field(default_factory=set)

    @property
    def empty(self) -> bool:
        return not (self.reset or self.add or self.remove)

    def added(self, items: list[dict[str, Any]]) -> None:
        for item in items:
            self.remove.discard(item["value"])
            self.add[item["value"]] = item.get("display")

    def removed(self, ids: set[str]) -> None:
        for member_id in ids:
            self.add.pop(member_id, None)
        self.remove |= ids

    def replaced(self, items: list[dict[str, Any]]) -> None:
        self.reset = True
        self.add.clear()
        self.remove.clear()
        self.added(items)


def member_items(value: Any, label: str = MEMBERS) -> list[dict[str, Any]]:
    """Member objects made canonical; each must name a user by `value`.

    Groups as members are refused: Gogs teams cannot contain teams, and flattening
    nested groups silently would grant access nobody reviewed.
    """
    items = coerce_items(_members_attribute(), value, label) or []
    seen: dict[str, dict[str, Any]] = {}
    for item in items:
        member_id = item.get("value")
        if not isinstance(member_id, str) or not member_id:
            raise ScimError.invalid_value(f"every item of {label!r} needs a 'value' (a user id)")
        kind = item.get("type")
        if isinstance(kind, str) and kind.lower() == "group":
            raise ScimError.invalid_value(
                f"{label!r}: groups cannot be members of groups here (member {member_id})"
            )
        seen[member_id] = item
    return list(seen.values())


def _value_ids(node: FilterNode) -> set[str] | None:
    """The ids of `value eq "a" or value eq "b"`; None for any other filter."""
    if isinstance(node, Comparison):
        if (
            node.attr_path.attr.lower() == "value"
            and node.attr_path.sub_attr is None
            and node.op == CompareOperator.eq
            and isinstance(node.value, str)
        ):
            return {node.value}
        return None
    if isinstance(node, LogicalExpr) and node.op == LogicalOperator.or_:
        ids: set[str] = set()
        for term in node.terms:
            found = _value_ids(term)
            if found is None:
                return None
            ids |= found
        return ids
    return None


def _pathless_split(op: PatchOperation) -> tuple[dict[str, Any] | None, Any]:
    """(the raw operation without `members`, or None; the members value, or None)."""
    value = dict(op.value)
    members: Any = None
    for key in list(value):
        if key.lower() == MEMBERS:
            members = value.pop(key)
    rest = {k: v for k, v in value.items() if k.lower() != "schemas"}
    return ({"op": op.op, "value": value} if rest else None), members


@dataclass(frozen=True)
class SplitPatch:
    document_body: dict[str, Any] | None  # a PatchOp body for the rest, or None
    members: MemberChange
    needs_full: bool = False


def split_patch(body: Any) -> SplitPatch:
    """Validate a Group PatchOp body and split it (see the module docstring)."""
    operations = patch_operations(body, GROUP_RESOURCE)
    rest: list[dict[str, Any]] = []
    change = MemberChange()
    for index, op in enumerate(operations, start=1):
        if not op.touches(MEMBERS):
            rest.append(_raw(op))
            continue
        label = f"Operation {index}: {MEMBERS}"
        if op.path is None:
            document_op, value = _pathless_split(op)
            if document_op is not None:
                rest.append(document_op)
            items = member_items(value, label)
            if op.op == "replace":
                change.replaced(items)
            else:
                change.added(items)
            continue
        target = op.target
        if target is None or target.sub_attribute is not None:
            return SplitPatch(None, MemberChange(), needs_full=True)
        if op.value_filter is not None:
            ids = _value_ids(op.value_filter)
            if op.op != "remove" or ids is None:
                return SplitPatch(None, MemberChange(), needs_full=True)
            change.removed(ids)
        elif op.op == "add":
            change.added(member_items(op.value, label))
        elif op.op == "replace":
            change.replaced(member_items(op.value, label))
        elif op.value is None:
            change.replaced([])
        else:
            change.removed({item["value"] for item in member_items(op.value, label)})
    document_body = {"schemas": [PATCH_OP_SCHEMA], "Operations": rest} if rest else None
    return SplitPatch(document_body, change)


def _raw(op: PatchOperation) -> dict[str, Any]:
    raw: dict[str, Any] = {"op": op.op}
    if op.path is not None:
        raw["path"] = op.path
    if op.op != "remove" or op.value is not None:
        raw["value"] = op.value
    return raw
