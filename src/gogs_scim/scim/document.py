"""Turn a POST/PUT body into the canonical document we store (RFC 7643 §2, §3, §7).

The stored document is the resource as the identity provider (IdP) defined it, spelled
the way the catalog spells it: canonical attribute names, extension attributes nested
under their schema URN, a `schemas` list, and nothing the service owns (`id`, `meta`,
the Gogs extension) or must never keep (`password`). Everything that reads a document
later (PATCH, filters, rendering, the Gogs converger) relies on that shape, so every
IdP dialect is absorbed here, once:

* attribute names, sub-attribute names and extension URNs in any letter case;
* booleans sent as strings (Entra sends `"True"`/`"False"`);
* one object where a multi-valued attribute expects a list;
* Entra's enterprise `manager` as a bare id string;
* dotted keys (`"name.givenName"`) and URN-qualified keys
  (`"urn:...:enterprise:2.0:User:department"`) at the top level;
* Entra's `http://schemas.microsoft.com/.../ADSCIM/2.0/Group` in a Group's `schemas`.

`PATCH` (patch.py) reuses the coercion helpers below so that a value means the same
thing whichever way it arrives.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gogs_scim.scim.errors import ScimError
from gogs_scim.scim.schema import (
    COMMON_SCHEMA,
    AttributeDef,
    ResolvedAttribute,
    ResourceSchema,
    SchemaDef,
)

SCHEMAS_KEY = "schemas"
PASSWORD = "password"  # noqa: S105 - the attribute name, not a secret

# Schema URIs some IdPs put in `schemas` without ever sending an attribute of them:
# Entra's Group create lists its private ADSCIM schema. Rejecting them would make the
# IdP unable to create groups at all, so they are dropped (lowercased for matching).
TOLERATED_SCHEMA_URIS = frozenset(
    {"http://schemas.microsoft.com/2006/11/resourcemanagement/adscim/2.0/group"}
)

# xsd:dateTime as RFC 7643 §2.3.5 requires it: a date *and* a time, zone optional.
_DATETIME_RE = re.compile(
    r"-?\d{4,}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?", re.IGNORECASE
)


@dataclass(frozen=True)
class NormalizedResource:
    """A POST/PUT body made canonical.

    `document` is what the store keeps. `password` was taken out of it (writeOnly:
    it goes to Gogs once and is never stored). `external_id` and `schemas` repeat
    what the document holds, for the caller's convenience.
    """

    document: dict[str, Any]
    password: str | None
    external_id: str | None
    schemas: list[str]


# -- resolving names -------------------------------------------------------------------


def is_top_level(schema: SchemaDef, resource: ResourceSchema) -> bool:
    """Whether attributes of `schema` sit at the top of a document (core and common)."""
    return schema.urn in ("", resource.core.urn)


def resolve_key(key: str, resource: ResourceSchema) -> ResolvedAttribute | SchemaDef:
    """Resolve a body key: an attribute (plain, dotted or URN-qualified) or an extension.

    An extension URN on its own answers the extension's SchemaDef (its value is an
    object of that extension's attributes). Unknown names are a client error: the RFC
    lets us ignore them, but silently dropping data the IdP thinks it stored only
    hides mapping mistakes.
    """
    extension = resource.extension(key)
    if extension is not None:
        return extension
    resolved = resource.resolve_dotted(key)
    if resolved is not None:
        return resolved
    if key.lower().startswith("urn:"):
        raise ScimError.invalid_syntax(f"Unknown schema extension or attribute {key!r}")
    raise ScimError.invalid_syntax(f"Unknown attribute {key!r} for {resource.name}")


def resolve_in_extension(
    key: str, extension: SchemaDef, resource: ResourceSchema
) -> ResolvedAttribute:
    """Resolve a key found inside an extension object (`manager`, or `manager.value`)."""
    attr, _, sub_attr = key.partition(".")
    resolved = resource.resolve(attr, sub_attr or None, extension.urn)
    if resolved is None:
        raise ScimError.invalid_syntax(f"Unknown attribute {key!r} in {extension.urn}")
    return resolved


def extension_members(value: dict[str, Any]) -> list[tuple[str, Any]]:
    """The attributes of an extension object. A `schemas` key inside it, which some
    clients (scim2-models among them) echo, says nothing and is ignored."""
    return [(str(key), item) for key, item in value.items() if str(key).lower() != "schemas"]


# -- coercing values -------------------------------------------------------------------


def _wrong_type(label: str, expected: str) -> ScimError:
    return ScimError.invalid_value(f"Attribute {label!r} must be {expected}")


def _coerce_boolean(value: Any, label: str) -> bool:
    if isinstance(value, bool):
        return value
    # Entra sends booleans as "True"/"False" strings.
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise _wrong_type(label, "a boolean")


def _coerce_integer(value: Any, label: str) -> int:
    if isinstance(value, bool):
        raise _wrong_type(label, "an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise _wrong_type(label, "an integer")


def _coerce_decimal(value: Any, label: str) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _wrong_type(label, "a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise _wrong_type(label, "a finite number")
    return value


def _coerce_string(value: Any, label: str, expected: str = "a string") -> str:
    if not isinstance(value, str):
        raise _wrong_type(label, expected)
    return value


def _coerce_datetime(value: Any, label: str) -> str:
    text = _coerce_string(value, label, "an ISO 8601 dateTime string")
    if not _DATETIME_RE.fullmatch(text):
        raise _wrong_type(label, "an ISO 8601 dateTime string")
    try:
        datetime.fromisoformat(text)
    except ValueError:
        raise _wrong_type(label, "an ISO 8601 dateTime string") from None
    # Kept as sent: the document stores the IdP's value, not our rendering of it.
    return text


def _coerce_binary(value: Any, label: str) -> str:
    text = _coerce_string(value, label, "a base64 string")
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _wrong_type(label, "a base64 string") from None
    return text


def coerce_simple(attribute: AttributeDef, value: Any, label: str) -> Any:
    """One non-complex value, checked (and for booleans converted) per its type."""
    kind = attribute.type
    if kind == "boolean":
        return _coerce_boolean(value, label)
    if kind == "integer":
        return _coerce_integer(value, label)
    if kind == "decimal":
        return _coerce_decimal(value, label)
    if kind == "dateTime":
        return _coerce_datetime(value, label)
    if kind == "binary":
        return _coerce_binary(value, label)
    if kind == "reference":
        return _coerce_string(value, label, "a reference (string)")
    return _coerce_string(value, label)


def coerce_sub_value(sub: AttributeDef, value: Any, label: str) -> Any | None:
    """A sub-attribute's value (`label` names its parent); None means absent (null)."""
    if value is None:
        return None
    return coerce_simple(sub, value, f"{label}.{sub.name}")


def coerce_complex(attribute: AttributeDef, value: Any, label: str) -> dict[str, Any] | None:
    """One complex value (a single-valued complex, or one item of a multi-valued one).

    Sub-attribute names become canonical; readOnly sub-attributes the client echoes
    back (RFC 7643 §7) are dropped; null sub-attributes are absent. A bare string
    stands for `{"value": ...}` (Entra sends `manager` that way). Answers None when
    nothing is left.
    """
    if isinstance(value, str) and attribute.sub("value") is not None:
        value = {"value": value}
    if not isinstance(value, dict):
        raise _wrong_type(label, "an object")
    out: dict[str, Any] = {}
    for key, raw in value.items():
        sub = attribute.sub(str(key))
        if sub is None:
            raise ScimError.invalid_syntax(f"Unknown sub-attribute {key!r} of {label!r}")
        if sub.mutability == "readOnly":
            continue
        coerced = coerce_sub_value(sub, raw, label)
        if coerced is not None:
            out[sub.name] = coerced
    return out or None


def coerce_items(attribute: AttributeDef, value: Any, label: str) -> list[Any] | None:
    """The items of a multi-valued attribute; None when there are none (absent)."""
    if value is None:
        return None
    # Some IdPs send one object where a list is expected.
    raw_items = value if isinstance(value, list) else [value]
    items: list[Any] = []
    for raw in raw_items:
        item = coerce_single(attribute, raw, label)
        if item is not None:
            items.append(item)
    return items or None


def coerce_single(attribute: AttributeDef, value: Any, label: str) -> Any | None:
    """One value of `attribute` ignoring multi-valuedness; None when absent."""
    if value is None:
        return None
    if attribute.is_complex:
        # A one-item list for a single-valued complex (seen for `manager`) is unwrapped.
        if not attribute.multi_valued and isinstance(value, list):
            if len(value) > 1:
                raise _wrong_type(label, "a single object")
            value = value[0] if value else None
            if value is None:
                return None
        return coerce_complex(attribute, value, label)
    return coerce_simple(attribute, value, label)


def coerce_attribute(attribute: AttributeDef, value: Any, label: str) -> Any | None:
    """A whole attribute value (a list for multi-valued ones); None means absent."""
    if attribute.multi_valued:
        return coerce_items(attribute, value, label)
    return coerce_single(attribute, value, label)


def label_of(resolved: ResolvedAttribute) -> str:
    """How errors name an attribute: `name.givenName`, `urn:...:User:manager`."""
    return resolved.canonical_path


def parent_label(resolved: ResolvedAttribute) -> str:
    """The label of the top-level attribute a (sub-)attribute path belongs to."""
    return ResolvedAttribute(resolved.schema, resolved.attribute).canonical_path


# -- whole-document checks -------------------------------------------------------------


def check_primary(attribute: AttributeDef, items: list[Any], label: str) -> None:
    """RFC 7643 §2.4: at most one item of a multi-valued attribute is primary."""
    if attribute.sub("primary") is None:
        return
    primaries = sum(1 for item in items if isinstance(item, dict) and item.get("primary"))
    if primaries > 1:
        raise ScimError.invalid_value(f"Only one of {label!r} may be primary")


def check_document(document: dict[str, Any], resource: ResourceSchema) -> None:
    """Invariants every stored document keeps: required attributes, one primary."""
    for schema, attribute in resource.iter_attributes():
        container = container_of(document, schema, resource)
        value = None if container is None else container.get(attribute.name)
        label = ResolvedAttribute(schema, attribute).canonical_path
        if attribute.required and attribute.mutability != "readOnly" and _is_empty(value):
            raise ScimError.invalid_value(f"Attribute {label!r} is required")
        if attribute.multi_valued and isinstance(value, list):
            check_primary(attribute, value, label)


def _is_empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    return isinstance(value, list | dict) and not value


def container_of(
    document: dict[str, Any], schema: SchemaDef, resource: ResourceSchema
) -> dict[str, Any] | None:
    """The dict holding `schema`'s attributes in a document: itself, or its URN key."""
    if is_top_level(schema, resource):
        return document
    container = document.get(schema.urn)
    return container if isinstance(container, dict) else None


def document_schemas(document: dict[str, Any], resource: ResourceSchema) -> list[str]:
    """`schemas` for a document: the core one, then each extension it carries data for."""
    schemas = [resource.core.urn]
    for extension in resource.extensions:
        if document.get(extension.urn):
            schemas.append(extension.urn)
    return schemas


def finish_document(document: dict[str, Any], resource: ResourceSchema) -> dict[str, Any]:
    """Drop empty extension objects and set `schemas`; the document is then canonical."""
    for extension in resource.extensions:
        if extension.urn in document and not document[extension.urn]:
            del document[extension.urn]
    document[SCHEMAS_KEY] = document_schemas(document, resource)
    check_document(document, resource)
    return document


# -- normalize_resource ----------------------------------------------------------------


def _check_schemas(payload: dict[str, Any], resource: ResourceSchema) -> None:
    """A `schemas` list, if sent, names our core schema and only schemas we know."""
    raw = next((v for k, v in payload.items() if k.lower() == SCHEMAS_KEY), None)
    if raw is None:
        return  # Tolerated: several IdPs omit it; we fill it in.
    if not isinstance(raw, list) or not all(isinstance(urn, str) for urn in raw):
        raise ScimError.invalid_syntax("'schemas' must be a list of schema URIs")
    folded = [urn.lower() for urn in raw]
    if resource.core.urn.lower() not in folded:
        raise ScimError.invalid_syntax(f"'schemas' must contain {resource.core.urn}")
    for urn in raw:
        known = urn.lower() == resource.core.urn.lower() or resource.extension(urn)
        if not known and urn.lower() not in TOLERATED_SCHEMA_URIS:
            raise ScimError.invalid_syntax(f"Unknown schema {urn!r} for {resource.name}")


class _Collector:
    """Gathers a body's values by canonical attribute, whatever key spelling was used."""

    def __init__(self, resource: ResourceSchema, current_id: str | None) -> None:
        self.resource = resource
        self.current_id = current_id
        self.values: dict[tuple[str, str], Any] = {}
        self.password: str | None = None

    def add_key(self, key: str, value: Any) -> None:
        target = resolve_key(key, self.resource)
        if isinstance(target, SchemaDef):
            self.add_extension(target, value)
        else:
            self.add(target, value)

    def add_extension(self, extension: SchemaDef, value: Any) -> None:
        if value is None:
            return
        if not isinstance(value, dict):
            raise _wrong_type(extension.urn, "an object")
        for key, sub_value in extension_members(value):
            self.add(resolve_in_extension(key, extension, self.resource), sub_value)

    def add(self, resolved: ResolvedAttribute, value: Any) -> None:
        attribute = resolved.attribute
        if resolved.schema is COMMON_SCHEMA and attribute.name == "id":
            self._check_id(value)
        if attribute.mutability == "readOnly":
            return  # RFC 7643 §7: readOnly values sent by a client are ignored.
        if is_top_level(resolved.schema, self.resource) and attribute.name == PASSWORD:
            self.password = None if value is None else _coerce_string(value, PASSWORD)
            return
        key = (resolved.schema.urn, attribute.name)
        if resolved.sub_attribute is None:
            self._merge(key, coerce_attribute(attribute, value, label_of(resolved)))
        else:
            self._add_sub(key, resolved, value)

    def _add_sub(self, key: tuple[str, str], resolved: ResolvedAttribute, value: Any) -> None:
        attribute, sub = resolved.attribute, resolved.sub_attribute
        assert sub is not None
        if attribute.multi_valued:
            # `emails.value` names every email at once: no item to put it in.
            raise ScimError.invalid_syntax(
                f"{resolved.canonical_path!r} cannot be set in a resource body; "
                f"send {attribute.name!r} as a list"
            )
        if sub.mutability == "readOnly":
            return
        coerced = coerce_sub_value(sub, value, parent_label(resolved))
        current = self.values.get(key)
        merged = dict(current) if isinstance(current, dict) else {}
        if coerced is None:
            merged.pop(sub.name, None)
        else:
            merged[sub.name] = coerced
        self.values[key] = merged or None

    def _merge(self, key: tuple[str, str], value: Any) -> None:
        current = self.values.get(key)
        # `name` and `name.givenName` in one body complete each other, and a value that
        # came out empty (only readOnly parts, null) does not erase the other spelling.
        if value is None:
            value = current
        elif isinstance(current, dict) and isinstance(value, dict):
            value = {**current, **value}
        self.values[key] = value

    def _check_id(self, value: Any) -> None:
        if self.current_id is not None and value is not None and value != self.current_id:
            raise ScimError.mutability("Attribute 'id' is readOnly and does not match")


def _build_document(collector: _Collector, resource: ResourceSchema) -> dict[str, Any]:
    """Lay the collected values out in catalog order, extensions under their URN."""
    document: dict[str, Any] = {SCHEMAS_KEY: []}
    for schema, attribute in resource.iter_attributes():
        value = collector.values.get((schema.urn, attribute.name))
        if value is None:
            continue
        if is_top_level(schema, resource):
            document[attribute.name] = value
        else:
            document.setdefault(schema.urn, {})[attribute.name] = value
    return document


def check_immutable(
    before: dict[str, Any], after: dict[str, Any], resource: ResourceSchema
) -> None:
    """A PUT may not change an immutable value that is already set (RFC 7643 §2.2).

    Only single-valued attributes and the sub-attributes of single-valued complex
    attributes are compared: the immutable sub-attributes of a multi-valued one
    (`members.value`) belong to items, and replacing the list replaces items.
    """
    for schema, attribute in resource.iter_attributes():
        if attribute.multi_valued or attribute.mutability == "readOnly":
            continue
        old_container = container_of(before, schema, resource) or {}
        new_container = container_of(after, schema, resource) or {}
        old, new = old_container.get(attribute.name), new_container.get(attribute.name)
        if attribute.mutability == "immutable" and old is not None and old != new:
            raise ScimError.mutability(f"Attribute {attribute.name!r} is immutable")
        if isinstance(old, dict):
            for sub in attribute.sub_attributes:
                was = old.get(sub.name)
                now = new.get(sub.name) if isinstance(new, dict) else None
                if sub.mutability == "immutable" and was is not None and was != now:
                    raise ScimError.mutability(
                        f"Attribute '{attribute.name}.{sub.name}' is immutable"
                    )


def normalize_resource(
    payload: Any,
    resource: ResourceSchema,
    *,
    current_id: str | None = None,
    current_document: dict[str, Any] | None = None,
) -> NormalizedResource:
    """Validate a POST (create) or PUT (replace) body and make it canonical.

    For PUT pass `current_id` (a different `id` in the body is a mutability error;
    the same one, or none, is fine) and `current_document` (a changed immutable value
    is a mutability error). Raises ScimError (400) on anything the client must fix.
    """
    if not isinstance(payload, dict):
        raise ScimError.invalid_syntax("The request body must be a JSON object")
    _check_schemas(payload, resource)
    collector = _Collector(resource, current_id)
    for key, value in payload.items():
        if not isinstance(key, str):
            raise ScimError.invalid_syntax("Attribute names must be strings")
        if key.lower() == SCHEMAS_KEY:
            continue
        collector.add_key(key, value)
    document = finish_document(_build_document(collector, resource), resource)
    if current_document is not None:
        check_immutable(current_document, document, resource)
    external_id = document.get("externalId")
    return NormalizedResource(
        document=document,
        password=collector.password,
        external_id=external_id if isinstance(external_id, str) else None,
        schemas=list(document[SCHEMAS_KEY]),
    )
