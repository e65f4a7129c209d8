"""Delayed opens: the open-delay curve and what a send that has not opened yet is worth.

An email is opened hours after it is sent, and a non-open is never reported.
At time ``now`` a send of age ``a`` that has not opened is either a non-opener
or an opener whose open has not arrived yet. With ``theta`` the headline's
open rate inside the attribution window ``w`` and ``G`` the distribution of the
open delay of an eventual opener (conditional on opening within ``w``), such a
send has not shown an open with probability ``1 - theta * G(a)``. So the
likelihood of a headline's data is::

    theta^opens * prod over unopened sends i of (1 - theta * G(a_i))

(Chapelle 2014; Vernade, Cappé and Perchet 2017). A send whose window has
passed has ``G = 1``: a plain non-open. :func:`effective_counts` turns that
likelihood into the Beta posterior of the same mode and curvature, whose two
parameters are the *effective* opens and non-opens (effective sends are their
sum: the number of fully observed sends that carry the same information).

The curve ``G`` is estimated from the experiment's own opens, pooled over the
headlines. An open is seen only if it arrives before the send's data were last
looked at, so the opens seen are right-truncated: a send of age ``a`` shows
only the opens with delay ``<= a``. :func:`delay_statistics` and
:func:`delay_curve` compute the product-limit estimator for right-truncated
data (Lynden-Bell 1971) on a grid of times, with a prior curve that counts as
``weight`` opens (a beta-process prior): the data decide the shape of ``G`` up
to the oldest age seen, and the prior supplies the share of opens that come
later, until the oldest sends are a whole window old.

The functions without a leading underscore that take and return only numbers
and arrays are plain numeric Python that numba compiles unchanged
(:mod:`headliner.sim.engine`), so the simulator and the service run the same
counting.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from headliner.core.validation import Constraint, Interval, check_float, validate_params

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

#: Base grid: this many log-spaced times from ``window * GRID_START`` up to the window.
N_GRID_TIMES = 40
GRID_START = 1e-4
#: 95th percentile of the standard normal: a log-normal's p95 is median * exp(Z95 * sigma).
_Z95 = 1.6448536269514722
_SQRT2 = math.sqrt(2.0)
# Newton on the likelihood stops at this relative step.
_NEWTON_TOLERANCE = 1e-12
_NEWTON_STEPS = 200


# --- the prior curve ------------------------------------------------------------------
def lognormal_cdf(t: float, mu: float, sigma: float, window: float) -> float:
    """CDF at ``t`` of a log-normal delay conditional on being at most ``window``."""
    if t <= 0.0:
        return 0.0
    if t >= window:
        return 1.0
    z_window = (mu - math.log(window)) / (sigma * _SQRT2)
    z_t = (mu - math.log(t)) / (sigma * _SQRT2)
    if z_window < 26.0:
        return math.erfc(z_t) / math.erfc(z_window)
    # The window ends so far below the median that erfc underflows (a prior
    # median of years under a window of seconds): erfc(z) ~ exp(-z²) / (z √π) there.
    return math.exp((z_window - z_t) * (z_window + z_t)) * z_window / z_t


#: How long after a send its open still counts.
ATTRIBUTION_WINDOW = Interval(float, 0.0, 366 * 86400.0, closed="right")


def check_delay_order(median_seconds: float, p95_seconds: float, owner: str) -> None:
    """Raise unless the 95th percentile of a delay comes after its median."""
    check_float(p95_seconds, "p95_seconds", owner, low=median_seconds, closed="neither")


@dataclass(frozen=True)
class DelayPrior:
    """The open-delay curve assumed before the experiment's own opens say otherwise.

    A log-normal delay given by its median and 95th percentile, conditional on
    the open arriving inside the attribution window.

    Parameters
    ----------
    median_seconds : float, default=10800 (3 h)
        Half of the eventual opens arrive within this time of the send.
    p95_seconds : float, default=129600 (36 h)
        95% of them arrive within this time; > ``median_seconds``.
    weight : float, default=5.0
        How many opens the prior curve counts as, >= 0 (0: the data alone,
        where there are data).

    Examples
    --------
    >>> prior = DelayPrior()
    >>> round(prior.cdf(3 * 3600, window=72 * 3600), 3)
    0.509
    """

    median_seconds: float = 3 * 3600.0
    p95_seconds: float = 36 * 3600.0
    weight: float = 5.0
    parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "median_seconds": Interval(float, 0.0, None, closed="neither"),
        "p95_seconds": Interval(float, 0.0, None, closed="neither"),
        "weight": Interval(float, 0.0, 1e6),
    }

    def __post_init__(self) -> None:
        validate_params(self.parameter_constraints, vars(self), "DelayPrior")
        check_delay_order(self.median_seconds, self.p95_seconds, "DelayPrior")

    @property
    def mu(self) -> float:
        """Mean of the log delay."""
        return math.log(self.median_seconds)

    @property
    def sigma(self) -> float:
        """Standard deviation of the log delay."""
        return (math.log(self.p95_seconds) - self.mu) / _Z95

    def cdf(self, t: float, *, window: float) -> float:
        """Share of the window's opens that arrive within ``t`` seconds of the send."""
        return lognormal_cdf(t, self.mu, self.sigma, window)

    def cdf_on(self, grid: FloatArray) -> FloatArray:
        """The curve on ``grid`` (whose last time is the window), shape like ``grid``."""
        window = float(grid[-1])
        return np.array([self.cdf(float(t), window=window) for t in grid], dtype=np.float64)


# --- the grid -----------------------------------------------------------------------
def delay_grid(window_seconds: float, lags: Sequence[float] | FloatArray = ()) -> FloatArray:
    """Times at which the delay curve is estimated: 0, a log-spaced base grid, and ``lags``.

    The curve is exact at grid times and interpolated between them, so the
    times at which opens were looked at (a wave's report lags) belong on the
    grid: there the curve must count every open seen by then.

    Parameters
    ----------
    window_seconds : float
        The attribution window, the grid's last time.
    lags : sequence of float
        Extra times in (0, window), kept as given: a time looked up with
        :func:`grid_index` must be the very float that was put on the grid.

    Returns
    -------
    ndarray of shape (n_times,)
        Sorted, distinct, starting at 0 and ending at ``window_seconds``.
    """
    window = check_float(window_seconds, "window_seconds", "delay_grid", low=0.0, closed="neither")
    base = window * np.geomspace(GRID_START, 1.0, N_GRID_TIMES)
    extra = np.asarray(lags, dtype=np.float64)
    extra = extra[(extra > 0.0) & (extra < window)]
    grid = np.unique(np.concatenate([[0.0], base, extra]))
    grid[-1] = window
    return grid


def grid_index(grid: FloatArray, times: FloatArray | Sequence[float]) -> IntArray:
    """Index of the largest grid time <= each of ``times`` (times past the window: the last)."""
    index = np.searchsorted(grid, np.asarray(times, dtype=np.float64), side="right") - 1
    return np.clip(index, 0, grid.shape[0] - 1).astype(np.int64)


# --- estimating the curve (compiled by sim.engine) --------------------------------------------
def delay_statistics(
    opened: FloatArray, seen_by_observable: FloatArray, at_risk_out: FloatArray
) -> None:
    """The at-risk counts of the product-limit estimator for right-truncated delays.

    Parameters
    ----------
    opened : ndarray of shape (n_times,)
        ``opened[j]``: opens first seen ``grid[j]`` after their send.
    seen_by_observable : ndarray of shape (n_times,)
        ``seen_by_observable[m]``: opens seen so far among sends whose data
        were last looked at when they were ``grid[m]`` old (the last index for
        sends over the window, whose every open is in).
    at_risk_out : ndarray of shape (n_times,)
        Receives, for every grid time ``t_j``, the opens seen by ``t_j`` among
        sends looked at when ``t_j`` old or older: those whose delay could be
        anything up to ``t_j`` and still be seen.
    """
    seen = 0.0
    gone = 0.0
    for j in range(opened.shape[0]):
        seen += opened[j]
        at_risk_out[j] = seen - gone
        gone += seen_by_observable[j]


def delay_curve(
    opened: FloatArray,
    at_risk: FloatArray,
    prior_cdf: FloatArray,
    prior_weight: float,
    cdf_out: FloatArray,
) -> None:
    """The delay curve on the grid from :func:`delay_statistics` and a prior curve.

    Works backwards from ``G(window) = 1``: the share of the opens seen by
    ``t_j`` that arrived after ``t_{j-1}`` is estimated by
    ``(opened_j + w (G0_j - G0_{j-1})) / (at_risk_j + w G0_j)``, the data's
    reverse hazard shrunk towards the prior curve ``G0`` by ``w`` pseudo-opens.
    Where no data are at risk (times beyond the oldest age seen) the prior's
    own shape is kept.
    """
    n = cdf_out.shape[0]
    cdf_out[n - 1] = 1.0
    for j in range(n - 1, 0, -1):
        seen = at_risk[j] + prior_weight * prior_cdf[j]
        arrived = opened[j] + prior_weight * (prior_cdf[j] - prior_cdf[j - 1])
        share = arrived / seen if seen > 0.0 else 0.0
        share = min(max(share, 0.0), 1.0)
        cdf_out[j - 1] = cdf_out[j] * (1.0 - share)
    cdf_out[0] = 0.0


def data_horizon(at_risk: FloatArray) -> int:
    """Index of the last grid time with opens at risk (0 without any): beyond it the prior rules."""
    for j in range(at_risk.shape[0] - 1, -1, -1):
        if at_risk[j] > 0.0:
            return j
    return 0


def curve_at(grid: FloatArray, cdf: FloatArray, age: float) -> float:
    """The delay curve at ``age`` seconds: exact at grid times, log-linear between them.

    0 for ``age <= 0``, 1 from the window on; linear in ``age`` below the first
    positive grid time.
    """
    n = grid.shape[0]
    if age <= 0.0:
        return 0.0
    if age >= grid[n - 1]:
        return 1.0
    lo = 0
    hi = n - 1
    while hi - lo > 1:  # grid[lo] <= age < grid[hi]
        mid = (lo + hi) // 2
        if grid[mid] <= age:
            lo = mid
        else:
            hi = mid
    if age == grid[lo]:
        return float(cdf[lo])
    if lo == 0:
        return float(cdf[1] * age / grid[1])
    share = (math.log(age) - math.log(grid[lo])) / (math.log(grid[hi]) - math.log(grid[lo]))
    return float(cdf[lo] + (cdf[hi] - cdf[lo]) * share)


def curve_on(grid: FloatArray, cdf: FloatArray, ages: FloatArray) -> FloatArray:
    """:func:`curve_at` at many ages at once (numpy, for code that is not compiled)."""
    ages = np.asarray(ages, dtype=np.float64)
    out = np.zeros(ages.shape)
    inner = (ages > 0.0) & (ages < grid[-1])
    small = inner & (ages < grid[1])
    out[small] = cdf[1] * ages[small] / grid[1]
    rest = inner & ~small
    out[rest] = np.interp(np.log(ages[rest]), np.log(grid[1:]), cdf[1:])
    out[ages >= grid[-1]] = 1.0
    return out


# --- the posterior of one headline ---------------------------------------------------------
def effective_counts(
    opens: float, unopened: FloatArray, weight: FloatArray, n_groups: int
) -> tuple[float, float]:
    """Effective opens and non-opens of a headline from its delayed data.

    Parameters
    ----------
    opens : float
        Counted opens (each is a success at once).
    unopened : ndarray
        Sends without an open, in groups; ``unopened[i]`` sends of group ``i``
        have curve value ``weight[i]`` (1 once their window has passed, or for
        an explicit non-open; the delay curve at their age otherwise).
    weight : ndarray
        Curve value per group, in [0, 1].
    n_groups : int
        Groups used (the arrays may be longer).

    Returns
    -------
    (opens_eff, non_opens_eff) : tuple of float
        The Beta likelihood ``theta^opens_eff (1 - theta)^non_opens_eff`` with
        the same maximum and curvature as
        ``theta^opens * prod_i (1 - theta weight[i])^unopened[i]``. With every
        weight 0 or 1 it is exactly ``(opens, sum of unopened with weight 1)``.
    """
    exposure = 0.0
    top = 0.0
    for i in range(n_groups):
        if unopened[i] > 0.0 and weight[i] > 0.0:
            exposure += unopened[i] * weight[i]
            top = max(top, weight[i])
    if opens <= 0.0 or exposure <= 0.0:
        # No open: the likelihood is that of a fractional non-open per send at
        # theta -> 0. No unopened exposure: every counted send opened.
        return max(opens, 0.0), exposure
    if top < 1.0:
        at_one = opens
        for i in range(n_groups):
            if unopened[i] > 0.0 and weight[i] > 0.0:
                at_one -= unopened[i] * weight[i] / (1.0 - weight[i])
        if at_one >= 0.0:
            # The likelihood still rises at theta = 1: more opens than the curve
            # allows by now (opens faster than the curve says). No interior
            # maximum to match; count each unopened send as its weight of a trial.
            return opens, exposure
    # The maximum of the log-likelihood: score(theta) = opens/theta - sum(u w / (1 - theta w))
    # falls from +inf at 0 to below 0 before min(1, 1/top), so a safeguarded Newton finds it.
    lo = 0.0
    hi = min(1.0, 1.0 / top)
    theta = opens / (opens + exposure)
    for _ in range(_NEWTON_STEPS):
        score = opens / theta
        slope = -opens / (theta * theta)
        for i in range(n_groups):
            if unopened[i] > 0.0 and weight[i] > 0.0:
                rest = 1.0 - theta * weight[i]
                score -= unopened[i] * weight[i] / rest
                slope -= unopened[i] * weight[i] * weight[i] / (rest * rest)
        if score > 0.0:
            lo = theta
        else:
            hi = theta
        step = theta - score / slope
        if not lo < step < hi:
            step = 0.5 * (lo + hi)
        if abs(step - theta) <= _NEWTON_TOLERANCE * theta:
            theta = step
            break
        theta = step
    information = opens / (theta * theta)
    for i in range(n_groups):
        if unopened[i] > 0.0 and weight[i] > 0.0:
            rest = 1.0 - theta * weight[i]
            information += unopened[i] * weight[i] * weight[i] / (rest * rest)
    sends = information * theta * (1.0 - theta)
    return sends * theta, sends * (1.0 - theta)


def interval_parameters(
    alpha_prior: float,
    beta_prior: float,
    opens: float,
    unopened: FloatArray,
    weight: FloatArray,
    n_groups: int,
    scale_variance: float,
    scratch: FloatArray,
) -> tuple[float, float]:
    """Beta parameters of a headline's open rate, the delay curve's uncertainty included.

    The posterior ``Beta(alpha_prior + opens_eff, beta_prior + non_opens_eff)``
    of :func:`effective_counts` takes the delay curve as known. While the oldest
    sends are younger than the window, the share of opens still to come is
    partly the prior's guess: every pending weight shares one unknown factor of
    relative variance ``scale_variance`` (:func:`curve_scale_variance`). This
    returns the Beta with the same mean whose variance adds that factor's
    effect (delta method), for an interval that says what is not known yet.
    ``scratch`` is a work array at least ``n_groups`` long.
    """
    s0, f0 = effective_counts(opens, unopened, weight, n_groups)
    a0 = alpha_prior + s0
    b0 = beta_prior + f0
    if scale_variance <= 0.0:
        return a0, b0
    mean = a0 / (a0 + b0)
    step = 1e-4
    for i in range(n_groups):
        scratch[i] = min(weight[i] * (1.0 + step), 1.0) if weight[i] < 1.0 else weight[i]
    s1, f1 = effective_counts(opens, unopened, scratch, n_groups)
    slope = ((alpha_prior + s1) / (alpha_prior + beta_prior + s1 + f1) - mean) / step
    spread = mean * (1.0 - mean)
    variance = spread / (a0 + b0 + 1.0) + slope * slope * scale_variance
    size = max(spread / variance - 1.0, 1e-6)
    return mean * size, (1.0 - mean) * size


def rate_interval(
    alpha: FloatArray,
    beta: FloatArray,
    opens: FloatArray,
    sends: FloatArray,
    alpha_prior: float,
    beta_prior: float,
    level: float = 0.95,
) -> tuple[FloatArray, FloatArray]:
    """Each headline's reported credible interval of its open rate.

    The equal-tailed interval of ``Beta(alpha, beta)`` (from
    :func:`interval_parameters`), whose lower end is raised, where it falls
    short, to that of the posterior with every unopened send taken as final:
    whatever opens are still to come, the rate is at least what the counted
    opens show. Early in a window, when the delay curve is mostly the prior's
    guess, the moment-matched Beta can reach below that bound.

    Parameters
    ----------
    alpha, beta : ndarray
        The interval's Beta parameters.
    opens, sends : ndarray
        Counted opens and all sends, same shape.
    alpha_prior, beta_prior : float
    level : float, default=0.95

    Returns
    -------
    (lower, upper) : tuple of ndarrays
    """
    from scipy import special

    tail = (1.0 - level) / 2.0
    lower = special.betaincinv(alpha, beta, tail)
    upper = special.betainccinv(alpha, beta, tail)
    floor = special.betaincinv(
        alpha_prior + opens, beta_prior + np.maximum(sends - opens, 0.0), tail
    )
    bounded: FloatArray = np.maximum(lower, floor)
    return bounded, upper


def curve_scale_variance(prior_cdf_at_horizon: float, prior_weight: float) -> float:
    """Relative variance of the curve's level that the data cannot tell yet.

    Opens seen so far fix the curve's shape up to the oldest age observed,
    the *horizon*, but not how many opens are still to come after it; that
    share is the prior's. Under the prior (``weight`` pseudo-opens, a
    Dirichlet process) ``G(horizon)`` is Beta(w G0, w (1 - G0)), so every
    pending weight shares the relative variance ``(1 - G0) / (G0 (w + 1))``.
    0 once the horizon reaches the window.
    """
    g0 = min(max(prior_cdf_at_horizon, 0.0), 1.0)
    if g0 >= 1.0:
        return 0.0
    if g0 <= 0.0:
        return 1.0
    return min((1.0 - g0) / (g0 * (prior_weight + 1.0)), 1.0)


#: The numba-compatible functions above, in dependency order, for sim.engine to compile.
KERNEL_FUNCTIONS = (
    lognormal_cdf,
    delay_statistics,
    delay_curve,
    data_horizon,
    curve_at,
    effective_counts,
    interval_parameters,
    curve_scale_variance,
)
