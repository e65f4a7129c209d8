"""The seed-compatible classes: validation rules, attributes, columns, dtypes, reset semantics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from headliner import (
    BanditSimulation,
    BaseEmailSimulation,
    InvalidParameterError,
    RandomSimulation,
)

HISTORY_DTYPES = {
    "round": "int64",
    "arm_index": "int64",
    "reward": "int64",
    "true_open_rate": "float64",
    "cumulative_opens": "int64",
}
BANDIT_HISTORY_DTYPES = {
    **HISTORY_DTYPES,
    "posterior_mean": "float64",
    "alpha": "float64",
    "beta": "float64",
}
SUMMARY_COLUMNS = [
    "arm_index",
    "headline",
    "selections",
    "opens",
    "realized_open_rate",
    "true_open_rate",
]
BANDIT_SUMMARY_COLUMNS = [*SUMMARY_COLUMNS, "final_posterior_mean", "final_alpha", "final_beta"]

SIMULATIONS = pytest.mark.parametrize(
    "cls", [RandomSimulation, BanditSimulation, BaseEmailSimulation], ids=lambda c: c.__name__
)


# ------------------------------------------------------------------ validation


@SIMULATIONS
def test_no_headlines_is_a_value_error(cls: type[BaseEmailSimulation]) -> None:
    with pytest.raises(ValueError, match="at least one headline must be provided"):
        cls([], [])


@SIMULATIONS
@pytest.mark.parametrize("probabilities", [[0.1], [0.1, 0.2, 0.3]], ids=["too-few", "too-many"])
def test_mismatched_lengths_are_a_value_error(
    cls: type[BaseEmailSimulation], probabilities: list[float]
) -> None:
    with pytest.raises(ValueError, match="'true_probabilities' parameter .* as long as headlines"):
        cls(["A", "B"], probabilities)


@SIMULATIONS
@pytest.mark.parametrize("bad", [-0.01, 1.01, float("nan")], ids=["negative", "above-one", "nan"])
def test_probability_outside_unit_interval_is_a_value_error(
    cls: type[BaseEmailSimulation], bad: float
) -> None:
    with pytest.raises(ValueError, match=r"'true_probabilities' parameter .* \[0, 1\]"):
        cls(["A", "B"], [0.5, bad])


@SIMULATIONS
@pytest.mark.parametrize("edge", [0.0, 1.0], ids=["zero", "one"])
def test_probabilities_zero_and_one_are_allowed(
    cls: type[BaseEmailSimulation], edge: float
) -> None:
    assert cls(["A", "B"], [edge, 0.5]).true_probabilities[0] == edge


@pytest.mark.parametrize("name", ["alpha_prior", "beta_prior"])
@pytest.mark.parametrize("bad", [0.0, -1.0], ids=["zero", "negative"])
def test_non_positive_prior_is_a_value_error(name: str, bad: float) -> None:
    message = (
        rf"The '{name}' parameter of BanditSimulation must be a float in the range "
        rf"\[0\.001, 1000000\]\. Got {bad}"
    )
    with pytest.raises(InvalidParameterError, match=message):
        BanditSimulation(["A", "B"], [0.1, 0.2], **{name: bad})


@pytest.mark.parametrize("cls", [RandomSimulation, BanditSimulation], ids=lambda c: c.__name__)
@pytest.mark.parametrize("bad", [0, -5], ids=["zero", "negative"])
def test_non_positive_iterations_is_a_value_error(
    cls: type[RandomSimulation | BanditSimulation], bad: int
) -> None:
    sim = cls(["A", "B"], [0.1, 0.2], random_state=1)
    with pytest.raises(ValueError, match=rf"'num_iterations' parameter of {cls.__name__}.run"):
        sim.run(bad)


@pytest.mark.parametrize("cls", [RandomSimulation, BanditSimulation], ids=lambda c: c.__name__)
@pytest.mark.parametrize("arm", [-1, 2, 99], ids=["negative", "n_arms", "far"])
def test_send_email_out_of_range_is_an_index_error(
    cls: type[RandomSimulation | BanditSimulation], arm: int
) -> None:
    with pytest.raises(IndexError, match="out of range"):
        cls(["A", "B"], [0.1, 0.2]).send_email(arm)


@pytest.mark.parametrize("arm", [-1, 3], ids=["negative", "n_arms"])
def test_update_posterior_out_of_range_is_an_index_error(arm: int) -> None:
    with pytest.raises(IndexError, match="out of range"):
        BanditSimulation(["A", "B", "C"], [0.1, 0.2, 0.3]).update_posterior(arm, 1)


@pytest.mark.parametrize("reward", [2, -1, 0.5, "1"], ids=["two", "minus-one", "half", "text"])
def test_update_posterior_reward_not_zero_or_one_is_a_value_error(reward: object) -> None:
    sim = BanditSimulation(["A", "B"], [0.1, 0.2])
    with pytest.raises(ValueError, match="'reward' parameter .* must be 0 or 1"):
        sim.update_posterior(0, reward)  # type: ignore[arg-type]


def test_errors_are_invalid_parameter_errors() -> None:
    with pytest.raises(InvalidParameterError):
        RandomSimulation([], [])


# ------------------------------------------------------------ state and steps


def test_constructor_sets_the_seed_attributes(headlines: list[str], rates: list[float]) -> None:
    sim = RandomSimulation(headlines, rates, random_state=7)
    assert sim.headlines == headlines
    assert sim.true_probabilities.dtype == np.float64
    assert sim.n_arms == 5
    assert sim.best_arm_index == 3
    assert sim.best_headline == "Ending Tonight: Final Chance to Save"
    assert sim.best_true_probability == 0.24
    assert isinstance(sim.rng, np.random.Generator)


def test_rng_is_default_rng_of_random_state() -> None:
    sim = RandomSimulation(["A", "B"], [0.1, 0.2], random_state=5)
    assert sim.rng.random() == np.random.default_rng(5).random()


def test_before_any_run_the_results_are_empty() -> None:
    sim = BanditSimulation(["A", "B"], [0.1, 0.2])
    assert sim.reward_history == []
    assert sim.selection_history == []
    assert sim.cumulative_opens == []
    assert sim.total_opens == 0
    assert sim.history.empty
    assert list(sim.history.columns) == [
        "round",
        "arm_index",
        "headline",
        "reward",
        "true_open_rate",
        "cumulative_opens",
        "posterior_mean",
        "alpha",
        "beta",
    ]
    assert sim.summary_table.empty
    assert list(sim.summary_table.columns) == BANDIT_SUMMARY_COLUMNS


def test_send_email_returns_a_bernoulli_draw_of_the_generator() -> None:
    sim = RandomSimulation(["A", "B"], [0.0, 1.0], random_state=3)
    assert [sim.send_email(0), sim.send_email(1)] == [0, 1]
    replay = np.random.default_rng(4)
    sim = RandomSimulation(["A", "B"], [0.3, 0.6], random_state=4)
    draws = [sim.send_email(k % 2) for k in range(200)]
    assert draws == [int(replay.binomial(1, [0.3, 0.6][k % 2])) for k in range(200)]


def test_random_select_headline_is_integers_of_the_generator() -> None:
    sim = RandomSimulation(["A", "B", "C"], [0.1, 0.2, 0.3], random_state=8)
    replay = np.random.default_rng(8)
    assert [sim.select_headline() for _ in range(50)] == [
        int(replay.integers(low=0, high=3)) for _ in range(50)
    ]


def test_bandit_select_headline_is_argmax_of_one_vectorized_beta_draw() -> None:
    sim = BanditSimulation(["A", "B", "C"], [0.1, 0.2, 0.3], random_state=9)
    sim.alpha = np.array([3.0, 10.0, 2.0])
    sim.beta = np.array([5.0, 30.0, 1.5])
    replay = np.random.default_rng(9)
    assert [sim.select_headline() for _ in range(100)] == [
        int(np.argmax(replay.beta(sim.alpha, sim.beta))) for _ in range(100)
    ]


@pytest.mark.parametrize("opened", [True, 1, 1.0, np.int64(1)], ids=["bool", "int", "float", "np"])
def test_update_posterior_accepts_any_one(opened: object) -> None:
    sim = BanditSimulation(["A"], [0.1])
    sim.update_posterior(0, opened)  # type: ignore[arg-type]
    assert (sim.alpha[0], sim.beta[0]) == (2.0, 1.0)


def test_update_posterior_adds_opens_to_alpha_and_non_opens_to_beta() -> None:
    sim = BanditSimulation(["A", "B"], [0.1, 0.2], alpha_prior=2.0, beta_prior=3.0)
    sim.update_posterior(1, 1)
    sim.update_posterior(1, 0)
    sim.update_posterior(0, 0)
    np.testing.assert_array_equal(sim.alpha, [2.0, 3.0])
    np.testing.assert_array_equal(sim.beta, [4.0, 4.0])
    np.testing.assert_allclose(sim.posterior_means(), [2 / 6, 3 / 7])
    sim.reset_bandit_state()
    np.testing.assert_array_equal(sim.alpha, [2.0, 2.0])
    np.testing.assert_array_equal(sim.beta, [3.0, 3.0])


# ------------------------------------------------------------------- results


@pytest.mark.parametrize(
    ("cls", "dtypes"),
    [(RandomSimulation, HISTORY_DTYPES), (BanditSimulation, BANDIT_HISTORY_DTYPES)],
    ids=["random", "bandit"],
)
def test_history_columns_and_dtypes(
    cls: type[RandomSimulation | BanditSimulation],
    dtypes: dict[str, str],
    headlines: list[str],
    rates: list[float],
) -> None:
    sim = cls(headlines, rates, random_state=11)
    sim.run(500)
    history = sim.history
    expected = ["round", "arm_index", "headline", "reward", "true_open_rate", "cumulative_opens"]
    assert list(history.columns) == expected + list(dtypes)[5:]
    for column, dtype in dtypes.items():
        assert history[column].dtype == dtype, column
    assert pd.api.types.is_string_dtype(history["headline"])
    assert history["round"].tolist() == list(range(1, 501))
    assert history["headline"].tolist() == [headlines[k] for k in history["arm_index"]]
    assert history["true_open_rate"].tolist() == [rates[k] for k in history["arm_index"]]
    assert history["cumulative_opens"].tolist() == np.cumsum(history["reward"]).tolist()


@pytest.mark.parametrize("cls", [RandomSimulation, BanditSimulation], ids=lambda c: c.__name__)
def test_derived_results_agree_with_history(
    cls: type[RandomSimulation | BanditSimulation],
) -> None:
    sim = cls(["A", "B", "C"], [0.2, 0.5, 0.3], random_state=2)
    sim.run(300)
    assert sim.reward_history == sim.history["reward"].tolist()
    assert sim.selection_history == sim.history["arm_index"].tolist()
    assert sim.cumulative_opens == sim.history["cumulative_opens"].tolist()
    assert sim.total_opens == sum(sim.reward_history)
    assert all(type(v) is int for v in sim.reward_history[:5] + sim.selection_history[:5])


def test_bandit_history_posterior_columns_follow_each_update() -> None:
    sim = BanditSimulation(["A", "B", "C"], [0.2, 0.5, 0.3], random_state=4, alpha_prior=0.5)
    sim.run(400)
    alpha = np.full(3, 0.5)
    beta = np.ones(3)
    expected = []
    for arm, reward in zip(sim.selection_history, sim.reward_history, strict=True):
        alpha[arm] += reward
        beta[arm] += 1 - reward
        expected.append((alpha[arm] / (alpha[arm] + beta[arm]), alpha[arm], beta[arm]))
    got = sim.history[["posterior_mean", "alpha", "beta"]].to_numpy()
    np.testing.assert_allclose(got, np.array(expected), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(sim.alpha, alpha)
    np.testing.assert_array_equal(sim.beta, beta)


@pytest.mark.parametrize("cls", [RandomSimulation, BanditSimulation], ids=lambda c: c.__name__)
def test_summary_table_lists_every_headline(
    cls: type[RandomSimulation | BanditSimulation],
) -> None:
    # Three sends over four headlines leave at least one headline unsent.
    sim = cls(["A", "B", "C", "D"], [1.0, 0.0, 0.0, 0.0], random_state=0)
    sim.run(3)
    table = sim.summary_table
    columns = BANDIT_SUMMARY_COLUMNS if cls is BanditSimulation else SUMMARY_COLUMNS
    assert list(table.columns) == columns
    assert table["arm_index"].tolist() == [0, 1, 2, 3]
    assert table["headline"].tolist() == ["A", "B", "C", "D"]
    assert table["selections"].sum() == 3
    unsent = table["selections"] == 0
    assert unsent.any()
    assert table.loc[unsent, "realized_open_rate"].isna().all()
    sent = ~unsent
    np.testing.assert_allclose(
        table.loc[sent, "realized_open_rate"],
        table.loc[sent, "opens"] / table.loc[sent, "selections"],
    )
    for column in ("arm_index", "selections", "opens"):
        assert table[column].dtype == "int64"
    for column in ("realized_open_rate", "true_open_rate"):
        assert table[column].dtype == "float64"


def test_bandit_summary_table_has_the_final_posterior() -> None:
    sim = BanditSimulation(["A", "B"], [0.3, 0.6], random_state=1)
    sim.run(200)
    table = sim.summary_table
    np.testing.assert_array_equal(table["final_alpha"], sim.alpha)
    np.testing.assert_array_equal(table["final_beta"], sim.beta)
    np.testing.assert_array_equal(table["final_posterior_mean"], sim.posterior_means())
    np.testing.assert_array_equal(table["final_alpha"] - 1, table["opens"])


@pytest.mark.parametrize("cls", [RandomSimulation, BanditSimulation], ids=lambda c: c.__name__)
def test_reset_results_clears_the_latest_run(
    cls: type[RandomSimulation | BanditSimulation],
) -> None:
    sim = cls(["A", "B"], [0.3, 0.6], random_state=1)
    sim.run(50)
    assert len(sim.history) == 50 and sim.reward_history
    sim.reset_results()
    assert sim.history.empty
    assert sim.reward_history == [] and sim.selection_history == []
    assert sim.cumulative_opens == [] and sim.total_opens == 0
    assert sim.summary_table.empty


@pytest.mark.parametrize("cls", [RandomSimulation, BanditSimulation], ids=lambda c: c.__name__)
def test_run_replaces_the_previous_run(cls: type[RandomSimulation | BanditSimulation]) -> None:
    sim = cls(["A", "B"], [0.3, 0.6], random_state=1)
    sim.run(50)
    first = sim.history
    sim.run(20)
    assert len(sim.history) == 20 and len(first) == 50
    assert sim.summary_table["selections"].sum() == 20


def test_bandit_run_starts_from_the_prior() -> None:
    sim = BanditSimulation(["A", "B"], [0.3, 0.6], random_state=1)
    sim.update_posterior(0, 1)
    sim.run(10)
    assert sim.alpha.sum() + sim.beta.sum() == 4 + 10


@pytest.mark.parametrize("cls", [RandomSimulation, BanditSimulation], ids=lambda c: c.__name__)
def test_same_random_state_same_run(cls: type[RandomSimulation | BanditSimulation]) -> None:
    runs = []
    for _ in range(2):
        sim = cls(["A", "B", "C"], [0.3, 0.6, 0.5], random_state=21)
        sim.run(1000)
        runs.append(sim.selection_history + sim.reward_history)
    assert runs[0] == runs[1]


def test_history_is_built_once_and_cached() -> None:
    sim = RandomSimulation(["A", "B"], [0.3, 0.6], random_state=1)
    sim.run(10)
    assert sim.history is sim.history
