"""Races: counts stay exact and conditional writes win exactly once, on every database.

Each thread opens its own store (its own connection pool, as a second worker
process would) on the same database. A barrier releases the threads together
so that their writes really overlap.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import pytest
import sqlalchemy as sa

from headliner.core.errors import ConflictError
from headliner.storage.base import ExperimentSpec, ExperimentStatus, OpenResult, Store
from headliner.storage.schema import wave_open_reports
from headliner.storage.sql import SqlStore

T = TypeVar("T")
N_THREADS = 8
T0 = 1_700_000_000.0
WINDOW = 3600.0
StoreFactory = Callable[[], Store]


def in_threads(store_factory: StoreFactory, work: Callable[[Store, int], T]) -> list[T]:
    """Run ``work(store, thread_index)`` in N_THREADS threads started together."""
    stores = [store_factory() for _ in range(N_THREADS)]
    barrier = threading.Barrier(N_THREADS)

    def run(index: int) -> T:
        barrier.wait()
        return work(stores[index], index)

    with ThreadPoolExecutor(N_THREADS) as pool:
        return list(pool.map(run, range(N_THREADS)))


def new_experiment(store: Store, n_arms: int = 2) -> str:
    spec = ExperimentSpec(name="race", headlines=[f"H{i}" for i in range(n_arms)])
    return store.create_experiment(spec, T0).id


@pytest.mark.slow
def test_decisions_and_opens_on_one_arm_are_exact(store_factory: StoreFactory) -> None:
    """8 threads × 200 decide + open on the hot arm: every send and open is counted once."""
    store = store_factory()
    exp = new_experiment(store)
    per_thread = 200

    def work(thread_store: Store, _: int) -> Counter[OpenResult]:
        results: Counter[OpenResult] = Counter()
        for i in range(per_thread):
            decision, created = thread_store.record_decision(exp, 0, 0.9, T0 + i)
            assert created
            results[thread_store.record_open(exp, decision.id, T0 + i + 1, WINDOW)] += 1
        return results

    results = sum(in_threads(store_factory, work), Counter())
    total = N_THREADS * per_thread
    assert results == Counter({OpenResult.COUNTED: total})
    hot = store.arm_counts(exp, T0 + per_thread, WINDOW)[0]
    assert (hot.sends, hot.opens, hot.non_opens, hot.late_opens) == (total, total, 0, 0)


def test_repeated_opens_count_once(store_factory: StoreFactory) -> None:
    store = store_factory()
    exp = new_experiment(store)
    ids = [store.record_decision(exp, 1, 0.5, T0)[0].id for _ in range(50)]

    def work(thread_store: Store, index: int) -> Counter[OpenResult]:
        order = ids[index:] + ids[:index]  # threads collide on different decisions
        return Counter(thread_store.record_open(exp, d, T0 + 1, WINDOW) for d in order)

    results = sum(in_threads(store_factory, work), Counter())
    assert results[OpenResult.COUNTED] == len(ids)
    assert results[OpenResult.DUPLICATE] == len(ids) * (N_THREADS - 1)
    assert store.arm_counts(exp, T0 + 1, WINDOW)[1].opens == len(ids)


def test_idempotency_keys_create_once(store_factory: StoreFactory) -> None:
    store = store_factory()
    exp = new_experiment(store)
    keys = [f"send-{i}" for i in range(40)]

    def work(thread_store: Store, _: int) -> list[tuple[str, bool]]:
        out = []
        for key in keys:
            decision, created = thread_store.record_decision(exp, 0, 0.5, T0, idempotency_key=key)
            out.append((decision.id, created))
        return out

    per_thread = in_threads(store_factory, work)
    for i in range(len(keys)):
        outcomes = [thread[i] for thread in per_thread]
        assert len({decision_id for decision_id, _ in outcomes}) == 1
        assert sum(created for _, created in outcomes) == 1
    assert store.arm_counts(exp, T0, WINDOW)[0].sends == len(keys)


def test_wave_totals_end_at_the_highest(store_factory: StoreFactory) -> None:
    store = store_factory()
    exp = new_experiment(store)
    wave = store.record_wave(exp, {0: 1000, 1: 1000}, T0).id

    def work(thread_store: Store, index: int) -> None:
        # Each thread reports a rising series; the series interleave across threads.
        for step in range(30):
            total = step * N_THREADS + index
            try:
                thread_store.record_wave_opens(exp, wave, {0: total, 1: total // 2}, T0 + 1, WINDOW)
            except ConflictError:  # overtaken by a higher total: refused, as a stale report
                pass

    in_threads(store_factory, work)
    highest = 29 * N_THREADS + N_THREADS - 1
    final = store.get_wave(exp, wave)
    assert dict(final.arm_to_opens) == {0: highest, 1: highest // 2}
    assert dict(final.arm_to_late_opens) == {0: 0, 1: 0}


def test_concurrent_wave_reports_log_each_increase_once(store_factory: StoreFactory) -> None:
    """Threads report rising totals of one wave at once: the logged increases add up exactly.

    Without the wave's lock two reports could both log an increase from the same
    stored total, and the log would add up to more than the opens counted.
    """
    store = store_factory()
    exp = new_experiment(store)
    wave = store.record_wave(exp, {0: 1000, 1: 1000}, T0).id
    steps = 15

    def work(thread_store: Store, index: int) -> None:
        for step in range(steps):
            total = step * N_THREADS + index
            # Later reports carry higher totals, as a real feed's would; one
            # overtaken by a higher total is refused whole.
            try:
                thread_store.record_wave_opens(
                    exp, wave, {0: total, 1: total // 2}, T0 + 1 + total, WINDOW
                )
            except ConflictError:
                pass

    in_threads(store_factory, work)
    highest = (steps - 1) * N_THREADS + N_THREADS - 1
    final = store.get_wave(exp, wave)
    assert dict(final.arm_to_opens) == {0: highest, 1: highest // 2}
    # The report with the highest totals lowers none, and it is the latest.
    assert final.reported_at == T0 + 1 + highest
    assert isinstance(store, SqlStore)
    r = wave_open_reports.c
    query = sa.select(r.arm, r.at, r.opens).where(r.wave_id == wave)
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    assert all(row.opens > 0 for row in rows)
    logged: Counter[int] = Counter()
    for row in rows:
        logged[row.arm] += row.opens
    assert logged == Counter({0: highest, 1: highest // 2})
    # And through the public read: every logged increase, before the window ends.
    delays = store.open_delays(exp, T0 + 1 + highest, WINDOW, (0.0, 1.0, WINDOW))
    assert delays.count.sum() == highest + highest // 2


def test_status_change_wins_once(store_factory: StoreFactory) -> None:
    store = store_factory()
    exp = new_experiment(store, n_arms=N_THREADS)

    def work(thread_store: Store, index: int) -> int | None:
        try:
            record = thread_store.set_status(
                exp,
                ExperimentStatus.WINNER_DECLARED,
                T0 + 1,
                allowed_from=frozenset({ExperimentStatus.RUNNING}),
                winner_arm=index,
            )
        except ConflictError:
            return None
        return record.winner_arm

    winners = [w for w in in_threads(store_factory, work) if w is not None]
    assert len(winners) == 1
    assert store.get_experiment(exp).winner_arm == winners[0]


def test_retiring_never_leaves_no_active_arm(store_factory: StoreFactory) -> None:
    store = store_factory()
    exp = new_experiment(store, n_arms=N_THREADS)

    def work(thread_store: Store, index: int) -> bool:
        try:
            thread_store.retire_arm(exp, index, T0 + 1)
        except ConflictError:
            return False
        return True

    retired = in_threads(store_factory, work)
    assert sum(retired) == N_THREADS - 1
    assert sum(arm.active for arm in store.list_arms(exp)) == 1


def test_added_arms_get_distinct_positions(store_factory: StoreFactory) -> None:
    store = store_factory()
    exp = new_experiment(store)

    def work(thread_store: Store, index: int) -> int:
        return thread_store.add_arm(exp, f"new headline {index}", T0 + 1).arm

    positions = in_threads(store_factory, work)
    assert sorted(positions) == list(range(2, 2 + N_THREADS))
    assert [arm.arm for arm in store.list_arms(exp)] == list(range(2 + N_THREADS))


def test_no_decision_is_logged_after_completion_returns(store_factory: StoreFactory) -> None:
    """7 threads decide while one completes: every decision begun after that is refused."""
    store = store_factory()
    exp = new_experiment(store)
    completed = threading.Event()

    def work(thread_store: Store, index: int) -> tuple[int, int]:
        if index == 0:
            thread_store.set_status(
                exp,
                ExperimentStatus.COMPLETED,
                T0 + 1,
                allowed_from=frozenset({ExperimentStatus.RUNNING}),
            )
            completed.set()
            return 0, 0
        logged = refused_after = 0
        # Until 20 tries begun after the completion returned; the cap only ends a hang.
        for i in range(100_000):
            started_after = completed.is_set()
            try:
                thread_store.record_decision(exp, i % 2, 0.5, T0)
            except ConflictError:
                # Refused while the completion was committing is fine too.
                refused_after += started_after
                if refused_after == 20:
                    break
            else:
                assert not started_after, "a decision begun after completion was logged"
                logged += 1
        return logged, refused_after

    results = in_threads(store_factory, work)
    sends = sum(c.sends for c in store.arm_counts(exp, T0, WINDOW))
    assert sends == sum(logged for logged, _ in results)
    # Every deciding thread got to try after the completion (the test would be void otherwise).
    assert all(refused == 20 for _, refused in results[1:])
