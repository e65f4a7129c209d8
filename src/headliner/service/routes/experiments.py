"""Experiments: create, list, get, complete by hand, archive, report."""

from __future__ import annotations

from fastapi import APIRouter, Query, status
from starlette.concurrency import run_in_threadpool

from headliner.service.deps import ContextDep
from headliner.service.routes import API_PREFIX, ERRORS, CheckedRoute
from headliner.service.schemas import (
    ExperimentComplete,
    ExperimentCreate,
    ExperimentPublic,
    ExperimentSummary,
    ReportPublic,
)

router = APIRouter(
    prefix=API_PREFIX + "/experiments",
    tags=["experiments"],
    responses=ERRORS,
    route_class=CheckedRoute,
)


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_experiment(body: ExperimentCreate, context: ContextDep) -> ExperimentPublic:
    """Create a running experiment over two or more headlines."""
    spec = body.to_spec()
    return ExperimentPublic.of_state(await context.run(context.service.start, spec))


@router.get("")
async def list_experiments(
    context: ContextDep,
    include_archived: bool = Query(default=False, description="Also list archived experiments"),
) -> list[ExperimentSummary]:
    """Experiments, newest first."""
    records = await context.run(context.service.list_experiments, include_archived=include_archived)
    return [ExperimentSummary.of(r) for r in records]


@router.get("/{experiment_id}")
async def get_experiment(experiment_id: str, context: ContextDep) -> ExperimentPublic:
    """One experiment with its settings, headlines and status (``burn_in`` included)."""
    state = await context.run(context.service.state, experiment_id, fresh=True)
    return ExperimentPublic.of_state(state)


@router.post("/{experiment_id}/complete")
async def complete_experiment(
    experiment_id: str, body: ExperimentComplete, context: ContextDep
) -> ExperimentPublic:
    """End the experiment by hand, naming the winner; no more decisions after this."""
    service = context.service
    await context.run(service.complete, experiment_id, winner=body.winner)
    state = await context.run(service.state, experiment_id, fresh=True)
    return ExperimentPublic.of_state(state)


@router.post("/{experiment_id}/archive")
async def archive_experiment(experiment_id: str, context: ContextDep) -> ExperimentPublic:
    """Archive the experiment: hidden from lists, no more decisions, data kept."""
    service = context.service
    await context.run(service.archive, experiment_id)
    state = await context.run(service.state, experiment_id, fresh=True)
    return ExperimentPublic.of_state(state)


@router.get("/{experiment_id}/report")
async def get_report(
    experiment_id: str,
    context: ContextDep,
    snapshots: int = Query(default=1000, ge=0, le=100_000, description="Latest snapshots to list"),
) -> ReportPublic:
    """Per headline: sends, opens, matured and pending sends, posterior, P(best), loss."""
    # Always in the thread pool, whatever HEADLINER_STORE_CALLS_IN_THREADPOOL says:
    # building a report takes tens of milliseconds, which inline would stall
    # every decision waiting on this worker's event loop.
    report = await run_in_threadpool(
        context.service.report, experiment_id, snapshot_limit=snapshots
    )
    return ReportPublic.of(report)
