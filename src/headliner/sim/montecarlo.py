"""Monte Carlo comparison of policies over many independent replications.

Streams: ``np.random.SeedSequence(seed).spawn(n_replications)`` gives one
child seed per replication; replication ``r`` of *every* policy starts a fresh
``Generator`` from child ``r``. The replications are independent of each other,
and the policies share common random numbers per replication index, which
makes policy-to-policy differences less noisy than independent runs would
(the streams drift apart as soon as two policies consume draws differently).

Each replication runs in the compiled, GIL-free checkpoint kernel of
:mod:`headliner.sim.engine`; a thread pool spreads contiguous chunks of
replications of each policy over the cores.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from headliner.core.policies import Policy
from headliner.core.posterior import check_prior
from headliner.core.validation import check_int, check_probabilities, fail
from headliner.sim import engine

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

ProgressCallback = Callable[[int, int], None]

_OWNER = "run_monte_carlo"
# z for a two-sided 95% normal interval of the mean.
_Z95 = 1.959963984540054
# Default checkpoint grid: this many evenly spaced send counts up to the horizon.
_DEFAULT_N_CHECKPOINTS = 50
# Chunks per thread: enough for a smooth progress bar and load balance, few
# enough that per-chunk Python overhead stays negligible.
_CHUNKS_PER_THREAD = 8


@dataclass(frozen=True, eq=False)
class MonteCarloResult:
    """Per-replication running totals of several policies on one scenario.

    Attributes
    ----------
    seed : int
        The root seed of the replication streams (the drawn entropy when
        ``run_monte_carlo`` was called with ``seed=None``), so any run can be
        repeated.
    labels : tuple of str
        One label per policy, in the order given (the policy name, plus its
        settings where two policies share a name).
    policies : tuple of Policy
    true_probabilities : ndarray of shape (n_arms,)
    n_sends : int
        Horizon, equal to ``checkpoints[-1]``.
    n_replications : int
    checkpoints : int64 ndarray of shape (n_checkpoints,)
        Send counts at which the totals were recorded.
    opens : mapping of label to int64 ndarray of shape (n_replications, n_checkpoints)
        Cumulative opens.
    regret : mapping of label to float64 ndarray of shape (n_replications, n_checkpoints)
        Cumulative pseudo-regret, ``sum over sends of (p_best - p_sent)``.
    best_arm_share : mapping of label to float64 ndarray of shape (n_replications, n_checkpoints)
        Share of the sends so far that went to a best arm.
    arm_sends : mapping of label to int64 ndarray of shape (n_replications, n_checkpoints, n_arms)
        Sends of each arm so far (the share of sends per headline over time).
    alpha_prior, beta_prior : float
    """

    seed: int
    labels: tuple[str, ...]
    policies: tuple[Policy, ...]
    true_probabilities: FloatArray
    n_sends: int
    n_replications: int
    checkpoints: IntArray
    opens: Mapping[str, IntArray]
    regret: Mapping[str, FloatArray]
    best_arm_share: Mapping[str, FloatArray]
    arm_sends: Mapping[str, NDArray[np.int64]]
    alpha_prior: float = 1.0
    beta_prior: float = 1.0

    def summary(self) -> pd.DataFrame:
        """Mean and 95% interval per policy and checkpoint.

        The interval is ``mean ± 1.96 · sd / sqrt(n_replications)`` (normal
        approximation of the replication mean; NaN with one replication).

        Returns
        -------
        DataFrame
            One row per policy × checkpoint, columns ``policy``, ``n_sends``,
            ``mean_opens``, ``opens_low``, ``opens_high``, ``mean_open_rate``,
            ``mean_regret``, ``regret_low``, ``regret_high``,
            ``mean_best_arm_share``, ``best_arm_share_low``,
            ``best_arm_share_high``.
        """
        frames = []
        for label in self.labels:
            columns: dict[str, Any] = {
                "policy": label,
                "n_sends": self.checkpoints,
            }
            metrics = (
                ("opens", self.opens[label]),
                ("regret", self.regret[label]),
                ("best_arm_share", self.best_arm_share[label]),
            )
            for name, values in metrics:
                mean, half_width = _mean_and_half_width(values)
                columns[f"mean_{name}"] = mean
                columns[f"{name}_low"] = mean - half_width
                columns[f"{name}_high"] = mean + half_width
                if name == "opens":
                    columns["mean_open_rate"] = mean / self.checkpoints
            frames.append(pd.DataFrame(columns))
        order = [
            "policy",
            "n_sends",
            "mean_opens",
            "opens_low",
            "opens_high",
            "mean_open_rate",
            "mean_regret",
            "regret_low",
            "regret_high",
            "mean_best_arm_share",
            "best_arm_share_low",
            "best_arm_share_high",
        ]
        return pd.concat(frames, ignore_index=True)[order]


def _mean_and_half_width(values: NDArray[Any]) -> tuple[FloatArray, FloatArray]:
    """Column means and 95% half-widths of a (n_replications, n_checkpoints) array."""
    x = np.asarray(values, dtype=np.float64)
    n = x.shape[0]
    mean = x.mean(axis=0)
    if n < 2:
        return mean, np.full_like(mean, np.nan)
    sd = x.std(axis=0, ddof=1)
    return mean, _Z95 * sd / np.sqrt(n)


def policy_labels(policies: Sequence[Policy]) -> tuple[str, ...]:
    """Unique display labels: the policy name, with its settings where names repeat.

    Examples
    --------
    >>> from headliner.core.policies import ABTestThenCommit, ThompsonSampling
    >>> policy_labels([ThompsonSampling(), ABTestThenCommit(1000), ABTestThenCommit(2000)])
    ('thompson', 'ab_test(n_test_sends=1000)', 'ab_test(n_test_sends=2000)')
    """
    names = [policy.name for policy in policies]
    labels = []
    for policy, name in zip(policies, names, strict=True):
        if names.count(name) == 1:
            labels.append(name)
            continue
        settings = ", ".join(f"{key}={value!r}" for key, value in vars(policy).items())
        labels.append(f"{name}({settings})")
    if len(set(labels)) != len(labels):
        raise fail("policies", _OWNER, "distinct policies", labels)
    return tuple(labels)


def _checkpoint_grid(n_sends: int, checkpoints: Sequence[int] | None) -> IntArray:
    if checkpoints is None:
        grid = np.linspace(0, n_sends, _DEFAULT_N_CHECKPOINTS + 1)[1:]
        return np.unique(np.maximum(np.round(grid), 1).astype(np.int64))
    values = [check_int(c, "checkpoints", _OWNER, low=1, high=n_sends) for c in checkpoints]
    # The horizon is always recorded, so `result.opens[label][:, -1]` is the total.
    return np.unique(np.array([*values, n_sends], dtype=np.int64))


def _run_chunk(
    policy: Policy,
    params: FloatArray,
    true_p: FloatArray,
    checkpoints: IntArray,
    children: Sequence[np.random.SeedSequence],
    rows: range,
    out: tuple[IntArray, FloatArray, IntArray, NDArray[np.int64]],
) -> int:
    """Run replications ``rows`` of one policy; return how many runs were made."""
    opens, regret, best, arms = out
    for r in rows:
        # A fresh Generator on child r for every policy: common random numbers
        # per replication index.
        rng = np.random.Generator(np.random.PCG64(children[r]))
        engine.simulate_checkpoints(
            policy.code, params, true_p, checkpoints, rng, opens[r], regret[r], best[r], arms[r]
        )
    return len(rows)


def run_monte_carlo(
    policies: Sequence[Policy],
    true_probabilities: Sequence[float] | FloatArray,
    n_sends: int,
    n_replications: int,
    *,
    seed: int | None,
    checkpoints: Sequence[int] | None = None,
    alpha_prior: float = 1.0,
    beta_prior: float = 1.0,
    n_threads: int | None = None,
    progress: ProgressCallback | None = None,
) -> MonteCarloResult:
    """Run every policy for ``n_sends`` sends in ``n_replications`` independent replications.

    Parameters
    ----------
    policies : sequence of Policy
        The policies to compare, e.g. ``[ThompsonSampling(), UniformRandom()]``.
    true_probabilities : sequence of float of length n_arms
        True open rate of each arm, in [0, 1].
    n_sends : int
        Horizon of every replication, >= 1.
    n_replications : int
        Number of replications, >= 1.
    seed : int or None
        Root seed; replication ``r`` uses child ``r`` of
        ``SeedSequence(seed).spawn(n_replications)`` for every policy. With
        None, fresh entropy is drawn and echoed in ``result.seed``.
    checkpoints : sequence of int or None, default=None
        Send counts in [1, n_sends] at which to record the totals; the
        horizon is always added. None gives up to 50 evenly spaced counts.
    alpha_prior, beta_prior : float, default=1.0
        Beta prior of the posterior-based policies, > 0.
    n_threads : int or None, default=None
        Worker threads; None uses every available core.
    progress : callable or None, default=None
        Called as ``progress(done, total)`` in the calling thread after each
        chunk, counting policy × replication runs.

    Returns
    -------
    MonteCarloResult

    Examples
    --------
    >>> from headliner.core.policies import ThompsonSampling, UniformRandom
    >>> result = run_monte_carlo(
    ...     [ThompsonSampling(), UniformRandom()], [0.1, 0.3], 1000, 20, seed=7
    ... )
    >>> result.opens["thompson"].shape
    (20, 50)
    >>> bool(result.regret["thompson"][:, -1].mean() < result.regret["uniform"][:, -1].mean())
    True
    """
    chosen = tuple(policies)
    if not chosen or not all(isinstance(p, Policy) for p in chosen):
        raise fail("policies", _OWNER, "a non-empty sequence of Policy objects", policies)
    labels = policy_labels(chosen)
    true_p = check_probabilities(true_probabilities, "true_probabilities", _OWNER)
    if true_p.size == 0:
        raise fail("true_probabilities", _OWNER, "a non-empty sequence", true_probabilities)
    horizon = check_int(n_sends, "n_sends", _OWNER, low=1)
    n_reps = check_int(n_replications, "n_replications", _OWNER, low=1)
    a, b = check_prior(alpha_prior, beta_prior, _OWNER)
    if seed is not None:
        check_int(seed, "seed", _OWNER, low=0)
    threads = n_threads if n_threads is not None else (os.cpu_count() or 1)
    threads = check_int(threads, "n_threads", _OWNER, low=1)
    grid = _checkpoint_grid(horizon, checkpoints)

    root = np.random.SeedSequence(seed)
    root_seed = int(root.entropy)  # type: ignore[arg-type]  # an int for int/None seeds
    children = root.spawn(n_reps)
    params = [policy.params(a, b) for policy in chosen]
    shape = (n_reps, grid.size)
    out = [
        (
            np.zeros(shape, dtype=np.int64),
            np.zeros(shape, dtype=np.float64),
            np.zeros(shape, dtype=np.int64),
            np.zeros((*shape, true_p.size), dtype=np.int64),
        )
        for _ in chosen
    ]

    total = n_reps * len(chosen)
    n_chunks = min(n_reps, threads * _CHUNKS_PER_THREAD)
    bounds = np.linspace(0, n_reps, n_chunks + 1).astype(int)
    chunks = [range(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]
    done = 0
    with ThreadPoolExecutor(max_workers=threads) as pool:
        # Every (policy, chunk) pair is one task, so a few long replications of
        # several policies still spread over the threads.
        futures = [
            pool.submit(_run_chunk, policy, theta, true_p, grid, children, rows, arrays)
            for policy, theta, arrays in zip(chosen, params, out, strict=True)
            for rows in chunks
        ]
        for future in as_completed(futures):
            done += future.result()
            if progress is not None:
                progress(done, total)

    def frozen(values: NDArray[Any]) -> NDArray[Any]:
        values.setflags(write=False)
        return values

    grid.setflags(write=False)
    return MonteCarloResult(
        seed=root_seed,
        labels=labels,
        policies=chosen,
        true_probabilities=frozen(true_p.copy()),
        n_sends=horizon,
        n_replications=n_reps,
        checkpoints=grid,
        opens=MappingProxyType({k: frozen(o[0]) for k, o in zip(labels, out, strict=True)}),
        regret=MappingProxyType({k: frozen(o[1]) for k, o in zip(labels, out, strict=True)}),
        best_arm_share=MappingProxyType(
            {k: frozen(o[2] / grid) for k, o in zip(labels, out, strict=True)}
        ),
        arm_sends=MappingProxyType({k: frozen(o[3]) for k, o in zip(labels, out, strict=True)}),
        alpha_prior=a,
        beta_prior=b,
    )
