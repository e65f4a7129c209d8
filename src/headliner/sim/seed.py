"""The seed design's simulation classes, API-compatible and compiled.

:class:`RandomSimulation` and :class:`BanditSimulation` keep the seed's names,
parameters, attributes, DataFrame columns and errors. Their
``run`` hands ``self.rng`` to a compiled kernel that consumes random numbers in
the seed's order, so a seed reproduces the seed's numbers exactly. A run keeps
two compact arrays (arm and reward per send); ``history``, ``reward_history``,
``selection_history`` and ``cumulative_opens`` are built from them on first
access and cached, so a million-send run costs two megabytes until someone
asks for a DataFrame.

These classes are the one deliberately mutable API in Headliner, kept for
users of the seed; new code can use :func:`headliner.sim.run_monte_carlo`.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from functools import cached_property
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from headliner.core.policies import thompson_winner
from headliner.core.posterior import check_prior
from headliner.core.validation import check_int, check_probabilities, fail
from headliner.sim import engine

FloatArray = NDArray[np.float64]

# Results computed lazily from the arrays; reset_results() forgets them.
_LAZY_RESULTS = ("history", "reward_history", "selection_history", "cumulative_opens")
_SUMMARY_COLUMNS = (
    "arm_index",
    "headline",
    "selections",
    "opens",
    "realized_open_rate",
    "true_open_rate",
)


class BaseEmailSimulation:
    """Shared state and results of an email headline simulation.

    Parameters
    ----------
    headlines : sequence of str
        Candidate headlines, at least one.
    true_probabilities : sequence of float
        True open probability of each headline, in [0, 1], same length as
        ``headlines``.
    random_state : int or None, default=None
        Seed of ``self.rng = numpy.random.default_rng(random_state)``.

    Attributes
    ----------
    headlines : list of str
    true_probabilities : ndarray of shape (n_arms,)
    n_arms : int
    rng : numpy.random.Generator
    best_arm_index : int
        Index of the highest true probability (the lowest index on ties).
    best_headline : str
    best_true_probability : float
    total_opens : int
        Opens in the latest run.
    summary_table : DataFrame
        Per-headline results of the latest run (see :meth:`build_summary_table`).

    Raises
    ------
    InvalidParameterError
        A ``ValueError`` when there is no headline, the lengths differ, or a
        probability lies outside [0, 1].
    """

    def __init__(
        self,
        headlines: Sequence[str],
        true_probabilities: Sequence[float] | FloatArray,
        random_state: int | None = None,
    ) -> None:
        owner = type(self).__name__
        self.headlines: list[str] = list(headlines)
        if not self.headlines:
            raise fail(
                "headlines",
                owner,
                "a non-empty sequence (at least one headline must be provided)",
                headlines,
            )
        probabilities = check_probabilities(true_probabilities, "true_probabilities", owner)
        if probabilities.shape[0] != len(self.headlines):
            raise fail(
                "true_probabilities",
                owner,
                f"a sequence as long as headlines ({len(self.headlines)} values)",
                probabilities.tolist(),
            )
        if random_state is not None:
            check_int(random_state, "random_state", owner, low=0)
        self.true_probabilities: FloatArray = probabilities
        self.n_arms: int = len(self.headlines)
        self.random_state = random_state
        self.rng: np.random.Generator = np.random.default_rng(random_state)
        self.best_arm_index: int = int(np.argmax(probabilities))
        self.best_headline: str = self.headlines[self.best_arm_index]
        self.best_true_probability: float = float(probabilities[self.best_arm_index])
        self._arms: NDArray[np.signedinteger[Any]] = np.empty(0, dtype=np.int8)
        self._rewards: NDArray[np.int8] = np.empty(0, dtype=np.int8)
        self.total_opens: int = 0
        self.summary_table: pd.DataFrame
        self.reset_results()

    # ------------------------------------------------------------------ results

    def reset_results(self) -> None:
        """Forget the latest run: empty histories, empty tables, zero opens."""
        self._arms = np.empty(0, dtype=engine.arm_dtype(self.n_arms))
        self._rewards = np.empty(0, dtype=np.int8)
        for name in _LAZY_RESULTS:
            self.__dict__.pop(name, None)
        self.total_opens = 0
        self.summary_table = self.build_summary_table()

    @cached_property
    def reward_history(self) -> list[int]:
        """Reward (1 open, 0 not) of every send of the latest run."""
        rewards: list[int] = self._rewards.tolist()
        return rewards

    @cached_property
    def selection_history(self) -> list[int]:
        """Arm index of every send of the latest run."""
        arms: list[int] = self._arms.tolist()
        return arms

    @cached_property
    def cumulative_opens(self) -> list[int]:
        """Running total of opens after every send of the latest run."""
        totals: list[int] = np.cumsum(self._rewards, dtype=np.int64).tolist()
        return totals

    @cached_property
    def history(self) -> pd.DataFrame:
        """One row per send of the latest run.

        Columns ``round`` (1-based, int64), ``arm_index`` (int64), ``headline``,
        ``reward`` (int64), ``true_open_rate`` (float64), ``cumulative_opens``
        (int64), plus whatever the subclass adds.
        """
        arms = self._arms.astype(np.int64)
        rewards = self._rewards.astype(np.int64)
        columns: dict[str, Any] = {
            "round": np.arange(1, arms.shape[0] + 1, dtype=np.int64),
            "arm_index": arms,
            "headline": np.asarray(self.headlines, dtype=object)[arms],
            "reward": rewards,
            "true_open_rate": self.true_probabilities[arms],
            "cumulative_opens": np.cumsum(rewards),
        }
        columns.update(self._extra_history_columns(arms, rewards))
        return pd.DataFrame(columns)

    def _extra_history_columns(
        self, arms: NDArray[np.int64], rewards: NDArray[np.int64]
    ) -> dict[str, Any]:
        """Columns a subclass appends to ``history``."""
        return {}

    def _per_arm_counts(self) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Selections and opens per arm in the latest run, each shape (n_arms,)."""
        arms = self._arms.astype(np.intp)
        selections = np.bincount(arms, minlength=self.n_arms).astype(np.int64)
        opens = np.bincount(arms[self._rewards == 1], minlength=self.n_arms).astype(np.int64)
        return selections, opens

    def build_summary_table(self) -> pd.DataFrame:
        """One row per headline, sorted by ``arm_index``.

        Columns ``arm_index``, ``headline``, ``selections``, ``opens``,
        ``realized_open_rate`` (NaN for a headline never sent) and
        ``true_open_rate``, plus whatever the subclass adds. Before any run
        the frame is empty with those columns.
        """
        if self._arms.shape[0] == 0:
            return pd.DataFrame({name: [] for name in self._summary_columns()})
        selections, opens = self._per_arm_counts()
        realized = np.full(self.n_arms, np.nan)
        np.divide(opens, selections, out=realized, where=selections > 0)
        columns: dict[str, Any] = {
            "arm_index": np.arange(self.n_arms, dtype=np.int64),
            "headline": list(self.headlines),
            "selections": selections,
            "opens": opens,
            "realized_open_rate": realized,
            "true_open_rate": self.true_probabilities.copy(),
        }
        columns.update(self._extra_summary_columns())
        return pd.DataFrame(columns)

    def _summary_columns(self) -> tuple[str, ...]:
        return _SUMMARY_COLUMNS

    def _extra_summary_columns(self) -> dict[str, Any]:
        """Columns a subclass appends to the summary table."""
        return {}

    # ---------------------------------------------------------------- one step

    def _check_arm(self, arm_index: int) -> int:
        arm = operator.index(arm_index)
        if not 0 <= arm < self.n_arms:
            raise IndexError(
                f"arm_index {arm} is out of range for {self.n_arms} headlines "
                f"(valid: 0 to {self.n_arms - 1})."
            )
        return arm

    def send_email(self, arm_index: int) -> int:
        """Send headline ``arm_index`` once: 1 if opened, 0 if not.

        One ``rng.binomial(1, p)`` draw with the headline's true probability.

        Raises
        ------
        IndexError
            If ``arm_index`` is not in ``[0, n_arms)``.
        """
        arm = self._check_arm(arm_index)
        return int(self.rng.binomial(n=1, p=self.true_probabilities[arm]))

    def select_headline(self) -> int:
        """Index of the headline to send next."""
        raise NotImplementedError

    # --------------------------------------------------------------------- run

    def _check_iterations(self, num_iterations: int) -> int:
        return check_int(num_iterations, "num_iterations", f"{type(self).__name__}.run", low=1)

    def _finalize(self, arms: NDArray[np.signedinteger[Any]], rewards: NDArray[np.int8]) -> None:
        self._arms = arms
        self._rewards = rewards
        self.total_opens = int(np.count_nonzero(rewards))
        self.summary_table = self.build_summary_table()


class RandomSimulation(BaseEmailSimulation):
    """The randomized (A/B-style) baseline: every send picks a headline uniformly.

    Examples
    --------
    >>> sim = RandomSimulation(["A", "B"], [0.1, 0.3], random_state=42)
    >>> sim.run(1000)
    >>> sim.history.shape
    (1000, 6)
    >>> sim.summary_table["selections"].tolist()
    [485, 515]
    """

    def select_headline(self) -> int:
        """A uniform random headline index: ``rng.integers(0, n_arms)``."""
        return int(self.rng.integers(low=0, high=self.n_arms))

    def run(self, num_iterations: int) -> None:
        """Send ``num_iterations`` emails, each to a uniformly chosen headline.

        Resets the previous results first; afterwards ``history``,
        ``summary_table`` and the other results describe this run.

        Raises
        ------
        InvalidParameterError
            A ``ValueError`` if ``num_iterations`` is not an int >= 1.
        """
        n = self._check_iterations(num_iterations)
        self.reset_results()
        arms, rewards = engine.simulate_random_split(self.true_probabilities, n, self.rng)
        self._finalize(arms, rewards)


class BanditSimulation(BaseEmailSimulation):
    """Thompson Sampling over Beta(alpha, beta) posteriors, one per headline.

    Parameters
    ----------
    headlines, true_probabilities, random_state
        As in :class:`BaseEmailSimulation`.
    alpha_prior, beta_prior : float, default=1.0
        Beta prior of every headline, each > 0 (1, 1 is uniform).

    Attributes
    ----------
    alpha, beta : ndarray of shape (n_arms,)
        Current posterior parameters.

    Examples
    --------
    >>> sim = BanditSimulation(["A", "B"], [0.1, 0.3], random_state=123)
    >>> sim.run(1000)
    >>> int(sim.summary_table["selections"].idxmax())
    1
    """

    _EXTRA_SUMMARY: ClassVar[tuple[str, ...]] = (
        "final_posterior_mean",
        "final_alpha",
        "final_beta",
    )

    def __init__(
        self,
        headlines: Sequence[str],
        true_probabilities: Sequence[float] | FloatArray,
        random_state: int | None = None,
        alpha_prior: float = 1.0,
        beta_prior: float = 1.0,
    ) -> None:
        owner = type(self).__name__
        self.alpha_prior, self.beta_prior = check_prior(alpha_prior, beta_prior, owner)
        super().__init__(headlines, true_probabilities, random_state)
        self.alpha: FloatArray = np.empty(0)
        self.beta: FloatArray = np.empty(0)
        self.reset_bandit_state()

    def reset_bandit_state(self) -> None:
        """Set every headline's posterior back to the prior."""
        self.alpha = np.full(self.n_arms, self.alpha_prior)
        self.beta = np.full(self.n_arms, self.beta_prior)

    def posterior_means(self) -> FloatArray:
        """Posterior mean ``alpha / (alpha + beta)`` of every headline, shape (n_arms,)."""
        means: FloatArray = self.alpha / (self.alpha + self.beta)
        return means

    def select_headline(self) -> int:
        """Draw once from every headline's posterior and return the argmax.

        This is the core Thompson rule
        (:func:`headliner.core.policies.thompson_winner`): the posterior
        parameters are passed as counts over a zero prior, so each draw is
        exactly ``rng.beta(alpha[k], beta[k])`` in index order, as the seed's
        single vectorized ``rng.beta(alpha, beta)`` call draws them.
        """
        return thompson_winner(np.zeros(2), self.alpha, self.beta, self.rng)

    def update_posterior(self, arm_index: int, reward: int) -> None:
        """Add one send's outcome: ``alpha += reward``, ``beta += 1 - reward``.

        Raises
        ------
        IndexError
            If ``arm_index`` is not in ``[0, n_arms)``.
        InvalidParameterError
            A ``ValueError`` unless ``reward`` is 0 or 1.
        """
        arm = self._check_arm(arm_index)
        # `in` compares by value, so True/False and 1.0/0.0 pass, as in the seed.
        if reward not in (0, 1):
            raise fail("reward", f"{type(self).__name__}.update_posterior", "0 or 1", reward)
        value = int(reward)
        self.alpha[arm] += value
        self.beta[arm] += 1 - value

    def run(self, num_iterations: int) -> None:
        """Send ``num_iterations`` emails by Thompson Sampling, updating after each send.

        Resets the previous results and the posterior first.

        Raises
        ------
        InvalidParameterError
            A ``ValueError`` if ``num_iterations`` is not an int >= 1.
        """
        n = self._check_iterations(num_iterations)
        self.reset_results()
        self.reset_bandit_state()
        arms, rewards, opens, non_opens = engine.simulate_thompson(
            self.true_probabilities,
            n,
            self.rng,
            alpha_prior=self.alpha_prior,
            beta_prior=self.beta_prior,
        )
        self.alpha = self.alpha_prior + opens
        self.beta = self.beta_prior + non_opens
        self._finalize(arms, rewards)

    def _extra_history_columns(
        self, arms: NDArray[np.int64], rewards: NDArray[np.int64]
    ) -> dict[str, Any]:
        """The selected arm's ``posterior_mean``, ``alpha`` and ``beta`` after each update."""
        if arms.shape[0] == 0:
            empty = np.empty(0)
            return {"posterior_mean": empty, "alpha": empty.copy(), "beta": empty.copy()}
        # Group the sends by arm (stable, so each group stays in time order),
        # take running sums within each group, and scatter them back.
        order = np.argsort(arms, kind="stable")
        grouped_arms = arms[order]
        sends = np.bincount(arms, minlength=self.n_arms)
        group_start = np.concatenate(([0], np.cumsum(sends)[:-1]))
        running_opens = np.cumsum(rewards[order])
        opens_before_group = np.where(
            group_start > 0, running_opens[np.maximum(group_start - 1, 0)], 0
        )
        arm_opens = np.empty_like(rewards)
        arm_sends = np.empty_like(rewards)
        arm_opens[order] = running_opens - opens_before_group[grouped_arms]
        arm_sends[order] = np.arange(1, arms.shape[0] + 1) - group_start[grouped_arms]
        alpha = self.alpha_prior + arm_opens
        beta = self.beta_prior + (arm_sends - arm_opens)
        return {"posterior_mean": alpha / (alpha + beta), "alpha": alpha, "beta": beta}

    def _summary_columns(self) -> tuple[str, ...]:
        return _SUMMARY_COLUMNS + self._EXTRA_SUMMARY

    def _extra_summary_columns(self) -> dict[str, Any]:
        return {
            "final_posterior_mean": self.posterior_means(),
            "final_alpha": self.alpha.copy(),
            "final_beta": self.beta.copy(),
        }
