"""Test-only oracles for headliner.core.posterior's probability-of-best integrals.

:func:`quad_probability_of_best` is the implementation that
``probability_of_best`` used before the compiled grid integral replaced it:
adaptive scipy quadrature over log θ, with the half θ > 1/2 integrated over
log(1 - θ). Its one change is the normalizing log B(a, b): scipy's ``betaln``
is off by up to 1e-7 for parameters near 1e7 (it subtracts log-gammas of
~1.5e8), which showed as errors of that size in P(best); :func:`log_beta`
is good to 3e-9 there. The oracle needs every arm's mass where a double
resolves θ: alpha, beta >= 0.05 (a Beta(0.01, b) holds most of its mass
below θ = 1e-300).

:func:`quad_within_probabilities` integrates the tolerance version
P(max_{j≠k} θ_j <= (1 + t) θ_k) over u = logit θ, with each CDF taken from
scipy's ``betainc`` where θ and 1 - θ are representable and from the first
term of its series beyond, so it serves any alpha, beta > 0, and at t = 0
checks the first oracle too.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray
from scipy import integrate, special

FloatArray = NDArray[np.float64]

# The old support: outside [TAIL, 1 - TAIL] quantiles the integrands are below 1e-12.
_TAIL = 1e-13


def _stirling_rest(x: float) -> float:
    """log Γ(x) - [(x - 1/2) log x - x + log(2π)/2], to 1e-13 for x >= 10."""
    return 1.0 / (12.0 * x) - 1.0 / (360.0 * x**3) + 1.0 / (1260.0 * x**5)


def log_beta(a: float, b: float) -> float:
    """log B(a, b) without subtracting large log-gammas (3e-9 at a = b = 1e7)."""
    a, b = max(a, b), min(a, b)
    if a < 10.0:
        return float(special.betaln(a, b))
    c = a + b
    if b < 10.0:
        # log Γ(a) - log Γ(a + b) by Stirling, in terms that stay small.
        return (
            math.lgamma(b)
            - (a - 0.5) * math.log1p(b / a)
            - b * math.log(c)
            + b
            + _stirling_rest(a)
            - _stirling_rest(c)
        )
    return (
        -(a - 0.5) * math.log1p(b / a)
        - (b - 0.5) * math.log1p(a / b)
        - 0.5 * math.log(c)
        + 0.5 * math.log(2.0 * math.pi)
        + _stirling_rest(a)
        + _stirling_rest(b)
        - _stirling_rest(c)
    )


# --- the former implementation ------------------------------------------------


def _support(alpha: FloatArray, beta: FloatArray) -> tuple[FloatArray, FloatArray]:
    lo = special.betaincinv(alpha, beta, _TAIL)
    hi = special.betainccinv(alpha, beta, _TAIL)
    return np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)


def _best_integrand(
    s: float,
    a_k: float,
    b_k: float,
    log_norm: float,
    a_o: FloatArray,
    b_o: FloatArray,
    below: Callable[..., FloatArray],
) -> float:
    """Density of log θ_k at s times ``below(a_o, b_o, θ)``, the others' chance to lose."""
    x = math.exp(s)
    log_f = a_k * s + special.xlog1py(b_k - 1.0, -x) - log_norm
    return float(np.exp(log_f) * np.prod(below(a_o, b_o, x)))


def _integrate(args: tuple[object, ...], start: float, stop: float, peak: float) -> float:
    """Integrate :func:`_best_integrand` for θ in [start, stop], over s = log θ."""
    if start >= stop:
        return 0.0
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


def quad_probability_of_best(alpha: FloatArray, beta: FloatArray) -> FloatArray:
    """P(arm k has the highest θ) by adaptive quadrature, normalized to sum to 1."""
    a = np.asarray(alpha, dtype=np.float64)
    b = np.asarray(beta, dtype=np.float64)
    k_arms = a.shape[0]
    if k_arms == 1:
        return np.ones(1)
    lo, hi = _support(a, b)
    # y = 1 - θ ~ Beta(beta, alpha): the same support, resolved near θ = 1.
    lo_y, hi_y = _support(b, a)
    theta_floor = float(np.max(lo))
    y_ceiling = float(np.min(hi_y))
    result = np.zeros(k_arms)
    for k in range(k_arms):
        others = np.arange(k_arms) != k
        log_norm = log_beta(float(a[k]), float(b[k]))
        lower = (a[k], b[k], log_norm, a[others], b[others], special.betainc)
        upper = (b[k], a[k], log_norm, b[others], a[others], special.betaincc)
        mean_x, mean_y = float(a[k] / (a[k] + b[k])), float(b[k] / (a[k] + b[k]))
        result[k] = _integrate(
            lower, max(float(lo[k]), theta_floor), min(float(hi[k]), 0.5), mean_x
        )
        result[k] += _integrate(upper, float(lo_y[k]), min(y_ceiling, 0.5), mean_y)
    normalized: FloatArray = result / result.sum()
    return normalized


# --- the tolerance version over the logit -----------------------------------

# Below this θ (or 1 - θ), I_θ(a, b) is its series' first term to double precision.
_LOG_TINY = math.log(1e-250)


def _log_sigmoid(u: float) -> float:
    return -math.log1p(math.exp(-u)) if u >= 0.0 else u - math.log1p(math.exp(u))


def _log_density(a: float, b: float, log_norm: float, u: float) -> float:
    """log of the Beta(a, b) density of u = logit θ."""
    return a * _log_sigmoid(u) + b * _log_sigmoid(-u) - log_norm


def _cdf(a: float, b: float, log_norm: float, v: float) -> float:
    """P(logit θ <= v) for θ ~ Beta(a, b), also where θ or 1 - θ underflows."""
    if v == math.inf:
        return 1.0
    log_p, log_q = _log_sigmoid(v), _log_sigmoid(-v)
    if log_p < _LOG_TINY:
        # I_x(a, b) = x^a (1 - x)^b / (a B(a, b)) (1 + O(x)).
        return math.exp(a * log_p + b * log_q - math.log(a) - log_norm)
    if log_q < _LOG_TINY:
        return -math.expm1(a * log_p + b * log_q - math.log(b) - log_norm)
    if log_p < math.log(0.5):
        return float(special.betainc(a, b, math.exp(log_p)))
    return 1.0 - float(special.betainc(b, a, math.exp(log_q)))


def _shifted(u: float, t: float) -> float:
    """logit(min(1, (1 + t) σ(u)))."""
    if t == 0.0:
        return u
    rest = math.exp(_log_sigmoid(-u)) - t * math.exp(_log_sigmoid(u))
    if rest <= 0.0:
        return math.inf
    return _log_sigmoid(u) + math.log1p(t) - math.log(rest)


def _edge(a: float, b: float, log_norm: float, side: int) -> float:
    """A u beyond which Beta(a, b) holds less than 1e-17 (log-concave tail bound, bisection)."""
    mode = math.log(a) - math.log(b)

    def log_tail(u: float) -> float:
        slope = a * math.exp(_log_sigmoid(-u)) - b * math.exp(_log_sigmoid(u))
        return _log_density(a, b, log_norm, u) - math.log(max(abs(slope), 1e-300))

    inner, outer = mode, mode + side * math.sqrt(1.0 / a + 1.0 / b)
    while log_tail(outer) > math.log(1e-17):
        inner, outer = outer, outer + 2.0 * (outer - mode)
    for _ in range(200):
        middle = 0.5 * (inner + outer)
        if log_tail(middle) > math.log(1e-17):
            inner = middle
        else:
            outer = middle
    return outer


def _quad(f: Callable[[float], float], x0: float, x1: float) -> float:
    """Adaptive quadrature to 1e-12 absolute, or 1e-10 where rounding noise forbids that."""
    with warnings.catch_warnings():
        # A quadrature that misses its tolerance must fail the test, not warn.
        warnings.simplefilter("error", integrate.IntegrationWarning)
        try:
            value, _ = integrate.quad(f, x0, x1, epsabs=1e-12, epsrel=1e-10, limit=500)
        except integrate.IntegrationWarning:
            # Near 1e7 the CDFs' own rounding noise can exceed 1e-12 on a piece.
            value, _ = integrate.quad(f, x0, x1, epsabs=1e-10, epsrel=1e-10, limit=500)
    return float(value)


def quad_within_probabilities(alpha: FloatArray, beta: FloatArray, tolerance: float) -> FloatArray:
    """P(max_{j≠k} θ_j <= (1 + tolerance) θ_k) for each k, by quadrature over logit θ_k.

    Arm k's density is integrated against Π_{j≠k} G_j(logit((1 + t) θ_k)) up
    to θ_k = 1 / (1 + t); above it the event is sure and arm k's remaining
    mass is added. The quadrature is split at every arm's mode and quantile
    points and, for a < 2 or b < 2, along the slowly decaying tails; the last
    piece below 1 / (1 + t), where a CDF with b < 1 has a cusp, is integrated
    over log(logit(1 / (1 + t)) - u).
    """
    a = [float(x) for x in alpha]
    b = [float(x) for x in beta]
    t = float(tolerance)
    n = len(a)
    log_norm = [log_beta(a[k], b[k]) for k in range(n)]
    lo = [_edge(a[k], b[k], log_norm[k], -1) for k in range(n)]
    hi = [_edge(a[k], b[k], log_norm[k], 1) for k in range(n)]
    # (1 + t) θ reaches 1 at u = logit(1 / (1 + t)) = -log t.
    cusp = -math.log(t) if t > 0.0 else math.inf
    out = np.zeros(n)
    for k in range(n):
        others = [j for j in range(n) if j != k]

        def integrand(u: float, k: int = k, others: list[int] = others) -> float:
            v = _shifted(u, t)
            value = math.exp(_log_density(a[k], b[k], log_norm[k], u))
            for j in others:
                if value == 0.0:
                    break
                value *= _cdf(a[j], b[j], log_norm[j], v)
            return value

        start, stop = lo[k], hi[k]
        total = 0.0
        if cusp < stop:
            total = 1.0 if cusp <= start else 1.0 - _cdf(a[k], b[k], log_norm[k], cusp)
            stop = cusp
        points = []
        for j in range(n):
            mode = math.log(a[j]) - math.log(b[j])
            width = math.sqrt(1.0 / a[j] + 1.0 / b[j])
            spots = [mode + z * width for z in (-8, -4, -2, -1, 0, 1, 2, 4, 8)]
            if a[j] < 2.0:  # a log-linear left tail: split it in e-folds
                spots += [mode - m / a[j] for m in range(1, 40, 3)]
            if b[j] < 2.0:
                spots += [mode + m / b[j] for m in range(1, 40, 3)]
            for w in spots:
                # The u whose shift is w: σ(u) = σ(w) / (1 + t).
                u = w if t == 0.0 else _log_sigmoid(w) - math.log(t + math.exp(_log_sigmoid(-w)))
                if start < u < min(stop, cusp - 1e-3):
                    points.append(u)
        edges = [start, *sorted(set(points)), stop]
        for x0, x1 in zip(edges[:-1], edges[1:], strict=True):
            if x1 <= x0:
                continue
            if x1 != cusp:
                total += _quad(integrand, x0, x1)
                continue

            # The piece ending at the cusp, over s = log(cusp - u): there the
            # cusp of a CDF with b < 1 becomes a smooth tail.
            def in_log_distance(s: float, f: Callable[[float], float] = integrand) -> float:
                return f(cusp - math.exp(s)) * math.exp(s)

            top = math.log(x1 - x0)
            marks = [m for m in (-300.0, -100.0, -30.0, -10.0, -3.0, -1.0) if m < top]
            for s0, s1 in zip([-700.0, *marks], [*marks, top], strict=True):
                total += _quad(in_log_distance, s0, s1)
        out[k] = total
    return out
