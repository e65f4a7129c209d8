"""The grid integrals of headliner.core.posterior against quadrature oracles.

``within_probabilities`` (and ``probability_of_best`` through it) is checked
against the scipy-quadrature oracles of ``pbest_oracle``, on closed forms,
on invariants, and compiled (as ``sim.engine`` compiles it) against itself in
Python.

Accuracy: the largest absolute error measured was 2.9e-9 against the θ-space
oracle (four seeds of the first battery below, 1,200 posteriors with alpha,
beta in [0.05, 1e7] and K from 2 to 50; on one of them that oracle failed
with an IntegrationWarning, 1.2e-3 off, while the logit oracle agreed with
us to 2e-10), 3.8e-9 against the logit oracle for parameters down to 1e-3
(560 posteriors, K <= 8) and 7.1e-9 for tolerances from 1e-6 to 20 (600
posteriors). The tests demand 1e-7, a margin over those numbers, so that
they catch a real regression and not rounding.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from pbest_oracle import quad_probability_of_best, quad_within_probabilities

from headliner.core.posterior import (
    BetaPosterior,
    best_probabilities,
    probability_of_best,
    within_probabilities,
)
from headliner.sim import engine

FloatArray = NDArray[np.float64]
Case = tuple[FloatArray, FloatArray]

# Required absolute accuracy against the oracles (measured: see the module docstring).
ABS_ERROR = 1e-7
# Python and the compiled twin run the same arithmetic; only libm rounding may differ.
COMPILED_ABS_ERROR = 1e-12


def within(alpha: FloatArray, beta: FloatArray, tolerance: float = 0.0) -> FloatArray:
    out = np.empty(alpha.shape[0])
    within_probabilities(alpha, beta, tolerance, out)
    return out


def random_posteriors(seed: int, n_cases: int, k_max: int, low: float) -> list[Case]:
    """Posteriors of five kinds in turn, K log-uniform in [2, k_max], parameters >= low.

    campaign: a uniform prior plus open counts at a common base rate, up to
    1e6 sends per arm; anywhere: log-uniform alpha and beta in [low, 1e7];
    small: log-uniform in [low, 10]; close: arms within a few standard
    deviations of each other at 1e2 to 1e7 counts; rare: a Jeffreys prior
    plus counts at rates near 0.02, with zero opens common.
    """
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(n_cases):
        k = int(round(math.exp(rng.uniform(math.log(2), math.log(k_max)))))
        kind = i % 5
        if kind == 0:
            rates = rng.uniform(0.01, 0.5) * rng.uniform(0.7, 1.3, k)
            sends = np.floor(10 ** rng.uniform(0, 6, k))
            opens = rng.binomial(sends.astype(np.int64), rates)
            alpha, beta = 1.0 + opens, 1.0 + sends - opens
        elif kind == 1:
            lo = math.log10(low)
            alpha, beta = 10 ** rng.uniform(lo, 7, k), 10 ** rng.uniform(lo, 7, k)
        elif kind == 2:
            lo = math.log10(low)
            alpha, beta = 10 ** rng.uniform(lo, 1, k), 10 ** rng.uniform(lo, 1, k)
        elif kind == 3:
            base_a = 10 ** rng.uniform(2, 7)
            base_b = min(1e7, base_a * 10 ** rng.uniform(-1, 1.5))
            alpha = np.minimum(1e7, base_a * (1 + rng.normal(0, 3 / math.sqrt(base_a), k)))
            beta = np.minimum(1e7, base_b * (1 + rng.normal(0, 1 / math.sqrt(base_b), k)))
        else:
            sends = rng.integers(0, 1_000, k)
            opens = rng.binomial(sends, 0.02)
            alpha, beta = 0.5 + opens, 0.5 + sends - opens
        cases.append((np.asarray(alpha, dtype=np.float64), np.asarray(beta, dtype=np.float64)))
    return cases


# --- against the oracles -----------------------------------------------------


def test_probability_of_best_matches_the_quadrature_oracle_on_a_random_battery() -> None:
    # The former scipy implementation, exact to ~1e-10 where θ resolves the mass.
    errors = [
        np.max(np.abs(within(alpha, beta) - quad_probability_of_best(alpha, beta)))
        for alpha, beta in random_posteriors(seed=2024, n_cases=300, k_max=50, low=0.05)
    ]
    assert max(errors) < ABS_ERROR


def test_tiny_parameters_match_the_logit_oracle() -> None:
    # With alpha near 1e-3 half an arm's mass lies below θ = 1e-300: only the logit oracle sees it.
    errors = [
        np.max(np.abs(within(alpha, beta) - quad_within_probabilities(alpha, beta, 0.0)))
        for alpha, beta in random_posteriors(seed=7, n_cases=60, k_max=6, low=1e-3)
    ]
    assert max(errors) < ABS_ERROR


@pytest.mark.parametrize("tolerance", [1e-6, 0.01, 0.1, 1.0, 20.0])
def test_within_probabilities_match_the_logit_oracle(tolerance: float) -> None:
    cases = random_posteriors(seed=11 + int(1e6 * tolerance), n_cases=40, k_max=8, low=1e-3)
    for alpha, beta in cases:
        expected = quad_within_probabilities(alpha, beta, tolerance)
        np.testing.assert_allclose(within(alpha, beta, tolerance), expected, rtol=0, atol=ABS_ERROR)


def test_the_two_oracles_agree() -> None:
    # The tolerance oracle at t = 0 is an independent check of the θ-space one.
    for alpha, beta in random_posteriors(seed=3, n_cases=20, k_max=6, low=0.05):
        np.testing.assert_allclose(
            quad_within_probabilities(alpha, beta, 0.0),
            quad_probability_of_best(alpha, beta),
            rtol=0,
            atol=ABS_ERROR,
        )


# --- closed forms ------------------------------------------------------------


@pytest.mark.parametrize("tolerance", [0.0, 0.01, 0.5, 3.0])
@pytest.mark.parametrize(
    "alpha",
    [[1e-3, 5e-3, 0.02], [0.3, 2.0, 40.0, 700.0], [1e7, 9.99e6], [1e-3, 1.0, 1e7]],
    ids=["tiny", "spread", "huge", "extremes"],
)
def test_beta_a_one_arms_match_the_closed_form(alpha: list[float], tolerance: float) -> None:
    # F_j(x) = x^a_j, so with A = Σ a_j and c = (1 + t)^-a_k:
    # P(max_{j≠k} θ_j <= (1 + t) θ_k) = (a_k / A) c + 1 - c.
    a = np.array(alpha)
    shrink = (1.0 + tolerance) ** -a
    expected = a / a.sum() * shrink + 1.0 - shrink
    got = within(a, np.ones_like(a), tolerance)
    np.testing.assert_allclose(got, expected, rtol=0, atol=ABS_ERROR)


@pytest.mark.parametrize("beta", [[1e-3, 2e-3, 0.01], [0.05, 0.3, 2.0, 9.0]], ids=["tiny", "mixed"])
def test_one_b_arms_match_inclusion_exclusion(beta: list[float]) -> None:
    # With y = 1 - θ, P(k best) = Σ_{S ⊆ others} (-1)^|S| b_k / (b_k + Σ_S b_j).
    b = np.array(beta)
    expected = [
        math.fsum(
            (-1) ** r * b[k] / (b[k] + sum(b[j] for j in subset))
            for r in range(len(b))
            for subset in itertools.combinations([j for j in range(len(b)) if j != k], r)
        )
        for k in range(len(b))
    ]
    np.testing.assert_allclose(within(np.ones_like(b), b), expected, rtol=0, atol=ABS_ERROR)


def test_one_arm_is_sure() -> None:
    assert within(np.array([3.0]), np.array([7.0])).tolist() == [1.0]
    assert within(np.array([3.0]), np.array([7.0]), 0.1).tolist() == [1.0]


def test_arms_that_cannot_win_get_zero_and_the_leader_one() -> None:
    # θ near 0.5, 0.1 and 0.2, each known to within 0.002: no overlap at all.
    alpha = np.array([50_000.0, 10_000.0, 20_000.0])
    beta = np.array([50_000.0, 90_000.0, 80_000.0])
    assert within(alpha, beta).tolist() == [1.0, 0.0, 0.0]
    # Within 200%, the 0.2 arm comes within reach of the leader (0.6 > 0.5), the 0.1 arm not.
    got = within(alpha, beta, 2.0)
    assert got[0] == 1.0 and got[1] == 0.0
    assert got[2] == pytest.approx(1.0, abs=1e-12)


def test_value_remaining_rule_is_the_within_probability(rng: np.random.Generator) -> None:
    # Scott's rule compares the 95th percentile of (θ_max - θ_c) / θ_c with t:
    # the share of draws with lift <= t is out[c], a binomial frequency.
    alpha = np.array([240.0, 200.0, 221.0])
    beta = np.array([760.0, 800.0, 779.0])
    draws = BetaPosterior(alpha, beta).sample(rng, 400_000)
    for tolerance in (0.02, 0.1, 0.2):
        p = within(alpha, beta, tolerance)[0]
        lift = (draws.max(axis=1) - draws[:, 0]) / draws[:, 0]
        frequency = np.mean(lift <= tolerance)
        # 5 binomial standard errors of a frequency of 400,000 draws.
        assert abs(frequency - p) < 5 * math.sqrt(p * (1 - p) / draws.shape[0]) + 1e-12


def test_probability_of_best_is_best_probabilities_normalized() -> None:
    alpha = np.array([36.0, 42.0, 32.0, 48.0, 40.0])
    beta = np.array([164.0, 158.0, 168.0, 152.0, 160.0])
    raw = within(alpha, beta)
    p_best = probability_of_best(BetaPosterior(alpha, beta))
    out = np.empty(5)
    best_probabilities(alpha, beta, out)
    np.testing.assert_array_equal(p_best, out)
    np.testing.assert_allclose(p_best, raw / raw.sum(), rtol=1e-15, atol=0)
    assert abs(p_best.sum() - 1.0) < 1e-15


# --- compiled ----------------------------------------------------------------


def test_compiled_twins_return_the_python_numbers() -> None:
    cases = random_posteriors(seed=5, n_cases=40, k_max=30, low=1e-3)
    cases += [(np.array([2.0]), np.array([5.0]))]
    tolerances = itertools.cycle([0.0, 0.0, 0.01, 1.5])
    for (alpha, beta), tolerance in zip(cases, tolerances, strict=False):
        compiled = np.empty(alpha.shape[0])
        engine.kernels.within_probabilities(alpha, beta, tolerance, compiled)
        np.testing.assert_allclose(
            compiled, within(alpha, beta, tolerance), rtol=0, atol=COMPILED_ABS_ERROR
        )
        engine.kernels.best_probabilities(alpha, beta, compiled)
        np.testing.assert_allclose(
            compiled,
            probability_of_best(BetaPosterior(alpha, beta)),
            rtol=0,
            atol=COMPILED_ABS_ERROR,
        )


# --- invariants (Hypothesis) ---------------------------------------------------

PARAMETER = st.floats(min_value=-3.0, max_value=7.0).map(lambda e: 10.0**e)
TOLERANCE = st.sampled_from([0.0, 1e-6, 0.01, 0.05, 0.3, 2.0])


@st.composite
def posteriors(draw: st.DrawFn, max_arms: int = 6) -> Case:
    n_arms = draw(st.integers(min_value=1, max_value=max_arms))
    alpha = draw(st.lists(PARAMETER, min_size=n_arms, max_size=n_arms))
    beta = draw(st.lists(PARAMETER, min_size=n_arms, max_size=n_arms))
    return np.array(alpha), np.array(beta)


@settings(max_examples=80, deadline=None)
@given(case=posteriors(), tolerance=TOLERANCE)
def test_invariant_probabilities_are_probabilities(case: Case, tolerance: float) -> None:
    got = within(*case, tolerance)
    assert np.all((got >= 0.0) & (got <= 1.0))
    if tolerance == 0.0:
        # The arms' P(best) add to 1 up to the integration error.
        assert abs(got.sum() - 1.0) < ABS_ERROR


@settings(max_examples=40, deadline=None)
@given(case=posteriors(), tolerance=TOLERANCE, seed=st.integers(0, 2**32 - 1))
def test_invariant_arm_order_does_not_matter(case: Case, tolerance: float, seed: int) -> None:
    alpha, beta = case
    order = np.random.default_rng(seed).permutation(alpha.shape[0])
    # The arms are summed in an order of their own, so the answer permutes exactly.
    np.testing.assert_array_equal(
        within(alpha[order], beta[order], tolerance), within(alpha, beta, tolerance)[order]
    )


@settings(max_examples=40, deadline=None)
@given(
    a=PARAMETER,
    b=PARAMETER,
    n_arms=st.integers(min_value=2, max_value=8),
    tolerance=TOLERANCE,
)
def test_invariant_identical_arms_get_equal_probability(
    a: float, b: float, n_arms: int, tolerance: float
) -> None:
    got = within(np.full(n_arms, a), np.full(n_arms, b), tolerance)
    # Identical arms go through identical arithmetic.
    assert np.all(got == got[0])
    if tolerance == 0.0:
        assert got[0] == pytest.approx(1.0 / n_arms, abs=ABS_ERROR)


@settings(max_examples=40, deadline=None)
@given(case=posteriors(max_arms=5), tolerances=st.lists(TOLERANCE, min_size=2, max_size=2))
def test_invariant_monotone_in_tolerance(case: Case, tolerances: list[float]) -> None:
    low, high = sorted(tolerances)
    # A wider margin is a larger event; each value is within ABS_ERROR of the truth.
    assert np.all(within(*case, low) <= within(*case, high) + 2 * ABS_ERROR)
