"""The propensity checks: extra opens over an even split, sample-ratio mismatch."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from headliner.core.diagnostics import extra_opens_over_even_split, sample_ratio_mismatch

RATES = np.array([0.10, 0.14, 0.22])


def _adaptive_campaign(
    rng: np.random.Generator, *, batches: int = 40, batch: int = 250
) -> tuple[np.ndarray, ...]:
    """Sends in batches, each batch on its own random allocation, grouped by (arm, propensity).

    Returns per group: arm, propensity, sends, opens; and the expected opens of an even split.
    """
    arm, propensity, sends, opens = [], [], [], []
    for _ in range(batches):
        allocation = rng.dirichlet(np.full(RATES.size, 2.0))
        allocation = 0.05 / RATES.size + 0.95 * allocation  # no propensity near 0
        counts = rng.multinomial(batch, allocation)
        for k, n in enumerate(counts):
            if n:
                arm.append(k)
                propensity.append(allocation[k])
                sends.append(n)
                opens.append(rng.binomial(n, RATES[k]))
    return (np.array(arm), np.array(propensity), np.array(sends), np.array(opens))


def test_an_even_split_gains_nothing() -> None:
    estimate = extra_opens_over_even_split([1 / 3] * 3, [3] * 3, [100, 100, 100], [10, 20, 30])
    assert estimate.value == pytest.approx(0.0)
    assert estimate.low < 0.0 < estimate.high


def test_no_sends_is_zero_gain() -> None:
    estimate = extra_opens_over_even_split([], [], [], [])
    assert (estimate.value, estimate.low, estimate.high) == (0.0, 0.0, 0.0)


def test_extra_opens_interval_covers_the_gain_at_its_level() -> None:
    # The target is the experiment's opens minus an even split's expected opens on the
    # same sends. 400 replications: the share of intervals covering it is binomial with
    # sd sqrt(0.95 * 0.05 / 400) = 0.011; 3.5 sd either side of 0.95 fails by chance
    # about once in 2,000 runs.
    rng = np.random.default_rng(7)
    covered, errors = 0, []
    runs = 400
    for _ in range(runs):
        _, propensity, sends, opens = _adaptive_campaign(rng)
        estimate = extra_opens_over_even_split(propensity, np.full(sends.size, 3), sends, opens)
        target = opens.sum() - sends.sum() * RATES.mean()
        covered += estimate.low <= target <= estimate.high
        errors.append(estimate.value - target)
    assert abs(covered / runs - 0.95) <= 3.5 * math.sqrt(0.95 * 0.05 / runs)
    # Unbiased: the mean error is within 4 standard errors of 0.
    assert abs(np.mean(errors)) <= 4.0 * np.std(errors) / math.sqrt(runs)


def test_fixed_propensity_is_pearsons_test() -> None:
    observed = np.array([310, 270, 420])
    result = sample_ratio_mismatch([0, 1, 2], [1 / 3] * 3, observed, 3)
    pearson = stats.chisquare(observed)
    assert result.statistic == pytest.approx(pearson.statistic, rel=1e-9)
    assert result.p_value == pytest.approx(pearson.pvalue, rel=1e-9)
    assert result.dof == 2
    np.testing.assert_allclose(result.expected, observed.sum() / 3)
    assert result.observed.tolist() == observed.tolist()


def test_sample_ratio_p_values_are_uniform_when_sends_follow_the_propensities() -> None:
    # 400 campaigns logged correctly: the share of p-values under 0.05 is binomial with
    # sd sqrt(0.05 * 0.95 / 400) = 0.011; 3.5 sd either side.
    rng = np.random.default_rng(11)
    runs = 400
    p_values = np.array(
        [sample_ratio_mismatch(*_adaptive_campaign(rng)[:3], n_arms=3).p_value for _ in range(runs)]
    )
    assert abs(np.mean(p_values < 0.05) - 0.05) <= 3.5 * math.sqrt(0.05 * 0.95 / runs)


def test_sample_ratio_flags_dropped_sends() -> None:
    # A pipeline that loses 15% of one headline's sends: 20,000 sends make it plain.
    rng = np.random.default_rng(3)
    arm, propensity, sends, _ = _adaptive_campaign(rng, batches=80)
    lost = np.where(arm == 0, np.round(sends * 0.85), sends)
    assert sample_ratio_mismatch(arm, propensity, sends, 3).p_value > 0.001
    flagged = sample_ratio_mismatch(arm, propensity, lost, 3)
    assert flagged.p_value < 0.001
    assert flagged.observed[0] < flagged.expected[0]


def test_a_headline_without_sends_is_left_out_and_still_seen_missing() -> None:
    # Sent at 1/2 each, two headlines fit; sent at 1/3 each, the third one's sends are missing.
    fits = sample_ratio_mismatch([0, 1], [0.5, 0.5], [500, 520], 3)
    assert fits.observed.tolist() == [500, 520, 0]
    assert fits.dof == 1
    assert fits.p_value == pytest.approx(stats.chisquare([500, 520]).pvalue, rel=1e-9)
    missing = sample_ratio_mismatch([0, 1], [1 / 3, 1 / 3], [500, 520], 3)
    assert missing.p_value < 1e-9


def test_nothing_to_test() -> None:
    assert math.isnan(sample_ratio_mismatch([], [], [], 2).p_value)
    assert math.isnan(sample_ratio_mismatch([0], [1.0], [10], 1).p_value)
    assert math.isnan(sample_ratio_mismatch([0], [1.0], [10], 2).p_value)
    assert math.isnan(sample_ratio_mismatch([0], [1.0], [10], 2, stratum=[2]).p_value)


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: sample_ratio_mismatch([0], [0.0], [1], 2), "propensity"),
        (lambda: sample_ratio_mismatch([2], [0.5], [1], 2), "arm"),
        (lambda: sample_ratio_mismatch([0], [0.5], [1], 0), "n_arms"),
        (lambda: extra_opens_over_even_split([0.5, 0.5], [2], [1], [1]), "groups"),
    ],
)
def test_bad_groups_name_the_parameter(call: object, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        call()  # type: ignore[operator]


def test_a_headline_added_mid_run_is_tested_within_its_stratum() -> None:
    # 2,000 sends split 1/2 between two headlines, then a third added and 3,000 sends at 1/3:
    # logged correctly. Pooled, the first period's sends look as if the third headline
    # had been starved; by stratum (headlines active) they fit, and the statistic is
    # the sum of the two Pearson tests.
    arm = [0, 1, 0, 1, 2]
    propensity = [0.5, 0.5, 1 / 3, 1 / 3, 1 / 3]
    sends = [1_010, 990, 1_020, 980, 1_000]
    stratum = [2, 2, 3, 3, 3]
    pooled = sample_ratio_mismatch(arm, propensity, sends, 3)
    by_stratum = sample_ratio_mismatch(arm, propensity, sends, 3, stratum=stratum)
    first, second = stats.chisquare([1_010, 990]), stats.chisquare([1_020, 980, 1_000])
    assert pooled.p_value < 1e-6
    assert by_stratum.dof == 1 + 2
    assert by_stratum.statistic == pytest.approx(first.statistic + second.statistic)
    assert by_stratum.p_value > 0.5
    assert by_stratum.observed.tolist() == [2_030, 1_970, 1_000]
    with pytest.raises(ValueError, match="stratum"):
        sample_ratio_mismatch(arm, propensity, sends, 3, stratum=[2, 3])


def test_sends_without_a_choice_are_left_out() -> None:
    # After a declaration the winner gets every send with propensity 1: those sends say
    # nothing of the split, and with them the other headlines would read as starved.
    before = sample_ratio_mismatch([0, 1], [0.5, 0.5], [500, 520], 2)
    after = sample_ratio_mismatch([0, 1, 0], [0.5, 0.5, 1.0], [500, 520, 4_000], 2)
    assert after.p_value == pytest.approx(before.p_value)
    assert after.observed.tolist() == [500, 520]
