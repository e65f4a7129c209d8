"""The service's one pure-ASGI middleware: access log and metrics, body limit, API key.

One pass per request instead of a middleware per concern, written against raw
ASGI rather than Starlette's ``BaseHTTPMiddleware`` (which costs tens of
microseconds per request on the hot decision path). It also dispatches the
two hot routes (decide, open) itself, so that they skip FastAPI's exception
and dependency middleware and the router (see
:mod:`headliner.service.routes.fast`).
"""

from __future__ import annotations

import inspect
import json
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from headliner.core.errors import AuthError, StoreUnavailableError
from headliner.service.auth import read_only_refusal
from headliner.service.logs import ACCESS_LOGGER, sole_json_handler, write_access_line
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


def _handler_for(handlers: Mapping[Any, Any], exc: Exception) -> Any:
    """The app's handler for ``exc`` as Starlette's exception middleware finds it, or None.

    A 500 and ``Exception`` belong to the server error middleware, not to this lookup.
    """
    if isinstance(exc, HTTPException) and exc.status_code != 500:
        handler = handlers.get(exc.status_code)
        if handler is not None:
            return handler
    for cls in type(exc).__mro__:
        if cls is not Exception and cls in handlers:
            return handlers[cls]
    return None


class ServiceMiddleware:
    """Every request's pass: access log, latency metric, body limit, API key, hot routes.

    In this order, as the three middlewares it replaces ran: the access log
    and the latency metric see every request (the 413s and 401s too); a body
    over ``max_bytes`` is refused before its key is even looked at; a ``/v1``
    request needs ``Authorization: Bearer <key>`` once any key exists, and a
    read-only key only reads (any method but GET and HEAD is a 403).

    * Body limit: a declared ``Content-Length`` is checked before anything is
      read (the server stops at that length); a chunked body is read up to
      the limit first.
    * API key: a middleware rather than a FastAPI dependency, because solving
      a dependency tree per request cost more than the rest of the decision
      route (profiled); the check itself is a dictionary lookup in
      :class:`~headliner.service.auth.KeyCache`. Everything outside ``prefix``
      (health, readiness, metrics, docs) stays public.
    * Hot routes: a request that one of ``routes`` matches fully runs its
      endpoint here; an exception it raises goes to the app's exception
      handler for it, as FastAPI's own middleware would send it there.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics,
        max_bytes: int,
        prefix: str = "/v1",
        routes: Sequence[Route] = (),
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.max_bytes = max_bytes
        self.prefix = prefix
        self.routes = tuple(routes)
        self.logger = logging.getLogger(ACCESS_LOGGER)
        self._series: dict[tuple[str, str, str], Any] = {}  # labels() costs a lock and a lookup

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Time the request and record it once the response has started."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        started = False

        async def capturing_send(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status = message["status"]
                started = True
            await send(message)

        try:
            await self._handle(scope, receive, capturing_send, lambda: started)
        finally:
            self._record(scope, status, time.perf_counter() - start)

    async def _handle(self, scope: Scope, receive: Receive, send: Send, started: Any) -> None:
        length: bytes | None = None
        authorization: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                if length is None:
                    length = value
            elif name == b"authorization" and authorization is None:
                authorization = value
        # --- body limit
        if length is not None:
            try:
                declared = int(length)
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
                await _reply(send, 413, self._too_large(), "body_too_large", ("body",))
                return
        else:
            replay = await self._read_chunked(receive, send)
            if replay is None:
                return
            receive = replay
        # --- API key
        path: str = scope.get("path", "")
        if path == self.prefix or path.startswith(self.prefix + "/"):
            token = None
            if authorization is not None:
                scheme, _, credentials = authorization.decode("latin-1").partition(" ")
                if scheme.lower() == "bearer" and credentials.strip():
                    token = credentials.strip()
            try:
                key = scope["app"].state.context.keys.check(token)
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
                # The key cache read the database (its entry had expired): outside the
                # app's exception handler, which would answer it the same way.
                retry = [(b"retry-after", str(exc.retry_after).encode())]
                await _reply(send, 503, str(exc), "unavailable", (), retry)
                return
            refusal = read_only_refusal(key, scope["method"])
            if refusal is not None:
                await _reply(send, 403, refusal, "forbidden", ("header", "authorization"))
                return
        # --- hot routes, then everything else
        for route in self.routes:
            match, child = route.matches(scope)
            if match is Match.FULL:
                scope.update(child)
                await self._run_endpoint(route, scope, receive, send, started)
                return
        await self.app(scope, receive, send)

    def _too_large(self) -> str:
        return f"Request body exceeds the limit of {self.max_bytes} bytes."

    async def _read_chunked(self, receive: Receive, send: Send) -> Receive | None:
        """Read a body of no declared length up to the limit; a replaying ``receive``, or None.

        None: the body was too large and the 413 has been sent. Raising from
        ``receive`` instead would surface as FastAPI's 400.
        """
        messages: list[Message] = []
        received = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                await _reply(send, 413, self._too_large(), "body_too_large", ("body",))
                return None
            if not message.get("more_body", False):
                break
        replay = iter(messages)

        async def replay_receive() -> Message:
            return next(replay, None) or await receive()

        return replay_receive

    @staticmethod
    async def _run_endpoint(
        route: Route, scope: Scope, receive: Receive, send: Send, started: Any
    ) -> None:
        """Run a hot route's endpoint; an exception goes to the app's handler for its class.

        The lookup is Starlette's: a status handler for an ``HTTPException``,
        else the first class in the exception's MRO that has a handler; none
        (or a response already under way) re-raises, for the server error
        middleware above to answer 500.
        """
        request = Request(scope, receive, send)
        try:
            response = await route.endpoint(request)
        except Exception as exc:
            handler = _handler_for(scope["app"].exception_handlers, exc)
            if handler is None or started():
                raise
            if inspect.iscoroutinefunction(handler):
                response = await handler(request, exc)
            else:
                response = await run_in_threadpool(handler, request, exc)
        await response(scope, receive, send)

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
            duration_ms = round(seconds * 1000.0, 3)
            handler = sole_json_handler(self.logger)
            if handler is not None:
                write_access_line(handler, scope["method"], scope["path"], status, duration_ms)
                return
            self.logger.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": duration_ms,
                },
            )
