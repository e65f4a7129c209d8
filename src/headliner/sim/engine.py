"""Compiled simulation kernels.

The core's numeric functions (policy rules, probability of best, the delay
model, the guarded decision path, the stopping rule) are compiled from the
core modules themselves (see :func:`_compile_kernels`), so the simulator and
the service run one rule; the service calls the compiled twins through
:data:`kernels` where speed matters.

Two kernels drive every simulation, both on a ``numpy.random.Generator`` that
the caller owns (numba's Generator shares the bit generator's state, so a
kernel continues the caller's stream exactly where Python left it):

- :func:`simulate_trace` records every send (arm and reward). Each round calls
  the policy rule and then draws ``rng.binomial(1, p)``; for the uniform rule
  that is the seed's ``integers`` then ``binomial``, for Thompson Sampling one
  Beta draw per arm in index order then ``binomial``, which is why the
  seed-compatible classes reproduce the reference's numbers for a seed.
- :func:`simulate_checkpoints` keeps only running totals (opens, pseudo-regret,
  sends to the best arm) and writes them at checkpoints: the Monte Carlo loop.

Feedback is immediate in both: an outcome updates the counts before the next
decision. Outcomes are ``rng.binomial(1, p)`` values, drawn through
precomputed thresholds (:func:`_py_bernoulli`) that replay numpy's routine.
"""

from __future__ import annotations

import hashlib
import math
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numba
import numpy as np
from numpy.typing import NDArray

from headliner.core import allocation, delay, policies, posterior, stopping

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


# error_model="numpy" drops the zero-division checks from the hot loops (about
# 10% of a Thompson send); every division in the rules is guarded, so results
# are unchanged. numba's cache key ignores these options: clear __pycache__
# after changing them.
_JIT_OPTIONS: dict[str, Any] = {"cache": True, "nogil": True, "error_model": "numpy"}


def _py_standard_gamma_above_one(d: float, c: float, rng: np.random.Generator) -> float:
    """numpy's standard Gamma draw for a shape above 1 (Marsaglia and Tsang, 2000).

    ``d = shape - 1/3`` and ``c = 1 / sqrt(9 d)``. The steps, their order and
    the draws they take are those of numpy's ``random_standard_gamma``, so the
    result is the same number from the same stream.
    """
    while True:
        while True:
            x = rng.standard_normal()
            v = 1.0 + c * x
            if v > 0.0:
                break
        v = v * v * v
        u = rng.random()
        if u < 1.0 - 0.0331 * (x * x) * (x * x):
            return d * v
        if math.log(u) < 0.5 * x * x + d * (1.0 - v + math.log(v)):
            return d * v


_standard_gamma_above_one: Callable[[float, float, np.random.Generator], float] = numba.njit(
    **_JIT_OPTIONS, inline="always"
)(_py_standard_gamma_above_one)


def _py_beta_draw(a: float, b: float, rng: np.random.Generator) -> float:
    """``rng.beta(a, b)``, bit for bit, at less than half of numba's cost for it.

    numpy draws a Beta with both parameters above 1 as ``Ga / (Ga + Gb)`` from
    two Gamma draws; numba's ``Generator.beta`` runs the same steps through
    calls it does not inline (about 49 ns a draw here against 22 ns inlined).
    Every other case (a parameter at or below 1, Jöhnk's algorithm or an
    exponential draw) goes to ``rng.beta`` itself.
    """
    if a > 1.0 and b > 1.0:
        da = a - 1.0 / 3.0
        ga = _standard_gamma_above_one(da, 1.0 / math.sqrt(9.0 * da), rng)
        db = b - 1.0 / 3.0
        gb = _standard_gamma_above_one(db, 1.0 / math.sqrt(9.0 * db), rng)
        return ga / (ga + gb)
    return rng.beta(a, b)


compiled_beta_draw: Callable[[float, float, np.random.Generator], float] = numba.njit(
    **_JIT_OPTIONS, inline="always"
)(_py_beta_draw)


Inline = Literal["never", "always"]

#: Core modules whose ``KERNEL_FUNCTIONS`` are compiled, in dependency order,
#: with numba's ``inline`` option for their functions. ``"always"`` lets a
#: kernel inline a rule into its per-send loop instead of calling it (a call per
#: decision cost about 20%); the posterior integrals run for tens of
#: microseconds, where a call costs nothing measurable, and inlining them would
#: recompile their whole body (about 5 s) into every caller.
KERNEL_MODULES: tuple[tuple[types.ModuleType, Inline], ...] = (
    (posterior, "never"),
    (policies, "always"),
    (delay, "always"),
    (allocation, "always"),
    (stopping, "never"),
)


def _fingerprint() -> int:
    """A number that changes whenever a compiled core module (or this one) changes.

    numba's on-disk cache checks only a function's own source file, but a
    cached function embeds the machine code of the core functions it inlines
    or calls. Every compiled function's qualified name carries this number,
    which names its cache file, so editing any core module recompiles
    everything that depends on it instead of silently running old code.
    """
    digest = hashlib.sha256()
    for module in (*(m for m, _ in KERNEL_MODULES), sys.modules[__name__]):
        try:
            digest.update(Path(str(module.__file__)).read_bytes())
        except OSError:  # no readable source (a zipped install): numba's own checks remain
            return 0
    return int.from_bytes(digest.digest()[:6], "big")


_FINGERPRINT = _fingerprint()


def _twin(function: Callable[..., Any], twins: dict[Callable[..., Any], Any]) -> types.FunctionType:
    """A copy of ``function`` whose globals bind every function compiled so far to its twin.

    The binding goes by identity, not by name, so modules may reuse names and
    import each other's functions.
    """
    namespace = {
        name: twins.get(value, value) if isinstance(value, types.FunctionType) else value
        for name, value in function.__globals__.items()
    }
    twin = types.FunctionType(
        function.__code__,
        namespace,
        function.__name__,
        function.__defaults__,
    )
    twin.__qualname__ = f"{function.__qualname__}_{_FINGERPRINT:x}"
    twin.__module__ = function.__module__
    twin.__doc__ = function.__doc__
    return twin


def _compile_kernels() -> dict[Callable[..., Any], Any]:
    """Compile every core module's ``KERNEL_FUNCTIONS`` with numba; each original's twin.

    numba resolves the names a function calls through its globals at compile
    time, so each function is compiled from a twin whose globals bind the
    functions compiled before it (the modules and their lists are in
    dependency order). ``policies.beta_draw`` is bound to
    :data:`compiled_beta_draw`, which returns the same numbers faster.
    """
    twins: dict[Callable[..., Any], Any] = {policies.beta_draw: compiled_beta_draw}
    for module, inline in KERNEL_MODULES:
        for function in module.KERNEL_FUNCTIONS:
            twins[function] = numba.njit(**_JIT_OPTIONS, inline=inline)(_twin(function, twins))
    return twins


_TWINS = _compile_kernels()
#: The compiled core functions by name, e.g. ``kernels.within_probabilities``:
#: what the service calls where speed matters, the very code the simulator runs.
kernels = types.SimpleNamespace(**{f.__name__: twin for f, twin in _TWINS.items()})
choose_arm: Callable[..., int] = _TWINS[policies.choose_arm]
guarded_choice: Callable[..., int] = _TWINS[allocation.guarded_choice]


def compile_with_kernels(function: Callable[..., Any]) -> Callable[..., Any]:
    """Compile a simulation kernel with the compiled core functions bound to the names it calls.

    The kernel's own module imports the Python core functions, so it also
    runs (slowly) uncompiled; this rebinds those names to their compiled twins.
    """
    jitted: Callable[..., Any] = numba.njit(**_JIT_OPTIONS)(_twin(function, _TWINS))
    return jitted


def _py_bernoulli_table(true_p: FloatArray) -> FloatArray:
    """Per-arm constants of ``rng.binomial(1, p)``, shape (n_arms, 4).

    numpy (and numba after it) draws a binomial with n * p <= 30 by inversion,
    working on ``min(p, 1 - p)``; for n = 1 the loop has two thresholds. Each
    row holds ``[draws, flip, qn, px1]``: whether the draw uses the stream at
    all (p = 0 returns 0 without a draw), whether the result is flipped
    (p > 0.5), and the two thresholds computed with the very expressions of
    the library routine, so :func:`_py_bernoulli` returns the same value from
    the same uniforms at a fraction of the cost (the routine recomputes
    ``exp(n * log(q))`` and a square root on every call).
    """
    table = np.zeros((true_p.shape[0], 4))
    n = 1
    x = 1
    for k in range(true_p.shape[0]):
        p = true_p[k]
        if p == 0.0:
            continue
        flip = p > 0.5
        pp = 1.0 - p if flip else p
        q = 1.0 - pp
        qn = np.exp(n * np.log(q))
        table[k, 0] = 1.0
        table[k, 1] = 1.0 if flip else 0.0
        table[k, 2] = qn
        table[k, 3] = ((n - x + 1) * pp * qn) / (x * q)
    return table


def _py_bernoulli(table: FloatArray, arm: int, rng: np.random.Generator) -> int:
    """``rng.binomial(1, p[arm])``, drawn from the thresholds of :func:`_py_bernoulli_table`."""
    if table[arm, 0] == 0.0:
        return 0
    x = 0
    while True:
        u = rng.random()
        if u <= table[arm, 2]:
            x = 0
            break
        u -= table[arm, 2]
        if u <= table[arm, 3]:
            x = 1
            break
        # Inversion ran past its bound (1 for n = 1): the routine starts over.
    return 1 - x if table[arm, 1] == 1.0 else x


_bernoulli_table = numba.njit(**_JIT_OPTIONS, inline="always")(_py_bernoulli_table)
_bernoulli = numba.njit(**_JIT_OPTIONS, inline="always")(_py_bernoulli)


def _build_kernels() -> tuple[Callable[..., Any], Callable[..., Any]]:
    """Compile the trace and checkpoint kernels (lazily, on first call per signature).

    Each send goes through :func:`~headliner.core.allocation.guarded_choice`,
    the decision path the service takes, with no guard on: burn-in and the
    floor are campaign settings (:mod:`headliner.sim.campaign`), and with them
    off it takes exactly the policy rule's draws, so seeds reproduce the seed
    design's numbers.
    """

    def trace_kernel(
        policy: int,
        params: FloatArray,
        true_p: FloatArray,
        rng: np.random.Generator,
        arms_out: NDArray[np.integer[Any]],
        rewards_out: NDArray[np.int8],
    ) -> tuple[FloatArray, FloatArray]:
        n_arms = true_p.shape[0]
        opens = np.zeros(n_arms)
        non_opens = np.zeros(n_arms)
        memory = np.full(1, -1, dtype=np.int64)
        short = np.zeros(n_arms, dtype=np.bool_)
        bernoulli = _bernoulli_table(true_p)
        for t in range(arms_out.shape[0]):
            arm = guarded_choice(policy, params, opens, non_opens, t, memory, short, 1.0, 0.0, rng)
            reward = _bernoulli(bernoulli, arm, rng)
            arms_out[t] = arm
            rewards_out[t] = reward
            if reward == 1:
                opens[arm] += 1.0
            else:
                non_opens[arm] += 1.0
        return opens, non_opens

    def checkpoint_kernel(
        policy: int,
        params: FloatArray,
        true_p: FloatArray,
        checkpoints: IntArray,
        rng: np.random.Generator,
        opens_out: IntArray,
        regret_out: FloatArray,
        best_sends_out: IntArray,
        arm_sends_out: NDArray[np.int64],
    ) -> None:
        n_arms = true_p.shape[0]
        opens = np.zeros(n_arms)
        non_opens = np.zeros(n_arms)
        memory = np.full(1, -1, dtype=np.int64)
        short = np.zeros(n_arms, dtype=np.bool_)
        bernoulli = _bernoulli_table(true_p)
        p_best = true_p.max()
        total_opens = 0
        regret = 0.0
        best_sends = 0
        c = 0
        n_sends = checkpoints[checkpoints.shape[0] - 1]
        for t in range(n_sends):
            arm = guarded_choice(policy, params, opens, non_opens, t, memory, short, 1.0, 0.0, rng)
            if _bernoulli(bernoulli, arm, rng) == 1:
                opens[arm] += 1.0
                total_opens += 1
            else:
                non_opens[arm] += 1.0
            # Pseudo-regret: the expected opens lost, free of outcome noise.
            regret += p_best - true_p[arm]
            if true_p[arm] == p_best:
                best_sends += 1
            if t + 1 == checkpoints[c]:
                opens_out[c] = total_opens
                regret_out[c] = regret
                best_sends_out[c] = best_sends
                for k in range(n_arms):
                    arm_sends_out[c, k] = opens[k] + non_opens[k]
                c += 1

    trace_kernel.__qualname__ = f"trace_kernel_{_FINGERPRINT:x}"
    checkpoint_kernel.__qualname__ = f"checkpoint_kernel_{_FINGERPRINT:x}"
    jit = numba.njit(**_JIT_OPTIONS)
    return jit(trace_kernel), jit(checkpoint_kernel)


_trace_kernel, _checkpoint_kernel = _build_kernels()


def arm_dtype(n_arms: int) -> type[np.signedinteger[Any]]:
    """The smallest signed integer dtype that holds arm indices ``0 .. n_arms - 1``."""
    if n_arms <= np.iinfo(np.int8).max + 1:
        return np.int8
    if n_arms <= np.iinfo(np.int16).max + 1:
        return np.int16
    return np.int32


def simulate_trace(
    policy_code: int,
    params: FloatArray,
    true_probabilities: FloatArray,
    n_sends: int,
    rng: np.random.Generator,
) -> tuple[NDArray[np.signedinteger[Any]], NDArray[np.int8], FloatArray, FloatArray]:
    """Run one policy for ``n_sends`` sends and record every send.

    Parameters
    ----------
    policy_code : int
        A rule code from :mod:`headliner.core.policies` (``Policy.code``).
    params : ndarray of shape (2 + n_settings,)
        ``[alpha_prior, beta_prior, *settings]`` (``Policy.params()``).
    true_probabilities : ndarray of shape (n_arms,)
    n_sends : int
        Number of sends, >= 0 (not validated here: callers validate).
    rng : numpy.random.Generator
        Advanced in place, exactly as the same draws in Python would.

    Returns
    -------
    arms : ndarray of shape (n_sends,)
        Arm sent each round, dtype :func:`arm_dtype` (int8 for up to 128 arms).
    rewards : ndarray of shape (n_sends,), dtype int8
        1 for an open, 0 otherwise.
    opens, non_opens : ndarrays of shape (n_arms,), dtype float64
        Final per-arm counts.
    """
    p = np.ascontiguousarray(true_probabilities, dtype=np.float64)
    arms = np.empty(n_sends, dtype=arm_dtype(p.shape[0]))
    rewards = np.empty(n_sends, dtype=np.int8)
    opens, non_opens = _trace_kernel(
        policy_code, np.ascontiguousarray(params, dtype=np.float64), p, rng, arms, rewards
    )
    return arms, rewards, opens, non_opens


def simulate_random_split(
    true_probabilities: FloatArray, n_sends: int, rng: np.random.Generator
) -> tuple[NDArray[np.signedinteger[Any]], NDArray[np.int8]]:
    """The seed's random split: ``rng.integers(0, n_arms)`` then ``rng.binomial(1, p)`` per send.

    Returns ``(arms, rewards)`` as in :func:`simulate_trace`.
    """
    params = np.array([1.0, 1.0])
    arms, rewards, _, _ = simulate_trace(policies.UNIFORM, params, true_probabilities, n_sends, rng)
    return arms, rewards


def simulate_thompson(
    true_probabilities: FloatArray,
    n_sends: int,
    rng: np.random.Generator,
    *,
    alpha_prior: float = 1.0,
    beta_prior: float = 1.0,
) -> tuple[NDArray[np.signedinteger[Any]], NDArray[np.int8], FloatArray, FloatArray]:
    """The seed's bandit: one Beta draw per arm in index order, argmax, then ``binomial``.

    Returns ``(arms, rewards, opens, non_opens)`` as in :func:`simulate_trace`.
    """
    params = np.array([alpha_prior, beta_prior], dtype=np.float64)
    return simulate_trace(policies.THOMPSON, params, true_probabilities, n_sends, rng)


def simulate_checkpoints(
    policy_code: int,
    params: FloatArray,
    true_probabilities: FloatArray,
    checkpoints: IntArray,
    rng: np.random.Generator,
    opens_out: IntArray,
    regret_out: FloatArray,
    best_sends_out: IntArray,
    arm_sends_out: NDArray[np.int64],
) -> None:
    """Run one policy up to the last checkpoint and write running totals at each checkpoint.

    Releases the GIL while it runs, so threads can run replications side by side.

    Parameters
    ----------
    policy_code, params, true_probabilities, rng
        As in :func:`simulate_trace`.
    checkpoints : int64 ndarray of shape (n_checkpoints,)
        Strictly increasing send counts >= 1; the last one is the horizon.
    opens_out : int64 ndarray of shape (n_checkpoints,)
        Receives the cumulative opens after each checkpoint's send.
    regret_out : float64 ndarray of shape (n_checkpoints,)
        Receives the cumulative pseudo-regret, the sum of ``p_best - p_sent``.
    best_sends_out : int64 ndarray of shape (n_checkpoints,)
        Receives the number of sends that went to a best arm.
    arm_sends_out : int64 ndarray of shape (n_checkpoints, n_arms)
        Receives the number of sends of each arm.
    """
    _checkpoint_kernel(
        policy_code,
        params,
        true_probabilities,
        checkpoints,
        rng,
        opens_out,
        regret_out,
        best_sends_out,
        arm_sends_out,
    )


def warm_up() -> None:
    """Load every kernel the simulator uses, compiling it if numba's cache is cold.

    The first compiled call in a process pays numba's start-up (about 0.2 s
    here, importing its typing registries) plus loading the cached machine
    code; compiling on a cold cache takes tens of seconds once per checkout.
    A command-line tool can call this up front, behind a progress message, so
    the work it times or reports afterwards is the simulation alone.
    """
    p = np.array([0.5, 0.5])
    rng = np.random.default_rng(0)
    simulate_trace(policies.THOMPSON, np.array([1.0, 1.0]), p, 1, rng)
    checkpoints = np.array([1], dtype=np.int64)
    simulate_checkpoints(
        policies.THOMPSON,
        np.array([1.0, 1.0]),
        p,
        checkpoints,
        rng,
        np.zeros(1, dtype=np.int64),
        np.zeros(1),
        np.zeros(1, dtype=np.int64),
        np.zeros((1, 2), dtype=np.int64),
    )
