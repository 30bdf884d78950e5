"""The SCIM Groups endpoints under /scim/v2/Groups (RFC 7644 §3), on a GroupService.

Members are only read when the answer will show them: `excludedAttributes=members`
(what Entra and Okta send when they list groups) or an `attributes` list without
`members` never loads a single membership row.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gogs_scim.api.app import (
    LIST_SCHEMA,
    SCIM_PREFIX,
    SEARCH_SCHEMA,
    ApiSettings,
    _base_url,
    _context,
    _int_param,
    _scim,
)
from gogs_scim.api.messages import ScimResponse, read_json
from gogs_scim.scim.errors import ScimError
from gogs_scim.scim.groups import group_location, render_group
from gogs_scim.scim.members import MEMBERS
from gogs_scim.scim.projection import excludes_top_level, parse_attribute_list, project
from gogs_scim.scim.schema import GROUP_RESOURCE
from gogs_scim.service.groups import GroupService, GroupView, etag
from gogs_scim.service.users import ListQuery


def _names(raw: Any, name: str) -> list[str] | None:
    """`attributes`/`excludedAttributes` from a query string or a .search body."""
    if raw is None or isinstance(raw, str):
        return parse_attribute_list(raw)
    if isinstance(raw, list) and all(isinstance(item, str) for item in raw):
        return [item for item in raw if item.strip()] or None
    raise ScimError.invalid_syntax(f"{name} must be a list of attribute names")


def group_routes(service: GroupService, settings: ApiSettings) -> list[Route]:
    def body(
        request: Request,
        view: GroupView,
        attributes: list[str] | None,
        excluded: list[str] | None,
    ) -> dict[str, Any]:
        rendered = render_group(view.record, view.members, _base_url(request, settings))
        return project(rendered, GROUP_RESOURCE, attributes, excluded)

    def wants_members(attributes: list[str] | None, excluded: list[str] | None) -> bool:
        return not excludes_top_level(GROUP_RESOURCE, attributes, excluded, MEMBERS)

    def query_names(request: Request) -> tuple[list[str] | None, list[str] | None]:
        return (
            _names(request.query_params.get("attributes"), "attributes"),
            _names(request.query_params.get("excludedAttributes"), "excludedAttributes"),
        )

    def respond(request: Request, view: GroupView, status: int = 200) -> Response:
        attributes, excluded = query_names(request)
        headers = {"ETag": etag(view.record)}
        if status == 201:
            headers["Location"] = group_location(_base_url(request, settings), view.record.id)
        return ScimResponse(
            body(request, view, attributes, excluded), status_code=status, headers=headers
        )

    async def list_groups(request: Request, params: dict[str, Any]) -> Response:
        order = str(params.get("sortOrder") or "ascending").lower()
        if order not in ("ascending", "descending"):
            raise ScimError.invalid_value("sortOrder must be ascending or descending")
        query = ListQuery(
            filter=params.get("filter") or None,
            sort_by=params.get("sortBy") or None,
            descending=order == "descending",
            start_index=_int_param(params.get("startIndex"), "startIndex", 1),
            count=_int_param(params.get("count"), "count", settings.max_results),
        )
        attributes = _names(params.get("attributes"), "attributes")
        excluded = _names(params.get("excludedAttributes"), "excludedAttributes")
        page = await run_in_threadpool(
            lambda: service.search(query, with_members=wants_members(attributes, excluded))
        )
        resources = [body(request, view, attributes, excluded) for view in page.groups]
        return ScimResponse(
            {
                "schemas": [LIST_SCHEMA],
                "totalResults": page.total,
                "startIndex": page.start_index,
                "itemsPerPage": len(resources),
                "Resources": resources,
            }
        )

    @_scim
    async def collection(request: Request) -> Response:
        if request.method == "GET":
            return await list_groups(request, dict(request.query_params))
        payload = await read_json(request, settings.max_body_bytes)
        ctx = _context(request)
        shown = wants_members(*query_names(request))
        view = await run_in_threadpool(lambda: service.create(payload, ctx, with_members=shown))
        return respond(request, view, 201)

    @_scim
    async def search(request: Request) -> Response:
        payload = await read_json(request, settings.max_body_bytes)
        schemas = payload.get("schemas")
        if schemas is not None and SEARCH_SCHEMA not in schemas:
            raise ScimError.invalid_syntax(f"a search request must have schema {SEARCH_SCHEMA}")
        return await list_groups(request, payload)

    @_scim
    async def item(request: Request) -> Response:
        group_id = request.path_params["group_id"]
        if_match = request.headers.get("if-match")
        ctx = _context(request)
        if request.method == "GET":
            attributes, excluded = query_names(request)
            with_members = wants_members(attributes, excluded)
            view = await run_in_threadpool(lambda: service.get(group_id, with_members=with_members))
            if_none_match = request.headers.get("if-none-match")
            tag = etag(view.record)
            if if_none_match and tag in {t.strip() for t in if_none_match.split(",")}:
                return Response(status_code=304, headers={"ETag": tag})
            return respond(request, view)
        if request.method == "DELETE":
            await run_in_threadpool(service.delete, group_id, if_match, ctx)
            return Response(status_code=204)
        payload = await read_json(request, settings.max_body_bytes)
        shown = wants_members(*query_names(request))
        write = service.replace if request.method == "PUT" else service.patch
        view = await run_in_threadpool(
            lambda: write(group_id, payload, if_match, ctx, with_members=shown)
        )
        return respond(request, view)

    return [
        Route(f"{SCIM_PREFIX}/Groups", collection, methods=["GET", "POST"]),
        Route(f"{SCIM_PREFIX}/Groups/.search", search, methods=["POST"]),
        Route(
            f"{SCIM_PREFIX}/Groups/{{group_id}}", item, methods=["GET", "PUT", "PATCH", "DELETE"]
        ),
    ]
