"""Same seeds, same numbers: the compiled engine against the plain per-send loop."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pandas as pd
import pytest

from headliner import BanditSimulation, RandomSimulation, run_comparison_experiment
from headliner.sim import engine

HORIZONS = pytest.mark.parametrize("n", [100, 1_000, 10_000], ids=["100", "1k", "10k"])


@HORIZONS
@pytest.mark.parametrize(
    ("ours", "theirs", "seed"),
    [
        (RandomSimulation, "LoopRandomSimulation", 42),
        (BanditSimulation, "LoopBanditSimulation", 123),
    ],
    ids=["random", "bandit"],
)
def test_history_equals_the_per_send_loop(
    n: int,
    ours: type[RandomSimulation | BanditSimulation],
    theirs: str,
    seed: int,
    headlines: list[str],
    rates: list[float],
    reference_loop: ModuleType,
) -> None:
    sim = ours(headlines, rates, random_state=seed)
    loop = getattr(reference_loop, theirs)(headlines, rates, seed)
    sim.run(n)
    loop.run(n)
    pd.testing.assert_frame_equal(sim.history, loop.history, check_exact=True)
    assert sim.total_opens == loop.total_opens
    assert sim.reward_history == loop.reward_history
    assert sim.selection_history == loop.selection_history
    assert sim.cumulative_opens == loop.cumulative_opens
    # The loop's summary lists only selected headlines; at these horizons every
    # headline was sent, so the tables must agree row for row.
    pd.testing.assert_frame_equal(sim.summary_table, loop.summary_table, check_exact=True)
    # Both generators end in the same state: the kernel drew exactly as many
    # numbers as the loop.
    assert sim.rng.bit_generator.state == loop.rng.bit_generator.state


def test_bandit_with_another_prior_equals_the_per_send_loop(
    headlines: list[str], rates: list[float], reference_loop: ModuleType
) -> None:
    sim = BanditSimulation(headlines, rates, random_state=5, alpha_prior=2.0, beta_prior=8.0)
    loop = reference_loop.LoopBanditSimulation(headlines, rates, 5, 2.0, 8.0)
    sim.run(3_000)
    loop.run(3_000)
    pd.testing.assert_frame_equal(sim.history, loop.history, check_exact=True)


def test_comparison_rows_equal_the_per_send_loop(
    headlines: list[str], rates: list[float], reference_loop: ModuleType
) -> None:
    iterations = (100, 1_000, 10_000)
    ours, ours_details = run_comparison_experiment(headlines, rates, iterations)
    theirs, theirs_details = reference_loop.loop_comparison_experiment(headlines, rates, iterations)
    pd.testing.assert_frame_equal(ours, theirs, check_exact=True)
    assert set(ours_details) == set(theirs_details) == set(iterations)
    for n in iterations:
        pd.testing.assert_frame_equal(
            ours_details[n]["bandit_summary_table"],
            theirs_details[n]["bandit_summary_table"],
            check_exact=True,
        )


def test_reference_experiment_ten_thousand_send_row(
    headlines: list[str], rates: list[float]
) -> None:
    table, details = run_comparison_experiment(
        headlines, rates, [10_000], random_seed=42, bandit_seed=123
    )
    row = table.iloc[0]
    assert row["random_opens"] == 1908
    assert row["bandit_opens"] == 2371
    assert row["additional_opens_from_bandit"] == 463
    assert row["opens_lift_pct"] == 24.27
    assert row["open_rate_lift_pct"] == 24.27
    assert row["random_open_rate"] == 0.1908
    assert row["bandit_open_rate"] == 0.2371
    assert set(details[10_000]) == {
        "random_sim",
        "bandit_sim",
        "random_summary_table",
        "bandit_summary_table",
    }
    assert details[10_000]["bandit_sim"].total_opens == 2371


def test_comparison_table_columns_and_dtypes(headlines: list[str], rates: list[float]) -> None:
    table, _ = run_comparison_experiment(headlines, rates, [100, 1_000])
    assert list(table.columns) == [
        "iterations",
        "random_opens",
        "bandit_opens",
        "additional_opens_from_bandit",
        "opens_lift_pct",
        "random_open_rate",
        "bandit_open_rate",
        "open_rate_lift_pct",
    ]
    for column in table.columns[:4]:
        assert table[column].dtype == "int64", column
    for column in table.columns[4:]:
        assert table[column].dtype == "float64", column
    assert table["iterations"].tolist() == [100, 1_000]


def test_lift_is_nan_when_random_has_no_open() -> None:
    table, _ = run_comparison_experiment(["A", "B"], [0.0, 0.0], [50])
    assert table.loc[0, "random_opens"] == 0
    assert np.isnan(table.loc[0, "opens_lift_pct"])
    assert np.isnan(table.loc[0, "open_rate_lift_pct"])


@pytest.mark.parametrize(
    "iterations",
    [[], [0], [100, -1], [10, 10], [1.5]],
    ids=["empty", "zero", "negative", "repeated", "float"],
)
def test_bad_iteration_list_is_a_value_error(iterations: list[int]) -> None:
    with pytest.raises(ValueError, match="'iteration_list' parameter of run_comparison"):
        run_comparison_experiment(["A", "B"], [0.1, 0.2], iterations)


@pytest.mark.parametrize(
    "p", [0.0, 1e-12, 0.2, 0.5, np.nextafter(0.5, 1.0), 0.77, 1.0 - 1e-12, 1.0]
)
def test_compiled_bernoulli_replays_numpy_binomial(p: float) -> None:
    # The kernels draw outcomes through precomputed inversion thresholds; they
    # must equal rng.binomial(1, p) draw for draw, including the edge cases of
    # the routine (p = 0 draws nothing, p > 0.5 flips, p = 1 draws once).
    # The uniform policy on one arm reduces the trace to integers + outcome.
    rng = np.random.default_rng(99)
    arms, rewards, _, _ = engine.simulate_trace(1, np.array([1.0, 1.0]), np.array([p]), 2_000, rng)
    replay = np.random.default_rng(99)
    expected = []
    for _ in range(2_000):
        replay.integers(0, 1)
        expected.append(replay.binomial(1, p))
    np.testing.assert_array_equal(rewards, expected)
    assert rng.bit_generator.state == replay.bit_generator.state
