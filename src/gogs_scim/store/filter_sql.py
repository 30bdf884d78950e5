"""SCIM filters (RFC 7644 §3.4.2.2) and sortBy (§3.4.2.3) as SQLAlchemy expressions.

A filter is parsed by scim2-models, checked against our attribute catalog, and turned
into one boolean SQL expression over the resource table; every value a client sends
becomes a bound parameter. Where a value is read from:

* real columns for what the store keeps there: `id`, `externalId`, `userName` and
  Group `displayName` (their indexed columns), `active`, `meta.created`,
  `meta.lastModified`, the Gogs extensions' sync state and the Users' Gogs account
  (the Group extension's `teams` come from the mapping rules: not filterable);
* `scim_group_members` for Group `members` and User `groups`;
* the value index `scim_attribute_values` (scim/flatten.py) for everything else.

Semantics, where the RFC leaves room:

* Strings compare case-insensitively unless the attribute is caseExact; both sides
  are prepared in Python (NFC, lowercase) exactly as scim2-models compares, so the
  databases' own case rules never matter. `gt`/`lt` and sorting use code point
  order on both databases (`COLLATE "C"` on PostgreSQL), whatever the locale.
* A term on a multi-valued attribute holds when *some* value satisfies it;
  `ne` is `not eq`: no value equals the operand, so a resource without the
  attribute matches `ne`. `eq null` means absent (for `emails.type`: some email
  has no type, or there is no email), `ne null` is its negation. This is how
  scim2-models' `ScimFilter.match` reads them too.
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

import json
import math
import operator
import re
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
    Boolean,
    ColumnElement,
    FromClause,
    UnaryExpression,
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
    GOGS_GROUP_SCHEMA,
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

_PYTHON_ORDERING = {
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
        return super().asc().nulls_last()

    def desc(self) -> UnaryExpression[Any]:
        return super().desc().nulls_first()


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
    if op in _PYTHON_ORDERING:
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
    if kind == "binary" and op in _PYTHON_ORDERING:
        raise error(f"Operator '{op.value}' cannot compare the binary {label!r}")
    return value


# -- where values come from --------------------------------------------------------------
#
# A term on the index or on memberships is "some row exists". It can be written two
# ways: EXISTS correlated to the resource row (a probe: one index lookup per candidate
# resource), or `id IN (SELECT resource_id ... WHERE value = ?)` (a driver: one index
# range, then primary-key lookups). PostgreSQL's planner turns either into the better
# join by itself, and is given EXISTS (its NOT EXISTS/OR handling is the robust one).
# SQLite runs both literally: EXISTS alone scans every resource, IN materialises its
# whole subquery. So on SQLite the compiler picks, per conjunction, the one term most
# likely to be selective as the driver and probes the rest (see _Compiler.rank).


class _Driven(ColumnElement[bool]):
    """A row-existence test: `drive` (IN form) on SQLite, `probe` (EXISTS) elsewhere."""

    __visit_name__ = "gogs_scim_driven"
    inherit_cache = True
    # Renders as a predicate (IN/EXISTS): SQLite must not get `(...) = 1`, which hides
    # the IN from its planner.
    _is_implicitly_boolean = True
    _traverse_internals = [
        ("probe", InternalTraversal.dp_clauseelement),
        ("drive", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, probe: ColumnElement[bool], drive: ColumnElement[bool]) -> None:
        self.probe = probe
        self.drive = drive
        self.type = Boolean()


@compiles(_Driven)
def _driven_default(element: _Driven, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.probe, **kw)


@compiles(_Driven, "sqlite")
def _driven_sqlite(element: _Driven, compiler: SQLCompiler, **kw: Any) -> str:
    return f"({compiler.process(element.drive, **kw)})"


RowCondition = Callable[[FromClause], ColumnElement[bool]]


class _Source(Protocol):
    """The values of one attribute for the resource (or element) being tested."""

    def match(self, op: CompareOperator, operand: Any, *, drive: bool) -> ColumnElement[bool]:
        """Some value satisfies `op operand` (never `ne`); always true or false."""
        ...

    def present(self, *, drive: bool) -> ColumnElement[bool]:
        """`pr`: some value is neither null nor empty; always true or false."""
        ...

    def is_null(self) -> ColumnElement[bool]:
        """`eq null`: no value, or (multi-valued) some element without one."""
        ...


@dataclass(frozen=True)
class _Scope:
    """What index rows are tied to: the resource (`table.c.id`) at the top, or one
    element of a multi-valued attribute (`element`: a row of it) in a value filter."""

    table: FromClause
    resource_type: str
    element: FromClause | None = None

    def rows_exist(
        self, paths: Sequence[str], condition: RowCondition, *, drive: bool
    ) -> ColumnElement[bool]:
        def on_path(rows: FromClause) -> ColumnElement[bool]:
            if len(paths) == 1:
                return rows.c.path == paths[0]
            return rows.c.path.in_(paths)

        rows = attribute_values.alias()
        if self.element is not None:
            return exists().where(
                rows.c.resource_type == self.resource_type,
                rows.c.resource_id == self.element.c.resource_id,
                rows.c.item == self.element.c.item,
                on_path(rows),
                condition(rows),
            )
        probe = exists().where(
            rows.c.resource_type == self.resource_type,
            rows.c.resource_id == self.table.c.id,
            on_path(rows),
            condition(rows),
        )
        if not drive:
            return probe
        found = attribute_values.alias()
        owners = select(found.c.resource_id).where(
            found.c.resource_type == self.resource_type, on_path(found), condition(found)
        )
        return _Driven(probe, self.table.c.id.in_(owners))


def _index_condition(attribute: AttributeDef, op: CompareOperator, operand: Any) -> RowCondition:
    """`op operand` on one index row holding a value of `attribute`."""

    def condition(rows: FromClause) -> ColumnElement[bool]:
        if attribute.type == "boolean":
            return rows.c.value_exact == ("true" if operand else "false")
        if attribute.type in NUMBER_TYPES:
            return _number_condition(rows.c.value_number, op, operand)
        if attribute.type == "dateTime":
            return _text_condition(rows.c.value_exact, op, datetime_key(operand), mixed_case=False)
        if attribute.case_exact:
            prepared = truncate(exact_text(operand))
            return _text_condition(rows.c.value_exact, op, prepared, mixed_case=True)
        prepared = truncate(fold_text(operand))
        return _text_condition(rows.c.value_folded, op, prepared, mixed_case=False)

    return condition


def _index_present(rows: FromClause) -> ColumnElement[bool]:
    # Every value row has value_exact (numbers and booleans as text); only marker rows
    # have none, and presence never looks at marker paths.
    return rows.c.value_exact != ""


def _any_row(rows: FromClause) -> ColumnElement[bool]:
    return true()


@dataclass(frozen=True)
class _IndexSource:
    """Values in scim_attribute_values under `paths` (several for `name pr`)."""

    scope: _Scope
    paths: tuple[str, ...]
    attribute: AttributeDef
    # For a sub-attribute of a multi-valued complex attribute (at the top): the marker
    # path of its elements, which `eq null` ranges over.
    marker: str | None = None

    def match(self, op: CompareOperator, operand: Any, *, drive: bool) -> ColumnElement[bool]:
        condition = _index_condition(self.attribute, op, operand)
        return self.scope.rows_exist(self.paths, condition, drive=drive)

    def present(self, *, drive: bool) -> ColumnElement[bool]:
        return self.scope.rows_exist(self.paths, _index_present, drive=drive)

    def is_null(self) -> ColumnElement[bool]:
        absent = not_(self.scope.rows_exist(self.paths, _any_row, drive=False))
        if self.marker is None:
            return absent
        # Like every comparison on a multi-valued attribute, `emails.type eq null`
        # holds when *some* element's type is null (as scim2-models reads it): no
        # element at all, or an element without the sub-attribute.
        scope = self.scope
        element = attribute_values.alias()
        inner = _Scope(scope.table, scope.resource_type, element)
        lacking = exists().where(
            element.c.resource_type == scope.resource_type,
            element.c.resource_id == scope.table.c.id,
            element.c.path == self.marker,
            not_(inner.rows_exist(self.paths, _any_row, drive=False)),
        )
        elements = exists().where(
            element.c.resource_type == scope.resource_type,
            element.c.resource_id == scope.table.c.id,
            element.c.path == self.marker,
        )
        return or_(not_(elements), lacking)


@dataclass(frozen=True)
class _ColumnSource:
    """A value held in one column (or SQL expression) of the row being tested.

    `fold` is how the column was case-folded when written (None: caseExact, compared
    as is). `presence` answers `pr` instead of the column when the column is not the
    document's value (`active`, which defaults to true). `selective` marks indexed
    columns whose `eq` finds a handful of rows.
    """

    column: ColumnElement[Any]
    attribute: AttributeDef
    fold: Callable[[str], str] | None = None
    nullable: bool = True
    presence: _Source | None = None
    selective: bool = False

    def _known(self, condition: ColumnElement[bool]) -> ColumnElement[bool]:
        # SQL's NULL would make `not (externalId eq "x")` unknown, not true, for a
        # resource without externalId: every condition here is two-valued.
        if not self.nullable:
            return condition
        return and_(self.column.is_not(None), condition)

    def match(self, op: CompareOperator, operand: Any, *, drive: bool) -> ColumnElement[bool]:
        kind = self.attribute.type
        if kind == "boolean":
            return self._known(self.column == bool(operand))
        if kind in NUMBER_TYPES:
            return self._known(_number_condition(self.column, op, operand))
        if kind == "dateTime":
            return self._known(_datetime_column_condition(self.column, op, operand))
        prepared = operand if self.fold is None else self.fold(operand)
        return self._known(_text_condition(self.column, op, prepared, mixed_case=self.fold is None))

    def present(self, *, drive: bool) -> ColumnElement[bool]:
        if self.presence is not None:
            return self.presence.present(drive=drive)
        condition: ColumnElement[bool] = self.column.is_not(None)
        if self.attribute.type in TEXT_TYPES:
            condition = and_(condition, self.column != "")
        return condition

    def is_null(self) -> ColumnElement[bool]:
        if self.presence is not None:
            return self.presence.is_null()
        if not self.nullable:
            return false()
        return self.column.is_(None)


@dataclass(frozen=True)
class _ConstantSource:
    """A value every resource of the type has (meta.resourceType): decided in Python."""

    value: str
    attribute: AttributeDef

    def match(self, op: CompareOperator, operand: Any, *, drive: bool) -> ColumnElement[bool]:
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
            result = _PYTHON_ORDERING[op](value, operand)
        return true() if result else false()

    def present(self, *, drive: bool) -> ColumnElement[bool]:
        return true()

    def is_null(self) -> ColumnElement[bool]:
        return false()


@dataclass(frozen=True)
class _Relation:
    """A multi-valued attribute kept as rows of scim_group_members (own aliases).

    `owner` is the membership column naming the resource being tested, `rows` the
    memberships joined to what makes them live, `columns` the filterable
    sub-attributes as (column, fold) on those rows.
    """

    label: str
    owner: ColumnElement[Any]
    rows: FromClause
    live: ColumnElement[bool]
    columns: dict[str, tuple[ColumnElement[Any], Callable[[str], str] | None]]

    def sub_source(self, sub: AttributeDef, error: ErrorFactory) -> _ColumnSource:
        spec = self.columns.get(sub.name)
        if spec is None:
            raise error(f"'{self.label}.{sub.name}' cannot be used in a filter or sortBy")
        column, fold = spec
        return _ColumnSource(column, sub, fold=fold, nullable=_nullable(column))

    def exists(
        self, table: FromClause, condition: ColumnElement[bool], *, drive: bool
    ) -> ColumnElement[bool]:
        base = select(self.owner).select_from(self.rows)
        probe = base.where(self.owner == table.c.id, self.live, condition).exists()
        if not drive:
            return probe
        return _Driven(probe, table.c.id.in_(base.where(self.live, condition)))


def _nullable(column: ColumnElement[Any]) -> bool:
    return bool(getattr(column, "nullable", True))


def _group_members_relation() -> _Relation:
    members, member = group_members.alias(), users.alias()
    return _Relation(
        "members",
        owner=members.c.group_id,
        rows=members.join(member, member.c.id == members.c.user_id),
        # A soft-deleted user no longer exists for SCIM, so it is no member either.
        live=member.c.deleted_at.is_(None),
        columns={"value": (members.c.user_id, None)},
    )


def _user_groups_relation() -> _Relation:
    memberships, group = group_members.alias(), groups.alias()
    return _Relation(
        "groups",
        owner=memberships.c.user_id,
        rows=memberships.join(group, group.c.id == memberships.c.group_id),
        live=group.c.deleted_at.is_(None),
        columns={
            "value": (memberships.c.group_id, None),
            "display": (group.c.display_name_folded, fold_text),
        },
    )


@dataclass(frozen=True)
class _RelationSource:
    """A sub-attribute of a relation (`members.value`), or the relation itself (`pr`)."""

    table: FromClause
    relation: _Relation
    column: _ColumnSource | None

    def match(self, op: CompareOperator, operand: Any, *, drive: bool) -> ColumnElement[bool]:
        assert self.column is not None, "comparisons resolve to a sub-attribute"
        condition = self.column.match(op, operand, drive=False)
        return self.relation.exists(self.table, condition, drive=drive)

    def present(self, *, drive: bool) -> ColumnElement[bool]:
        condition = true() if self.column is None else self.column.present(drive=False)
        return self.relation.exists(self.table, condition, drive=drive)

    def is_null(self) -> ColumnElement[bool]:
        # Membership rows always name a user and a group: null means no membership.
        return not_(self.relation.exists(self.table, true(), drive=False))


# -- resolving attribute paths -----------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    """What an attribute path designates, for a given table."""

    label: str
    resolved: ResolvedAttribute
    attribute: AttributeDef  # the compared (sub-)attribute
    source: _Source
    relation: _Relation | None = None  # set for `members`/`groups` themselves
    marker: str | None = None  # the element marker path of a multi-valued complex


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
                example = attribute.sub_attributes[0].name if attribute.sub_attributes else "x"
                raise self.error(
                    f"{label!r} is complex: name one of its sub-attributes, "
                    f"e.g. '{label}.{example}'"
                )
            # RFC 7644 §3.4.2.2: `emails co "x"` compares emails.value.
            resolved = ResolvedAttribute(resolved.schema, attribute, value)
            sub, label = value, resolved.canonical_path
        target = sub or attribute

        column = self._column(resolved, target)
        if column is not None:
            return _Target(label, resolved, target, column)
        relation = self._relation(resolved)
        if relation is not None:
            if sub is None:
                source = _RelationSource(self.table, relation, None)
                return _Target(label, resolved, target, source, relation=relation)
            column_source = relation.sub_source(sub, self.error)
            source = _RelationSource(self.table, relation, column_source)
            return _Target(label, resolved, target, source)
        if not is_indexed(resolved.schema, attribute, self.resource):
            raise self.error(f"{label!r} cannot be used in a filter or sortBy")
        if sub is not None:
            path = index_path(resolved.schema, attribute, sub)
            marker = index_path(resolved.schema, attribute) if attribute.multi_valued else None
            values = _IndexSource(self.scope, (path,), sub, marker)
            return _Target(label, resolved, target, values)
        if attribute.is_complex:
            paths = tuple(
                index_path(resolved.schema, attribute, each)
                for each in attribute.sub_attributes
                if each.returned != "never"
            )
            marker = index_path(resolved.schema, attribute) if attribute.multi_valued else None
            whole = _IndexSource(self.scope, paths, attribute)
            return _Target(label, resolved, target, whole, marker=marker)
        path = index_path(resolved.schema, attribute)
        return _Target(label, resolved, target, _IndexSource(self.scope, (path,), attribute))

    def _column(self, resolved: ResolvedAttribute, target: AttributeDef) -> _Source | None:
        """The column holding this attribute, for attributes the store keeps in one."""
        table, schema = self.table, resolved.schema
        name = resolved.attribute.name
        sub = resolved.sub_attribute.name if resolved.sub_attribute else None
        is_user = self.resource.name == "User"
        if schema is COMMON_SCHEMA:
            if name == "id":
                return _ColumnSource(table.c.id, target, nullable=False, selective=True)
            if name == "externalId":
                return _ColumnSource(table.c.external_id, target, selective=True)
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
                return _ColumnSource(
                    table.c.user_name_folded, target, fold=fold_text, selective=True
                )
            if not is_user and name == "displayName":
                return _ColumnSource(
                    table.c.display_name_folded,
                    target,
                    fold=fold_text,
                    nullable=False,
                    selective=True,
                )
            if is_user and name == "active":
                presence = _IndexSource(self.scope, ("active",), target)
                return _ColumnSource(table.c.active, target, nullable=False, presence=presence)
        if is_user and schema.urn == GOGS_USER_SCHEMA:
            return self._gogs_column(name, target)
        if not is_user and schema.urn == GOGS_GROUP_SCHEMA and name != "teams":
            # `teams` comes from the mapping rules, not the store: not filterable.
            return self._sync_column(name, target)
        return None

    def _gogs_column(self, name: str, target: AttributeDef) -> _Source:
        # The Gogs extension is the service's own data, rendered from these columns.
        c = self.table.c
        if name == "login":
            return _ColumnSource(c.gogs_login_folded, target, fold=fold_text, selective=True)
        if name == "userId":
            return _ColumnSource(c.gogs_user_id, target)
        if name == "adopted":
            return _ColumnSource(c.gogs_adopted, target, nullable=False)
        return self._sync_column(name, target)

    def _sync_column(self, name: str, target: AttributeDef) -> _Source:
        """syncState and syncError, kept in columns of both users and groups."""
        c = self.table.c
        if name == "syncState":
            return _ColumnSource(func.lower(c.sync_state), target, fold=fold_text, nullable=False)
        # syncError: lower() in SQL folds only ASCII on SQLite; good enough for the
        # bridge's own (English) error messages.
        return _ColumnSource(func.lower(c.sync_error), target, fold=fold_text)

    def _relation(self, resolved: ResolvedAttribute) -> _Relation | None:
        if resolved.schema.urn != self.resource.core.urn:
            return None
        name = resolved.attribute.name
        if self.resource.name == "Group" and name == "members":
            return _group_members_relation()
        if self.resource.name == "User" and name == "groups":
            return _user_groups_relation()
        return None


# -- compiling a filter ------------------------------------------------------------------

# Driver ranks (higher: more likely selective). A selective column equality needs no
# index driver at all: its index finds the candidate rows, the other terms probe them.
_RANK_COLUMN = 100
_RANK_EQ_DISTINCT = 3  # eq on an attribute with free-form values (emails.value)
_RANK_EQ_FEW = 2  # eq on a boolean or an attribute with canonical values (emails.type)
_RANK_OTHER = 1  # co/sw/ew/gt/.../pr: better than scanning every resource
_RANK_MARKERS = 0  # a value filter with no positive term: scans the elements


def _leaf_rank(attribute: AttributeDef, op: CompareOperator, value: Any) -> int | None:
    if op == CompareOperator.ne or value is None:
        return None  # true for most resources: nothing to start from
    if op == CompareOperator.eq:
        few = attribute.type == "boolean" or bool(attribute.canonical_values)
        return _RANK_EQ_FEW if few else _RANK_EQ_DISTINCT
    return _RANK_OTHER


def _term(
    source: _Source,
    attribute: AttributeDef,
    node: Comparison,
    label: str,
    error: ErrorFactory,
    *,
    drive: bool,
) -> ColumnElement[bool]:
    op, value = node.op, node.value
    if value is None:
        # `eq null`: absent; `ne null`: present. Nothing else compares with null.
        if op == CompareOperator.eq:
            return source.is_null()
        if op == CompareOperator.ne:
            return not_(source.is_null())
        raise error(f"Operator '{op.value}' cannot compare {label!r} with null")
    operand = _coerce_operand(attribute, op, value, label, error)
    if op == CompareOperator.ne:
        return not_(source.match(CompareOperator.eq, operand, drive=False))
    return source.match(op, operand, drive=drive)


class _Compiler:
    """Turns a filter tree into SQL; `drive` marks terms that may drive (see _Driven)."""

    def __init__(self, resolver: _Resolver) -> None:
        self.resolver = resolver
        self.error = resolver.error

    def condition(self, node: FilterNode, *, drive: bool) -> ColumnElement[bool]:
        if isinstance(node, Comparison):
            target = self.resolver.resolve(node.attr_path, comparing=True)
            return _term(
                target.source, target.attribute, node, target.label, self.error, drive=drive
            )
        if isinstance(node, Present):
            target = self.resolver.resolve(node.attr_path, comparing=False)
            return target.source.present(drive=drive)
        if isinstance(node, Not):
            return not_(self.condition(node.expr, drive=False))
        if isinstance(node, LogicalExpr):
            if node.op == LogicalOperator.or_:
                return or_(*(self.condition(term, drive=drive) for term in node.terms))
            driver = self._driver(node.terms) if drive else None
            return and_(*(self.condition(term, drive=term is driver) for term in node.terms))
        if isinstance(node, ValuePath):
            return self.value_path(node, drive=drive)
        raise self.error(f"Unsupported filter expression {type(node).__name__}")

    def _driver(self, terms: Sequence[FilterNode]) -> FilterNode | None:
        """The conjunct to drive the query from: the best ranked (first on ties)."""
        best: tuple[int, FilterNode] | None = None
        for term in terms:
            rank = self.rank(term)
            if rank is not None and (best is None or rank > best[0]):
                best = (rank, term)
        return None if best is None else best[1]

    def rank(self, node: FilterNode) -> int | None:
        """How selective a term likely is as a driver; None if it cannot drive."""
        if isinstance(node, Comparison):
            target = self.resolver.resolve(node.attr_path, comparing=True)
            source = target.source
            if isinstance(source, _ColumnSource):
                selective = source.selective and node.op == CompareOperator.eq
                return _RANK_COLUMN if selective and node.value is not None else None
            if isinstance(source, _ConstantSource):
                return None
            return _leaf_rank(target.attribute, node.op, node.value)
        if isinstance(node, Present):
            target = self.resolver.resolve(node.attr_path, comparing=False)
            if isinstance(target.source, _IndexSource | _RelationSource):
                return _RANK_OTHER
            return None
        if isinstance(node, ValuePath):
            anchor = self._anchor(node.val_filter, self._value_path_target(node))
            return _RANK_MARKERS if anchor is None else anchor[0]
        if isinstance(node, LogicalExpr):
            ranks = [self.rank(term) for term in node.terms]
            if node.op == LogicalOperator.and_:
                known = [rank for rank in ranks if rank is not None]
                return max(known) if known else None
            return None if None in ranks else min(r for r in ranks if r is not None)
        return None  # not: true for most resources

    # -- value filters: attr[...] -------------------------------------------------------

    def _value_path_target(self, node: ValuePath) -> _Target:
        if node.sub_attr is not None:
            raise self.error("A value filter cannot be followed by a sub-attribute here")
        target = self.resolver.resolve(node.attr_path, comparing=False)
        attribute = target.attribute
        if not (attribute.is_complex and attribute.multi_valued):
            raise self.error(
                f"{target.label!r} is not a multi-valued complex attribute: "
                "value filters (attr[...]) apply to those only"
            )
        return target

    def _anchor(
        self, val_filter: FilterNode, target: _Target
    ) -> tuple[int, AttributeDef, Comparison | Present] | None:
        """The best positive term among the value filter's conjuncts, if any."""
        terms = (
            val_filter.terms
            if isinstance(val_filter, LogicalExpr) and val_filter.op == LogicalOperator.and_
            else (val_filter,)
        )
        best: tuple[int, AttributeDef, Comparison | Present] | None = None
        for term in terms:
            if not isinstance(term, Comparison | Present):
                continue
            sub = _element_sub(target, term.attr_path, self.error)
            if isinstance(term, Present):
                rank: int | None = _RANK_OTHER
            else:
                rank = _leaf_rank(sub, term.op, term.value)
            if rank is not None and (best is None or rank > best[0]):
                best = (rank, sub, term)
        return best

    def value_path(self, node: ValuePath, *, drive: bool) -> ColumnElement[bool]:
        target = self._value_path_target(node)
        table, resource_type = self.resolver.table, self.resolver.resource_type
        if target.relation is not None:
            relation = target.relation
            inner = _ElementCompiler(
                self.resolver, target, lambda sub: relation.sub_source(sub, self.error)
            ).condition(node.val_filter, drive=False)
            return relation.exists(table, inner, drive=drive)

        def inner_on(element: FromClause) -> ColumnElement[bool]:
            scope = _Scope(table, resource_type, element)
            schema, parent = target.resolved.schema, target.attribute

            def sub_source(sub: AttributeDef) -> _Source:
                return _IndexSource(scope, (index_path(schema, parent, sub),), sub)

            return _ElementCompiler(self.resolver, target, sub_source).condition(
                node.val_filter, drive=False
            )

        # The elements: one marker row each (flatten.py); every inner term must hold
        # for the same element, i.e. rows with the marker's resource_id and item.
        assert target.marker is not None
        element = attribute_values.alias()
        probe = exists().where(
            element.c.resource_type == resource_type,
            element.c.resource_id == table.c.id,
            element.c.path == target.marker,
            inner_on(element),
        )
        if not drive:
            return probe
        # Driving: start from the rows of the best inner term (found by the value
        # index) instead of from every element, then check the whole value filter on
        # each such row's element.
        start = attribute_values.alias()
        anchor = self._anchor(node.val_filter, target)
        condition: ColumnElement[bool]
        if anchor is None:
            path, condition = target.marker, true()
        else:
            _, sub, term = anchor
            path = index_path(target.resolved.schema, target.attribute, sub)
            if isinstance(term, Present):
                condition = _index_present(start)
            else:
                operand = _coerce_operand(sub, term.op, term.value, target.label, self.error)
                condition = _index_condition(sub, term.op, operand)(start)
        owners = select(start.c.resource_id).where(
            start.c.resource_type == resource_type,
            start.c.path == path,
            condition,
            inner_on(start),
        )
        return _Driven(probe, table.c.id.in_(owners))


def _element_sub(target: _Target, attr_path: AttrPath, error: ErrorFactory) -> AttributeDef:
    """The sub-attribute a name inside `attr[...]` designates."""
    sub = target.attribute.sub(attr_path.attr)
    if attr_path.uri is not None or attr_path.sub_attr is not None or sub is None:
        raise error(
            f"{str(attr_path)!r} is not a sub-attribute of {target.label!r}; "
            "inside a value filter name sub-attributes only"
        )
    if sub.returned == "never":
        raise error(f"'{target.label}.{sub.name}' cannot be used in a filter")
    return sub


class _ElementCompiler(_Compiler):
    """The filter inside `attr[...]`: names are sub-attributes of `attr`, and every
    term is tested on one element (index rows of one item, or one membership row)."""

    def __init__(
        self,
        resolver: _Resolver,
        target: _Target,
        sub_source: Callable[[AttributeDef], _Source],
    ) -> None:
        super().__init__(resolver)
        self.target = target
        self.sub_source = sub_source

    def condition(self, node: FilterNode, *, drive: bool) -> ColumnElement[bool]:
        if isinstance(node, Comparison):
            sub = _element_sub(self.target, node.attr_path, self.error)
            label = f"{self.target.label}.{sub.name}"
            return _term(self.sub_source(sub), sub, node, label, self.error, drive=False)
        if isinstance(node, Present):
            sub = _element_sub(self.target, node.attr_path, self.error)
            return self.sub_source(sub).present(drive=False)
        if isinstance(node, ValuePath):
            raise self.error("Value filters cannot be nested")
        return super().condition(node, drive=False)


# -- public API --------------------------------------------------------------------------


def _default_table(resource: ResourceSchema) -> FromClause:
    return groups if resource.name == "Group" else users


# One comparison whose operand is a bare word: `userName eq akadmin`.
_BARE_COMPARISON = re.compile(
    r"\s*(?P<path>[A-Za-z][\w.:$-]*)\s+(?P<op>eq|ne|co|sw|ew|gt|ge|lt|le)\s+"
    r"(?P<word>[^\s\"()\[\]]+)\s*",
    re.IGNORECASE,
)


def quote_bare_operand(text: str) -> str | None:
    """`userName eq akadmin` as `userName eq "akadmin"`; None for anything else.

    authentik up to 2025.8.1 looks an existing user up after a 409 with the value
    unquoted (goauthentik/authentik#16455), which RFC 7644's grammar does not allow.
    Refusing it would make adopting that user fail, so a filter that is exactly one
    comparison with a bare word is read as that word quoted. Nothing else is guessed:
    `true`, `false`, `null` and numbers already parse, and a bare operand in a longer
    filter is still refused.
    """
    found = _BARE_COMPARISON.fullmatch(text)
    if found is None:
        return None
    return f"{found['path']} {found['op']} {json.dumps(found['word'])}"


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
        quoted = quote_bare_operand(text)
        if quoted is None:
            raise ScimError.invalid_filter(f"Invalid filter: {exc.detail}") from None
        try:
            ast = ScimFilter(quoted).ast
        except SCIMException:
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
    return _Compiler(resolver).condition(ast, drive=True)


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
        return SortKey(_index_sort_value(source, target.resolved, table, resource_type))
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
