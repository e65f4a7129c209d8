"""Burn-in, allocation floor, waves and single decisions (headliner.core.allocation)."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from headliner.core.allocation import (
    Decision,
    allocate_wave,
    apply_floor,
    burn_in_deficits,
    check_floor,
    decide,
    decide_winner,
    largest_remainder,
)
from headliner.core.errors import InvalidParameterError
from headliner.core.policies import ABTestThenCommit, ThompsonSampling, UniformRandom

N_DECISIONS = 10_000


def floats(values: list[float]) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)


def ints(values: list[int]) -> np.ndarray:
    return np.asarray(values, dtype=np.int64)


# --- floor ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("floor", "expected"),
    [
        (0.0, [0.7, 0.2, 0.1]),
        (0.05, [0.05 + 0.85 * 0.7, 0.05 + 0.85 * 0.2, 0.05 + 0.85 * 0.1]),
        (1 / 3, [1 / 3, 1 / 3, 1 / 3]),
    ],
    ids=["no-floor", "five-percent", "floor-is-uniform"],
)
def test_apply_floor_mixes_with_uniform(floor: float, expected: list[float]) -> None:
    floored = apply_floor(floats([0.7, 0.2, 0.1]), floor)
    np.testing.assert_allclose(floored, expected, atol=1e-15)
    assert floored.sum() == pytest.approx(1.0, abs=1e-12)
    assert np.all(floored >= floor - 1e-15)


def test_check_floor_allows_up_to_one_over_k() -> None:
    assert check_floor(0.25, 4) == 0.25
    with pytest.raises(
        InvalidParameterError,
        match=r"^The 'floor' parameter of allocation must be a float in the range \[0, 0\.25\]\. "
        r"Got 0\.3 instead\.$",
    ):
        check_floor(0.3, 4)


@pytest.mark.parametrize("floor", [-0.01, 0.6], ids=["negative", "above-one-over-k"])
def test_apply_floor_rejects_impossible_floors(floor: float) -> None:
    with pytest.raises(InvalidParameterError, match=r"^The 'floor' parameter of allocation"):
        apply_floor(floats([0.5, 0.5]), floor)


# --- largest remainder ------------------------------------------------------


@pytest.mark.parametrize(
    ("n_sends", "weights", "expected"),
    [
        (10, [0.5, 0.3, 0.2], [5, 3, 2]),
        (10, [0.55, 0.25, 0.2], [6, 2, 2]),
        (1, [1.0, 1.0, 1.0], [1, 0, 0]),
        (2, [1.0, 1.0, 1.0], [1, 1, 0]),
        (0, [0.2, 0.8], [0, 0]),
        (7, [3.0, 0.0, 1.0], [5, 0, 2]),
    ],
    ids=["exact", "remainder-to-largest", "tie-to-lowest", "two-ties", "no-sends", "weights"],
)
def test_largest_remainder_examples(
    n_sends: int, weights: list[float], expected: list[int]
) -> None:
    counts = largest_remainder(n_sends, floats(weights))
    np.testing.assert_array_equal(counts, expected)
    assert counts.dtype == np.int64


@settings(max_examples=100, deadline=None)
@given(
    n_sends=st.integers(min_value=0, max_value=10**7),
    weights=st.lists(st.floats(min_value=0.0, max_value=1e6), min_size=1, max_size=12).filter(
        lambda w: sum(w) > 0
    ),
)
def test_invariant_largest_remainder_sums_and_stays_within_one(
    n_sends: int, weights: list[float]
) -> None:
    w = floats(weights)
    counts = largest_remainder(n_sends, w)
    quota = n_sends * w / w.sum()
    assert counts.sum() == n_sends
    assert np.all(counts >= 0)
    assert np.all(np.abs(counts - quota) < 1.0 + 1e-9)


@pytest.mark.parametrize(
    ("weights", "shown"),
    [
        ([0.5, -0.1], "[0.5, -0.1]"),
        ([0.0, 0.0], "[0.0, 0.0]"),
        ([[0.5, 0.5]], "[[0.5, 0.5]]"),
        ([np.nan, 1.0], "[nan, 1.0]"),
        ([np.inf, 1.0], "[inf, 1.0]"),
    ],
    ids=["negative", "zero-sum", "2-d", "nan", "inf"],
)
def test_largest_remainder_rejects_bad_weights(weights: list[float], shown: str) -> None:
    # Regression (nan, inf): these used to pass the check and leak a
    # RuntimeWarning from casting NaN quotas to int.
    expected = (
        "The 'weights' parameter of largest_remainder must be finite, non-negative, "
        f"with a positive sum. Got {shown} instead."
    )
    with pytest.raises(InvalidParameterError, match=f"^{re.escape(expected)}$"):
        largest_remainder(3, np.asarray(weights, dtype=np.float64))


def test_largest_remainder_rejects_negative_sends() -> None:
    with pytest.raises(
        InvalidParameterError,
        match=r"^The 'n_sends' parameter of largest_remainder must be an int >= 0\. Got -1",
    ):
        largest_remainder(-1, floats([1.0]))


# --- burn-in and waves ------------------------------------------------------


@pytest.mark.parametrize(
    ("sends", "burn_in", "expected"),
    [([0, 5, 12], 10, [10, 5, 0]), ([3, 3], 0, [0, 0]), ([0, 0], 1, [1, 1])],
    ids=["partly-done", "no-burn-in", "fresh"],
)
def test_burn_in_deficits(sends: list[int], burn_in: int, expected: list[int]) -> None:
    np.testing.assert_array_equal(burn_in_deficits(ints(sends), burn_in), expected)


def test_allocate_wave_fills_burn_in_first_then_follows_probabilities() -> None:
    counts = allocate_wave(100, floats([0.5, 0.25, 0.25]), ints([0, 5, 12]), burn_in=10)
    # 15 sends make up the deficits (10, 5, 0); the other 85 split 0.5/0.25/0.25.
    np.testing.assert_array_equal(counts, [10 + 43, 5 + 21, 0 + 21])
    assert counts.sum() == 100


def test_allocate_wave_smaller_than_the_deficits_splits_them_proportionally() -> None:
    counts = allocate_wave(6, floats([0.0, 0.0, 1.0]), ints([0, 5, 12]), burn_in=10)
    np.testing.assert_array_equal(counts, [4, 2, 0])


def test_allocate_wave_applies_the_floor() -> None:
    counts = allocate_wave(1_000, floats([1.0, 0.0, 0.0]), ints([50, 50, 50]), floor=0.05)
    np.testing.assert_array_equal(counts, [900, 50, 50])


@pytest.mark.parametrize("n_sends", [0, -5], ids=["zero", "negative"])
def test_allocate_wave_needs_a_send(n_sends: int) -> None:
    with pytest.raises(
        InvalidParameterError,
        match=rf"^The 'n_sends' parameter of allocate_wave must be an int >= 1\. Got {n_sends} ",
    ):
        allocate_wave(n_sends, floats([0.5, 0.5]), ints([0, 0]))


# --- single decisions -------------------------------------------------------


def test_decision_is_frozen() -> None:
    decision = Decision(arm=1, propensity=0.5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        decision.arm = 2  # type: ignore[misc]


def test_decide_sends_only_to_arms_short_of_burn_in(
    rng: np.random.Generator, assert_matches_frequencies
) -> None:
    opens, non_opens = floats([1, 0, 0, 3]), floats([9, 2, 0, 7])
    sends = ints([10, 2, 0, 10])
    decisions = [
        decide(ThompsonSampling(), opens, non_opens, sends, floats([0.25] * 4), rng, burn_in=5)
        for _ in range(N_DECISIONS)
    ]
    assert {d.propensity for d in decisions} == {0.5}
    assert_matches_frequencies(floats([0, 0.5, 0.5, 0]), np.array([d.arm for d in decisions]))


@pytest.mark.parametrize("floor", [0.0, 0.1], ids=["no-floor", "floor-0.1"])
def test_decide_draws_from_the_floored_probabilities(
    floor: float, rng: np.random.Generator, assert_matches_frequencies
) -> None:
    policy = ThompsonSampling()
    opens, non_opens = floats([20, 25, 18]), floats([80, 75, 82])
    sends = ints([100, 100, 100])
    p = policy.selection_probabilities(opens, non_opens)
    expected = apply_floor(p, floor)
    decisions = [
        decide(policy, opens, non_opens, sends, p, rng, floor=floor) for _ in range(N_DECISIONS)
    ]
    arms = np.array([d.arm for d in decisions])
    assert_matches_frequencies(expected, arms)
    np.testing.assert_array_equal([d.propensity for d in decisions], expected[arms])


def test_decide_passes_the_prior_to_the_policy(
    rng: np.random.Generator, assert_matches_frequencies
) -> None:
    # An unsent arm against 3 opens in 10: a Beta(1, 99) prior makes it lose.
    policy = ThompsonSampling()
    opens, non_opens, sends = floats([0, 3]), floats([0, 7]), ints([0, 10])
    p = policy.selection_probabilities(opens, non_opens, alpha_prior=1.0, beta_prior=99.0)
    arms = [
        decide(policy, opens, non_opens, sends, p, rng, alpha_prior=1.0, beta_prior=99.0).arm
        for _ in range(N_DECISIONS)
    ]
    assert_matches_frequencies(p, np.array(arms))


@pytest.mark.parametrize(
    ("sends", "expected_arms"),
    [([3, 3], {0, 1}), ([6, 6], {1})],
    ids=["still-testing", "test-over"],
)
def test_decide_counts_all_sends_as_time(
    sends: list[int], expected_arms: set[int], rng: np.random.Generator
) -> None:
    # A/B test of 10 sends: t = 6 is still in the test, t = 12 commits to arm 1.
    policy = ABTestThenCommit(n_test_sends=10)
    opens, non_opens = floats([1, 4]), floats([4, 1])
    p = policy.selection_probabilities(opens, non_opens, t=int(sum(sends)))
    arms = {decide(policy, opens, non_opens, ints(sends), p, rng).arm for _ in range(200)}
    assert arms == expected_arms


@pytest.mark.parametrize(
    ("exploration", "expected"),
    [(0.0, [0.0, 0.0, 1.0, 0.0]), (1.0, [0.25] * 4), (0.3, [0.075, 0.075, 0.775, 0.075])],
    ids=["exploit", "explore-all", "explore-30pct"],
)
def test_decide_winner_explores_a_share_uniformly(
    exploration: float, expected: list[float], rng: np.random.Generator, assert_matches_frequencies
) -> None:
    decisions = [decide_winner(2, 4, exploration, rng) for _ in range(N_DECISIONS)]
    arms = np.array([d.arm for d in decisions])
    assert_matches_frequencies(floats(expected), arms)
    np.testing.assert_allclose([d.propensity for d in decisions], floats(expected)[arms])


def test_decide_winner_rejects_a_share_above_one(rng: np.random.Generator) -> None:
    with pytest.raises(
        InvalidParameterError,
        match=r"^The 'exploration' parameter of decide_winner must be a float in the range "
        r"\[0, 1\]\. Got 1\.5 instead\.$",
    ):
        decide_winner(0, 3, 1.5, rng)


def test_decide_with_uniform_policy_has_uniform_propensity(rng: np.random.Generator) -> None:
    policy = UniformRandom()
    opens, non_opens = floats([5, 1, 0]), floats([5, 9, 0])
    p = policy.selection_probabilities(opens, non_opens)
    decision = decide(policy, opens, non_opens, ints([10, 10, 0]), p, rng)
    assert decision.propensity == pytest.approx(1 / 3)
    assert 0 <= decision.arm < 3
