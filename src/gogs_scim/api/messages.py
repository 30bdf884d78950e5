"""Reading SCIM request bodies and writing SCIM responses."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from gogs_scim.scim.errors import ScimError

SCIM_MEDIA_TYPE = "application/scim+json"
_ACCEPTED_MEDIA_TYPES = ("application/scim+json", "application/json")


class ScimResponse(Response):
    media_type = SCIM_MEDIA_TYPE

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()


def error_response(error: ScimError, headers: dict[str, str] | None = None) -> ScimResponse:
    return ScimResponse(error.to_scim(), status_code=error.status, headers=headers)


async def read_json(request: Request, max_bytes: int) -> dict[str, Any]:
    """The request's JSON object, or a ScimError saying what is wrong with it."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in _ACCEPTED_MEDIA_TYPES:
        raise ScimError(
            415,
            f"Content-Type must be application/scim+json or application/json, "
            f"not {media_type or 'missing'}",
            "invalidSyntax",
        )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise ScimError(413, f"request body is larger than {max_bytes} bytes", "invalidSyntax")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > max_bytes:
            raise ScimError(413, f"request body is larger than {max_bytes} bytes", "invalidSyntax")
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ScimError.invalid_syntax(f"request body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise ScimError.invalid_syntax("request body must be a JSON object")
    return payload
