"""Listing and searching (RFC 7644 §3.4.2, §3.4.3): one way to read the parameters,
one list body, and the root search that spans resource types."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from starlette.requests import Request

from gogs_scim.scim.errors import ScimError
from gogs_scim.scim.projection import parse_attribute_list
from gogs_scim.service.listing import ListQuery

LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
SEARCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"


@dataclass(frozen=True)
class ListParams:
    query: ListQuery
    attributes: list[str] | None
    excluded: list[str] | None


# One resource type's search: the exact total and the rendered resources of the page.
Searcher = Callable[[Request, ListParams], Awaitable[tuple[int, list[dict[str, Any]]]]]


def _int_param(raw: Any, name: str, default: int) -> int:
    if raw is None or raw == "":
        return default
    if isinstance(raw, bool):
        raise ScimError.invalid_value(f"{name} must be an integer")
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise ScimError.invalid_value(f"{name} must be an integer") from None


def names_param(raw: Any, name: str) -> list[str] | None:
    """`attributes` as a query string ("a,b") or, in a search body, a list of names."""
    if raw is None or isinstance(raw, str):
        return parse_attribute_list(raw)
    if isinstance(raw, list) and all(isinstance(item, str) for item in raw):
        return [item for item in raw if item.strip()] or None
    raise ScimError.invalid_syntax(f"{name} must be a list of attribute names")


def list_params(params: dict[str, Any], max_results: int) -> ListParams:
    """The parameters of a GET query string or a `/.search` body, checked."""
    order = str(params.get("sortOrder") or "ascending").lower()
    if order not in ("ascending", "descending"):
        raise ScimError.invalid_value("sortOrder must be ascending or descending")
    return ListParams(
        query=ListQuery(
            filter=params.get("filter") or None,
            sort_by=params.get("sortBy") or None,
            descending=order == "descending",
            start_index=_int_param(params.get("startIndex"), "startIndex", 1),
            count=_int_param(params.get("count"), "count", max_results),
        ),
        attributes=names_param(params.get("attributes"), "attributes"),
        excluded=names_param(params.get("excludedAttributes"), "excludedAttributes"),
    )


def check_search_request(payload: dict[str, Any]) -> None:
    schemas = payload.get("schemas")
    if schemas is not None and SEARCH_SCHEMA not in schemas:
        raise ScimError.invalid_syntax(f"a search request must have schema {SEARCH_SCHEMA}")


def list_body(total: int, start_index: int, resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "schemas": [LIST_SCHEMA],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": len(resources),
        "Resources": resources,
    }


async def list_resources(
    request: Request, raw: dict[str, Any], searcher: Searcher, max_results: int
) -> dict[str, Any]:
    """The ListResponse for a GET query string or a `/.search` body, on one type."""
    params = list_params(raw, max_results)
    total, resources = await searcher(request, params)
    return list_body(total, max(params.query.start_index, 1), resources)


async def search_all(
    request: Request, searchers: Sequence[Searcher], params: ListParams
) -> dict[str, Any]:
    """The root search: every resource type in turn, paged as one list.

    A filter naming an attribute one type lacks matches nothing of that type
    (RFC 7644 §3.4.2.1); it is an error only when it fits no type at all. Sorting
    applies within each type.
    """
    totals: list[int | None] = []
    first_error: ScimError | None = None
    for searcher in searchers:
        try:
            only_count = replace(params, query=replace(params.query, count=0))
            total, _ = await searcher(request, only_count)
            totals.append(total)
        except ScimError as error:
            if error.scim_type != "invalidFilter":
                raise
            first_error = first_error or error
            totals.append(None)
    if first_error is not None and all(total is None for total in totals):
        raise first_error
    start = max(params.query.start_index, 1)
    wanted = max(params.query.count, 0)
    skip = start - 1
    resources: list[dict[str, Any]] = []
    for searcher, matched in zip(searchers, totals, strict=True):
        total = matched or 0
        if total == 0:
            continue
        if skip >= total:
            skip -= total
            continue
        room = wanted - len(resources)
        if room > 0:
            query = replace(params.query, start_index=skip + 1, count=room)
            _, page = await searcher(request, replace(params, query=query))
            resources.extend(page)
        skip = 0
    return list_body(sum(t or 0 for t in totals), start, resources)
