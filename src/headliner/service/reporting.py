"""The experiment report: counts, posterior summaries, status and snapshots per headline.

Counts cover every headline, retired ones included (their data stays).
P(best), expected loss, allocation and value remaining are over the active
headlines only: a retired headline can no longer be sent, so it is not a
candidate winner.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from headliner.core.posterior import BetaPosterior, expected_loss, value_remaining
from headliner.core.stopping import StoppingRule
from headliner.service.state import ExperimentState
from headliner.storage.base import ExperimentRecord, Snapshot

CREDIBLE_LEVEL = 0.95


@dataclass(frozen=True)
class ArmReport:
    """One headline's line of the report.

    ``matured`` is the number of settled sends (opens plus non-opens whose
    attribution window has passed); ``pending`` sends move nothing yet.
    P(best), expected loss and allocation are None for a retired headline.
    """

    arm: int
    headline: str
    active: bool
    sends: int
    opens: int
    non_opens: int
    matured: int
    pending: int
    late_opens: int
    observed_rate: float | None
    posterior_mean: float
    credible_interval: tuple[float, float]
    p_best: float | None
    expected_loss: float | None
    allocation: float | None


@dataclass(frozen=True)
class Report:
    """An experiment's report at ``generated_at``."""

    experiment: ExperimentRecord
    status: str
    generated_at: float
    arms: list[ArmReport]
    champion: int
    value_remaining: float
    stopping: StoppingRule | None
    snapshots: list[Snapshot]

    @property
    def winner_arm(self) -> int | None:
        """The declared (or hand-picked) winner, if any."""
        return self.experiment.winner_arm


def build_report(
    state: ExperimentState,
    snapshots: list[Snapshot],
    rng: np.random.Generator,
    *,
    now: float,
) -> Report:
    """Assemble the report from a freshly refreshed state.

    Parameters
    ----------
    state : ExperimentState
    snapshots : list of Snapshot
    rng : numpy.random.Generator
        Draws for value remaining.
    now : float
    """
    record = state.record
    opens = np.array([c.opens for c in state.counts], dtype=np.float64)
    non_opens = np.array([c.non_opens for c in state.counts], dtype=np.float64)
    everyone = BetaPosterior.from_counts(opens, non_opens, record.alpha_prior, record.beta_prior)
    means = everyone.mean()
    lower, upper = everyone.credible_interval(CREDIBLE_LEVEL)

    live = state.posterior()
    p_best = state.ensure_p_best()
    loss = expected_loss(live)
    allocation = state.allocation()
    champion_index = int(np.argmax(p_best))
    remaining = value_remaining(live, rng, champion=champion_index)
    position = {int(a): i for i, a in enumerate(state.active)}

    arms: list[ArmReport] = []
    for arm, counts in zip(state.arms, state.counts, strict=True):
        i = position.get(arm.arm)
        settled = counts.settled
        arms.append(
            ArmReport(
                arm=arm.arm,
                headline=arm.headline,
                active=arm.active,
                sends=counts.sends,
                opens=counts.opens,
                non_opens=counts.non_opens,
                matured=settled,
                pending=counts.pending,
                late_opens=counts.late_opens,
                observed_rate=counts.opens / settled if settled else None,
                posterior_mean=float(means[arm.arm]),
                credible_interval=(float(lower[arm.arm]), float(upper[arm.arm])),
                p_best=None if i is None else float(p_best[i]),
                expected_loss=None if i is None else float(loss[i]),
                allocation=None if i is None else float(allocation[i]),
            )
        )
    return Report(
        experiment=record,
        status=state.status,
        generated_at=now,
        arms=arms,
        champion=int(state.active[champion_index]),
        value_remaining=remaining,
        stopping=state.stopping,
        snapshots=snapshots,
    )
