"""The seed's headline experiment: random split against Thompson Sampling per horizon."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TypedDict

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from headliner.core.validation import check_int, fail
from headliner.sim.seed import BanditSimulation, RandomSimulation

REFERENCE_ITERATIONS = (100, 1_000, 10_000, 100_000, 1_000_000)

COMPARISON_COLUMNS = (
    "iterations",
    "random_opens",
    "bandit_opens",
    "additional_opens_from_bandit",
    "opens_lift_pct",
    "random_open_rate",
    "bandit_open_rate",
    "open_rate_lift_pct",
)

_OWNER = "run_comparison_experiment"


class ComparisonDetail(TypedDict):
    """What ``detailed_results[n]`` holds for one horizon ``n``."""

    random_sim: RandomSimulation
    bandit_sim: BanditSimulation
    random_summary_table: pd.DataFrame
    bandit_summary_table: pd.DataFrame


def lift_pct(new: float, old: float) -> float:
    """Relative lift of ``new`` over ``old`` in percent, 2 decimals; NaN when ``old`` is 0."""
    if old == 0:
        return math.nan
    return round((new - old) / old * 100.0, 2)


def run_comparison_experiment(
    headlines: Sequence[str],
    true_probabilities: Sequence[float] | NDArray[np.float64],
    iteration_list: Sequence[int] = REFERENCE_ITERATIONS,
    random_seed: int | None = 42,
    bandit_seed: int | None = 123,
    alpha_prior: float = 1.0,
    beta_prior: float = 1.0,
) -> tuple[pd.DataFrame, dict[int, ComparisonDetail]]:
    """Run the random split and Thompson Sampling side by side at every horizon.

    For each ``n`` in ``iteration_list``, a fresh :class:`RandomSimulation`
    (seeded ``random_seed``) and a fresh :class:`BanditSimulation` (seeded
    ``bandit_seed``) each send ``n`` emails, so every row replays the seed's
    numbers for those seeds.

    Parameters
    ----------
    headlines : sequence of str
    true_probabilities : sequence of float
        As in :class:`BaseEmailSimulation`.
    iteration_list : sequence of int, default=(100, 1000, 10000, 100000, 1000000)
        Distinct horizons, each >= 1.
    random_seed : int or None, default=42
    bandit_seed : int or None, default=123
    alpha_prior, beta_prior : float, default=1.0
        Beta prior of the bandit, each > 0.

    Returns
    -------
    comparison_df : DataFrame
        One row per horizon: ``iterations``, ``random_opens``, ``bandit_opens``,
        ``additional_opens_from_bandit``, ``opens_lift_pct``,
        ``random_open_rate``, ``bandit_open_rate``, ``open_rate_lift_pct``.
        Rates are rounded to 4 places and lifts (in percent) to 2; a lift is
        NaN when the random split had no open.
    detailed_results : dict
        ``detailed_results[n]`` maps ``random_sim``, ``bandit_sim``,
        ``random_summary_table`` and ``bandit_summary_table`` to that
        horizon's simulations and summary tables.

    Examples
    --------
    >>> table, details = run_comparison_experiment(["A", "B"], [0.1, 0.3], [1000])
    >>> table["bandit_opens"].item() > table["random_opens"].item()
    True
    """
    horizons = [check_int(n, "iteration_list", _OWNER, low=1) for n in iteration_list]
    if not horizons or len(set(horizons)) != len(horizons):
        raise fail(
            "iteration_list", _OWNER, "a non-empty sequence of distinct ints", iteration_list
        )

    rows = []
    details: dict[int, ComparisonDetail] = {}
    for n in horizons:
        random_sim = RandomSimulation(headlines, true_probabilities, random_state=random_seed)
        bandit_sim = BanditSimulation(
            headlines,
            true_probabilities,
            random_state=bandit_seed,
            alpha_prior=alpha_prior,
            beta_prior=beta_prior,
        )
        random_sim.run(n)
        bandit_sim.run(n)
        random_opens = random_sim.total_opens
        bandit_opens = bandit_sim.total_opens
        random_rate = random_opens / n
        bandit_rate = bandit_opens / n
        rows.append(
            {
                "iterations": n,
                "random_opens": random_opens,
                "bandit_opens": bandit_opens,
                "additional_opens_from_bandit": bandit_opens - random_opens,
                "opens_lift_pct": lift_pct(bandit_opens, random_opens),
                "random_open_rate": round(random_rate, 4),
                "bandit_open_rate": round(bandit_rate, 4),
                "open_rate_lift_pct": lift_pct(bandit_rate, random_rate),
            }
        )
        details[n] = {
            "random_sim": random_sim,
            "bandit_sim": bandit_sim,
            "random_summary_table": random_sim.summary_table,
            "bandit_summary_table": bandit_sim.summary_table,
        }
    comparison = pd.DataFrame(rows, columns=list(COMPARISON_COLUMNS))
    return comparison, details
