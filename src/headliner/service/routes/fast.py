"""The hot path without FastAPI's per-request machinery.

A decision and an open are most of the traffic. Profiling the decide+open mix
showed FastAPI's route matching and dependency solving costing about as much
CPU as the store write itself, so these two endpoints also exist as plain
Starlette routes that the service's middleware matches and runs itself,
before FastAPI's own middleware and router (their FastAPI twins answer
nothing the fast routes match). The fast routes only
parse and validate the request the way FastAPI would (same pydantic model,
same 422 body) and then call the very route functions in
:mod:`headliner.service.routes.decisions`, which stay registered for the
OpenAPI document. Errors go through the app's exception handlers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.routing import Match, Route
from starlette.types import Scope

from headliner.service.routes import API_PREFIX, path_errors
from headliner.service.routes.decisions import create_decision, record_open
from headliner.service.schemas import DecisionCreate, ErrorPublic

DECIDE_PATH = API_PREFIX + "/experiments/{experiment_id}/decisions"
OPEN_PATH = API_PREFIX + "/experiments/{experiment_id}/decisions/{decision_id}/open"
MAX_KEY_LENGTH = 255


class _NamedRoute(Route):
    """A Starlette route that, like FastAPI's, leaves itself in the scope (for metrics)."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match is Match.FULL:
            child["route"] = self
        return match, child


def _invalid(errors: Sequence[Mapping[str, Any]]) -> JSONResponse:
    return JSONResponse(ErrorPublic.of_errors(errors), status_code=422)


def _body_errors(raw: bytes, exc: ValidationError) -> list[dict[str, Any]]:
    """The errors FastAPI's twin reports for ``raw``, which failed validation as JSON.

    The strict JSON parser refuses NaN, Infinity and lone surrogates before it
    knows their field; the lenient one the twin uses lets them through to the
    model, whose errors name the field. Only a refused body pays for the second parse.
    """
    errors: list[dict[str, Any]] = [dict(e) for e in exc.errors(include_url=False)]
    if any(e["type"] == "json_invalid" for e in errors):
        try:
            DecisionCreate.model_validate(json.loads(raw))
        except ValidationError as lenient:
            errors = [dict(e) for e in lenient.errors(include_url=False)]
        except (ValueError, RecursionError):  # not JSON (or not UTF-8): the strict errors stand
            pass
    for error in errors:
        error["loc"] = ("body", *error["loc"])
    return errors


async def fast_decide(request: Request) -> Response:
    """``POST /v1/experiments/{id}/decisions``, parsed by hand."""
    refused = path_errors(request.path_params)
    if refused:
        return _invalid(refused)
    raw = await request.body()
    body: DecisionCreate | None = None
    if raw.strip():
        try:
            body = DecisionCreate.model_validate_json(raw)
        except ValidationError as exc:
            return _invalid(_body_errors(raw, exc))
    key = request.headers.get("idempotency-key")
    if key is not None and not 1 <= len(key) <= MAX_KEY_LENGTH:
        return _invalid(
            [
                {
                    "type": "string_length",
                    "loc": ["header", "idempotency-key"],
                    "msg": f"String should have 1 to {MAX_KEY_LENGTH} characters",
                    "input": key[:40],
                }
            ]
        )
    return await create_decision(
        request.path_params["experiment_id"], request, body=body, idempotency_key=key
    )


async def fast_open(request: Request) -> Response:
    """``POST /v1/experiments/{id}/decisions/{decision_id}/open``."""
    params = request.path_params
    refused = path_errors(params)
    if refused:
        return _invalid(refused)
    return await record_open(params["experiment_id"], params["decision_id"], request)


def routes() -> list[Route]:
    """The fast routes, for :class:`~headliner.service.middleware.ServiceMiddleware` to run."""
    return [
        _NamedRoute(DECIDE_PATH, fast_decide, methods=["POST"], include_in_schema=False),
        _NamedRoute(OPEN_PATH, fast_open, methods=["POST"], include_in_schema=False),
    ]
