"""Shared fixtures for the unit tests of :mod:`headliner.core`.

Stochastic checks compare a computed probability ``p`` with the frequency seen
in ``n`` seeded draws. The frequency is binomial (one cell of a multinomial),
so its standard error is ``sqrt(p (1 - p) / n)``; a tolerance of
:data:`Z_TOLERANCE` standard errors fails a correct implementation with
probability below 1e-6 per cell, while a real bias of that size shows up.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from numpy.typing import NDArray

# Standard errors allowed between a probability and its Monte Carlo estimate.
Z_TOLERANCE = 5.0

FloatArray = NDArray[np.float64]


@pytest.fixture
def seed() -> int:
    """The seed of every Generator a test makes; any other value must pass too."""
    return 20_240_611


@pytest.fixture
def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _binomial_tolerance(p: FloatArray | float, n: int) -> FloatArray:
    # 5 * sqrt(p (1 - p) / n): the binomial standard error of a frequency of n draws.
    p = np.asarray(p, dtype=np.float64)
    return Z_TOLERANCE * np.sqrt(p * (1.0 - p) / n)


@pytest.fixture
def binomial_tolerance() -> Callable[[FloatArray | float, int], FloatArray]:
    """``tol(p, n)``: Z_TOLERANCE binomial standard errors of a frequency of ``n`` draws."""
    return _binomial_tolerance


@pytest.fixture
def assert_matches_frequencies() -> Callable[[FloatArray, NDArray[np.int64]], None]:
    """``check(p, arms)``: the arms drawn match the probabilities ``p`` cell by cell.

    Every cell of the multinomial count is binomial(n, p_k), so each frequency
    must lie within Z_TOLERANCE binomial standard errors of p_k; a cell with
    p_k = 0 must never be drawn.
    """

    def check(probabilities: FloatArray, arms: NDArray[np.int64]) -> None:
        p = np.asarray(probabilities, dtype=np.float64)
        n = len(arms)
        frequencies = np.bincount(arms, minlength=p.shape[0]) / n
        tolerance = _binomial_tolerance(p, n)
        np.testing.assert_array_less(np.abs(frequencies - p), tolerance + 1e-12)

    return check
