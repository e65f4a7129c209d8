"""When is a winner clear? Probability-of-best and value-remaining stopping rules.

Two rules that the field uses, alone or together:

* probability of best: the leading arm's P(best) reaches a threshold (0.95);
* value remaining (Scott 2015, used by Google Analytics content experiments
  and Braze): the 95th percentile of (θ_max − θ_champion) / θ_champion is below
  a share (1%) of the champion's rate, so little is left to gain by testing on.

Neither fires before every arm has a minimum number of matured sends, which
guards against declaring a winner on thin data. The posterior handed to the
rule should be the matured cohort's (sends whose outcome is final, and the
opens among them): with delayed feedback, opens arrive before non-opens do,
and a posterior that counts them early favours the arms whose traffic grew
recently. The service builds it from ``ArmCounts.matured`` and
``ArmCounts.matured_opens``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from headliner.core.posterior import BetaPosterior, probability_of_best, value_remaining
from headliner.core.validation import check_float, check_int, fail

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class StoppingRule:
    """Settings of the stopping decision.

    Parameters
    ----------
    p_best_threshold : float or None, default=0.95
        Stop when the champion's probability of being best reaches this; None
        turns the criterion off.
    value_remaining_threshold : float or None, default=0.01
        Stop when the value remaining falls below this share of the
        champion's rate; None turns the criterion off.
    require : {"any", "all"}, default="any"
        Whether one enabled criterion suffices or all must hold.
    min_matured_sends_per_arm : int, default=100
        No decision before every arm has this many matured sends (sends whose
        outcome is final).
    n_draws : int, default=10000
        Posterior draws for the value-remaining quantile.
    """

    p_best_threshold: float | None = 0.95
    value_remaining_threshold: float | None = 0.01
    require: Literal["any", "all"] = "any"
    min_matured_sends_per_arm: int = 100
    n_draws: int = 10_000

    def __post_init__(self) -> None:
        owner = "StoppingRule"
        if self.p_best_threshold is None and self.value_remaining_threshold is None:
            raise fail(
                "p_best_threshold", owner, "set when value_remaining_threshold is None", None
            )
        if self.p_best_threshold is not None:
            check_float(self.p_best_threshold, "p_best_threshold", owner, low=0.5, high=1.0)
        if self.value_remaining_threshold is not None:
            check_float(
                self.value_remaining_threshold,
                "value_remaining_threshold",
                owner,
                low=0.0,
                closed="neither",
            )
        if self.require not in ("any", "all"):
            raise fail("require", owner, "one of 'any', 'all'", self.require)
        check_int(self.min_matured_sends_per_arm, "min_matured_sends_per_arm", owner, low=0)
        check_int(self.n_draws, "n_draws", owner, low=100)


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
    value_remaining : float
        Scott's 95th-percentile relative value remaining.
    reasons : tuple of str
        The criteria that held (empty when ``winner`` is None).
    """

    winner: int | None
    champion: int
    p_best: FloatArray
    value_remaining: float
    reasons: tuple[str, ...]


def evaluate_stopping(
    rule: StoppingRule,
    posterior: BetaPosterior,
    matured_sends: NDArray[np.int64],
    rng: np.random.Generator,
    *,
    p_best: FloatArray | None = None,
) -> StoppingVerdict:
    """Check ``rule`` against ``posterior``.

    Parameters
    ----------
    rule : StoppingRule
    posterior : BetaPosterior
        The matured cohort's posterior (see the module docstring).
    matured_sends : ndarray of shape (n_arms,)
        Sends per arm whose outcome is final.
    rng : numpy.random.Generator
        Draws for value remaining; seed it for a reproducible verdict.
    p_best : ndarray of shape (n_arms,), optional
        Reuse an already computed probability of best.
    """
    probabilities = probability_of_best(posterior) if p_best is None else p_best
    champion = int(np.argmax(probabilities))
    remaining = value_remaining(posterior, rng, n_draws=rule.n_draws, champion=champion)
    held: list[str] = []
    checks: list[bool] = []
    if rule.p_best_threshold is not None:
        ok = bool(probabilities[champion] >= rule.p_best_threshold)
        checks.append(ok)
        if ok:
            held.append(f"P(best) {probabilities[champion]:.4f} >= {rule.p_best_threshold}")
    if rule.value_remaining_threshold is not None:
        ok = remaining < rule.value_remaining_threshold
        checks.append(ok)
        if ok:
            held.append(f"value remaining {remaining:.4f} < {rule.value_remaining_threshold}")
    enough = bool(np.all(np.asarray(matured_sends) >= rule.min_matured_sends_per_arm))
    met = enough and (all(checks) if rule.require == "all" else any(checks))
    return StoppingVerdict(
        winner=champion if met else None,
        champion=champion,
        p_best=probabilities,
        value_remaining=remaining,
        reasons=tuple(held) if met else (),
    )
