"""Arm-selection rules, written once for the compiled simulator and the service.

Each ``*_rule`` function below is plain numeric Python that numba can compile
unchanged: it reads the per-arm counts and a ``numpy.random.Generator`` and
returns the index of the arm to send. :mod:`headliner.sim.engine` compiles the
very functions listed in :data:`RULE_FUNCTIONS` for its kernels; the service
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
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from headliner.core.posterior import BetaPosterior, probability_of_best
from headliner.core.validation import check_float, check_int, fail

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


def ucb1_rule(
    params: FloatArray,
    opens: FloatArray,
    non_opens: FloatArray,
    t: int,
    memory: IntArray,
    rng: np.random.Generator,
) -> int:
    """UCB1 (Auer et al. 2002): every arm once, then the highest mean + sqrt(2 ln n / n_k)."""
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


# The numba-compatible functions in dependency order: sim.engine compiles each
# one with the names it calls bound to their compiled twins, and beta_draw to
# its own bit-identical kernel.
RULE_FUNCTIONS = (
    thompson_winner,
    observed_best_arm,
    thompson_rule,
    uniform_rule,
    ab_test_rule,
    epsilon_greedy_rule,
    ucb1_rule,
    top_two_rule,
    choose_arm,
)


@dataclass(frozen=True)
class Policy:
    """A selection rule with its settings; subclasses are the concrete policies."""

    name: ClassVar[str]
    code: ClassVar[int]

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
        for wave allocations (probability matching).
        """
        raise NotImplementedError  # pragma: no cover - every subclass overrides


def _one_hot(n_arms: int, arm: int) -> FloatArray:
    probabilities = np.zeros(n_arms)
    probabilities[arm] = 1.0
    return probabilities


@dataclass(frozen=True)
class ThompsonSampling(Policy):
    """Thompson Sampling: send the arm whose posterior draw is highest."""

    name: ClassVar[str] = "thompson"
    code: ClassVar[int] = THOMPSON

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
        posterior = BetaPosterior.from_counts(opens, non_opens, alpha_prior, beta_prior)
        return probability_of_best(posterior)


@dataclass(frozen=True)
class UniformRandom(Policy):
    """Uniform random split over the arms (the seed's A/B-style baseline)."""

    name: ClassVar[str] = "uniform"
    code: ClassVar[int] = UNIFORM

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
        n_arms = len(opens)
        return np.full(n_arms, 1.0 / n_arms)


def ab_test_sample_size(
    baseline_rate: float,
    min_detectable_lift: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
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
    p1 = check_float(baseline_rate, "baseline_rate", owner, low=0.0, high=1.0, closed="neither")
    lift = check_float(min_detectable_lift, "min_detectable_lift", owner, low=0.0, closed="neither")
    a = check_float(alpha, "alpha", owner, low=0.0, high=1.0, closed="neither")
    pw = check_float(power, "power", owner, low=0.0, high=1.0, closed="neither")
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

    def __post_init__(self) -> None:
        check_int(self.n_test_sends, "n_test_sends", "ABTestThenCommit", low=0)

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
        n_arms = len(opens)
        if t < self.n_test_sends:
            return np.full(n_arms, 1.0 / n_arms)
        if memory is not None and memory[0] >= 0:
            return _one_hot(n_arms, int(memory[0]))
        o = np.asarray(opens, dtype=np.float64)
        f = np.asarray(non_opens, dtype=np.float64)
        return _one_hot(n_arms, observed_best_arm(o, f))


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

    def __post_init__(self) -> None:
        check_float(self.epsilon, "epsilon", "EpsilonGreedy", low=0.0, high=1.0)

    def extra_params(self) -> tuple[float, ...]:
        return (self.epsilon,)

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
        o = np.asarray(opens, dtype=np.float64)
        f = np.asarray(non_opens, dtype=np.float64)
        n_arms = len(o)
        greedy = _one_hot(n_arms, observed_best_arm(o, f))
        return self.epsilon / n_arms + (1.0 - self.epsilon) * greedy


@dataclass(frozen=True)
class UCB1(Policy):
    """UCB1: optimism in the face of uncertainty; deterministic given the counts."""

    name: ClassVar[str] = "ucb1"
    code: ClassVar[int] = UCB1_CODE

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
        o = np.asarray(opens, dtype=np.float64)
        f = np.asarray(non_opens, dtype=np.float64)
        arm = ucb1_rule(self.params(), o, f, t, np.full(1, -1, dtype=np.int64), _NO_RNG)
        return _one_hot(len(o), arm)


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

    def __post_init__(self) -> None:
        check_float(
            self.leader_probability, "leader_probability", "TopTwoThompson", low=0.0, high=1.0
        )

    def extra_params(self) -> tuple[float, ...]:
        return (self.leader_probability,)

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
        posterior = BetaPosterior.from_counts(opens, non_opens, alpha_prior, beta_prior)
        p_best = probability_of_best(posterior)
        # Given leader i, the capped challenger loop sends arm k != i when its
        # draw m + 1 is the first to differ from i (probability p_i^m p_k,
        # m < MAX_CHALLENGER_DRAWS) and falls back to i with probability
        # p_i^MAX_CHALLENGER_DRAWS.
        lead = self.leader_probability
        tries = np.sum(p_best[:, np.newaxis] ** np.arange(MAX_CHALLENGER_DRAWS), axis=1)
        reach = p_best * tries
        challenger = p_best * (np.sum(reach) - reach + p_best**MAX_CHALLENGER_DRAWS)
        probabilities = lead * p_best + (1.0 - lead) * challenger
        return np.asarray(probabilities / probabilities.sum(), dtype=np.float64)


class _NoRandomness:
    """Stands in for a Generator where a deterministic rule needs none."""


_NO_RNG: np.random.Generator = _NoRandomness()  # type: ignore[assignment]

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
