"""Arms: add a headline to a running experiment, retire one."""

from __future__ import annotations

from fastapi import APIRouter, Path, status

from headliner.service.deps import ContextDep
from headliner.service.routes import API_PREFIX, ERRORS, CheckedRoute
from headliner.service.schemas import ArmCreate, ArmPublic

router = APIRouter(
    prefix=API_PREFIX + "/experiments/{experiment_id}/arms",
    tags=["arms"],
    responses=ERRORS,
    route_class=CheckedRoute,
)


@router.post("", status_code=status.HTTP_201_CREATED)
async def add_arm(experiment_id: str, body: ArmCreate, context: ContextDep) -> ArmPublic:
    """Add a headline; it takes the next position and joins the policy at once."""
    arm = await context.run(context.service.add_arm, experiment_id, body.headline)
    return ArmPublic.of(arm)


@router.post("/{arm}/retire")
async def retire_arm(
    experiment_id: str,
    context: ContextDep,
    arm: int = Path(ge=0, description="Position of the headline"),
) -> ArmPublic:
    """Stop sending a headline; its data stays in the report."""
    retired = await context.run(context.service.retire_arm, experiment_id, arm)
    return ArmPublic.of(retired)
