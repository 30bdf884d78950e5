"""One page of live resources matching a filter, with the exact total (RFC 7644 §3.4.2.4)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, Table, func, select


def live_page(
    conn: Connection,
    table: Table,
    where: ColumnElement[bool] | None,
    order_by: ColumnElement[Any] | None,
    descending: bool,
    offset: int,
    limit: int,
) -> tuple[int, Sequence[Row[Any]]]:
    """Rows of `table` not soft-deleted that match `where`: the total and one page.

    Creation time, then id, follow the requested order, so the order is total and
    pages never repeat or skip a row.
    """
    live = table.c.deleted_at.is_(None)
    condition = live if where is None else live & where
    total = conn.execute(select(func.count()).select_from(table).where(condition)).scalar_one()
    if limit <= 0:
        return total, []
    query = select(table).where(condition)
    if order_by is not None:
        query = query.order_by(order_by.desc() if descending else order_by.asc())
    query = query.order_by(table.c.created_at, table.c.id).offset(offset).limit(limit)
    return total, conn.execute(query).all()
