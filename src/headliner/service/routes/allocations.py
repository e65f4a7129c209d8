"""Waves: split the next N sends over the headlines; report their opens as running totals."""

from __future__ import annotations

from fastapi import APIRouter, status

from headliner.service.deps import ContextDep
from headliner.service.routes import API_PREFIX, ERRORS, CheckedRoute
from headliner.service.schemas import (
    AllocationCreate,
    ErrorPublic,
    WaveOpensCreate,
    WavePublic,
)

router = APIRouter(
    prefix=API_PREFIX + "/experiments/{experiment_id}/allocations",
    tags=["allocations"],
    responses=ERRORS,
    route_class=CheckedRoute,
)


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_allocation(
    experiment_id: str, body: AllocationCreate, context: ContextDep
) -> WavePublic:
    """Split a wave of ``sends`` by probability matching (burn-in and floor applied).

    The sends are recorded as pending until their opens are reported or the
    attribution window passes.
    """
    result = await context.run(context.service.allocate, experiment_id, body.sends)
    context.metrics.wave_sends.inc(body.sends)
    return WavePublic.of(result)


@router.get("/{wave_id}")
async def get_allocation(experiment_id: str, wave_id: str, context: ContextDep) -> WavePublic:
    """A wave with its sends, counted opens and late opens per headline."""
    return WavePublic.of(await context.run(context.service.get_wave, experiment_id, wave_id))


@router.post(
    "/{wave_id}/opens",
    responses={
        409: {
            "model": ErrorPublic,
            "description": "A total below the stored one (the message names the headline "
            "and the stored total) or above the headline's sends: nothing stored",
        }
    },
)
async def record_wave_opens(
    experiment_id: str, wave_id: str, body: WaveOpensCreate, context: ContextDep
) -> WavePublic:
    """Report running totals of opens per headline; a total never goes down.

    Resending the same totals changes nothing, so a retry is safe. A total
    below the stored one (800 after 812) is refused with 409, whose message
    names the headline and the stored total, and nothing of the request is
    stored, even the totals of other headlines that rose: all or nothing.
    Increases after the attribution window are stored as late opens.
    """
    result = await context.run(
        context.service.record_wave_opens, experiment_id, wave_id, body.totals()
    )
    return WavePublic.of(result)
