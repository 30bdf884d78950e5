"""The ASGI application: SCIM routes under /scim/v2, health under /healthz."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gogs_scim.api.auth import TokenVerifier, bearer_token
from gogs_scim.api.messages import ScimResponse, error_response, read_json
from gogs_scim.scim import discovery
from gogs_scim.scim.errors import ScimError
from gogs_scim.scim.projection import parse_attribute_list, project
from gogs_scim.scim.schema import USER_RESOURCE, all_schemas
from gogs_scim.scim.users import render_user, user_location
from gogs_scim.service.users import ListQuery, RequestContext, UserService, etag

if TYPE_CHECKING:
    from gogs_scim.service.groups import GroupService

log = logging.getLogger(__name__)

SCIM_PREFIX = "/scim/v2"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
SEARCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"


@dataclass(frozen=True)
class ApiSettings:
    public_url: str | None
    max_body_bytes: int
    max_results: int


def _base_url(request: Request, settings: ApiSettings) -> str:
    if settings.public_url:
        return settings.public_url.rstrip("/") + SCIM_PREFIX
    return str(request.base_url).rstrip("/") + SCIM_PREFIX


def _context(request: Request) -> RequestContext:
    return RequestContext(actor=request.state.actor, request_id=request.state.request_id)


def _int_param(raw: Any, name: str, default: int) -> int:
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise ScimError.invalid_value(f"{name} must be an integer") from None


class ScimMiddleware(BaseHTTPMiddleware):
    """Request ids, bearer auth on SCIM routes, and SCIM errors for whatever goes wrong."""

    def __init__(self, app: Any, verifier: TokenVerifier) -> None:
        super().__init__(app)
        self._verifier = verifier

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        request.state.request_id = request_id[:64]
        request.state.actor = None
        if request.url.path.startswith(SCIM_PREFIX):
            token = bearer_token(request.headers.get("authorization"))
            name = await run_in_threadpool(self._verifier.verify, token) if token else None
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


Endpoint = Callable[[Request], Awaitable[Response]]


def _scim(handler: Endpoint) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except ScimError as error:
            return error_response(error)

    return endpoint


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
            render_user(record, _base_url(request, settings)), USER_RESOURCE, attributes, excluded
        )

    def user_response(request: Request, record: Any, status: int = 200) -> Response:
        attributes = parse_attribute_list(request.query_params.get("attributes"))
        excluded = parse_attribute_list(request.query_params.get("excludedAttributes"))
        headers = {"ETag": etag(record)}
        if status == 201:
            headers["Location"] = user_location(_base_url(request, settings), record.id)
        return ScimResponse(
            user_body(request, record, attributes, excluded), status_code=status, headers=headers
        )

    async def list_users(request: Request, params: dict[str, Any]) -> Response:
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
        page = await run_in_threadpool(users.search, query)
        attributes = params.get("attributes")
        excluded = params.get("excludedAttributes")
        if isinstance(attributes, str):
            attributes = parse_attribute_list(attributes)
        if isinstance(excluded, str):
            excluded = parse_attribute_list(excluded)
        resources = [user_body(request, record, attributes, excluded) for record in page.users]
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
    async def users_collection(request: Request) -> Response:
        if request.method == "GET":
            return await list_users(request, dict(request.query_params))
        payload = await read_json(request, settings.max_body_bytes)
        record = await run_in_threadpool(users.create, payload, _context(request))
        return user_response(request, record, 201)

    @_scim
    async def users_search(request: Request) -> Response:
        payload = await read_json(request, settings.max_body_bytes)
        schemas = payload.get("schemas")
        if schemas is not None and SEARCH_SCHEMA not in schemas:
            raise ScimError.invalid_syntax(f"a search request must have schema {SEARCH_SCHEMA}")
        return await list_users(request, payload)

    @_scim
    async def user_item(request: Request) -> Response:
        user_id = request.path_params["user_id"]
        if_match = request.headers.get("if-match")
        ctx = _context(request)
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

    @_scim
    async def service_provider_config(request: Request) -> Response:
        return ScimResponse(
            discovery.service_provider_config(_base_url(request, settings), settings.max_results)
        )

    @_scim
    async def resource_types(request: Request) -> Response:
        name = request.path_params.get("name")
        items = discovery.resource_types(_base_url(request, settings))
        if name is None:
            return ScimResponse(discovery.list_response(items))
        for item in items:
            if item["id"] == name:
                return ScimResponse(item)
        raise ScimError.not_found(f"resource type {name} not found")

    @_scim
    async def schemas(request: Request) -> Response:
        urn = request.path_params.get("urn")
        items = discovery.schemas(_base_url(request, settings))
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
        # The root search (RFC 7644 §3.4.3) covers the User type; see docs/conformance.md.
        Route(f"{SCIM_PREFIX}/.search", users_search, methods=["POST"]),
        Route(
            f"{SCIM_PREFIX}/Users/{{user_id}}",
            user_item,
            methods=["GET", "PUT", "PATCH", "DELETE"],
        ),
    ]
    if groups is not None:
        # Imported here: api.groups builds on this module's helpers (_scim, ...).
        from gogs_scim.api.groups import group_routes

        routes.extend(group_routes(groups, settings))
    return Starlette(
        routes=routes,
        middleware=[Middleware(ScimMiddleware, verifier=verifier)],
        exception_handlers={404: not_found, 405: not_found},
    )
