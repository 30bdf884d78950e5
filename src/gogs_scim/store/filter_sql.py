"""SCIM filters (RFC 7644 §3.4.2.2) and sortBy (§3.4.2.3) as SQLAlchemy expressions.

A filter is parsed by scim2-models, checked against our attribute catalog, and turned
into one boolean SQL expression over the resource table; every value a client sends
becomes a bound parameter. Where a value is read from:

* real columns for what the store keeps there: `id`, `externalId`, `userName` and
  Group `displayName` (their indexed columns), `active`, `meta.created`,
  `meta.lastModified`, the Gogs extension of Users;
* `scim_group_members` for Group `members` and User `groups`;
* the value index `scim_attribute_values` (scim/flatten.py) for everything else.

Semantics, where the RFC leaves room:

* Strings compare case-insensitively unless the attribute is caseExact; both sides
  are prepared in Python (NFC, lowercase) exactly as scim2-models compares, so the
  databases' own case rules never matter. `gt`/`lt` and sorting use code point
  order on both databases (`COLLATE "C"` on PostgreSQL), whatever the locale.
* A term on a multi-valued attribute holds when *some* value satisfies it;
  `ne` is `not eq`: no value equals the operand, so a resource without the
  attribute matches `ne`. `eq null` means absent, `ne null` present.
* `pr` holds for a value that is neither null nor an empty string (false and 0 are
  present); for a complex attribute, when one of its sub-attributes is.
* `emails co "x"` compares `emails.value` (RFC 7644 §3.4.2.2).
* dateTime operands are parsed (400 if they are not one). `meta.created` and
  `meta.lastModified` compare at the millisecond precision they are rendered with
  (scim/users.py), so `meta.lastModified eq` the value a client read back matches.
* `active eq true` uses the column, where a user created without `active` is
  active (that is how the service treats it); `active pr` reads the document.
* Values longer than flatten.MAX_INDEXED_CHARS characters compare by that prefix.
* Group `members` and User `groups` only count live (not deleted) users and groups.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from scim2_models import ScimFilter
from scim2_models.exceptions import SCIMException
from scim2_models.path import (
    AttrPath,
    CompareOperator,
    Comparison,
    FilterNode,
    LogicalExpr,
    LogicalOperator,
    Not,
    Present,
    ValuePath,
)
from sqlalchemy import (
    ColumnElement,
    FromClause,
    Select,
    and_,
    exists,
    false,
    func,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import UnaryExpression
from sqlalchemy.sql.visitors import InternalTraversal

from gogs_scim.scim.errors import ScimError
from gogs_scim.scim.flatten import (
    NUMBER_TYPES,
    TEXT_TYPES,
    datetime_key,
    exact_text,
    fold_text,
    index_path,
    is_indexed,
    parse_datetime,
    truncate,
)
from gogs_scim.scim.schema import (
    COMMON_SCHEMA,
    GOGS_USER_SCHEMA,
    AttributeDef,
    ResolvedAttribute,
    ResourceSchema,
)
from gogs_scim.store.tables import attribute_values, group_members, groups, users

# Longer filters are refused before parsing: no IdP sends one, and parsing and
# compiling cost grows with the text.
MAX_FILTER_LENGTH = 4096

# The LIKE escape character. Not a backslash: PostgreSQL and SQLite disagree on
# whether backslash is an escape by default, and an explicit `/` reads the same to both.
LIKE_ESCAPE = "/"

# meta.created/lastModified are rendered with milliseconds (scim/users.py), so they
# compare at that precision: the value a client reads back must `eq` the stored one.
RENDERED_PRECISION = timedelta(milliseconds=1)

_ORDERING = {
    CompareOperator.gt: operator.gt,
    CompareOperator.ge: operator.ge,
    CompareOperator.lt: operator.lt,
    CompareOperator.le: operator.le,
}
_SUBSTRING = frozenset({CompareOperator.co, CompareOperator.sw, CompareOperator.ew})

ErrorFactory = Callable[[str], ScimError]


# -- SQL constructs ------------------------------------------------------------------------


class _CodePointOrder(ColumnElement[Any]):
    """An expression compared (or sorted) in Unicode code point order on every engine.

    SQLite's default BINARY collation already compares UTF-8 bytes, i.e. code points;
    PostgreSQL uses the database locale unless told `COLLATE "C"`. Python, and so
    scim2-models, compare code points: this keeps `gt`/`lt` and sortBy identical
    everywhere. Equality needs no wrapper (deterministic collations are byte-exact)
    and keeps the indexes usable.
    """

    __visit_name__ = "gogs_scim_code_point_order"
    inherit_cache = True
    _traverse_internals = [("element", InternalTraversal.dp_clauseelement)]

    def __init__(self, element: ColumnElement[Any]) -> None:
        self.element = element
        self.type = element.type


@compiles(_CodePointOrder)
def _code_point_order_default(element: _CodePointOrder, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.element, **kw)


@compiles(_CodePointOrder, "postgresql")
def _code_point_order_postgresql(element: _CodePointOrder, compiler: SQLCompiler, **kw: Any) -> str:
    return f'({compiler.process(element.element, **kw)}) COLLATE "C"'


class SortKey(ColumnElement[Any]):
    """A sortBy expression whose missing values sort last ascending, first descending.

    RFC 7644 §3.4.2.3 wants resources without a value "ordered last if ascending and
    first if descending". PostgreSQL does that by default, SQLite the opposite; the
    caller just calls `.asc()` or `.desc()`, so those add the explicit NULLS clause.
    """

    __visit_name__ = "gogs_scim_sort_key"
    inherit_cache = True
    _traverse_internals = [("element", InternalTraversal.dp_clauseelement)]

    def __init__(self, element: ColumnElement[Any]) -> None:
        self.element = element
        self.type = element.type

    def asc(self) -> UnaryExpression[Any]:
        return UnaryExpression._create_asc(self).nulls_last()

    def desc(self) -> UnaryExpression[Any]:
        return UnaryExpression._create_desc(self).nulls_first()


@compiles(SortKey)
def _sort_key(element: SortKey, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.element, **kw)


# -- comparing prepared values -----------------------------------------------------------


def _escape_like(text: str) -> str:
    return (
        text.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2)
        .replace("%", LIKE_ESCAPE + "%")
        .replace("_", LIKE_ESCAPE + "_")
    )


def _ordered(column: ColumnElement[Any], op: CompareOperator, operand: Any) -> ColumnElement[bool]:
    result: ColumnElement[bool]
    if op == CompareOperator.gt:
        result = column > operand
    elif op == CompareOperator.ge:
        result = column >= operand
    elif op == CompareOperator.lt:
        result = column < operand
    else:
        result = column <= operand
    return result


def _text_condition(
    column: ColumnElement[Any], op: CompareOperator, operand: str, *, mixed_case: bool
) -> ColumnElement[bool]:
    """`column op operand` for text the caller already put in comparable form.

    `mixed_case` says the column may hold upper case (caseExact values): SQLite's LIKE
    ignores ASCII case, so there a LIKE only narrows the rows and a case-sensitive
    check decides. Lowercased columns compared with a lowercased operand need none.
    """
    if op == CompareOperator.eq:
        return column == operand
    if op in _ORDERING:
        return _ordered(_CodePointOrder(column), op, operand)
    if operand == "":
        return column.is_not(None)  # every string contains, starts and ends with ""
    escaped = _escape_like(operand)
    pattern = {
        CompareOperator.co: f"%{escaped}%",
        CompareOperator.sw: f"{escaped}%",
        CompareOperator.ew: f"%{escaped}",
    }[op]
    like = column.like(pattern, escape=LIKE_ESCAPE)
    if not mixed_case:
        return like
    size = len(operand)  # substr/length count characters on both engines, as len() does
    if op == CompareOperator.sw:
        exact = func.substr(column, 1, size) == operand
    elif op == CompareOperator.ew:
        length = func.length(column)
        exact = and_(length >= size, func.substr(column, length - size + 1) == operand)
    else:
        # replace() is case-sensitive on both engines and exists on both (unlike
        # instr/strpos): the value changes iff the operand occurs in it.
        exact = func.replace(column, operand, "") != column
    return and_(like, exact)


def _number_condition(
    column: ColumnElement[Any], op: CompareOperator, operand: float
) -> ColumnElement[bool]:
    if op == CompareOperator.eq:
        return column == operand
    return _ordered(column, op, operand)


def _datetime_column_condition(
    column: ColumnElement[Any], op: CompareOperator, moment: datetime
) -> ColumnElement[bool]:
    """Compare a DateTime column as clients see it: truncated to RENDERED_PRECISION.

    With T the stored time truncated to whole milliseconds: T >= x iff stored >=
    ceil(x); T > x iff stored >= floor(x) + 1 ms; the others are their negations.
    """
    floor = moment - timedelta(microseconds=moment.microsecond % 1000)
    ceiling = floor if floor == moment else floor + RENDERED_PRECISION
    after_floor = floor + RENDERED_PRECISION
    if op == CompareOperator.eq:
        if floor != moment:
            return false()  # no rendered value has sub-millisecond digits
        return and_(column >= floor, column < after_floor)
    if op == CompareOperator.gt:
        return column >= after_floor
    if op == CompareOperator.ge:
        return column >= ceiling
    if op == CompareOperator.lt:
        return column < ceiling
    return column < after_floor


# -- operands ----------------------------------------------------------------------------


def _coerce_operand(
    attribute: AttributeDef, op: CompareOperator, value: Any, label: str, error: ErrorFactory
) -> Any:
    """Check that `op` fits the attribute's type; the operand as that type.

    Booleans are bool, numbers float, dateTimes aware UTC datetimes, the rest str.
    Values are never echoed in errors: the detail goes back to the client and logs.
    """
    kind = attribute.type
    if op in _SUBSTRING and kind not in ("string", "reference"):
        raise error(f"Operator '{op.value}' needs a string attribute; {label!r} is {kind}")
    if kind == "boolean":
        if op not in (CompareOperator.eq, CompareOperator.ne):
            raise error(f"Operator '{op.value}' cannot compare the boolean {label!r}")
        if isinstance(value, bool):
            return value
        # Lenient like scim2-models: some IdPs quote booleans.
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise error(f"{label!r} must be compared with true or false")
    if kind in NUMBER_TYPES:
        number: float | None = None
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                number = None
        if number is None or not math.isfinite(number):
            raise error(f"{label!r} must be compared with a number")
        return number
    if not isinstance(value, str):
        raise error(f"{label!r} must be compared with a string")
    if kind == "dateTime":
        moment = parse_datetime(value)
        if moment is None:
            raise error(f"{label!r} must be compared with an ISO 8601 dateTime")
        return moment
    if kind == "binary" and op in _ORDERING:
        raise error(f"Operator '{op.value}' cannot compare the binary {label!r}")
    return value


# -- where values come from --------------------------------------------------------------


class _Source(Protocol):
    """The values of one attribute for the resource (or element) being tested."""

    def match(self, op: CompareOperator, operand: Any) -> ColumnElement[bool]:
        """Some value satisfies `op operand` (never `ne`); always true or false."""
        ...

    def present(self, *, non_empty: bool) -> ColumnElement[bool]:
        """Some value exists (a non-empty one if `non_empty`); always true or false."""
        ...


@dataclass(frozen=True)
class _Scope:
    """How an index lookup is tied to what is being tested.

    At the top, rows of the resource (`table.c.id`); inside a value filter, rows of
    one element of a multi-valued attribute (`element`, a marker row).
    """

    table: FromClause
    resource_type: str
    element: FromClause | None = None

    def rows_exist(
        self, paths: Sequence[str], condition: Callable[[FromClause], ColumnElement[bool]]
    ) -> ColumnElement[bool]:
        rows = attribute_values.alias()
        if self.element is None:
            owner = [rows.c.resource_id == self.table.c.id]
        else:
            owner = [
                rows.c.resource_id == self.element.c.resource_id,
                rows.c.item == self.element.c.item,
            ]
        path = rows.c.path == paths[0] if len(paths) == 1 else rows.c.path.in_(paths)
        return exists().where(
            rows.c.resource_type == self.resource_type, *owner, path, condition(rows)
        )


@dataclass(frozen=True)
class _IndexSource:
    """Values in scim_attribute_values under `paths` (several for `name pr`)."""

    scope: _Scope
    paths: tuple[str, ...]
    attribute: AttributeDef

    def match(self, op: CompareOperator, operand: Any) -> ColumnElement[bool]:
        attribute = self.attribute

        def condition(rows: FromClause) -> ColumnElement[bool]:
            if attribute.type == "boolean":
                return rows.c.value_exact == ("true" if operand else "false")
            if attribute.type in NUMBER_TYPES:
                return _number_condition(rows.c.value_number, op, operand)
            if attribute.type == "dateTime":
                key = datetime_key(operand)
                return _text_condition(rows.c.value_exact, op, key, mixed_case=False)
            if attribute.case_exact:
                prepared = truncate(exact_text(operand))
                return _text_condition(rows.c.value_exact, op, prepared, mixed_case=True)
            prepared = truncate(fold_text(operand))
            return _text_condition(rows.c.value_folded, op, prepared, mixed_case=False)

        return self.scope.rows_exist(self.paths, condition)

    def present(self, *, non_empty: bool) -> ColumnElement[bool]:
        def condition(rows: FromClause) -> ColumnElement[bool]:
            # Every value row has value_exact (numbers and booleans as text); only
            # marker rows have none, and they are not under these paths.
            if non_empty:
                return rows.c.value_exact != ""
            return rows.c.value_exact.is_not(None)

        return self.scope.rows_exist(self.paths, condition)


@dataclass(frozen=True)
class _ColumnSource:
    """A value held in one column (or SQL expression) of the row being tested.

    `fold` is how the column was case-folded when written (None: caseExact, compared
    as is). `presence` answers `pr` instead of the column when the column is not the
    document's value (`active`, which defaults to true).
    """

    column: ColumnElement[Any]
    attribute: AttributeDef
    fold: Callable[[str], str] | None = None
    nullable: bool = True
    presence: _Source | None = None

    def _known(self, condition: ColumnElement[bool]) -> ColumnElement[bool]:
        # SQL's NULL would make `not (externalId eq "x")` unknown, not true, for a
        # resource without externalId: every condition here is two-valued.
        if not self.nullable:
            return condition
        return and_(self.column.is_not(None), condition)

    def match(self, op: CompareOperator, operand: Any) -> ColumnElement[bool]:
        kind = self.attribute.type
        if kind == "boolean":
            return self._known(self.column == bool(operand))
        if kind in NUMBER_TYPES:
            return self._known(_number_condition(self.column, op, operand))
        if kind == "dateTime":
            return self._known(_datetime_column_condition(self.column, op, operand))
        prepared = operand if self.fold is None else self.fold(operand)
        return self._known(_text_condition(self.column, op, prepared, mixed_case=self.fold is None))

    def present(self, *, non_empty: bool) -> ColumnElement[bool]:
        if self.presence is not None:
            return self.presence.present(non_empty=non_empty)
        if not self.nullable and not non_empty:
            return true()
        condition: ColumnElement[bool] = self.column.is_not(None)
        if non_empty and self.attribute.type in TEXT_TYPES:
            condition = and_(condition, self.column != "")
        return condition


@dataclass(frozen=True)
class _ConstantSource:
    """A value every resource of the type has (meta.resourceType): decided in Python."""

    value: str
    attribute: AttributeDef

    def match(self, op: CompareOperator, operand: Any) -> ColumnElement[bool]:
        if self.attribute.case_exact:
            value, operand = exact_text(self.value), exact_text(operand)
        else:
            value, operand = fold_text(self.value), fold_text(operand)
        if op == CompareOperator.eq:
            result = value == operand
        elif op == CompareOperator.co:
            result = operand in value
        elif op == CompareOperator.sw:
            result = value.startswith(operand)
        elif op == CompareOperator.ew:
            result = value.endswith(operand)
        else:
            result = _ORDERING[op](value, operand)
        return true() if result else false()

    def present(self, *, non_empty: bool) -> ColumnElement[bool]:
        return true()


@dataclass(frozen=True)
class _Relation:
    """A multi-valued attribute kept as rows of scim_group_members.

    `rows()` selects the live memberships of the resource being tested; `columns`
    maps the filterable sub-attributes to (column, fold) on those rows.
    """

    label: str
    attribute: AttributeDef
    select_rows: Callable[[FromClause], Select[Any]]
    columns: dict[str, tuple[ColumnElement[Any], Callable[[str], str] | None]]

    def sub_source(self, sub: AttributeDef, error: ErrorFactory) -> _ColumnSource:
        spec = self.columns.get(sub.name)
        if spec is None:
            raise error(f"'{self.label}.{sub.name}' cannot be used in a filter or sortBy")
        column, fold = spec
        return _ColumnSource(column, sub, fold=fold, nullable=True)


@dataclass(frozen=True)
class _RelationSource:
    """One sub-attribute of a relation, as a source for top-level terms."""

    table: FromClause
    relation: _Relation
    column: _ColumnSource | None  # None: the attribute itself (only `pr` reaches it)

    def match(self, op: CompareOperator, operand: Any) -> ColumnElement[bool]:
        assert self.column is not None
        return self.relation.select_rows(self.table).where(self.column.match(op, operand)).exists()

    def present(self, *, non_empty: bool) -> ColumnElement[bool]:
        rows = self.relation.select_rows(self.table)
        if self.column is not None:
            rows = rows.where(self.column.present(non_empty=non_empty))
        return rows.exists()


def _group_members(table: FromClause) -> Select[Any]:
    # Members that are soft-deleted users no longer exist for SCIM.
    return (
        select(group_members.c.user_id)
        .select_from(group_members.join(users, users.c.id == group_members.c.user_id))
        .where(group_members.c.group_id == table.c.id, users.c.deleted_at.is_(None))
    )


def _user_groups(table: FromClause) -> Select[Any]:
    return (
        select(group_members.c.group_id)
        .select_from(group_members.join(groups, groups.c.id == group_members.c.group_id))
        .where(group_members.c.user_id == table.c.id, groups.c.deleted_at.is_(None))
    )


def _lower(text: str) -> str:
    # What the store used when it wrote the *_folded columns (str.lower()).
    return text.lower()


# -- resolving attribute paths -----------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    """What an attribute path designates, for a given table."""

    label: str
    resolved: ResolvedAttribute
    attribute: AttributeDef  # the compared (sub-)attribute
    source: _Source | None = None
    relation: _Relation | None = None  # set for `members`/`groups` themselves
    element_paths: tuple[str, ...] = ()  # index: the marker path of a multi-valued complex


class _Resolver:
    def __init__(
        self,
        resource: ResourceSchema,
        table: FromClause,
        resource_type: str,
        error: ErrorFactory,
    ) -> None:
        self.resource = resource
        self.table = table
        self.resource_type = resource_type
        self.error = error
        self.scope = _Scope(table, resource_type)

    def resolve(self, attr_path: AttrPath, *, comparing: bool) -> _Target:
        resolved = self.resource.resolve(attr_path.attr, attr_path.sub_attr, attr_path.uri)
        if resolved is None:
            raise self.error(f"Unknown attribute {str(attr_path)!r} for {self.resource.name}")
        return self.target(resolved, comparing=comparing)

    def target(self, resolved: ResolvedAttribute, *, comparing: bool) -> _Target:
        attribute, sub = resolved.attribute, resolved.sub_attribute
        label = resolved.canonical_path
        if attribute.returned == "never" or (sub is not None and sub.returned == "never"):
            raise self.error(f"{label!r} cannot be used in a filter or sortBy")
        if comparing and sub is None and attribute.is_complex:
            value = attribute.sub("value")
            if not attribute.multi_valued or value is None:
                raise self.error(
                    f"{label!r} is complex: compare one of its sub-attributes, "
                    f"e.g. '{label}.{attribute.sub_attributes[0].name}'"
                )
            # RFC 7644 §3.4.2.2: `emails co "x"` compares emails.value.
            resolved = ResolvedAttribute(resolved.schema, attribute, value)
            sub, label = value, resolved.canonical_path
        target = sub or attribute

        column = self._column(resolved, target)
        if column is not None:
            return _Target(label, resolved, target, source=column)
        relation = self._relation(resolved)
        if relation is not None:
            if sub is None:
                source = _RelationSource(self.table, relation, None)
                return _Target(label, resolved, target, source=source, relation=relation)
            column_source = relation.sub_source(sub, self.error)
            return _Target(
                label, resolved, target, source=_RelationSource(self.table, relation, column_source)
            )
        if not is_indexed(resolved.schema, attribute, self.resource):
            raise self.error(f"{label!r} cannot be used in a filter or sortBy")
        if sub is not None:
            path = index_path(resolved.schema, attribute, sub)
            return _Target(label, resolved, target, source=_IndexSource(self.scope, (path,), sub))
        if attribute.is_complex:
            paths = tuple(
                index_path(resolved.schema, attribute, each)
                for each in attribute.sub_attributes
                if each.returned != "never"
            )
            marker = (index_path(resolved.schema, attribute),) if attribute.multi_valued else ()
            return _Target(
                label,
                resolved,
                target,
                source=_IndexSource(self.scope, paths, attribute),
                element_paths=marker,
            )
        path = index_path(resolved.schema, attribute)
        return _Target(label, resolved, target, source=_IndexSource(self.scope, (path,), attribute))

    def _column(self, resolved: ResolvedAttribute, target: AttributeDef) -> _Source | None:
        """The column holding this attribute, for attributes the store keeps in one."""
        table, schema = self.table, resolved.schema
        name = resolved.attribute.name
        sub = resolved.sub_attribute.name if resolved.sub_attribute else None
        is_user = self.resource.name == "User"
        if schema is COMMON_SCHEMA:
            if name == "id":
                return _ColumnSource(table.c.id, target, nullable=False)
            if name == "externalId":
                return _ColumnSource(table.c.external_id, target)
            if sub is None:
                return _ConstantSource(self.resource.name, target)  # `meta pr`: always
            if sub == "created":
                return _ColumnSource(table.c.created_at, target, nullable=False)
            if sub == "lastModified":
                return _ColumnSource(table.c.updated_at, target, nullable=False)
            if sub == "resourceType":
                return _ConstantSource(self.resource.name, target)
            # meta.location needs the public base URL, meta.version is rendered from a
            # counter: neither is worth a filter.
            raise self.error(f"'meta.{sub}' cannot be used in a filter or sortBy")
        if schema.urn == self.resource.core.urn and sub is None:
            if is_user and name == "userName":
                return _ColumnSource(table.c.user_name_folded, target, fold=_lower)
            if not is_user and name == "displayName":
                return _ColumnSource(
                    table.c.display_name_folded, target, fold=_lower, nullable=False
                )
            if is_user and name == "active":
                presence = _IndexSource(self.scope, ("active",), target)
                return _ColumnSource(table.c.active, target, nullable=False, presence=presence)
        if is_user and schema.urn == GOGS_USER_SCHEMA:
            return self._gogs_column(name, target)
        return None

    def _gogs_column(self, name: str, target: AttributeDef) -> _Source:
        # The Gogs extension is the service's own data, rendered from these columns.
        c = self.table.c
        if name == "login":
            return _ColumnSource(c.gogs_login_folded, target, fold=_lower)
        if name == "userId":
            return _ColumnSource(c.gogs_user_id, target)
        if name == "adopted":
            return _ColumnSource(c.gogs_adopted, target, nullable=False)
        if name == "syncState":
            return _ColumnSource(func.lower(c.sync_state), target, fold=_lower, nullable=False)
        # syncError: lower() in SQL folds only ASCII on SQLite; good enough for the
        # bridge's own (English) error messages.
        return _ColumnSource(func.lower(c.sync_error), target, fold=_lower)

    def _relation(self, resolved: ResolvedAttribute) -> _Relation | None:
        if resolved.schema.urn != self.resource.core.urn:
            return None
        attribute = resolved.attribute
        if self.resource.name == "Group" and attribute.name == "members":
            return _Relation(
                "members",
                attribute,
                _group_members,
                {"value": (group_members.c.user_id, None)},
            )
        if self.resource.name == "User" and attribute.name == "groups":
            return _Relation(
                "groups",
                attribute,
                _user_groups,
                {
                    "value": (group_members.c.group_id, None),
                    "display": (groups.c.display_name_folded, _lower),
                },
            )
        return None


# -- compiling a filter ------------------------------------------------------------------


def _term(
    source: _Source,
    attribute: AttributeDef,
    op: CompareOperator,
    value: Any,
    label: str,
    error: ErrorFactory,
) -> ColumnElement[bool]:
    if value is None:
        # `eq null`: absent; `ne null`: present. Nothing else compares with null.
        if op == CompareOperator.eq:
            return not_(source.present(non_empty=False))
        if op == CompareOperator.ne:
            return source.present(non_empty=False)
        raise error(f"Operator '{op.value}' cannot compare {label!r} with null")
    operand = _coerce_operand(attribute, op, value, label, error)
    if op == CompareOperator.ne:
        return not_(source.match(CompareOperator.eq, operand))
    return source.match(op, operand)


class _Compiler:
    def __init__(self, resolver: _Resolver) -> None:
        self.resolver = resolver
        self.error = resolver.error

    def condition(self, node: FilterNode) -> ColumnElement[bool]:
        if isinstance(node, Comparison):
            target = self.resolver.resolve(node.attr_path, comparing=True)
            assert target.source is not None
            return _term(
                target.source, target.attribute, node.op, node.value, target.label, self.error
            )
        if isinstance(node, Present):
            target = self.resolver.resolve(node.attr_path, comparing=False)
            assert target.source is not None
            return target.source.present(non_empty=True)
        if isinstance(node, Not):
            return not_(self.condition(node.expr))
        if isinstance(node, LogicalExpr):
            terms = [self.condition(term) for term in node.terms]
            return and_(*terms) if node.op == LogicalOperator.and_ else or_(*terms)
        if isinstance(node, ValuePath):
            return self.value_path(node)
        raise self.error(f"Unsupported filter expression {type(node).__name__}")

    def value_path(self, node: ValuePath) -> ColumnElement[bool]:
        if node.sub_attr is not None:
            raise self.error("A value filter cannot be followed by a sub-attribute here")
        target = self.resolver.resolve(node.attr_path, comparing=False)
        attribute = target.attribute
        if not (attribute.is_complex and attribute.multi_valued):
            raise self.error(
                f"{target.label!r} is not a multi-valued complex attribute: "
                "value filters (attr[...]) apply to those only"
            )
        if target.relation is not None:
            relation = target.relation
            inner = _ElementCompiler(
                self.resolver,
                target.label,
                attribute,
                lambda sub: relation.sub_source(sub, self.error),
            ).condition(node.val_filter)
            return relation.select_rows(self.resolver.table).where(inner).exists()
        element = attribute_values.alias()
        scope = _Scope(self.resolver.table, self.resolver.resource_type, element)
        schema = target.resolved.schema

        def sub_source(sub: AttributeDef) -> _Source:
            return _IndexSource(scope, (index_path(schema, attribute, sub),), sub)

        inner = _ElementCompiler(self.resolver, target.label, attribute, sub_source).condition(
            node.val_filter
        )
        return exists().where(
            element.c.resource_type == self.resolver.resource_type,
            element.c.resource_id == self.resolver.table.c.id,
            element.c.path == target.element_paths[0],
            inner,
        )


class _ElementCompiler(_Compiler):
    """The filter inside `attr[...]`: names are sub-attributes of `attr`."""

    def __init__(
        self,
        resolver: _Resolver,
        label: str,
        parent: AttributeDef,
        sub_source: Callable[[AttributeDef], _Source],
    ) -> None:
        super().__init__(resolver)
        self.label = label
        self.parent = parent
        self.sub_source = sub_source

    def _sub(self, attr_path: AttrPath) -> AttributeDef:
        sub = self.parent.sub(attr_path.attr)
        if attr_path.uri is not None or attr_path.sub_attr is not None or sub is None:
            raise self.error(
                f"{str(attr_path)!r} is not a sub-attribute of {self.label!r}; "
                "inside a value filter name sub-attributes only"
            )
        if sub.returned == "never":
            raise self.error(f"'{self.label}.{sub.name}' cannot be used in a filter")
        return sub

    def condition(self, node: FilterNode) -> ColumnElement[bool]:
        if isinstance(node, Comparison):
            sub = self._sub(node.attr_path)
            label = f"{self.label}.{sub.name}"
            return _term(self.sub_source(sub), sub, node.op, node.value, label, self.error)
        if isinstance(node, Present):
            sub = self._sub(node.attr_path)
            return self.sub_source(sub).present(non_empty=True)
        if isinstance(node, ValuePath):
            raise self.error("Value filters cannot be nested")
        return super().condition(node)


# -- public API --------------------------------------------------------------------------


def _default_table(resource: ResourceSchema) -> FromClause:
    return groups if resource.name == "Group" else users


def parse_filter(text: str, resource: ResourceSchema) -> FilterNode:
    """Parse and check a filter; ScimError 400 invalidFilter if it is not one we take.

    Refused: syntax errors, filters over MAX_FILTER_LENGTH characters, unknown
    attributes, operators that do not fit the attribute's type (`gt` on a boolean,
    `co` on a number or dateTime), comparisons of a complex attribute that has no
    `value`, operands of the wrong type, nested value filters, and attributes that
    cannot be filtered (password, meta.location, meta.version).
    """
    if len(text) > MAX_FILTER_LENGTH:
        raise ScimError.invalid_filter(f"The filter is longer than {MAX_FILTER_LENGTH} characters")
    try:
        ast = ScimFilter(text).ast
    except SCIMException as exc:
        raise ScimError.invalid_filter(f"Invalid filter: {exc.detail}") from None
    # Compiling checks everything the catalog can tell; the result is thrown away.
    filter_clause(ast, resource, _default_table(resource), resource.name)
    return ast


def filter_clause(
    ast: FilterNode, resource: ResourceSchema, table: FromClause, resource_type: str
) -> ColumnElement[bool]:
    """The SQL condition selecting the rows of `table` (a `resource` table) that match.

    `resource_type` is the `scim_attribute_values.resource_type` of those rows.
    Raises ScimError 400 invalidFilter as parse_filter does.
    """
    resolver = _Resolver(resource, table, resource_type, ScimError.invalid_filter)
    return _Compiler(resolver).condition(ast)


def sort_expression(
    sort_by: str, resource: ResourceSchema, table: FromClause, resource_type: str
) -> SortKey:
    """The expression to ORDER BY for `sortBy` (RFC 7644 §3.4.2.3).

    Columns for the attributes the store keeps in one; otherwise the indexed value:
    for a multi-valued attribute the primary element's, else the first element's.
    Strings sort case-insensitively unless caseExact, in code point order; booleans
    false first; resources without a value last ascending, first descending (call
    `.asc()`/`.desc()` on the result). Unknown or unsortable attributes (complex ones
    without `value`, password, members) raise ScimError 400 invalidValue: the RFC
    names no scimType for sortBy, and invalidValue says "this parameter's value".
    """
    error = ScimError.invalid_value
    name = sort_by.strip()
    resolved = resource.resolve_dotted(name) if name else None
    if resolved is None:
        raise error(f"sortBy: unknown attribute {sort_by!r} for {resource.name}")
    resolver = _Resolver(resource, table, resource_type, lambda detail: error(f"sortBy: {detail}"))
    target = resolver.target(resolved, comparing=True)
    source, attribute = target.source, target.attribute
    if isinstance(source, _ColumnSource):
        if attribute.type in TEXT_TYPES:
            return SortKey(_CodePointOrder(source.column))
        return SortKey(source.column)
    if isinstance(source, _IndexSource):
        return SortKey(_index_sort_value(source, resolved, table, resource_type))
    raise error(f"sortBy: {target.label!r} cannot be sorted on")


def _index_sort_value(
    source: _IndexSource, resolved: ResolvedAttribute, table: FromClause, resource_type: str
) -> ColumnElement[Any]:
    attribute = source.attribute
    rows = attribute_values.alias()
    if attribute.type in NUMBER_TYPES:
        value: ColumnElement[Any] = rows.c.value_number
    elif attribute.type in TEXT_TYPES and not attribute.case_exact:
        value = rows.c.value_folded
    else:
        value = rows.c.value_exact  # caseExact text, dateTime keys, "false" < "true"
    query = select(value).where(
        rows.c.resource_type == resource_type,
        rows.c.resource_id == table.c.id,
        rows.c.path == source.paths[0],
    )
    parent = resolved.attribute
    if parent.multi_valued and parent.sub("primary") is not None:
        # RFC 7644 §3.4.2.3: the primary value if any, else the first one.
        flags = attribute_values.alias()
        primary = exists().where(
            flags.c.resource_type == resource_type,
            flags.c.resource_id == rows.c.resource_id,
            flags.c.item == rows.c.item,
            flags.c.path == index_path(resolved.schema, parent, parent.sub("primary")),
            flags.c.value_exact == "true",
        )
        query = query.order_by(primary.desc(), rows.c.item).limit(1)
    else:
        query = query.order_by(rows.c.item).limit(1)
    scalar = query.scalar_subquery()
    if attribute.type in TEXT_TYPES:
        return _CodePointOrder(scalar)
    return scalar
