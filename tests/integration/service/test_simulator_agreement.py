"""The campaign simulator and the service agree: the same campaign, run both ways.

A small wave campaign is replayed through the service's own decision code
(``ExperimentService`` on a SQLite store and a hand-driven clock): before each
wave the opens seen so far are reported as running totals, then the next wave
is asked for, exactly as a sending pipeline would. The recipients behave as
the simulator's do: each send opens within the window with its headline's true
rate, after a log-normal delay, and an open is seen at the first step after
it happened; one seen after the window is late.

The simulator runs the same campaign with the same settings. Their per-wave
splits are drawn from the same law, so the headlines' mean sends over the
campaign and the share of campaigns that declare a winner must agree within
the sampling error of the service's replications.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest
from numpy.typing import NDArray

from headliner.core.delay import DelayPrior
from headliner.core.stopping import StoppingRule
from headliner.service.clock import ManualClock
from headliner.service.experiments import ExperimentService, build_spec
from headliner.sim.campaign import Campaign, OpenDelay, simulate_campaign
from headliner.storage.sql import SqlStore

HOUR = 3600.0
RATES = (0.10, 0.15, 0.20)
N_WAVES = 8
WAVE = 300
WINDOW = 12 * HOUR
TRUTH = OpenDelay(median_seconds=2 * HOUR, p95_seconds=24 * HOUR)
PRIOR = DelayPrior()
RULE = StoppingRule(p_best_threshold=0.95, min_opens=30, check_interval_seconds=HOUR)
BURN_IN = 30
SERVICE_RUNS = 30
SIMULATED_RUNS = 2_000


def campaign() -> Campaign:
    return Campaign(
        RATES,
        n_sends=N_WAVES * WAVE,
        wave_size=WAVE,
        interval_seconds=HOUR,
        open_delay=TRUTH,
        attribution_window_seconds=WINDOW,
        burn_in_per_arm=BURN_IN,
        stopping=RULE,
        delay_prior=PRIOR,
    )


@pytest.fixture
def store(sqlite_url: str) -> Iterator[SqlStore]:
    opened = SqlStore(sqlite_url)
    yield opened
    opened.close()


def _seen_lags(n_opens: int, rng: np.random.Generator) -> NDArray[np.int64]:
    """When each eventual open is first seen: steps after its send (late ones dropped)."""
    prior = TRUTH.as_prior()
    lags = []
    for _ in range(n_opens):
        delay = math.inf
        while delay > WINDOW:
            delay = math.exp(prior.mu + prior.sigma * rng.standard_normal())
        lag = max(1, math.ceil(delay / HOUR - 1e-9))
        if lag * HOUR <= WINDOW:
            lags.append(lag)
    return np.array(lags, dtype=np.int64)


def run_through_the_service(store: SqlStore, seed: int) -> tuple[NDArray[np.int64], bool]:
    """One campaign through ExperimentService: sends per headline, and whether it declared."""
    clock = ManualClock()
    service = ExperimentService(
        store,
        clock,
        np.random.default_rng(seed),
        posterior_refresh_seconds=0.0,
        snapshot_interval_seconds=1e9,
        refresh_in_background=False,
    )
    spec = build_spec(
        f"run {seed}",
        ["A", "B", "C"],
        attribution_window_seconds=WINDOW,
        burn_in_per_arm=BURN_IN,
        stopping=RULE,
        delay_prior=PRIOR,
    )
    experiment = service.create(spec).id
    rng = np.random.default_rng(seed)
    waves: list[tuple[str, list[NDArray[np.int64]]]] = []
    sends = np.zeros(len(RATES), dtype=np.int64)
    for step in range(N_WAVES):
        for age, (wave_id, lags) in enumerate(reversed(waves), start=1):
            totals = {arm: int(np.sum(seen <= age)) for arm, seen in enumerate(lags)}
            service.record_wave_opens(experiment, wave_id, totals)
        wave = service.allocate(experiment, WAVE).wave
        split = [wave.arm_to_sends.get(arm, 0) for arm in range(len(RATES))]
        sends += split
        lags = [_seen_lags(int(rng.binomial(n, p)), rng) for n, p in zip(split, RATES, strict=True)]
        waves.append((wave.id, lags))
        clock.advance(HOUR)
        assert step < N_WAVES
    declared = service.state(experiment, fresh=True).record.winner_arm is not None
    return sends, declared


def test_the_service_and_the_simulator_split_waves_alike(store: SqlStore) -> None:
    served = [run_through_the_service(store, seed) for seed in range(SERVICE_RUNS)]
    served_sends = np.array([s for s, _ in served], dtype=np.float64)
    served_declared = np.array([d for _, d in served], dtype=np.float64)
    simulated = simulate_campaign(campaign(), SIMULATED_RUNS, seed=7)

    # Mean sends per headline: the service's mean of 30 runs against the
    # simulator's of 2,000. The difference's standard error is the
    # simulator's standard deviation times sqrt(1/30 + 1/2000); 4 of them
    # per headline fails a correct pair with probability below 2e-4.
    sd = simulated.sends.std(axis=0, ddof=1)
    error = sd * math.sqrt(1 / SERVICE_RUNS + 1 / SIMULATED_RUNS)
    difference = served_sends.mean(axis=0) - simulated.sends.mean(axis=0)
    assert np.all(np.abs(difference) <= 4 * error + 1e-9), (difference, error)
    # Both send the best headline most.
    assert int(np.argmax(served_sends.mean(axis=0))) == int(np.argmax(RATES))
    # The share of campaigns that declared a winner by the last wave: a
    # binomial proportion; 4 standard errors of the 30 service runs.
    p = float(simulated.decided.mean())
    assert abs(served_declared.mean() - p) <= 4 * math.sqrt(p * (1 - p) / SERVICE_RUNS) + 0.05
