"""The stopping rule sees the matured cohort only (headliner.service.state), on a SQLite store.

The decision posterior counts an open the moment it is reported but a
non-open only once the send's window has passed; these tests build campaigns
where that lean alone would make a winner, and check that nothing is declared
until the sends behind the opens have matured.
"""

from __future__ import annotations

import numpy as np
import pytest

from headliner.core.stopping import StoppingRule
from headliner.service.clock import ManualClock
from headliner.service.experiments import HAND_PICKED, ExperimentService, build_spec
from headliner.storage.base import ExperimentStatus
from headliner.storage.sql import SqlStore

WINDOW = 3600.0
REASON_PREFIX = "stopping rule on the matured cohort: P(best) "


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


def send(store: SqlStore, exp: str, arm: int, n: int, opens: int, now: float) -> None:
    """``n`` decisions for ``arm``; the first ``opens`` of them reported opened at once."""
    for i in range(n):
        decision, _ = store.record_decision(exp, arm, 0.5, now)
        if i < opens:
            store.record_open(exp, decision.id, now, WINDOW)


def create(service: ExperimentService, rule: StoppingRule | None) -> str:
    spec = build_spec(
        "x",
        ["A", "B"],
        attribution_window_seconds=WINDOW,
        stopping=rule,
        auto_stop=rule is not None,
    )
    return service.create(spec).id


def test_recent_opens_declare_nothing_until_their_sends_mature(store: SqlStore) -> None:
    service, clock = make_service(store)
    rule = StoppingRule(p_best_threshold=0.95, value_remaining_threshold=None)
    exp = create(service, rule)
    # Day one: 200 sends per headline, 40 opens each (20%); then the window passes.
    send(store, exp, 0, 200, 40, clock.now())
    send(store, exp, 1, 200, 40, clock.now())
    clock.advance(WINDOW + 1)
    # B's traffic grows, and its new opens arrive long before its non-opens do.
    send(store, exp, 1, 200, 80, clock.now())

    early = service.report(exp)

    # The decision posterior sees B at 120 / (120 + 160) against A at 40 / 200 ...
    assert early.arms[1].p_best is not None and early.arms[1].p_best > 0.999
    # ... the matured cohort sees 40 / 200 each: a tie, so nothing is declared.
    assert early.experiment.status is ExperimentStatus.RUNNING
    assert early.stopping_status.p_best < 0.95
    assert early.stopping_status.fewest_matured_sends == 200
    assert (early.stopping_status.winner_declared, early.stopping_status.reason) == (False, None)
    assert [a.observed_rate for a in early.arms] == [0.2, 0.2]
    assert [(a.matured_sends, a.matured_opens) for a in early.arms] == [(200, 40), (200, 40)]

    # Once B's new sends have matured (120 / 400 against 40 / 200), B is declared.
    clock.advance(WINDOW)
    late = service.report(exp)

    assert late.experiment.status is ExperimentStatus.WINNER_DECLARED
    assert late.experiment.winner_arm == 1
    assert late.stopping_status.champion == 1
    assert late.stopping_status.p_best >= 0.95
    assert late.stopping_status.winner_declared
    assert late.stopping_status.reason is not None
    assert late.stopping_status.reason.startswith(REASON_PREFIX)
    assert late.stopping_status.reason.endswith(" >= 0.95")


def test_the_minimum_counts_matured_sends_not_settled_ones(store: SqlStore) -> None:
    service, clock = make_service(store)
    # With two headlines the champion's P(best) is always >= 0.5: only the guard holds.
    rule = StoppingRule(
        p_best_threshold=0.5, value_remaining_threshold=None, min_matured_sends_per_arm=120
    )
    exp = create(service, rule)
    send(store, exp, 0, 100, 10, clock.now())
    send(store, exp, 1, 100, 10, clock.now())
    clock.advance(WINDOW + 1)
    send(store, exp, 0, 100, 30, clock.now())
    send(store, exp, 1, 100, 30, clock.now())

    state = service.state(exp, fresh=True)

    # 130 settled sends per headline (40 opens + 90 non-opens), but 100 matured.
    assert (state.opens + state.non_opens).tolist() == [130.0, 130.0]
    assert state.matured.tolist() == [100, 100]
    assert state.record.status is ExperimentStatus.RUNNING

    # Explicit outcomes are final at once: 20 more per headline pass the guard.
    for arm in (0, 1):
        for _ in range(20):
            decision, _ = store.record_decision(exp, arm, 0.5, clock.now())
            store.record_outcome(exp, decision.id, 0, clock.now())
    state = service.state(exp, fresh=True)

    assert state.matured.tolist() == [120, 120]
    assert state.record.status is ExperimentStatus.WINNER_DECLARED


@pytest.mark.parametrize("confirm", [True, False], ids=["confirm-declared", "overrule"])
def test_completing_by_hand_records_why(store: SqlStore, confirm: bool) -> None:
    service, clock = make_service(store)
    rule = StoppingRule(value_remaining_threshold=None, min_matured_sends_per_arm=10)
    exp = create(service, rule)
    for arm, opens in ((0, 2), (1, 30)):
        for i in range(50):
            decision, _ = store.record_decision(exp, arm, 0.5, clock.now())
            store.record_outcome(exp, decision.id, int(i < opens), clock.now())
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
    exp = create(service, None)
    send(store, exp, 0, 10, 5, clock.now())

    status = service.report(exp).stopping_status

    assert status.min_matured_sends_per_arm is None
    assert status.fewest_matured_sends == 0
    assert status.p_best == pytest.approx(0.5)  # the prior only: nothing matured
    assert (status.winner_declared, status.reason) == (False, None)
