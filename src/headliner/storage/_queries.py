"""Row-to-record converters and the aggregation queries of the SQL store."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row

from headliner.storage.base import (
    ApiKeyRecord,
    ArmRecord,
    DecisionRecord,
    ExperimentRecord,
    ExperimentStatus,
)
from headliner.storage.schema import decisions, wave_arms, waves


# --- row -> record ---------------------------------------------------------------
# float() on every Double column: SQLite hands back integral REALs as ints from
# RETURNING clauses (e.g. 5 for 5.0), and records promise floats.
def opt_float(value: float | None) -> float | None:
    return None if value is None else float(value)


def experiment_record(row: Row[Any]) -> ExperimentRecord:
    return ExperimentRecord(
        id=row.id,
        name=row.name,
        status=ExperimentStatus(row.status),
        policy=row.policy,
        policy_settings=dict(row.policy_settings),
        alpha_prior=float(row.alpha_prior),
        beta_prior=float(row.beta_prior),
        attribution_window_seconds=float(row.attribution_window_seconds),
        burn_in_per_arm=row.burn_in_per_arm,
        floor=float(row.floor),
        winner_exploration=float(row.winner_exploration),
        stopping=dict(row.stopping),
        winner_arm=row.winner_arm,
        created_at=float(row.created_at),
        completed_at=opt_float(row.completed_at),
    )


def arm_record(row: Row[Any]) -> ArmRecord:
    return ArmRecord(
        row.experiment_id, row.arm, row.headline, float(row.created_at), opt_float(row.retired_at)
    )


def decision_record(row: Row[Any]) -> DecisionRecord:
    return DecisionRecord(
        id=row.id,
        experiment_id=row.experiment_id,
        arm=row.arm,
        propensity=float(row.propensity),
        recipient_id=row.recipient_id,
        idempotency_key=row.idempotency_key,
        created_at=float(row.created_at),
        outcome=row.outcome,
        opened_at=opt_float(row.opened_at),
        late=bool(row.late),
    )


def api_key_record(row: Row[Any]) -> ApiKeyRecord:
    return ApiKeyRecord(row.id, row.name, float(row.created_at), opt_float(row.revoked_at))


def arm_map(values: Mapping[str, float]) -> dict[int, float]:
    return {int(arm): float(value) for arm, value in values.items()}


# --- aggregation (the delayed-feedback rule of headliner.storage.base) ----------------
# A send is matured once created_at <= cutoff (cutoff = now - window), the same
# comparison InMemoryStore makes, so both stores agree at the boundary.
def decision_counts(experiment_id: str, cutoff: float) -> sa.Select[Any]:
    """Per arm: sends, opens, non-opens, late opens of an experiment's decisions."""
    d = decisions.c
    matured_silent = sa.and_(d.outcome.is_(None), d.created_at <= cutoff)
    return (
        sa.select(
            d.arm,
            sa.func.count().label("sends"),
            sa.func.sum(sa.case((d.outcome == 1, 1), else_=0)).label("opens"),
            sa.func.sum(sa.case((d.outcome == 0, 1), (matured_silent, 1), else_=0)).label(
                "non_opens"
            ),
            sa.func.sum(sa.case((d.late, 1), else_=0)).label("late_opens"),
        )
        .where(d.experiment_id == experiment_id)
        .group_by(d.arm)
    )


def wave_counts(experiment_id: str, cutoff: float) -> sa.Select[Any]:
    """Per arm: sends, opens, non-opens, late opens of an experiment's waves."""
    w = wave_arms.c
    matured = waves.c.created_at <= cutoff
    return (
        sa.select(
            w.arm,
            sa.func.sum(w.sends).label("sends"),
            sa.func.sum(w.opens).label("opens"),
            sa.func.sum(sa.case((matured, w.sends - w.opens), else_=0)).label("non_opens"),
            sa.func.sum(w.late_opens).label("late_opens"),
        )
        .join(waves, waves.c.id == w.wave_id)
        .where(waves.c.experiment_id == experiment_id)
        .group_by(w.arm)
    )
