"""Tables for people: the seed's comparison display and Monte Carlo summaries."""

from __future__ import annotations

import numpy as np
import pandas as pd

_RATE_COLUMNS = ("random_open_rate", "bandit_open_rate")
_LIFT_COLUMNS = ("opens_lift_pct", "open_rate_lift_pct")


def _percent(value: float) -> str:
    return "n/a" if pd.isna(value) else f"{value:.2f}%"


def format_comparison(comparison: pd.DataFrame) -> pd.DataFrame:
    """The comparison table as the seed design displays it.

    Open rates become percentages with 2 decimals (0.1908 → "19.08%"), lifts
    get a percent sign with 2 decimals; counts stay integers.
    """
    shown = comparison.copy()
    for column in shown.columns:
        if column in _RATE_COLUMNS:
            shown[column] = [_percent(100.0 * v) for v in shown[column]]
        elif column in _LIFT_COLUMNS or column.startswith("lift_vs_"):
            shown[column] = [_percent(v) for v in shown[column]]
    return shown


def format_monte_carlo(summary: pd.DataFrame, checkpoints: list[int] | None = None) -> pd.DataFrame:
    """Monte Carlo summary for display: open rate and regret with their 95% intervals.

    Parameters
    ----------
    summary : DataFrame
        ``MonteCarloResult.summary()``.
    checkpoints : list of int, optional
        Keep only these send counts.
    """
    rows = summary if checkpoints is None else summary[summary["n_sends"].isin(checkpoints)]
    n = rows["n_sends"].to_numpy(dtype=np.float64)
    return pd.DataFrame(
        {
            "policy": rows["policy"].to_numpy(),
            "sends": rows["n_sends"].to_numpy(),
            "open_rate": [f"{100 * v:.2f}%" for v in rows["mean_open_rate"]],
            "open_rate_95ci": [
                f"[{100 * lo / s:.2f}%, {100 * hi / s:.2f}%]"
                for lo, hi, s in zip(rows["opens_low"], rows["opens_high"], n, strict=True)
            ],
            "regret": [f"{v:.1f}" for v in rows["mean_regret"]],
            "regret_95ci": [
                f"[{lo:.1f}, {hi:.1f}]"
                for lo, hi in zip(rows["regret_low"], rows["regret_high"], strict=True)
            ],
            "best_arm_share": [f"{100 * v:.2f}%" for v in rows["mean_best_arm_share"]],
        }
    )


def render(table: pd.DataFrame) -> str:
    """Plain-text rendering of a display table, without the index."""
    return table.to_string(index=False)
