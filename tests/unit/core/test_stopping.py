"""Stopping rules: probability of best and value remaining (headliner.core.stopping)."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

from headliner.core.errors import InvalidParameterError
from headliner.core.posterior import BetaPosterior, probability_of_best, value_remaining
from headliner.core.stopping import StoppingRule, StoppingVerdict, evaluate_stopping

# 0.24 against 0.18 after 5,000 sends each: P(best) ≈ 1, value remaining 0.
CLEAR = BetaPosterior.from_counts([1_200, 900], [3_800, 4_100])
# Two arms at 0.2 after 10^6 sends each: P(best) ≈ 0.5 either way, but no
# draw is more than ~0.5% apart, so the value remaining is under 1%.
TIED_AND_PRECISE = BetaPosterior.from_counts([200_000, 200_100], [800_000, 799_900])
# 0.21 against 0.20 after 200 sends each: too close to call.
UNCLEAR = BetaPosterior.from_counts([42, 40], [158, 160])

ENOUGH = np.array([10**6, 10**6], dtype=np.int64)


def message(name: str, rule: str, got: str) -> str:
    return "^" + re.escape(
        f"The '{name}' parameter of StoppingRule must be {rule}. Got {got} instead."
    )


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        (
            {"p_best_threshold": None, "value_remaining_threshold": None},
            message("p_best_threshold", "set when value_remaining_threshold is None", "None"),
        ),
        (
            {"p_best_threshold": 0.4},
            message("p_best_threshold", "a float in the range [0.5, 1]", "0.4"),
        ),
        (
            {"p_best_threshold": 1.01},
            message("p_best_threshold", "a float in the range [0.5, 1]", "1.01"),
        ),
        (
            {"value_remaining_threshold": 0.0},
            message("value_remaining_threshold", "a float > 0", "0.0"),
        ),
        ({"require": "most"}, message("require", "one of 'any', 'all'", "'most'")),
        (
            {"min_matured_sends_per_arm": -1},
            message("min_matured_sends_per_arm", "an int >= 0", "-1"),
        ),
        ({"n_draws": 99}, message("n_draws", "an int >= 100", "99")),
    ],
    ids=[
        "no-criterion",
        "p-best-below-half",
        "p-best-above-one",
        "value-remaining-zero",
        "require-unknown",
        "min-sends-negative",
        "too-few-draws",
    ],
)
def test_stopping_rule_validation(kwargs: dict[str, Any], pattern: str) -> None:
    with pytest.raises(InvalidParameterError, match=pattern):
        StoppingRule(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"p_best_threshold": None}, {"value_remaining_threshold": None}, {"require": "all"}],
    ids=["defaults", "value-remaining-only", "p-best-only", "require-all"],
)
def test_valid_rules_construct(kwargs: dict[str, Any]) -> None:
    rule = StoppingRule(**kwargs)
    for key, value in kwargs.items():
        assert getattr(rule, key) == value


def test_clear_winner_is_declared_with_both_reasons(rng: np.random.Generator) -> None:
    verdict = evaluate_stopping(StoppingRule(), CLEAR, ENOUGH, rng)
    assert verdict.winner == 0
    assert verdict.champion == 0
    assert len(verdict.reasons) == 2
    assert verdict.reasons[0].startswith("P(best) ")
    assert verdict.reasons[0].endswith(" >= 0.95")
    assert verdict.reasons[1].startswith("value remaining ")
    assert verdict.reasons[1].endswith(" < 0.01")


def test_no_winner_on_thin_data(rng: np.random.Generator) -> None:
    matured = np.array([5_000, 99], dtype=np.int64)
    verdict = evaluate_stopping(StoppingRule(min_matured_sends_per_arm=100), CLEAR, matured, rng)
    assert verdict.winner is None
    assert verdict.reasons == ()
    # The summaries are still reported.
    assert verdict.champion == 0
    assert verdict.p_best[0] > 0.99


def test_no_winner_while_unclear(rng: np.random.Generator) -> None:
    verdict = evaluate_stopping(StoppingRule(), UNCLEAR, ENOUGH, rng)
    assert verdict.winner is None
    assert verdict.reasons == ()
    assert verdict.champion == int(np.argmax(probability_of_best(UNCLEAR)))
    assert verdict.value_remaining > 0.01


@pytest.mark.parametrize(
    ("kwargs", "winner", "n_reasons"),
    [
        ({}, 1, 1),
        ({"require": "all"}, None, 0),
        ({"p_best_threshold": None}, 1, 1),
        ({"value_remaining_threshold": None}, None, 0),
    ],
    ids=["any", "all", "value-remaining-only", "p-best-only"],
)
def test_tied_precise_arms_stop_only_on_value_remaining(
    kwargs: dict[str, Any], winner: int | None, n_reasons: int, rng: np.random.Generator
) -> None:
    verdict = evaluate_stopping(StoppingRule(**kwargs), TIED_AND_PRECISE, ENOUGH, rng)
    assert 0.5 <= verdict.p_best[verdict.champion] < 0.95
    assert verdict.value_remaining < 0.01
    assert verdict.winner == winner
    assert len(verdict.reasons) == n_reasons
    if n_reasons:
        assert verdict.reasons[0].startswith("value remaining ")


def test_verdict_reports_the_posterior_summaries(seed: int) -> None:
    rule = StoppingRule(n_draws=2_000)
    verdict = evaluate_stopping(rule, UNCLEAR, ENOUGH, np.random.default_rng(seed))
    assert isinstance(verdict, StoppingVerdict)
    np.testing.assert_array_equal(verdict.p_best, probability_of_best(UNCLEAR))
    expected = value_remaining(
        UNCLEAR, np.random.default_rng(seed), n_draws=2_000, champion=verdict.champion
    )
    assert verdict.value_remaining == expected


def test_given_p_best_is_reused(rng: np.random.Generator) -> None:
    # A caller's cached P(best) decides the champion even against the posterior.
    cached = np.array([0.01, 0.99])
    verdict = evaluate_stopping(
        StoppingRule(value_remaining_threshold=None), CLEAR, ENOUGH, rng, p_best=cached
    )
    assert verdict.champion == 1
    assert verdict.winner == 1
    assert verdict.p_best is cached


def test_verdict_is_reproducible_for_a_seed(seed: int) -> None:
    first = evaluate_stopping(StoppingRule(), UNCLEAR, ENOUGH, np.random.default_rng(seed))
    second = evaluate_stopping(StoppingRule(), UNCLEAR, ENOUGH, np.random.default_rng(seed))
    assert first.value_remaining == second.value_remaining
    assert first.winner == second.winner
