"""Burn-in in evidence, allocation floor, winner exploration and waves (core.allocation)."""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from headliner.core.allocation import (
    check_floor,
    guarded_choice,
    guarded_probabilities,
    largest_remainder,
    short_share,
    winner_choice,
    winner_probabilities,
)
from headliner.core.errors import InvalidParameterError
from headliner.core.policies import Policy, ThompsonSampling, TopTwoThompson, UniformRandom

N_DECISIONS = 10_000


def floats(values: list[float]) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)


def flags(values: list[bool]) -> NDArray[np.bool_]:
    return np.asarray(values, dtype=np.bool_)


@pytest.fixture
def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def probabilities(
    policy: Policy,
    opens: list[float],
    non_opens: list[float],
    short: list[bool],
    *,
    share: float = 1.0,
    floor: float = 0.0,
) -> np.ndarray:
    out = np.empty(len(opens))
    guarded_probabilities(
        policy.code, policy.params(), floats(opens), floats(non_opens), 0,
        np.full(1, -1, dtype=np.int64), flags(short), share, floor, out,
    )  # fmt: skip
    return out


def choices(
    policy: Policy,
    opens: list[float],
    non_opens: list[float],
    short: list[bool],
    rng: np.random.Generator,
    *,
    share: float = 1.0,
    floor: float = 0.0,
    n: int = N_DECISIONS,
) -> np.ndarray:
    memory = np.full(1, -1, dtype=np.int64)
    o, f, s = floats(opens), floats(non_opens), flags(short)
    return np.array(
        [guarded_choice(policy.code, policy.params(), o, f, 0, memory, s, share, floor, rng)
         for _ in range(n)]
    )  # fmt: skip


# --- floor -------------------------------------------------------------------


def test_check_floor_allows_up_to_one_over_k() -> None:
    assert check_floor(0.25, 4) == 0.25
    with pytest.raises(
        InvalidParameterError,
        match=r"^The 'floor' parameter of allocation must be at most 1/4 with 4 headlines\. "
        r"Got 0\.3 instead\.$",
    ):
        check_floor(0.3, 4)


@pytest.mark.parametrize("floor", [0.0, 0.05, 1 / 3], ids=["no-floor", "five-percent", "uniform"])
def test_floor_mixes_the_split_with_an_even_one(floor: float) -> None:
    plain = probabilities(UniformRandom(), [0, 0, 0], [0, 0, 0], [False] * 3)
    policy = ThompsonSampling()
    p = probabilities(policy, [30, 10, 5], [70, 90, 95], [False] * 3)
    floored = probabilities(policy, [30, 10, 5], [70, 90, 95], [False] * 3, floor=floor)
    np.testing.assert_allclose(floored, floor + (1 - 3 * floor) * p, atol=1e-15)
    assert floored.sum() == pytest.approx(1.0, abs=1e-12)
    assert np.all(floored >= floor - 1e-15)
    np.testing.assert_allclose(plain, [1 / 3] * 3)


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


# --- burn-in in evidence ------------------------------------------------------------


def test_while_every_headline_is_short_the_split_is_even() -> None:
    # One lucky open must not move a wave: the case of a 24,655 / 12,673 / 12,672 split.
    p = probabilities(ThompsonSampling(), [1, 0, 0], [0, 0, 0], [True] * 3)
    np.testing.assert_allclose(p, [1 / 3] * 3)


def test_without_guards_the_split_is_the_policys() -> None:
    policy = TopTwoThompson(leader_probability=0.6)
    p = probabilities(policy, [30, 10, 5], [70, 90, 95], [False] * 3)
    np.testing.assert_allclose(
        p, policy.selection_probabilities(floats([30, 10, 5]), floats([70, 90, 95])), atol=0
    )


@pytest.mark.parametrize(
    ("share", "expected_short"), [(1.0, 0.25), (0.1, 0.1)], ids=["even-share", "capped"]
)
def test_a_headline_added_mid_run_explores_within_a_bounded_share(
    share: float, expected_short: float
) -> None:
    policy = ThompsonSampling()
    opens, non_opens = [300, 200, 250, 0], [700, 800, 750, 3]
    p = probabilities(policy, opens, non_opens, [False, False, False, True], share=share)
    inner = policy.selection_probabilities(floats(opens[:3]), floats(non_opens[:3]))
    assert p[3] == pytest.approx(expected_short)
    np.testing.assert_allclose(p[:3], (1 - expected_short) * inner, rtol=1e-12)


@pytest.mark.parametrize(
    ("n_short", "n_arms", "cap", "expected"),
    [(0, 4, 1.0, 0.0), (4, 4, 0.1, 1.0), (1, 4, 1.0, 0.25), (2, 4, 0.3, 0.3)],
    ids=["none", "all", "even", "capped"],
)
def test_short_share(n_short: int, n_arms: int, cap: float, expected: float) -> None:
    assert short_share(n_short, n_arms, cap) == pytest.approx(expected)


@settings(max_examples=100, deadline=None)
@given(
    counts=st.lists(
        st.tuples(st.floats(0, 500), st.floats(0, 500), st.booleans()), min_size=1, max_size=8
    ),
    share=st.floats(0.0, 1.0),
    floor_part=st.floats(0.0, 1.0),
)
def test_invariant_guarded_split_is_a_distribution(
    counts: list[tuple[float, float, bool]], share: float, floor_part: float
) -> None:
    opens, non_opens, short = (list(c) for c in zip(*counts, strict=True))
    floor = floor_part / len(counts)
    p = probabilities(ThompsonSampling(), opens, non_opens, short, share=share, floor=floor)
    assert p.sum() == pytest.approx(1.0, abs=1e-9)
    assert np.all(p >= floor - 1e-12)


@pytest.mark.parametrize(
    ("short", "share", "floor"),
    [
        ([False, False, False, False], 1.0, 0.0),
        ([True, True, True, True], 1.0, 0.05),
        ([False, True, False, True], 0.3, 0.0),
        ([False, False, True, False], 1.0, 0.1),
    ],
    ids=["policy", "all-short-floor", "two-short-capped", "one-short-floor"],
)
def test_single_sends_follow_the_guarded_split(
    short: list[bool],
    share: float,
    floor: float,
    rng: np.random.Generator,
    assert_matches_frequencies: Callable[[np.ndarray, np.ndarray], None],
) -> None:
    policy = TopTwoThompson()
    opens, non_opens = [40, 35, 20, 5], [160, 165, 180, 20]
    p = probabilities(policy, opens, non_opens, short, share=share, floor=floor)
    arms = choices(policy, opens, non_opens, short, rng, share=share, floor=floor)
    assert_matches_frequencies(p, arms)


def test_without_guards_a_single_send_is_the_policys_own_draw(seed: int) -> None:
    # Same arm and the same generator position: no draw is added when no guard is on.
    policy = ThompsonSampling()
    opens, non_opens = floats([12, 20, 7]), floats([88, 80, 93])
    mine, theirs = np.random.default_rng(seed), np.random.default_rng(seed)
    memory = np.full(1, -1, dtype=np.int64)
    for _ in range(200):
        arm = guarded_choice(
            policy.code, policy.params(), opens, non_opens, 0, memory, flags([False] * 3),
            1.0, 0.0, mine,
        )  # fmt: skip
        assert arm == policy.choose(opens, non_opens, theirs)
    assert mine.random() == theirs.random()


# --- after a declaration ------------------------------------------------------------


@pytest.mark.parametrize(
    ("winner", "exploration", "expected"),
    [(1, 0.0, [0, 1, 0]), (1, 0.3, [0.1, 0.8, 0.1]), (-1, 0.3, [1 / 3] * 3)],
    ids=["winner-only", "exploring", "winner-retired"],
)
def test_winner_split(
    winner: int,
    exploration: float,
    expected: list[float],
    rng: np.random.Generator,
    assert_matches_frequencies: Callable[[np.ndarray, np.ndarray], None],
) -> None:
    p = np.empty(3)
    winner_probabilities(winner, exploration, p)
    np.testing.assert_allclose(p, expected, atol=1e-15)
    arms = np.array([winner_choice(winner, 3, exploration, rng) for _ in range(N_DECISIONS)])
    assert_matches_frequencies(p, arms)


def test_winner_without_exploration_takes_no_draw(seed: int) -> None:
    rng = np.random.default_rng(seed)
    assert winner_choice(2, 3, 0.0, rng) == 2
    assert rng.random() == np.random.default_rng(seed).random()
