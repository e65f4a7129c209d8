"""Delay-aware counting on every store: new experiment fields, wave open reports,
``reported_at``, and the two grouped reads ``pending_sends`` and ``open_delays``.

Times are injected; ``NOW`` is the query time and sends are placed at known
ages before it. Every time used is an integer number of seconds (or half
seconds) away from ``T0``, so ``NOW - created_at`` is exact in floating point
and the ages that fall on a bin edge test the edge itself.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import sqlalchemy as sa

from headliner.core.errors import ConflictError, InvalidParameterError, NotFoundError
from headliner.storage.base import (
    ExperimentSpec,
    ExperimentStatus,
    OpenDelays,
    OpenResult,
    PendingSends,
    Store,
)
from headliner.storage.schema import wave_open_reports
from headliner.storage.sql import SqlStore

T0 = 1_700_000_000.0
WINDOW = 100.0
NOW = T0 + 1000.0
# Bins: [0,1) [1,2) [2,5) [5,10) [10,20) [20,50) [50,100)
EDGES = (0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0)
UNKNOWN = "0" * 32
PRIOR = {"median_seconds": 3600.0, "p95_seconds": 86400.0, "weight": 20.0}


def new_experiment(store: Store, n_arms: int = 3) -> str:
    spec = ExperimentSpec(
        name="delays",
        headlines=[f"H{i}" for i in range(n_arms)],
        attribution_window_seconds=WINDOW,
    )
    return store.create_experiment(spec, T0).id


def logged(store: Store, wave_id: str) -> list[tuple[int, float, int]]:
    """The wave's open reports as (arm, at, opens), in insertion order."""
    assert isinstance(store, SqlStore)
    r = wave_open_reports.c
    query = sa.select(r.arm, r.at, r.opens).where(r.wave_id == wave_id).order_by(r.id)
    with store.engine.connect() as conn:
        return [(row.arm, float(row.at), row.opens) for row in conn.execute(query)]


def pending_groups(pending: PendingSends) -> Counter[tuple[int, float, float]]:
    assert (pending.arm.dtype, pending.age.dtype, pending.count.dtype) == (
        np.int64,
        np.float64,
        np.float64,
    )
    return Counter(
        zip(pending.arm.tolist(), pending.age.tolist(), pending.count.tolist(), strict=True)
    )


def delay_groups(delays: OpenDelays) -> Counter[tuple[float, float, float]]:
    for array in (delays.delay, delays.observable, delays.count):
        assert array.dtype == np.float64
    return Counter(
        zip(delays.delay.tolist(), delays.observable.tolist(), delays.count.tolist(), strict=True)
    )


# --- experiment fields -------------------------------------------------------------------
def test_burn_in_share_and_delay_prior_round_trip(store: Store) -> None:
    spec = ExperimentSpec(
        name="delays", headlines=["A", "B"], burn_in_share=0.25, delay_prior=PRIOR
    )
    exp = store.create_experiment(spec, T0)
    assert (exp.burn_in_share, dict(exp.delay_prior)) == (0.25, PRIOR)
    assert store.get_experiment(exp.id) == exp
    assert store.list_experiments() == [exp]
    moved = store.set_status(
        exp.id,
        ExperimentStatus.COMPLETED,
        T0 + 1,
        allowed_from=frozenset({ExperimentStatus.RUNNING}),
    )
    assert (moved.burn_in_share, dict(moved.delay_prior)) == (0.25, PRIOR)


def test_experiment_fields_default_to_full_burn_in_and_no_prior(store: Store) -> None:
    exp = store.create_experiment(ExperimentSpec(name="plain", headlines=["A", "B"]), T0)
    stored = store.get_experiment(exp.id)
    assert (stored.burn_in_share, dict(stored.delay_prior)) == (1.0, {})
    assert isinstance(stored.burn_in_share, float)


def test_delay_prior_values_are_stored_as_floats(store: Store) -> None:
    spec = ExperimentSpec(name="ints", headlines=["A"], delay_prior={"median_seconds": 60})
    exp = store.create_experiment(spec, T0)
    stored = store.get_experiment(exp.id).delay_prior
    assert dict(stored) == {"median_seconds": 60.0}
    assert type(stored["median_seconds"]) is float


# --- wave open reports and reported_at ----------------------------------------------------
def test_new_wave_was_never_reported(store: Store) -> None:
    exp = new_experiment(store)
    wave = store.record_wave(exp, {0: 10}, T0)
    assert wave.reported_at is None
    assert store.get_wave(exp, wave.id).reported_at is None
    assert logged(store, wave.id) == []


def test_in_window_increases_are_logged_exactly(store: Store) -> None:
    exp = new_experiment(store)
    wave = store.record_wave(exp, {0: 100, 1: 50, 2: 10}, T0).id
    store.record_wave_opens(exp, wave, {0: 10, 1: 4, 2: 0}, T0 + 5, WINDOW)
    store.record_wave_opens(exp, wave, {0: 10, 1: 4}, T0 + 6, WINDOW)  # same: nothing logged
    with pytest.raises(ConflictError):  # lower: refused, nothing logged
        store.record_wave_opens(exp, wave, {0: 3, 1: 2}, T0 + 7, WINDOW)
    store.record_wave_opens(exp, wave, {0: 25, 1: 4}, T0 + 20, WINDOW)
    store.record_wave_opens(exp, wave, {1: 9}, T0 + WINDOW, WINDOW)  # at the end: counted
    assert logged(store, wave) == [
        (0, T0 + 5, 10),
        (1, T0 + 5, 4),
        (0, T0 + 20, 15),
        (1, T0 + WINDOW, 5),
    ]
    final = store.get_wave(exp, wave)
    assert dict(final.arm_to_opens) == {0: 25, 1: 9, 2: 0}
    # The log adds up to the counted opens, arm by arm.
    per_arm: Counter[int] = Counter()
    for arm, _, opens in logged(store, wave):
        per_arm[arm] += opens
    assert dict(per_arm) == {0: 25, 1: 9}


def test_late_increases_are_not_logged(store: Store) -> None:
    exp = new_experiment(store)
    wave = store.record_wave(exp, {0: 100}, T0).id
    store.record_wave_opens(exp, wave, {0: 10}, T0 + 5, WINDOW)
    late = store.record_wave_opens(exp, wave, {0: 30}, T0 + WINDOW + 1, WINDOW)
    assert (late.arm_to_opens[0], late.arm_to_late_opens[0]) == (10, 20)
    assert logged(store, wave) == [(0, T0 + 5, 10)]
    assert late.reported_at == T0 + 5


def test_a_refused_report_logs_nothing(store: Store) -> None:
    exp = new_experiment(store)
    wave = store.record_wave(exp, {0: 100, 1: 50}, T0).id
    with pytest.raises(ConflictError, match="opens reported for arm 1"):
        store.record_wave_opens(exp, wave, {0: 5, 1: 51}, T0 + 1, WINDOW)
    assert logged(store, wave) == []
    assert store.get_wave(exp, wave).reported_at is None


def test_reported_at_follows_the_reports_that_observe_the_totals(store: Store) -> None:
    exp = new_experiment(store)
    wave = store.record_wave(exp, {0: 100, 1: 50}, T0).id

    def report(totals: dict[int, int], at: float) -> float | None:
        return store.record_wave_opens(exp, wave, totals, T0 + at, WINDOW).reported_at

    # Nothing opened yet is an observation too.
    assert report({0: 0}, 2) == T0 + 2
    assert report({0: 10, 1: 4}, 5) == T0 + 5
    # The same totals: still these at T0 + 6.
    assert report({0: 10, 1: 4}, 6) == T0 + 6
    # An arm not named keeps its total and counts as observed then.
    assert report({0: 12}, 8) == T0 + 8
    # A total below the stored one is refused and moves nothing ...
    with pytest.raises(ConflictError):
        report({0: 11}, 9)
    # ... even when the report raises another arm: nothing of it is logged.
    with pytest.raises(ConflictError):
        report({0: 3, 1: 6}, 10)
    assert store.get_wave(exp, wave).reported_at == T0 + 8
    assert logged(store, wave)[-1] == (0, T0 + 8, 2)
    # A report stamped earlier than the last observation does not move it back.
    assert report({0: 12, 1: 6}, 7) == T0 + 8
    assert report({0: 12, 1: 6}, 11) == T0 + 11
    # At the end of the window it still counts; after it, it observes nothing counted.
    assert report({0: 12, 1: 6}, WINDOW) == T0 + WINDOW
    assert report({0: 13, 1: 6}, WINDOW + 1) == T0 + WINDOW
    assert store.get_wave(exp, wave).reported_at == T0 + WINDOW


# --- pending_sends -------------------------------------------------------------------------
def decide(store: Store, exp: str, arm: int, age: float) -> str:
    """A decision sent ``age`` seconds before NOW."""
    return store.record_decision(exp, arm, 0.5, NOW - age)[0].id


def test_pending_sends_groups_decisions_by_arm_and_age_bin(store: Store) -> None:
    exp = new_experiment(store)
    for age in (0.0, 0.5):  # bin 0
        decide(store, exp, 0, age)
    for age in (1.0, 1.5):  # bin 1: an age on an edge belongs to the bin above
        decide(store, exp, 0, age)
    decide(store, exp, 0, 99.5)  # the last bin
    decide(store, exp, 0, WINDOW)  # exactly the window old: matured, not pending
    decide(store, exp, 0, 150.0)  # matured
    for age in (10.0, 19.5):  # arm 1, bin [10, 20)
        decide(store, exp, 1, age)
    opened = decide(store, exp, 1, 7.0)
    assert store.record_open(exp, opened, NOW - 1, WINDOW) is OpenResult.COUNTED
    store.record_outcome(exp, decide(store, exp, 1, 8.0), 0, NOW - 1)
    store.record_outcome(exp, decide(store, exp, 2, 9.0), 1, NOW - 1)
    other = new_experiment(store)
    decide(store, other, 0, 3.0)

    pending = store.pending_sends(exp, NOW, WINDOW, EDGES)
    assert pending_groups(pending) == Counter(
        {(0, 0.25, 2.0): 1, (0, 1.25, 2.0): 1, (0, 99.5, 1.0): 1, (1, 14.75, 2.0): 1}
    )


def test_pending_sends_of_waves_are_aged_when_last_reported(store: Store) -> None:
    exp = new_experiment(store)
    reported = store.record_wave(exp, {0: 10, 2: 5}, NOW - 30).id
    store.record_wave_opens(exp, reported, {0: 4, 2: 5}, NOW - 20, WINDOW)  # arm 2: all opened
    store.record_wave(exp, {1: 7}, NOW - 5)  # never reported: age 0
    twice = store.record_wave(exp, {0: 3}, NOW - 60).id
    store.record_wave_opens(exp, twice, {0: 1}, NOW - 50, WINDOW)
    store.record_wave_opens(exp, twice, {0: 2}, NOW - 40, WINDOW)
    stale = store.record_wave(exp, {1: 9}, NOW - 90).id
    store.record_wave_opens(exp, stale, {1: 3}, NOW - 85, WINDOW)
    with pytest.raises(ConflictError):  # lower: refused, age stays 5
        store.record_wave_opens(exp, stale, {1: 1}, NOW - 80, WINDOW)
    store.record_wave(exp, {0: 50}, NOW - WINDOW)  # its window has just passed
    store.record_wave(exp, {0: 50}, NOW - 200)

    pending = store.pending_sends(exp, NOW, WINDOW, EDGES)
    assert pending_groups(pending) == Counter(
        {(0, 10.0, 6.0): 1, (1, 0.0, 7.0): 1, (0, 20.0, 1.0): 1, (1, 5.0, 6.0): 1}
    )


def test_pending_sends_matches_binning_in_numpy(store: Store) -> None:
    """Many ages on the service's kind of grid: the CASE agrees with searchsorted."""
    window = 72 * 3600.0
    edges = (0.0, *np.geomspace(60.0, window, 40).tolist())
    rng = np.random.default_rng(7)
    spec = ExperimentSpec(name="grid", headlines=["A", "B"], attribution_window_seconds=window)
    exp = store.create_experiment(spec, T0).id
    now = T0 + 10 * window
    ages = np.concatenate([rng.uniform(0, window, 150), np.array(edges[:-1])])
    arms = rng.integers(0, 2, len(ages))
    created = [now - float(age) for age in ages]
    for arm, at in zip(arms.tolist(), created, strict=True):
        store.record_decision(exp, arm, 0.5, at)

    actual = now - np.array(created)  # the ages the database computes
    bins = np.searchsorted(np.array(edges), actual, side="right") - 1
    expected: dict[tuple[int, int], list[float]] = {}
    for arm, b, age in zip(arms.tolist(), bins.tolist(), actual.tolist(), strict=True):
        expected.setdefault((arm, b), []).append(age)

    pending = store.pending_sends(exp, now, window, edges)
    assert len(pending) == len(expected)
    columns = (pending.arm.tolist(), pending.age.tolist(), pending.count.tolist())
    got = sorted(zip(*columns, strict=True))
    want = sorted((arm, float(np.mean(a)), float(len(a))) for (arm, _), a in expected.items())
    for (g_arm, g_age, g_count), (w_arm, w_age, w_count) in zip(got, want, strict=True):
        assert (g_arm, g_count) == (w_arm, w_count)
        assert g_age == pytest.approx(w_age, rel=1e-9, abs=1e-6)


# --- open_delays ---------------------------------------------------------------------------
def test_open_delays_bins_decisions_and_drops_what_could_not_be_seen(store: Store) -> None:
    exp = new_experiment(store)

    def opened(age: float, delay: float) -> None:
        decision = decide(store, exp, 0, age)
        result = store.record_open(exp, decision, NOW - age + delay, WINDOW)
        assert result is OpenResult.COUNTED

    opened(150.0, 30.0)  # matured: delay bin [20, 50) -> 50, observable the window
    opened(150.0, 0.0)  # a delay of 0 -> 1
    opened(WINDOW, WINDOW)  # exactly the window old, opened at its very end -> (100, 100)
    opened(30.0, 3.0)  # age bin [20, 50) -> observable 20; delay bin [2, 5) -> 5
    opened(30.0, 3.5)
    opened(30.0, 25.0)  # delay 50 > observable 20: dropped
    opened(10.0, 5.0)  # both on edges: delay 5 is in [5, 10) -> 10; age 10 -> 10: kept
    opened(10.0, 4.5)  # -> (5, 10)
    opened(10.0, 9.5)  # -> delay 10, but the age bin is [10, 20): kept as (10, 10)
    opened(9.5, 5.0)  # age bin [5, 10) -> 5; delay 10 > 5: dropped
    # Not counted opens, or no timing: left out.
    late = decide(store, exp, 0, 150.0)
    assert store.record_open(exp, late, NOW - 150 + WINDOW + 1, WINDOW) is OpenResult.LATE
    store.record_outcome(exp, decide(store, exp, 1, 20.0), 1, NOW - 10)
    store.record_outcome(exp, decide(store, exp, 1, 20.0), 0, NOW - 10)
    decide(store, exp, 2, 20.0)  # pending

    delays = store.open_delays(exp, NOW, WINDOW, EDGES)
    assert delay_groups(delays) == Counter(
        {
            (50.0, WINDOW, 1.0): 1,
            (1.0, WINDOW, 1.0): 1,
            (WINDOW, WINDOW, 1.0): 1,
            (5.0, 20.0, 2.0): 1,
            (10.0, 10.0, 2.0): 1,
            (5.0, 10.0, 1.0): 1,
        }
    )
    assert np.all(delays.delay <= delays.observable)


def test_open_delays_of_waves_are_the_logged_increases(store: Store) -> None:
    exp = new_experiment(store)
    matured = store.record_wave(exp, {0: 20}, NOW - 150)
    for at, total in ((10.0, 5), (40.0, 8), (WINDOW + 20, 9)):  # the last one is late
        store.record_wave_opens(exp, matured.id, {0: total}, matured.created_at + at, WINDOW)
    recent = store.record_wave(exp, {1: 20}, NOW - 30)
    for at, total in ((5.0, 2), (12.0, 3)):
        store.record_wave_opens(exp, recent.id, {1: total}, recent.created_at + at, WINDOW)
    mixed = store.record_wave(exp, {0: 20, 1: 20}, NOW - 20)
    store.record_wave_opens(exp, mixed.id, {0: 4, 1: 4}, mixed.created_at + 2, WINDOW)
    # Raises arm 0 but lowers arm 1: refused whole; reported_at stays at +2, nothing logged.
    with pytest.raises(ConflictError):
        store.record_wave_opens(exp, mixed.id, {0: 6, 1: 3}, mixed.created_at + 8, WINDOW)
    assert store.get_wave(exp, mixed.id).reported_at == mixed.created_at + 2
    # An increase reported before the last observation is seen by then.
    store.record_wave_opens(exp, mixed.id, {0: 6}, mixed.created_at + 1, WINDOW)
    store.record_wave(exp, {0: 20}, NOW - 10)  # never reported: nothing

    delays = store.open_delays(exp, NOW, WINDOW, EDGES)
    # The wave over its window shows the window, also for its early reports.
    assert delay_groups(delays) == Counter(
        {
            (10.0, WINDOW, 5.0): 1,
            (40.0, WINDOW, 3.0): 1,
            (5.0, 12.0, 2.0): 1,
            (12.0, 12.0, 1.0): 1,
            (2.0, 2.0, 4.0): 2,
            (1.0, 2.0, 2.0): 1,
        }
    )
    # Right truncation holds for every entry, the mixed report's included.
    assert np.all(delays.delay <= delays.observable)


def test_open_delays_and_pending_sends_of_a_new_experiment_are_empty(store: Store) -> None:
    exp = new_experiment(store)
    pending = store.pending_sends(exp, NOW, WINDOW, EDGES)
    delays = store.open_delays(exp, NOW, WINDOW, EDGES)
    assert len(pending) == len(delays) == 0
    assert pending.arm.dtype == np.int64
    assert delays.delay.dtype == np.float64


def test_delay_reads_of_an_unknown_experiment_are_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError, match="Experiment '0+' not found"):
        store.pending_sends(UNKNOWN, NOW, WINDOW, EDGES)
    with pytest.raises(NotFoundError, match="Experiment '0+' not found"):
        store.open_delays(UNKNOWN, NOW, WINDOW, EDGES)


def test_delay_reads_refuse_edges_that_do_not_span_the_window(store: Store) -> None:
    exp = new_experiment(store)
    with pytest.raises(InvalidParameterError, match="age_edges"):
        store.pending_sends(exp, NOW, WINDOW, EDGES[:-1])
    with pytest.raises(InvalidParameterError, match="age_edges"):
        store.open_delays(exp, NOW, WINDOW, (1.0, *EDGES[1:]))
