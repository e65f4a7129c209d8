"""Selection rules and Policy classes (headliner.core.policies).

The suite that runs one contract over every policy (valid arm, determinism,
K = 1 and K = 100, Python vs compiled) lives in test_policy_contract.py; this
file checks each rule's behaviour and that every policy's
``selection_probabilities`` is the distribution its ``choose`` draws from.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from headliner.core.errors import InvalidParameterError
from headliner.core.policies import (
    MAX_CHALLENGER_DRAWS,
    POLICY_CLASSES,
    UCB1,
    ABTestThenCommit,
    EpsilonGreedy,
    Policy,
    ThompsonSampling,
    TopTwoThompson,
    UniformRandom,
    ab_test_sample_size,
    make_policy,
    observed_best_arm,
)
from headliner.core.posterior import BetaPosterior, probability_of_best

# Draws of Policy.choose per frequency check: 5 standard errors of a
# frequency near 1/2 are 5 * sqrt(0.25 / 20_000) ≈ 0.018.
N_DRAWS = 20_000


def as_floats(values: Sequence[float]) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)


class ScriptedRng:
    """Stands in for a Generator: returns the listed Beta draws and uniforms in order."""

    def __init__(self, betas: Sequence[float] = (), uniforms: Sequence[float] = ()) -> None:
        self._betas = list(betas)
        self._uniforms = list(uniforms)

    def beta(self, a: float, b: float) -> float:
        return self._betas.pop(0)

    def random(self) -> float:
        return self._uniforms.pop(0)


POLICIES = [
    ThompsonSampling(),
    UniformRandom(),
    ABTestThenCommit(n_test_sends=200),
    EpsilonGreedy(epsilon=0.2),
    UCB1(),
    TopTwoThompson(leader_probability=0.6),
]
POLICY_IDS = [policy.name for policy in POLICIES]

# (opens, non_opens, t): sends made so far, settled or not.
STATES = {
    "fresh": ([0, 0, 0], [0, 0, 0], 0),
    "untried-arm": ([5, 0, 7], [15, 0, 13], 40),
    "mid-test": ([20, 25, 18], [80, 75, 82], 150),
    "after-test": ([20, 25, 18], [80, 75, 82], 300),
    "five-arms": ([36, 42, 32, 48, 40], [164, 158, 168, 152, 160], 1_000),
}


def empirical_choices(
    policy: Policy,
    opens: np.ndarray,
    non_opens: np.ndarray,
    t: int,
    rng: np.random.Generator,
    n_draws: int = N_DRAWS,
) -> np.ndarray:
    return np.array([policy.choose(opens, non_opens, rng, t=t) for _ in range(n_draws)])


# --- selection probabilities ------------------------------------------------


@pytest.mark.parametrize("state", STATES.values(), ids=STATES.keys())
@pytest.mark.parametrize("policy", POLICIES, ids=POLICY_IDS)
def test_selection_probabilities_are_a_distribution(
    policy: Policy, state: tuple[list[int], list[int], int]
) -> None:
    opens, non_opens, t = state
    p = policy.selection_probabilities(as_floats(opens), as_floats(non_opens), t=t)
    assert p.shape == (len(opens),)
    assert np.all((p >= 0.0) & (p <= 1.0))
    assert abs(p.sum() - 1.0) < 1e-12


@pytest.mark.parametrize("state", STATES.values(), ids=STATES.keys())
@pytest.mark.parametrize("policy", POLICIES, ids=POLICY_IDS)
def test_selection_probabilities_match_choose_frequencies(
    policy: Policy,
    state: tuple[list[int], list[int], int],
    rng: np.random.Generator,
    assert_matches_frequencies,
) -> None:
    opens, non_opens = as_floats(state[0]), as_floats(state[1])
    p = policy.selection_probabilities(opens, non_opens, t=state[2])
    assert_matches_frequencies(p, empirical_choices(policy, opens, non_opens, state[2], rng))


def test_thompson_probabilities_are_probability_of_best() -> None:
    opens, non_opens = as_floats([3, 10]), as_floats([7, 10])
    p = ThompsonSampling().selection_probabilities(opens, non_opens, alpha_prior=2, beta_prior=5)
    expected = probability_of_best(BetaPosterior.from_counts(opens, non_opens, 2.0, 5.0))
    np.testing.assert_array_equal(p, expected)


def test_policy_params_vector_is_prior_then_settings() -> None:
    np.testing.assert_array_equal(ThompsonSampling().params(), [1.0, 1.0])
    np.testing.assert_array_equal(EpsilonGreedy(0.3).params(2.0, 5.0), [2.0, 5.0, 0.3])
    np.testing.assert_array_equal(ABTestThenCommit(40).params(), [1.0, 1.0, 40.0])
    np.testing.assert_array_equal(TopTwoThompson(0.7).params(0.5, 0.5), [0.5, 0.5, 0.7])


def test_the_prior_reaches_both_choose_and_the_probabilities(
    rng: np.random.Generator, assert_matches_frequencies
) -> None:
    # An unsent arm against 3 opens in 10: under a uniform prior it wins about
    # 2/3 of the draws; under Beta(1, 99) (a 1% prior rate) it rarely does.
    opens, non_opens = as_floats([0, 3]), as_floats([0, 7])
    policy = ThompsonSampling()
    uniform_prior = policy.selection_probabilities(opens, non_opens)
    p = policy.selection_probabilities(opens, non_opens, alpha_prior=1.0, beta_prior=99.0)
    assert uniform_prior[0] - p[0] > 0.3
    choices = [
        policy.choose(opens, non_opens, rng, alpha_prior=1.0, beta_prior=99.0)
        for _ in range(N_DRAWS)
    ]
    assert_matches_frequencies(p, np.array(choices))


# --- Thompson Sampling ------------------------------------------------------


@pytest.mark.parametrize(
    ("draws", "arm"),
    [([0.2, 0.9, 0.4], 1), ([0.7, 0.7, 0.1], 0), ([0.1, 0.3, 0.3], 1), ([0.0, 0.0, 0.0], 0)],
    ids=["highest-draw", "tie-to-lowest", "tie-not-first", "all-zero-draws"],
)
def test_thompson_sends_the_highest_draw_ties_to_lowest(draws: list[float], arm: int) -> None:
    rng = ScriptedRng(betas=draws)
    choice = ThompsonSampling().choose(as_floats([1, 1, 1]), as_floats([1, 1, 1]), rng)  # type: ignore[arg-type]
    assert choice == arm


# --- uniform ----------------------------------------------------------------


@pytest.mark.parametrize("n_arms", [1, 2, 5], ids=lambda k: f"K={k}")
def test_uniform_probabilities_ignore_the_data(n_arms: int) -> None:
    opens = np.arange(n_arms, dtype=np.float64) * 10
    p = UniformRandom().selection_probabilities(opens, 100 - opens, t=1_000)
    np.testing.assert_array_equal(p, np.full(n_arms, 1.0 / n_arms))


# --- observed best, ε-greedy ------------------------------------------------


@pytest.mark.parametrize(
    ("opens", "non_opens", "arm"),
    [
        ([3, 5, 4], [7, 5, 6], 1),
        ([3, 0, 4], [7, 0, 6], 1),
        ([0, 0, 0], [0, 0, 0], 0),
        ([5, 5, 1], [5, 5, 1], 0),
        ([0, 1, 0], [4, 3, 0], 2),
        ([0, 0], [3, 9], 0),
    ],
    ids=["highest-rate", "untried-first", "all-untried", "tie-to-lowest", "later-untried", "zeros"],
)
def test_observed_best_arm(opens: list[int], non_opens: list[int], arm: int) -> None:
    assert observed_best_arm(as_floats(opens), as_floats(non_opens)) == arm


@pytest.mark.parametrize(
    ("epsilon", "expected"),
    [(0.0, [0.0, 1.0, 0.0, 0.0]), (1.0, [0.25] * 4), (0.2, [0.05, 0.85, 0.05, 0.05])],
    ids=["greedy", "all-explore", "epsilon-0.2"],
)
def test_epsilon_greedy_probabilities(epsilon: float, expected: list[float]) -> None:
    opens, non_opens = as_floats([3, 5, 4, 1]), as_floats([7, 5, 6, 9])
    p = EpsilonGreedy(epsilon).selection_probabilities(opens, non_opens)
    np.testing.assert_allclose(p, expected, atol=1e-15)


def test_epsilon_greedy_exploits_without_a_uniform_draw() -> None:
    # rng.random() >= epsilon: the observed best arm, no rng.integers needed.
    rng = ScriptedRng(uniforms=[0.5])
    arm = EpsilonGreedy(0.1).choose(as_floats([1, 8]), as_floats([9, 2]), rng)  # type: ignore[arg-type]
    assert arm == 1


# --- UCB1 -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("opens", "non_opens", "arm"),
    [
        # n = (4, 10), ln 14 = 2.6391: 0.5 + sqrt(2·2.6391/4) = 1.6487 > 0.3 + 0.7265.
        ([2, 3], [2, 7], 0),
        # n = (100, 1000), ln 1100 = 7.0031: 0.1 + 0.3742 = 0.4742 > 0.3 + 0.1183.
        ([10, 300], [90, 700], 0),
        # Same n: 0.1 + 0.3742 = 0.4742 < 0.5 + 0.1183.
        ([10, 500], [90, 500], 1),
        # An arm never sent is sent first, the lowest such index.
        ([50, 0, 0], [50, 0, 0], 1),
        # One arm, sent once: ln 1 = 0, still that arm.
        ([1], [0], 0),
    ],
    ids=["bonus-wins-small-n", "bonus-wins-large-n", "mean-wins", "untried-first", "one-arm"],
)
def test_ucb1_matches_hand_computed_bounds(
    opens: list[int], non_opens: list[int], arm: int
) -> None:
    o, f = as_floats(opens), as_floats(non_opens)
    assert UCB1().choose(o, f, np.random.default_rng(0)) == arm
    np.testing.assert_array_equal(UCB1().selection_probabilities(o, f), np.eye(len(opens))[arm])


# --- A/B test, then commit --------------------------------------------------


def test_ab_test_is_uniform_during_the_test() -> None:
    policy = ABTestThenCommit(n_test_sends=100)
    opens, non_opens = as_floats([1, 30, 2]), as_floats([99, 70, 98])
    np.testing.assert_array_equal(
        policy.selection_probabilities(opens, non_opens, t=99), np.full(3, 1 / 3)
    )
    np.testing.assert_array_equal(
        policy.selection_probabilities(opens, non_opens, t=100), [0.0, 1.0, 0.0]
    )


def test_ab_test_commits_once_and_keeps_the_winner(rng: np.random.Generator) -> None:
    policy = ABTestThenCommit(n_test_sends=10)
    memory = np.full(1, -1, dtype=np.int64)
    assert policy.choose(as_floats([1, 4]), as_floats([4, 1]), rng, t=10, memory=memory) == 1
    assert memory[0] == 1
    # Later data favour arm 0, but the winner was fixed when the test ended.
    later_opens, later_non_opens = as_floats([90, 4]), as_floats([10, 96])
    assert policy.choose(later_opens, later_non_opens, rng, t=200, memory=memory) == 1
    np.testing.assert_array_equal(
        policy.selection_probabilities(later_opens, later_non_opens, t=200, memory=memory),
        [0.0, 1.0],
    )
    # Without the committed memory the observed best is recomputed.
    np.testing.assert_array_equal(
        policy.selection_probabilities(later_opens, later_non_opens, t=200), [1.0, 0.0]
    )


def test_ab_test_with_no_test_sends_commits_at_once() -> None:
    policy = ABTestThenCommit(n_test_sends=0)
    p = policy.selection_probabilities(as_floats([0, 0]), as_floats([0, 0]), t=0)
    np.testing.assert_array_equal(p, [1.0, 0.0])


# Textbook sample size per arm of a two-sided two-proportion z-test without
# continuity correction (Fleiss, Levin & Paik, "Statistical Methods for Rates
# and Proportions", 3rd ed., ch. 4):
#   n = [z_{1-α/2} sqrt(2 p̄ q̄) + z_{1-β} sqrt(p1 q1 + p2 q2)]² / (p2 - p1)²,
#   p̄ = (p1 + p2) / 2, z_{0.975} = 1.959964, z_{0.8} = 0.841621.
# p1 = 0.10, p2 = 0.15: p̄ = 0.125, sqrt(0.21875) = 0.467707 → 0.916689;
#   sqrt(0.09 + 0.1275) = 0.466369 → 0.392506; (1.309195)² / 0.0025 = 685.60 → 686.
# p1 = 0.20, p2 = 0.22: p̄ = 0.21, sqrt(0.3318) = 0.576021 → 1.128980;
#   sqrt(0.16 + 0.1716) = 0.575847 → 0.484645; (1.613625)² / 0.0004 = 6509.47 → 6510.
@pytest.mark.parametrize(
    ("baseline", "lift", "expected"),
    [(0.10, 0.5, 686), (0.20, 0.1, 6510)],
    ids=["10pct-to-15pct", "20pct-to-22pct"],
)
def test_ab_test_sample_size_matches_the_textbook(
    baseline: float, lift: float, expected: int
) -> None:
    assert ab_test_sample_size(baseline, lift) == expected


@pytest.mark.parametrize(
    "changes",
    [{"power": 0.9}, {"alpha": 0.01}, {"min_detectable_lift": 0.05}],
    ids=["more-power", "stricter-alpha", "smaller-lift"],
)
def test_ab_test_sample_size_grows_with_stricter_plans(changes: dict[str, float]) -> None:
    plan = {"baseline_rate": 0.2, "min_detectable_lift": 0.1, "alpha": 0.05, "power": 0.8}
    base = ab_test_sample_size(**plan)  # type: ignore[arg-type]
    assert ab_test_sample_size(**{**plan, **changes}) > base  # type: ignore[arg-type]


def test_planned_ab_test_sizes_the_test_per_arm() -> None:
    policy = ABTestThenCommit.planned(5, 0.2, 0.1, alpha=0.05, power=0.8)
    assert policy.n_test_sends == 5 * ab_test_sample_size(0.2, 0.1)


# --- top-two Thompson Sampling ----------------------------------------------

# (opens, non_opens, leader_probability, draws). The capped cases draw up to
# 100 challengers per send, so they use fewer sends: 5 standard errors at
# 4,000 draws are 0.04, well below the 0.12 the old formula was off by.
TOP_TWO_CASES = {
    "three-arms-lead-0": ([3, 2, 2], [5, 5, 6], 0.0, N_DRAWS),
    "three-arms-lead-0.5": ([3, 2, 2], [5, 5, 6], 0.5, N_DRAWS),
    "five-arms-lead-0.9": ([36, 42, 32, 48, 40], [164, 158, 168, 152, 160], 0.9, N_DRAWS),
    # P(best) ≈ (0.986, 0.014): the capped challenger loop fails with
    # probability 0.986^100 ≈ 0.24 and then sends the leader.
    "capped-loop-matters": ([45, 30], [55, 70], 0.5, 4_000),
    # P(best) ≈ (1 - 1e-7, 1e-7): the loop practically always falls back to
    # the leader; the old formula said (0.5, 0.5).
    "leader-nearly-certain": ([60, 20], [40, 80], 0.5, 300),
    # P(best) = (1, 0) exactly.
    "leader-certain": ([5_000, 10], [5_000, 990], 0.5, 300),
}


@pytest.mark.parametrize("case", TOP_TWO_CASES.values(), ids=TOP_TWO_CASES.keys())
def test_top_two_formula_matches_choose_frequencies(
    case: tuple[list[int], list[int], float, int],
    rng: np.random.Generator,
    assert_matches_frequencies,
) -> None:
    # Regression: the formula ignored the cap of MAX_CHALLENGER_DRAWS, so with
    # P(best) near (but not at) 1 it promised the runner-up up to half the
    # sends that choose() never made.
    opens, non_opens = as_floats(case[0]), as_floats(case[1])
    policy = TopTwoThompson(leader_probability=case[2])
    p = policy.selection_probabilities(opens, non_opens)
    assert abs(p.sum() - 1.0) < 1e-12
    choices = empirical_choices(policy, opens, non_opens, 0, rng, n_draws=case[3])
    assert_matches_frequencies(p, choices)


def test_top_two_formula_by_hand_for_two_arms() -> None:
    # Two arms, leader share λ: arm 1 is sent when it leads and is kept
    # (λ p1), or when 0 leads, is not kept, and a challenger draw hits 1 within
    # M tries: (1 - λ) p0 (1 - p0^M); or when 1 leads, is not kept, and every
    # challenger draw is 1 again: (1 - λ) p1 · p1^M.
    opens, non_opens = as_floats([45, 30]), as_floats([55, 70])
    p0, p1 = probability_of_best(BetaPosterior.from_counts(opens, non_opens))
    lead, m = 0.5, MAX_CHALLENGER_DRAWS
    expected = lead * p1 + (1 - lead) * (p0 * (1 - p0**m) + p1 * p1**m)
    p = TopTwoThompson(lead).selection_probabilities(opens, non_opens)
    assert p[1] == pytest.approx(expected, abs=1e-12)


def test_top_two_with_leader_share_one_is_thompson() -> None:
    opens, non_opens = as_floats([36, 42, 32]), as_floats([164, 158, 168])
    np.testing.assert_allclose(
        TopTwoThompson(1.0).selection_probabilities(opens, non_opens),
        ThompsonSampling().selection_probabilities(opens, non_opens),
        atol=1e-15,
    )


def test_top_two_sends_the_challenger_when_the_leader_is_not_kept() -> None:
    # Leader draw: arm 0 wins (0.9 > 0.1); uniform 0.7 >= 0.5 skips it; the
    # first challenger round also has arm 0 win, the second has arm 1 win.
    rng = ScriptedRng(betas=[0.9, 0.1, 0.8, 0.2, 0.3, 0.6], uniforms=[0.7])
    arm = TopTwoThompson(0.5).choose(as_floats([1, 1]), as_floats([1, 1]), rng)  # type: ignore[arg-type]
    assert arm == 1


def test_top_two_falls_back_to_the_leader_after_the_cap() -> None:
    draws = [0.9, 0.1] * (MAX_CHALLENGER_DRAWS + 1)
    rng = ScriptedRng(betas=draws, uniforms=[0.99])
    arm = TopTwoThompson(0.5).choose(as_floats([1, 1]), as_floats([1, 1]), rng)  # type: ignore[arg-type]
    assert arm == 0


# --- registry ---------------------------------------------------------------


def test_registry_names_match_the_classes() -> None:
    assert sorted(POLICY_CLASSES) == [
        "ab_test",
        "epsilon_greedy",
        "thompson",
        "top_two",
        "ucb1",
        "uniform",
    ]
    for name, cls in POLICY_CLASSES.items():
        assert cls.name == name


@pytest.mark.parametrize(
    ("name", "settings", "expected"),
    [
        ("thompson", {}, ThompsonSampling()),
        ("uniform", {}, UniformRandom()),
        ("ab_test", {"n_test_sends": 500}, ABTestThenCommit(n_test_sends=500)),
        ("epsilon_greedy", {}, EpsilonGreedy(epsilon=0.1)),
        ("epsilon_greedy", {"epsilon": 0.25}, EpsilonGreedy(epsilon=0.25)),
        ("ucb1", {}, UCB1()),
        ("top_two", {"leader_probability": 0.7}, TopTwoThompson(leader_probability=0.7)),
    ],
    ids=[
        "thompson",
        "uniform",
        "ab_test",
        "epsilon_greedy-default",
        "epsilon_greedy-set",
        "ucb1",
        "top_two",
    ],
)
def test_make_policy_builds_the_named_policy(
    name: str, settings: dict[str, float], expected: Policy
) -> None:
    policy = make_policy(name, **settings)
    assert policy == expected
    assert type(policy) is type(expected)


def test_make_policy_passes_setting_errors_through() -> None:
    with pytest.raises(InvalidParameterError, match="'epsilon' parameter of EpsilonGreedy"):
        make_policy("epsilon_greedy", epsilon=1.5)


def test_policies_are_frozen() -> None:
    policy = EpsilonGreedy(0.1)
    with pytest.raises(AttributeError):
        policy.epsilon = 0.5  # type: ignore[misc]
