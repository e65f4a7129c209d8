"""Per-send decisions and their outcomes: the hot path.

The decision and open routes return a ready-made ``JSONResponse`` instead of
a model for FastAPI to validate and serialize again: the ``response_model`` in
the decorator still documents the body, and skipping the second validation
saves tens of microseconds per request. They also take the
``Request`` instead of a dependency (see :mod:`headliner.service.deps`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Header, Path, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from headliner.core.errors import ConflictError, InvalidParameterError
from headliner.service.deps import AppContext, ContextDep, context_of
from headliner.service.experiments import EventResult, KeyReusedError
from headliner.service.routes import API_PREFIX, ERRORS, CheckedRoute
from headliner.service.schemas import (
    DecisionCreate,
    DecisionListPublic,
    DecisionPublic,
    ErrorPublic,
    EventCreate,
    EventPublic,
    OpenPublic,
    OutcomeCreate,
    OutcomePublic,
    unsafe_text,
)
from headliner.storage.base import OpenResult

router = APIRouter(
    prefix=API_PREFIX + "/experiments/{experiment_id}/decisions",
    tags=["decisions"],
    responses=ERRORS,
    route_class=CheckedRoute,
)


def _unsafe(where: str, name: str) -> RequestValidationError:
    return RequestValidationError(
        [
            {
                "type": "string_unsafe",
                "loc": (where, name),
                "msg": "String must not contain control characters (such as NUL)",
            }
        ]
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=DecisionPublic,
    responses={
        200: {"model": DecisionPublic, "description": "Replay of an idempotency key"},
        409: {
            "model": ErrorPublic,
            "description": "The experiment has ended, or the idempotency key was already "
            "used for a different request",
        },
    },
)
async def create_decision(
    experiment_id: str,
    request: Request,
    body: Annotated[DecisionCreate | None, Body()] = None,
    idempotency_key: Annotated[
        str | None,
        Header(min_length=1, max_length=255, description="Same as the body field"),
    ] = None,
) -> Response:
    """Choose the headline for one send; the response says its propensity.

    The propensity is the probability the policy had of choosing this
    headline at this moment (burn-in and floor included), for off-policy
    evaluation later. A retried request with the same idempotency key gets
    the stored decision back (200 instead of 201).

    The key follows Stripe's contract: the same key with a different request
    (another ``recipient_id``) is refused with 409, its error naming where
    the key came from (``header``/``idempotency-key`` or
    ``body``/``idempotency_key``), and nothing is stored. 409, not 422: the
    request is valid in itself (it would succeed under a fresh key) and
    clashes only with what is stored, which is what 409 means throughout this
    API; a 422 here always asks the caller to fix the request itself.
    """
    context = context_of(request)
    recipient_id = body.recipient_id if body is not None else None
    key = body.idempotency_key if body is not None else None
    if idempotency_key is not None:
        if unsafe_text(idempotency_key):
            raise _unsafe("header", "idempotency-key")
        if key is not None and key != idempotency_key:
            raise InvalidParameterError(
                "The Idempotency-Key header and the body's idempotency_key differ."
            )
        key = idempotency_key
    try:
        if context.writes is not None:
            result = await context.service.decide_async(
                context.writes, experiment_id, recipient_id=recipient_id, idempotency_key=key
            )
        else:
            result = await context.run(
                context.service.decide,
                experiment_id,
                recipient_id=recipient_id,
                idempotency_key=key,
            )
    except KeyReusedError as exc:
        where = ("header", "idempotency-key") if idempotency_key else ("body", "idempotency_key")
        raise ConflictError(str(exc), loc=where) from None
    if not result.replayed:
        context.metrics.decisions.inc()
    d = result.decision
    return JSONResponse(
        DecisionPublic.payload(result, context.open_pixel(d.experiment_id, d.id)),
        status_code=status.HTTP_200_OK if result.replayed else status.HTTP_201_CREATED,
    )


@router.get("", response_model=DecisionListPublic)
async def list_decisions(
    experiment_id: str,
    context: ContextDep,
    after: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=64,
            description="The `next_after` of the previous page: the id of its last decision",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Decisions per page")] = 100,
) -> Response:
    """The decision log, oldest first (equal times by id), a page at a time.

    Each decision comes with what became of its send (``opened_at``,
    ``outcome``, ``late``). Follow ``next_after`` until it is null to read
    the whole log; ``headliner experiments decisions export`` does that to a file.
    """
    if after is not None and unsafe_text(after):
        raise _unsafe("query", "after")
    try:
        page = await context.run(
            context.service.list_decisions, experiment_id, after=after, limit=limit
        )
    except InvalidParameterError as exc:
        if exc.parameter != "after":
            raise
        raise RequestValidationError(
            [{"type": "value_error", "loc": ("query", "after"), "msg": str(exc)}]
        ) from None
    return JSONResponse(DecisionListPublic.payload(page))


SendKey = Annotated[
    str,
    Path(
        min_length=1,
        max_length=255,
        description="The idempotency key the decision was made with (the caller's send key, "
        "such as the email service provider's message id); percent-encoded",
    ),
]


@router.get("/by-key/{idempotency_key:path}")
async def get_decision_by_key(
    experiment_id: str, idempotency_key: SendKey, context: ContextDep
) -> DecisionPublic:
    """The decision made with this idempotency key (404 if none).

    For events reported by the caller's send key, such as an email service
    provider's webhooks keyed by its message id, when that id was the key.
    """
    result = await context.run(context.service.find_decision, experiment_id, idempotency_key)
    d = result.decision
    return DecisionPublic.model_validate(
        DecisionPublic.payload(result, context.open_pixel(d.experiment_id, d.id))
    )


@router.post("/by-key/{idempotency_key:path}/open", response_model=OpenPublic)
async def record_open_by_key(
    experiment_id: str, idempotency_key: SendKey, context: ContextDep
) -> Response:
    """Report a success of the KPI (an "open") of the decision made with this key (404 if none).

    The same as ``POST .../decisions/{decision_id}/open`` once the decision
    is found: idempotent, and ``result`` says counted, duplicate or late.
    """
    decision_id, result = await context.run(
        context.service.record_open_by_key, experiment_id, idempotency_key
    )
    context.metrics.opens.labels(result.value).inc()
    return _open_response(decision_id, result)


@router.post(
    "/by-key/{idempotency_key:path}/events",
    response_model=EventPublic,
    status_code=status.HTTP_201_CREATED,
)
async def record_event_by_key(
    experiment_id: str, idempotency_key: SendKey, body: EventCreate, context: ContextDep
) -> Response:
    """Report an event of the decision made with this idempotency key (404 if none).

    The same as ``POST .../decisions/{decision_id}/events`` once the decision
    is found: for an email service provider's webhooks keyed by its message id.
    """
    result = await context.run(
        context.service.record_event_by_key,
        experiment_id,
        idempotency_key,
        body.type,
        machine=body.machine,
        user_agent=body.user_agent,
        proxy_address=body.proxy_address,
    )
    return _event_response(context, result)


@router.get("/{decision_id}")
async def get_decision(experiment_id: str, decision_id: str, context: ContextDep) -> DecisionPublic:
    """A logged decision (arm, propensity, time, recipient)."""
    result = await context.run(context.service.get_decision, experiment_id, decision_id)
    d = result.decision
    return DecisionPublic.model_validate(
        DecisionPublic.payload(result, context.open_pixel(d.experiment_id, d.id))
    )


@router.post("/{decision_id}/open", response_model=OpenPublic)
async def record_open(experiment_id: str, decision_id: str, request: Request) -> Response:
    """Report a success of the experiment's KPI. Idempotent: a send never counts twice.

    "Open" means the KPI's event, whatever the KPI is: in a click experiment,
    report a click here. Nothing else is stored (``.../events`` stores the
    event with what the email service provider knew, such as a machine open).

    ``result`` is ``counted`` (inside the attribution window), ``duplicate``
    (already opened or given an outcome: nothing changed) or ``late`` (after
    the window: stored and reported, not counted).
    """
    context = context_of(request)
    if context.writes is not None:
        result = await context.service.record_open_async(context.writes, experiment_id, decision_id)
    else:
        result = await context.run(context.service.record_open, experiment_id, decision_id)
    context.metrics.opens.labels(result.value).inc()
    return _open_response(decision_id, result)


@router.post(
    "/{decision_id}/events", response_model=EventPublic, status_code=status.HTTP_201_CREATED
)
async def record_event(
    experiment_id: str, decision_id: str, body: EventCreate, context: ContextDep
) -> Response:
    """Report an event of a send (an open, a click, a conversion) with what the sender knew.

    Every event is stored (201), a repeated one too. It counts toward the
    experiment's KPI only when its ``type`` is the KPI's (opens: ``open``,
    clicks: ``click``, conversions: ``conversion``) and ``machine`` is false;
    it is then recorded as ``.../open`` records it, so a send still counts
    once, and after the attribution window it is late. The response says
    whether it counted and why not ("machine open: stored, not counted").
    """
    result = await context.run(
        context.service.record_event,
        experiment_id,
        decision_id,
        body.type,
        machine=body.machine,
        user_agent=body.user_agent,
        proxy_address=body.proxy_address,
    )
    return _event_response(context, result)


def _event_response(context: AppContext, result: EventResult) -> JSONResponse:
    context.metrics.count_event(result)
    return JSONResponse(EventPublic.payload(result), status_code=status.HTTP_201_CREATED)


def _open_response(decision_id: str, result: OpenResult) -> JSONResponse:
    return JSONResponse(
        {
            "decision_id": decision_id,
            "result": result.value,
            "counted": result is OpenResult.COUNTED,
        }
    )


@router.post("/{decision_id}/outcome")
async def record_outcome(
    experiment_id: str, decision_id: str, body: OutcomeCreate, context: ContextDep
) -> OutcomePublic:
    """Set an explicit 0/1 outcome of the experiment's KPI (when it is known at once).

    A 1 is a success of the KPI, as ``.../open`` records one (called an open
    whatever the KPI is); a 0 counts as a non-open at once, without waiting
    for the window.
    Repeating the same outcome changes nothing (``recorded`` false); a
    different one is a conflict.
    """
    recorded = await context.run(
        context.service.record_outcome, experiment_id, decision_id, body.reward
    )
    if recorded:
        context.metrics.outcomes.labels(str(body.reward)).inc()
    return OutcomePublic(decision_id=decision_id, reward=body.reward, recorded=recorded)
