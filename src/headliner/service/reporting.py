"""The experiment report: counts, posterior summaries, status and snapshots per headline.

Counts cover every headline, retired ones included (their data stays).
P(best), expected loss, allocation and value remaining are over the active
headlines only: a retired headline can no longer be sent, so it is not a
candidate winner.

The per-headline posterior summaries are the decision posterior's (what the
policy acts on). The :class:`StoppingStatus` block is the stopping rule's
view, the matured cohort (see :mod:`headliner.service.state`), so that a
reader sees the numbers a declaration rests on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from headliner.core.posterior import (
    BetaPosterior,
    expected_loss,
    probability_of_best,
    value_remaining,
)
from headliner.core.stopping import StoppingRule
from headliner.service.state import ExperimentState
from headliner.storage.base import ExperimentRecord, Snapshot

CREDIBLE_LEVEL = 0.95


@dataclass(frozen=True)
class ArmReport:
    """One headline's line of the report.

    ``matured_sends`` are the sends whose outcome is final (window passed, or
    an explicit outcome) and ``matured_opens`` the counted opens among them;
    ``observed_rate`` is their ratio, the open rate without the lean of
    delayed feedback. ``pending`` sends (inside the window, no open) move
    nothing yet. P(best), expected loss and allocation are None for a
    retired headline.
    """

    arm: int
    headline: str
    active: bool
    sends: int
    opens: int
    non_opens: int
    matured_sends: int
    matured_opens: int
    pending: int
    late_opens: int
    observed_rate: float | None
    posterior_mean: float
    credible_interval: tuple[float, float]
    p_best: float | None
    expected_loss: float | None
    allocation: float | None


@dataclass(frozen=True)
class StoppingStatus:
    """Where the stopping rule stands: its matured-cohort summaries and any declaration.

    Attributes
    ----------
    champion : int
        Position of the active headline with the highest matured-cohort P(best).
    p_best : float
        The champion's P(best) under the matured-cohort posterior.
    value_remaining : float
        Scott's 95th-percentile relative value remaining, same posterior.
    min_matured_sends_per_arm : int or None
        The rule's minimum per headline; None when automatic stopping is off.
    fewest_matured_sends : int
        The smallest matured count among the active headlines (the guard's input).
    winner_declared : bool
        Whether a winner has been named, by the stopping rule or by hand.
    reason : str or None
        Why, as recorded when it was named.
    """

    champion: int
    p_best: float
    value_remaining: float
    min_matured_sends_per_arm: int | None
    fewest_matured_sends: int
    winner_declared: bool
    reason: str | None


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
    stopping_status: StoppingStatus
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
        arms.append(
            ArmReport(
                arm=arm.arm,
                headline=arm.headline,
                active=arm.active,
                sends=counts.sends,
                opens=counts.opens,
                non_opens=counts.non_opens,
                matured_sends=counts.matured,
                matured_opens=counts.matured_opens,
                pending=counts.pending,
                late_opens=counts.late_opens,
                observed_rate=counts.matured_opens / counts.matured if counts.matured else None,
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
        stopping_status=stopping_status(state, rng),
        snapshots=snapshots,
    )


def stopping_status(state: ExperimentState, rng: np.random.Generator) -> StoppingStatus:
    """The stopping rule's view of ``state``: the matured cohort over the active headlines.

    Parameters
    ----------
    state : ExperimentState
    rng : numpy.random.Generator
        Draws for value remaining (as many as the rule uses, when there is one).
    """
    cohort = state.matured_posterior()
    p_best = probability_of_best(cohort)
    champion = int(np.argmax(p_best))
    rule = state.stopping
    # Without a rule, as many draws as the default rule would take.
    n_draws = StoppingRule.n_draws if rule is None else rule.n_draws
    record = state.record
    return StoppingStatus(
        champion=int(state.active[champion]),
        p_best=float(p_best[champion]),
        value_remaining=value_remaining(cohort, rng, champion=champion, n_draws=n_draws),
        min_matured_sends_per_arm=None if rule is None else rule.min_matured_sends_per_arm,
        fewest_matured_sends=int(state.matured.min()),
        winner_declared=record.winner_arm is not None,
        reason=record.winner_reason,
    )
