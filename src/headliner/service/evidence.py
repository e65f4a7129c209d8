"""What an experiment's data say, with delayed opens: the delay curve and effective counts.

The store hands over three things at time ``now``: the counts per headline
(:class:`~headliner.storage.base.ArmCounts`), the sends still inside their
window without an open (:class:`~headliner.storage.base.PendingSends`) and the
timing of the opens seen (:class:`~headliner.storage.base.OpenDelays`).
:func:`gather_evidence` turns them into the delay curve estimated from the
experiment's own opens and into each headline's effective opens and
non-opens (:mod:`headliner.core.delay`), the counts that decisions, waves,
burn-in, the stopping rule and the report all use. The numeric work runs in
the compiled twins of the core functions, the very code the simulator runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from headliner.core.delay import DelayPrior, delay_grid, grid_index, rate_interval
from headliner.sim.engine import kernels
from headliner.storage.base import ArmCounts, OpenDelays, PendingSends

FloatArray = NDArray[np.float64]

#: The level of every credible interval the service shows (the report, snapshots).
CREDIBLE_LEVEL = 0.95


@dataclass(frozen=True, eq=False)
class DelayEstimate:
    """The open-delay curve of an experiment at one moment.

    Attributes
    ----------
    grid : ndarray of shape (n_times,)
        Times (seconds after a send) from 0 to the attribution window.
    cdf : ndarray of shape (n_times,)
        Share of a send's eventual opens (inside the window) seen by each time.
    prior : DelayPrior
        The curve assumed where the opens seen say nothing yet.
    opens_seen : float
        Opens with timing data behind the estimate.
    horizon_seconds : float
        The oldest age at which opens were looked at; beyond it the prior
        supplies the share of opens still to come.
    scale_variance : float
        Relative variance of that share (0 once the horizon reaches the window).
    """

    grid: FloatArray
    cdf: FloatArray
    prior: DelayPrior
    opens_seen: float
    horizon_seconds: float
    scale_variance: float

    def quantile(self, share: float) -> float:
        """The delay within which ``share`` of the eventual opens arrive (seconds)."""
        j = int(np.searchsorted(self.cdf, share, side="left"))
        if j <= 0:
            return 0.0
        if j >= self.grid.size:
            return float(self.grid[-1])
        lo, hi = self.cdf[j - 1], self.cdf[j]
        if hi <= lo:
            return float(self.grid[j])
        if j == 1:
            return float(self.grid[1] * (share - lo) / (hi - lo))
        log_lo, log_hi = np.log(self.grid[j - 1]), np.log(self.grid[j])
        return float(np.exp(log_lo + (log_hi - log_lo) * (share - lo) / (hi - lo)))


@dataclass(frozen=True, eq=False)
class Evidence:
    """Delay-aware counts of every headline, by stored position.

    Attributes
    ----------
    delay : DelayEstimate
    opens : ndarray of shape (n_arms,)
        Counted opens.
    effective_opens, effective_non_opens : ndarrays of shape (n_arms,)
        The Beta likelihood's parameters (:func:`headliner.core.delay.effective_counts`).
    unopened, weight : lists of n_arms ndarrays
        Each headline's unopened sends in groups and the curve value of each
        group (the last group holds the final non-opens, weight 1).
    """

    delay: DelayEstimate
    opens: FloatArray
    effective_opens: FloatArray
    effective_non_opens: FloatArray
    unopened: list[FloatArray]
    weight: list[FloatArray]

    @property
    def effective_sends(self) -> FloatArray:
        """Fully observed sends that carry the same information, per headline."""
        total: FloatArray = self.effective_opens + self.effective_non_opens
        return total

    def interval_parameters(
        self, arm: int, alpha_prior: float, beta_prior: float
    ) -> tuple[float, float]:
        """Beta parameters of ``arm``'s open rate with the delay curve's uncertainty included."""
        weight = self.weight[arm]
        a, b = kernels.interval_parameters(
            alpha_prior,
            beta_prior,
            float(self.opens[arm]),
            self.unopened[arm],
            weight,
            weight.shape[0],
            self.delay.scale_variance,
            np.empty(weight.shape[0]),
        )
        return float(a), float(b)

    def estimate_parameters(
        self, alpha_prior: float, beta_prior: float
    ) -> tuple[FloatArray, FloatArray]:
        """Every headline's :meth:`interval_parameters`, as two arrays (alpha, beta)."""
        params = [
            self.interval_parameters(arm, alpha_prior, beta_prior)
            for arm in range(self.opens.shape[0])
        ]
        a = np.array([p[0] for p in params], dtype=np.float64)
        b = np.array([p[1] for p in params], dtype=np.float64)
        return a, b


@dataclass(frozen=True, eq=False)
class RateEstimates:
    """Every headline's estimated open rate, as the report shows it, by stored position.

    ``alpha`` and ``beta`` are the Beta of :meth:`Evidence.interval_parameters`
    (the delay curve's uncertainty included), ``mean`` its mean, ``lower`` and
    ``upper`` the :data:`CREDIBLE_LEVEL` interval of
    :func:`headliner.core.delay.rate_interval` (never below what the counted
    opens already show).
    """

    alpha: FloatArray
    beta: FloatArray
    mean: FloatArray
    lower: FloatArray
    upper: FloatArray


def rate_estimates(
    evidence: Evidence, counts: Sequence[ArmCounts], alpha_prior: float, beta_prior: float
) -> RateEstimates:
    """The report's estimates (the snapshots keep the same ones, from this one function)."""
    a, b = evidence.estimate_parameters(alpha_prior, beta_prior)
    lower, upper = rate_interval(
        a,
        b,
        np.array([c.opens for c in counts], dtype=np.float64),
        np.array([c.sends for c in counts], dtype=np.float64),
        alpha_prior,
        beta_prior,
        CREDIBLE_LEVEL,
    )
    return RateEstimates(a, b, a / (a + b), lower, upper)


def estimate_delay(
    delays: OpenDelays, extra_times: FloatArray, window_seconds: float, prior: DelayPrior
) -> DelayEstimate:
    """The delay curve from the opens' timing, on a grid that holds every time looked up.

    Parameters
    ----------
    delays : OpenDelays
    extra_times : ndarray
        Further times that must be exact on the grid (the ages at which
        pending waves were last looked at).
    window_seconds : float
    prior : DelayPrior
    """
    grid = delay_grid(
        window_seconds, np.concatenate([delays.delay, delays.observable, extra_times])
    )
    n = grid.shape[0]
    opened = np.bincount(grid_index(grid, delays.delay), weights=delays.count, minlength=n)
    seen = np.bincount(grid_index(grid, delays.observable), weights=delays.count, minlength=n)
    at_risk = np.zeros(n)
    kernels.delay_statistics(opened.astype(np.float64), seen.astype(np.float64), at_risk)
    prior_cdf = prior.cdf_on(grid)
    cdf = np.zeros(n)
    kernels.delay_curve(opened.astype(np.float64), at_risk, prior_cdf, prior.weight, cdf)
    horizon = int(kernels.data_horizon(at_risk))
    return DelayEstimate(
        grid=grid,
        cdf=cdf,
        prior=prior,
        opens_seen=float(delays.count.sum()),
        horizon_seconds=float(grid[horizon]),
        scale_variance=float(kernels.curve_scale_variance(prior_cdf[horizon], prior.weight)),
    )


def gather_evidence(
    counts: list[ArmCounts],
    pending: PendingSends,
    delays: OpenDelays,
    window_seconds: float,
    prior: DelayPrior,
) -> Evidence:
    """Delay curve and effective counts of every headline (see the module docstring).

    Parameters
    ----------
    counts : list of ArmCounts
        One per headline, by position (``arm_counts``).
    pending : PendingSends
    delays : OpenDelays
    window_seconds : float
        The experiment's attribution window.
    prior : DelayPrior
        The experiment's prior delay curve.
    """
    delay = estimate_delay(delays, pending.age, window_seconds, prior)
    n_arms = len(counts)
    opens = np.array([c.opens for c in counts], dtype=np.float64)
    effective_opens = np.zeros(n_arms)
    effective_non_opens = np.zeros(n_arms)
    unopened: list[FloatArray] = []
    weights: list[FloatArray] = []
    curve = np.array([kernels.curve_at(delay.grid, delay.cdf, float(a)) for a in pending.age])
    for position, arm_counts in enumerate(counts):
        mine = pending.arm == arm_counts.arm
        group_sends = np.append(pending.count[mine], float(arm_counts.non_opens))
        group_weight = np.append(curve[mine] if curve.size else np.empty(0), 1.0)
        s, f = kernels.effective_counts(
            float(opens[position]), group_sends, group_weight, group_sends.shape[0]
        )
        effective_opens[position] = s
        effective_non_opens[position] = f
        unopened.append(group_sends)
        weights.append(group_weight)
    return Evidence(delay, opens, effective_opens, effective_non_opens, unopened, weights)
