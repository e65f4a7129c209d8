"""Speed of ``headliner plan``: the reference plan, beside a replay through the service.

The reference plan: 5 headlines at 18/21/16/24/20%, 1,000,000 sends in 20
waves every 2 h, opens delayed log-normally (median 2 h, p95 24 h), a 72 h
window, the service's defaults, 1,000 replications. Timed after a warm-up
(numba's kernels load once per process), with and without the
recommendations' searches.

The baseline, in the same invocation: the same campaign replayed send by
send through the service's decision code (``ExperimentService`` on a
temporary SQLite store and a manual clock, every send's open and delay drawn
on its own, opens reported as running totals before each wave), for a few
replications; the table gives its time per replication, and the ratio of
1,000 of them to the plan.

Usage: ``python benchmarks/plan_speed.py [--replications R] [--replays N]``
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import numpy as np

from headliner.sim.campaign import simulate_campaign
from headliner.sim.plan import PlanSpec, parse_plan, plan_campaign

REFERENCE = {
    "name": "reference",
    "headlines": 5,
    "open_rates": [0.18, 0.21, 0.16, 0.24, 0.20],
    "list_size": 1_000_000,
    "waves": {"count": 20, "every": "2h"},
    "open_delay": {"median": "2h", "p95": "24h"},
    "attribution_window": "72h",
    "seed": 2024,
}
HOUR = 3600.0


def replay(spec: PlanSpec, store: object, seed: int) -> None:
    """One campaign through ExperimentService, as tests/integration does it."""
    from headliner.service.clock import ManualClock
    from headliner.service.experiments import ExperimentService
    from headliner.service.schemas import ExperimentCreate

    clock = ManualClock()
    service = ExperimentService(
        store,  # type: ignore[arg-type]
        clock,
        np.random.default_rng(seed),
        posterior_refresh_seconds=1e9,
        snapshot_interval_seconds=1e9,
        refresh_in_background=False,
    )
    settings = {**spec.experiment_settings(), "name": f"replay {seed}"}
    experiment = service.create(ExperimentCreate.model_validate(settings).to_spec()).id
    rng = np.random.default_rng(seed)
    assert spec.open_delay is not None and spec.waves is not None and spec.waves.count
    mu = math.log(spec.open_delay.median)
    sigma = math.log(spec.open_delay.p95 / spec.open_delay.median) / 1.6448536269514722
    window, every = spec.attribution_window, spec.waves.every
    size = math.ceil(spec.n_sends / spec.waves.count)
    waves: list[tuple[str, list[np.ndarray]]] = []
    for _ in range(spec.waves.count):
        for age, (wave_id, seen) in enumerate(reversed(waves), start=1):
            if age * every <= window:
                totals = {arm: int(np.sum(s <= age)) for arm, s in enumerate(seen)}
                service.record_wave_opens(experiment, wave_id, totals)
        wave = service.allocate(experiment, size).wave
        seen = []
        for arm, rate in enumerate(spec.true_rates):
            lags = []
            for _ in range(int(rng.binomial(wave.arm_to_sends.get(arm, 0), rate))):
                delay = math.inf
                while delay > window:  # one draw per open, as a recipient would
                    delay = math.exp(mu + sigma * rng.standard_normal())
                lags.append(max(1, math.ceil(delay / every - 1e-9)))
            seen.append(np.array(lags, dtype=np.int64))
        waves.append((wave.id, seen))
        clock.advance(every)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replications", type=int, default=1_000)
    parser.add_argument("--replays", type=int, default=2)
    args = parser.parse_args()
    spec = parse_plan(REFERENCE)
    simulate_campaign(spec.build_campaign(), 2, seed=1)  # load the compiled kernel
    plan_campaign(spec, replications=2, search_replications=2)  # and the plan's imports

    start = time.perf_counter()
    plan_campaign(spec, replications=args.replications, recommend=False)
    figures = time.perf_counter() - start
    start = time.perf_counter()
    planned = plan_campaign(spec, replications=args.replications)
    full = time.perf_counter() - start

    from headliner.storage.migrate import upgrade
    from headliner.storage.sql import SqlStore

    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'replay.db'}"
        upgrade(url)
        store = SqlStore(url)
        start = time.perf_counter()
        for seed in range(args.replays):
            replay(spec, store, seed)
        per_replay = (time.perf_counter() - start) / args.replays
        store.close()

    r = args.replications
    rows = [
        (f"plan, {r:,} replications, figures only", f"{figures:.2f} s", ""),
        (
            f"plan, {r:,} replications + recommendations",
            f"{full:.2f} s",
            f"{planned.search_replications:,} per candidate",
        ),
        (
            f"service replay, per replication ({args.replays} run)",
            f"{per_replay:.2f} s",
            f"x{per_replay * r / full:,.0f} for {r:,} vs the full plan",
        ),
    ]
    print(
        "Reference plan: 5 headlines, 1,000,000 sends in 20 waves every 2h, "
        "delays median 2h / p95 24h, 72h window"
    )
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print("  ".join(f"{cell:<{w}}" for cell, w in zip(row, widths, strict=True)))
    print(planned.verdict())


if __name__ == "__main__":
    main()
