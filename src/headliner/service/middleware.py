"""Pure ASGI middleware: the body size limit, and the access log with latency metrics.

Written against raw ASGI rather than Starlette's ``BaseHTTPMiddleware``, which
costs tens of microseconds per request on the hot decision path.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from headliner.core.errors import AuthError, StoreUnavailableError
from headliner.service.logs import ACCESS_LOGGER
from headliner.service.metrics import Metrics
from headliner.service.schemas import ErrorPublic


async def _reply(
    send: Send,
    status: int,
    detail: str,
    kind: str,
    loc: tuple[str, ...] = (),
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    body = json.dumps(ErrorPublic.body(detail, kind, loc)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(extra or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    """Answer 413 to a request whose body exceeds ``max_bytes``.

    A declared ``Content-Length`` is checked before anything is read (the
    server stops at that length); a chunked body is read up to the limit first.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request through the limit."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        detail = f"Request body exceeds the limit of {self.max_bytes} bytes."
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _reply(
                        send,
                        400,
                        "Invalid Content-Length header.",
                        "bad_request",
                        ("header", "content-length"),
                    )
                    return
                if declared > self.max_bytes:
                    await _reply(send, 413, detail, "body_too_large", ("body",))
                    return
                await self.app(scope, receive, send)
                return
        # No declared length (a chunked body): read it here, up to the limit, then
        # replay it. Raising from `receive` instead would surface as FastAPI's 400.
        messages: list[Message] = []
        received = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                await _reply(send, 413, detail, "body_too_large", ("body",))
                return
            if not message.get("more_body", False):
                break
        replay = iter(messages)

        async def replay_receive() -> Message:
            return next(replay, None) or await receive()

        await self.app(scope, replay_receive, send)


class ApiKeyMiddleware:
    """Require ``Authorization: Bearer <key>`` on ``/v1`` once any key exists.

    A middleware rather than a FastAPI dependency: solving a dependency tree
    per request cost more than the rest of the decision route (profiled), and
    the check itself is a dictionary lookup in
    :class:`~headliner.service.auth.KeyCache`. Everything outside ``/v1``
    (health, readiness, metrics, docs) stays public.
    """

    def __init__(self, app: ASGIApp, prefix: str = "/v1") -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the key of a /v1 request, or pass anything else through."""
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not (
            path == self.prefix or path.startswith(self.prefix + "/")
        ):
            await self.app(scope, receive, send)
            return
        token = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, credentials = value.decode("latin-1").partition(" ")
                if scheme.lower() == "bearer" and credentials.strip():
                    token = credentials.strip()
                break
        try:
            scope["app"].state.context.keys.check(token)
        except AuthError as exc:
            if exc.revoked:
                await _reply(send, 403, str(exc), "forbidden", ("header", "authorization"))
            else:
                await _reply(
                    send,
                    401,
                    str(exc),
                    "unauthorized",
                    ("header", "authorization"),
                    [(b"www-authenticate", b"Bearer")],
                )
            return
        except StoreUnavailableError as exc:
            # Outside the app's exception handler, which would answer it the same way.
            retry = [(b"retry-after", str(exc.retry_after).encode())]
            await _reply(send, 503, str(exc), "unavailable", (), retry)
            return
        await self.app(scope, receive, send)


class AccessLogMiddleware:
    """Log one JSON line per request and observe its latency by route template."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self.logger = logging.getLogger(ACCESS_LOGGER)
        self._series: dict[tuple[str, str, str], Any] = {}  # labels() costs a lock and a lookup

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Time the request and record it once the response has started."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def capturing_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capturing_send)
        finally:
            self._record(scope, status, time.perf_counter() - start)

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        route: Any = scope.get("route")
        # The template, not the raw path: ids would make one time series per experiment.
        template = getattr(route, "path", None) or "<unmatched>"
        key = (scope["method"], template, str(status))
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = self.metrics.latency.labels(*key)
        series.observe(seconds)
        if self.logger.isEnabledFor(logging.INFO):
            self.logger.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round(seconds * 1000.0, 3),
                },
            )
