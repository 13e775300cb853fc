"""ASGI middleware: authentication, body limits and UTF-8 check before any body is parsed
(``GuardMiddleware``), and request metrics, page security headers and the last-resort 500
(``MetricsMiddleware``). Note text is never logged: an unexpected error is logged by type and
code location only.
"""

from __future__ import annotations

import logging
import time
import traceback
import uuid
from typing import TYPE_CHECKING

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .auth import presented_key
from .metrics import Metrics

if TYPE_CHECKING:
    from .deps import Service

log = logging.getLogger("clinicode.serve")

_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def json_response(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


class GuardMiddleware:
    """Authentication, body size limits and UTF-8 check, before any body is parsed."""

    def __init__(self, app: ASGIApp, service: Service) -> None:
        self.app = app
        self.svc = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith("/v1/") or path == "/metrics":
            headers = {
                k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]
            }
            presented = presented_key(headers.get("authorization"), headers.get("x-api-key"))
            if presented is None:
                await json_response(
                    401,
                    "missing API key: send 'Authorization: Bearer KEY' or 'X-API-Key: KEY'",
                    {"WWW-Authenticate": "Bearer"},
                )(scope, receive, send)
                return
            key = self.svc.keys.verify(presented)
            if key is None:
                detail = "unknown API key"
                if len(self.svc.keys) == 0:
                    detail += (
                        " (no keys are configured: set CLINICODE_API_KEYS or run `clinicode serve`)"
                    )
                await json_response(401, detail, {"WWW-Authenticate": "Bearer"})(
                    scope, receive, send
                )
                return
            scope.setdefault("state", {})["api_key"] = key
        if scope["method"] in ("POST", "PUT", "PATCH"):
            limit = (
                self.svc.settings.max_batch_body_bytes
                if path == "/v1/suggest/batch"
                else self.svc.settings.max_body_bytes
            )
            body = await self._read_body(scope, receive, limit)
            if body is None:
                await json_response(
                    413,
                    f"request body is larger than {limit} bytes "
                    "(CLINICODE_MAX_BODY_BYTES / CLINICODE_MAX_BATCH_BODY_BYTES)",
                )(scope, receive, send)
                return
            try:
                body.decode("utf-8")
            except UnicodeDecodeError as exc:
                await json_response(
                    400, f"request body is not valid UTF-8 (byte {exc.start}); send UTF-8 JSON"
                )(scope, receive, send)
                return
            await self.app(scope, _replay(body, receive), send)
            return
        await self.app(scope, receive, send)

    @staticmethod
    async def _read_body(scope: Scope, receive: Receive, limit: int) -> bytes | None:
        for k, v in scope["headers"]:
            if k == b"content-length":
                try:
                    if int(v) > limit:
                        return None
                except ValueError:
                    pass
        chunks: list[bytes] = []
        total = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > limit:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


def _replay(body: bytes, original: Receive) -> Receive:
    """The body already read, then the server's own messages (so a route can tell when its
    client has gone away: ``Request.is_disconnected``)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await original()

    return receive


class MetricsMiddleware:
    """Request counts and latency by route template (never by raw path or query)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        scope.setdefault("state", {})["arrived"] = time.monotonic()  # deadlines count from here
        status = 500
        status_sent = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, status_sent
            if message["type"] == "http.response.start":
                status, status_sent = message["status"], True
                if scope["path"] == "/" or scope["path"].startswith("/static/"):
                    message.setdefault("headers", [])
                    message["headers"] = list(message["headers"]) + [
                        (k.lower().encode(), v.encode()) for k, v in _PAGE_HEADERS.items()
                    ]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            if status_sent:
                raise
            status = 500
            await _unexpected(scope, exc)(scope, receive, send)
        finally:
            route = scope.get("route")
            label = getattr(route, "path", None) or "unmatched"
            m = self.metrics
            m.requests.inc(m.worker, scope["method"], label, str(status))
            m.latency.observe(time.perf_counter() - t0, m.worker, scope["method"], label)


def _unexpected(scope: Scope, exc: Exception) -> JSONResponse:
    """500 for an unexpected error. Logs the type and code location only: an exception message
    could quote the note."""
    ref = uuid.uuid4().hex[:12]
    frames = "".join(traceback.format_list(traceback.extract_tb(exc.__traceback__)))
    log.error(
        "unexpected %s on %s %s (ref %s)\n%s",
        type(exc).__name__,
        scope.get("method"),
        getattr(scope.get("route"), "path", "?"),
        ref,
        frames,
    )
    return json_response(500, f"internal error (ref {ref}); see the server log")
