"""Delay-aware counting in the service, on a SQLite store and a hand-driven clock.

The cases are the ones that misled before: opens arrive hours before the
non-opens do, so counting an open at once but a non-open only when its window
passes inflated every headline's estimate with its own recent traffic.
"""

from __future__ import annotations

import numpy as np
import pytest

from headliner.core.delay import DelayPrior
from headliner.core.stopping import StoppingRule
from headliner.service.clock import ManualClock
from headliner.service.experiments import HAND_PICKED, ExperimentService, build_spec
from headliner.storage.base import ExperimentStatus
from headliner.storage.sql import SqlStore

HOUR = 3600.0
WINDOW = 72 * HOUR
REASON_PREFIX = "stopping rule: P(best) "


def make_service(store: SqlStore) -> tuple[ExperimentService, ManualClock]:
    clock = ManualClock()
    service = ExperimentService(
        store,
        clock,
        np.random.default_rng(0),
        posterior_refresh_seconds=0.0,
        snapshot_interval_seconds=0.0,
        refresh_in_background=False,
    )
    return service, clock


def outcomes(store: SqlStore, exp: str, arm: int, n: int, opens: int, now: float) -> None:
    """``n`` decisions for ``arm`` with explicit outcomes, the first ``opens`` of them opened."""
    for i in range(n):
        decision, _ = store.record_decision(exp, arm, 0.5, now)
        store.record_outcome(exp, decision.id, int(i < opens), now)


def test_one_wave_with_early_opens_is_not_read_as_a_99_percent_open_rate(
    store: SqlStore,
) -> None:
    service, clock = make_service(store)
    exp = service.create(build_spec("spring", ["A", "B", "C"])).id
    wave = service.allocate(exp, 50_000)
    clock.advance(HOUR)
    service.record_wave_opens(exp, wave.wave.id, {"A": 812, "B": 795, "C": 780})

    report = service.report(exp)
    a = report.arms[0]

    # Counting the opens at once and the non-opens after 72 hours read A as
    # (1 + 812) / (2 + 812) = 99.88%. An hour after the send about 24% of the
    # eventual opens have arrived (the default curve), so A's 16,667 sends
    # weigh about 3,960 effective sends and its estimate is near 812 / 3,960.
    assert wave.wave.arm_to_sends == {0: 16_667, 1: 16_667, 2: 16_666}
    assert 3_000 < a.effective_sends < 5_000
    assert 0.15 < a.posterior_mean < 0.27
    low, high = a.credible_interval
    # An hour in, how many opens are still to come is mostly the prior's guess:
    # the interval is wide, and says so, but nowhere near 99.88%.
    assert low < 812 / a.effective_sends < high < 0.7
    assert (a.matured_sends, a.observed_rate) == (0, None)
    assert report.delay.opens_seen == 812 + 795 + 780
    assert report.delay.horizon_seconds == HOUR
    assert report.experiment.status is ExperimentStatus.RUNNING


def test_the_interval_never_reaches_below_the_opens_already_seen(store: SqlStore) -> None:
    # An hour into a first wave of 3,000 with 12-16% already opened, most of the curve
    # is the prior's guess and the moment-matched Beta spread over (0, 1); but the rate
    # cannot be below what the opens so far show with every unopened send taken as final.
    from scipy import special

    service, clock = make_service(store)
    exp = service.create(build_spec("x", ["A", "B", "C"])).id
    wave = service.allocate(exp, 3_000)
    clock.advance(HOUR)
    service.record_wave_opens(exp, wave.wave.id, {"A": 120, "B": 160, "C": 90})

    for arm, opens in zip(service.report(exp).arms, (120, 160, 90), strict=True):
        low, high = arm.credible_interval
        bound = special.betaincinv(1 + opens, 1 + 1_000 - opens, 0.025)
        assert low == pytest.approx(bound) or low > bound
        assert opens / 1_000 * 0.8 < low < arm.posterior_mean < high


def test_the_split_follows_the_evidence_of_extra_opens(store: SqlStore) -> None:
    service, clock = make_service(store)
    exp = service.create(build_spec("x", ["A", "B"], burn_in_per_arm=0)).id
    first = service.allocate(exp, 10_000)
    clock.advance(2 * HOUR)
    service.record_wave_opens(exp, first.wave.id, {"A": 700, "B": 750})

    state = service.state(exp, fresh=True)
    second = service.allocate(exp, 10_000)

    # Counting only opens, both read near 100% and P(best) stayed near a coin
    # flip (0.52); 50 more opens on 5,000 equal sends of the same age are
    # evidence, and the split now says so.
    assert first.wave.arm_to_sends == {0: 5_000, 1: 5_000}
    assert state.p_best[1] > 0.85
    assert second.wave.arm_to_sends[1] > 8_500
    assert second.reason == "thompson: split by each headline's chance of being chosen"


def test_a_wave_on_thin_evidence_is_split_evenly_and_says_why(store: SqlStore) -> None:
    service, clock = make_service(store)
    exp = service.create(build_spec("x", ["A", "B", "C"], burn_in_per_arm=100)).id
    decision = service.decide(exp).decision
    service.record_open(exp, decision.id)

    wave = service.allocate(exp, 50_000)

    assert wave.wave.arm_to_sends == {0: 16_667, 1: 16_667, 2: 16_666}
    assert wave.reason is not None
    assert wave.reason.startswith("burn-in: every headline has fewer than 100 effective sends")
    assert service.state(exp).status == "burn_in"


def test_a_headline_added_mid_run_explores_within_its_share(store: SqlStore) -> None:
    service, clock = make_service(store)
    spec = build_spec("x", ["A", "B", "C"], burn_in_per_arm=50, burn_in_share=0.1)
    exp = service.create(spec).id
    for arm in range(3):
        outcomes(store, exp, arm, 200, 40, clock.now())
    service.add_arm(exp, "D")

    decisions = [service.decide(exp).decision for _ in range(2_000)]

    # D gets 10% (not every send until its burn-in is done); its propensity says so.
    share = np.mean([d.arm == 3 for d in decisions])
    assert share == pytest.approx(0.1, abs=5 * np.sqrt(0.1 * 0.9 / 2_000))
    assert {round(d.propensity, 12) for d in decisions if d.arm == 3} == {0.1}
    state = service.state(exp)
    assert state.allocation[3] == pytest.approx(0.1)
    assert state.allocation_reason().startswith("burn-in: 1 headline(s) below 50")


def test_stopping_looks_once_per_interval_and_waits_for_enough_opens(store: SqlStore) -> None:
    service, clock = make_service(store)
    # The flat prior of the experiment (no pooling): this test is about when the rule looks.
    rule = StoppingRule(min_opens=100, check_interval_seconds=HOUR, rate_spread=None)
    exp = service.create(build_spec("x", ["A", "B"], stopping=rule, burn_in_per_arm=0)).id
    outcomes(store, exp, 0, 300, 30, clock.now())
    outcomes(store, exp, 1, 300, 60, clock.now())

    clock.advance(HOUR - 1)
    before = service.state(exp, fresh=True)  # a clear winner, but no look is due yet
    clock.advance(1)
    too_few = service.state(exp, fresh=True)  # the look: 90 opens, 100 needed
    outcomes(store, exp, 1, 100, 20, clock.now())
    clock.advance(HOUR / 2)
    between = service.state(exp, fresh=True)  # enough opens now, but the next look is at 2 h
    clock.advance(HOUR / 2)
    declared = service.state(exp, fresh=True)

    assert before.record.status is ExperimentStatus.RUNNING and before.verdict is None
    assert too_few.record.status is ExperimentStatus.RUNNING
    assert too_few.verdict is not None and too_few.verdict.winner is None
    assert too_few.verdict.p_best[1] > 0.99
    assert between.record.status is ExperimentStatus.RUNNING
    assert declared.record.status is ExperimentStatus.WINNER_DECLARED
    assert declared.record.winner_arm == 1
    reason = declared.record.winner_reason
    assert reason is not None and reason.startswith(REASON_PREFIX)


def test_no_declaration_during_burn_in(store: SqlStore) -> None:
    service, clock = make_service(store)
    rule = StoppingRule(min_opens=0, check_interval_seconds=0.0, rate_spread=None)
    exp = service.create(build_spec("x", ["A", "B"], stopping=rule, burn_in_per_arm=500)).id
    outcomes(store, exp, 0, 300, 10, clock.now())
    outcomes(store, exp, 1, 300, 90, clock.now())

    state = service.state(exp, fresh=True)

    assert state.status == "burn_in"
    assert state.verdict is not None and state.verdict.p_best[1] > 0.999
    assert state.record.status is ExperimentStatus.RUNNING


@pytest.mark.parametrize("confirm", [True, False], ids=["confirm-declared", "overrule"])
def test_completing_by_hand_records_why(store: SqlStore, confirm: bool) -> None:
    service, clock = make_service(store)
    rule = StoppingRule(min_opens=10, check_interval_seconds=0.0, rate_spread=None)
    exp = service.create(build_spec("x", ["A", "B"], stopping=rule, burn_in_per_arm=0)).id
    outcomes(store, exp, 0, 50, 2, clock.now())
    outcomes(store, exp, 1, 50, 30, clock.now())
    declared = service.state(exp, fresh=True).record
    assert (declared.winner_arm, declared.status) == (1, ExperimentStatus.WINNER_DECLARED)

    completed = service.complete(exp, winner=1 if confirm else 0)

    assert completed.status is ExperimentStatus.COMPLETED
    if confirm:  # the rule's reason stays with the winner it named
        assert completed.winner_reason == declared.winner_reason
        assert completed.winner_reason is not None
        assert completed.winner_reason.startswith(REASON_PREFIX)
    else:
        assert completed.winner_reason == HAND_PICKED
    assert service.report(exp).stopping_status.reason == completed.winner_reason


def test_report_without_automatic_stopping(store: SqlStore) -> None:
    service, clock = make_service(store)
    exp = service.create(build_spec("x", ["A", "B"], auto_stop=False)).id
    outcomes(store, exp, 0, 10, 5, clock.now())

    status = service.report(exp).stopping_status

    assert status.min_opens is None
    assert status.opens == 5
    assert status.in_burn_in
    assert (status.winner_declared, status.reason) == (False, None)


def test_the_experiments_own_prior_curve_is_used(store: SqlStore) -> None:
    service, clock = make_service(store)
    slow = DelayPrior(median_seconds=12 * HOUR, p95_seconds=60 * HOUR)
    exp = service.create(build_spec("x", ["A", "B"], delay_prior=slow)).id
    service.allocate(exp, 1_000)
    clock.advance(HOUR)

    report = service.report(exp)

    # No open was reported yet: the curve is the prior and the sends carry no evidence.
    assert report.delay.prior == slow
    assert report.delay.opens_seen == 0
    assert report.arms[0].effective_sends == pytest.approx(0.0)
    assert report.delay.median_seconds == pytest.approx(slow.median_seconds, rel=0.05)
