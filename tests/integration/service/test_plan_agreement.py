"""A plan's figures agree with the same campaign replayed through the service's decision code.

The plan (:func:`headliner.sim.plan.plan_campaign`, the compiled simulator)
and an independent replay: every wave asked of ``ExperimentService`` (on a
SQLite store and a hand-driven clock) with the settings the plan says the
service would run (``PlanSpec.experiment_settings`` through the API's own
request model), every send's open drawn on its own with its headline's rate
and its own log-normal delay, and every open reported as a running total at
the first wave after it happened (one later than the window is late). P(the
declared headline is the best) and the median hours to a declaration must
agree within their Monte Carlo error.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest
from numpy.typing import NDArray

from headliner.service.clock import ManualClock
from headliner.service.experiments import ExperimentService
from headliner.service.schemas import ExperimentCreate
from headliner.sim.plan import PlanSpec, parse_plan, plan_campaign
from headliner.storage.sql import SqlStore

HOUR = 3600.0
# Three close headlines, 10,000 sends: the pick is right in most campaigns but
# not all, and most declare within the ten waves, so both figures are informative.
PLAN = parse_plan(
    {
        "name": "agreement",
        "headlines": ["A", "B", "C"],
        "open_rates": [0.10, 0.13, 0.16],
        "list_size": 10_000,
        "waves": {"count": 10, "every": "1h"},
        "open_delay": {"median": "1h", "p95": "6h"},
        "attribution_window": "12h",
        "burn_in_per_arm": 30,
        "stopping": {"p_best_threshold": 0.95, "min_opens": 30, "check_interval": "1h"},
        "seed": 7,
    }
)
SERVICE_RUNS = 60
PLANNED_RUNS = 2_000
BEST = 2


@pytest.fixture
def store(sqlite_url: str) -> Iterator[SqlStore]:
    opened = SqlStore(sqlite_url)
    yield opened
    opened.close()


def _seen_at(n_opens: int, rng: np.random.Generator) -> NDArray[np.int64]:
    """The wave after each open's own delay (from its send), late ones dropped."""
    assert PLAN.open_delay is not None
    median, p95 = PLAN.open_delay.median, PLAN.open_delay.p95
    mu, sigma = math.log(median), math.log(p95 / median) / 1.6448536269514722
    window = PLAN.attribution_window
    lags = []
    for _ in range(n_opens):
        delay = math.inf
        while delay > window:  # an open of the window's rate happens inside it
            delay = math.exp(mu + sigma * rng.standard_normal())
        lag = max(1, math.ceil(delay / HOUR - 1e-9))
        if lag * HOUR <= window:
            lags.append(lag)
    return np.array(lags, dtype=np.int64)


def replay(store: SqlStore, spec: PlanSpec, seed: int) -> tuple[int, float]:
    """One campaign through ExperimentService: the declared headline (-1) and its hour."""
    clock = ManualClock()
    # The service's own refresh settings: reporting a wave's opens reads no
    # cached state, so the hour's look of the stopping rule is taken by the next
    # wave's fresh refresh, with every open reported so far, as the plan assumes.
    service = ExperimentService(
        store,
        clock,
        np.random.default_rng(seed),
        posterior_refresh_seconds=1.0,
        refresh_in_background=False,
    )
    settings = {**spec.experiment_settings(), "name": f"replay {seed}"}
    experiment = service.create(ExperimentCreate.model_validate(settings).to_spec()).id
    rng = np.random.default_rng(10_000 + seed)
    rates = spec.true_rates
    assert spec.waves is not None and spec.waves.count is not None
    wave_size = math.ceil(spec.n_sends / spec.waves.count)
    waves: list[tuple[str, list[NDArray[np.int64]]]] = []
    sent = 0
    for step in range(spec.waves.count):
        for age, (wave_id, seen) in enumerate(reversed(waves), start=1):
            service.record_wave_opens(
                experiment, wave_id, {arm: int(np.sum(s <= age)) for arm, s in enumerate(seen)}
            )
        wave = service.allocate(experiment, min(wave_size, spec.n_sends - sent)).wave
        sent += sum(wave.arm_to_sends.values())
        winner = store.get_experiment(experiment).winner_arm
        if winner is not None:
            # Declared by the check before this wave's split, as the simulator counts it.
            return winner, step * spec.waves.every / HOUR
        split = [wave.arm_to_sends.get(arm, 0) for arm in range(len(rates))]
        opens = [rng.binomial(n, p) for n, p in zip(split, rates, strict=True)]
        waves.append((wave.id, [_seen_at(int(k), rng) for k in opens]))
        clock.advance(spec.waves.every)
    return -1, math.inf


def test_the_plan_and_a_replay_through_the_service_agree(store: SqlStore) -> None:
    planned = plan_campaign(PLAN, replications=PLANNED_RUNS, recommend=False)
    document = planned.to_document()
    replays = [replay(store, PLAN, seed) for seed in range(SERVICE_RUNS)]
    declared = np.array([arm for arm, _ in replays])
    hours = np.array([h for _, h in replays])

    # P(correct pick): two binomial shares, 60 replays and 2,000 planned
    # campaigns. Their difference has standard error sqrt(p (1 - p) (1/60 +
    # 1/2,000)); 4 of them fail a correct pair with probability below 1e-4.
    p = document["p_best"]
    served = float(np.mean(declared == BEST))
    error = math.sqrt(p * (1 - p) * (1 / SERVICE_RUNS + 1 / PLANNED_RUNS))
    assert 0.5 < p < 0.98, "the plan must leave the pick uncertain for the check to bite"
    assert abs(served - p) <= 4 * error, (served, p, error)

    # Median hours to a declaration (never: infinite). The replays' median sits
    # at level 1/2 of the planned distribution F, give or take the binomial
    # error of its rank, sqrt(1/4 / 60) (plus the plan's own, sqrt(1/4 / 2,000)).
    # Hours are whole waves, so F jumps: the levels F(m-) .. F(m) of the
    # replays' median m must reach within 4 of those errors of 1/2.
    median = float(np.quantile(hours, 0.5, method="inverted_cdf"))
    assert math.isfinite(median), "most replays declare"
    planned_hours = np.where(planned.result.decided, planned.result.decision_hours, np.inf)
    below, up_to = np.mean(planned_hours < median), np.mean(planned_hours <= median)
    spread = 4 * math.sqrt(0.25 / SERVICE_RUNS + 0.25 / PLANNED_RUNS)
    assert below - spread <= 0.5 <= up_to + spread, (median, below, up_to, spread)
    print(
        f"P(best) plan {p:.3f} service {served:.3f}; median hours plan "
        f"{document['hours_to_decision']['median']} service {median}"
    )
