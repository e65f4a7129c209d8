"""Probability of best: the compiled integral beside its plain-Python run and the old scipy quad.

For K = 2, 5, 20 and 50 arms, on posteriors a Thompson campaign reaches (a
uniform prior plus opens at rates between 0.15 and 0.25; one arm has had
5,000 sends, the others 300 each), this times one call of

- ``sim.engine.kernels.within_probabilities``, the compiled twin, at tolerance 0 and
  at 0.01 (the value-remaining event),
- ``core.posterior.within_probabilities`` run as plain Python, which is what
  ``probability_of_best`` runs in the service,
- the former scipy-quad implementation, now the test oracle
  (``tests/unit/core/pbest_oracle.py``),

all in this process, and prints the ratios and the largest difference from
the oracle. A last line runs the campaign simulator's budget: 1,000
replications x 100 waves with K = 5, each wave one P(best) and one
tolerance call from a nogil kernel, on two threads.

Each compiled time is the best of ``--repeat`` rounds of 200 calls, each
Python and quad time the best of 3 single calls, so that other work on the
machine slows the table less. numba compiles the twins on first use (or
loads them from its cache); that is done before timing and reported apart.

Usage: ``python benchmarks/probability_of_best.py [--repeat N]``
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import numba
import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "unit" / "core"))

ARM_COUNTS = (2, 5, 20, 50)
WAVES, REPLICATIONS, WAVE_SENDS = 100, 1_000, 200


def campaign_posterior(n_arms: int, seed: int = 1) -> tuple[FloatArray, FloatArray]:
    """Beta(1 + opens, 1 + non-opens) after 5,000 sends to arm 0 and 300 to each other arm."""
    rng = np.random.default_rng(seed)
    rates = rng.uniform(0.15, 0.25, n_arms)
    sends = np.full(n_arms, 300)
    sends[0] = 5_000
    opens = rng.binomial(sends, rates)
    return 1.0 + opens, 1.0 + sends - opens


def per_call(call: Callable[[], object], calls: int, repeat: int) -> float:
    """Seconds per call, best of ``repeat`` rounds of ``calls`` calls."""
    best = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(calls):
            call()
        best = min(best, (time.perf_counter() - start) / calls)
    return best


def simulate_waves(engine: Any) -> Callable[..., float]:
    """A nogil kernel: replications of Thompson waves that call the compiled integrals."""
    best_probabilities = engine.kernels.best_probabilities
    within_probabilities = engine.kernels.within_probabilities

    @numba.njit(nogil=True)
    def run(rates: FloatArray, replications: int, waves: int, sends: int, seed: int) -> float:
        np.random.seed(seed)
        n_arms = rates.shape[0]
        p_best = np.empty(n_arms)
        within = np.empty(n_arms)
        stopped = 0.0
        for _ in range(replications):
            alpha = np.ones(n_arms)
            beta = np.ones(n_arms)
            for _ in range(waves):
                best_probabilities(alpha, beta, p_best)
                # Probability matching: the wave's sends split by P(best).
                for k in range(n_arms):
                    n = int(p_best[k] * sends + 0.5)
                    opens = np.random.binomial(n, rates[k])
                    alpha[k] += opens
                    beta[k] += n - opens
                within_probabilities(alpha, beta, 0.01, within)
                if within.max() >= 0.95:
                    stopped += 1.0
        return stopped

    return run


def row(n_arms: int, repeat: int) -> str:
    """One line of the table: the three implementations on one posterior of ``n_arms`` arms."""
    from pbest_oracle import quad_probability_of_best

    from headliner.core import posterior
    from headliner.sim import engine

    alpha, beta = campaign_posterior(n_arms)
    out = np.empty(n_arms)
    compiled = per_call(
        partial(engine.kernels.within_probabilities, alpha, beta, 0.0, out), 200, repeat
    )
    tolerance = per_call(
        partial(engine.kernels.within_probabilities, alpha, beta, 0.01, out), 200, repeat
    )
    python = per_call(partial(posterior.within_probabilities, alpha, beta, 0.0, out), 1, 3)
    quad = per_call(partial(quad_probability_of_best, alpha, beta), 1, 3)
    engine.kernels.within_probabilities(alpha, beta, 0.0, out)
    diff = float(np.max(np.abs(out - quad_probability_of_best(alpha, beta))))
    times = f"{compiled * 1e6:>9.1f} {tolerance * 1e6:>9.1f} | {python * 1e3:>9.2f}"
    ratios = f"{python / compiled:>7.0f}x {quad / compiled:>7.0f}x {quad / python:>6.1f}x"
    return f"{n_arms:>3} | {times} | {quad * 1e3:>10.2f} | {ratios} | {diff:>10.1e}"


def budget() -> str:
    """The campaign simulator's load, run on two threads."""
    from headliner.sim import engine

    rates = np.array([0.18, 0.21, 0.16, 0.24, 0.20])
    kernel = simulate_waves(engine)
    kernel(rates, 1, 2, WAVE_SENDS, 0)  # compile before timing
    half = REPLICATIONS // 2
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = [pool.submit(kernel, rates, half, WAVES, WAVE_SENDS, seed) for seed in (1, 2)]
        stops = sum(run.result() for run in runs)
    seconds = time.perf_counter() - start
    calls = 2 * REPLICATIONS * WAVES
    return (
        f"campaign budget: {REPLICATIONS:,} replications x {WAVES} waves x {len(rates)} arms, "
        f"{calls:,} compiled calls on 2 threads: {seconds:.2f} s\n"
        f"({seconds / calls * 2e6:.1f} us per call and thread, wave included; "
        f"{stops / (REPLICATIONS * WAVES):.0%} of waves past the 1% value-remaining rule)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timing rounds per cell")
    args = parser.parse_args()

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{os.cpu_count()} CPUs, load average {load} (other work on the machine slows every row)")
    start = time.perf_counter()
    from headliner.sim import engine

    alpha, beta = campaign_posterior(5)
    out = np.empty(5)
    engine.kernels.within_probabilities(alpha, beta, 0.0, out)
    engine.kernels.best_probabilities(alpha, beta, out)
    seconds = time.perf_counter() - start
    print(
        f"import and first compiled calls (numba start-up, compile or cache load): {seconds:.2f} s"
    )

    head = (
        f"{'K':>3} | {'compiled':>9} {'t=0.01':>9} | {'Python':>9} | {'scipy quad':>10} | "
        f"{'Python/':>8} {'quad/':>8} {'quad/':>7} | {'max |diff|':>10}"
    )
    print()
    print(
        f"{'':>3} | {'us per call':^19} | {'ms':^9} | {'ms':^10} | "
        f"{'compiled':>8} {'compiled':>8} {'Python':>7} | {'vs quad':>10}"
    )
    print(head)
    print("-" * len(head))
    for n_arms in ARM_COUNTS:
        print(row(n_arms, args.repeat))
    print()
    print(budget())
    print()
    print(
        "compiled: sim.engine's twin, per call, tolerance 0 and 0.01. Python: the same function\n"
        "as plain Python (what probability_of_best runs). scipy quad: the implementation it\n"
        "replaced (the tests' oracle). max |diff|: compiled P(best) against that oracle."
    )


if __name__ == "__main__":
    main()
