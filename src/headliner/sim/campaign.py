"""Campaigns simulated as they are served: waves or per-send traffic, delayed opens, the
service's own counting, burn-in, floor, stopping rule and policy.

A campaign sends its list in *steps*: a wave every ``interval_seconds`` (the
split of each wave rounded by largest remainder, as ``POST /allocations``
does), or per-send traffic at a rate, whose decisions between two posterior
refreshes are independent draws with the same probabilities (a multinomial
per refresh interval, which is exactly what per-send Thompson Sampling on a
fixed posterior gives). Before each step the opens seen so far are reported,
as a pipeline does before it asks for the next split; an open whose delay is
``d`` is seen at the first step after its send plus ``d``, and an open seen
after the attribution window is late and not counted, as in the service.

Each step runs the decision path of the service, compiled: the delay curve
estimated from the opens seen (:mod:`headliner.core.delay`), the effective
counts of every headline, burn-in in evidence, the stopping rule at its
cadence, then :func:`~headliner.core.allocation.guarded_probabilities` (or the
winner's split). The functions are the ones the service calls, compiled by
:mod:`headliner.sim.engine`.

Counting modes, for comparisons: ``delay_aware`` (the service),
``known_curve`` (told the true delay curve), ``settled`` (opens counted when
they arrive and non-opens when the window passes: the rule before delay-aware
counting) and ``immediate`` (no delay: every outcome known at the next step).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, get_args

import numpy as np
from numpy.typing import NDArray

from headliner.core.allocation import (
    GUARD_CONSTRAINTS,
    check_floor,
    guarded_probabilities,
    split_wave,
    winner_probabilities,
)
from headliner.core.delay import (
    ATTRIBUTION_WINDOW,
    DelayPrior,
    check_delay_order,
    curve_scale_variance,
    data_horizon,
    delay_curve,
    delay_grid,
    delay_statistics,
    effective_counts,
    interval_parameters,
    rate_interval,
)
from headliner.core.policies import THOMPSON, Policy, ThompsonSampling
from headliner.core.posterior import PRIOR_CONSTRAINTS, within_probabilities
from headliner.core.stopping import StoppingRule, declared_winner
from headliner.core.validation import (
    Constraint,
    Interval,
    Options,
    check_float,
    check_int,
    check_probabilities,
    fail,
    validate_params,
)
from headliner.sim import engine

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
ProgressCallback = Callable[[int, int], None]

HOUR = 3600.0
Counting = Literal["delay_aware", "known_curve", "settled", "immediate"]
# The kernels take a mode as its position in `Counting`.
COUNTING_CODES: dict[str, int] = {name: code for code, name in enumerate(get_args(Counting))}
_OWNER = "Campaign"
# Trajectories (allocation, P(best), posteriors) are kept at most at this many steps.
MAX_RECORDED_STEPS = 200
_Z95 = 1.959963984540054
#: A declared headline is "right" when its rate is within this share of the best's.
WITHIN_BEST = 0.01


@dataclass(frozen=True)
class OpenDelay:
    """The true open delay of a simulated campaign: log-normal from its median and p95.

    Parameters
    ----------
    median_seconds : float
    p95_seconds : float
        > ``median_seconds``.
    """

    median_seconds: float = 2 * HOUR
    p95_seconds: float = 24 * HOUR

    # The same shape as the prior curve, so the same rules.
    parameter_constraints: ClassVar[dict[str, Constraint]] = DelayPrior.parameter_constraints

    def __post_init__(self) -> None:
        validate_params(self.parameter_constraints, vars(self), "OpenDelay")
        check_delay_order(self.median_seconds, self.p95_seconds, "OpenDelay")

    def as_prior(self) -> DelayPrior:
        """The same curve as a :class:`~headliner.core.delay.DelayPrior`."""
        return DelayPrior(self.median_seconds, self.p95_seconds)


@dataclass(frozen=True)
class Campaign:
    """A campaign as the service would run it, with the truth the simulation draws from.

    Parameters
    ----------
    true_rates : sequence of float
        True open rate (within the attribution window) of each headline.
    n_sends : int
        List size: sends over the whole campaign.
    wave_size : int or None, default=1000
        Sends per wave; None for per-send traffic at ``sends_per_hour``.
    interval_seconds : float, default=3600
        Time between waves; for per-send traffic, between posterior refreshes.
    sends_per_hour : float or None, default=None
        Per-send traffic rate (with ``wave_size=None``).
    open_delay : OpenDelay or None, default=OpenDelay()
        The true delay of an open; None: opens are known at the next step.
    attribution_window_seconds : float, default=259200 (72 h)
    policy : Policy, default=ThompsonSampling()
    alpha_prior, beta_prior : float, default=1.0
    burn_in_per_arm : int, default=100
        Effective sends every headline needs before the policy takes over.
    burn_in_share : float, default=1.0
        Cap on the total share of headlines still in burn-in.
    floor : float, default=0.0
    winner_exploration : float, default=0.0
    stopping : StoppingRule or None, default=StoppingRule()
        None: never declare.
    delay_prior : DelayPrior, default=DelayPrior()
    counting : {"delay_aware", "known_curve", "settled", "immediate"}, default="delay_aware"
    """

    true_rates: tuple[float, ...]
    n_sends: int
    wave_size: int | None = 1000
    interval_seconds: float = HOUR
    sends_per_hour: float | None = None
    open_delay: OpenDelay | None = field(default_factory=OpenDelay)
    attribution_window_seconds: float = 72 * HOUR
    policy: Policy = field(default_factory=ThompsonSampling)
    alpha_prior: float = 1.0
    beta_prior: float = 1.0
    burn_in_per_arm: int = 100
    burn_in_share: float = 1.0
    floor: float = 0.0
    winner_exploration: float = 0.0
    stopping: StoppingRule | None = field(default_factory=StoppingRule)
    delay_prior: DelayPrior = field(default_factory=DelayPrior)
    counting: Counting = "delay_aware"

    parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "n_sends": Interval(int, 1),
        "wave_size": Interval(int, 1, optional=True),
        "interval_seconds": Interval(float, 0.0, None, closed="neither"),
        "sends_per_hour": Interval(float, 0.0, None, closed="neither", optional=True),
        "attribution_window_seconds": ATTRIBUTION_WINDOW,
        **PRIOR_CONSTRAINTS,
        **GUARD_CONSTRAINTS,
        "counting": Options(get_args(Counting)),
    }

    def __post_init__(self) -> None:
        rates = check_probabilities(self.true_rates, "true_rates", _OWNER)
        if rates.size < 1:
            raise fail("true_rates", _OWNER, "a non-empty sequence", self.true_rates)
        object.__setattr__(self, "true_rates", tuple(float(r) for r in rates))
        validate_params(self.parameter_constraints, vars(self), _OWNER)
        if (self.wave_size is None) == (self.sends_per_hour is None):
            raise fail(
                "wave_size",
                _OWNER,
                "set, or None with sends_per_hour set (not both)",
                self.wave_size,
            )
        check_float(
            self.attribution_window_seconds,
            "attribution_window_seconds",
            _OWNER,
            low=self.interval_seconds,
        )
        if not isinstance(self.policy, Policy):
            raise fail("policy", _OWNER, "a Policy", self.policy)
        check_floor(self.floor, rates.size, _OWNER)
        if self.open_delay is None and self.counting != "immediate":
            object.__setattr__(self, "counting", "immediate")

    @property
    def n_arms(self) -> int:
        """Number of headlines."""
        return len(self.true_rates)

    def step_sends(self) -> IntArray:
        """Sends of every step: full waves then the rest, or the per-send rate's running total."""
        if self.wave_size is not None:
            n_full, rest = divmod(self.n_sends, self.wave_size)
            sizes = [self.wave_size] * n_full + ([rest] if rest else [])
            return np.array(sizes, dtype=np.int64)
        assert self.sends_per_hour is not None
        per_step = self.sends_per_hour * self.interval_seconds / HOUR
        n_steps = math.ceil(self.n_sends / per_step)
        totals = np.minimum(
            np.floor(np.arange(1, n_steps + 1) * per_step + 1e-9), self.n_sends
        ).astype(np.int64)
        totals[-1] = self.n_sends
        sends: IntArray = np.diff(totals, prepend=0).astype(np.int64)
        return sends

    def report_lags(self) -> FloatArray:
        """Ages (seconds) at which a step's opens are looked at inside the window."""
        n_lags = int(math.floor(self.attribution_window_seconds / self.interval_seconds + 1e-9))
        lags: FloatArray = np.arange(1, n_lags + 1, dtype=np.float64) * self.interval_seconds
        return lags


@dataclass(frozen=True, eq=False)
class CampaignResult:
    """Per-replication outcomes of a simulated campaign.

    Attributes
    ----------
    campaign : Campaign
    seed : int
        Root seed of the replications (drawn when none was given).
    n_replications : int
    opens : int64 ndarray of shape (n_replications,)
        Counted opens (inside the window) of every send of the campaign.
    regret : float64 ndarray of shape (n_replications,)
        Expected opens lost against sending the best headline throughout.
    sends : int64 ndarray of shape (n_replications, n_arms)
    declared_arm : int64 ndarray of shape (n_replications,)
        Headline declared the winner, -1 when none was by the last step.
    decision_sends : int64 ndarray of shape (n_replications,)
        Sends made before the declaration (-1 without one).
    decision_hours : float64 ndarray of shape (n_replications,)
        Hours from the first send to the declaration (NaN without one).
    recorded_hours : float64 ndarray of shape (n_recorded,)
        Campaign time of the recorded steps.
    allocation : float64 ndarray of shape (n_replications, n_recorded, n_arms)
        Share of each recorded step's sends per headline.
    p_best : float64 ndarray of shape (n_replications, n_recorded, n_arms)
        P(best) under the delay-aware posterior before each recorded step.
    interval_alpha, interval_beta : float64 ndarrays, same shape, or None
        The reported posterior of each headline's rate (delay-curve uncertainty
        included), when ``record_posteriors`` was asked for.
    interval_counts : float64 ndarray of shape (n_replications, n_recorded, n_arms, 2), or None
        Counted opens and sends of each headline at those steps (the interval's floor).
    """

    campaign: Campaign
    seed: int
    n_replications: int
    opens: IntArray
    regret: FloatArray
    sends: IntArray
    declared_arm: IntArray
    decision_sends: IntArray
    decision_hours: FloatArray
    recorded_hours: FloatArray
    allocation: FloatArray
    p_best: FloatArray
    interval_alpha: FloatArray | None
    interval_beta: FloatArray | None
    interval_counts: FloatArray | None = None

    @property
    def decided(self) -> NDArray[np.bool_]:
        """Replications in which a winner was declared."""
        hits: NDArray[np.bool_] = self.declared_arm >= 0
        return hits

    def within_best(self, tolerance: float = WITHIN_BEST) -> NDArray[np.bool_]:
        """Declarations whose headline is within ``tolerance`` (relative) of the best."""
        rates = np.array(self.campaign.true_rates)
        best = rates.max()
        declared = np.where(self.decided, self.declared_arm, 0)
        hits: NDArray[np.bool_] = self.decided & (rates[declared] >= (1.0 - tolerance) * best)
        return hits

    def coverage(self, level: float = 0.95) -> FloatArray:
        """Share of recorded (replication, step) checks whose interval covers the true rate.

        Returns
        -------
        ndarray of shape (n_recorded, n_arms)
        """
        if (
            self.interval_alpha is None
            or self.interval_beta is None
            or self.interval_counts is None
        ):
            raise fail("record_posteriors", "CampaignResult.coverage", "True when simulated", False)
        lower, upper = rate_interval(
            self.interval_alpha,
            self.interval_beta,
            self.interval_counts[..., 0],
            self.interval_counts[..., 1],
            self.campaign.alpha_prior,
            self.campaign.beta_prior,
            level,
        )
        rates = np.array(self.campaign.true_rates)
        inside = (lower <= rates) & (rates <= upper)
        covered: FloatArray = inside.mean(axis=0)
        return covered


def kernel_arguments(campaign: Campaign, *, record_posteriors: bool) -> tuple[Any, ...]:
    """The arguments of :func:`_py_campaign_kernel` that are the same for every replication.

    One replication is ``kernel(*static, rng, *outputs)`` (see :func:`simulate_campaign`).
    """
    window = campaign.attribution_window_seconds
    lags = campaign.report_lags()
    grid = delay_grid(window, lags)
    lag_index = np.searchsorted(grid, np.concatenate([[0.0], lags])).astype(np.int64)
    truth = campaign.open_delay.as_prior() if campaign.open_delay is not None else DelayPrior()
    true_cdf = truth.cdf_on(grid) if campaign.open_delay is not None else np.ones(grid.shape[0])
    steps = campaign.step_sends()
    stopping = campaign.stopping
    if stopping is None:
        check = np.zeros(steps.shape[0], dtype=np.bool_)
        rule = StoppingRule().params()
    else:
        times = np.arange(steps.shape[0]) * campaign.interval_seconds
        every = stopping.check_interval_seconds
        if every > 0:
            slot = np.floor(times / every + 1e-9)
            check = np.concatenate([[False], slot[1:] > slot[:-1]])
        else:
            check = np.arange(steps.shape[0]) > 0
        rule = stopping.params()
    guards = np.array(
        [
            float(campaign.burn_in_per_arm),
            campaign.burn_in_share,
            campaign.floor,
            campaign.winner_exploration,
        ]
    )
    return (
        campaign.policy.code,
        campaign.policy.params(campaign.alpha_prior, campaign.beta_prior),
        np.array(campaign.true_rates),
        steps,
        campaign.wave_size is None,
        campaign.interval_seconds,
        truth.mu,
        truth.sigma,
        COUNTING_CODES[campaign.counting],
        grid,
        lag_index,
        campaign.delay_prior.cdf_on(grid),
        campaign.delay_prior.weight,
        true_cdf,
        guards,
        rule,
        stopping is not None,
        check,
        recorded_steps(steps.shape[0]),
        record_posteriors,
    )


def recorded_steps(n_steps: int) -> IntArray:
    """Steps whose split, P(best) and posteriors are kept: all, or up to MAX_RECORDED_STEPS."""
    n_record = min(n_steps, MAX_RECORDED_STEPS)
    steps: IntArray = np.unique(np.linspace(0, n_steps - 1, n_record).round().astype(np.int64))
    return steps


def _py_campaign_kernel(
    policy: int,
    params: FloatArray,
    true_p: FloatArray,
    step_sends: IntArray,
    per_send: bool,
    interval: float,
    delay_mu: float,
    delay_sigma: float,
    counting: int,
    grid: FloatArray,
    lag_index: IntArray,
    prior_cdf: FloatArray,
    prior_weight: float,
    true_cdf: FloatArray,
    guards: FloatArray,
    rule: FloatArray,
    has_rule: bool,
    check: NDArray[np.bool_],
    record: IntArray,
    record_posteriors: bool,
    rng: np.random.Generator,
    sends_out: IntArray,
    totals_out: FloatArray,
    allocation_out: FloatArray,
    p_best_out: FloatArray,
    alpha_out: FloatArray,
    beta_out: FloatArray,
    counts_out: FloatArray,
) -> None:
    """One replication of a campaign (compiled; see the module docstring).

    ``guards`` is ``[burn_in, burn_in_share, floor, winner_exploration]``.
    ``totals_out`` receives ``[opens, regret, declared arm, decision step,
    decision sends]``.
    """
    n_arms = true_p.shape[0]
    n_steps = step_sends.shape[0]
    n_times = grid.shape[0]
    window = grid[n_times - 1]
    n_lags = lag_index.shape[0] - 1  # looks inside the window, at lags 1 .. n_lags
    matured_lag = n_lags if n_lags * interval >= window else n_lags + 1
    best_p = 0.0
    for k in range(n_arms):
        best_p = max(best_p, true_p[k])

    total_sends = 0
    for t in range(n_steps):
        total_sends += step_sends[t]
    # Every counted open's lag (steps after its send at which it is first seen),
    # sorted within each (step, arm); the expected count bounds the space.
    capacity = int(total_sends * best_p + 10.0 * math.sqrt(total_sends + 1.0) + 16.0)
    open_lag = np.empty(capacity, dtype=np.int64)
    start = np.zeros((n_steps, n_arms), dtype=np.int64)
    stop = np.zeros((n_steps, n_arms), dtype=np.int64)
    cursor = np.zeros((n_steps, n_arms), dtype=np.int64)
    sends = np.zeros((n_steps, n_arms), dtype=np.int64)
    seen = np.zeros((n_steps, n_arms), dtype=np.int64)
    used = 0

    opens = np.zeros(n_arms)
    matured_non_opens = np.zeros(n_arms)
    matured_seen = 0.0
    opened = np.zeros(n_times)
    seen_by_observable = np.zeros(n_times)
    at_risk = np.zeros(n_times)
    cdf = np.empty(n_times)
    for j in range(n_times):
        cdf[j] = true_cdf[j]
    unopened = np.zeros(n_steps + 1)
    weight = np.zeros(n_steps + 1)
    scratch = np.zeros(n_steps + 1)
    eff_opens = np.zeros(n_arms)
    eff_non_opens = np.zeros(n_arms)
    alpha = np.zeros(n_arms)
    beta = np.zeros(n_arms)
    short = np.zeros(n_arms, dtype=np.bool_)
    probabilities = np.zeros(n_arms)
    p_best = np.zeros(n_arms)
    within = np.zeros(n_arms)
    split = np.zeros(n_arms, dtype=np.int64)
    memory = np.full(1, -1, dtype=np.int64)

    counted = 0.0
    regret = 0.0
    declared = -1
    decision_step = -1
    decision_sends = -1
    sent = 0
    first_pending = 0
    r = 0
    for t in range(n_steps):
        # 1. The opens seen since the last step; sends whose window passed mature.
        for w in range(first_pending, t):
            lag = t - w
            for k in range(n_arms):
                c = cursor[w, k]
                while c < stop[w, k] and open_lag[c] <= lag:
                    opened[lag_index[open_lag[c]]] += 1.0
                    c += 1
                seen[w, k] += c - cursor[w, k]
                opens[k] += c - cursor[w, k]
                cursor[w, k] = c
        while first_pending < t and t - first_pending >= matured_lag:
            for k in range(n_arms):
                matured_non_opens[k] += sends[first_pending, k] - seen[first_pending, k]
                matured_seen += seen[first_pending, k]
            first_pending += 1

        # 2. The delay curve and each pending step's weight.
        scale_variance = 0.0
        if counting == 0:
            for j in range(n_times):
                seen_by_observable[j] = 0.0
            seen_by_observable[n_times - 1] = matured_seen
            for w in range(first_pending, t):
                for k in range(n_arms):
                    seen_by_observable[lag_index[t - w]] += seen[w, k]
            delay_statistics(opened, seen_by_observable, at_risk)
            delay_curve(opened, at_risk, prior_cdf, prior_weight, cdf)
            if record_posteriors:
                scale_variance = curve_scale_variance(
                    prior_cdf[data_horizon(at_risk)], prior_weight
                )
        n_groups = t - first_pending + 1
        for w in range(first_pending, t):
            i = w - first_pending
            if counting == 2:
                weight[i] = 0.0
            elif counting == 3:
                weight[i] = 1.0
            else:
                weight[i] = cdf[lag_index[t - w]]
        weight[n_groups - 1] = 1.0

        # 3. Effective counts of every headline, burn-in in evidence.
        n_short = 0
        n_opens = 0.0
        for k in range(n_arms):
            for w in range(first_pending, t):
                unopened[w - first_pending] = sends[w, k] - seen[w, k]
            unopened[n_groups - 1] = matured_non_opens[k]
            eff_opens[k], eff_non_opens[k] = effective_counts(opens[k], unopened, weight, n_groups)
            alpha[k] = params[0] + eff_opens[k]
            beta[k] = params[1] + eff_non_opens[k]
            short[k] = eff_opens[k] + eff_non_opens[k] < guards[0]
            if short[k]:
                n_short += 1
            n_opens += opens[k]
            if record_posteriors and r < record.shape[0] and record[r] == t:
                alpha_out[r, k], beta_out[r, k] = interval_parameters(
                    params[0],
                    params[1],
                    opens[k],
                    unopened,
                    weight,
                    n_groups,
                    scale_variance,
                    scratch,
                )
                counts_out[r, k, 0] = opens[k]
                counts_out[r, k, 1] = sends_out[k]

        # 4. The stopping rule at its cadence, then this step's split.
        if has_rule and declared < 0 and check[t]:
            declared = declared_winner(
                rule,
                eff_opens,
                eff_non_opens,
                params[0],
                params[1],
                n_opens,
                n_short == 0,
                p_best,
                within,
            )
            if declared >= 0:
                decision_step = t
                decision_sends = sent
        if declared >= 0:
            winner_probabilities(declared, guards[3], probabilities)
        else:
            guarded_probabilities(
                policy,
                params,
                eff_opens,
                eff_non_opens,
                sent,
                memory,
                short,
                guards[1],
                guards[2],
                probabilities,
            )
        n = step_sends[t]
        if per_send:
            left = n
            mass = 1.0
            for k in range(n_arms):
                share = probabilities[k] / mass if mass > 0.0 else 0.0
                split[k] = rng.binomial(left, min(max(share, 0.0), 1.0)) if left > 0 else 0
                left -= split[k]
                mass -= probabilities[k]
            split[n_arms - 1] += left
        else:
            split_wave(n, probabilities, split)
        if r < record.shape[0] and record[r] == t:
            if policy == THOMPSON and declared < 0 and n_short == 0 and guards[2] == 0.0:
                # Thompson Sampling's split is P(best) itself: no second quadrature.
                for k in range(n_arms):
                    p_best_out[r, k] = probabilities[k]
            else:
                within_probabilities(alpha, beta, 0.0, p_best_out[r])
            for k in range(n_arms):
                allocation_out[r, k] = split[k] / n if n > 0 else 0.0
            r += 1

        # 5. Send: who opens, and when each open is seen.
        for k in range(n_arms):
            sends[t, k] = split[k]
            sends_out[k] += split[k]
            regret += split[k] * (best_p - true_p[k])
            start[t, k] = used
            eventual = rng.binomial(split[k], true_p[k]) if split[k] > 0 else 0
            if used + eventual > open_lag.shape[0]:
                grown = np.empty(2 * (used + eventual), dtype=np.int64)
                grown[:used] = open_lag
                open_lag = grown
            if counting == 3:
                open_lag[used : used + eventual] = 1
                used += eventual
            elif eventual > 2 * n_lags:
                # Many opens: how many are first seen at each lag is multinomial over
                # the lags (the truncated delay curve's mass between looks), drawn as
                # a binomial per lag, already sorted. The same law as one delay per
                # open, at a cost that does not grow with the opens.
                left = eventual
                below = 0.0
                for lag in range(1, n_lags + 1):
                    if left == 0:
                        break
                    at = true_cdf[lag_index[lag]]
                    rest = 1.0 - below
                    share = (at - below) / rest if rest > 0.0 else 1.0
                    m = rng.binomial(left, min(max(share, 0.0), 1.0))
                    open_lag[used : used + m] = lag
                    used += m
                    left -= m
                    below = at
                # the `left` opens still unseen are seen after the window: late
            else:
                for _ in range(eventual):
                    delay = window + 1.0
                    while delay > window:
                        delay = math.exp(delay_mu + delay_sigma * rng.standard_normal())
                    lag = max(1, int(math.ceil(delay / interval - 1e-9)))
                    if lag > n_lags:
                        continue  # seen after the window: late, not counted
                    open_lag[used] = lag
                    used += 1
                open_lag[start[t, k] : used] = np.sort(open_lag[start[t, k] : used])
            counted += used - start[t, k]
            stop[t, k] = used
            cursor[t, k] = start[t, k]
        sent += n
    totals_out[0] = counted
    totals_out[1] = regret
    totals_out[2] = declared
    totals_out[3] = decision_step
    totals_out[4] = decision_sends


_campaign_kernel: Callable[..., None] | None = None


def _compiled_kernel() -> Callable[..., None]:
    """The kernel, compiled on first use with the core's compiled functions bound."""
    global _campaign_kernel
    if _campaign_kernel is None:
        _campaign_kernel = engine.compile_with_kernels(_py_campaign_kernel)
    return _campaign_kernel


def simulate_campaign(
    campaign: Campaign,
    n_replications: int,
    *,
    seed: int | None,
    record_posteriors: bool = False,
    n_threads: int | None = None,
    progress: ProgressCallback | None = None,
) -> CampaignResult:
    """Simulate ``n_replications`` independent runs of ``campaign``.

    Replication ``r`` draws from child ``r`` of ``SeedSequence(seed)``.

    Parameters
    ----------
    campaign : Campaign
    n_replications : int
        >= 1.
    seed : int or None
        Root seed; None draws fresh entropy (echoed in ``result.seed``).
    record_posteriors : bool, default=False
        Keep each headline's reported posterior at the recorded steps (for
        calibration checks; costs memory with many headlines and steps).
    n_threads : int or None, default=None
        Worker threads (None: every core).
    progress : callable or None, default=None
        Called as ``progress(done, total)`` after each chunk of replications.

    Returns
    -------
    CampaignResult

    Examples
    --------
    >>> campaign = Campaign((0.1, 0.3), n_sends=4000, wave_size=500)
    >>> result = simulate_campaign(campaign, 20, seed=7)
    >>> bool(result.sends[:, 1].mean() > result.sends[:, 0].mean())
    True
    """
    if not isinstance(campaign, Campaign):
        raise fail("campaign", "simulate_campaign", "a Campaign", campaign)
    n_reps = check_int(n_replications, "n_replications", "simulate_campaign", low=1)
    if seed is not None:
        check_int(seed, "seed", "simulate_campaign", low=0)
    threads = check_int(
        n_threads if n_threads is not None else (os.cpu_count() or 1),
        "n_threads",
        "simulate_campaign",
        low=1,
    )
    static = kernel_arguments(campaign, record_posteriors=record_posteriors)
    kernel = _compiled_kernel()
    n_arms = campaign.n_arms
    record = recorded_steps(campaign.step_sends().shape[0])
    n_record = record.shape[0]
    sends = np.zeros((n_reps, n_arms), dtype=np.int64)
    totals = np.zeros((n_reps, 5))
    allocation = np.zeros((n_reps, n_record, n_arms))
    p_best = np.zeros((n_reps, n_record, n_arms))
    shape = (n_reps, n_record, n_arms) if record_posteriors else (n_reps, 0, n_arms)
    alpha = np.zeros(shape)
    beta = np.zeros(shape)
    counts = np.zeros((*shape, 2))
    root = np.random.SeedSequence(seed)
    children = root.spawn(n_reps)

    def run(rows: range) -> int:
        for i in rows:
            rng = np.random.Generator(np.random.PCG64(children[i]))
            kernel(
                *static,
                rng,
                sends[i],
                totals[i],
                allocation[i],
                p_best[i],
                alpha[i],
                beta[i],
                counts[i],
            )
        return len(rows)

    n_chunks = min(n_reps, threads * 8)
    bounds = np.linspace(0, n_reps, n_chunks + 1).astype(int)
    done = 0
    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = [
            pool.submit(run, range(lo, hi)) for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)
        ]
        for future in as_completed(futures):
            done += future.result()
            if progress is not None:
                progress(done, n_reps)

    step = totals[:, 3].astype(np.int64)
    hours = np.where(step >= 0, step * campaign.interval_seconds / HOUR, np.nan)
    return CampaignResult(
        campaign=campaign,
        seed=int(root.entropy),  # type: ignore[arg-type]
        n_replications=n_reps,
        opens=totals[:, 0].astype(np.int64),
        regret=totals[:, 1].copy(),
        sends=sends,
        declared_arm=totals[:, 2].astype(np.int64),
        decision_sends=totals[:, 4].astype(np.int64),
        decision_hours=hours,
        recorded_hours=record.astype(np.float64) * (campaign.interval_seconds / HOUR),
        allocation=allocation,
        p_best=p_best,
        interval_alpha=alpha if record_posteriors else None,
        interval_beta=beta if record_posteriors else None,
        interval_counts=counts if record_posteriors else None,
    )


def mean_and_ci(values: NDArray[Any]) -> tuple[float, float]:
    """Mean of ``values`` and the half-width of its 95% normal interval (NaN for one value)."""
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return math.nan, math.nan
    if x.size < 2:
        return float(x.mean()), math.nan
    return float(x.mean()), float(_Z95 * x.std(ddof=1) / math.sqrt(x.size))


def proportion_and_ci(hits: NDArray[np.bool_]) -> tuple[float, float, float]:
    """Share of ``hits`` with its 95% Wilson interval ``(share, low, high)``."""
    n = int(np.asarray(hits).size)
    if n == 0:
        return math.nan, math.nan, math.nan
    p = float(np.mean(hits))
    z2 = _Z95 * _Z95
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = _Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return p, max(0.0, centre - half), min(1.0, centre + half)


__all__ = [
    "Campaign",
    "CampaignResult",
    "OpenDelay",
    "mean_and_ci",
    "proportion_and_ci",
    "simulate_campaign",
]
