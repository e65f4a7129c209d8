"""Delay-aware counting on every store: the experiment's new fields, and the log of
wave open reports with ``reported_at``.

Times are injected.
"""

from __future__ import annotations

from collections import Counter

import pytest
import sqlalchemy as sa

from headliner.core.errors import ConflictError
from headliner.storage.base import ExperimentSpec, ExperimentStatus, Store
from headliner.storage.schema import wave_open_reports
from headliner.storage.sql import SqlStore

T0 = 1_700_000_000.0
WINDOW = 100.0
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
    store.record_wave_opens(exp, wave, {0: 3, 1: 2}, T0 + 7, WINDOW)  # lower: nothing
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
    # A stale retry (a total below the stored one) moves nothing ...
    assert report({0: 11}, 9) == T0 + 8
    # ... even when it raises another arm; that increase is still logged, at its time.
    assert report({0: 3, 1: 6}, 10) == T0 + 8
    assert logged(store, wave)[-1] == (1, T0 + 10, 2)
    # A report stamped earlier than the last observation does not move it back.
    assert report({0: 12, 1: 6}, 7) == T0 + 8
    assert report({0: 12, 1: 6}, 11) == T0 + 11
    # At the end of the window it still counts; after it, it observes nothing counted.
    assert report({0: 12, 1: 6}, WINDOW) == T0 + WINDOW
    assert report({0: 13, 1: 6}, WINDOW + 1) == T0 + WINDOW
    assert store.get_wave(exp, wave).reported_at == T0 + WINDOW
