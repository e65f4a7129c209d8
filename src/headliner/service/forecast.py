"""When is a winner likely? The stopping rule run forward at the current volume.

A small Monte Carlo over futures that the data so far allow, for the status
line of the dashboard ("at the current volume a winner is likely in about 9
hours"):

1. draw each active headline's true open rate from the current delay-aware
   posterior (the one the decisions use);
2. send at the current volume, split by the current allocation, and let the
   sends already out mature: by a time ``τ`` ahead, the sends carry
   ``V · share · ∫₀^τ G(u) du`` effective trials per headline (``G`` the
   experiment's open-delay curve: the share of a send's opens seen by an age),
   and a pending group of ``n`` sends seen at weight ``w`` gains ``n (G(a + τ)
   - w)``, ``a`` being the age at which ``G`` reaches ``w``;
3. open each new trial with the drawn rate (binomial counts), and look at the
   stopping rule (:func:`headliner.core.stopping.declared_winner`, compiled,
   with the rule's own parameters, burn-in and minimum of opens) at its
   checks ahead, up to 14 days.

The answer is the median time of the first declaration over the draws, or
"not within the horizon" when fewer than half of them declare by then. The
split is held at the current allocation, so the forecast leans slow (Thompson
Sampling moves sends to the leader, which settles it sooner).

Each look costs a quadrature (about 0.1 ms), so not every check of every draw
is looked at: the checks are the rule's, on a schedule that thins out with
time (hourly for the first 12, then about 15% apart), and the median is found
by bisection over them, taking a draw that declared at one check as declared
at every later one (more data rarely undoes a declaration). About three looks
per draw in all; :data:`FORECAST_DRAWS` futures keep a forecast near 50 ms,
and its median within a few checks of the exact one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from headliner.core.delay import curve_on
from headliner.service.evidence import DelayEstimate
from headliner.service.state import ExperimentState
from headliner.sim.engine import kernels
from headliner.storage.base import ExperimentStatus

FloatArray = NDArray[np.float64]

#: Simulated futures per forecast.
FORECAST_DRAWS = 128
#: How far ahead a forecast looks (14 days).
HORIZON_SECONDS = 14 * 86400.0
#: Checks looked at one by one before the schedule thins out.
_DENSE_CHECKS = 12
#: Growth of the gap between looked-at checks after the dense ones.
_CHECK_GROWTH = 1.15


@dataclass(frozen=True)
class DecisionForecast:
    """When the stopping rule is likely to declare a winner at the current volume.

    Attributes
    ----------
    seconds : float or None
        Median time from now to the declaration; None when fewer than half of
        the simulated futures declare within the horizon.
    declared_share : float
        Share of the simulated futures that declare within the horizon.
    sends_per_hour : float
        The volume assumed.
    horizon_seconds : float
    draws : int
        Simulated futures.
    """

    seconds: float | None
    declared_share: float
    sends_per_hour: float
    horizon_seconds: float
    draws: int


def _age_at(delay: DelayEstimate, weight: FloatArray) -> FloatArray:
    """The age at which the curve reaches each weight (how old a pending group looks)."""
    return np.array([delay.quantile(float(w)) if w > 0.0 else 0.0 for w in weight])


def check_offsets(interval: float, elapsed: float, horizon: float) -> FloatArray:
    """Seconds from now to the rule's checks that the forecast looks at, up to ``horizon``.

    The rule looks once per ``interval`` since the experiment started (every
    hour when it looks at every refresh, or more often than hourly); every
    check of the first :data:`_DENSE_CHECKS`, then about 15% apart, and the
    last one within the horizon.
    """
    step = max(interval, 3600.0)
    first = step - math.fmod(max(elapsed, 0.0), step) if interval > 0 else step
    n_checks = int((horizon - first) // step) + 1
    if n_checks < 1:
        return np.array([first])
    chosen: list[int] = list(range(min(_DENSE_CHECKS, n_checks)))
    while chosen[-1] < n_checks - 1:
        chosen.append(min(max(chosen[-1] + 1, round(chosen[-1] * _CHECK_GROWTH)), n_checks - 1))
    return first + step * np.array(chosen, dtype=np.float64)


def forecast_decision(
    state: ExperimentState,
    sends_per_hour: float,
    *,
    now: float,
    draws: int = FORECAST_DRAWS,
    horizon_seconds: float = HORIZON_SECONDS,
    seed: int = 0,
) -> DecisionForecast | None:
    """Forecast when the stopping rule declares a winner (see the module docstring).

    Parameters
    ----------
    state : ExperimentState
        The experiment as of ``now``.
    sends_per_hour : float
        The current volume.
    now : float
    draws : int, default=FORECAST_DRAWS
    horizon_seconds : float, default=HORIZON_SECONDS
    seed : int, default=0
        Seeds the draws: a fixed seed per experiment keeps the forecast from
        moving when the data do not.

    Returns
    -------
    DecisionForecast or None
        None when there is nothing to forecast: the experiment is not
        running, automatic stopping is off, fewer than two headlines are
        active, or there is no volume.
    """
    rule = state.stopping
    record = state.record
    if (
        record.status is not ExperimentStatus.RUNNING
        or rule is None
        or state.n_active < 2
        or not sends_per_hour > 0.0
    ):
        return None
    rng = np.random.default_rng(seed)
    offsets = check_offsets(rule.check_interval_seconds, now - record.created_at, horizon_seconds)
    delay = state.evidence.delay
    active = state.active

    # Effective trials gained by each check, per active headline: new sends ...
    fine = np.linspace(0.0, float(offsets[-1]), 2049)
    curve = curve_on(delay.grid, delay.cdf, fine)
    gathered = np.concatenate([[0.0], np.cumsum(np.diff(fine) * (curve[1:] + curve[:-1]) / 2.0)])
    per_second = sends_per_hour / 3600.0
    trials = np.outer(np.interp(offsets, fine, gathered), per_second * state.allocation)
    # ... and the pending sends maturing (the last group of each is the final non-opens).
    for i, arm in enumerate(active):
        unopened = state.evidence.unopened[int(arm)][:-1]
        weight = state.evidence.weight[int(arm)][:-1]
        if unopened.size:
            ages = _age_at(delay, weight)
            later = curve_on(delay.grid, delay.cdf, ages[None, :] + offsets[:, None])
            trials[:, i] += (unopened * np.maximum(later - weight, 0.0)).sum(axis=1)
    whole = np.round(trials)
    steps = np.diff(whole, axis=0, prepend=0.0).clip(min=0.0).astype(np.int64)

    posterior = state.posterior()
    rates = rng.beta(
        np.array(posterior.alpha), np.array(posterior.beta), size=(draws, state.n_active)
    )
    new_opens = np.cumsum(rng.binomial(steps[None, :, :], rates[:, None, :]), axis=1)

    params = rule.params()
    opens_now = float(state.opens.sum())
    p_best = np.empty(state.n_active)
    within = np.empty(state.n_active)

    def declared(d: int, c: int) -> bool:
        x = new_opens[d, c].astype(np.float64)
        n_opens = opens_now + float(x.sum())
        if n_opens < rule.min_opens:
            return False
        opens = state.effective_opens + x
        non_opens = state.effective_non_opens + whole[c] - x
        if np.any(opens + non_opens < record.burn_in_per_arm):
            return False
        winner = kernels.declared_winner(
            params,
            opens,
            non_opens,
            record.alpha_prior,
            record.beta_prior,
            n_opens,
            True,
            p_best,
            within,
        )
        return bool(winner >= 0)

    # first_yes[d]: earliest check known to declare (len(offsets): none known);
    # last_no[d]: latest check known not to.
    last = len(offsets) - 1
    first_yes = np.full(draws, len(offsets))
    last_no = np.full(draws, -1)
    for d in range(draws):
        if declared(d, last):
            first_yes[d] = last
        else:
            last_no[d] = last
    share = float(np.mean(first_yes <= last))
    needed = (draws + 1) // 2
    if int(np.sum(first_yes <= last)) < needed:
        return DecisionForecast(None, share, sends_per_hour, horizon_seconds, draws)
    lo, hi = -1, last  # fewer than half declared by lo, at least half by hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        for unknown in np.flatnonzero((first_yes > mid) & (last_no < mid)).tolist():
            if declared(unknown, mid):
                first_yes[unknown] = mid
            else:
                last_no[unknown] = mid
        if int(np.sum(first_yes <= mid)) >= needed:
            hi = mid
        else:
            lo = mid
    return DecisionForecast(float(offsets[hi]), share, sends_per_hour, horizon_seconds, draws)
