"""What every SCIM endpoint shares: the API settings, the base URL resources are
located under, the request's audit context, and SCIM errors as responses."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from gogs_scim.api.messages import error_response
from gogs_scim.scim.errors import ScimError
from gogs_scim.service.users import RequestContext

SCIM_PREFIX = "/scim/v2"


@dataclass(frozen=True)
class ApiSettings:
    public_url: str | None
    max_body_bytes: int
    max_results: int


def base_url(request: Request, settings: ApiSettings) -> str:
    """Where `/Users`, `/Groups`... live, as clients must see it (`meta.location`)."""
    if settings.public_url:
        return settings.public_url.rstrip("/") + SCIM_PREFIX
    return str(request.base_url).rstrip("/") + SCIM_PREFIX


def request_context(request: Request) -> RequestContext:
    return RequestContext(actor=request.state.actor, request_id=request.state.request_id)


Endpoint = Callable[[Request], Awaitable[Response]]


def scim_endpoint(handler: Endpoint) -> Endpoint:
    """Answer a ScimError raised anywhere below with its SCIM error body."""

    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except ScimError as error:
            return error_response(error)

    return endpoint
