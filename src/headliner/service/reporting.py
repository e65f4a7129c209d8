"""The experiment report: counts, delay-aware estimates, status and snapshots per headline.

Counts cover every headline, retired ones included (their data stays).
P(best), expected loss and allocation are over the active headlines only: a
retired headline can no longer be sent, so it is not a candidate winner.

Each headline's estimate is the delay-aware one (:mod:`headliner.service.evidence`):
its opens against its *effective* sends, the unopened sends still inside their
window counted as the share of a trial that their opens would have reached.
Its 95% interval also carries what the data cannot tell yet, the share of
opens still to come after the oldest age seen. The matured cohort (sends whose
window has passed, and their opens) is kept beside it: a plain ratio with no
model in it, but days late.

"Opens" in the counts are the successes of the experiment's KPI (opens,
clicks or conversions). Beside them the report shows the open *events* that
were stored (the tracking pixel's, and the opens an email service provider
reported) and how many of them a machine made, such as Apple Mail Privacy
Protection's proxy fetching every pixel on delivery: machine opens are stored
and never counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from headliner.core.delay import DelayPrior
from headliner.core.posterior import expected_loss
from headliner.core.stopping import StoppingRule
from headliner.service.evidence import rate_estimates
from headliner.service.state import ExperimentState
from headliner.sim.engine import kernels
from headliner.storage.base import EventCounts, ExperimentRecord, Snapshot


@dataclass(frozen=True)
class ArmReport:
    """One headline's line of the report.

    ``effective_sends`` are the fully observed sends that carry the same
    information as the headline's data (opens, final non-opens and pending
    sends weighted by the delay curve). ``posterior_mean`` and
    ``credible_interval`` are the delay-aware estimate of its open rate, the
    mean and 95% interval of a Beta with ``posterior_parameters`` (alpha, beta).
    ``matured_sends`` are the sends whose outcome is final and
    ``matured_opens`` the opens among them; ``observed_rate`` is their ratio.
    ``pending`` sends are inside their window without an open. P(best),
    expected loss and allocation are None for a retired headline.
    ``open_events`` are the stored open events of its sends, counted or
    not, and ``machine_opens`` those a machine made.
    """

    arm: int
    headline: str
    active: bool
    sends: int
    opens: int
    non_opens: int
    effective_sends: float
    matured_sends: int
    matured_opens: int
    pending: int
    late_opens: int
    observed_rate: float | None
    posterior_mean: float
    credible_interval: tuple[float, float]
    posterior_parameters: tuple[float, float]
    p_best: float | None
    expected_loss: float | None
    allocation: float | None
    open_events: int
    machine_opens: int


@dataclass(frozen=True)
class DelaySummary:
    """The open-delay curve behind the estimates.

    Attributes
    ----------
    median_seconds, p90_seconds : float
        Half (nine tenths) of a send's eventual opens arrive within this time.
    opens_seen : float
        Opens with timing data behind the curve.
    horizon_seconds : float
        Oldest age at which opens were looked at: beyond it the prior curve
        says how many opens are still to come.
    prior : DelayPrior
    """

    median_seconds: float
    p90_seconds: float
    opens_seen: float
    horizon_seconds: float
    prior: DelayPrior


@dataclass(frozen=True)
class StoppingStatus:
    """Where the stopping rule stands, on the delay-aware posterior.

    Attributes
    ----------
    champion : int
        Position of the active headline with the highest P(best).
    p_best : float
        The champion's P(best).
    p_within : float
        Probability that no headline beats the champion by more than the
        value-remaining threshold (1% by default).
    value_remaining : float
        Scott's 95th-percentile relative value remaining of the champion.
    min_opens : int or None
        The rule's minimum of counted opens; None when automatic stopping is off.
    opens : int
        Counted opens of the active headlines.
    in_burn_in : bool
        The rule waits for burn-in to end.
    winner_declared : bool
        Whether a winner has been named, by the stopping rule or by hand.
    reason : str or None
        Why, as recorded when it was named.
    """

    champion: int
    p_best: float
    p_within: float
    value_remaining: float
    min_opens: int | None
    opens: int
    in_burn_in: bool
    winner_declared: bool
    reason: str | None


@dataclass(frozen=True)
class Report:
    """An experiment's report at ``generated_at``.

    ``champion`` and ``value_remaining`` repeat the stopping status's, for a
    reader who wants the headline figures first. ``machine_open_share`` is
    the share of machine opens among the stored open events of every
    headline (None when there are none).
    """

    experiment: ExperimentRecord
    status: str
    generated_at: float
    arms: list[ArmReport]
    champion: int
    value_remaining: float
    allocation_reason: str
    delay: DelaySummary
    stopping: StoppingRule | None
    stopping_status: StoppingStatus
    snapshots: list[Snapshot]
    machine_open_share: float | None = None

    @property
    def winner_arm(self) -> int | None:
        """The declared (or hand-picked) winner, if any."""
        return self.experiment.winner_arm


def build_report(
    state: ExperimentState,
    snapshots: list[Snapshot],
    *,
    now: float,
    events: Sequence[EventCounts] = (),
) -> Report:
    """Assemble the report from a freshly refreshed state and the stored events' counts."""
    record = state.record
    open_events = {c.arm: c for c in events if c.type == "open"}
    evidence = state.evidence
    estimates = rate_estimates(evidence, state.counts, record.alpha_prior, record.beta_prior)
    a, b = estimates.alpha, estimates.beta
    mean, lower, upper = estimates.mean, estimates.lower, estimates.upper
    live = state.posterior()
    loss = expected_loss(live)
    position = {int(arm): i for i, arm in enumerate(state.active)}
    effective = evidence.effective_sends

    arms: list[ArmReport] = []
    for arm, counts in zip(state.arms, state.counts, strict=True):
        i = position.get(arm.arm)
        opened = open_events.get(arm.arm)
        arms.append(
            ArmReport(
                arm=arm.arm,
                headline=arm.headline,
                active=arm.active,
                sends=counts.sends,
                opens=counts.opens,
                non_opens=counts.non_opens,
                effective_sends=float(effective[arm.arm]),
                matured_sends=counts.matured,
                matured_opens=counts.matured_opens,
                pending=counts.pending,
                late_opens=counts.late_opens,
                observed_rate=counts.matured_opens / counts.matured if counts.matured else None,
                posterior_mean=float(mean[arm.arm]),
                credible_interval=(float(lower[arm.arm]), float(upper[arm.arm])),
                posterior_parameters=(float(a[arm.arm]), float(b[arm.arm])),
                p_best=None if i is None else float(state.p_best[i]),
                expected_loss=None if i is None else float(loss[i]),
                allocation=None if i is None else float(state.allocation[i]),
                open_events=0 if opened is None else opened.events,
                machine_opens=0 if opened is None else opened.machine,
            )
        )
    status = stopping_status(state)
    n_open_events = sum(c.events for c in open_events.values())
    n_machine_opens = sum(c.machine for c in open_events.values())
    curve = evidence.delay
    return Report(
        experiment=record,
        status=state.status,
        generated_at=now,
        arms=arms,
        champion=status.champion,
        value_remaining=status.value_remaining,
        allocation_reason=state.allocation_reason(),
        delay=DelaySummary(
            median_seconds=curve.quantile(0.5),
            p90_seconds=curve.quantile(0.9),
            opens_seen=curve.opens_seen,
            horizon_seconds=curve.horizon_seconds,
            prior=curve.prior,
        ),
        stopping=state.stopping,
        stopping_status=status,
        snapshots=snapshots,
        machine_open_share=n_machine_opens / n_open_events if n_open_events else None,
    )


def stopping_status(state: ExperimentState) -> StoppingStatus:
    """The stopping rule's view of ``state`` over the active headlines.

    The rule judges the headlines under its own posterior
    (:func:`headliner.core.stopping.stopping_posterior`: the effective counts
    with a prior pooled across headlines), so its P(best) can be less sure
    than the allocation's early on.
    """
    rule = state.stopping if state.stopping is not None else StoppingRule()
    record = state.record
    n = state.n_active
    alpha, beta = np.empty(n), np.empty(n)
    kernels.stopping_posterior(
        rule.params(),
        state.effective_opens,
        state.effective_non_opens,
        record.alpha_prior,
        record.beta_prior,
        alpha,
        beta,
    )
    p_best, within = np.empty(n), np.empty(n)
    kernels.declared_winner(
        rule.params(),
        state.effective_opens,
        state.effective_non_opens,
        record.alpha_prior,
        record.beta_prior,
        0.0,
        False,
        p_best,
        within,
    )
    champion = int(np.argmax(p_best))
    remaining = kernels.value_remaining_at(
        alpha, beta, champion, rule.value_remaining_quantile, np.empty(n)
    )
    return StoppingStatus(
        champion=int(state.active[champion]),
        p_best=float(p_best[champion]),
        p_within=float(within[champion]),
        value_remaining=float(remaining),
        min_opens=None if state.stopping is None else state.stopping.min_opens,
        opens=int(state.opens.sum()),
        in_burn_in=state.in_burn_in,
        winner_declared=record.winner_arm is not None,
        reason=record.winner_reason,
    )
