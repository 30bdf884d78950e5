"""The ASGI application: SCIM routes under /scim/v2, health under /healthz."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gogs_scim.api.auth import TokenVerifier, bearer_token
from gogs_scim.api.endpoints import (
    SCIM_PREFIX,
    ApiSettings,
    base_url,
    request_context,
    scim_endpoint,
)
from gogs_scim.api.groups import group_routes
from gogs_scim.api.listing import (
    ListParams,
    Searcher,
    check_search_request,
    list_params,
    list_resources,
    search_all,
)
from gogs_scim.api.messages import ScimResponse, error_response, read_json
from gogs_scim.logs import request_id_var
from gogs_scim.scim import discovery
from gogs_scim.scim.errors import ScimError
from gogs_scim.scim.projection import parse_attribute_list, project
from gogs_scim.scim.schema import USER_RESOURCE, all_schemas
from gogs_scim.scim.users import render_user, user_location
from gogs_scim.service.groups import GroupService
from gogs_scim.service.users import UserService, etag

log = logging.getLogger(__name__)


class ScimMiddleware(BaseHTTPMiddleware):
    """Request ids, bearer auth on SCIM routes, and SCIM errors for whatever goes wrong."""

    def __init__(self, app: Any, verifier: TokenVerifier) -> None:
        super().__init__(app)
        self._verifier = verifier

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        request.state.request_id = request_id[:64]
        request_id_var.set(request.state.request_id)  # for every log line of it
        request.state.actor = None
        if request.url.path.startswith(SCIM_PREFIX):
            token = bearer_token(request.headers.get("authorization"))
            try:
                name = await run_in_threadpool(self._verifier.verify, token) if token else None
            except Exception:
                # E.g. the store holding the tokens is down: not the client's fault.
                log.exception("cannot check the SCIM token of %s", request.url.path)
                failed = error_response(ScimError(503, "cannot check tokens; try again"))
                failed.headers["X-Request-Id"] = request.state.request_id
                return failed
            if name is None:
                error = ScimError.unauthorized(
                    "a valid SCIM bearer token is required (Authorization: Bearer <token>)"
                )
                response: Response = error_response(
                    error, {"WWW-Authenticate": 'Bearer realm="gogs-scim"'}
                )
                response.headers["X-Request-Id"] = request.state.request_id
                return response
            request.state.actor = name
        try:
            response = await call_next(request)
        except Exception:
            log.exception("unhandled error in %s %s", request.method, request.url.path)
            response = error_response(ScimError(500, "internal error; see the service log"))
        response.headers["X-Request-Id"] = request.state.request_id
        return response


def create_app(
    users: UserService,
    verifier: TokenVerifier,
    settings: ApiSettings,
    readiness: Callable[[], dict[str, Any]] | None = None,
    groups: GroupService | None = None,
) -> Starlette:
    """Wire the routes; `bootstrap.build_app` gives the services."""

    def user_body(
        request: Request, record: Any, attributes: Any = None, excluded: Any = None
    ) -> Any:
        return project(
            render_user(record, base_url(request, settings)), USER_RESOURCE, attributes, excluded
        )

    def user_response(request: Request, record: Any, status: int = 200) -> Response:
        attributes = parse_attribute_list(request.query_params.get("attributes"))
        excluded = parse_attribute_list(request.query_params.get("excludedAttributes"))
        headers = {"ETag": etag(record)}
        if status == 201:
            headers["Location"] = user_location(base_url(request, settings), record.id)
        return ScimResponse(
            user_body(request, record, attributes, excluded), status_code=status, headers=headers
        )

    async def search_users(request: Request, params: ListParams) -> tuple[int, list[Any]]:
        page = await run_in_threadpool(users.search, params.query)
        return page.total, [
            user_body(request, record, params.attributes, params.excluded) for record in page.users
        ]

    async def list_users(request: Request, raw: dict[str, Any]) -> Response:
        return ScimResponse(await list_resources(request, raw, search_users, settings.max_results))

    @scim_endpoint
    async def users_collection(request: Request) -> Response:
        if request.method == "GET":
            return await list_users(request, dict(request.query_params))
        payload = await read_json(request, settings.max_body_bytes)
        record = await run_in_threadpool(users.create, payload, request_context(request))
        return user_response(request, record, 201)

    @scim_endpoint
    async def users_search(request: Request) -> Response:
        payload = await read_json(request, settings.max_body_bytes)
        check_search_request(payload)
        return await list_users(request, payload)

    searchers: list[Searcher] = [search_users]

    @scim_endpoint
    async def root_search(request: Request) -> Response:
        payload = await read_json(request, settings.max_body_bytes)
        check_search_request(payload)
        params = list_params(payload, settings.max_results)
        return ScimResponse(await search_all(request, searchers, params))

    @scim_endpoint
    async def user_item(request: Request) -> Response:
        user_id = request.path_params["user_id"]
        if_match = request.headers.get("if-match")
        ctx = request_context(request)
        if request.method == "GET":
            record = await run_in_threadpool(users.get, user_id)
            if_none_match = request.headers.get("if-none-match")
            if if_none_match and etag(record) in {t.strip() for t in if_none_match.split(",")}:
                return Response(status_code=304, headers={"ETag": etag(record)})
            return user_response(request, record)
        if request.method == "DELETE":
            await run_in_threadpool(users.delete, user_id, if_match, ctx)
            return Response(status_code=204)
        payload = await read_json(request, settings.max_body_bytes)
        if request.method == "PUT":
            record = await run_in_threadpool(users.replace, user_id, payload, if_match, ctx)
        else:
            record = await run_in_threadpool(users.patch, user_id, payload, if_match, ctx)
        return user_response(request, record)

    @scim_endpoint
    async def service_provider_config(request: Request) -> Response:
        return ScimResponse(
            discovery.service_provider_config(base_url(request, settings), settings.max_results)
        )

    @scim_endpoint
    async def resource_types(request: Request) -> Response:
        name = request.path_params.get("name")
        items = discovery.resource_types(base_url(request, settings))
        if name is None:
            return ScimResponse(discovery.list_response(items))
        for item in items:
            if item["id"] == name:
                return ScimResponse(item)
        raise ScimError.not_found(f"resource type {name} not found")

    @scim_endpoint
    async def schemas(request: Request) -> Response:
        urn = request.path_params.get("urn")
        items = discovery.schemas(base_url(request, settings))
        if urn is None:
            return ScimResponse(discovery.list_response(items))
        for item in items:
            if item["id"].lower() == urn.lower():
                return ScimResponse(item)
        raise ScimError.not_found(f"schema {urn} not found")

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_request: Request) -> Response:
        report = await run_in_threadpool(readiness) if readiness else {"ready": True}
        return JSONResponse(report, status_code=200 if report.get("ready") else 503)

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        if status == 405:
            return error_response(ScimError(405, f"{request.method} is not allowed here"))
        return error_response(ScimError.not_found(f"no such endpoint: {request.url.path}"))

    assert all_schemas()  # the catalog must load before the first request
    routes = [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route(f"{SCIM_PREFIX}/ServiceProviderConfig", service_provider_config),
        Route(f"{SCIM_PREFIX}/ResourceTypes", resource_types),
        Route(f"{SCIM_PREFIX}/ResourceTypes/{{name}}", resource_types),
        Route(f"{SCIM_PREFIX}/Schemas", schemas),
        Route(f"{SCIM_PREFIX}/Schemas/{{urn:path}}", schemas),
        Route(f"{SCIM_PREFIX}/Users", users_collection, methods=["GET", "POST"]),
        Route(f"{SCIM_PREFIX}/Users/.search", users_search, methods=["POST"]),
        Route(f"{SCIM_PREFIX}/.search", root_search, methods=["POST"]),
        Route(
            f"{SCIM_PREFIX}/Users/{{user_id}}",
            user_item,
            methods=["GET", "PUT", "PATCH", "DELETE"],
        ),
    ]
    if groups is not None:
        group_endpoints, search_groups = group_routes(groups, settings)
        routes.extend(group_endpoints)
        searchers.append(search_groups)
    return Starlette(
        routes=routes,
        middleware=[Middleware(ScimMiddleware, verifier=verifier)],
        exception_handlers={404: not_found, 405: not_found},
    )
