"""The store's building blocks: new records, id generation and error messages.

Kept apart from :mod:`headliner.storage.sql` so that records are made and
errors worded in one place, whichever database the store runs on.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping, Sequence

from headliner.core.errors import ConflictError, InvalidParameterError, NotFoundError
from headliner.storage.base import (
    DecisionRecord,
    ExperimentRecord,
    ExperimentSpec,
    ExperimentStatus,
    WaveRecord,
)


def new_id() -> str:
    """A fresh random identifier (32 hex digits)."""
    return uuid.uuid4().hex


def new_experiment(spec: ExperimentSpec, now: float) -> ExperimentRecord:
    """The RUNNING record of a new experiment; ConflictError for repeated headlines."""
    if len(set(spec.headlines)) != len(spec.headlines):
        raise ConflictError("Headlines of an experiment must be distinct.")
    return ExperimentRecord(
        id=new_id(),
        name=spec.name,
        status=ExperimentStatus.RUNNING,
        policy=spec.policy,
        policy_settings=dict(spec.policy_settings),
        alpha_prior=float(spec.alpha_prior),
        beta_prior=float(spec.beta_prior),
        attribution_window_seconds=float(spec.attribution_window_seconds),
        burn_in_per_arm=int(spec.burn_in_per_arm),
        floor=float(spec.floor),
        winner_exploration=float(spec.winner_exploration),
        stopping=dict(spec.stopping),
        winner_arm=None,
        created_at=float(now),
        completed_at=None,
        winner_reason=None,
        burn_in_share=float(spec.burn_in_share),
        delay_prior={str(k): float(v) for k, v in spec.delay_prior.items()},
        plan=None if spec.plan is None else dict(spec.plan),
        kpi=spec.kpi,
    )


def new_decision(
    experiment_id: str,
    arm: int,
    propensity: float,
    now: float,
    recipient_id: str | None,
    idempotency_key: str | None,
) -> DecisionRecord:
    """A new decision, pending (no outcome, no open)."""
    return DecisionRecord(
        id=new_id(),
        experiment_id=experiment_id,
        arm=arm,
        propensity=float(propensity),
        recipient_id=recipient_id,
        idempotency_key=idempotency_key,
        created_at=float(now),
        outcome=None,
        opened_at=None,
        late=False,
    )


def new_wave(experiment_id: str, arm_to_sends: Mapping[int, int], now: float) -> WaveRecord:
    """A new wave, all of its sends pending, arms in position order."""
    sends = {int(arm): int(n) for arm, n in sorted(arm_to_sends.items())}
    return WaveRecord(
        id=new_id(),
        experiment_id=experiment_id,
        created_at=float(now),
        arm_to_sends=sends,
        arm_to_opens=dict.fromkeys(sends, 0),
        arm_to_late_opens=dict.fromkeys(sends, 0),
        reported_at=None,
    )


def check_wave_totals(
    wave_id: str, arm_to_sends: Mapping[int, int], arm_to_total_opens: Mapping[int, int]
) -> None:
    """ConflictError if a reported total exceeds the arm's sends in the wave."""
    for arm, total in sorted(arm_to_total_opens.items()):
        sends = arm_to_sends.get(arm, 0)
        if total > sends:
            raise ConflictError(
                f"Wave {wave_id!r}: {total} opens reported for arm {arm}, which had {sends} sends."
            )


def wave_total_lowered(
    wave_id: str, arm: int, headline: str | None, total: int, stored: int
) -> ConflictError:
    """The error of a report whose running total of an arm is below the stored one."""
    return ConflictError(
        f"Wave {wave_id!r}: {total} opens reported for headline {headline!r} (#{arm}), "
        f"below the running total of {stored} already stored. Totals never go down; "
        "nothing of this report was stored."
    )


def age_edges(edges: Sequence[float], window_seconds: float) -> tuple[float, ...]:
    """The bin edges of ``pending_sends`` and ``open_delays`` as a tuple of floats.

    InvalidParameterError unless there are at least two, strictly increasing,
    from 0 to ``window_seconds``. A last edge within rounding of the window
    (relative 1e-9) is replaced by the window itself, so that "at least the
    window old" and "in the last bin" agree exactly.
    """
    values = tuple(float(edge) for edge in edges)
    window = float(window_seconds)
    if (
        len(values) < 2
        or not all(math.isfinite(value) for value in values)
        or values[0] != 0.0
        or not math.isclose(values[-1], window, rel_tol=1e-9)
        or any(b <= a for a, b in zip(values, values[1:], strict=False))
    ):
        shown = values if len(values) <= 6 else (*values[:3], "...", *values[-2:])
        raise InvalidParameterError(
            "age_edges must rise strictly from 0 to the attribution window "
            f"({window:g} s). Got {shown} instead."
        )
    return (*values[:-1], window)


# --- errors -----------------------------------------------------------------------
def experiment_not_found(experiment_id: str) -> NotFoundError:
    return NotFoundError(f"Experiment {experiment_id!r} not found.")


def arm_not_found(experiment_id: str, arm: int) -> NotFoundError:
    return NotFoundError(f"Arm {arm} not found in experiment {experiment_id!r}.")


def decision_not_found(decision_id: str) -> NotFoundError:
    return NotFoundError(f"Decision {decision_id!r} not found.")


def unknown_cursor(experiment_id: str, after: str) -> InvalidParameterError:
    return InvalidParameterError(
        f"after must be the id of a decision of experiment {experiment_id!r}; {after!r} is none.",
        parameter="after",
    )


def wave_not_found(experiment_id: str, wave_id: str) -> NotFoundError:
    return NotFoundError(f"Wave {wave_id!r} not found in experiment {experiment_id!r}.")


def api_key_not_found(key_id: str) -> NotFoundError:
    return NotFoundError(f"API key {key_id!r} not found.")


def foreign_decision(experiment_id: str, decision_id: str) -> ConflictError:
    return ConflictError(
        f"Decision {decision_id!r} belongs to another experiment, not {experiment_id!r}."
    )


def status_conflict(
    experiment_id: str, current: ExperimentStatus, status: ExperimentStatus
) -> ConflictError:
    return ConflictError(
        f"Experiment {experiment_id!r} is {current.value}; cannot move it to {status.value}."
    )


def not_live(experiment_id: str, status: ExperimentStatus, what: str) -> ConflictError:
    return ConflictError(
        f"Experiment {experiment_id!r} is {status.value}: it makes no more {what}."
    )


def headline_exists(experiment_id: str, headline: str) -> ConflictError:
    return ConflictError(f"Headline {headline!r} already exists in experiment {experiment_id!r}.")


def last_active_arm(experiment_id: str, arm: int) -> ConflictError:
    return ConflictError(f"Arm {arm} is the last active arm of experiment {experiment_id!r}.")


def outcome_conflict(decision_id: str, stored: int, reward: int) -> ConflictError:
    return ConflictError(f"Decision {decision_id!r} already has outcome {stored}; got {reward}.")


def api_key_exists() -> ConflictError:
    return ConflictError("An API key with this secret already exists.")
