"""Plans: will a bandit pay off for this campaign, and when will it know? (before any send)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from headliner.core.validation import fail
from headliner.service.deps import ContextDep
from headliner.service.experiments import REQUEST_CONSTRAINTS
from headliner.service.routes import API_PREFIX, ERRORS, CheckedRoute
from headliner.service.schemas import PlanPublic, PlanRequest
from headliner.sim.plan import plan_campaign

router = APIRouter(
    prefix=API_PREFIX + "/plans", tags=["plans"], responses=ERRORS, route_class=CheckedRoute
)


def _plan(body: PlanRequest) -> dict[str, Any]:
    spec = body.spec()
    steps = len(spec.build_campaign().step_sends())
    limit = REQUEST_CONSTRAINTS["plan_steps"]
    if limit.high is not None and steps > limit.high:
        # The simulation's cost grows with its steps; the CLI plans any campaign.
        raise fail("waves", "Plan", f"at most {limit.high:.0f} waves or refreshes", steps)
    # One thread: the other cores serve decisions.
    plan = plan_campaign(spec, recommend=body.recommend, n_threads=1)
    return plan.to_document()


@router.post("")
async def create_plan(body: PlanRequest, context: ContextDep) -> PlanPublic:
    """Simulate the campaign as the service would run it, many times, before the first send.

    How long until a winner is declared, how sure the pick is, how many
    extra opens against an even split and against an A/B test then the
    winner, and a verdict in one sentence. Create the experiment with the
    plan (``POST /v1/experiments`` with ``plan``, or ``headliner experiments
    create --from`` the plan's file) to run what was planned.
    """
    # In the thread pool: a plan takes up to seconds of CPU, which inline would stall
    # every decision waiting on this worker's event loop.
    return PlanPublic.model_validate(await run_in_threadpool(_plan, body))
