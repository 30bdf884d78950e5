"""The value index: every attribute value of a stored document as one row each.

Filters (store/filter_sql.py) never read JSON documents: they look values up in
`scim_attribute_values`, which this module fills. Each value is kept in the forms a
comparison needs, prepared here once, in Python, so that both databases compare the
same strings whatever their collations, `lower()` or LIKE rules are:

* `value_exact`: the value as the IdP sent it (NFC-normalised), for caseExact
  attributes;
* `value_folded`: the same lowercased, for the others (and for sorting them);
* `value_number`: integers and decimals as a float, so they compare as numbers.

Strings are NFC-normalised and lowercased exactly as scim2-models' default comparison
key does, so a filter evaluated here and `ScimFilter.match` agree.

Rows carry the lowercase canonical path (`emails.value`,
`urn:...:enterprise:2.0:user:manager.value`) and an `item` number: 0 for singular
attributes, the position in the list for multi-valued ones. Each element of a
multi-valued complex attribute also gets a marker row (path `emails`, no value) so a
value filter such as `emails[type eq "work" and value co "@x"]` can require all its
terms to hold for one and the same element.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gogs_scim.scim.schema import (
    AttributeDef,
    ResolvedAttribute,
    ResourceSchema,
    SchemaDef,
)

# The columns are String(1024). Longer values (x509 certificates, long descriptions)
# are indexed by their first MAX_INDEXED_CHARS characters, so a filter on them
# compares that prefix only: `eq` on two values sharing their first 1024 characters
# cannot tell them apart, and `co`/`ew` cannot see past the prefix.
MAX_INDEXED_CHARS = 1024

# xsd:dateTime (RFC 7643 §2.3.5): a date *and* a time, zone optional. Filters are
# typed by hand, so a space for the `T`, no seconds or `+0100` are tolerated too.
_DATETIME_RE = re.compile(
    r"-?\d{4,}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})?"
)

# Attribute types whose values are compared as text.
TEXT_TYPES = frozenset({"string", "reference", "binary"})
NUMBER_TYPES = frozenset({"integer", "decimal"})


@dataclass(frozen=True)
class IndexedValue:
    """One row of `scim_attribute_values`, without the resource it belongs to."""

    path: str
    item: int
    value_exact: str | None
    value_folded: str | None
    value_number: float | None


# -- value forms shared with the filter compiler -----------------------------------------


def exact_text(text: str) -> str:
    """A string as caseExact comparisons see it: NFC, so é and e+◌́ are one value."""
    return unicodedata.normalize("NFC", text)


def fold_text(text: str) -> str:
    """A string as case-insensitive comparisons see it (scim2-models' comparison key).

    Lowercasing does not preserve NFC, hence normalising on both sides of it.
    """
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", text).lower())


def truncate(text: str) -> str:
    """The indexed prefix of a string (see MAX_INDEXED_CHARS)."""
    return text[:MAX_INDEXED_CHARS]


def parse_datetime(text: str) -> datetime | None:
    """An xsd:dateTime as an aware UTC datetime; None when it is not one.

    A value without a zone is taken as UTC: the RFC leaves it open, and UTC is what
    every timestamp the service itself writes uses.
    """
    text = text.strip()
    if not _DATETIME_RE.fullmatch(text):
        return None
    if text[-1] in "Zz":
        text = text[:-1] + "+00:00"  # fromisoformat takes `Z` but not `z`
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def datetime_key(moment: datetime) -> str:
    """`YYYY-MM-DDTHH:MM:SS.ffffffZ` in UTC: fixed width, so text order is time order."""
    utc = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    # Formatted by hand: strftime does not zero-pad years below 1000 on every platform.
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T"
        f"{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}.{utc.microsecond:06d}Z"
    )


def number_text(number: float) -> str:
    """The text form of a number, so `value_exact` is filled for every value."""
    if isinstance(number, int) or number.is_integer():
        return str(int(number))
    return repr(float(number))


def index_forms(attribute: AttributeDef, value: Any) -> IndexedValue | None:
    """The (path-less) index row of one simple value; None if it cannot be indexed.

    Stored documents are canonical (document.py coerced every value to its type), so
    None only guards against a legacy document: an unindexable value is left out of
    the index rather than failing the write that carries it.
    """
    kind = attribute.type
    if kind == "boolean":
        if not isinstance(value, bool):
            return None
        text = "true" if value else "false"
        return IndexedValue("", 0, text, text, None)
    if kind in NUMBER_TYPES:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        if not math.isfinite(value):
            return None
        text = number_text(value)
        return IndexedValue("", 0, text, text, float(value))
    if not isinstance(value, str):
        return None
    if kind == "dateTime":
        moment = parse_datetime(value)
        if moment is None:
            return None
        key = datetime_key(moment)
        return IndexedValue("", 0, key, key, None)
    return IndexedValue("", 0, truncate(exact_text(value)), truncate(fold_text(value)), None)


# -- what is indexed ---------------------------------------------------------------------


def is_indexed(schema: SchemaDef, attribute: AttributeDef, resource: ResourceSchema) -> bool:
    """Whether the index holds `attribute`'s values; filters read the others elsewhere.

    Left out: `returned: never` attributes (password: never stored, never
    filterable), and readOnly top-level attributes, which are the service's own data
    (id, meta, User.groups, the Gogs extension) kept in columns or relations, never in
    the IdP's document. Group `members` is relational (scim_group_members), so that a
    20,000-member group is not 20,000 index rows rewritten on every change.
    """
    if attribute.returned == "never" or attribute.mutability == "readOnly":
        return False
    is_group_members = schema.urn == resource.core.urn and attribute.name == "members"
    return not (is_group_members and resource.name == "Group")


def index_path(schema: SchemaDef, attribute: AttributeDef, sub: AttributeDef | None = None) -> str:
    """The `path` column for an attribute: its canonical path, lowercased."""
    return ResolvedAttribute(schema, attribute, sub).canonical_path.lower()


def _container(
    document: dict[str, Any], schema: SchemaDef, resource: ResourceSchema
) -> dict[str, Any] | None:
    # Core and common attributes sit at the top of a document, extension attributes
    # under their schema URN.
    if schema.urn in ("", resource.core.urn):
        return document
    nested = document.get(schema.urn)
    return nested if isinstance(nested, dict) else None


def _simple_rows(
    path: str, item: int, attribute: AttributeDef, value: Any
) -> Iterator[IndexedValue]:
    # A sub-attribute holding a list only exists in malformed documents; indexing each
    # element keeps such data findable rather than failing.
    for each in value if isinstance(value, list) else [value]:
        forms = index_forms(attribute, each)
        if forms is not None:
            yield IndexedValue(
                path, item, forms.value_exact, forms.value_folded, forms.value_number
            )


def _complex_rows(
    schema: SchemaDef, attribute: AttributeDef, item: int, value: dict[str, Any]
) -> Iterator[IndexedValue]:
    for sub in attribute.sub_attributes:
        if sub.returned == "never" or sub.name not in value:
            continue
        yield from _simple_rows(index_path(schema, attribute, sub), item, sub, value[sub.name])


def flatten(document: dict[str, Any], resource: ResourceSchema) -> list[IndexedValue]:
    """Every indexed value of a canonical document, as `scim_attribute_values` rows."""
    rows: list[IndexedValue] = []
    for schema, attribute in resource.iter_attributes():
        if not is_indexed(schema, attribute, resource):
            continue
        container = _container(document, schema, resource)
        if container is None or container.get(attribute.name) is None:
            continue
        value = container[attribute.name]
        path = index_path(schema, attribute)
        if attribute.multi_valued:
            items = value if isinstance(value, list) else [value]
            for item, element in enumerate(items):
                if attribute.is_complex:
                    if not isinstance(element, dict):
                        continue
                    # The marker: "element `item` exists", what value filters range over.
                    rows.append(IndexedValue(path, item, None, None, None))
                    rows.extend(_complex_rows(schema, attribute, item, element))
                else:
                    rows.extend(_simple_rows(path, item, attribute, element))
        elif attribute.is_complex:
            if isinstance(value, dict):
                rows.extend(_complex_rows(schema, attribute, 0, value))
        else:
            rows.extend(_simple_rows(path, 0, attribute, value))
    return rows
