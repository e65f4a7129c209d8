"""Beta-Bernoulli posterior over K arms and the summaries decisions rest on.

Every arm's open probability θ_k has a Beta(alpha_k, beta_k) posterior; an
open adds 1 to alpha_k, a non-open adds 1 to beta_k. The summaries answer the
questions a campaign owner asks: which headline is best and how sure are we
(:func:`probability_of_best`), what do we lose by picking an arm now
(:func:`expected_loss`), and how much could still be gained by testing on
(:func:`value_remaining`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from headliner.core.validation import check_float, check_int, fail

# scipy.special and scipy.integrate are imported inside the functions that
# use them: a process that only simulates (the seed API, Monte Carlo) never
# loads them, which took the reference experiment's peak memory from 290 to
# 265 MiB.

FloatArray = NDArray[np.float64]

# Integration is confined to where some density is non-negligible: outside the
# [TAIL, 1 - TAIL] quantiles of every arm the integrands are below 1e-12.
_TAIL = 1e-13


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
        a = check_float(alpha_prior, "alpha_prior", "BetaPosterior", low=0.0, closed="neither")
        b = check_float(beta_prior, "beta_prior", "BetaPosterior", low=0.0, closed="neither")
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
        a = check_float(alpha_prior, "alpha_prior", "BetaPosterior", low=0.0, closed="neither")
        b = check_float(beta_prior, "beta_prior", "BetaPosterior", low=0.0, closed="neither")
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


def _best_integrand(
    s: float,
    a_k: float,
    b_k: float,
    log_norm: float,
    a_o: FloatArray,
    b_o: FloatArray,
    below: Callable[..., FloatArray],
    xlog1py: Callable[[float, float], float],
) -> float:
    """Density of log θ_k at s times ``below(a_o, b_o, θ)``, the others' chance to lose.

    ``xlog1py`` is ``scipy.special.xlog1py``, passed in so that this hot
    integrand does not look it up on every call.
    """
    x = math.exp(s)
    log_f = a_k * s + xlog1py(b_k - 1.0, -x) - log_norm
    return float(np.exp(log_f) * np.prod(below(a_o, b_o, x)))


def _integrate(args: tuple[object, ...], start: float, stop: float, peak: float) -> float:
    """Integrate :func:`_best_integrand` for θ in [start, stop], over s = log θ.

    In log space a density that is singular at 0 (alpha < 1) becomes a smooth
    exponential tail that quadrature handles without loss.
    """
    if start >= stop:
        return 0.0
    from scipy import integrate

    low = math.log(start) if start > 0.0 else -math.inf
    inside = math.isfinite(low) and start < peak < stop
    value, _ = integrate.quad(
        _best_integrand,
        low,
        math.log(stop),
        args=args,
        points=[math.log(peak)] if inside else None,
        epsabs=1e-10,
        epsrel=1e-10,
        limit=200,
    )
    return float(value)


def probability_of_best(posterior: BetaPosterior) -> FloatArray:
    """Probability that each arm has the highest θ, by numerical integration.

    P(k best) = ∫ f_k(x) Π_{j≠k} F_j(x) dx, integrated by adaptive quadrature
    over arm k's support (absolute error well below 1e-6), then normalized so
    the K probabilities sum to exactly 1. The half θ > 1/2 is integrated over
    y = 1 - θ, where floats are dense (a posterior with beta < 1 piles mass
    within 1e-16 of θ = 1, which θ itself cannot resolve), and each half over
    the log of its variable (see :func:`_integrate`).

    Returns
    -------
    ndarray of shape (n_arms,)
    """
    k_arms = posterior.n_arms
    if k_arms == 1:
        return np.ones(1)
    from scipy import special

    a, b = posterior.alpha, posterior.beta
    lo, hi = _support(posterior)
    # y = 1 - θ ~ Beta(beta, alpha): the same support, resolved near θ = 1.
    lo_y, hi_y = _support(BetaPosterior(b, a))
    # Below the highest lower bound some other arm is almost surely larger;
    # y_ceiling is that bound, 1 - theta_floor, in y.
    theta_floor = float(np.max(lo))
    y_ceiling = float(np.min(hi_y))
    result = np.zeros(k_arms)
    for k in range(k_arms):
        others = np.arange(k_arms) != k
        log_norm = special.betaln(a[k], b[k])
        lower = (a[k], b[k], log_norm, a[others], b[others], special.betainc, special.xlog1py)
        upper = (b[k], a[k], log_norm, b[others], a[others], special.betaincc, special.xlog1py)
        mean_x, mean_y = float(a[k] / (a[k] + b[k])), float(b[k] / (a[k] + b[k]))
        result[k] = _integrate(
            lower, max(float(lo[k]), theta_floor), min(float(hi[k]), 0.5), mean_x
        )
        result[k] += _integrate(upper, float(lo_y[k]), min(y_ceiling, 0.5), mean_y)
    normalized: FloatArray = result / result.sum()
    return normalized


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


def within_probabilities(
    alpha: FloatArray, beta: FloatArray, tolerance: float, out: FloatArray
) -> None:
    """PLACEHOLDER (dense grid) until the fast quadrature lands."""
    n = alpha.shape[0]
    if n == 1:
        out[0] = 1.0
        return
    lo = 1e300
    hi = -1e300
    for k in range(n):
        mode = math.log(alpha[k] / beta[k])
        scale = math.sqrt(1.0 / alpha[k] + 1.0 / beta[k])
        lo = min(lo, mode - 14.0 * scale - 30.0 / alpha[k])
        hi = max(hi, mode + 14.0 * scale + 30.0 / beta[k])
    m = 20001
    h = (hi - lo) / (m - 1)
    dens = np.zeros((n, m))
    cdf = np.zeros((n, m))
    for k in range(n):
        lb = math.lgamma(alpha[k]) + math.lgamma(beta[k]) - math.lgamma(alpha[k] + beta[k])
        for i in range(m):
            u = lo + i * h
            soft = u + math.log1p(math.exp(-u)) if u > 0 else math.log1p(math.exp(u))
            dens[k, i] = math.exp(alpha[k] * u - (alpha[k] + beta[k]) * soft - lb)
        for i in range(1, m):
            cdf[k, i] = cdf[k, i - 1] + 0.5 * h * (dens[k, i] + dens[k, i - 1])
        total = cdf[k, m - 1]
        for i in range(m):
            cdf[k, i] /= total
            dens[k, i] /= total
    shift = math.log1p(tolerance)
    for k in range(n):
        acc = 0.0
        for i in range(m):
            u = lo + i * h
            x = 1.0 / (1.0 + math.exp(-u))
            xs = x * (1.0 + tolerance)
            prod = dens[k, i]
            if prod == 0.0:
                continue
            if xs < 1.0:
                us = math.log(xs / (1.0 - xs))
                pos = (us - lo) / h
                j = int(pos)
                frac = pos - j
                for q in range(n):
                    if q != k:
                        if j >= m - 1:
                            g = 1.0
                        elif j < 0:
                            g = 0.0
                        else:
                            g = cdf[q, j] + frac * (cdf[q, j + 1] - cdf[q, j])
                        prod *= g
            acc += prod * h
        out[k] = acc
    _ = shift


#: The numba-compatible functions above, for sim.engine to compile.
KERNEL_FUNCTIONS = (within_probabilities,)
