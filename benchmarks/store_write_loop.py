"""Latency of the store's hot write, one thread, no HTTP: ``record_decision`` in a loop.

What one decision costs the database layer alone (engine checkout, the
INSERT ... SELECT, the commit), without the service around it, and what a bare
pool checkout costs. ``--compare-pre-ping`` adds a second store whose engine
pings every connection as it leaves the pool (``pool_pre_ping=True``, the
PostgreSQL setting before the checkout-time socket check) and alternates
blocks of calls between the two, so that both see the same load on a shared
machine.

Usage::

    python benchmarks/store_write_loop.py postgresql+psycopg://postgres@127.0.0.1:5432/test \
        [--n 500] [--blocks 20] [--compare-pre-ping]

The database is migrated to head first; the loop writes into fresh
experiments, so it never touches other data.
"""

from __future__ import annotations

import argparse
import statistics
import time

import sqlalchemy as sa

from headliner.storage.base import ExperimentSpec
from headliner.storage.engine import MAX_OVERFLOW, POOL_SIZE, normalize_url
from headliner.storage.migrate import upgrade
from headliner.storage.sql import SqlStore


def decisions(store: SqlStore, experiment_id: str, n: int) -> list[float]:
    """Seconds per ``record_decision`` call, ``n`` calls."""
    timings = []
    for i in range(n):
        start = time.perf_counter()
        store.record_decision(experiment_id, i % 3, 1 / 3, time.time())
        timings.append(time.perf_counter() - start)
    return timings


def checkouts(store: SqlStore, n: int) -> list[float]:
    """Seconds per pool checkout and return, ``n`` times."""
    timings = []
    for _ in range(n):
        start = time.perf_counter()
        with store.engine.connect():
            pass
        timings.append(time.perf_counter() - start)
    return timings


def pre_ping_store(url: str) -> SqlStore:
    """A store whose engine pings on checkout instead (the baseline; PostgreSQL only)."""
    store = SqlStore(url)
    store.close()
    engine = sa.create_engine(
        normalize_url(url), pool_size=POOL_SIZE, max_overflow=MAX_OVERFLOW, pool_pre_ping=True
    )
    # The store reads its engine through these two attributes only.
    store._engine = store._writer = engine
    return store


def summary(label: str, calls: list[float], checkout: list[float]) -> str:
    calls, checkout = sorted(calls), sorted(checkout)
    mean = statistics.fmean(calls)
    return (
        f"{label}: record_decision mean {mean * 1e6:.0f} us, "
        f"p50 {calls[len(calls) // 2] * 1e6:.0f} us, "
        f"p99 {calls[int(len(calls) * 0.99)] * 1e6:.0f} us, {1 / mean:.0f}/s (n={len(calls)}); "
        f"checkout+return p50 {checkout[len(checkout) // 2] * 1e6:.1f} us"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--n", type=int, default=500, help="calls per block")
    parser.add_argument("--blocks", type=int, default=20)
    parser.add_argument("--compare-pre-ping", action="store_true")
    args = parser.parse_args()
    upgrade(args.url)
    stores = {"this tree": SqlStore(args.url)}
    if args.compare_pre_ping:
        stores["pool_pre_ping=True"] = pre_ping_store(args.url)
    spec = ExperimentSpec("bench", ["A", "B", "C"])
    experiments = {name: s.create_experiment(spec, time.time()).id for name, s in stores.items()}
    calls: dict[str, list[float]] = {name: [] for name in stores}
    checkout: dict[str, list[float]] = {name: [] for name in stores}
    try:
        for name, store in stores.items():
            decisions(store, experiments[name], 200)  # warm the pool and the compiled cache
        order = list(stores)
        for block in range(args.blocks):
            for name in order if block % 2 == 0 else order[::-1]:
                calls[name] += decisions(stores[name], experiments[name], args.n)
                checkout[name] += checkouts(stores[name], args.n)
        for name in stores:
            print(summary(name, calls[name], checkout[name]))
    finally:
        for store in stores.values():
            store.close()


if __name__ == "__main__":
    main()
