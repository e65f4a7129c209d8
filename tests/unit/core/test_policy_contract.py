"""The contract every policy keeps, run over every registered policy.

A policy returns a valid arm index, makes the same decisions for the same
seed, works from one arm to a hundred, and makes exactly the same decisions
compiled (the simulator's numba kernel) as in Python (the service's single
decision): one rule, two callers.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from numpy.typing import NDArray

from headliner.core import allocation
from headliner.core.policies import (
    POLICY_CLASSES,
    UCB1,
    ABTestThenCommit,
    EpsilonGreedy,
    Policy,
    ThompsonSampling,
    TopTwoThompson,
    UniformRandom,
)
from headliner.sim import engine

POLICIES: list[Policy] = [
    ThompsonSampling(),
    UniformRandom(),
    ABTestThenCommit(n_test_sends=40),
    EpsilonGreedy(epsilon=0.2),
    UCB1(),
    TopTwoThompson(leader_probability=0.5),
]
EVERY_POLICY = pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.name)
ARM_COUNTS = pytest.mark.parametrize("n_arms", [1, 5, 100], ids=["K=1", "K=5", "K=100"])


def true_rates(n_arms: int) -> NDArray[np.float64]:
    """Distinct rates in [0.05, 0.35], the best one in the middle of the index range."""
    rates = np.linspace(0.05, 0.3, n_arms)
    rates[n_arms // 2] = 0.35
    return rates


def python_run(
    policy: Policy,
    rates: NDArray[np.float64],
    n_sends: int,
    rng: np.random.Generator,
) -> tuple[list[int], list[int]]:
    """Decide in Python one send at a time, as the service does, with immediate feedback."""
    opens = np.zeros(len(rates))
    non_opens = np.zeros(len(rates))
    memory = np.full(1, -1, dtype=np.int64)
    arms, rewards = [], []
    for t in range(n_sends):
        arm = policy.choose(opens, non_opens, rng, t=t, memory=memory)
        reward = int(rng.binomial(1, rates[arm]))
        arms.append(arm)
        rewards.append(reward)
        opens[arm] += reward
        non_opens[arm] += 1 - reward
    return arms, rewards


def test_every_registered_policy_is_under_contract() -> None:
    assert {type(policy) for policy in POLICIES} == set(POLICY_CLASSES.values())


@EVERY_POLICY
@ARM_COUNTS
def test_decisions_are_valid_arms(policy: Policy, n_arms: int, seed: int) -> None:
    arms, _ = python_run(policy, true_rates(n_arms), 150, np.random.default_rng(seed))
    assert all(isinstance(arm, int) for arm in arms)
    assert all(0 <= arm < n_arms for arm in arms)


@EVERY_POLICY
@ARM_COUNTS
def test_same_seed_same_decisions(policy: Policy, n_arms: int, seed: int) -> None:
    rates = true_rates(n_arms)
    first = python_run(policy, rates, 150, np.random.default_rng(seed))
    second = python_run(policy, rates, 150, np.random.default_rng(seed))
    assert first == second


@EVERY_POLICY
@ARM_COUNTS
def test_compiled_decisions_equal_python_decisions(policy: Policy, n_arms: int, seed: int) -> None:
    rates = true_rates(n_arms)
    n_sends = 300
    arms, rewards = python_run(policy, rates, n_sends, np.random.default_rng(seed))
    rng = np.random.default_rng(seed)
    compiled_arms, compiled_rewards, opens, non_opens = engine.simulate_trace(
        policy.code, policy.params(), rates, n_sends, rng
    )
    assert compiled_arms.tolist() == arms
    assert compiled_rewards.tolist() == rewards
    assert opens.sum() + non_opens.sum() == n_sends


@EVERY_POLICY
@pytest.mark.parametrize("t", [0, 39, 40, 500], ids=["t=0", "t=39", "t=40", "t=500"])
def test_compiled_single_decision_equals_python(policy: Policy, t: int, seed: int) -> None:
    # One decision from an arbitrary state, through the compiled dispatcher
    # called from Python and through Policy.choose; both generators must end
    # in the same state too.
    state = np.random.default_rng(seed + t)
    opens = state.integers(0, 30, size=7).astype(np.float64)
    non_opens = state.integers(0, 90, size=7).astype(np.float64)
    params = policy.params(1.0, 1.0)
    python_rng = np.random.default_rng(seed)
    compiled_rng = np.random.default_rng(seed)
    python_memory = np.full(1, -1, dtype=np.int64)
    compiled_memory = np.full(1, -1, dtype=np.int64)
    for _ in range(20):
        expected = policy.choose(opens, non_opens, python_rng, t=t, memory=python_memory)
        got = engine.choose_arm(
            policy.code, params, opens, non_opens, t, compiled_memory, compiled_rng
        )
        assert got == expected
    assert python_rng.bit_generator.state == compiled_rng.bit_generator.state
    np.testing.assert_array_equal(python_memory, compiled_memory)


@EVERY_POLICY
@pytest.mark.parametrize("n_arms", [1, 5], ids=["K=1", "K=5"])
def test_decisions_follow_selection_probabilities(
    policy: Policy,
    n_arms: int,
    seed: int,
    assert_matches_frequencies: Callable[[NDArray[np.float64], NDArray[np.int64]], None],
) -> None:
    # The propensity a policy reports is the law of its decision: each arm's
    # frequency over 3,000 decisions from one fixed state lies within the
    # binomial tolerance of its probability (see tests/unit/core/conftest.py).
    opens = np.array([3.0, 8.0, 1.0, 9.0, 4.0])[:n_arms]
    non_opens = np.array([17.0, 30.0, 9.0, 28.0, 20.0])[:n_arms]
    t = 60  # past the A/B test's 40 test sends, so it has committed
    probabilities = policy.selection_probabilities(opens, non_opens, t=t)
    assert probabilities.shape == (n_arms,)
    assert probabilities.sum() == pytest.approx(1.0)
    assert np.all(probabilities >= 0)
    rng = np.random.default_rng(seed)
    arms = np.array(
        [policy.choose(opens, non_opens, rng, t=t) for _ in range(3_000)], dtype=np.int64
    )
    assert_matches_frequencies(probabilities, arms)


GUARDS = pytest.mark.parametrize(
    ("short", "share", "floor"),
    [
        ([False] * 7, 1.0, 0.0),
        ([True] * 7, 1.0, 0.02),
        ([False, True, False, False, True, False, False], 0.2, 0.0),
        ([False, False, False, False, False, False, True], 1.0, 0.05),
    ],
    ids=["no-guard", "all-short-floor", "two-short-capped", "one-short-floor"],
)


@EVERY_POLICY
@GUARDS
def test_compiled_guarded_decisions_equal_python(
    policy: Policy, short: list[bool], share: float, floor: float, seed: int
) -> None:
    # The service's decision path (floor, burn-in share, then the rule), in
    # Python and compiled: the same arms and the same generator state after.
    state = np.random.default_rng(seed)
    opens = state.integers(0, 30, size=7).astype(np.float64)
    non_opens = state.integers(0, 90, size=7).astype(np.float64)
    mask = np.array(short, dtype=np.bool_)
    params = policy.params()
    python_rng = np.random.default_rng(seed)
    compiled_rng = np.random.default_rng(seed)
    python_memory = np.full(1, -1, dtype=np.int64)
    compiled_memory = np.full(1, -1, dtype=np.int64)
    for t in range(0, 100, 5):
        expected = allocation.guarded_choice(
            policy.code, params, opens, non_opens, t, python_memory, mask, share, floor,
            python_rng,
        )  # fmt: skip
        got = engine.guarded_choice(
            policy.code, params, opens, non_opens, t, compiled_memory, mask, share, floor,
            compiled_rng,
        )  # fmt: skip
        assert got == expected
    assert python_rng.bit_generator.state == compiled_rng.bit_generator.state


@EVERY_POLICY
@GUARDS
def test_compiled_guarded_split_equals_python(
    policy: Policy, short: list[bool], share: float, floor: float
) -> None:
    opens = np.array([3.0, 8.0, 1.0, 9.0, 4.0, 12.0, 0.0])
    non_opens = np.array([17.0, 30.0, 9.0, 28.0, 20.0, 40.0, 2.0])
    mask = np.array(short, dtype=np.bool_)
    python, compiled = np.empty(7), np.empty(7)
    for out, function in ((python, allocation.guarded_probabilities),
                          (compiled, engine.kernels.guarded_probabilities)):  # fmt: skip
        function(
            policy.code, policy.params(), opens, non_opens, 60, np.full(1, -1, dtype=np.int64),
            mask, share, floor, out,
        )  # fmt: skip
    np.testing.assert_allclose(compiled, python, rtol=1e-12, atol=1e-15)
    assert python.sum() == pytest.approx(1.0)
