"""Arm-selection rules, written once for the compiled simulator and the service.

Each ``*_rule`` function below is plain numeric Python that numba can compile
unchanged: it reads the per-arm counts and a ``numpy.random.Generator`` and
returns the index of the arm to send. :mod:`headliner.sim.engine` compiles the
very functions listed in :data:`KERNEL_FUNCTIONS` for its kernels; the service
and the seed-compatible classes call them through :meth:`Policy.choose`. A
contract test checks that a Python decision sequence equals the compiled one
for the same seed.

All rules share one signature ``rule(params, opens, non_opens, t, memory, rng)``:

params : float64 array
    ``[alpha_prior, beta_prior, *policy_specific]`` (see each policy class).
opens, non_opens : float64 arrays of shape (n_arms,)
    Settled outcomes per arm (pending sends are in neither).
t : int
    Number of sends made before this one (settled or not).
memory : int64 array of shape (1,)
    Scratch state that a rule keeps between sends (the committed arm of an
    A/B test); starts at -1.
rng : numpy.random.Generator
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from headliner.core.posterior import within_probabilities
from headliner.core.validation import (
    Constraint,
    Interval,
    Options,
    check_int,
    fail,
    validate_params,
)

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

THOMPSON = 0
UNIFORM = 1
AB_TEST = 2
EPSILON_GREEDY = 3
UCB1_CODE = 4
TOP_TWO = 5

# Top-two resamples the challenger at most this often; when one arm holds
# nearly all posterior mass the leader is sent instead of looping on.
MAX_CHALLENGER_DRAWS = 100


def beta_draw(a: float, b: float, rng: np.random.Generator) -> float:
    """One ``rng.beta(a, b)`` draw.

    Every posterior draw of the rules goes through this name so that the
    compiled simulator can bind it to a faster implementation of numpy's own
    algorithm that returns the same value from the same stream
    (:func:`headliner.sim.engine.compiled_beta_draw`).
    """
    return rng.beta(a, b)


def thompson_winner(
    params: FloatArray, opens: FloatArray, non_opens: FloatArray, rng: np.random.Generator
) -> int:
    """Index of the highest of one Beta posterior draw per arm.

    Drawing arm by arm in index order consumes the stream exactly like one
    vectorized ``rng.beta(alpha, beta)`` call; ties go to the lowest index, as
    argmax does.
    """
    best = 0
    best_draw = -1.0
    for k in range(opens.shape[0]):
        draw = beta_draw(params[0] + opens[k], params[1] + non_opens[k], rng)
        if draw > best_draw:
            best_draw = draw
            best = k
    return best


def observed_best_arm(opens: FloatArray, non_opens: FloatArray) -> int:
    """Arm with the highest observed open rate; untried arms rank first, ties to the lowest."""
    best = 0
    best_rate = -1.0
    for k in range(opens.shape[0]):
        n = opens[k] + non_opens[k]
        rate = math.inf if n == 0 else opens[k] / n
        if rate > best_rate:
            best_rate = rate
            best = k
    return best


def thompson_rule(
    params: FloatArray,
    opens: FloatArray,
    non_opens: FloatArray,
    t: int,
    memory: IntArray,
    rng: np.random.Generator,
) -> int:
    """Thompson Sampling: send the arm whose posterior draw is highest."""
    return thompson_winner(params, opens, non_opens, rng)


def uniform_rule(
    params: FloatArray,
    opens: FloatArray,
    non_opens: FloatArray,
    t: int,
    memory: IntArray,
    rng: np.random.Generator,
) -> int:
    """Uniform random split: ``rng.integers(0, n_arms)``, the seed's baseline."""
    return int(rng.integers(0, opens.shape[0]))


def ab_test_rule(
    params: FloatArray,
    opens: FloatArray,
    non_opens: FloatArray,
    t: int,
    memory: IntArray,
    rng: np.random.Generator,
) -> int:
    """A/B test, then commit: uniform split for ``params[2]`` sends, then the observed best.

    The winner is fixed once, when the test ends, and kept in ``memory[0]``.
    """
    if t < params[2]:
        return int(rng.integers(0, opens.shape[0]))
    if memory[0] < 0:
        memory[0] = observed_best_arm(opens, non_opens)
    return int(memory[0])


def epsilon_greedy_rule(
    params: FloatArray,
    opens: FloatArray,
    non_opens: FloatArray,
    t: int,
    memory: IntArray,
    rng: np.random.Generator,
) -> int:
    """ε-greedy: a uniform arm with probability ``params[2]``, else the observed best."""
    if rng.random() < params[2]:
        return int(rng.integers(0, opens.shape[0]))
    return observed_best_arm(opens, non_opens)


def ucb1_arm(opens: FloatArray, non_opens: FloatArray) -> int:
    """UCB1's arm: every arm once, then the highest mean + sqrt(2 ln n / n_k)."""
    total = 0.0
    for k in range(opens.shape[0]):
        n = opens[k] + non_opens[k]
        if n == 0:
            return k
        total += n
    best = 0
    best_bound = -1.0
    for k in range(opens.shape[0]):
        n = opens[k] + non_opens[k]
        bound = opens[k] / n + math.sqrt(2.0 * math.log(total) / n)
        if bound > best_bound:
            best_bound = bound
            best = k
    return best


def ucb1_rule(
    params: FloatArray,
    opens: FloatArray,
    non_opens: FloatArray,
    t: int,
    memory: IntArray,
    rng: np.random.Generator,
) -> int:
    """UCB1 (Auer et al. 2002), deterministic given the counts: :func:`ucb1_arm`."""
    return ucb1_arm(opens, non_opens)


def top_two_rule(
    params: FloatArray,
    opens: FloatArray,
    non_opens: FloatArray,
    t: int,
    memory: IntArray,
    rng: np.random.Generator,
) -> int:
    """Top-two Thompson Sampling (Russo 2016).

    The Thompson winner leads. With probability ``params[2]`` it is sent;
    otherwise fresh draws are taken until another arm wins (at most
    :data:`MAX_CHALLENGER_DRAWS` times) and that challenger is sent.
    """
    leader = thompson_winner(params, opens, non_opens, rng)
    if rng.random() < params[2]:
        return leader
    for _ in range(MAX_CHALLENGER_DRAWS):
        challenger = thompson_winner(params, opens, non_opens, rng)
        if challenger != leader:
            return challenger
    return leader


def choose_arm(
    policy: int,
    params: FloatArray,
    opens: FloatArray,
    non_opens: FloatArray,
    t: int,
    memory: IntArray,
    rng: np.random.Generator,
) -> int:
    """Send the arm that the rule with code ``policy`` picks."""
    if policy == THOMPSON:
        return thompson_rule(params, opens, non_opens, t, memory, rng)
    if policy == UNIFORM:
        return uniform_rule(params, opens, non_opens, t, memory, rng)
    if policy == AB_TEST:
        return ab_test_rule(params, opens, non_opens, t, memory, rng)
    if policy == EPSILON_GREEDY:
        return epsilon_greedy_rule(params, opens, non_opens, t, memory, rng)
    if policy == UCB1_CODE:
        return ucb1_rule(params, opens, non_opens, t, memory, rng)
    return top_two_rule(params, opens, non_opens, t, memory, rng)


def _one_hot_into(arm: int, out: FloatArray) -> None:
    for k in range(out.shape[0]):
        out[k] = 0.0
    out[arm] = 1.0


def top_two_probabilities(p_best: FloatArray, leader_probability: float, out: FloatArray) -> None:
    """Selection probabilities of :func:`top_two_rule` from the arms' P(best).

    Given leader i, the capped challenger loop sends arm k != i when its draw
    m + 1 is the first to differ from i (probability p_i^m p_k,
    m < MAX_CHALLENGER_DRAWS) and falls back to i with probability
    p_i^MAX_CHALLENGER_DRAWS.
    """
    n = p_best.shape[0]
    reach_total = 0.0
    for k in range(n):
        reach_total += p_best[k] * _geometric_sum(p_best[k], MAX_CHALLENGER_DRAWS)
    total = 0.0
    for k in range(n):
        reach = p_best[k] * _geometric_sum(p_best[k], MAX_CHALLENGER_DRAWS)
        challenger = p_best[k] * (reach_total - reach + p_best[k] ** MAX_CHALLENGER_DRAWS)
        out[k] = leader_probability * p_best[k] + (1.0 - leader_probability) * challenger
        total += out[k]
    for k in range(n):
        out[k] /= total


def _geometric_sum(p: float, n_terms: int) -> float:
    """1 + p + ... + p^(n_terms - 1), summed term by term (exact for p = 1)."""
    total = 0.0
    term = 1.0
    for _ in range(n_terms):
        total += term
        term *= p
    return total


def selection_probabilities_rule(
    policy: int,
    params: FloatArray,
    opens: FloatArray,
    non_opens: FloatArray,
    t: int,
    memory: IntArray,
    out: FloatArray,
) -> None:
    """Write the probability that :func:`choose_arm` picks each arm next into ``out``.

    This is the propensity logged with each decision and the split of a wave
    (probability matching). For Thompson Sampling it is the posterior
    probability of being best, :func:`~headliner.core.posterior.within_probabilities`
    at tolerance 0.
    """
    n = opens.shape[0]
    if policy == THOMPSON or policy == TOP_TWO:
        alpha = np.empty(n)
        beta = np.empty(n)
        for k in range(n):
            alpha[k] = params[0] + opens[k]
            beta[k] = params[1] + non_opens[k]
        p_best = np.empty(n)
        within_probabilities(alpha, beta, 0.0, p_best)
        total = 0.0
        for k in range(n):
            total += p_best[k]
        for k in range(n):
            p_best[k] /= total
        if policy == THOMPSON:
            for k in range(n):
                out[k] = p_best[k]
        else:
            top_two_probabilities(p_best, params[2], out)
    elif policy == AB_TEST and t >= params[2]:
        arm = memory[0] if memory[0] >= 0 else observed_best_arm(opens, non_opens)
        _one_hot_into(arm, out)
    elif policy == EPSILON_GREEDY:
        _one_hot_into(observed_best_arm(opens, non_opens), out)
        for k in range(n):
            out[k] = params[2] / n + (1.0 - params[2]) * out[k]
    elif policy == UCB1_CODE:
        _one_hot_into(ucb1_arm(opens, non_opens), out)
    else:  # uniform, or an A/B test still in its test phase
        for k in range(n):
            out[k] = 1.0 / n


# The numba-compatible functions in dependency order: sim.engine compiles each
# one with the names it calls bound to their compiled twins, and beta_draw to
# its own bit-identical kernel.
KERNEL_FUNCTIONS = (
    thompson_winner,
    observed_best_arm,
    thompson_rule,
    uniform_rule,
    ab_test_rule,
    epsilon_greedy_rule,
    ucb1_arm,
    ucb1_rule,
    top_two_rule,
    choose_arm,
    _one_hot_into,
    _geometric_sum,
    top_two_probabilities,
    selection_probabilities_rule,
)


@dataclass(frozen=True)
class Policy:
    """A selection rule with its settings; subclasses are the concrete policies.

    A subclass declares its settings' allowed values in
    ``parameter_constraints``; they are checked when it is built.
    """

    name: ClassVar[str]
    code: ClassVar[int]
    parameter_constraints: ClassVar[dict[str, Constraint]] = {}

    def __post_init__(self) -> None:
        validate_params(self.parameter_constraints, vars(self), type(self).__name__)

    def extra_params(self) -> tuple[float, ...]:
        """Policy-specific entries that follow the prior in the params vector."""
        return ()

    def params(self, alpha_prior: float = 1.0, beta_prior: float = 1.0) -> FloatArray:
        """The float vector ``[alpha_prior, beta_prior, *extra]`` that rules read."""
        return np.array([alpha_prior, beta_prior, *self.extra_params()], dtype=np.float64)

    def choose(
        self,
        opens: FloatArray,
        non_opens: FloatArray,
        rng: np.random.Generator,
        *,
        alpha_prior: float = 1.0,
        beta_prior: float = 1.0,
        t: int = 0,
        memory: IntArray | None = None,
    ) -> int:
        """One decision in Python: the arm index this policy sends next."""
        state = np.full(1, -1, dtype=np.int64) if memory is None else memory
        return choose_arm(
            self.code,
            self.params(alpha_prior, beta_prior),
            np.asarray(opens, dtype=np.float64),
            np.asarray(non_opens, dtype=np.float64),
            t,
            state,
            rng,
        )

    def selection_probabilities(
        self,
        opens: FloatArray,
        non_opens: FloatArray,
        *,
        alpha_prior: float = 1.0,
        beta_prior: float = 1.0,
        t: int = 0,
        memory: IntArray | None = None,
    ) -> FloatArray:
        """Probability that the next decision picks each arm, shape (n_arms,).

        This is the propensity logged with each decision and the split used
        for wave allocations (probability matching); see
        :func:`selection_probabilities_rule`, which the simulator runs compiled.
        """
        out = np.empty(len(opens), dtype=np.float64)
        selection_probabilities_rule(
            self.code,
            self.params(alpha_prior, beta_prior),
            np.asarray(opens, dtype=np.float64),
            np.asarray(non_opens, dtype=np.float64),
            t,
            np.full(1, -1, dtype=np.int64) if memory is None else memory,
            out,
        )
        return out


@dataclass(frozen=True)
class ThompsonSampling(Policy):
    """Thompson Sampling: send the arm whose posterior draw is highest."""

    name: ClassVar[str] = "thompson"
    code: ClassVar[int] = THOMPSON


@dataclass(frozen=True)
class UniformRandom(Policy):
    """Uniform random split over the arms (the seed's A/B-style baseline)."""

    name: ClassVar[str] = "uniform"
    code: ClassVar[int] = UNIFORM


#: What sizes an A/B test the way Evan Miller's calculator does.
AB_TEST_SIZE_CONSTRAINTS: dict[str, Interval] = {
    "baseline_rate": Interval(float, 0.0, 1.0, closed="neither"),
    "min_detectable_lift": Interval(float, 0.0, None, closed="neither"),
    "alpha": Interval(float, 0.0, 1.0, closed="neither"),
    "power": Interval(float, 0.0, 1.0, closed="neither"),
}


#: The A/B test a bandit is compared with: a two-sided z-test at this level and power.
AB_TEST_ALPHA = 0.05
AB_TEST_POWER = 0.8


def ab_test_sample_size(
    baseline_rate: float,
    min_detectable_lift: float,
    *,
    alpha: float = AB_TEST_ALPHA,
    power: float = AB_TEST_POWER,
) -> int:
    """Sends per arm that a two-sided two-proportion z-test needs.

    Parameters
    ----------
    baseline_rate : float
        Expected open rate of the control headline, in (0, 1).
    min_detectable_lift : float
        Smallest relative lift worth detecting, e.g. 0.1 for +10%.
    alpha : float, default=0.05
        Significance level.
    power : float, default=0.8
        Probability of detecting a true lift of that size.

    Examples
    --------
    >>> ab_test_sample_size(0.2, 0.1)
    6510
    """
    owner = "ab_test_sample_size"
    rules = AB_TEST_SIZE_CONSTRAINTS
    p1 = rules["baseline_rate"].check(baseline_rate, "baseline_rate", owner)
    lift = rules["min_detectable_lift"].check(min_detectable_lift, "min_detectable_lift", owner)
    a = rules["alpha"].check(alpha, "alpha", owner)
    pw = rules["power"].check(power, "power", owner)
    p2 = p1 * (1.0 + lift)
    if p2 >= 1.0:
        raise fail("min_detectable_lift", owner, f"< {1.0 / p1 - 1.0:.4g} for this baseline", lift)
    from scipy import special  # here, not at the top: simulation never needs scipy

    z_alpha = float(-special.ndtri(a / 2.0))
    z_power = float(special.ndtri(pw))
    pooled = (p1 + p2) / 2.0
    root = z_alpha * math.sqrt(2.0 * pooled * (1.0 - pooled)) + z_power * math.sqrt(
        p1 * (1.0 - p1) + p2 * (1.0 - p2)
    )
    return math.ceil(root**2 / (p2 - p1) ** 2)


def ab_test_sends_per_arm(
    true_rates: Sequence[float] | NDArray[np.float64],
    *,
    alpha: float = AB_TEST_ALPHA,
    power: float = AB_TEST_POWER,
) -> int | None:
    """Sends per headline a powered A/B test needs to tell the best from the runner-up.

    :func:`ab_test_sample_size` for the runner-up's rate and the best's
    relative lift over it, as Evan Miller's calculator is used; None when
    there is no runner-up or no difference a test could detect.

    Examples
    --------
    >>> ab_test_sends_per_arm((0.2, 0.22, 0.18))
    6510
    """
    rates = np.sort(np.asarray(true_rates, dtype=np.float64))[::-1]
    if rates.size < 2 or rates[1] <= 0.0 or rates[0] <= rates[1] or rates[0] >= 1.0:
        return None
    return ab_test_sample_size(
        float(rates[1]), float(rates[0] / rates[1] - 1.0), alpha=alpha, power=power
    )


@dataclass(frozen=True)
class ABTestThenCommit(Policy):
    """A/B test, then send the observed winner: the plan marketers really run.

    Parameters
    ----------
    n_test_sends : int
        Sends in the test phase, split uniformly at random over the arms;
        every later send goes to the arm with the best observed open rate.
    """

    n_test_sends: int
    name: ClassVar[str] = "ab_test"
    code: ClassVar[int] = AB_TEST
    parameter_constraints: ClassVar[dict[str, Constraint]] = {"n_test_sends": Interval(int, 0)}

    @classmethod
    def planned(
        cls,
        n_arms: int,
        baseline_rate: float,
        min_detectable_lift: float,
        *,
        alpha: float = 0.05,
        power: float = 0.8,
    ) -> ABTestThenCommit:
        """Size the test phase as a marketer would: per-arm z-test size × ``n_arms``."""
        k = check_int(n_arms, "n_arms", "ABTestThenCommit.planned", low=1)
        per_arm = ab_test_sample_size(baseline_rate, min_detectable_lift, alpha=alpha, power=power)
        return cls(n_test_sends=per_arm * k)

    def extra_params(self) -> tuple[float, ...]:
        return (float(self.n_test_sends),)


@dataclass(frozen=True)
class EpsilonGreedy(Policy):
    """ε-greedy: explore uniformly with probability ``epsilon``, else the observed best.

    Parameters
    ----------
    epsilon : float, default=0.1
        Exploration share in [0, 1].
    """

    epsilon: float = 0.1
    name: ClassVar[str] = "epsilon_greedy"
    code: ClassVar[int] = EPSILON_GREEDY
    parameter_constraints: ClassVar[dict[str, Constraint]] = {"epsilon": Interval(float, 0, 1)}

    def extra_params(self) -> tuple[float, ...]:
        return (self.epsilon,)


@dataclass(frozen=True)
class UCB1(Policy):
    """UCB1: optimism in the face of uncertainty; deterministic given the counts."""

    name: ClassVar[str] = "ucb1"
    code: ClassVar[int] = UCB1_CODE


@dataclass(frozen=True)
class TopTwoThompson(Policy):
    """Top-two Thompson Sampling: keeps sampling the runner-up to find the best arm faster.

    Parameters
    ----------
    leader_probability : float, default=0.5
        Share of sends that go to the Thompson leader; the rest go to a
        challenger drawn from the posterior.
    """

    leader_probability: float = 0.5
    name: ClassVar[str] = "top_two"
    code: ClassVar[int] = TOP_TWO
    parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "leader_probability": Interval(float, 0.0, 1.0)
    }

    def extra_params(self) -> tuple[float, ...]:
        return (self.leader_probability,)


POLICY_CLASSES: dict[str, type[Policy]] = {
    cls.name: cls
    for cls in (
        ThompsonSampling,
        UniformRandom,
        ABTestThenCommit,
        EpsilonGreedy,
        UCB1,
        TopTwoThompson,
    )
}


#: Policies that decide from a posterior refreshed between sends, so they run live
#: traffic and waves: the service offers these, and the campaign simulator runs them.
LIVE_POLICIES = Options(("thompson", "uniform", "top_two"))


def make_policy(name: str, **settings: float) -> Policy:
    """Build a policy from its registry name and settings.

    Names: ``thompson``, ``uniform``, ``ab_test`` (``n_test_sends``),
    ``epsilon_greedy`` (``epsilon``), ``ucb1``, ``top_two``
    (``leader_probability``).
    """
    if name not in POLICY_CLASSES:
        allowed = ", ".join(sorted(POLICY_CLASSES))
        raise fail("policy", "make_policy", f"one of {allowed}", name)
    cls = POLICY_CLASSES[name]
    try:
        return cls(**settings)
    except TypeError as exc:
        raise fail("settings", f"policy '{name}'", "the policy's own settings", settings) from exc
