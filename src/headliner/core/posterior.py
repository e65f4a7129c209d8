"""Beta-Bernoulli posterior over K arms and the summaries decisions rest on.

Every arm's open probability θ_k has a Beta(alpha_k, beta_k) posterior; an
open adds 1 to alpha_k, a non-open adds 1 to beta_k. The summaries answer the
questions a campaign owner asks: which headline is best and how sure are we
(:func:`probability_of_best`), what do we lose by picking an arm now
(:func:`expected_loss`), and how much could still be gained by testing on
(:func:`value_remaining`, and deterministically :func:`within_probabilities`).

:func:`within_probabilities` and :func:`best_probabilities` are plain numeric
code that the simulator compiles with numba (:data:`KERNEL_FUNCTIONS`);
:func:`probability_of_best` runs the same code in Python.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from headliner.core.validation import Interval, check_float, check_int, fail

# scipy.special and scipy.integrate are imported inside the functions that
# use them: a process that only simulates (the seed API, Monte Carlo) never
# loads them, which took the reference experiment's peak memory from 290 to
# 265 MiB.

FloatArray = NDArray[np.float64]

#: Smallest prior pseudo-count (``alpha_prior``, ``beta_prior``) accepted. From it
#: up, P(best) and the within-tolerance probabilities come out finite and summing
#: to 1 whatever the counts (tests/unit/core/test_posterior.py checks this with
#: hypothesis); far below it (1e-10 and less) a Beta density puts almost all of
#: its mass against 0 or 1 and the integration returns NaN. As a prior, 0.001
#: pseudo-opens is as good as no prior at all.
MIN_PRIOR = 1e-3

#: Largest prior pseudo-count accepted: a million pseudo-sends outweighs any list, and
#: far above it P(best)'s integration underflows to 0 for every arm.
MAX_PRIOR = 1e6

#: The Beta prior every arm starts from: pseudo-opens and pseudo-non-opens.
PRIOR_CONSTRAINTS: dict[str, Interval] = {
    "alpha_prior": Interval(float, MIN_PRIOR, MAX_PRIOR),
    "beta_prior": Interval(float, MIN_PRIOR, MAX_PRIOR),
}

# expected_max integrates only where some density is non-negligible: outside
# the [TAIL, 1 - TAIL] quantiles of every arm its integrand is below 1e-12.
_TAIL = 1e-13


def check_prior(alpha_prior: object, beta_prior: object, owner: str) -> tuple[float, float]:
    """Return the Beta prior's two parameters when :data:`PRIOR_CONSTRAINTS` allows them."""
    return (
        PRIOR_CONSTRAINTS["alpha_prior"].check(alpha_prior, "alpha_prior", owner),
        PRIOR_CONSTRAINTS["beta_prior"].check(beta_prior, "beta_prior", owner),
    )


@dataclass(frozen=True, eq=False)
class BetaPosterior:
    """Beta(alpha, beta) posteriors of K arms.

    Parameters
    ----------
    alpha : ndarray of shape (n_arms,)
        Prior alpha plus opens, each > 0.
    beta : ndarray of shape (n_arms,)
        Prior beta plus non-opens, each > 0.

    Examples
    --------
    >>> post = BetaPosterior.from_counts([3, 10], [7, 10])
    >>> post.mean().round(3).tolist()
    [0.333, 0.5]
    """

    alpha: FloatArray
    beta: FloatArray

    def __post_init__(self) -> None:
        # Copies: freezing the caller's own arrays would break their code and
        # let later writes to them change this frozen value.
        alpha = np.array(self.alpha, dtype=np.float64)
        beta = np.array(self.beta, dtype=np.float64)
        if alpha.ndim != 1 or alpha.shape != beta.shape or alpha.size == 0:
            raise fail(
                "alpha", "BetaPosterior", "a non-empty 1-d array shaped like beta", alpha.shape
            )
        for name, values in (("alpha", alpha), ("beta", beta)):
            if not np.all(np.isfinite(values) & (values > 0)):
                raise fail(name, "BetaPosterior", "an array of finite floats > 0", values.tolist())
        alpha.setflags(write=False)
        beta.setflags(write=False)
        object.__setattr__(self, "alpha", alpha)
        object.__setattr__(self, "beta", beta)

    @classmethod
    def from_prior(
        cls, n_arms: int, alpha_prior: float = 1.0, beta_prior: float = 1.0
    ) -> BetaPosterior:
        """Posterior before any send: every arm at Beta(alpha_prior, beta_prior)."""
        n = check_int(n_arms, "n_arms", "BetaPosterior", low=1)
        a, b = check_prior(alpha_prior, beta_prior, "BetaPosterior")
        return cls(np.full(n, a), np.full(n, b))

    @classmethod
    def from_counts(
        cls,
        opens: NDArray[np.integer] | NDArray[np.float64] | list[int],
        non_opens: NDArray[np.integer] | NDArray[np.float64] | list[int],
        alpha_prior: float = 1.0,
        beta_prior: float = 1.0,
    ) -> BetaPosterior:
        """Posterior after ``opens`` and ``non_opens`` per arm, from a Beta prior."""
        a, b = check_prior(alpha_prior, beta_prior, "BetaPosterior")
        o = np.asarray(opens, dtype=np.float64)
        f = np.asarray(non_opens, dtype=np.float64)
        for name, values in (("opens", o), ("non_opens", f)):
            if not np.all(values >= 0):
                raise fail(name, "BetaPosterior", "counts >= 0", values.tolist())
        return cls(a + o, b + f)

    @property
    def n_arms(self) -> int:
        """Number of arms K."""
        return int(self.alpha.shape[0])

    def mean(self) -> FloatArray:
        """Posterior mean alpha / (alpha + beta) of each arm, shape (n_arms,)."""
        return self.alpha / (self.alpha + self.beta)

    def updated(self, arm: int, reward: int) -> BetaPosterior:
        """A new posterior with one send of ``arm`` and its 0/1 ``reward`` added."""
        k = check_int(arm, "arm", "BetaPosterior.updated", low=0, high=self.n_arms - 1)
        r = check_int(reward, "reward", "BetaPosterior.updated", low=0, high=1)
        alpha = self.alpha.copy()
        beta = self.beta.copy()
        alpha[k] += r
        beta[k] += 1 - r
        return BetaPosterior(alpha, beta)

    def credible_interval(self, level: float = 0.95) -> tuple[FloatArray, FloatArray]:
        """Equal-tailed credible interval of each arm at ``level``.

        Returns
        -------
        (lower, upper) : two ndarrays of shape (n_arms,)
        """
        from scipy import special

        q = check_float(level, "level", "credible_interval", low=0.0, high=1.0, closed="neither")
        tail = (1.0 - q) / 2.0
        lower = special.betaincinv(self.alpha, self.beta, tail)
        upper = special.betainccinv(self.alpha, self.beta, tail)
        return np.asarray(lower, dtype=np.float64), np.asarray(upper, dtype=np.float64)

    def sample(self, rng: np.random.Generator, n_draws: int) -> FloatArray:
        """``n_draws`` joint draws of θ, shape (n_draws, n_arms)."""
        n = check_int(n_draws, "n_draws", "BetaPosterior.sample", low=1)
        return rng.beta(self.alpha, self.beta, size=(n, self.n_arms))


def _support(posterior: BetaPosterior) -> tuple[FloatArray, FloatArray]:
    from scipy import special

    lo = special.betaincinv(posterior.alpha, posterior.beta, _TAIL)
    hi = special.betainccinv(posterior.alpha, posterior.beta, _TAIL)
    return np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)


# --- probability of best -----------------------------------------------------
#
# The functions from here to best_probabilities are plain numeric Python that
# numba compiles unchanged (headliner.sim.engine compiles KERNEL_FUNCTIONS):
# float64 arrays, loops and the math module only, no exceptions to raise.
#
# They work on the logit u = log(θ / (1 - θ)) of each arm's rate. There the
# Beta(a, b) density g(u) = exp(a log σ(u) + b log(1 - σ(u))) / B(a, b) is
# smooth and log-concave for every a, b > 0, with neither the endpoint
# singularities that θ-space has for a < 1 or b < 1 nor its loss of
# resolution next to θ = 1. One grid in u carries every arm: on each interval
# the arms' CDFs and the integrands of the answer are integrated by the
# two-point quintic Hermite rule, which needs values, first and second
# derivatives at the ends, all of them cheap from g and σ.

# An arm's integration range ends where the mass beyond it is below this.
_EDGE_MASS = 1e-15
_LOG_EDGE_MASS = math.log(_EDGE_MASS)
# Grid step control, in units of the local length scales of the log
# densities. The error goes as the step to the sixth power; at these settings
# it measured below 1e-8 against quadrature oracles on randomized batteries
# (tests/unit/core/test_probability_of_best.py).
_STEP = 0.2
# A log-linear tail of rate λ holding mass τ is stepped at λh <= _STEP
# (_TAIL_WEIGHT / τ)^(1/8): coarse where τ is negligible, never above λh = _MAX_RATE_STEP.
_TAIL_WEIGHT = 0.5
_MAX_RATE_STEP = 1.5
# Bounds the walk along the grid whatever the input: posteriors in the tested
# range need a few hundred nodes, but past alpha + beta ~ 1e15 a step can
# fall below the spacing of doubles and stall.
_MAX_NODES = 1_000_000


def _stirling_rest(x: float) -> float:
    """log Γ(x) - ((x - 1/2) log x - x + log(2π) / 2), to 2e-14 for x >= 10."""
    r = 1.0 / (x * x)
    return (
        1.0 / 12.0 - r * (1.0 / 360.0 - r * (1.0 / 1260.0 - r * (1.0 / 1680.0 - r / 1188.0)))
    ) / x


def _log_gamma(x: float) -> float:
    """log Γ(x) for x > 0, by Stirling's series at x + n >= 10."""
    shift = 1.0
    while x < 10.0:
        shift *= x
        x += 1.0
    return (
        (x - 0.5) * math.log(x)
        - x
        + 0.5 * math.log(2.0 * math.pi)
        + _stirling_rest(x)
        - math.log(shift)
    )


def _log_beta(a: float, b: float) -> float:
    """log B(a, b), without the cancellation of log Γ(a) + log Γ(b) - log Γ(a + b).

    For a = b = 1e7 those terms are 1.5e8 and math.lgamma's rounding leaves
    1e-8 in the difference; here the large terms are a log1p(b / a) and
    similar, good to 3e-9. Built from math.log and math.log1p only, it
    also gives numba and CPython the same bits (math.lgamma differs between
    them by up to 1e-8 at large arguments), so compiled and Python results
    agree to rounding.
    """
    big = max(a, b)
    small = min(a, b)
    total = a + b
    if small >= 10.0:
        return (
            -(big - 0.5) * math.log1p(small / big)
            - (small - 0.5) * math.log1p(big / small)
            - 0.5 * math.log(total)
            + 0.5 * math.log(2.0 * math.pi)
            + _stirling_rest(big)
            + _stirling_rest(small)
            - _stirling_rest(total)
        )
    if big >= 10.0:
        # log Γ(big) - log Γ(total) by Stirling, in terms that stay small.
        return (
            _log_gamma(small)
            - (big - 0.5) * math.log1p(small / big)
            - small * math.log(total)
            + small
            + _stirling_rest(big)
            - _stirling_rest(total)
        )
    return _log_gamma(a) + _log_gamma(b) - _log_gamma(total)


def _logistic(u: float) -> tuple[float, float, float, float]:
    """σ(u), 1 - σ(u) and their logs, without overflow or cancellation for any finite u."""
    if u >= 0.0:
        e = math.exp(-u)
        log1pe = math.log1p(e)
        p = 1.0 / (1.0 + e)
        return p, e * p, -log1pe, -u - log1pe
    e = math.exp(u)
    log1pe = math.log1p(e)
    q = 1.0 / (1.0 + e)
    return e * q, q, u - log1pe, -log1pe


def _tail_bound(a: float, b: float, log_norm: float, u: float) -> tuple[float, float]:
    """Log of g(u) / |d log g / du| (a log-concave density's mass beyond u) and its slope."""
    p, q, log_p, log_q = _logistic(u)
    slope = a * q - b * p
    curvature = (a + b) * p * q
    value = a * log_p + b * log_q - log_norm - math.log(max(abs(slope), 1e-300))
    return value, (slope + curvature / slope if slope != 0.0 else 0.0)


def _tail_edge(a: float, b: float, log_norm: float, side: float) -> float:
    """The u beyond which Beta(a, b) holds less than _EDGE_MASS, on side -1 (left) or +1.

    Doubling steps from the mode find a point past the target, then Newton
    steps on the tangent bound bring it back until the bound is within a
    factor e below the target. The bound is concave enough out there that
    those steps approach the target from outside; one that would not is not
    taken, which ends the search at the last point outside.
    """
    mode = math.log(a) - math.log(b)
    distance = math.sqrt(1.0 / a + 1.0 / b)
    outer = mode + side * distance
    value, slope = _tail_bound(a, b, log_norm, outer)
    while value > _LOG_EDGE_MASS:
        distance *= 2.0
        outer = mode + side * distance
        value, slope = _tail_bound(a, b, log_norm, outer)
    for _ in range(100):
        if value >= _LOG_EDGE_MASS - 1.0:
            break
        x = outer + (_LOG_EDGE_MASS - 0.5 - value) / slope
        x_value, x_slope = _tail_bound(a, b, log_norm, x)
        outside = x_value <= _LOG_EDGE_MASS
        outer, value, slope = (x, x_value, x_slope) if outside else (outer, _LOG_EDGE_MASS, slope)
    return outer


def _rate_weight(slope: float, density: float) -> float:
    """Eighth power of the inverse length scale that a log-linear stretch imposes on the step.

    ``density / |slope|`` bounds the mass left in the tail; the less mass, the
    longer the step may be, up to ``_MAX_RATE_STEP / |slope|``.
    """
    s = abs(slope)
    s2 = s * s
    s4 = s2 * s2
    weighted = min(s4 * s4, s4 * s2 * s * density) / _TAIL_WEIGHT
    return max(weighted, (_STEP / _MAX_RATE_STEP) ** 8 * s4 * s4)


def _curvature_step(curvature: float) -> float:
    """Longest step that a log density with this second derivative allows.

    Besides h² |(log g)''| <= _STEP², the higher derivatives of log g are of
    the order of the curvature too (all are multiples of (a + b) σ^(n)(u)),
    which the sixth-order rule feels as h⁶ |(log g)''| <= _STEP⁶; that one
    binds exactly when the curvature is below 1.
    """
    if curvature >= 1.0:
        return _STEP / math.sqrt(curvature)
    if curvature > 0.0:
        return _STEP * math.pow(curvature, -1.0 / 6.0)
    return math.inf


def _hermite(h: float, f0: float, f1: float, d0: float, d1: float, s0: float, s1: float) -> float:
    """∫ f over an interval of length h from f, f' and f'' at both ends (exact for degree 5)."""
    return h * (0.5 * (f0 + f1) + h * ((d0 - d1) / 10.0 + h * (s0 + s1) / 120.0))


def _shifted(u: float, tolerance: float) -> float:
    """logit(min(1, (1 + tolerance) σ(u))); +inf where (1 + tolerance) σ(u) >= 1."""
    if tolerance == 0.0:
        return u
    p, q, log_p, _ = _logistic(u)
    rest = q - tolerance * p
    if rest <= 0.0:
        return math.inf
    return log_p + math.log1p(tolerance) - math.log(rest)


def within_probabilities(
    alpha: FloatArray, beta: FloatArray, tolerance: float, out: FloatArray
) -> None:
    """P(no other arm beats arm k by more than ``tolerance``) for Beta posteriors.

    Writes ``out[k] = P(max_{j≠k} θ_j <= (1 + tolerance) θ_k)`` for independent
    θ_j ~ Beta(alpha[j], beta[j]). With ``tolerance == 0`` this is the
    probability that arm k is best (ties have probability 0) and the entries
    sum to 1 up to the integration error. With ``tolerance = t > 0`` it is the
    probability that the relative lift of the best arm over arm k,
    (θ_max - θ_k) / θ_k, is at most t: Scott's value-remaining rule ("the 95th
    percentile of that lift is below t") holds for champion c exactly when
    ``out[c] >= 0.95``, decided here without posterior draws.

    Plain numeric code that numba compiles unchanged (see
    :data:`KERNEL_FUNCTIONS`). Inputs are not validated.

    Parameters
    ----------
    alpha, beta : float64 ndarrays of shape (n_arms,)
        Posterior parameters, finite and > 0; tested from 1e-3 to 1e7.
        Rounding grows with alpha + beta (about 1e-16 (alpha + beta) in the
        log densities).
    tolerance : float
        Relative margin t >= 0.
    out : float64 ndarray of shape (n_arms,)
        Receives the probabilities.

    Notes
    -----
    Each arm's density g_k is integrated over u = logit θ, from the point
    ``lo_k`` below which it holds less than 1e-15 to the matching ``hi_k``
    (found with the log-concave tail bound). Arms whose range ends below
    max_k lo_k, even shifted by the tolerance, get 0; the others
    share a grid that starts at their lowest ``lo`` and steps at a fraction of
    the smallest local length scale present: the curvature of each log g
    and, in log-linear tails, its slope, and the slope of the product of the
    CDFs, which is K times one arm's where all K tails are log-linear. On it
    the CDFs G_j are accumulated by the quintic Hermite rule and normalized
    to end at 1 (which also cancels any error in log B(a, b)), and so is

        out[k] = ∫ h_k(v) Π_{j≠k} G_j(v) dv + P(θ_k > σ(v_top) / (1 + t)),

    where v is the logit of (1 + t) θ_k, h_k its density, and v_top the end of
    the grid, above which every G_j is 1. For t = 0, h_k = g_k and the last
    term is 0. Working in v keeps every CDF on the grid (no interpolation)
    and leaves no kink where (1 + t) θ_k reaches 1. The error against
    scipy quadrature oracles was below 1e-8 on randomized batteries
    (tests/unit/core/test_probability_of_best.py).
    """
    n_arms = alpha.shape[0]
    for k in range(n_arms):
        out[k] = 0.0
    if n_arms == 1:
        out[0] = 1.0
        return
    t = tolerance
    log_norm = np.empty(n_arms)
    lo = np.empty(n_arms)
    hi = np.empty(n_arms)
    for k in range(n_arms):
        log_norm[k] = _log_beta(alpha[k], beta[k])
        lo[k] = _tail_edge(alpha[k], beta[k], log_norm[k], -1.0)
        hi[k] = _tail_edge(alpha[k], beta[k], log_norm[k], 1.0)
    # Some arm's θ almost surely lies above floor: an arm that cannot get
    # there even shifted by the tolerance gets 0, and as a CDF it is 1
    # wherever the others' integrands live.
    floor = lo.max()
    # The arms are visited by (alpha, beta), not by index, so that the sums
    # below round alike in any arm order: permuting the arms permutes the
    # answer exactly.
    order = np.argsort(beta, kind="mergesort")
    order = order[np.argsort(alpha[order], kind="mergesort")]
    live = np.empty(n_arms, dtype=np.int64)
    n_live = 0
    start = math.inf
    top = -math.inf
    for k in order:
        if _shifted(hi[k], t) > floor:
            live[n_live] = k
            n_live += 1
            start = min(start, lo[k])
            top = max(top, hi[k])
    if n_live == 1:
        out[live[0]] = 1.0
        return
    # Compact per-arm state of the live arms; index i, arm live[i].
    arm_a = np.empty(n_live)
    arm_b = np.empty(n_live)
    arm_norm = np.empty(n_live)
    arm_lo = np.empty(n_live)
    arm_hi = np.empty(n_live)
    # Where arm i's shifted density h_i(v) is integrated (t > 0 only).
    v_lo = np.empty(n_live)
    v_hi = np.empty(n_live)
    n_breaks = 2 * n_live + (2 * n_live + 1 if t > 0.0 else 0)
    breaks = np.empty(n_breaks)
    for i in range(n_live):
        k = live[i]
        arm_a[i] = alpha[k]
        arm_b[i] = beta[k]
        arm_norm[i] = log_norm[k]
        arm_lo[i] = lo[k]
        arm_hi[i] = hi[k]
        breaks[2 * i] = lo[k]
        breaks[2 * i + 1] = hi[k]
    u_top = start
    if t > 0.0:
        for i in range(n_live):
            v_lo[i] = _shifted(arm_lo[i], t)
            # Far right h_i(v) is a sliver of width about (1 + 1/t) e^-v just
            # below θ = 1 / (1 + t): past this v it holds less than _EDGE_MASS.
            mode = math.log(arm_a[i]) - math.log(arm_b[i])
            _, _, log_p, log_q = _logistic(mode)
            log_peak = arm_a[i] * log_p + arm_b[i] * log_q - arm_norm[i]
            cut = log_peak + math.log1p(1.0 / t) - _LOG_EDGE_MASS
            v_hi[i] = min(_shifted(arm_hi[i], t), cut)
            breaks[2 * n_live + 2 * i] = min(v_lo[i], top)
            breaks[2 * n_live + 2 * i + 1] = min(v_hi[i], top)
        # The grid node where arm k's CDF gives P(θ_k > σ(top) / (1 + t)).
        _, q_top, log_p_top, _ = _logistic(top)
        u_top = max(start, log_p_top - math.log(t + q_top))
        breaks[n_breaks - 1] = u_top
    breaks.sort()

    cdf = np.zeros(n_live)
    top_cdf = np.zeros(n_live)
    # g, g', g'' of each arm at the previous node, then of the integrand of out.
    g_prev = np.zeros(n_live)
    d_prev = np.zeros(n_live)
    s_prev = np.zeros(n_live)
    f_prev = np.zeros(n_live)
    fd_prev = np.zeros(n_live)
    fs_prev = np.zeros(n_live)
    # At the current node: h_k, h_k', h_k'', and g_j / G_j, g_j' / G_j, 1 / G_j.
    h_val = np.zeros(n_live)
    h_d = np.zeros(n_live)
    h_s = np.zeros(n_live)
    rho = np.zeros(n_live)
    rho_d = np.zeros(n_live)
    inv_cdf = np.zeros(n_live)
    acc = np.zeros(n_live)
    log_shift = math.log1p(t)

    v = start
    prev = start
    next_break = 0
    for node in range(_MAX_NODES):
        p, q, log_p, log_q = _logistic(v)
        log_rest = math.log(t + q) if t > 0.0 else 0.0
        step = v - prev
        max_curvature = 0.0
        max_rate = 0.0
        max_total = 0.0
        product = 1.0
        n_zero = 0
        zero_arm = -1
        sum_rho = 0.0
        sum_rho2 = 0.0
        sum_rho_d = 0.0
        for i in range(n_live):
            a = arm_a[i]
            b = arm_b[i]
            g = 0.0
            d = 0.0
            s = 0.0
            if arm_lo[i] <= v <= arm_hi[i]:
                g = math.exp(a * log_p + b * log_q - arm_norm[i])
                slope = a * q - b * p
                curvature = (a + b) * p * q
                d = g * slope
                s = g * (slope * slope - curvature)
                max_curvature = max(max_curvature, curvature)
                # Where slope² <= 0.8 curvature this arm's curvature step is
                # the shorter one: skip the rate weight.
                if slope * slope > 0.8 * curvature:
                    max_rate = max(max_rate, _rate_weight(slope, g))
                max_total = max(max_total, a + b)
                if node > 0 and arm_lo[i] <= prev:
                    cdf[i] += _hermite(step, g_prev[i], g, d_prev[i], d, s_prev[i], s)
            g_prev[i] = g
            d_prev[i] = d
            s_prev[i] = s
            c = cdf[i]
            # A CDF this small means arm i has barely started: count it as 0.
            if c > 1e-300:
                inv = 1.0 / c
                inv_cdf[i] = inv
                product *= c
                rho[i] = g * inv
                rho_d[i] = d * inv
                sum_rho += g * inv
                sum_rho2 += (g * inv) * (g * inv)
                sum_rho_d += d * inv
            else:
                n_zero += 1
                zero_arm = i
            if t == 0.0:
                h_val[i] = g
                h_d[i] = d
                h_s[i] = s
            elif v_lo[i] <= v <= v_hi[i]:
                # h(v) = σ_u^a (1 - σ_u)^(b-1) (1 - σ(v)) / B(a, b), σ_u = σ(v) / (1 + t).
                hv = math.exp(
                    a * (log_p - log_shift)
                    + (b - 1.0) * (log_rest - log_shift)
                    + log_q
                    - arm_norm[i]
                )
                r = p * q / (t + q)
                slope = a * q - (b - 1.0) * r - p
                curvature = -(a + 1.0) * p * q - (b - 1.0) * r * ((1.0 - 2.0 * p) + r)
                h_val[i] = hv
                h_d[i] = hv * slope
                h_s[i] = hv * (slope * slope + curvature)
                max_curvature = max(max_curvature, abs(curvature))
                if slope * slope > 0.8 * abs(curvature):
                    max_rate = max(max_rate, _rate_weight(slope, hv))
                max_total = max(max_total, a + b)
            else:
                h_val[i] = 0.0
                h_d[i] = 0.0
                h_s[i] = 0.0
        if v == u_top:
            for i in range(n_live):
                top_cdf[i] = cdf[i]
        if v >= floor and n_zero == 0:
            # The product of the CDFs rises as steeply as the sum of the
            # arms' log-slopes g_j / G_j (K times one arm's in log-linear
            # tails); its value is the mass to the left.
            max_rate = max(max_rate, _rate_weight(sum_rho, product * sum_rho))
        # The integrand h_k Π_{j≠k} G_j and its derivatives, from the
        # leave-one-out product and sums of g_j / G_j. It is 0 below floor,
        # where the arm that sets floor has not started (f_prev stays 0).
        if v >= floor:
            for i in range(n_live):
                f = 0.0
                fd = 0.0
                fs = 0.0
                if h_val[i] != 0.0 and (n_zero == 0 or (n_zero == 1 and zero_arm == i)):
                    if n_zero == 0:
                        rest = product * inv_cdf[i]
                        s1 = sum_rho - rho[i]
                        s2 = sum_rho2 - rho[i] * rho[i]
                        s3 = sum_rho_d - rho_d[i]
                    else:
                        rest = product
                        s1 = sum_rho
                        s2 = sum_rho2
                        s3 = sum_rho_d
                    rest_d = rest * s1
                    rest_s = rest * (s1 * s1 - s2 + s3)
                    f = h_val[i] * rest
                    fd = h_d[i] * rest + h_val[i] * rest_d
                    fs = h_s[i] * rest + 2.0 * h_d[i] * rest_d + h_val[i] * rest_s
                acc[i] += _hermite(step, f_prev[i], f, fd_prev[i], fd, fs_prev[i], fs)
                f_prev[i] = f
                fd_prev[i] = fd
                fs_prev[i] = fs
        if not v < top:
            break
        while next_break < n_breaks and breaks[next_break] <= v:
            next_break += 1
        stop = breaks[next_break] if next_break < n_breaks else top
        nxt = stop
        if max_total > 0.0:
            h = _curvature_step(max_curvature)
            if max_rate > 0.0:
                h = min(h, _STEP / math.sqrt(math.sqrt(math.sqrt(max_rate))))
            nxt = min(v + h, stop)
            if v < 0.0 and h > 0.1:
                # Curvature (a + b) p q grows toward u = 0, by up to e^h over
                # a step: a long one must also suit its end nearest to 0.
                for _ in range(2):
                    e = math.exp(-abs(min(nxt, 0.0)))
                    limit = v + _curvature_step(max_total * e / ((1.0 + e) * (1.0 + e)))
                    if limit >= nxt:
                        break
                    nxt = limit
        prev = v
        v = nxt

    total = 1.0
    for i in range(n_live):
        total *= cdf[i]
    for i in range(n_live):
        value = acc[i] / total
        if t > 0.0:
            value += 1.0 - top_cdf[i] / cdf[i]
        out[live[i]] = min(1.0, max(0.0, value))


def best_probabilities(alpha: FloatArray, beta: FloatArray, out: FloatArray) -> None:
    """P(arm k has the highest θ) for Beta(alpha, beta) posteriors, summing to 1.

    :func:`within_probabilities` at tolerance 0, divided by its sum so that
    the integration error (below 1e-8) does not show as a total off 1.

    Parameters
    ----------
    alpha, beta : float64 ndarrays of shape (n_arms,)
        Posterior parameters, finite and > 0.
    out : float64 ndarray of shape (n_arms,)
        Receives the probabilities.
    """
    within_probabilities(alpha, beta, 0.0, out)
    total = 0.0
    for k in range(out.shape[0]):
        total += out[k]
    for k in range(out.shape[0]):
        out[k] /= total


# The numba-compatible functions in dependency order: sim.engine compiles each
# one with the names it calls bound to their compiled twins.
KERNEL_FUNCTIONS = (
    _stirling_rest,
    _log_gamma,
    _log_beta,
    _logistic,
    _tail_bound,
    _tail_edge,
    _rate_weight,
    _curvature_step,
    _hermite,
    _shifted,
    within_probabilities,
    best_probabilities,
)


def probability_of_best(posterior: BetaPosterior) -> FloatArray:
    """Probability that each arm has the highest θ, by numerical integration.

    P(k best) = ∫ f_k(x) Π_{j≠k} F_j(x) dx, integrated over the logit of θ
    (absolute error below 1e-8), then normalized so the K probabilities sum
    to exactly 1. One implementation serves the service and the compiled
    simulator: this is :func:`best_probabilities` (see
    :func:`within_probabilities` for the method), run here as plain Python.

    Returns
    -------
    ndarray of shape (n_arms,)
    """
    result = np.empty(posterior.n_arms)
    best_probabilities(posterior.alpha, posterior.beta, result)
    return result


def expected_max(posterior: BetaPosterior) -> float:
    """E[max_k θ_k] by numerical integration of 1 - Π_k F_k(x)."""
    from scipy import integrate, special

    lo, hi = _support(posterior)
    start, stop = float(np.min(lo)), float(np.max(hi))
    a, b = posterior.alpha, posterior.beta

    def integrand(x: float) -> float:
        return float(1.0 - np.prod(special.betainc(a, b, x)))

    points = [float(m) for m in np.clip(posterior.mean(), start, stop)]
    value, _ = integrate.quad(
        integrand, start, stop, points=points, epsabs=1e-11, epsrel=1e-10, limit=400
    )
    # Below `start` every θ exceeds x almost surely, so the integrand is 1 there.
    return start + float(value)


def expected_loss(posterior: BetaPosterior) -> FloatArray:
    """Expected loss E[max θ − θ_k] of committing to each arm, shape (n_arms,).

    Always >= 0; the arm with the smallest loss is the safest pick.
    """
    loss = expected_max(posterior) - posterior.mean()
    return np.maximum(loss, 0.0)


def value_remaining(
    posterior: BetaPosterior,
    rng: np.random.Generator,
    *,
    n_draws: int = 10_000,
    quantile: float = 0.95,
    champion: int | None = None,
) -> float:
    """Scott's value remaining: a high quantile of (θ_max − θ_champion) / θ_champion.

    The champion is the arm with the highest probability of being best unless
    given. The experiment can stop once this falls below a small share (1%)
    of the champion's rate: no other arm is then likely to beat it by more.

    Parameters
    ----------
    posterior : BetaPosterior
    rng : numpy.random.Generator
        Source of the posterior draws; seed it for a reproducible answer.
    n_draws : int, default=10000
    quantile : float, default=0.95
    champion : int or None, default=None
    """
    n = check_int(n_draws, "n_draws", "value_remaining", low=1)
    q = check_float(quantile, "quantile", "value_remaining", low=0.0, high=1.0)
    draws = posterior.sample(rng, n)
    if champion is None:
        champion = int(np.argmax(np.bincount(np.argmax(draws, axis=1), minlength=posterior.n_arms)))
    else:
        champion = check_int(
            champion, "champion", "value_remaining", low=0, high=posterior.n_arms - 1
        )
    best = draws.max(axis=1)
    # A Beta draw can underflow to 0 for tiny alpha; keep the ratio finite.
    base = np.maximum(draws[:, champion], np.finfo(np.float64).tiny)
    lift = (best - draws[:, champion]) / base
    return float(np.quantile(lift, q))
