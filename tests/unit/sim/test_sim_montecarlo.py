"""Monte Carlo: reproducible, independent replications; Thompson Sampling's edge over random."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from headliner import (
    ABTestThenCommit,
    EpsilonGreedy,
    InvalidParameterError,
    MonteCarloResult,
    ThompsonSampling,
    UniformRandom,
    run_monte_carlo,
)
from headliner.sim import engine
from headliner.sim.montecarlo import policy_labels


def test_thompson_beats_random_by_19_percent_at_10000_sends(rates: list[float]) -> None:
    result = run_monte_carlo(
        [ThompsonSampling(), UniformRandom()],
        rates,
        10_000,
        200,
        seed=2024,
        checkpoints=[9_000, 10_000],
    )
    # The open rate *at* 10,000 sends: the expected open rate of sends
    # 9,001-10,000, from pseudo-regret (p_best - p_sent per send), which
    # removes the outcome noise. Random's is mean(rates) = 0.198 exactly.
    # Over 2,000 replications the Thompson rate there is 0.2374 with sd
    # 0.0029 per replication, so the 200-replication mean has a standard
    # error of 0.0002: a lift of 19.9% ± 0.1%, and 19% is 9 standard errors
    # below it; no seed should fail this.
    window = np.diff(result.regret["thompson"], axis=1)[:, 0] / 1_000
    thompson_rate = max(rates) - window.mean()
    assert thompson_rate / np.mean(rates) - 1 >= 0.19
    # Over all 10,000 sends the lift is smaller (16.7%, sd of the mean 0.22
    # points over 200 replications) because the first sends explore; 4
    # standard errors below that is 15.8%.
    cumulative = result.opens["thompson"][:, -1].mean() / result.opens["uniform"][:, -1].mean()
    assert cumulative - 1 >= 0.158


def test_same_seed_same_result_and_result_echoes_the_seed(rates: list[float]) -> None:
    policies = [ThompsonSampling(), EpsilonGreedy(0.1)]
    first = run_monte_carlo(policies, rates, 500, 16, seed=7, n_threads=2)
    second = run_monte_carlo(policies, rates, 500, 16, seed=7, n_threads=1)
    assert first.seed == second.seed == 7
    for label in first.labels:
        np.testing.assert_array_equal(first.opens[label], second.opens[label])
        np.testing.assert_array_equal(first.regret[label], second.regret[label])
        np.testing.assert_array_equal(first.best_arm_share[label], second.best_arm_share[label])


def test_seed_none_draws_entropy_and_echoes_it(rates: list[float]) -> None:
    first = run_monte_carlo([ThompsonSampling()], rates, 200, 4, seed=None)
    again = run_monte_carlo([ThompsonSampling()], rates, 200, 4, seed=first.seed)
    np.testing.assert_array_equal(first.opens["thompson"], again.opens["thompson"])


def test_different_seeds_differ(rates: list[float]) -> None:
    a = run_monte_carlo([ThompsonSampling()], rates, 500, 8, seed=1)
    b = run_monte_carlo([ThompsonSampling()], rates, 500, 8, seed=2)
    assert not np.array_equal(a.opens["thompson"], b.opens["thompson"])


def test_replication_r_uses_child_r_of_the_seed_sequence(rates: list[float]) -> None:
    result = run_monte_carlo([UniformRandom()], rates, 1_000, 5, seed=31, checkpoints=[1_000])
    children = np.random.SeedSequence(31).spawn(5)
    for r, child in enumerate(children):
        arms, rewards, _, _ = engine.simulate_trace(
            UniformRandom.code,
            np.array([1.0, 1.0]),
            np.array(rates),
            1_000,
            np.random.default_rng(child),
        )
        assert result.opens["uniform"][r, 0] == rewards.sum()


def test_replications_are_independent(rates: list[float]) -> None:
    # Final opens of 400 random-split replications: the sample correlation of
    # neighbouring replications has sd 1 / sqrt(399) = 0.05 if they are
    # independent; |r| < 0.2 is 4 standard deviations. Identical or shifted
    # streams would give r = 1 or values repeated across rows.
    result = run_monte_carlo([UniformRandom()], rates, 2_000, 400, seed=3, checkpoints=[2_000])
    opens = result.opens["uniform"][:, 0].astype(float)
    assert abs(np.corrcoef(opens[:-1], opens[1:])[0, 1]) < 0.2
    assert len(np.unique(opens)) > 50
    # The spread matches a binomial(2000, 0.198) total: sd 17.8; the sample sd
    # of 400 replications is within 15% of it with overwhelming probability.
    assert abs(opens.std(ddof=1) / np.sqrt(2_000 * 0.198 * 0.802) - 1) < 0.15


def test_result_shapes_dtypes_and_checkpoints(rates: list[float]) -> None:
    result = run_monte_carlo(
        [ThompsonSampling(), UniformRandom()], rates, 1_000, 6, seed=5, checkpoints=[10, 100]
    )
    assert isinstance(result, MonteCarloResult)
    assert result.checkpoints.tolist() == [10, 100, 1_000]
    assert result.labels == ("thompson", "uniform")
    for label in result.labels:
        assert result.opens[label].shape == (6, 3) and result.opens[label].dtype == np.int64
        assert result.regret[label].shape == (6, 3)
        assert result.best_arm_share[label].shape == (6, 3)
        assert np.all(np.diff(result.opens[label], axis=1) >= 0)
        assert np.all(result.opens[label] <= result.checkpoints)
        assert np.all((result.best_arm_share[label] >= 0) & (result.best_arm_share[label] <= 1))
        sends = result.arm_sends[label]
        assert sends.shape == (6, 3, 5)
        np.testing.assert_array_equal(
            sends.sum(axis=2), np.broadcast_to(result.checkpoints, (6, 3))
        )
        np.testing.assert_allclose(
            sends[:, :, 3] / result.checkpoints, result.best_arm_share[label]
        )
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.seed = 3  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        result.opens["thompson"][0, 0] = 1


def test_default_checkpoints_end_at_the_horizon() -> None:
    result = run_monte_carlo([ThompsonSampling()], [0.1, 0.2], 777, 2, seed=1)
    assert result.checkpoints[-1] == 777
    assert len(result.checkpoints) == 50
    assert np.all(np.diff(result.checkpoints) > 0)


def test_regret_and_best_share_of_the_uniform_policy() -> None:
    # The uniform split's pseudo-regret is random only through the arm draws:
    # n * (p_best - mean p) on average, and its best-arm share is 1 / n_arms.
    rates = [0.1, 0.3]
    result = run_monte_carlo([UniformRandom()], rates, 4_000, 50, seed=9, checkpoints=[4_000])
    share = result.best_arm_share["uniform"][:, 0]
    # sd of one share is sqrt(0.25 / 4000) = 0.0079; of the mean of 50, 0.0011.
    assert abs(share.mean() - 0.5) < 0.005
    np.testing.assert_allclose(result.regret["uniform"][:, 0], 4_000 * (1 - share) * 0.2)


def test_summary_has_mean_and_95_percent_interval(rates: list[float]) -> None:
    result = run_monte_carlo([ThompsonSampling(), UniformRandom()], rates, 1_000, 30, seed=4)
    summary = result.summary()
    assert len(summary) == 2 * len(result.checkpoints)
    assert set(summary["policy"]) == {"thompson", "uniform"}
    last = summary[(summary["policy"] == "thompson") & (summary["n_sends"] == 1_000)].iloc[0]
    opens = result.opens["thompson"][:, -1]
    half = 1.959963984540054 * opens.std(ddof=1) / np.sqrt(30)
    assert last["mean_opens"] == pytest.approx(opens.mean())
    assert last["opens_low"] == pytest.approx(opens.mean() - half)
    assert last["opens_high"] == pytest.approx(opens.mean() + half)
    assert last["mean_open_rate"] == pytest.approx(opens.mean() / 1_000)
    assert (summary["regret_low"] <= summary["mean_regret"]).all()
    assert (summary["best_arm_share_high"] >= summary["mean_best_arm_share"]).all()


def test_one_replication_gives_nan_intervals() -> None:
    summary = run_monte_carlo([ThompsonSampling()], [0.1, 0.2], 100, 1, seed=1).summary()
    assert summary["opens_low"].isna().all()
    assert summary["mean_opens"].notna().all()


def test_progress_reports_every_run(rates: list[float]) -> None:
    calls: list[tuple[int, int]] = []
    run_monte_carlo(
        [ThompsonSampling(), UniformRandom()],
        rates,
        100,
        40,
        seed=1,
        n_threads=2,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert calls[-1] == (80, 80)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


def test_labels_disambiguate_repeated_policy_names() -> None:
    labels = policy_labels([ABTestThenCommit(100), ABTestThenCommit(200), UniformRandom()])
    assert labels == (
        "ab_test(n_test_sends=100)",
        "ab_test(n_test_sends=200)",
        "uniform",
    )
    with pytest.raises(InvalidParameterError, match="distinct policies"):
        policy_labels([UniformRandom(), UniformRandom()])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"policies": []}, "'policies' parameter"),
        ({"policies": ["thompson"]}, "'policies' parameter"),
        ({"true_probabilities": []}, "'true_probabilities' parameter"),
        ({"true_probabilities": [0.2, 1.2]}, "'true_probabilities' parameter"),
        ({"n_sends": 0}, "'n_sends' parameter"),
        ({"n_replications": 0}, "'n_replications' parameter"),
        ({"seed": -1}, "'seed' parameter"),
        ({"checkpoints": [0]}, "'checkpoints' parameter"),
        ({"checkpoints": [101]}, "'checkpoints' parameter"),
        ({"alpha_prior": 0.0}, "'alpha_prior' parameter"),
        ({"beta_prior": -1.0}, "'beta_prior' parameter"),
        ({"n_threads": 0}, "'n_threads' parameter"),
    ],
    ids=[
        "no-policies",
        "policy-name-not-object",
        "no-arms",
        "rate-above-one",
        "zero-sends",
        "zero-replications",
        "negative-seed",
        "checkpoint-zero",
        "checkpoint-past-horizon",
        "alpha-prior",
        "beta-prior",
        "threads",
    ],
)
def test_invalid_arguments(kwargs: dict[str, object], match: str) -> None:
    arguments: dict[str, object] = {
        "policies": [ThompsonSampling()],
        "true_probabilities": [0.1, 0.2],
        "n_sends": 100,
        "n_replications": 2,
        "seed": 1,
    }
    arguments.update(kwargs)
    with pytest.raises(InvalidParameterError, match=match):
        run_monte_carlo(**arguments)  # type: ignore[arg-type]


def test_warm_up_loads_the_kernels() -> None:
    engine.warm_up()
    assert engine._trace_kernel.signatures and engine._checkpoint_kernel.signatures
