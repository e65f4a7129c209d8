"""The forecast of the declaration: the stopping rule run forward at the current volume."""

from __future__ import annotations

import numpy as np
import pytest

from headliner.service.clock import ManualClock
from headliner.service.experiments import ExperimentService, build_spec
from headliner.service.forecast import (
    HORIZON_SECONDS,
    check_offsets,
    forecast_decision,
)
from headliner.service.state import ExperimentState
from headliner.sim.engine import kernels
from headliner.storage.sql import SqlStore

HOUR = 3600.0


def settled_state(
    store: SqlStore, opens: tuple[int, int], sends: int = 1000, **settings: object
) -> tuple[ExperimentService, ExperimentState, ManualClock]:
    """Two headlines with ``sends`` each in one wave, its 1-hour window over: final counts."""
    clock = ManualClock()
    service = ExperimentService(
        store, clock, np.random.default_rng(0), posterior_refresh_seconds=0.0
    )
    spec = build_spec(
        "forecast",
        ["A", "B"],
        attribution_window_seconds=HOUR,
        burn_in_per_arm=10,
        **settings,  # type: ignore[arg-type]
    )
    record = service.create(spec)
    wave = store.record_wave(record.id, {0: sends, 1: sends}, clock.now())
    clock.advance(0.5 * HOUR)
    store.record_wave_opens(record.id, wave.id, dict(enumerate(opens)), clock.now(), HOUR)
    clock.advance(HOUR)
    return service, service.state(record.id, fresh=True), clock


def test_curve_on_is_the_compiled_curve_at_every_age(store: SqlStore) -> None:
    # On an estimated curve (the one the forecast reads): core.delay.curve_on, the numpy
    # form, equals the compiled curve_at that decisions use.
    from headliner.core.delay import curve_on

    _, state, _ = settled_state(store, (100, 115))
    delay = state.evidence.delay
    ages = np.concatenate([[-5.0, 0.0, 1.0], delay.grid, np.geomspace(2.0, 2 * HOUR, 50)])
    expected = [kernels.curve_at(delay.grid, delay.cdf, float(age)) for age in ages]
    np.testing.assert_allclose(
        curve_on(delay.grid, delay.cdf, ages), expected, rtol=1e-12, atol=1e-15
    )


def test_check_offsets_follow_the_rules_checks_and_thin_out() -> None:
    offsets = check_offsets(HOUR, 1.5 * HOUR, HORIZON_SECONDS)
    steps = np.diff(offsets) / HOUR
    assert offsets[0] == 0.5 * HOUR  # the next check: 2 h after the start, 1.5 h in
    assert np.all(np.mod(offsets - offsets[0], HOUR) == 0.0)  # every one a check
    assert steps[:11].tolist() == [1.0] * 11
    assert np.all(np.diff(steps[:-1]) >= 0) and steps[-2] > 1.0  # the last is cut to fit
    assert offsets[-1] <= HORIZON_SECONDS < offsets[-1] + HOUR
    assert len(offsets) < 60  # a few dozen looks, not 336
    # Looking at every refresh, or more often than hourly: hourly.
    assert check_offsets(0.0, 123.0, 10 * HOUR).tolist() == [HOUR * k for k in range(1, 11)]
    assert check_offsets(600.0, 0.0, 3 * HOUR)[:2].tolist() == [HOUR, 2 * HOUR]


def test_more_volume_means_an_earlier_declaration(store: SqlStore) -> None:
    _, state, clock = settled_state(store, (100, 115))
    assert state.record.status.value == "running"
    slow = forecast_decision(state, 1_000.0, now=clock.now(), seed=1)
    fast = forecast_decision(state, 20_000.0, now=clock.now(), seed=1)

    assert slow is not None and fast is not None
    assert slow.seconds is not None and fast.seconds is not None
    # 15% apart: 2 x 1,000 more sends settle it with high probability (per headline, the
    # difference's standard error falls from 0.014 to 0.006), so most futures declare.
    assert fast.seconds < slow.seconds
    assert fast.declared_share >= slow.declared_share >= 0.5
    assert fast.seconds >= 0.5 * HOUR  # the next check is the earliest
    # The same seed, the same futures.
    assert forecast_decision(state, 1_000.0, now=clock.now(), seed=1) == slow


def test_equal_headlines_at_a_trickle_are_not_decided_within_the_horizon(
    store: SqlStore,
) -> None:
    _, state, clock = settled_state(store, (100, 100))
    forecast = forecast_decision(state, 10.0, now=clock.now(), seed=2)

    # 10 sends an hour add ~3,400 sends in 14 days to 2,000: the posterior of the
    # difference stays near its current ±0.013, so P(best) rarely reaches 99% and
    # value remaining below 1% needs far more.
    assert forecast is not None
    assert forecast.seconds is None
    assert forecast.declared_share < 0.5
    assert forecast.horizon_seconds == HORIZON_SECONDS


@pytest.mark.parametrize("case", ["no volume", "stopping off", "completed"])
def test_nothing_to_forecast(store: SqlStore, case: str) -> None:
    settings = {"auto_stop": False} if case == "stopping off" else {}
    service, state, clock = settled_state(store, (100, 115), **settings)
    volume = 0.0 if case == "no volume" else 1_000.0
    if case == "completed":
        service.complete(state.record.id, winner=1)
        state = service.state(state.record.id, fresh=True)

    assert forecast_decision(state, volume, now=clock.now()) is None
