"""Dependencies of the routes, as ``Annotated`` aliases.

Everything a route needs hangs off one :class:`AppContext`, built by the app's
lifespan and kept on ``app.state``: one dependency per request instead of
five keeps FastAPI's per-request overhead down on the hot path. Every
dependency is ``async def`` because FastAPI would run a plain ``def`` one in
the thread pool, a thread hop per request for nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, ParamSpec, TypeVar

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from headliner.service.auth import KeyCache
from headliner.service.experiments import ExperimentService
from headliner.service.metrics import Metrics
from headliner.service.settings import Settings
from headliner.storage.base import Store

P = ParamSpec("P")
T = TypeVar("T")


class Runner:
    """Runs a blocking store-bound call from an async route.

    With SQLite (and the in-memory store) a call takes tens of microseconds
    and writes serialize on the database lock anyway, so it runs inline on the
    event loop: measured faster than a thread-pool hop per request, which
    costs more than the call. With PostgreSQL a commit waits on the server
    (and its WAL flush), so calls go to the thread pool, where several
    commits overlap instead of queueing behind one another on the loop.
    """

    def __init__(self, *, threaded: bool) -> None:
        self.threaded = threaded

    async def __call__(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Call ``fn(*args, **kwargs)`` inline or in the thread pool."""
        if self.threaded:
            return await run_in_threadpool(fn, *args, **kwargs)
        return fn(*args, **kwargs)


@dataclass(frozen=True)
class AppContext:
    """What the routes of one app share."""

    settings: Settings
    store: Store
    service: ExperimentService
    keys: KeyCache
    metrics: Metrics
    run: Runner


async def get_context(request: Request) -> AppContext:
    """The app's context (set up by its lifespan)."""
    context: AppContext = request.app.state.context
    return context


ContextDep = Annotated[AppContext, Depends(get_context)]

bearer_scheme = HTTPBearer(
    auto_error=False,
    description="An API key made with `headliner keys create`; needed once any key exists.",
)


async def require_api_key(
    context: ContextDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> None:
    """Let the request through when no key is needed or its key is valid; else AuthError."""
    token = credentials.credentials if credentials is not None else None
    # Called inline even with PostgreSQL: the cache answers from memory, and only a
    # miss (once per key and TTL) reaches the store, which is not worth a thread hop.
    context.keys.check(token)
