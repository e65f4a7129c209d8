"""The study behind ``headliner simulate``: traces agree with the seed API's runs."""

from __future__ import annotations

import numpy as np
import pytest

from headliner.core.policies import ABTestThenCommit, ThompsonSampling, UniformRandom
from headliner.sim.scenarios import reference_scenario
from headliner.sim.study import StudyResult, run_study


@pytest.fixture(scope="module")
def study() -> StudyResult:
    policies = [ThompsonSampling(), UniformRandom(), ABTestThenCommit(n_test_sends=3_000)]
    return run_study(reference_scenario(), iterations=[100, 1_000, 10_000], policies=policies)


def test_traces_reproduce_the_seed_comparison_at_every_horizon(study: StudyResult) -> None:
    # A policy's first n sends do not depend on the horizon, so the trace's
    # prefix must equal the seed API's fresh run of n sends with the same seed.
    for row in study.comparison.itertuples():
        assert study.traces["thompson"].opens_at(row.iterations) == row.bandit_opens
        assert study.traces["uniform"].opens_at(row.iterations) == row.random_opens


def test_ab_test_matches_the_random_split_during_its_test_phase(study: StudyResult) -> None:
    # Same seed and same draws (integers, then binomial) while testing.
    ab, uniform = study.traces["ab_test"], study.traces["uniform"]
    assert np.array_equal(ab.arms[:3_000], uniform.arms[:3_000])
    committed = ab.arms[3_000:]
    assert np.all(committed == committed[0])


def test_baseline_columns_hold_opens_and_lift(study: StudyResult) -> None:
    table = study.comparison
    assert list(table["ab_test_opens"]) == [
        study.traces["ab_test"].opens_at(n) for n in (100, 1_000, 10_000)
    ]
    last = table.iloc[-1]
    expected = round((last["bandit_opens"] / last["ab_test_opens"] - 1) * 100, 2)
    assert last["lift_vs_ab_test_pct"] == expected
    assert "uniform_opens" not in table.columns and "thompson_opens" not in table.columns


def test_single_replication_has_no_monte_carlo(study: StudyResult) -> None:
    assert study.monte_carlo is None


def test_monte_carlo_checkpoints_include_the_horizons() -> None:
    result = run_study(
        reference_scenario(), iterations=[50, 400], policies=[UniformRandom()], replications=4
    )
    assert result.monte_carlo is not None
    checkpoints = result.monte_carlo.checkpoints.tolist()
    assert {50, 400} <= set(checkpoints) and checkpoints[-1] == 400
    assert result.monte_carlo.opens["uniform"].shape == (4, len(checkpoints))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param({"iterations": [0]}, "iterations", id="zero-horizon"),
        pytest.param({"policies": []}, "policies", id="no-policies"),
        pytest.param({"replications": 0}, "replications", id="zero-replications"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        run_study(reference_scenario(), **kwargs)  # type: ignore[arg-type]
