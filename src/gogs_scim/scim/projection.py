"""`attributes` and `excludedAttributes` (RFC 7644 §3.4.2.5, §3.9) on a rendered resource.

The catalog's `returned` characteristic decides the default set (RFC 7643 §2.2):
`always` attributes (`id`; `schemas` is not an attribute but is always kept) come back
whatever the client asked, `never` ones (`password`) never do, `request` ones only
when named in `attributes`. Names are matched case-insensitively, may name a
sub-attribute (`name.givenName`, `emails.value`), may be URN-qualified
(`urn:...:enterprise:2.0:User:department`) or name a whole extension by its URN.
Unknown names are ignored, as the RFC asks.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from gogs_scim.scim.schema import COMMON_SCHEMA, AttributeDef, ResourceSchema, SchemaDef

SCHEMAS_KEY = "schemas"


class _Absent:
    """Marks an attribute projected away (None is a value a resource may hold)."""


_ABSENT = _Absent()


@dataclass
class _Selection:
    """The attributes a list names: whole schemas, whole attributes, or some of their
    sub-attributes (`subs[key]` is None for the whole attribute)."""

    schemas: set[str] = field(default_factory=set)
    subs: dict[tuple[str, str], set[str] | None] = field(default_factory=dict)

    def pick(
        self, schema: SchemaDef, attribute: AttributeDef, resource: ResourceSchema
    ) -> tuple[bool, set[str] | None]:
        """(named at all, which sub-attributes — None meaning all of them)."""
        # The common attributes (`id`, `externalId`, `meta`) count as the core schema's.
        owner = resource.core.urn if schema is COMMON_SCHEMA else schema.urn
        if owner in self.schemas:
            return True, None
        key = (schema.urn, attribute.name)
        if key in self.subs:
            return True, self.subs[key]
        return False, None


def parse_attribute_list(raw: str | None) -> list[str] | None:
    """The comma-separated `attributes`/`excludedAttributes` query parameter as a list;
    None when absent or empty."""
    if raw is None:
        return None
    names = [name.strip() for name in raw.split(",") if name.strip()]
    return names or None


def _selection(resource: ResourceSchema, names: list[str] | None) -> _Selection:
    selection = _Selection()
    for raw in names or ():
        if not isinstance(raw, str):
            continue  # A /.search body is JSON: ignore what is not a name, like unknowns.
        name = raw.strip()
        whole_schema = resource.extension(name)
        if whole_schema is None and name.lower() == resource.core.urn.lower():
            whole_schema = resource.core
        if whole_schema is not None:
            selection.schemas.add(whole_schema.urn)
            continue
        resolved = resource.resolve_dotted(name)
        if resolved is None:
            continue  # RFC 7644 §3.9: unknown attributes are ignored.
        key = (resolved.schema.urn, resolved.attribute.name)
        if resolved.sub_attribute is None:
            selection.subs[key] = None
        elif key not in selection.subs or selection.subs[key] is not None:
            chosen = selection.subs.get(key) or set()
            chosen.add(resolved.sub_attribute.name)
            selection.subs[key] = chosen
    return selection


@dataclass(frozen=True)
class _Request:
    """What one request asked for, resolved once against the catalog."""

    resource: ResourceSchema
    requested: _Selection | None  # None: the default set
    excluded: _Selection

    def attribute(self, schema: SchemaDef, attribute: AttributeDef, value: Any) -> Any:
        """The value to return for a top-level attribute, or _ABSENT."""
        if attribute.returned == "never":
            return _ABSENT
        if attribute.returned == "always":
            return _sub_attributes(attribute, value, None, set())
        keep: set[str] | None = None
        if self.requested is not None:
            named, keep = self.requested.pick(schema, attribute, self.resource)
            if not named:
                return _ABSENT
        elif attribute.returned == "request":
            return _ABSENT
        excluded, drop = self.excluded.pick(schema, attribute, self.resource)
        if excluded and drop is None:
            return _ABSENT
        return _sub_attributes(attribute, value, keep, drop or set())

    def container(self, schema: SchemaDef, values: dict[str, Any]) -> dict[str, Any]:
        """Project the attributes of one schema held in one object."""
        out: dict[str, Any] = {}
        for key, value in values.items():
            attribute = schema.attribute(key)
            if attribute is None:
                if self.requested is None:
                    out[key] = copy.deepcopy(value)
                continue
            kept = self.attribute(schema, attribute, value)
            if not isinstance(kept, _Absent):
                out[key] = kept
        return out


def _sub_attributes(
    attribute: AttributeDef, value: Any, keep: set[str] | None, drop: set[str]
) -> Any:
    """Filter the sub-attributes of a complex value (or of each item of a list)."""
    if not attribute.is_complex:
        return copy.deepcopy(value)
    if isinstance(value, list):
        if not value:
            return []  # rendered empty on purpose (the Group extension's `teams`)
        items = [_item(attribute, item, keep, drop) for item in value]
        kept = [item for item in items if not isinstance(item, _Absent)]
        return kept or _ABSENT
    return _item(attribute, value, keep, drop)


def _item(attribute: AttributeDef, item: Any, keep: set[str] | None, drop: set[str]) -> Any:
    if not isinstance(item, dict):
        return copy.deepcopy(item)
    out: dict[str, Any] = {}
    for key, value in item.items():
        sub = attribute.sub(key)
        if sub is None:
            if keep is None:
                out[key] = copy.deepcopy(value)
            continue
        if _returns_sub(sub, keep, drop):
            out[key] = copy.deepcopy(value)
    return out or _ABSENT


def _returns_sub(sub: AttributeDef, keep: set[str] | None, drop: set[str]) -> bool:
    if sub.returned == "never":
        return False
    if sub.returned == "always":
        return True
    if keep is not None:
        return sub.name in keep and sub.name not in drop
    return sub.returned != "request" and sub.name not in drop


def project(
    resource_json: dict[str, Any],
    resource: ResourceSchema,
    attributes: list[str] | None,
    excluded: list[str] | None,
) -> dict[str, Any]:
    """The resource as the client asked to see it; the input is not modified.

    `attributes` replaces the default set (plus `returned: always`); `excluded`
    then removes attributes or sub-attributes (never `returned: always` ones).
    `schemas` is always kept as it is.
    """
    request = _Request(
        resource,
        _selection(resource, attributes) if attributes else None,
        _selection(resource, excluded),
    )
    out: dict[str, Any] = {}
    for key, value in resource_json.items():
        if key.lower() == SCHEMAS_KEY:
            out[key] = copy.deepcopy(value)
            continue
        extension = resource.extension(key)
        if extension is not None:
            kept = request.container(extension, value) if isinstance(value, dict) else {}
            if kept:
                out[key] = kept
            continue
        resolved = resource.resolve(key)
        if resolved is None:
            if request.requested is None:
                out[key] = copy.deepcopy(value)
            continue
        projected = request.attribute(resolved.schema, resolved.attribute, value)
        if not isinstance(projected, _Absent):
            out[key] = projected
    return out


def excludes_top_level(
    resource: ResourceSchema,
    attributes: list[str] | None,
    excluded: list[str] | None,
    name: str,
) -> bool:
    """Whether `project` would leave out the whole attribute `name` (e.g. "members").

    Lets the service skip loading what it would not return, such as the members of a
    large group. False for an unknown name: there is nothing to skip.
    """
    resolved = resource.resolve_dotted(name)
    if resolved is None:
        return False
    request = _Request(
        resource,
        _selection(resource, attributes) if attributes else None,
        _selection(resource, excluded),
    )
    # A value with every sub-attribute stands in for "whatever the resource holds".
    attribute = resolved.attribute
    probe: Any = (
        {sub.name: True for sub in attribute.sub_attributes} if attribute.is_complex else True
    )
    if attribute.multi_valued:
        probe = [probe]
    return isinstance(request.attribute(resolved.schema, attribute, probe), _Absent)
