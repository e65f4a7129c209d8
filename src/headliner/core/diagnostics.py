"""What the logged propensities say about a running experiment.

Every decision logs the probability with which its headline was chosen (its
propensity; for a wave, the headline's share of the wave). Two checks follow
from them, both computed from groups of sends that share a propensity, so a
store can hand over ``GROUP BY`` rows instead of every decision:

- :func:`extra_opens_over_even_split`, the opens gained over splitting every
  send evenly, by inverse propensity weighting (the off-policy estimate of
  what an even split would have got from the same sends);
- :func:`sample_ratio_mismatch`, whether the sends per headline are what the
  logged propensities lead one to expect (a sample-ratio-mismatch test: a
  pipeline that drops or repeats some sends, or a propensity logged wrongly,
  fails it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from headliner.core.validation import fail

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

#: Two-sided 95% normal quantile.
_Z95 = 1.959963984540054


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its 95% interval."""

    value: float
    low: float
    high: float


@dataclass(frozen=True)
class SampleRatioTest:
    """Sends per headline against what the logged propensities expect.

    Attributes
    ----------
    observed : ndarray of int
        Sends per headline.
    expected : ndarray of float
        The sends each headline should have had given its logged propensities:
        all sends times the harmonic mean of its propensities (with a fixed
        propensity ``p`` that is ``p`` times all sends).
    statistic : float
        The chi-square statistic (Pearson's when every propensity is the same).
    dof : int
        Its degrees of freedom.
    p_value : float
        Chance of a statistic at least this large when sends follow the
        propensities; NaN when there is nothing to test (no sends, one headline).
    """

    observed: IntArray
    expected: FloatArray
    statistic: float
    dof: int
    p_value: float


def _groups(**columns: ArrayLike) -> dict[str, FloatArray]:
    arrays = {name: np.asarray(value, dtype=np.float64).ravel() for name, value in columns.items()}
    sizes = {a.size for a in arrays.values()}
    if len(sizes) > 1:
        shapes = {name: a.size for name, a in arrays.items()}
        raise fail("groups", "diagnostics", "arrays of one length", shapes)
    propensity = arrays.get("propensity")
    if (
        propensity is not None
        and propensity.size
        and not np.all((propensity > 0.0) & (propensity <= 1.0))
    ):
        raise fail("propensity", "diagnostics", "in (0, 1]", propensity.tolist())
    return arrays


def extra_opens_over_even_split(
    propensity: ArrayLike, n_arms: ArrayLike, sends: ArrayLike, opens: ArrayLike
) -> Estimate:
    """Opens gained over an even split of the same sends, with a 95% interval.

    Each send that opened counts 1 for the experiment and ``1 / (K p)`` for an
    even split over its ``K`` headlines (inverse propensity weighting: the even
    split would have chosen that headline with probability ``1 / K`` where the
    experiment chose it with ``p``). The experiment's opens are known; the
    interval (normal, 95%) is that of the even split's estimated opens, from
    the sample variance of the per-send weights.

    Parameters
    ----------
    propensity : array_like of float
        Per group, the probability in (0, 1] its sends had of their headline.
    n_arms : array_like of int
        Per group, the headlines an even split would have spread over.
    sends, opens : array_like of int
        Per group, its sends and the opens among them so far.

    Returns
    -------
    Estimate
        Zero with an empty interval when there are no sends.

    Examples
    --------
    Two headlines sent with probability 1/2 each: no gain over an even split.

    >>> extra_opens_over_even_split([0.5, 0.5], [2, 2], [100, 100], [10, 30]).value
    0.0
    """
    g = _groups(propensity=propensity, n_arms=n_arms, sends=sends, opens=opens)
    n = float(g["sends"].sum())
    if n == 0.0:
        return Estimate(0.0, 0.0, 0.0)
    # An even split's opens, estimated send by send: opened / (K p); non-opens add 0.
    weight = 1.0 / (g["n_arms"] * g["propensity"])
    even = float((g["opens"] * weight).sum())
    second = float((g["opens"] * weight**2).sum())
    variance = max(second / n - (even / n) ** 2, 0.0)
    half = _Z95 * math.sqrt(n * variance)
    total = float(g["opens"].sum()) - even
    return Estimate(total, total - half, total + half)


def sample_ratio_mismatch(
    arm: ArrayLike,
    propensity: ArrayLike,
    sends: ArrayLike,
    n_arms: int,
    stratum: ArrayLike | None = None,
) -> SampleRatioTest:
    """Test whether the sends per headline fit the logged propensities.

    Under the logged propensities, a headline's sends weighted by one over
    their propensity estimate the number of all sends (Horvitz-Thompson):
    ``T_k = sum(sends / p) - N`` has mean 0 for every headline, variance
    ``N`` times the mean of ``1/p - 1`` over all sends (estimated from the
    headline's own sends, weighted by ``1/p`` and normalised by ``sum(1/p)``
    rather than ``N``), and covariance ``-N`` between two headlines (each send
    went to exactly one). The statistic is ``T' S^+ T`` over the positive
    eigenvalues of that covariance ``S``, chi-square with as many degrees of
    freedom for large samples. With a fixed propensity ``1/K`` it is Pearson's
    goodness-of-fit test with ``K - 1`` degrees of freedom. Sends with
    propensity 1 are left out: no choice was made (a declared winner), and the
    other headlines, which had no chance of them, would read as starved.

    Parameters
    ----------
    arm : array_like of int
        Per group, the headline's position (0 .. ``n_arms`` - 1).
    propensity, sends : array_like
        Per group, the propensity in (0, 1] and the number of sends.
    n_arms : int
        The headlines every send could have gone to.
    stratum : array_like, optional
        Per group, a label of the set of headlines its sends could go to (for
        example how many were active). The test runs within each stratum,
        where that set is fixed, and adds the statistics and degrees of
        freedom: a headline added mid-run had no chance before, which the
        covariance above assumes it had.

    Returns
    -------
    SampleRatioTest
    """
    if stratum is not None:
        labels = np.asarray(stratum).ravel()
        arms = np.asarray(arm).ravel()
        chances = np.asarray(propensity, dtype=np.float64).ravel()
        counts = np.asarray(sends, dtype=np.float64).ravel()
        if not labels.size == arms.size == chances.size == counts.size:
            raise fail("stratum", "sample_ratio_mismatch", "one label per group", labels.size)
        parts = [
            sample_ratio_mismatch(arms[at], chances[at], counts[at], n_arms)
            for at in (labels == label for label in np.unique(labels))
        ]
        dof = sum(part.dof for part in parts)
        statistic = float(sum(part.statistic for part in parts if part.dof))
        observed = np.zeros(n_arms, dtype=np.int64)
        expected = np.zeros(n_arms)
        for part in parts:
            observed += part.observed
            expected += part.expected
        return _finish(observed, expected, statistic, dof)
    g = _groups(arm=arm, propensity=propensity, sends=sends)
    chosen = g["propensity"] < 1.0
    g = {name: column[chosen] for name, column in g.items()}
    if n_arms < 1:
        raise fail("n_arms", "sample_ratio_mismatch", "at least 1", n_arms)
    index = g["arm"].astype(np.int64)
    if index.size and (index.min() < 0 or index.max() >= n_arms):
        raise fail("arm", "sample_ratio_mismatch", f"in [0, {n_arms - 1}]", index.tolist())
    observed = np.bincount(index, weights=g["sends"], minlength=n_arms).round().astype(np.int64)
    n = float(observed.sum())
    weight = 1.0 / g["propensity"]
    weighted = np.bincount(index, weights=g["sends"] * weight, minlength=n_arms)
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = np.where(weighted > 0.0, n * observed / weighted, 0.0)
    # A headline without sends says nothing of its propensities: it is left out
    # (the others' covariance is unchanged by leaving it out).
    seen = observed > 0
    if n == 0.0 or n_arms < 2 or not seen.any():
        return SampleRatioTest(observed, expected, 0.0, 0, math.nan)
    # Var T_k = sum over all sends of (1/p_k - 1); the ratio estimate from the
    # headline's sends makes it exactly Pearson's N (K - 1) for a fixed 1/K.
    spread = np.bincount(index, weights=g["sends"] * weight * (weight - 1.0), minlength=n_arms)
    variance = n * spread[seen] / weighted[seen]
    deviation = weighted[seen] - n
    covariance = np.diag(variance + n) - n
    # Estimated, the covariance can be singular (exactly so for a fixed 1/K) or have
    # a slightly negative direction: the test runs on its positive eigenvalues.
    values, vectors = np.linalg.eigh(covariance)
    keep = values > 1e-9 * max(float(np.abs(values).max()), 1.0)
    dof = int(keep.sum())
    projected = vectors[:, keep].T @ deviation
    return _finish(observed, expected, float(np.sum(projected**2 / values[keep])), dof)


def _finish(
    observed: IntArray, expected: FloatArray, statistic: float, dof: int
) -> SampleRatioTest:
    if dof == 0:
        return SampleRatioTest(observed, expected, 0.0, 0, math.nan)
    from scipy import stats

    return SampleRatioTest(observed, expected, statistic, dof, float(stats.chi2.sf(statistic, dof)))
