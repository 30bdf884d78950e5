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

from gogs_scim.api.endpoints import (
    SCIM_PREFIX,
    ApiSettings,
    base_url,
    request_context,
    scim_endpoint,
)
from gogs_scim.api.listing import (
    ListParams,
    Searcher,
    check_search_request,
    list_resources,
    names_param,
)
from gogs_scim.api.messages import ScimResponse, read_json
from gogs_scim.scim.groups import group_location, render_group
from gogs_scim.scim.members import MEMBERS
from gogs_scim.scim.projection import excludes_top_level, project
from gogs_scim.scim.schema import GROUP_RESOURCE
from gogs_scim.service.groups import GroupService, GroupView, etag


def group_routes(service: GroupService, settings: ApiSettings) -> tuple[list[Route], Searcher]:
    """The /Groups routes, and the Group searcher for the root `/.search`."""

    def body(
        request: Request,
        view: GroupView,
        attributes: list[str] | None,
        excluded: list[str] | None,
    ) -> dict[str, Any]:
        rendered = render_group(view.record, view.members, base_url(request, settings), view.teams)
        return project(rendered, GROUP_RESOURCE, attributes, excluded)

    def wants_members(attributes: list[str] | None, excluded: list[str] | None) -> bool:
        return not excludes_top_level(GROUP_RESOURCE, attributes, excluded, MEMBERS)

    def query_names(request: Request) -> tuple[list[str] | None, list[str] | None]:
        return (
            names_param(request.query_params.get("attributes"), "attributes"),
            names_param(request.query_params.get("excludedAttributes"), "excludedAttributes"),
        )

    def respond(request: Request, view: GroupView, status: int = 200) -> Response:
        attributes, excluded = query_names(request)
        headers = {"ETag": etag(view.record)}
        if status == 201:
            headers["Location"] = group_location(base_url(request, settings), view.record.id)
        return ScimResponse(
            body(request, view, attributes, excluded), status_code=status, headers=headers
        )

    async def search_groups(request: Request, params: ListParams) -> tuple[int, list[Any]]:
        shown = wants_members(params.attributes, params.excluded)
        page = await run_in_threadpool(lambda: service.search(params.query, with_members=shown))
        return page.total, [
            body(request, view, params.attributes, params.excluded) for view in page.groups
        ]

    async def list_groups(request: Request, raw: dict[str, Any]) -> Response:
        return ScimResponse(await list_resources(request, raw, search_groups, settings.max_results))

    @scim_endpoint
    async def collection(request: Request) -> Response:
        if request.method == "GET":
            return await list_groups(request, dict(request.query_params))
        payload = await read_json(request, settings.max_body_bytes)
        ctx = request_context(request)
        shown = wants_members(*query_names(request))
        view = await run_in_threadpool(lambda: service.create(payload, ctx, with_members=shown))
        return respond(request, view, 201)

    @scim_endpoint
    async def search(request: Request) -> Response:
        payload = await read_json(request, settings.max_body_bytes)
        check_search_request(payload)
        return await list_groups(request, payload)

    @scim_endpoint
    async def item(request: Request) -> Response:
        group_id = request.path_params["group_id"]
        if_match = request.headers.get("if-match")
        ctx = request_context(request)
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

    routes = [
        Route(f"{SCIM_PREFIX}/Groups", collection, methods=["GET", "POST"]),
        Route(f"{SCIM_PREFIX}/Groups/.search", search, methods=["POST"]),
        Route(
            f"{SCIM_PREFIX}/Groups/{{group_id}}", item, methods=["GET", "PUT", "PATCH", "DELETE"]
        ),
    ]
    return routes, search_groups
