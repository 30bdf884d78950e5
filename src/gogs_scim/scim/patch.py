"""PATCH (RFC 7644 §3.5.2) on a stored document, as a pure function.

`apply_patch` works on a deep copy and raises ScimError at the first operation it
cannot apply, so a request is applied entirely or not at all (the caller keeps the
old document). Values go through the same coercion as POST/PUT bodies (document.py),
so `"False"`, a bare manager id or one object for a list mean the same here.

Dialect choices (each one makes a real IdP request work; none changes the meaning of
a request that follows the RFC):

* `op` is case-insensitive (Entra sends `Add`/`Replace`/`Remove`); `Operations` and
  the PatchOp URN are accepted in any letter case.
* `add`/`replace` through a value filter that matches nothing creates the item when
  the filter is made of `eq` comparisons only: Entra sends
  `replace emails[type eq "work"].value` for a user who has no work email yet, and
  RFC 7644 §3.5.2.3 says a replace of an attribute that does not exist is an add.
  The new item carries the filter's values (`{"type": "work", "value": ...}`). Other
  filters that match nothing are `noTarget`.
* `remove` with `path: "members"` (or any multi-valued attribute) and a `value` list
  removes the listed items, matched by `value` (Entra and Okta group membership).
* In an operation without `path`, `id` and `meta` are ignored (Okta echoes the
  group's `id` in `replace` bodies), as are the keys `schemas`; other readOnly
  attributes are refused. `id` must still match `current_id` when one is given.
* `add`/`replace` to a single-valued complex attribute merge sub-attributes
  (RFC 7644 §3.5.2.1/§3.5.2.3), except a bare string (Entra's `manager`), which
  replaces the whole value.
* A null value: `replace` removes the target, `add` adds nothing.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from scim2_models import Path
from scim2_models.exceptions import SCIMException
from scim2_models.path import (
    CompareOperator,
    Comparison,
    FilterNode,
    LogicalExpr,
    LogicalOperator,
    Not,
    Present,
)

from gogs_scim.scim.document import (
    PASSWORD,
    SCHEMAS_KEY,
    coerce_attribute,
    coerce_items,
    coerce_simple,
    coerce_sub_value,
    container_of,
    extension_members,
    finish_document,
    is_top_level,
    label_of,
    parent_label,
    resolve_in_extension,
    resolve_key,
)
from gogs_scim.scim.errors import ScimError
from gogs_scim.scim.schema import (
    COMMON_SCHEMA,
    AttributeDef,
    ResolvedAttribute,
    ResourceSchema,
    SchemaDef,
)

PATCH_OP_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
OPS = ("add", "replace", "remove")

# Common attributes a pathless value may carry without meaning to change them.
_ECHOED = ("id", "meta")
_EQUALITY = (CompareOperator.eq, CompareOperator.ne)


@dataclass(frozen=True)
class PatchResult:
    """The patched document, the password the patch set (never stored), and whether
    the document differs from the one given (a password alone does not count)."""

    document: dict[str, Any]
    password: str | None
    changed: bool


@dataclass(frozen=True)
class PatchOperation:
    """One validated operation of a PatchOp body.

    * `op`: "add", "replace" or "remove" (lowercased).
    * `path`: the path as sent, or None.
    * `target`: what the path designates (attribute, maybe sub-attribute); None
      without a path, or when the path is a bare schema URN.
    * `extension`: the extension a bare-URN path designates (its whole object).
    * `value_filter`: the value selection of the path (`type eq "work"` in
      `emails[type eq "work"].value`), against the items of `target.attribute`.
    * `value`: the value as sent (not coerced; None when absent).
    * `attributes`: every top-level attribute the operation may change, also for
      operations without a path (the keys of their value), so that a caller can
      tell e.g. whether `members` is touched without parsing anything itself.
    """

    op: str
    path: str | None
    target: ResolvedAttribute | None
    extension: SchemaDef | None
    value_filter: FilterNode | None
    value: Any
    attributes: tuple[ResolvedAttribute, ...] = field(default=())

    def touches(self, name: str) -> bool:
        """Whether the operation may change the top-level attribute `name`."""
        folded = name.lower()
        return any(item.attribute.name.lower() == folded for item in self.attributes)


# -- parsing ---------------------------------------------------------------------------


def _get_folded(body: dict[str, Any], name: str) -> Any:
    """A member looked up case-insensitively (`Operations` vs `operations`)."""
    folded = name.lower()
    return next((v for k, v in body.items() if isinstance(k, str) and k.lower() == folded), None)


def _check_envelope(body: Any) -> list[Any]:
    if not isinstance(body, dict):
        raise ScimError.invalid_syntax("The request body must be a JSON object")
    schemas = _get_folded(body, SCHEMAS_KEY)
    if (
        not isinstance(schemas, list)
        or len(schemas) != 1
        or not isinstance(schemas[0], str)
        or schemas[0].lower() != PATCH_OP_SCHEMA.lower()
    ):
        raise ScimError.invalid_syntax(f"'schemas' must be [{PATCH_OP_SCHEMA!r}]")
    operations = _get_folded(body, "Operations")
    if not isinstance(operations, list) or not operations:
        raise ScimError.invalid_syntax("'Operations' must be a non-empty list")
    return operations


def _check_filter(node: FilterNode, attribute: AttributeDef, path: str) -> None:
    """Every name in a value filter is a sub-attribute of the filtered attribute."""
    if isinstance(node, Not):
        _check_filter(node.expr, attribute, path)
    elif isinstance(node, LogicalExpr):
        for term in node.terms:
            _check_filter(term, attribute, path)
    elif isinstance(node, Comparison | Present):
        sub = _filter_sub(node, attribute, path)
        op = node.op if isinstance(node, Comparison) else None
        if op is not None and op not in _EQUALITY and sub.type == "boolean":
            raise ScimError.invalid_filter(f"{op.value!r} cannot compare booleans")
    else:
        raise ScimError.invalid_filter(f"Unsupported filter in path {path!r}")


def _filter_sub(node: Comparison | Present, attribute: AttributeDef, path: str) -> AttributeDef:
    name = node.attr_path
    if name.uri is not None or name.sub_attr is not None:
        raise ScimError.invalid_filter(f"Filter in {path!r} must name sub-attributes")
    if not attribute.is_complex:
        # Items of a multi-valued simple attribute are addressed as `value`.
        if name.attr.lower() == "value":
            return AttributeDef("value", type=attribute.type, case_exact=attribute.case_exact)
        raise ScimError.invalid_filter(f"Unknown sub-attribute {name.attr!r} in {path!r}")
    sub = attribute.sub(name.attr)
    if sub is None:
        raise ScimError.invalid_filter(f"Unknown sub-attribute {name.attr!r} in {path!r}")
    return sub


def _parse_path(
    path: str, resource: ResourceSchema
) -> tuple[ResolvedAttribute | None, SchemaDef | None, FilterNode | None]:
    """(target, extension, filter) for a path; raises invalidPath/invalidFilter."""
    stripped = path.strip()
    extension = resource.extension(stripped)
    if extension is not None:
        return None, extension, None
    if stripped.lower() == resource.core.urn.lower():
        return None, None, None  # The core schema itself: the resource, as without path.
    try:
        parsed = Path(stripped)
        parts, uri, value_filter = parsed.parts, parsed.schema, parsed.value_filter
    except (SCIMException, ValueError) as exc:
        raise ScimError.invalid_path(f"Invalid path {path!r}: {exc}") from None
    if not parts:
        raise ScimError.invalid_path(f"Invalid path {path!r}")
    target = resource.resolve(parts[0], parts[1] if len(parts) > 1 else None, uri)
    if target is None:
        raise ScimError.invalid_path(f"Unknown attribute in path {path!r}")
    if value_filter is not None:
        if not target.attribute.multi_valued:
            raise ScimError.invalid_path(f"{path!r} filters a single-valued attribute")
        _check_filter(value_filter, target.attribute, path)
    return target, None, value_filter


def _value_attributes(value: Any, resource: ResourceSchema) -> tuple[ResolvedAttribute, ...]:
    """The attributes the keys of a pathless (or whole-extension) value designate."""
    if not isinstance(value, dict):
        raise ScimError.invalid_syntax("Without 'path', 'value' must be an object")
    found: list[ResolvedAttribute] = []
    for key, sub_value in value.items():
        if not isinstance(key, str):
            raise ScimError.invalid_syntax("Attribute names must be strings")
        if key.lower() == SCHEMAS_KEY:
            continue
        target = resolve_key(key, resource)
        if isinstance(target, SchemaDef):
            found.extend(_extension_attributes(target, sub_value, resource))
        else:
            found.append(ResolvedAttribute(target.schema, target.attribute))
    return tuple(found)


def _extension_attributes(
    extension: SchemaDef, value: Any, resource: ResourceSchema
) -> list[ResolvedAttribute]:
    if not isinstance(value, dict):
        return [ResolvedAttribute(extension, attribute) for attribute in extension.attributes]
    return [
        ResolvedAttribute(extension, resolve_in_extension(key, extension, resource).attribute)
        for key, _ in extension_members(value)
    ]


def _parse_operation(raw: Any, index: int, resource: ResourceSchema) -> PatchOperation:
    if not isinstance(raw, dict):
        raise ScimError.invalid_syntax(f"Operation {index} must be an object")
    fields = {k.lower(): v for k, v in raw.items() if isinstance(k, str)}
    op = fields.get("op")
    if not isinstance(op, str) or op.lower() not in OPS:
        raise ScimError.invalid_syntax(f"Operation {index}: 'op' must be add, replace or remove")
    op = op.lower()
    path = fields.get("path")
    if path is not None and not isinstance(path, str):
        raise ScimError.invalid_path(f"Operation {index}: 'path' must be a string")
    path = path if path and path.strip() else None
    value = fields.get("value")
    if op != "remove" and "value" not in fields:
        raise ScimError.invalid_syntax(f"Operation {index}: {op} needs a 'value'")
    if path is None:
        if op == "remove":
            # RFC 7644 §3.5.2.2: a remove without path has no target.
            raise ScimError.no_target(f"Operation {index}: remove needs a 'path'")
        return PatchOperation(op, None, None, None, None, value, _value_attributes(value, resource))
    target, extension, value_filter = _parse_path(path, resource)
    if target is not None:
        attributes: tuple[ResolvedAttribute, ...] = (
            ResolvedAttribute(target.schema, target.attribute),
        )
    elif extension is not None:
        attributes = tuple(_extension_attributes(extension, value, resource))
    else:
        if op == "remove":
            raise ScimError.invalid_path(f"Operation {index}: cannot remove the resource")
        attributes = _value_attributes(value, resource)
    return PatchOperation(op, path, target, extension, value_filter, value, attributes)


def patch_operations(body: Any, resource: ResourceSchema) -> list[PatchOperation]:
    """Validate a PatchOp body and parse its operations (paths resolved, not applied).

    Raises ScimError for a malformed envelope, an unknown op, an unparsable or
    unknown path (invalidPath), a bad filter (invalidFilter), or a remove without
    path (noTarget). Values are checked when applied.
    """
    operations = _check_envelope(body)
    return [_parse_operation(raw, index, resource) for index, raw in enumerate(operations, start=1)]


# -- value filters ---------------------------------------------------------------------


def _item_field(item: Any, sub: AttributeDef) -> Any:
    if isinstance(item, dict):
        return item.get(sub.name)
    return item if sub.name == "value" else None


def _as_datetime(value: Any) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


def _ordered(op: CompareOperator, actual: Any, expected: Any) -> bool:
    comparisons: dict[CompareOperator, Callable[[Any, Any], bool]] = {
        CompareOperator.eq: lambda a, b: bool(a == b),
        CompareOperator.ne: lambda a, b: bool(a != b),
        CompareOperator.gt: lambda a, b: bool(a > b),
        CompareOperator.ge: lambda a, b: bool(a >= b),
        CompareOperator.lt: lambda a, b: bool(a < b),
        CompareOperator.le: lambda a, b: bool(a <= b),
        CompareOperator.co: lambda a, b: isinstance(a, str) and b in a,
        CompareOperator.sw: lambda a, b: isinstance(a, str) and a.startswith(b),
        CompareOperator.ew: lambda a, b: isinstance(a, str) and a.endswith(b),
    }
    try:
        return comparisons[op](actual, expected)
    except TypeError:
        return False  # Values of different kinds never compare as ordered.


def _compare(sub: AttributeDef, actual: Any, op: CompareOperator, expected: Any) -> bool:
    if expected is None:
        return (actual is None) == (op == CompareOperator.eq)
    if actual is None:
        return op == CompareOperator.ne
    if sub.type == "boolean":
        if isinstance(expected, str):
            expected = expected.strip().lower() == "true"
        return bool(actual == expected) == (op == CompareOperator.eq)
    if sub.type in ("integer", "decimal"):
        if isinstance(expected, bool) or not isinstance(expected, int | float):
            return op == CompareOperator.ne
        return _ordered(op, actual, expected)
    if sub.type == "dateTime":
        left, right = _as_datetime(actual), _as_datetime(expected)
        if left is not None and right is not None:
            return _ordered(op, left, right)
    if not isinstance(actual, str) or not isinstance(expected, str):
        return _ordered(op, actual, expected)
    if not sub.case_exact:
        actual, expected = actual.casefold(), expected.casefold()
    return _ordered(op, actual, expected)


def _matches(node: FilterNode, item: Any, attribute: AttributeDef) -> bool:
    """Whether one item of a multi-valued attribute satisfies a (checked) filter."""
    if isinstance(node, Not):
        return not _matches(node.expr, item, attribute)
    if isinstance(node, LogicalExpr):
        results = (_matches(term, item, attribute) for term in node.terms)
        return all(results) if node.op == LogicalOperator.and_ else any(results)
    if isinstance(node, Present):
        value = _item_field(item, _filter_sub(node, attribute, ""))
        return value not in (None, "", [], {})
    if isinstance(node, Comparison):
        sub = _filter_sub(node, attribute, "")
        return _compare(sub, _item_field(item, sub), node.op, node.value)
    return False


def _seed(node: FilterNode, attribute: AttributeDef) -> dict[str, Any] | None:
    """The item an `eq`-only filter describes, or None if the filter is not that simple."""
    if isinstance(node, Comparison):
        if node.op != CompareOperator.eq or node.value is None or not attribute.is_complex:
            return None
        sub = _filter_sub(node, attribute, "")
        return {sub.name: coerce_simple(sub, node.value, f"{attribute.name}.{sub.name}")}
    if isinstance(node, LogicalExpr) and node.op == LogicalOperator.and_:
        seed: dict[str, Any] = {}
        for term in node.terms:
            part = _seed(term, attribute)
            if part is None:
                return None
            seed.update(part)
        return seed
    return None


# -- applying --------------------------------------------------------------------------


def _immutable_clash(sub: AttributeDef, was: Any, now: Any) -> bool:
    return sub.mutability == "immutable" and was is not None and was != now


def _check_item_immutables(
    attribute: AttributeDef, old: Any, new: Any, label: str, *, whole: bool
) -> None:
    """An item's immutable sub-attributes keep their value (`members.value`).

    `whole` is for a replaced item: a sub-attribute it no longer carries changed too.
    """
    if not isinstance(old, dict) or not isinstance(new, dict):
        return
    for sub in attribute.sub_attributes:
        if sub.name not in new and not whole:
            continue
        if _immutable_clash(sub, old.get(sub.name), new.get(sub.name)):
            raise ScimError.mutability(f"Attribute '{label}.{sub.name}' is immutable")


class _Patcher:
    """Applies operations to its own copy of a document."""

    def __init__(
        self, document: dict[str, Any], resource: ResourceSchema, current_id: str | None
    ) -> None:
        self.document = copy.deepcopy(document)
        self.resource = resource
        self.current_id = current_id
        self.password: str | None = None

    # dispatch

    def apply(self, operation: PatchOperation) -> None:
        value = copy.deepcopy(operation.value)
        if operation.target is not None:
            self._check_writable(operation.op, operation.target, operation.value_filter)
            self.apply_target(operation.op, operation.target, operation.value_filter, value)
        elif operation.extension is not None:
            self.apply_extension(operation.op, operation.extension, value)
        else:
            self.apply_pathless(operation.op, value)

    def apply_pathless(self, op: str, value: dict[str, Any]) -> None:
        for key, item in value.items():
            if key.lower() == SCHEMAS_KEY:
                continue
            target = resolve_key(key, self.resource)
            if isinstance(target, SchemaDef):
                self.apply_extension(op, target, item)
                continue
            if target.schema is COMMON_SCHEMA and target.attribute.name in _ECHOED:
                self._check_id(target, item)
                continue
            self._check_writable(op, target, None)
            self.apply_target(op, target, None, item)

    def apply_extension(self, op: str, extension: SchemaDef, value: Any) -> None:
        if op != "remove" and isinstance(value, dict) and not extension_members(value):
            # An extension object with no attribute in it (at most its `schemas`) asks
            # for nothing, even of a read-only extension.
            return
        if all(attribute.mutability == "readOnly" for attribute in extension.attributes):
            raise ScimError.mutability(f"{extension.urn} is readOnly")
        if op == "remove" or (op == "replace" and value is None):
            self.document.pop(extension.urn, None)
            return
        if value is None:
            return
        if not isinstance(value, dict):
            raise ScimError.invalid_value(f"{extension.urn!r} must be an object")
        for key, item in extension_members(value):
            target = resolve_in_extension(key, extension, self.resource)
            self._check_writable(op, target, None)
            self.apply_target(op, target, None, item)

    def apply_target(
        self, op: str, target: ResolvedAttribute, value_filter: FilterNode | None, value: Any
    ) -> None:
        if is_top_level(target.schema, self.resource) and target.attribute.name == PASSWORD:
            self._set_password(op, value)
            return
        container = self._container(target.schema, create=op != "remove")
        if container is None:
            return  # Removing from an extension the resource does not carry.
        if target.attribute.multi_valued:
            self._multi(op, target, value_filter, container, value)
        elif target.sub_attribute is None:
            self._single(op, target, container, value)
        else:
            self._single_sub(op, target, container, value)

    # checks

    def _check_writable(
        self, op: str, target: ResolvedAttribute, value_filter: FilterNode | None
    ) -> None:
        for attribute in (target.attribute, target.sub_attribute):
            if attribute is not None and attribute.mutability == "readOnly":
                raise ScimError.mutability(f"Attribute {label_of(target)!r} is readOnly")
        whole = target.sub_attribute is None and value_filter is None
        if op == "remove" and whole and target.attribute.required:
            raise ScimError.mutability(f"Attribute {label_of(target)!r} is required")

    def _check_id(self, target: ResolvedAttribute, value: Any) -> None:
        if target.attribute.name != "id" or self.current_id is None or value is None:
            return
        if value != self.current_id:
            raise ScimError.mutability("Attribute 'id' is readOnly and does not match")

    def _set_password(self, op: str, value: Any) -> None:
        if op == "remove":
            raise ScimError.mutability("Attribute 'password' can be replaced, not removed")
        if not isinstance(value, str):
            raise ScimError.invalid_value("Attribute 'password' must be a string")
        self.password = value

    def _container(self, schema: SchemaDef, *, create: bool) -> dict[str, Any] | None:
        container = container_of(self.document, schema, self.resource)
        if container is None and create:
            container = self.document[schema.urn] = {}
        return container

    # single-valued

    def _single(
        self, op: str, target: ResolvedAttribute, container: dict[str, Any], value: Any
    ) -> None:
        attribute, label = target.attribute, label_of(target)
        old = container.get(attribute.name)
        if op == "remove":
            new = None
        elif attribute.is_complex and isinstance(value, dict):
            new = self._merge_complex(attribute, old, value, label)
        else:
            new = coerce_attribute(attribute, value, label)
            if new is None and op == "add":
                return
        if attribute.mutability == "immutable" and old is not None and new != old:
            raise ScimError.mutability(f"Attribute {label!r} is immutable")
        _store(container, attribute.name, new)

    def _merge_complex(
        self, attribute: AttributeDef, old: Any, value: dict[str, Any], label: str
    ) -> dict[str, Any] | None:
        """RFC 7644 §3.5.2.1/3: sub-attributes not in `value` stay; null removes one."""
        merged = dict(old) if isinstance(old, dict) else {}
        for key, raw in value.items():
            sub = attribute.sub(str(key))
            if sub is None:
                raise ScimError.invalid_syntax(f"Unknown sub-attribute {key!r} of {label!r}")
            if sub.mutability == "readOnly":
                continue
            now = coerce_sub_value(sub, raw, label)
            if _immutable_clash(sub, merged.get(sub.name), now):
                raise ScimError.mutability(f"Attribute '{label}.{sub.name}' is immutable")
            _store(merged, sub.name, now)
        return merged or None

    def _single_sub(
        self, op: str, target: ResolvedAttribute, container: dict[str, Any], value: Any
    ) -> None:
        attribute, sub = target.attribute, target.sub_attribute
        assert sub is not None
        old = container.get(attribute.name)
        merged = dict(old) if isinstance(old, dict) else {}
        now = None if op == "remove" else coerce_sub_value(sub, value, parent_label(target))
        if now is None and op == "add":
            return
        if _immutable_clash(sub, merged.get(sub.name), now):
            raise ScimError.mutability(f"Attribute {label_of(target)!r} is immutable")
        _store(merged, sub.name, now)
        _store(container, attribute.name, merged or None)

    # multi-valued

    def _multi(
        self,
        op: str,
        target: ResolvedAttribute,
        value_filter: FilterNode | None,
        container: dict[str, Any],
        value: Any,
    ) -> None:
        attribute = target.attribute
        items = _Items(attribute, parent_label(target), list(container.get(attribute.name) or []))
        if value_filter is not None:
            items.filtered(op, target.sub_attribute, value_filter, value)
        elif target.sub_attribute is not None:
            items.every(op, target.sub_attribute, value)
        else:
            items.whole(op, value)
        items.settle_primary()
        _store(container, attribute.name, items.items or None)


def _store(container: dict[str, Any], name: str, value: Any) -> None:
    if value is None:
        container.pop(name, None)
    else:
        container[name] = value


class _Items:
    """The items of one multi-valued attribute while an operation changes them.

    `touched` records the items the operation wrote, so that one marked primary
    can unmark the others afterwards (RFC 7643 §2.4).
    """

    def __init__(self, attribute: AttributeDef, label: str, items: list[Any]) -> None:
        self.attribute = attribute
        self.label = label
        self.items = items
        self.touched: list[Any] = []

    # `emails`, `members`

    def whole(self, op: str, value: Any) -> None:
        if op == "remove":
            self._remove_listed(value)
            return
        new_items = coerce_items(self.attribute, value, self.label) or []
        if op == "replace":
            self.items = list(new_items)
            self.touched = list(new_items)
            return
        # Items are found by identity key, so that adding many members to a large
        # group stays linear.
        index = {self._identity(item): position for position, item in enumerate(self.items)}
        for new in new_items:
            self._add(new, index)

    def _add(self, new: Any, index: dict[Any, int]) -> None:
        key = self._identity(new)
        position = index.get(key)
        if position is None:
            index[key] = len(self.items)
            self.items.append(new)
            self.touched.append(new)
            return
        old = self.items[position]
        if isinstance(old, dict) and isinstance(new, dict):
            _check_item_immutables(self.attribute, old, new, self.label, whole=False)
            merged = {**old, **new}
            self.items[position] = merged
            self.touched.append(merged)

    def _identity(self, item: Any) -> Any:
        """What makes two items the same one: their `value` (folded unless caseExact),
        or their whole content when they have no `value`."""
        value_sub = self.attribute.sub("value")
        if isinstance(item, dict) and value_sub is not None and "value" in item:
            value = item["value"]
            if isinstance(value, str) and not value_sub.case_exact:
                value = value.casefold()
            return ("value", json.dumps(value))
        return ("item", json.dumps(item, sort_keys=True))

    def _remove_listed(self, value: Any) -> None:
        if value is None:
            self.items = []
            return
        # Entra/Okta: `remove` on `members` with the members to drop as the value.
        listed = {
            self._identity(item) for item in coerce_items(self.attribute, value, self.label) or []
        }
        self.items = [old for old in self.items if self._identity(old) not in listed]

    # `emails.value`: every item

    def every(self, op: str, sub: AttributeDef, value: Any) -> None:
        if op == "remove":
            self._drop_sub(self.items, sub)
            return
        now = coerce_sub_value(sub, value, self.label)
        if now is None:
            if op == "replace":
                self._drop_sub(self.items, sub)
            return
        if not self.items:
            self._append({sub.name: now})
            return
        self._set_sub(range(len(self.items)), sub, now)

    # `emails[type eq "work"]`, `emails[type eq "work"].value`

    def filtered(
        self, op: str, sub: AttributeDef | None, value_filter: FilterNode, value: Any
    ) -> None:
        matched = [
            index
            for index, item in enumerate(self.items)
            if _matches(value_filter, item, self.attribute)
        ]
        if op == "remove":
            self._remove_matched(matched, sub)
        elif sub is not None:
            self._write_sub(op, matched, sub, value_filter, value)
        else:
            self._write_items(op, matched, value_filter, value)

    def _remove_matched(self, matched: list[int], sub: AttributeDef | None) -> None:
        # Removing nothing is not an error: a remove is idempotent.
        if sub is None:
            gone = set(matched)
            self.items = [item for i, item in enumerate(self.items) if i not in gone]
        else:
            self._drop_sub([self.items[i] for i in matched], sub)

    def _write_sub(
        self,
        op: str,
        matched: list[int],
        sub: AttributeDef,
        value_filter: FilterNode,
        value: Any,
    ) -> None:
        now = coerce_sub_value(sub, value, self.label)
        if now is None:
            if op == "replace":
                self._drop_sub([self.items[i] for i in matched], sub)
            return
        if matched:
            self._set_sub(matched, sub, now)
        else:
            self._append({**self._seed_or_fail(value_filter), sub.name: now})

    def _write_items(
        self, op: str, matched: list[int], value_filter: FilterNode, value: Any
    ) -> None:
        if isinstance(value, list):
            if len(value) > 1:
                raise ScimError.invalid_value(f"{self.label!r}: one value per filtered path")
            value = value[0] if value else None
        new = coerce_items(self.attribute, value, self.label)
        if new is None:
            if op == "replace":
                self._remove_matched(matched, None)
            return
        if not matched:
            self._append({**self._seed_or_fail(value_filter), **new[0]})
            return
        for index in matched:
            old = self.items[index]
            # RFC 7644 §3.5.2.3: replace replaces each matching item; add completes it.
            replaced = new[0] if op == "replace" else {**old, **new[0]}
            _check_item_immutables(self.attribute, old, replaced, self.label, whole=op == "replace")
            self.items[index] = copy.deepcopy(replaced)
            self.touched.append(self.items[index])

    def _seed_or_fail(self, value_filter: FilterNode) -> dict[str, Any]:
        seed = _seed(value_filter, self.attribute)
        if seed is None:
            raise ScimError.no_target(f"No value of {self.label!r} matches [{value_filter}]")
        return seed

    # helpers

    def _append(self, item: dict[str, Any]) -> None:
        self.items.append(item)
        self.touched.append(item)

    def _set_sub(self, indexes: Any, sub: AttributeDef, now: Any) -> None:
        for index in indexes:
            item = self.items[index]
            if not isinstance(item, dict):
                raise ScimError.invalid_path(f"{self.label!r} has no sub-attributes")
            if _immutable_clash(sub, item.get(sub.name), now):
                raise ScimError.mutability(f"Attribute '{self.label}.{sub.name}' is immutable")
            item[sub.name] = now
            self.touched.append(item)

    def _drop_sub(self, targets: list[Any], sub: AttributeDef) -> None:
        for item in targets:
            if isinstance(item, dict):
                if _immutable_clash(sub, item.get(sub.name), None):
                    raise ScimError.mutability(f"Attribute '{self.label}.{sub.name}' is immutable")
                item.pop(sub.name, None)
        self.items = [item for item in self.items if item != {}]

    def settle_primary(self) -> None:
        """At most one primary: the item this operation marked wins (RFC 7643 §2.4)."""
        if self.attribute.sub("primary") is None:
            return
        marked = [item for item in self.touched if isinstance(item, dict) and item.get("primary")]
        if len({id(item) for item in marked}) > 1:
            raise ScimError.invalid_value(f"Only one of {self.label!r} may be primary")
        if not marked:
            return
        for item in self.items:
            if item is not marked[0] and isinstance(item, dict) and item.get("primary"):
                item["primary"] = False


def _check_required_kept(document: dict[str, Any], resource: ResourceSchema) -> None:
    """A patch may not unassign a required attribute (as scim2-models: mutability)."""
    for schema, attribute in resource.iter_attributes():
        if not attribute.required or attribute.mutability == "readOnly":
            continue
        container = container_of(document, schema, resource)
        if container is None or container.get(attribute.name) is None:
            raise ScimError.mutability(f"Attribute {attribute.name!r} is required")


def apply_patch(
    document: dict[str, Any],
    body: Any,
    resource: ResourceSchema,
    *,
    current_id: str | None = None,
) -> PatchResult:
    """Apply a PatchOp body to a stored document; the input is never modified.

    All operations apply, in order, or a ScimError is raised and nothing changed.
    Pass `current_id` to refuse an `id` in a pathless value that differs from it.
    The result is canonical (as normalize_resource makes it), without `password`:
    a password the patch sets is returned in PatchResult.password.
    """
    operations = patch_operations(body, resource)
    patcher = _Patcher(document, resource, current_id)
    for operation in operations:
        patcher.apply(operation)
    _check_required_kept(patcher.document, resource)
    patched = finish_document(patcher.document, resource)
    return PatchResult(document=patched, password=patcher.password, changed=patched != document)
