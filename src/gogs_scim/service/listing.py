"""A list query (filter, sort, window) turned into what the store pages with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Table

from gogs_scim.scim.schema import ResourceSchema
from gogs_scim.store.filter_sql import filter_clause, parse_filter, sort_expression


@dataclass(frozen=True)
class ListQuery:
    filter: str | None = None
    sort_by: str | None = None
    descending: bool = False
    start_index: int = 1
    count: int = 100


@dataclass(frozen=True)
class PageRequest:
    where: ColumnElement[bool] | None
    order_by: ColumnElement[Any] | None
    descending: bool
    start_index: int
    offset: int
    limit: int


def page_request(
    query: ListQuery, resource: ResourceSchema, table: Table, max_results: int
) -> PageRequest:
    """Parse the filter and sort key against `resource`; clamp the window (1-based
    `startIndex`, `count` at most `max_results`, RFC 7644 §3.4.2.4)."""
    where = None
    if query.filter:
        ast = parse_filter(query.filter, resource)
        where = filter_clause(ast, resource, table, resource.name)
    order_by = (
        sort_expression(query.sort_by, resource, table, resource.name) if query.sort_by else None
    )
    start = max(query.start_index, 1)
    return PageRequest(
        where=where,
        order_by=order_by,
        descending=query.descending,
        start_index=start,
        offset=start - 1,
        limit=min(max(query.count, 0), max_results),
    )
