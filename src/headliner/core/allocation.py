"""From selection probabilities to sends: burn-in, allocation floor, waves, single decisions.

The service asks two things of a policy: which arm for this one send (with the
probability it had of being chosen, the propensity), and how to split a wave
of N sends. Both start from the policy's selection probabilities and apply the
same two guards:

* burn-in: until every arm has ``burn_in`` sends, sends go only to the arms
  still short of it, uniformly;
* floor: each arm keeps at least ``floor`` of the traffic, so a headline that
  is behind early can still recover (K · floor must not exceed 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from headliner.core.policies import Policy
from headliner.core.validation import check_float, check_int, fail

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


@dataclass(frozen=True)
class Decision:
    """One send's arm and the probability that the policy chose it then."""

    arm: int
    propensity: float


def check_floor(floor: float, n_arms: int, owner: str = "allocation") -> float:
    """Return ``floor`` if ``n_arms`` arms can each keep that share, else raise."""
    return check_float(floor, "floor", owner, low=0.0, high=1.0 / n_arms)


def apply_floor(probabilities: FloatArray, floor: float) -> FloatArray:
    """Mix ``probabilities`` with a uniform split so that each arm gets at least ``floor``.

    Returns ``floor + (1 - K · floor) · p``, which sums to 1 like ``p``.
    """
    p = np.asarray(probabilities, dtype=np.float64)
    f = check_floor(floor, p.shape[0])
    floored: FloatArray = f + (1.0 - p.shape[0] * f) * p
    return floored


def largest_remainder(n_sends: int, weights: FloatArray) -> IntArray:
    """Split ``n_sends`` in proportion to ``weights`` into integers that sum to ``n_sends``.

    Hamilton's method: floor every quota, then hand the leftover sends to the
    largest remainders (ties to the lowest index), so no arm is ever more than
    one send away from its exact share.
    """
    n = check_int(n_sends, "n_sends", "largest_remainder", low=0)
    w = np.asarray(weights, dtype=np.float64)
    total = float(w.sum())
    if w.ndim != 1 or not np.isfinite(total) or total <= 0 or np.any(w < 0):
        raise fail(
            "weights", "largest_remainder", "finite, non-negative, with a positive sum", w.tolist()
        )
    quota = n * w / total
    counts = np.floor(quota).astype(np.int64)
    leftover = n - int(counts.sum())
    order = np.argsort(-(quota - counts), kind="stable")
    counts[order[:leftover]] += 1
    return counts


def burn_in_deficits(sends: IntArray, burn_in: int) -> IntArray:
    """Sends each arm still needs before its burn-in is over, shape (n_arms,)."""
    return np.maximum(burn_in - np.asarray(sends, dtype=np.int64), 0)


def allocate_wave(
    n_sends: int,
    probabilities: FloatArray,
    sends: IntArray,
    *,
    burn_in: int = 0,
    floor: float = 0.0,
) -> IntArray:
    """Split a wave of ``n_sends`` over the arms.

    Burn-in deficits are filled first; what is left follows the floored
    selection probabilities (probability matching), rounded by
    :func:`largest_remainder`.

    Parameters
    ----------
    n_sends : int
        Size of the wave, >= 1.
    probabilities : ndarray of shape (n_arms,)
        The policy's selection probabilities.
    sends : ndarray of shape (n_arms,)
        Sends made so far per arm (settled or pending).
    burn_in : int, default=0
    floor : float, default=0.0

    Returns
    -------
    ndarray of shape (n_arms,)
        Sends per arm, summing to ``n_sends``.
    """
    n = check_int(n_sends, "n_sends", "allocate_wave", low=1)
    deficits = burn_in_deficits(sends, burn_in)
    if deficits.sum() >= n:
        return largest_remainder(n, deficits.astype(np.float64))
    rest = n - int(deficits.sum())
    return deficits + largest_remainder(rest, apply_floor(probabilities, floor))


def decide(
    policy: Policy,
    opens: FloatArray,
    non_opens: FloatArray,
    sends: IntArray,
    probabilities: FloatArray,
    rng: np.random.Generator,
    *,
    alpha_prior: float = 1.0,
    beta_prior: float = 1.0,
    burn_in: int = 0,
    floor: float = 0.0,
) -> Decision:
    """Choose the arm for one send, with burn-in and floor, and its propensity.

    Parameters
    ----------
    policy : Policy
    opens, non_opens : ndarray of shape (n_arms,)
        Settled outcomes per arm.
    sends : ndarray of shape (n_arms,)
        Sends so far per arm, pending ones included (burn-in counts these).
    probabilities : ndarray of shape (n_arms,)
        ``policy.selection_probabilities`` for these counts; the propensity
        is read from it (it may be a few seconds stale in the service).
    rng : numpy.random.Generator
    """
    n_arms = len(opens)
    short = np.flatnonzero(burn_in_deficits(sends, burn_in))
    if short.size:
        return Decision(int(short[rng.integers(0, short.size)]), 1.0 / short.size)
    if floor > 0.0 and rng.random() < n_arms * floor:
        arm = int(rng.integers(0, n_arms))
    else:
        arm = policy.choose(
            opens,
            non_opens,
            rng,
            alpha_prior=alpha_prior,
            beta_prior=beta_prior,
            t=int(np.sum(sends)),
        )
    return Decision(arm, float(apply_floor(probabilities, floor)[arm]))


def decide_winner(
    winner: int, n_arms: int, exploration: float, rng: np.random.Generator
) -> Decision:
    """After a winner is declared: the winner, except an ``exploration`` share spread uniformly."""
    share = check_float(exploration, "exploration", "decide_winner", low=0.0, high=1.0)
    arm = int(rng.integers(0, n_arms)) if share > 0.0 and rng.random() < share else winner
    propensity = share / n_arms + (1.0 - share) * (arm == winner)
    return Decision(arm, float(propensity))
