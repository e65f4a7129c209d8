"""Operations: liveness, readiness and Prometheus metrics (public, no API key)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Response, status
from fastapi.responses import JSONResponse

from headliner.core.errors import StoreUnavailableError
from headliner.service.deps import ContextDep
from headliner.service.schemas import ErrorPublic, HealthPublic

router = APIRouter(tags=["operations"])
logger = logging.getLogger("headliner.service")


@router.get("/health")
async def health() -> HealthPublic:
    """The process is up."""
    return HealthPublic()


@router.get(
    "/ready",
    responses={503: {"model": ErrorPublic, "description": "Database unreachable"}},
)
async def ready(context: ContextDep) -> Response:
    """The database answers (``store.ping()``); 503 otherwise."""
    try:
        await context.run(context.store.ping)
    except Exception as exc:  # any driver error means "not ready", whatever its class
        logger.warning("readiness check failed", extra={"error": type(exc).__name__})
        retry_after = getattr(exc, "retry_after", StoreUnavailableError.retry_after)
        return JSONResponse(
            ErrorPublic.body("The database is not reachable.", "unavailable"),
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(retry_after)},
        )
    return JSONResponse({"status": "ready"})


@router.get("/metrics", response_class=Response)
async def metrics(context: ContextDep) -> Response:
    """Prometheus text exposition: decisions, opens, waves, request latency."""
    body, content_type = context.metrics.exposition()
    return Response(content=body, media_type=content_type)
