"""The seed design's plain per-send Python loop, written out as it was published.

This is the yardstick, not Headliner: one Python iteration per send that draws
in the reference's order (``integers`` then ``binomial`` for the random split;
one vectorized ``beta`` over all arms, argmax, then ``binomial`` for the
bandit), appends one dict per round and builds the DataFrame at the end. The
tests use it as the oracle that the compiled engine must match row for row,
and ``benchmarks/run.py`` times it as the baseline.

The summary table groups the selected headlines only, as the reference did;
Headliner's lists every headline.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd


class LoopEmailSimulation:
    """Shared state of the reference simulations."""

    def __init__(
        self,
        headlines: Sequence[str],
        true_probabilities: Sequence[float],
        random_state: int | None = None,
    ) -> None:
        if len(headlines) == 0:
            raise ValueError("at least one headline must be provided")
        if len(headlines) != len(true_probabilities):
            raise ValueError("headlines and true_probabilities must have the same length")
        probabilities = np.asarray(true_probabilities, dtype=float)
        if np.any(probabilities < 0) or np.any(probabilities > 1):
            raise ValueError("true probabilities must lie in [0, 1]")
        self.headlines = list(headlines)
        self.true_probabilities = probabilities
        self.n_arms = len(self.headlines)
        self.rng = np.random.default_rng(random_state)
        self.best_arm_index = int(np.argmax(probabilities))
        self.reset_results()

    def reset_results(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.reward_history: list[int] = []
        self.selection_history: list[int] = []
        self.cumulative_opens: list[int] = []
        self.total_opens = 0
        self.history = pd.DataFrame()
        self.summary_table = pd.DataFrame()

    def send_email(self, arm_index: int) -> int:
        if arm_index < 0 or arm_index >= self.n_arms:
            raise IndexError("arm_index out of range")
        return int(self.rng.binomial(n=1, p=self.true_probabilities[arm_index]))

    def select_headline(self) -> int:
        raise NotImplementedError

    def after_send(self, arm_index: int, reward: int) -> dict[str, Any]:
        """Extra per-round columns (the bandit's posterior update)."""
        return {}

    def record(self, round_number: int, arm_index: int, reward: int) -> None:
        self.total_opens += reward
        self.reward_history.append(reward)
        self.selection_history.append(arm_index)
        self.cumulative_opens.append(self.total_opens)
        row = {
            "round": round_number,
            "arm_index": arm_index,
            "headline": self.headlines[arm_index],
            "reward": reward,
            "true_open_rate": float(self.true_probabilities[arm_index]),
            "cumulative_opens": self.total_opens,
        }
        row.update(self.after_send(arm_index, reward))
        self.records.append(row)

    def run(self, num_iterations: int) -> None:
        if num_iterations <= 0:
            raise ValueError("num_iterations must be positive")
        self.reset_results()
        for round_number in range(1, num_iterations + 1):
            arm_index = self.select_headline()
            reward = self.send_email(arm_index)
            self.record(round_number, arm_index, reward)
        self.history = pd.DataFrame(self.records)
        self.summary_table = self.build_summary_table()

    def build_summary_table(self) -> pd.DataFrame:
        summary = (
            self.history.groupby("arm_index")
            .agg(
                headline=("headline", "first"),
                selections=("reward", "size"),
                opens=("reward", "sum"),
            )
            .reset_index()
        )
        summary["realized_open_rate"] = summary["opens"] / summary["selections"]
        summary["true_open_rate"] = self.true_probabilities[summary["arm_index"].to_numpy()]
        return summary.sort_values("arm_index").reset_index(drop=True)


class LoopRandomSimulation(LoopEmailSimulation):
    """Random split: ``rng.integers(0, n_arms)`` per send."""

    def select_headline(self) -> int:
        return int(self.rng.integers(low=0, high=self.n_arms))


class LoopBanditSimulation(LoopEmailSimulation):
    """Thompson Sampling: one vectorized Beta draw over all arms per send, argmax."""

    def __init__(
        self,
        headlines: Sequence[str],
        true_probabilities: Sequence[float],
        random_state: int | None = None,
        alpha_prior: float = 1.0,
        beta_prior: float = 1.0,
    ) -> None:
        if alpha_prior <= 0 or beta_prior <= 0:
            raise ValueError("priors must be positive")
        self.alpha_prior = alpha_prior
        self.beta_prior = beta_prior
        super().__init__(headlines, true_probabilities, random_state)
        self.reset_bandit_state()

    def reset_bandit_state(self) -> None:
        self.alpha = np.full(self.n_arms, self.alpha_prior, dtype=float)
        self.beta = np.full(self.n_arms, self.beta_prior, dtype=float)

    def select_headline(self) -> int:
        samples = self.rng.beta(self.alpha, self.beta)
        return int(np.argmax(samples))

    def after_send(self, arm_index: int, reward: int) -> dict[str, Any]:
        self.alpha[arm_index] += reward
        self.beta[arm_index] += 1 - reward
        alpha = float(self.alpha[arm_index])
        beta = float(self.beta[arm_index])
        return {"posterior_mean": alpha / (alpha + beta), "alpha": alpha, "beta": beta}

    def run(self, num_iterations: int) -> None:
        self.reset_bandit_state()
        super().run(num_iterations)

    def build_summary_table(self) -> pd.DataFrame:
        summary = super().build_summary_table()
        arms = summary["arm_index"].to_numpy()
        summary["final_posterior_mean"] = (self.alpha / (self.alpha + self.beta))[arms]
        summary["final_alpha"] = self.alpha[arms]
        summary["final_beta"] = self.beta[arms]
        return summary


def loop_comparison_experiment(
    headlines: Sequence[str],
    true_probabilities: Sequence[float],
    iteration_list: Sequence[int] = (100, 1_000, 10_000, 100_000, 1_000_000),
    random_seed: int | None = 42,
    bandit_seed: int | None = 123,
    alpha_prior: float = 1.0,
    beta_prior: float = 1.0,
) -> tuple[pd.DataFrame, dict[int, dict[str, Any]]]:
    """The reference ``run_comparison_experiment`` on the per-send loop."""
    rows = []
    details: dict[int, dict[str, Any]] = {}
    for n in iteration_list:
        random_sim = LoopRandomSimulation(headlines, true_probabilities, random_seed)
        bandit_sim = LoopBanditSimulation(
            headlines, true_probabilities, bandit_seed, alpha_prior, beta_prior
        )
        random_sim.run(n)
        bandit_sim.run(n)
        random_opens = random_sim.total_opens
        bandit_opens = bandit_sim.total_opens
        random_rate = random_opens / n
        bandit_rate = bandit_opens / n
        gain = bandit_opens - random_opens
        lift = float("nan") if random_opens == 0 else gain / random_opens * 100
        rate_gain = bandit_rate - random_rate
        rate_lift = float("nan") if random_rate == 0 else rate_gain / random_rate * 100
        rows.append(
            {
                "iterations": n,
                "random_opens": random_opens,
                "bandit_opens": bandit_opens,
                "additional_opens_from_bandit": bandit_opens - random_opens,
                "opens_lift_pct": round(lift, 2),
                "random_open_rate": round(random_rate, 4),
                "bandit_open_rate": round(bandit_rate, 4),
                "open_rate_lift_pct": round(rate_lift, 2),
            }
        )
        details[n] = {
            "random_sim": random_sim,
            "bandit_sim": bandit_sim,
            "random_summary_table": random_sim.summary_table,
            "bandit_summary_table": bandit_sim.summary_table,
        }
    return pd.DataFrame(rows), details
