"""Logging: JSON lines on stderr for machines, or plain lines for a terminal.

Every record carries the id of the HTTP request it was written for (`request_id`,
the X-Request-Id the client saw), from a context variable `ScimMiddleware` sets; work
a request hands to a thread (Starlette's threadpool copies the context) keeps it, the
background worker's lines have none.

No secret reaches a log line: the bridge never logs request bodies or headers, values
passed as `extra=` go through the audit trail's redaction, and as a last guard the
formatter masks anything that looks like `password=...`, `"token": "..."` or an
`Authorization` value in the message itself.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gogs_scim.audit.redaction import REDACTED, redact

request_id_var: ContextVar[str | None] = ContextVar("gogs_scim_request_id", default=None)

# key=value / "key": "value" / Authorization: Bearer x / token x, for the secret keys.
_SECRET_PAIR = re.compile(
    r"""(?P<key>["']?(?:password|passwd|secret|token|admin_token|authorization)["']?"""
    r"""\s*[:=]\s*)(?P<value>"[^"]*"|'[^']*'|(?:bearer|token|basic)\s+\S+|[^\s,;}&]+)""",
    re.IGNORECASE,
)
_SCHEME_VALUE = re.compile(r"\b(?P<scheme>bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE)

# The attributes every LogRecord has; anything else came in through `extra=`.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's copy of the message with terminal colours
}
_HANDLER_MARK = "_gogs_scim_handler"
_access = logging.getLogger("gogs_scim.access")


def scrub(text: str) -> str:
    """`text` with the values of secret-looking pairs masked."""
    text = _SECRET_PAIR.sub(lambda m: f"{m.group('key')}{REDACTED}", text)
    return _SCHEME_VALUE.sub(lambda m: f"{m.group('scheme')} {REDACTED}", text)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, request_id (+ extras)."""

    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": scrub(record.getMessage()),
            "request_id": getattr(record, "request_id", None) or request_id_var.get(),
        }
        extras = {
            key: value
            for key, value in vars(record).items()
            if key not in _STANDARD and key != "request_id" and not key.startswith("_")
        }
        if extras:
            body.update(redact(extras))
        if record.exc_info:
            body["exception"] = scrub(self.formatException(record.exc_info))
        return json.dumps(body, default=str)


class HumanFormatter(logging.Formatter):
    """`time level logger [request id] message`, for a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(rid)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        request_id = request_id_var.get()
        request_id = getattr(record, "request_id", None) or request_id
        record.__dict__["rid"] = f" [{request_id}]" if request_id else ""
        try:
            return scrub(super().format(record))
        finally:
            record.__dict__.pop("rid", None)


def configure_logging(json: bool, *, stream: IO[str] | None = None) -> logging.Handler:
    """Send every log record at INFO and above to `stream` (stderr), in JSON lines or
    human form. Calling it again replaces the handler it installed before, and leaves
    any other handler (a test's capture) alone."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _HANDLER_MARK, False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if json else HumanFormatter())
    setattr(handler, _HANDLER_MARK, True)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    # Migration chatter and per-request client lines would drown what matters.
    for noisy in ("alembic", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return handler


class AccessLog:
    """Pure ASGI middleware: one line per HTTP request, after its answer.

    `method path -> status in N ms`, with the request id the answer carried
    (X-Request-Id); never the query string, headers or body."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        request_id: str | None = None

        async def watch(message: Message) -> None:
            nonlocal status, request_id
            if message["type"] == "http.response.start":
                status = int(message["status"])
                for name, value in message.get("headers", []):
                    if name.lower() == b"x-request-id":
                        request_id = value.decode("latin-1")
            await send(message)

        try:
            await self._app(scope, receive, watch)
        finally:
            _access.info(
                "%s %s -> %d in %.0f ms",
                scope.get("method", ""),
                scope.get("path", ""),
                status,
                (time.perf_counter() - started) * 1000,
                extra={"request_id": request_id},
            )


def wants_json(argv: list[str], environ: Mapping[str, str]) -> bool:
    """JSON lines unless GOGS_SCIM_LOG_FORMAT=human, or the command is `demo` (a person
    is watching) and GOGS_SCIM_LOG_FORMAT is not `json`."""
    chosen = environ.get("GOGS_SCIM_LOG_FORMAT", "").strip().lower()
    if chosen in ("json", "human"):
        return chosen == "json"
    return "demo" not in argv
