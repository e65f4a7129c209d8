"""From a policy to sends: burn-in, allocation floor, winner exploration, waves, single sends.

One decision path for the service and the simulator. A running experiment
splits traffic by the policy's selection probabilities under two guards:

* burn-in, counted in evidence: a headline is *short* while its effective
  (delay-adjusted) sends are below ``burn_in``. While every headline is short
  the split is even. A headline that is short while others are established (one
  added mid-run) gets at most an even share; together the short headlines get
  at most ``burn_in_share``, and the established ones split the rest by the
  policy, computed over them alone;
* floor: each headline keeps at least ``floor`` of the traffic, so one that is
  behind early can still recover (K · floor must not exceed 1).

Once a winner is declared, the winner gets everything but an ``exploration``
share spread evenly.

:func:`guarded_probabilities` gives the split, which is the propensity of each
headline and the share of a wave (rounded by :func:`split_wave`);
:func:`guarded_choice` draws one send with exactly those probabilities, using
the policy's own rule (one Beta draw per headline for Thompson Sampling). Both
are plain numeric Python that :mod:`headliner.sim.engine` compiles; with no
guard active :func:`guarded_choice` takes exactly the draws of
:func:`~headliner.core.policies.choose_arm`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from headliner.core.policies import choose_arm, selection_probabilities_rule
from headliner.core.validation import Interval, check_int, fail

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]


#: The guards around the policy, in the service and in the campaign simulator.
GUARD_CONSTRAINTS: dict[str, Interval] = {
    # effective (delay-adjusted) sends each headline needs before the policy takes over
    "burn_in_per_arm": Interval(int, 0, 10_000_000),
    # cap on the total share of headlines still in burn-in while others are established
    "burn_in_share": Interval(float, 0.0, 1.0),
    # minimum share of sends per headline; K headlines also need K x floor <= 1
    "floor": Interval(float, 0.0, 1.0, closed="left"),
    # share of sends still spread evenly after a winner is declared
    "winner_exploration": Interval(float, 0.0, 1.0),
}


def check_floor(floor: float, n_arms: int, owner: str = "allocation") -> float:
    """Return ``floor`` if ``n_arms`` arms can each keep that share, else raise.

    Examples
    --------
    >>> check_floor(0.25, 4)
    0.25
    """
    share = GUARD_CONSTRAINTS["floor"].check(floor, "floor", owner)
    if share * n_arms > 1.0:
        raise fail("floor", owner, f"at most 1/{n_arms} with {n_arms} headlines", floor)
    return share


# --- compiled-compatible rules ----------------------------------------------------
def short_share(n_short: int, n_arms: int, burn_in_share: float) -> float:
    """Share of traffic that the ``n_short`` headlines in burn-in get together."""
    if n_short == 0:
        return 0.0
    if n_short == n_arms:
        return 1.0
    return min(burn_in_share, n_short / n_arms)


def _established(
    opens: FloatArray, non_opens: FloatArray, short: BoolArray
) -> tuple[IntArray, FloatArray, FloatArray]:
    """Positions and counts of the headlines out of burn-in."""
    n_est = 0
    for k in range(short.shape[0]):
        if not short[k]:
            n_est += 1
    index = np.empty(n_est, dtype=np.int64)
    opens_e = np.empty(n_est)
    non_opens_e = np.empty(n_est)
    i = 0
    for k in range(short.shape[0]):
        if not short[k]:
            index[i] = k
            opens_e[i] = opens[k]
            non_opens_e[i] = non_opens[k]
            i += 1
    return index, opens_e, non_opens_e


def guarded_probabilities(
    policy: int,
    params: FloatArray,
    opens: FloatArray,
    non_opens: FloatArray,
    t: int,
    memory: IntArray,
    short: BoolArray,
    burn_in_share: float,
    floor: float,
    out: FloatArray,
) -> None:
    """Write each headline's share of the next sends into ``out`` (see the module docstring).

    Parameters
    ----------
    policy, params, opens, non_opens, t, memory
        As :func:`~headliner.core.policies.selection_probabilities_rule`;
        ``opens`` and ``non_opens`` are effective counts.
    short : bool ndarray of shape (n_arms,)
        Headlines still in burn-in.
    burn_in_share : float
        Cap on the short headlines' total share while others are established.
    floor : float
        Minimum share per headline, K · floor <= 1.
    out : ndarray of shape (n_arms,)
    """
    n = out.shape[0]
    n_short = 0
    for k in range(n):
        if short[k]:
            n_short += 1
    if n_short == 0:
        selection_probabilities_rule(policy, params, opens, non_opens, t, memory, out)
    elif n_short == n:
        for k in range(n):
            out[k] = 1.0 / n
    else:
        q = short_share(n_short, n, burn_in_share)
        index, opens_e, non_opens_e = _established(opens, non_opens, short)
        inner = np.empty(index.shape[0])
        selection_probabilities_rule(policy, params, opens_e, non_opens_e, t, memory, inner)
        for k in range(n):
            out[k] = q / n_short if short[k] else 0.0
        for i in range(index.shape[0]):
            out[index[i]] = (1.0 - q) * inner[i]
    if floor > 0.0:
        for k in range(n):
            out[k] = floor + (1.0 - n * floor) * out[k]


def guarded_choice(
    policy: int,
    params: FloatArray,
    opens: FloatArray,
    non_opens: FloatArray,
    t: int,
    memory: IntArray,
    short: BoolArray,
    burn_in_share: float,
    floor: float,
    rng: np.random.Generator,
) -> int:
    """Draw one send's headline with the probabilities of :func:`guarded_probabilities`.

    Draw order: the floor's uniform test (only when ``floor > 0``), the burn-in
    share's test (only when some but not all headlines are short), then the
    policy's own draws, so that with no guard active the stream is consumed
    exactly as by :func:`~headliner.core.policies.choose_arm`.
    """
    n = short.shape[0]
    if floor > 0.0 and rng.random() < n * floor:
        return int(rng.integers(0, n))
    n_short = 0
    for k in range(n):
        if short[k]:
            n_short += 1
    if n_short == 0:
        return choose_arm(policy, params, opens, non_opens, t, memory, rng)
    if n_short == n:
        return int(rng.integers(0, n))
    if rng.random() < short_share(n_short, n, burn_in_share):
        pick = int(rng.integers(0, n_short))
        for k in range(n):
            if short[k]:
                if pick == 0:
                    return k
                pick -= 1
    index, opens_e, non_opens_e = _established(opens, non_opens, short)
    return int(index[choose_arm(policy, params, opens_e, non_opens_e, t, memory, rng)])


def winner_probabilities(winner: int, exploration: float, out: FloatArray) -> None:
    """After a declaration: the winner, except an ``exploration`` share spread evenly.

    ``winner < 0`` (the winner was retired by hand) spreads every send evenly.
    """
    n = out.shape[0]
    for k in range(n):
        out[k] = exploration / n if winner >= 0 else 1.0 / n
    if winner >= 0:
        out[winner] += 1.0 - exploration


def winner_choice(winner: int, n_arms: int, exploration: float, rng: np.random.Generator) -> int:
    """Draw one send with the probabilities of :func:`winner_probabilities`."""
    if winner < 0 or (exploration > 0.0 and rng.random() < exploration):
        return int(rng.integers(0, n_arms))
    return winner


def split_wave(n_sends: int, weights: FloatArray, out: IntArray) -> None:
    """Split ``n_sends`` in proportion to ``weights`` into integers that sum to ``n_sends``.

    Hamilton's method: floor every quota, then hand the leftover sends to the
    largest remainders (ties to the lowest index), so no arm is ever more than
    one send away from its exact share. ``weights`` are >= 0 with a positive sum.
    """
    n = weights.shape[0]
    total = 0.0
    for k in range(n):
        total += weights[k]
    remainder = np.empty(n)
    given = 0
    for k in range(n):
        quota = n_sends * weights[k] / total
        out[k] = int(np.floor(quota))
        remainder[k] = quota - out[k]
        given += out[k]
    order = np.argsort(-remainder, kind="mergesort")
    for i in range(n_sends - given):
        out[order[i]] += 1


#: The numba-compatible functions above, in dependency order, for sim.engine to compile.
KERNEL_FUNCTIONS = (
    short_share,
    _established,
    guarded_probabilities,
    guarded_choice,
    winner_probabilities,
    winner_choice,
    split_wave,
)


# --- Python entry points ----------------------------------------------------------
def largest_remainder(n_sends: int, weights: FloatArray) -> IntArray:
    """Validated :func:`split_wave`: ``n_sends`` in proportion to ``weights``.

    Examples
    --------
    >>> largest_remainder(10, np.array([0.5, 0.3, 0.2])).tolist()
    [5, 3, 2]
    """
    n = check_int(n_sends, "n_sends", "largest_remainder", low=0)
    w = np.asarray(weights, dtype=np.float64)
    total = float(w.sum()) if w.ndim == 1 else float("nan")
    if w.ndim != 1 or not np.isfinite(total) or total <= 0 or np.any(w < 0):
        raise fail(
            "weights", "largest_remainder", "finite, non-negative, with a positive sum", w.tolist()
        )
    counts = np.zeros(w.shape[0], dtype=np.int64)
    split_wave(n, w, counts)
    return counts
