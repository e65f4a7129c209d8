"""Stopping rules: probability of best and value remaining (headliner.core.stopping)."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from headliner.core.errors import InvalidParameterError
from headliner.core.posterior import (
    MIN_PRIOR,
    BetaPosterior,
    probability_of_best,
    value_remaining,
)
from headliner.core.stopping import (
    MAX_POOLED_STRENGTH,
    StoppingRule,
    StoppingVerdict,
    declared_winner,
    evaluate_stopping,
    stopping_posterior,
    value_remaining_at,
)

# 0.24 against 0.18 after 5,000 sends each: P(best) ≈ 1, value remaining 0.
CLEAR = ([1_200.0, 900.0], [3_800.0, 4_100.0])
# Two arms at 0.2 after 10^6 sends each: P(best) ≈ 0.5 either way, but no
# draw is more than ~0.5% apart, so the value remaining is under 1%.
TIED_AND_PRECISE = ([200_000.0, 200_100.0], [800_000.0, 799_900.0])
# 0.21 against 0.20 after 200 sends each: too close to call.
UNCLEAR = ([42.0, 40.0], [158.0, 160.0])
MANY_OPENS = 10**6


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
            message("p_best_threshold", "a float in the range [0.5, 1] or None", "0.4"),
        ),
        (
            {"p_best_threshold": 1.01},
            message("p_best_threshold", "a float in the range [0.5, 1] or None", "1.01"),
        ),
        (
            {"value_remaining_threshold": 0.0},
            message("value_remaining_threshold", "a float in the range (0, 1) or None", "0.0"),
        ),
        (
            {"value_remaining_quantile": 1.0},
            message("value_remaining_quantile", "a float in the range [0.5, 1)", "1.0"),
        ),
        ({"require": "most"}, message("require", "one of 'any', 'all'", "'most'")),
        ({"min_opens": -1}, message("min_opens", "an int >= 0", "-1")),
        (
            {"check_interval_seconds": -1.0},
            message("check_interval_seconds", "a float in the range [0, 31622400]", "-1.0"),
        ),
        (
            {"rate_spread": 0.0},
            message("rate_spread", "a float in the range (0, 10] or None", "0.0"),
        ),
    ],
    ids=[
        "no-criterion",
        "p-best-below-half",
        "p-best-above-one",
        "value-remaining-zero",
        "quantile-one",
        "require-unknown",
        "min-opens-negative",
        "interval-negative",
        "spread-zero",
    ],
)
def test_stopping_rule_validation(kwargs: dict[str, Any], pattern: str) -> None:
    with pytest.raises(InvalidParameterError, match=pattern):
        StoppingRule(**kwargs)


def test_rule_as_a_vector() -> None:
    rule = StoppingRule(p_best_threshold=None, require="all", min_opens=7, rate_spread=None)
    np.testing.assert_array_equal(rule.params(), [0.0, 0.01, 0.97, 1.0, 7.0, 0.0])
    np.testing.assert_array_equal(StoppingRule().params(), [0.99, 0.01, 0.97, 0.0, 100.0, 0.1])


def test_clear_winner_is_declared_with_both_reasons() -> None:
    verdict = evaluate_stopping(StoppingRule(), *CLEAR, MANY_OPENS)

    assert isinstance(verdict, StoppingVerdict)
    assert (verdict.winner, verdict.champion) == (0, 0)
    assert verdict.reasons[0].startswith("P(best) 1.0000 >= 0.99")
    assert verdict.reasons[1].startswith("P(no headline beats it by more than 1.00%) 1.0000")
    assert verdict.p_within == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("opens", "ready"), [(99, True), (MANY_OPENS, False)], ids=["few-opens", "in-burn-in"]
)
def test_no_winner_before_the_guards_allow(opens: int, ready: bool) -> None:
    verdict = evaluate_stopping(StoppingRule(min_opens=100), *CLEAR, opens, ready=ready)

    assert (verdict.winner, verdict.reasons) == (None, ())
    assert verdict.champion == 0  # the summaries are there all the same
    assert verdict.p_best[0] == pytest.approx(1.0)


def test_no_winner_while_unclear() -> None:
    verdict = evaluate_stopping(StoppingRule(), *UNCLEAR, MANY_OPENS)

    assert verdict.winner is None
    assert 0.5 < verdict.p_best[0] < 0.9
    assert verdict.p_within < 0.95


@pytest.mark.parametrize(
    ("rule", "declared"),
    [
        (StoppingRule(), True),
        (StoppingRule(require="all"), False),
        (StoppingRule(p_best_threshold=None), True),
        (StoppingRule(value_remaining_threshold=None), False),
    ],
    ids=["any", "all", "value-remaining-only", "p-best-only"],
)
def test_tied_precise_arms_stop_only_on_value_remaining(rule: StoppingRule, declared: bool) -> None:
    verdict = evaluate_stopping(rule, *TIED_AND_PRECISE, MANY_OPENS)

    assert (verdict.winner is not None) == declared
    assert verdict.p_best.max() < 0.99
    if rule.value_remaining_threshold is not None:
        assert verdict.p_within > 0.97


@pytest.mark.parametrize("spread", [None, 0.05], ids=["own-prior", "pooled-prior"])
def test_verdict_p_best_is_the_stopping_posteriors(spread: float | None, seed: int) -> None:
    opens, non_opens = np.array([30.0, 42.0, 25.0]), np.array([170.0, 158.0, 175.0])
    rule = StoppingRule(rate_spread=spread)
    verdict = evaluate_stopping(rule, opens, non_opens, MANY_OPENS)
    alpha, beta = np.empty(3), np.empty(3)
    stopping_posterior(rule.params(), opens, non_opens, 1.0, 1.0, alpha, beta)
    posterior = BetaPosterior(alpha, beta)

    np.testing.assert_allclose(verdict.p_best, probability_of_best(posterior), atol=1e-9)
    assert verdict.p_best.sum() == pytest.approx(1.0, abs=1e-12)
    # P(no arm beats the champion by more than 1%) from 400,000 joint draws; its
    # binomial standard error is below 0.0008, so 0.004 is 5 of them.
    draws = posterior.sample(np.random.default_rng(seed), 400_000)
    champion = draws[:, verdict.champion]
    within = np.mean(np.max(draws, axis=1) <= 1.01 * champion)
    assert verdict.p_within == pytest.approx(within, abs=0.004)


def test_pooled_prior_has_the_spread_asked_for() -> None:
    # Pooled rate (100 + 1) / (1,000 + 2); a Beta with mean p and strength
    # (1 - p) / (s^2 p) has relative standard deviation s (up to the +1).
    opens, non_opens = np.array([60.0, 40.0]), np.array([440.0, 460.0])
    alpha, beta = np.empty(2), np.empty(2)
    rule = StoppingRule(rate_spread=0.1).params()
    stopping_posterior(rule, opens, non_opens, 1.0, 1.0, alpha, beta)
    a0, b0 = alpha[0] - opens[0], beta[0] - non_opens[0]
    p = a0 / (a0 + b0)
    assert p == pytest.approx(101 / 1002)
    sd = np.sqrt(p * (1 - p) / (a0 + b0 + 1))
    assert sd / p == pytest.approx(0.1, rel=1e-3)
    # Pulled towards the pool, the two headlines' estimates move closer together.
    means = alpha / (alpha + beta)
    assert 0.08 < means[1] < means[0] < 0.12
    assert means[0] - means[1] < 0.04


def test_a_thinly_sent_headline_holds_little_of_the_rules_doubt() -> None:
    # 20 sends of a headline with 1 open beside a leader with 10,000: under its
    # own flat prior it could be anything, and it is the "champion"; pooled
    # with the others it is most likely an ordinary headline.
    opens, non_opens = np.array([600.0, 450.0, 1.0]), np.array([9_400.0, 9_550.0, 19.0])
    flat = evaluate_stopping(StoppingRule(rate_spread=None), opens, non_opens, MANY_OPENS)
    pooled = evaluate_stopping(StoppingRule(), opens, non_opens, MANY_OPENS)
    assert flat.champion == 2 and flat.p_best[2] > 0.6
    assert pooled.champion == 0 and pooled.p_best[2] < 0.2


def test_value_remaining_is_the_monte_carlo_quantile(seed: int) -> None:
    posterior = BetaPosterior.from_counts([300, 280, 200], [700, 720, 800])
    alpha, beta = np.array(posterior.alpha), np.array(posterior.beta)
    exact = value_remaining_at(alpha, beta, 0, 0.95, np.empty(3))
    estimate = value_remaining(posterior, np.random.default_rng(seed), n_draws=400_000, champion=0)
    # The 95th percentile of 400,000 draws: its standard error is about
    # sqrt(0.95 * 0.05 / 400,000) / density ~ 0.0005 here; 0.003 leaves room.
    assert exact == pytest.approx(estimate, abs=0.003)
    assert value_remaining_at(alpha[:1], beta[:1], 0, 0.95, np.empty(1)) == 0.0
    clear = BetaPosterior.from_counts(*CLEAR)
    alpha, beta = np.array(clear.alpha), np.array(clear.beta)
    assert value_remaining_at(alpha, beta, 0, 0.95, np.empty(2)) == 0.0


def test_verdict_is_deterministic() -> None:
    first = evaluate_stopping(StoppingRule(), *UNCLEAR, MANY_OPENS)
    second = evaluate_stopping(StoppingRule(), *UNCLEAR, MANY_OPENS)

    np.testing.assert_array_equal(first.p_best, second.p_best)
    assert first.p_within == second.p_within


def test_declared_winner_needs_two_arms() -> None:
    alone = np.array([500.0]), np.array([500.0])
    p_best, within = np.empty(1), np.empty(1)
    rule = StoppingRule(min_opens=0).params()

    assert declared_winner(rule, alone[0], alone[1], 1.0, 1.0, 1e6, True, p_best, within) == -1
    assert p_best[0] == 1.0


def test_value_remaining_beyond_a_doubling(seed: int) -> None:
    # Five headlines on their flat priors alone: any could be several times
    # another, so the 95th percentile of the lift is far above 100%.
    flat = BetaPosterior.from_prior(5)
    alpha, beta = np.array(flat.alpha), np.array(flat.beta)
    exact = value_remaining_at(alpha, beta, 0, 0.95, np.empty(5))
    estimate = value_remaining(flat, np.random.default_rng(seed), n_draws=400_000, champion=0)
    # The quantile of a heavy-tailed ratio: a relative tolerance of 5% is
    # several Monte Carlo standard errors at 400,000 draws.
    assert exact > 1.0
    assert exact == pytest.approx(estimate, rel=0.05)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0.0, 1e7), st.floats(0.0, 1e7)), min_size=2, max_size=4),
    st.floats(MIN_PRIOR, 1e6),
    st.floats(MIN_PRIOR, 1e6),
    st.floats(1e-12, 10.0),
)
def test_the_rule_stays_finite_for_every_accepted_setting(
    counts: list[tuple[float, float]], alpha_prior: float, beta_prior: float, spread: float
) -> None:
    # A tiny spread asks for an enormous pooled prior, a wide one over opens
    # near 100% for a vanishing one: both are held to what P(best) is good for.
    opens = np.array([o for o, _ in counts])
    non_opens = np.array([f for _, f in counts])
    rule = StoppingRule(rate_spread=spread, value_remaining_threshold=0.5).params()
    n = len(counts)
    alpha, beta = np.empty(n), np.empty(n)
    stopping_posterior(rule, opens, non_opens, alpha_prior, beta_prior, alpha, beta)
    assert np.all(alpha >= MIN_PRIOR) and np.all(beta >= MIN_PRIOR)
    assert np.all(alpha + beta <= MAX_POOLED_STRENGTH + 2e7 + 1.0)
    p_best, within = np.empty(n), np.empty(n)
    declared_winner(rule, opens, non_opens, alpha_prior, beta_prior, 1e9, True, p_best, within)
    assert np.all(np.isfinite(p_best)) and p_best.sum() == pytest.approx(1.0, abs=1e-9)
    assert np.all(np.isfinite(within))
    champion = int(np.argmax(p_best))
    assert math.isfinite(value_remaining_at(alpha, beta, champion, 0.95, np.empty(n)))
