"""Speed of the dashboard's experiment page: the forecast, the diagnostics, the whole data.

A campaign of five headlines (18/21/16/24/20%) on a temporary SQLite store and
a manual clock: an hourly wave of 1,500 sends and 40 per-send decisions, each
send opening with its headline's rate after a log-normal delay (median 2 h,
p95 24 h), opens reported every hour. After ``--hours`` hours (6: running, no
winner yet) the table gives the median time of

* the forecast of the declaration (:func:`headliner.service.forecast.forecast_decision`,
  128 simulated futures), which the page caches for a minute;
* the diagnostics (the store's scan of the decisions and the propensity checks),
  cached alike;
* the report, and the page's data without the caches (report, forecast,
  diagnostics, charts), what a refresh costs once a minute.

Usage: ``python benchmarks/dashboard_speed.py [--hours H] [--repeat N]``
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from headliner.service.clock import ManualClock
from headliner.service.dashboard import Dashboard, diagnostics
from headliner.service.experiments import ExperimentService, build_spec
from headliner.service.forecast import forecast_decision
from headliner.storage.migrate import upgrade
from headliner.storage.sql import SqlStore

RATES = np.array([0.18, 0.21, 0.16, 0.24, 0.20])
HOUR = 3600.0


def run_campaign(service: ExperimentService, clock: ManualClock, hours: int) -> str:
    """The campaign of the module docstring; returns the experiment's id."""
    rng = np.random.default_rng(7)
    headlines = [f"Headline {k + 1}" for k in range(len(RATES))]
    record = service.create(build_spec("bench", headlines))
    sigma = np.log(12.0) / 1.6448536269514722  # p95 / median = 24 h / 2 h
    waves: list[tuple[str, dict[int, np.ndarray]]] = []
    due: list[tuple[float, str]] = []
    for _ in range(hours):
        now = clock.now()
        for wave_id, times in waves:
            totals = {arm: int(np.sum(t <= now)) for arm, t in times.items()}
            service.record_wave_opens(record.id, wave_id, dict(totals))
        for _, decision_id in [d for d in due if d[0] <= now]:
            service.record_open(record.id, decision_id)
        due = [d for d in due if d[0] > now]
        wave = service.allocate(record.id, 1500).wave
        times = {}
        for arm, n in wave.arm_to_sends.items():
            opened = int(np.sum(rng.random(n) < RATES[arm]))
            times[arm] = now + 2 * HOUR * np.exp(sigma * rng.standard_normal(opened))
        waves.append((wave.id, times))
        for _ in range(40):
            decision = service.decide(record.id).decision
            if rng.random() < RATES[decision.arm]:
                delay = 2 * HOUR * float(np.exp(sigma * rng.standard_normal()))
                due.append((now + delay, decision.id))
        clock.advance(HOUR)
    return record.id


def median_ms(call: Callable[[], object], repeat: int) -> float:
    call()  # warm: compiled kernels load, imports happen
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=int, default=6)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'bench.db'}"
        upgrade(url)
        store = SqlStore(url)
        clock = ManualClock()
        service = ExperimentService(
            store, clock, np.random.default_rng(1), posterior_refresh_seconds=0.0,
            snapshot_interval_seconds=600.0, refresh_in_background=False,
        )  # fmt: skip
        experiment_id = run_campaign(service, clock, args.hours)
        report = service.report(experiment_id)
        state = service.state(experiment_id, fresh=True)
        volume = 1540.0

        def page() -> object:
            return Dashboard(service, plans_in_background=False).page(experiment_id)

        rows = [
            ("forecast (128 futures)", median_ms(
                lambda: forecast_decision(state, volume, now=clock.now(), seed=1), args.repeat
            )),
            ("diagnostics", median_ms(lambda: diagnostics(service, report), args.repeat)),
            ("report", median_ms(lambda: service.report(experiment_id), args.repeat)),
            ("page data, caches cold", median_ms(page, args.repeat)),
        ]  # fmt: skip
        store.close()
    sends = sum(a.sends for a in report.arms)
    heading = f"dashboard after {args.hours} h ({sends:,} sends), {report.status}"
    print(f"{heading}; median of {args.repeat}")
    for name, ms in rows:
        print(f"  {name:<26} {ms:8.1f} ms")


if __name__ == "__main__":
    main()
