"""Display tables: the seed's percentage format and the Monte Carlo summary."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from headliner.report.tables import format_comparison, format_monte_carlo, render


def _comparison() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "iterations": [100, 10000],
            "random_opens": [0, 1908],
            "bandit_opens": [3, 2371],
            "additional_opens_from_bandit": [3, 463],
            "opens_lift_pct": [math.nan, 24.27],
            "random_open_rate": [0.0, 0.1908],
            "bandit_open_rate": [0.03, 0.2371],
            "open_rate_lift_pct": [math.nan, 24.27],
            "ab_test_opens": [0, 1908],
            "lift_vs_ab_test_pct": [math.nan, 24.27],
        }
    )


def test_rates_and_lifts_become_percentages_with_two_decimals() -> None:
    shown = format_comparison(_comparison())
    assert shown.loc[1, "random_open_rate"] == "19.08%"
    assert shown.loc[1, "bandit_open_rate"] == "23.71%"
    assert shown.loc[1, "opens_lift_pct"] == "24.27%"
    assert shown.loc[1, "lift_vs_ab_test_pct"] == "24.27%"
    assert shown.loc[0, "open_rate_lift_pct"] == "n/a"
    # Counts stay numbers.
    assert shown["bandit_opens"].tolist() == [3, 2371]


def test_render_has_no_index_and_one_line_per_row() -> None:
    text = render(format_comparison(_comparison()))
    lines = text.splitlines()
    assert len(lines) == 3
    assert lines[0].split()[0] == "iterations"


def test_monte_carlo_table_keeps_the_asked_checkpoints() -> None:
    summary = pd.DataFrame(
        {
            "policy": ["thompson"] * 3,
            "n_sends": np.array([100, 500, 1000]),
            "mean_opens": [20.0, 110.0, 230.0],
            "opens_low": [18.0, 100.0, 220.0],
            "opens_high": [22.0, 120.0, 240.0],
            "mean_open_rate": [0.2, 0.22, 0.23],
            "mean_regret": [4.0, 8.0, 10.0],
            "regret_low": [3.0, 7.0, 9.0],
            "regret_high": [5.0, 9.0, 11.0],
            "mean_best_arm_share": [0.3, 0.6, 0.8],
            "best_arm_share_low": [0.2, 0.5, 0.7],
            "best_arm_share_high": [0.4, 0.7, 0.9],
        }
    )
    shown = format_monte_carlo(summary, [100, 1000])
    assert shown["sends"].tolist() == [100, 1000]
    assert shown.loc[1, "open_rate"] == "23.00%"
    assert shown.loc[1, "open_rate_95ci"] == "[22.00%, 24.00%]"
    assert shown.loc[0, "regret_95ci"] == "[3.0, 5.0]"
    assert shown.loc[1, "best_arm_share"] == "80.00%"
