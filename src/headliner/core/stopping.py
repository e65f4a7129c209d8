"""When is a winner clear? Probability-of-best and value-remaining stopping rules.

Two criteria that the field uses, alone or together:

* probability of best: the champion's P(best) reaches a threshold (0.99);
* value remaining (Scott 2015, used by Google Analytics content experiments
  and Braze): a high percentile of (θ_max − θ_champion) / θ_champion is below
  a share (1%) of the champion's rate, so little is left to gain by testing
  on. It is computed exactly: the percentile is below ``t`` iff P(no headline
  beats the champion by more than ``t``) reaches the percentile, one
  quadrature (:func:`~headliner.core.posterior.within_probabilities`) rather
  than Monte Carlo draws, so a verdict is the same on every worker.

Neither fires during burn-in or before the experiment has ``min_opens`` opens:
a guard on the information the whole experiment has gathered, not on the
sends of each headline (Thompson Sampling rightly starves clear losers, and a
per-headline minimum would then never be met where the winner is clearest).

The rule judges the headlines' delay-aware counts (:mod:`headliner.core.delay`)
under a prior pooled across them (:func:`stopping_posterior`): headlines'
open rates usually differ by about ``rate_spread`` (10%), so an early lead
of a few hundred sends is mostly noise, and a headline Thompson Sampling sent
too thinly to know is most likely an ordinary one rather than a possible
winner. Independent flat priors do neither: early looks then stop on lucky
streaks, and many thinly sent headlines keep the rule from ever being sure.

The rule is looked at once per ``check_interval_seconds`` (the first refresh
after each multiple of the interval since the experiment started). Every look
is a chance to stop on a lucky streak, so the control of that error is by
design: the pooled prior and the thresholds were calibrated together by
simulation of the campaigns the service runs, looked at hourly
(``benchmarks/decision_quality.py``): two headlines 4% apart, the reference
five, a clear winner, 40 headlines and an all-equal set. The defaults
(P(best) >= 0.99, or the 97th percentile of the value remaining below 1%,
with a 10% spread) declare a headline within 1% of the best in at least 95%
of declarations there, and still declare by the end of the list in at least
90% of campaigns with a winner to find.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Literal, get_args

import numpy as np
from numpy.typing import NDArray

from headliner.core.posterior import MIN_PRIOR, within_probabilities
from headliner.core.validation import Constraint, Interval, Options, fail, validate_params

FloatArray = NDArray[np.float64]

#: Most sends the pooled prior of :func:`stopping_posterior` counts as.
MAX_POOLED_STRENGTH = 1e7

#: Indices of :meth:`StoppingRule.params`, the vector the compiled check reads.
P_BEST, VALUE_REMAINING, QUANTILE, REQUIRE_ALL, MIN_OPENS, SPREAD = range(6)


#: Whether one enabled criterion suffices to declare a winner, or all must hold.
Require = Literal["any", "all"]


@dataclass(frozen=True)
class StoppingRule:
    """Settings of the stopping decision.

    Parameters
    ----------
    p_best_threshold : float or None, default=0.99
        Declare when the champion's probability of being best reaches this;
        None turns the criterion off.
    value_remaining_threshold : float or None, default=0.01
        Declare when the value remaining falls below this share of the
        champion's rate; None turns the criterion off.
    value_remaining_quantile : float, default=0.97
        The percentile of the value remaining that must fall below the
        threshold (Scott's rule uses 0.95; 0.97 keeps hourly looks honest,
        see the module docstring).
    require : {"any", "all"}, default="any"
        Whether one enabled criterion suffices or all must hold.
    min_opens : int, default=100
        No declaration before the experiment has this many counted opens.
    check_interval_seconds : float, default=3600.0
        The rule is looked at once per interval (0: at every posterior refresh).
    rate_spread : float or None, default=0.1
        How much headlines' open rates usually differ, as a relative standard
        deviation. The rule judges the headlines under a prior centred on the
        experiment's pooled rate with that spread (:func:`stopping_posterior`),
        so that an early lead made of noise, or a headline sent too thinly to
        know, does not decide it. None: the experiment's own Beta prior.
    """

    p_best_threshold: float | None = 0.99
    value_remaining_threshold: float | None = 0.01
    value_remaining_quantile: float = 0.97
    require: Require = "any"
    min_opens: int = 100
    check_interval_seconds: float = 3600.0
    rate_spread: float | None = 0.1

    parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "p_best_threshold": Interval(float, 0.5, 1.0, optional=True),
        "value_remaining_threshold": Interval(float, 0.0, 1.0, closed="neither", optional=True),
        "value_remaining_quantile": Interval(float, 0.5, 1.0, closed="left"),
        "require": Options(get_args(Require)),
        "min_opens": Interval(int, 0),
        "check_interval_seconds": Interval(float, 0.0, 366 * 86400.0),
        "rate_spread": Interval(float, 0.0, 10.0, closed="right", optional=True),
    }

    def __post_init__(self) -> None:
        owner = "StoppingRule"
        if self.p_best_threshold is None and self.value_remaining_threshold is None:
            raise fail(
                "p_best_threshold", owner, "set when value_remaining_threshold is None", None
            )
        validate_params(self.parameter_constraints, vars(self), owner)

    def params(self) -> FloatArray:
        """The rule as the float vector :func:`declared_winner` reads (0 = criterion off)."""
        values = np.zeros(6)
        values[P_BEST] = self.p_best_threshold or 0.0
        values[VALUE_REMAINING] = self.value_remaining_threshold or 0.0
        values[QUANTILE] = self.value_remaining_quantile
        values[REQUIRE_ALL] = 1.0 if self.require == "all" else 0.0
        values[MIN_OPENS] = float(self.min_opens)
        values[SPREAD] = self.rate_spread or 0.0
        return values


def stopping_posterior(
    rule: FloatArray,
    effective_opens: FloatArray,
    effective_non_opens: FloatArray,
    alpha_prior: float,
    beta_prior: float,
    alpha_out: FloatArray,
    beta_out: FloatArray,
) -> None:
    """The Beta posterior the stopping rule judges, from the headlines' effective counts.

    With a ``rate_spread`` s, every headline's prior is centred on the
    experiment's pooled rate p with the strength ``n0 = (1 - p) / (s² p)`` that
    gives it a relative standard deviation of s (an empirical-Bayes,
    hierarchical prior: headlines' rates usually differ by about s), counting
    for at most :data:`MAX_POOLED_STRENGTH` sends and at least
    :data:`~headliner.core.posterior.MIN_PRIOR` on either side. Without
    one, the experiment's own ``Beta(alpha_prior, beta_prior)``.
    """
    n = effective_opens.shape[0]
    a0 = alpha_prior
    b0 = beta_prior
    spread = rule[SPREAD]
    if spread > 0.0:
        opens = 0.0
        sends = 0.0
        for k in range(n):
            opens += effective_opens[k]
            sends += effective_opens[k] + effective_non_opens[k]
        pooled = (opens + 1.0) / (sends + 2.0)
        # A tiny spread (or a pooled rate near 0) asks for a prior stronger than
        # millions of sends, a wide one over a pooled rate near 1 for one far
        # weaker than the integration of P(best) is good for (see MIN_PRIOR).
        strength = min((1.0 - pooled) / (spread * spread * pooled), MAX_POOLED_STRENGTH)
        a0 = max(strength * pooled, MIN_PRIOR)
        b0 = max(strength * (1.0 - pooled), MIN_PRIOR)
    for k in range(n):
        alpha_out[k] = a0 + effective_opens[k]
        beta_out[k] = b0 + effective_non_opens[k]


def declared_winner(
    rule: FloatArray,
    effective_opens: FloatArray,
    effective_non_opens: FloatArray,
    alpha_prior: float,
    beta_prior: float,
    n_opens: float,
    ready: bool,
    p_best_out: FloatArray,
    within_out: FloatArray,
) -> int:
    """Apply the stopping rule: the arm to declare, or -1 to go on.

    Writes P(best) of every arm under :func:`stopping_posterior` into
    ``p_best_out`` and the probability that no arm beats each arm by more
    than the value-remaining threshold into ``within_out`` (P(best) again
    when that criterion is off).

    Parameters
    ----------
    rule : ndarray
        :meth:`StoppingRule.params`.
    effective_opens, effective_non_opens : ndarrays of shape (n_arms,)
        The headlines' delay-aware counts.
    alpha_prior, beta_prior : float
        The experiment's prior (used when the rule has no ``rate_spread``).
    n_opens : float
        Counted opens of the experiment so far.
    ready : bool
        Burn-in is over (no declaration before).
    """
    n = effective_opens.shape[0]
    alpha = np.empty(n)
    beta = np.empty(n)
    stopping_posterior(
        rule, effective_opens, effective_non_opens, alpha_prior, beta_prior, alpha, beta
    )
    within_probabilities(alpha, beta, 0.0, p_best_out)
    total = 0.0
    for k in range(n):
        total += p_best_out[k]
    champion = 0
    for k in range(n):
        p_best_out[k] /= total
        if p_best_out[k] > p_best_out[champion]:
            champion = k
    if rule[VALUE_REMAINING] > 0.0:
        within_probabilities(alpha, beta, rule[VALUE_REMAINING], within_out)
    else:
        for k in range(n):
            within_out[k] = p_best_out[k]
    if not ready or n_opens < rule[MIN_OPENS] or n < 2:
        return -1
    held = 0
    enabled = 0
    if rule[P_BEST] > 0.0:
        enabled += 1
        if p_best_out[champion] >= rule[P_BEST]:
            held += 1
    if rule[VALUE_REMAINING] > 0.0:
        enabled += 1
        if within_out[champion] > rule[QUANTILE]:
            held += 1
    met = held == enabled if rule[REQUIRE_ALL] > 0.0 else held > 0
    return champion if met else -1


def value_remaining_at(
    alpha: FloatArray, beta: FloatArray, champion: int, quantile: float, scratch: FloatArray
) -> float:
    """Scott's value remaining of ``champion``, exactly: the ``quantile`` of (θ_max − θ_c) / θ_c.

    The smallest ``t`` with P(no arm beats the champion by more than ``t``) >=
    ``quantile``, found by bisection to 1e-6 (relative lift), capped at 100 (10,000%).
    ``scratch`` is a work array of shape (n_arms,).
    """
    if alpha.shape[0] < 2:
        return 0.0
    within_probabilities(alpha, beta, 0.0, scratch)
    if scratch[champion] >= quantile:
        return 0.0
    lo = 0.0
    hi = 1.0
    within_probabilities(alpha, beta, hi, scratch)
    while scratch[champion] < quantile and hi < 100.0:
        lo = hi
        hi *= 4.0
        within_probabilities(alpha, beta, hi, scratch)
    while hi - lo > 1e-6:
        middle = 0.5 * (lo + hi)
        within_probabilities(alpha, beta, middle, scratch)
        if scratch[champion] >= quantile:
            hi = middle
        else:
            lo = middle
    return hi


#: The numba-compatible functions above, for sim.engine to compile.
KERNEL_FUNCTIONS = (stopping_posterior, declared_winner, value_remaining_at)


@dataclass(frozen=True)
class StoppingVerdict:
    """Outcome of one stopping check.

    Attributes
    ----------
    winner : int or None
        The arm to declare, or None while the experiment should go on.
    champion : int
        The arm with the highest probability of being best.
    p_best : ndarray of shape (n_arms,)
    p_within : float
        The champion's probability that no arm beats it by more than the
        value-remaining threshold (its P(best) when that criterion is off).
    reasons : tuple of str
        The criteria that held (empty when ``winner`` is None).
    """

    winner: int | None
    champion: int
    p_best: FloatArray
    p_within: float
    reasons: tuple[str, ...]


def evaluate_stopping(
    rule: StoppingRule,
    effective_opens: FloatArray | list[float],
    effective_non_opens: FloatArray | list[float],
    n_opens: float,
    *,
    alpha_prior: float = 1.0,
    beta_prior: float = 1.0,
    ready: bool = True,
    check: Callable[..., int] = declared_winner,
) -> StoppingVerdict:
    """Check ``rule`` against the headlines' counts (see :func:`declared_winner`).

    ``check`` is :func:`declared_winner` itself or its compiled twin
    (``headliner.sim.engine.kernels.declared_winner``), which the service
    passes: the same rule, faster.

    Examples
    --------
    >>> verdict = evaluate_stopping(StoppingRule(), [240, 150], [760, 850], n_opens=390)
    >>> verdict.winner, verdict.reasons[0][:9]
    (0, 'P(best) 1')
    """
    opens = np.asarray(effective_opens, dtype=np.float64)
    non_opens = np.asarray(effective_non_opens, dtype=np.float64)
    n = opens.shape[0]
    p_best = np.empty(n)
    within = np.empty(n)
    winner = check(
        rule.params(),
        opens,
        non_opens,
        float(alpha_prior),
        float(beta_prior),
        float(n_opens),
        ready,
        p_best,
        within,
    )
    champion = int(np.argmax(p_best))
    reasons: list[str] = []
    if winner >= 0:
        if rule.p_best_threshold is not None and p_best[champion] >= rule.p_best_threshold:
            reasons.append(f"P(best) {p_best[champion]:.4f} >= {rule.p_best_threshold}")
        threshold = rule.value_remaining_threshold
        if threshold is not None and within[champion] > rule.value_remaining_quantile:
            reasons.append(
                f"P(no headline beats it by more than {threshold:.2%}) "
                f"{within[champion]:.4f} > {rule.value_remaining_quantile}"
            )
    return StoppingVerdict(
        winner=winner if winner >= 0 else None,
        champion=champion,
        p_best=p_best,
        p_within=float(within[champion]),
        reasons=tuple(reasons),
    )
