"""The delayed-open model: prior curve, grid, product-limit estimator, effective counts."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from headliner.core.delay import (
    DelayPrior,
    curve_at,
    curve_scale_variance,
    data_horizon,
    delay_curve,
    delay_grid,
    delay_statistics,
    effective_counts,
    grid_index,
    interval_parameters,
    lognormal_cdf,
)
from headliner.core.errors import InvalidParameterError

HOUR = 3600.0
WINDOW = 72 * HOUR


# --- prior curve --------------------------------------------------------------------
def test_prior_curve_has_its_median_and_p95_before_the_window_conditioning() -> None:
    prior = DelayPrior(median_seconds=2 * HOUR, p95_seconds=24 * HOUR)
    # Conditioning on <= window divides by P(delay <= window) = cdf(window) unconditioned.
    top = 0.5 * math.erfc(-(math.log(WINDOW) - prior.mu) / (prior.sigma * math.sqrt(2.0)))
    assert prior.cdf(2 * HOUR, window=WINDOW) == pytest.approx(0.5 / top, rel=1e-12)
    assert prior.cdf(24 * HOUR, window=WINDOW) == pytest.approx(0.95 / top, rel=1e-12)
    assert prior.cdf(0.0, window=WINDOW) == 0.0
    assert prior.cdf(WINDOW, window=WINDOW) == 1.0
    assert lognormal_cdf(2 * WINDOW, prior.mu, prior.sigma, WINDOW) == 1.0


@pytest.mark.parametrize(
    ("settings_", "message"),
    [
        ({"median_seconds": 0.0}, "'median_seconds' parameter of DelayPrior must be a float > 0"),
        (
            {"median_seconds": 7200.0, "p95_seconds": 3600.0},
            "'p95_seconds' parameter of DelayPrior must be a float > 7200",
        ),
        (
            {"weight": -1.0},
            r"'weight' parameter of DelayPrior must be a float in the range \[0, 1000000\]",
        ),
    ],
    ids=["median", "p95-below-median", "weight"],
)
def test_prior_refuses_bad_settings(settings_: dict[str, float], message: str) -> None:
    with pytest.raises(InvalidParameterError, match=message):
        DelayPrior(**settings_)


# --- grid -----------------------------------------------------------------------------
def test_grid_starts_at_zero_ends_at_the_window_and_holds_the_lags() -> None:
    lags = [HOUR * k for k in range(1, 80)]  # lags past the window are dropped
    grid = delay_grid(WINDOW, lags)
    assert grid[0] == 0.0 and grid[-1] == WINDOW
    assert np.all(np.diff(grid) > 0)
    assert set(np.arange(1, 72) * HOUR) <= set(grid.tolist())
    assert grid_index(grid, [0.0, HOUR, HOUR + 1.0, 10 * WINDOW]).tolist() == [
        0,
        int(np.flatnonzero(grid == HOUR)[0]),
        int(np.flatnonzero(grid == HOUR)[0]),
        grid.size - 1,
    ]


def test_grid_refuses_a_non_positive_window() -> None:
    with pytest.raises(InvalidParameterError, match="'window_seconds' parameter of delay_grid"):
        delay_grid(0.0)


def test_curve_at_is_exact_on_the_grid_and_log_linear_between() -> None:
    grid = delay_grid(WINDOW, [HOUR])
    cdf = DelayPrior().cdf_on(grid)
    for j in (1, 10, 25, grid.size - 2):
        assert curve_at(grid, cdf, float(grid[j])) == cdf[j]
    j = int(np.flatnonzero(grid == HOUR)[0])
    middle = math.sqrt(grid[j] * grid[j + 1])  # halfway in log time
    assert curve_at(grid, cdf, middle) == pytest.approx((cdf[j] + cdf[j + 1]) / 2, rel=1e-12)
    assert curve_at(grid, cdf, grid[1] / 2) == pytest.approx(cdf[1] / 2)
    assert curve_at(grid, cdf, 0.0) == 0.0
    assert curve_at(grid, cdf, 2 * WINDOW) == 1.0


# --- estimating the curve ------------------------------------------------------------
def _estimate(
    grid: np.ndarray, delays: np.ndarray, observable: np.ndarray, prior: DelayPrior
) -> tuple[np.ndarray, np.ndarray]:
    opened = np.bincount(grid_index(grid, delays), minlength=grid.size).astype(float)
    seen = np.bincount(grid_index(grid, observable), minlength=grid.size).astype(float)
    at_risk = np.zeros(grid.size)
    delay_statistics(opened, seen, at_risk)
    cdf = np.zeros(grid.size)
    delay_curve(opened, at_risk, prior.cdf_on(grid), prior.weight, cdf)
    return cdf, at_risk


def test_without_opens_the_curve_is_the_prior() -> None:
    grid = delay_grid(WINDOW)
    prior = DelayPrior()
    cdf, at_risk = _estimate(grid, np.array([]), np.array([]), prior)
    np.testing.assert_allclose(cdf, prior.cdf_on(grid), rtol=1e-12, atol=1e-15)
    assert data_horizon(at_risk) == 0


def test_right_truncated_opens_give_back_the_true_curve(seed: int) -> None:
    # Sends of ages spread over 0..2 windows; an open is seen only if its delay
    # is at most its send's age. The estimator sees only those and a prior that
    # is wrong (median 6 h instead of 2 h).
    rng = np.random.default_rng(seed)
    truth = DelayPrior(median_seconds=2 * HOUR, p95_seconds=24 * HOUR)
    n = 200_000
    delay = np.exp(truth.mu + truth.sigma * rng.standard_normal(n))
    delay = delay[delay <= WINDOW]
    age = rng.uniform(0, 2 * WINDOW, delay.size)
    seen = delay <= age
    grid = delay_grid(WINDOW)
    on_grid = grid[np.minimum(np.searchsorted(grid, delay[seen]), grid.size - 1)]
    observable = np.minimum(grid[grid_index(grid, age[seen])], WINDOW)
    keep = on_grid <= observable
    wrong = DelayPrior(median_seconds=6 * HOUR, p95_seconds=48 * HOUR, weight=20.0)
    cdf, _ = _estimate(grid, on_grid[keep], observable[keep], wrong)
    true_cdf = truth.cdf_on(grid)
    # About 130,000 opens: the standard error of a CDF value is below
    # sqrt(0.25 / 30,000) ~ 0.003 even where few are at risk; 0.015 is 5 of them.
    np.testing.assert_allclose(cdf[grid > 600], true_cdf[grid > 600], atol=0.015)


def test_beyond_the_oldest_age_seen_the_prior_keeps_its_share() -> None:
    # Opens seen only up to 6 hours: how many come later is the prior's call.
    grid = delay_grid(WINDOW, [6 * HOUR])
    prior = DelayPrior()
    delays = grid[(grid > 0) & (grid <= 6 * HOUR)]
    observable = np.full(delays.size, 6 * HOUR)
    cdf, at_risk = _estimate(grid, delays, observable, prior)
    horizon = int(np.flatnonzero(grid == 6 * HOUR)[0])
    assert data_horizon(at_risk) == horizon
    assert cdf[horizon] == pytest.approx(prior.cdf(6 * HOUR, window=WINDOW), rel=1e-12)


@given(
    st.lists(st.tuples(st.integers(1, 40), st.integers(0, 40), st.integers(1, 50)), max_size=30),
    st.floats(0.0, 100.0),
)
@settings(max_examples=60, deadline=None)
def test_estimated_curve_is_a_cdf(groups: list[tuple[int, int, int]], weight: float) -> None:
    grid = delay_grid(WINDOW)
    opened = np.zeros(grid.size)
    seen = np.zeros(grid.size)
    for delay, extra, count in groups:
        opened[delay] += count
        seen[min(delay + extra, grid.size - 1)] += count
    at_risk = np.zeros(grid.size)
    delay_statistics(opened, seen, at_risk)
    cdf = np.zeros(grid.size)
    delay_curve(opened, at_risk, DelayPrior().cdf_on(grid), weight, cdf)
    assert cdf[0] == 0.0 and cdf[-1] == 1.0
    assert np.all(np.diff(cdf) >= -1e-15)
    assert np.all(at_risk >= -1e-9)


# --- effective counts ----------------------------------------------------------------------
def test_whole_weights_give_the_plain_counts() -> None:
    unopened = np.array([300.0, 500.0, 200.0])
    weight = np.array([1.0, 0.0, 1.0])
    assert effective_counts(120.0, unopened, weight, 3) == pytest.approx((120.0, 500.0))


def test_fractional_weights_match_the_likelihood_maximum_and_curvature() -> None:
    opens = 150.0
    unopened = np.array([400.0, 600.0, 300.0])
    weight = np.array([1.0, 0.6, 0.2])
    s, f = effective_counts(opens, unopened, weight, 3)
    theta = s / (s + f)
    score = opens / theta - np.sum(unopened * weight / (1 - theta * weight))
    curvature = opens / theta**2 + np.sum(unopened * weight**2 / (1 - theta * weight) ** 2)
    assert abs(score) < 1e-7 * opens / theta
    assert s / theta**2 + f / (1 - theta) ** 2 == pytest.approx(curvature, rel=1e-9)


def test_no_open_and_no_exposure() -> None:
    unopened = np.array([100.0, 50.0])
    weight = np.array([0.5, 1.0])
    assert effective_counts(0.0, unopened, weight, 2) == pytest.approx((0.0, 100.0))
    assert effective_counts(7.0, unopened, np.zeros(2), 2) == (7.0, 0.0)
    assert effective_counts(7.0, unopened, weight, 0) == (7.0, 0.0)


def test_delay_aware_estimate_is_unbiased_where_counting_settled_sends_is_not(seed: int) -> None:
    # One wave per hour for a day, looked at one hour after the last: each
    # send's open (true rate 0.2) is seen if its delay is at most its age.
    rng = np.random.default_rng(seed)
    truth = DelayPrior(median_seconds=2 * HOUR, p95_seconds=24 * HOUR)
    ages = np.arange(1, 25) * HOUR
    weight = np.array([truth.cdf(a, window=WINDOW) for a in ages])
    means = []
    for _ in range(400):
        sends = np.full(ages.size, 500.0)
        seen = rng.binomial(500, 0.2 * weight).astype(float)
        s, f = effective_counts(seen.sum(), sends - seen, weight, ages.size)
        means.append((1 + s) / (2 + s + f))
    # 12,000 sends per run: sd of a run's estimate ~ sqrt(0.2 * 0.8 / 8,000) ~ 0.0045,
    # so the mean of 400 runs has sd ~ 0.00023; 0.0015 is over 6 of them.
    assert np.mean(means) == pytest.approx(0.2, abs=0.0015)
    # Counting only the opens (non-opens wait for the window) reads 100%.
    assert effective_counts(seen.sum(), sends - seen, np.zeros(ages.size), ages.size)[1] == 0.0


def test_interval_keeps_the_mean_and_widens_with_the_curve_uncertainty() -> None:
    unopened = np.array([800.0, 900.0])
    weight = np.array([0.3, 0.7])
    scratch = np.zeros(2)
    s, f = effective_counts(150.0, unopened, weight, 2)
    a0, b0 = interval_parameters(1.0, 1.0, 150.0, unopened, weight, 2, 0.0, scratch)
    assert (a0, b0) == pytest.approx((1.0 + s, 1.0 + f))
    a, b = interval_parameters(1.0, 1.0, 150.0, unopened, weight, 2, 0.04, scratch)
    assert a / (a + b) == pytest.approx(a0 / (a0 + b0), rel=1e-12)
    assert a + b < a0 + b0  # fewer effective sends: a wider interval


def test_curve_scale_variance() -> None:
    assert curve_scale_variance(1.0, 20.0) == 0.0
    assert curve_scale_variance(0.0, 20.0) == 1.0
    assert curve_scale_variance(0.8, 19.0) == pytest.approx(0.2 / (0.8 * 20.0))


def test_more_opens_than_the_curve_allows_fall_back_to_fractional_trials() -> None:
    # 500 opens from sends a few seconds old, which the curve says hold 1e-6 of
    # their opens: no rate below 1 explains that; count each send as its weight.
    unopened = np.array([1_000.0, 2_000.0])
    weight = np.array([1e-6, 2e-6])
    s, f = effective_counts(500.0, unopened, weight, 2)
    assert (s, f) == pytest.approx((500.0, 0.005))
    assert 0.0 <= s / (s + f) <= 1.0


@pytest.mark.parametrize("window", [1.0, 60.0, HOUR])
def test_prior_curve_stays_a_curve_when_the_window_ends_far_below_its_median(
    window: float,
) -> None:
    # A median of years under a window of seconds: the plain ratio of the two
    # tails would be 0 / 0.
    prior = DelayPrior(median_seconds=1e9, p95_seconds=2e9)
    times = np.linspace(0.0, window, 50)
    values = [prior.cdf(float(t), window=window) for t in times]
    assert all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in values)
    assert values == sorted(values)
    assert values[0] == 0.0 and values[-1] == 1.0
    # Continuous where the formula switches to the tail's asymptote.
    z = 26.0
    sigma = prior.sigma
    at_switch = math.exp(prior.mu - z * sigma * math.sqrt(2.0))
    below = lognormal_cdf(at_switch * 0.5, prior.mu, sigma, at_switch * (1 - 1e-9))
    above = lognormal_cdf(at_switch * 0.5, prior.mu, sigma, at_switch * (1 + 1e-9))
    assert below == pytest.approx(above, rel=1e-3)


def test_rate_interval_is_the_betas_unless_below_the_opens_already_counted() -> None:
    from scipy import special

    from headliner.core.delay import rate_interval

    # Headline 0: a Beta (200 of 1,000 opened, more to come) above its floor; headline 1:
    # a Beta spread over (0, 1) by an unknown delay curve, with 160 of 1,000 opened already.
    alpha, beta = np.array([260.0, 0.6]), np.array([740.0, 0.4])
    opens, sends = np.array([200.0, 160.0]), np.array([1_000.0, 1_000.0])
    lower, upper = rate_interval(alpha, beta, opens, sends, 1.0, 1.0)
    assert lower[0] == pytest.approx(special.betaincinv(260.0, 740.0, 0.025))
    assert lower[1] == pytest.approx(special.betaincinv(161.0, 841.0, 0.025))
    assert lower[1] > special.betaincinv(0.6, 0.4, 0.025)
    np.testing.assert_allclose(upper, special.betainccinv(alpha, beta, 0.025))


def test_curve_on_is_curve_at_at_every_age() -> None:
    from headliner.core.delay import curve_on

    grid = delay_grid(72 * 3600.0, [90.0, 5_000.0])
    cdf = DelayPrior().cdf_on(grid)
    ages = np.concatenate([[-5.0, 0.0, 1.0], grid, np.geomspace(2.0, 80 * 3600.0, 60)])
    expected = [curve_at(grid, cdf, float(age)) for age in ages]
    np.testing.assert_allclose(curve_on(grid, cdf, ages), expected, rtol=1e-12, atol=1e-15)
