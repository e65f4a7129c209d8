"""Dependencies of the routes, as ``Annotated`` aliases.

Everything a route needs hangs off one :class:`AppContext`, built by the app's
lifespan and kept on ``app.state``: one dependency per request instead of
five keeps FastAPI's per-request overhead down. The dependency is
``async def`` because FastAPI would run a plain ``def`` one in the thread
pool, a thread hop per request for nothing. The two hot routes (decide, open)
skip even that one and read :func:`context_of` the request: solving a
dependency costs more than their whole store write (profiled).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, ParamSpec, TypeVar

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from headliner.service.auth import KeyCache, PixelSigner
from headliner.service.dashboard import Dashboard
from headliner.service.experiments import ExperimentService
from headliner.service.metrics import Metrics
from headliner.service.settings import Settings
from headliner.storage.base import Store
from headliner.storage.sql import AsyncHotWrites

P = ParamSpec("P")
T = TypeVar("T")


class Runner:
    """Runs a blocking store call from an async route: inline, or in the thread pool.

    Inline is the default, for SQLite and PostgreSQL alike, because it measured
    faster on this 2-core machine (wrk, 50/50 decide+open mix):

    * SQLite, 1 worker, 16 connections: inline 2,190 req/s (p99 18 ms), thread
      pool about 1,000 req/s (p99 over 1 s at 32 connections);
    * PostgreSQL, 2 workers, 32 connections: inline 1,347 req/s (p99 58 ms),
      thread pool 944 req/s (p99 163 ms).

    The service is CPU-bound: a thread hop and the GIL hand-over cost more
    than overlapping the few hundred microseconds a store call waits. The
    price of inline calls is that a slow query stalls its worker's event
    loop; with several workers the others keep serving.
    ``HEADLINER_STORE_CALLS_IN_THREADPOOL=true`` switches.

    On PostgreSQL the two hot writes (decision, open) are not run here but
    awaited on psycopg's async driver (:class:`AppContext.writes`): an inline
    commit blocked the loop for PostgreSQL's disk flush, one commit in
    flight per worker. With the thread pool switched on they stay in it.
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
    dashboard: Dashboard
    writes: AsyncHotWrites | None = None
    """The hot writes awaited on PostgreSQL (None: through ``run``, as every other call)."""
    pixel: PixelSigner | None = None
    """Signs and reads tracking-pixel tokens (None: no ``HEADLINER_PIXEL_SECRET``)."""

    def open_pixel(self, experiment_id: str, decision_id: str) -> str | None:
        """The path of a decision's tracking pixel, or None without a pixel secret."""
        if self.pixel is None:
            return None
        return f"/pixel/{self.pixel.token(experiment_id, decision_id)}.gif"


def context_of(request: Request) -> AppContext:
    """The app's context (set up by its lifespan)."""
    context: AppContext = request.app.state.context
    return context


async def get_context(request: Request) -> AppContext:
    """The app's context, as a dependency."""
    return context_of(request)


ContextDep = Annotated[AppContext, Depends(get_context)]
