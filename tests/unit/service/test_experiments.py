"""The domain layer on a SQLite store: decisions, waves, cache, stopping, reports."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

import headliner.core.allocation as allocation
import headliner.core.policies as policies
from headliner.core.allocation import guarded_choice, largest_remainder
from headliner.core.errors import ConflictError, InvalidParameterError, NotFoundError
from headliner.core.stopping import StoppingRule
from headliner.service.clock import ManualClock
from headliner.service.experiments import ExperimentService, build_spec
from headliner.service.state import stopping_from_mapping, stopping_to_mapping
from headliner.storage.base import ExperimentStatus, OpenResult, Snapshot
from headliner.storage.sql import SqlStore

HOUR = 3600.0


def make_service(
    store: SqlStore,
    *,
    seed: int = 0,
    refresh: float = 0.0,
    snapshot: float = 0.0,
    background: bool = False,
    report_cache: float = 0.0,
) -> tuple[ExperimentService, ManualClock]:
    clock = ManualClock()
    service = ExperimentService(
        store,
        clock,
        np.random.default_rng(seed),
        posterior_refresh_seconds=refresh,
        snapshot_interval_seconds=snapshot,
        refresh_in_background=background,
        report_cache_seconds=report_cache,
    )
    return service, clock


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": " "}, "'name' parameter"),
        ({"headlines": ["A"]}, "'headlines' parameter"),
        ({"headlines": "AB"}, "'headlines' parameter"),
        ({"headlines": ["A", "A"]}, "distinct"),
        ({"policy": "ucb1"}, "'policy' parameter"),
        ({"leader_probability": 0.5}, "'leader_probability' parameter"),
        ({"policy": "top_two", "leader_probability": 1.5}, "'leader_probability' parameter"),
        ({"alpha_prior": 0.0}, "'alpha_prior' parameter"),
        ({"attribution_window_seconds": 0.0}, "'attribution_window_seconds' parameter"),
        ({"burn_in_per_arm": -1}, "'burn_in_per_arm' parameter"),
        ({"burn_in_share": 1.5}, "'burn_in_share' parameter"),
        ({"floor": 0.6}, "'floor' parameter"),
        ({"winner_exploration": 1.5}, "'winner_exploration' parameter"),
        ({"kpi": "revenue"}, "'kpi' parameter of Experiment must be one of 'opens', 'clicks'"),
    ],
    ids=lambda v: str(v)[:40] if isinstance(v, dict) else None,
)
def test_build_spec_rejects_bad_settings(kwargs: dict[str, Any], match: str) -> None:
    arguments: dict[str, Any] = {"name": "x", "headlines": ["A", "B"], **kwargs}

    with pytest.raises(InvalidParameterError, match=match):
        build_spec(**arguments)


def test_build_spec_normalizes_and_stores_the_stopping_rule() -> None:
    spec = build_spec(" x ", ["A", "B"], policy="top-two", leader_probability=0.7)

    assert spec.name == "x"
    assert spec.policy == "top_two"
    assert spec.policy_settings == {"leader_probability": 0.7}
    assert stopping_from_mapping(spec.stopping) == StoppingRule()
    assert stopping_from_mapping(build_spec("x", ["A", "B"], auto_stop=False).stopping) is None


def test_stopping_mapping_round_trip() -> None:
    rule = StoppingRule(p_best_threshold=0.95, min_opens=10, check_interval_seconds=60.0)

    assert stopping_from_mapping(stopping_to_mapping(rule)) == rule
    assert stopping_from_mapping({}) == StoppingRule()
    assert stopping_from_mapping(stopping_to_mapping(None)) is None


@pytest.mark.parametrize(
    "retired", ["min_settled_sends_per_arm", "min_matured_sends_per_arm", "n_draws"]
)
def test_stopping_stored_with_retired_settings_still_loads(retired: str) -> None:
    stored = {"enabled": True, "p_best_threshold": 0.95, retired: 10}

    assert stopping_from_mapping(stored) == StoppingRule(p_best_threshold=0.95)


def test_decide_is_the_core_guarded_choice_with_the_same_generator(store: SqlStore) -> None:
    service, clock = make_service(store, seed=11)
    record = service.create(build_spec("x", ["A", "B", "C"], floor=0.05, burn_in_per_arm=0))
    for arm, opens, non_opens in ((0, 3, 10), (1, 6, 8), (2, 1, 12)):
        for reward in [1] * opens + [0] * non_opens:
            decision, _ = store.record_decision(record.id, arm, 1.0, clock.now())
            store.record_outcome(record.id, decision.id, reward, clock.now())
    state = service.state(record.id, fresh=True)
    twin = np.random.default_rng(11)
    # Explicit outcomes are final: the effective counts are the plain ones.
    np.testing.assert_allclose(state.effective_opens, [3.0, 6.0, 1.0])
    np.testing.assert_allclose(state.effective_non_opens, [10.0, 8.0, 12.0])

    made = [service.decide(record.id).decision for _ in range(200)]
    expected = [
        guarded_choice(
            state.policy.code,
            state.params(),
            state.effective_opens,
            state.effective_non_opens,
            0,
            np.full(1, -1, dtype=np.int64),
            state.short,
            1.0,
            0.05,
            twin,
        )
        for _ in range(200)
    ]

    assert [d.arm for d in made] == expected
    assert [d.propensity for d in made] == [float(state.allocation[a]) for a in expected]


def test_thompson_decisions_go_through_the_shared_rule_function(
    monkeypatch: pytest.MonkeyPatch, store: SqlStore
) -> None:
    calls: list[int] = []
    original = allocation.choose_arm

    def spy(policy: int, *args: Any) -> int:
        calls.append(policy)
        return original(policy, *args)

    monkeypatch.setattr(allocation, "choose_arm", spy)
    service, _ = make_service(store)
    record = service.create(build_spec("x", ["A", "B"], burn_in_per_arm=0))

    service.decide(record.id)

    assert calls == [policies.THOMPSON]


def test_burn_in_ends_on_evidence_not_on_sends(store: SqlStore) -> None:
    service, clock = make_service(store)
    spec = build_spec("x", ["A", "B", "C"], burn_in_per_arm=20, attribution_window_seconds=HOUR)
    record = service.create(spec)

    arms = [service.decide(record.id).decision for _ in range(90)]

    # 90 sends, none of them with an outcome yet: no evidence, so burn-in goes on
    # and every decision is an even split.
    assert service.state(record.id).status == "burn_in"
    assert {round(d.propensity, 12) for d in arms} == {round(1 / 3, 12)}
    clock.advance(HOUR)  # every window has passed: 90 full non-opens
    assert service.state(record.id).status == "running"


def test_cache_is_reused_until_it_is_older_than_the_refresh_interval(store: SqlStore) -> None:
    service, clock = make_service(store, refresh=10.0)
    record = service.create(build_spec("x", ["A", "B"]))
    first = service.state(record.id)
    store.record_decision(record.id, 0, 1.0, clock.now())

    clock.advance(5.0)
    same = service.state(record.id)
    clock.advance(5.0)
    fresh = service.state(record.id)

    assert same is first
    assert fresh is not first
    assert fresh.counts[0].sends == 1


def _wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10.0
    while not condition():
        assert time.monotonic() < deadline, "background refresh did not finish"
        time.sleep(0.005)


def test_a_stale_state_is_rebuilt_in_the_background_while_the_old_one_serves(
    store: SqlStore,
) -> None:
    service, clock = make_service(store, refresh=10.0, background=True)
    record = service.create(build_spec("x", ["A", "B"]))
    first = service.state(record.id)
    store.record_decision(record.id, 0, 1.0, clock.now())
    clock.advance(10.0)

    served = service.state(record.id)
    _wait_for(lambda: service.state(record.id) is not first)

    assert served is first  # the request did not wait for the rebuild
    assert service.state(record.id).counts[0].sends == 1


class _SlowStore(SqlStore):
    """Holds ``arm_counts`` until released, to interleave a rebuild with a change."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.hold = threading.Event()
        self.release = threading.Event()

    def arm_counts(self, experiment_id: str, now: float, window_seconds: float) -> Any:
        if self.hold.is_set():
            self.release.wait(10.0)
        return super().arm_counts(experiment_id, now, window_seconds)


@pytest.fixture
def slow_store(sqlite_url: str) -> Iterator[_SlowStore]:
    """A :class:`_SlowStore` on a fresh SQLite file, closed after the test."""
    opened = _SlowStore(sqlite_url)
    yield opened
    opened.release.set()  # never leave a background rebuild waiting
    opened.close()


def test_a_rebuild_begun_before_a_change_is_discarded(slow_store: _SlowStore) -> None:
    service, clock = make_service(slow_store, refresh=10.0, background=True)
    record = service.create(build_spec("x", ["A", "B"]))
    service.state(record.id)
    clock.advance(10.0)
    slow_store.hold.set()
    service.state(record.id)  # starts a rebuild that reads RUNNING, then waits
    slow_store.hold.clear()
    service.complete(record.id, winner=0)  # invalidates; the next read loads COMPLETED
    completed = service.state(record.id)
    slow_store.release.set()
    time.sleep(0.05)

    assert completed.record.status is ExperimentStatus.COMPLETED
    assert service.state(record.id).record.status is ExperimentStatus.COMPLETED
    with pytest.raises(ConflictError):
        service.decide(record.id)


def test_stopping_declares_the_winner_and_decisions_follow_it(store: SqlStore) -> None:
    service, clock = make_service(store)
    rule = StoppingRule(p_best_threshold=0.95, min_opens=30, check_interval_seconds=0.0)
    spec = build_spec("x", ["A", "B"], stopping=rule, winner_exploration=0.2, burn_in_per_arm=0)
    record = service.create(spec)
    for arm, rate in ((0, 0.1), (1, 0.6)):
        for i in range(50):
            decision, _ = store.record_decision(record.id, arm, 0.5, clock.now())
            store.record_outcome(record.id, decision.id, int(i < 50 * rate), clock.now())

    decisions = [service.decide(record.id).decision for _ in range(400)]
    experiment = store.get_experiment(record.id)

    assert experiment.status is ExperimentStatus.WINNER_DECLARED
    assert experiment.winner_arm == 1
    share = np.mean([d.arm == 1 for d in decisions])
    assert 0.8 < share < 1.0  # 0.9 expected: the winner plus half of the 20% exploration
    assert {round(d.propensity, 6) for d in decisions} == {0.9, 0.1}


def test_complete_archive_and_their_conflicts(store: SqlStore) -> None:
    service, _ = make_service(store)
    record = service.create(build_spec("x", ["A", "B"]))

    with pytest.raises(NotFoundError):
        service.complete(record.id, winner="Z")
    done = service.complete(record.id, winner="B")
    with pytest.raises(ConflictError, match="completed"):
        service.decide(record.id)
    with pytest.raises(ConflictError, match="completed"):
        service.allocate(record.id, 10)
    archived = service.archive(record.id)

    assert (done.status, done.winner_arm) == (ExperimentStatus.COMPLETED, 1)
    assert archived.status is ExperimentStatus.ARCHIVED
    assert service.list_experiments() == []
    assert [r.id for r in service.list_experiments(include_archived=True)] == [record.id]


def test_a_stale_process_cannot_decide_after_completion_elsewhere(store: SqlStore) -> None:
    worker, _ = make_service(store, refresh=60.0)  # reuses its state for a minute
    other, _ = make_service(store)
    record = worker.create(build_spec("x", ["A", "B"]))
    first = worker.decide(record.id, idempotency_key="k")  # caches the RUNNING state
    other.complete(record.id, winner=0)

    with pytest.raises(ConflictError, match="is completed: it makes no more decisions"):
        worker.decide(record.id)
    # The refusal dropped the stale state, so the worker now knows without waiting.
    assert worker.state(record.id).record.status is ExperimentStatus.COMPLETED
    # A retried request still gets its decision; a new one does not.
    replay = worker.decide(record.id, idempotency_key="k")
    assert (replay.decision, replay.replayed) == (first.decision, True)
    with pytest.raises(ConflictError, match="is completed"):
        worker.decide(record.id, idempotency_key="new")
    assert sum(c.sends for c in store.arm_counts(record.id, 0.0, 1.0)) == 1


def test_a_retired_headline_cannot_be_named_winner(store: SqlStore) -> None:
    service, _ = make_service(store)
    record = service.create(build_spec("x", ["A", "B", "C"]))
    service.retire_arm(record.id, 0)

    with pytest.raises(ConflictError, match="retired"):
        service.complete(record.id, winner=0)


def test_waves_split_evenly_in_burn_in_then_by_the_policy(store: SqlStore) -> None:
    service, clock = make_service(store)
    spec = build_spec("x", ["A", "B"], burn_in_per_arm=50, attribution_window_seconds=HOUR)
    record = service.create(spec)

    first = service.allocate(record.id, 151)
    service.record_wave_opens(record.id, first.wave.id, {"A": 5, "B": 40})
    clock.advance(HOUR)  # the window passes: 76 and 75 full sends of evidence
    second = service.allocate(record.id, 1000)

    assert first.wave.arm_to_sends == {0: 76, 1: 75}
    assert first.reason is not None and first.reason.startswith("burn-in: every headline")
    state = service.state(record.id)
    expected = largest_remainder(1000, state.allocation)
    assert second.wave.arm_to_sends == {0: int(expected[0]), 1: int(expected[1])}
    assert second.wave.arm_to_sends[1] > 990  # 40 / 75 opened against 5 / 76
    assert second.reason == "thompson: split by each headline's chance of being chosen"


def test_wave_opens_by_position_or_headline(store: SqlStore) -> None:
    service, clock = make_service(store)
    record = service.create(build_spec("x", ["A", "B"], attribution_window_seconds=HOUR))
    wave = service.allocate(record.id, 100).wave

    service.record_wave_opens(record.id, wave.id, {0: 5, "B": 7})
    clock.advance(2 * HOUR)
    late = service.record_wave_opens(record.id, wave.id, {"A": 6})

    assert dict(late.wave.arm_to_opens) == {0: 5, 1: 7}
    assert dict(late.wave.arm_to_late_opens) == {0: 1, 1: 0}
    assert late.headlines == {0: "A", 1: "B"}
    with pytest.raises(NotFoundError, match="'Z'"):
        service.record_wave_opens(record.id, wave.id, {"Z": 1})
    with pytest.raises(NotFoundError):
        service.record_wave_opens(record.id, wave.id, {9: 1})


def test_opens_and_outcomes_through_the_service(store: SqlStore) -> None:
    service, clock = make_service(store)
    record = service.create(build_spec("x", ["A", "B"], attribution_window_seconds=HOUR))
    first = service.decide(record.id).decision
    second = service.decide(record.id).decision

    assert service.record_open(record.id, first.id) is OpenResult.COUNTED
    assert service.record_open(record.id, first.id) is OpenResult.DUPLICATE
    assert service.record_outcome(record.id, second.id, 0) is True
    with pytest.raises(InvalidParameterError, match="'reward' parameter"):
        service.record_outcome(record.id, second.id, 2)
    assert service.get_decision(record.id, first.id).headline in ("A", "B")
    with pytest.raises(NotFoundError):
        service.get_decision("other", first.id)


def test_add_arm_rules(store: SqlStore) -> None:
    service, _ = make_service(store)
    record = service.create(build_spec("x", ["A", "B"], floor=0.4))

    with pytest.raises(InvalidParameterError, match="'headline' parameter"):
        service.add_arm(record.id, "")
    with pytest.raises(ConflictError, match="floor"):
        service.add_arm(record.id, "C")


def test_report_lines_and_snapshots(store: SqlStore) -> None:
    service, clock = make_service(store, snapshot=HOUR)
    spec = build_spec("x", ["A", "B", "C"], attribution_window_seconds=HOUR, burn_in_per_arm=0)
    record = service.create(spec)
    decisions = [service.decide(record.id).decision for _ in range(30)]
    for d in decisions[:10]:
        service.record_open(record.id, d.id)
    service.retire_arm(record.id, 2)
    clock.advance(2 * HOUR)

    report = service.report(record.id)

    assert sum(a.sends for a in report.arms) == 30
    assert sum(a.opens for a in report.arms) == 10
    assert all(a.pending == 0 and a.matured_sends == a.sends for a in report.arms)
    # Every window has passed: the effective sends are the sends.
    assert [a.effective_sends for a in report.arms] == pytest.approx([a.sends for a in report.arms])
    assert sum(a.matured_opens for a in report.arms) == 10
    retired = report.arms[2]
    assert (retired.active, retired.p_best, retired.allocation) == (False, None, None)
    live = [a for a in report.arms if a.active]
    assert sum(a.p_best or 0.0 for a in live) == pytest.approx(1.0)
    assert all((a.expected_loss or 0.0) >= 0.0 for a in live)
    assert all(
        a.credible_interval[0] < a.posterior_mean < a.credible_interval[1] for a in report.arms
    )
    assert report.champion in (0, 1)
    assert report.value_remaining >= 0.0
    assert len(report.snapshots) == 2  # at creation time and two hours later
    assert set(report.snapshots[-1].arm_to_p_best) == {0, 1}


def test_a_report_is_reused_until_it_is_older_than_the_cache_interval(store: SqlStore) -> None:
    service, clock = make_service(store, report_cache=10.0)
    record = service.create(build_spec("x", ["A", "B"]))
    first = service.report(record.id)
    store.record_decision(record.id, 0, 1.0, clock.now())

    clock.advance(5.0)
    same = service.report(record.id)
    other_limit = service.report(record.id, snapshot_limit=1)
    clock.advance(5.0)
    fresh = service.report(record.id)

    assert same is first
    assert sum(a.sends for a in other_limit.arms) == 1  # a different query is its own entry
    assert fresh is not first
    assert sum(a.sends for a in fresh.arms) == 1


def test_a_change_drops_the_cached_report_at_once(store: SqlStore) -> None:
    service, _ = make_service(store, report_cache=HOUR)
    record = service.create(build_spec("x", ["A", "B"]))
    assert service.report(record.id).status == "burn_in"

    service.complete(record.id, winner="B")

    assert service.report(record.id).status == "completed"


def test_a_report_built_across_a_change_is_not_kept(store: SqlStore) -> None:
    service, _ = make_service(store, report_cache=HOUR)
    record = service.create(build_spec("x", ["A", "B"]))
    list_snapshots = store.list_snapshots

    def changed_meanwhile(experiment_id: str, *, limit: int = 1000) -> list[Snapshot]:
        # Another request changes the experiment while this report is being built.
        service.complete(record.id, winner="A")
        return list_snapshots(experiment_id, limit=limit)

    store.list_snapshots = changed_meanwhile  # type: ignore[method-assign]
    built_across = service.report(record.id)
    store.list_snapshots = list_snapshots  # type: ignore[method-assign]
    after = service.report(record.id)

    assert after is not built_across
    assert after.status == "completed"


def test_reports_do_not_take_draws_from_the_decisions(store: SqlStore) -> None:
    def decisions(with_reports: bool) -> list[int]:
        service, _ = make_service(store, seed=5)
        record = service.create(build_spec("x", ["A", "B", "C"]))
        made = []
        for _ in range(50):
            made.append(service.decide(record.id).decision.arm)
            if with_reports:
                service.report(record.id)
        return made

    assert decisions(with_reports=True) == decisions(with_reports=False)


def test_reported_wave_opens_reach_the_stopping_rule_at_the_next_wave(store: SqlStore) -> None:
    # The service's own refresh settings: a state older than a second is rebuilt on use.
    service, clock = make_service(store, refresh=1.0)
    spec = build_spec(
        "x",
        ["A", "B"],
        burn_in_per_arm=10,
        attribution_window_seconds=6 * HOUR,
        stopping=StoppingRule(min_opens=10, check_interval_seconds=HOUR),
    )
    record = service.create(spec)
    wave = service.allocate(record.id, 4000)
    clock.advance(2 * HOUR)
    # A clear winner; the rule's look of the hour is due at the next refresh.
    service.record_wave_opens(record.id, wave.wave.id, {"A": 200, "B": 600})
    service.allocate(record.id, 1000)

    # Declared by the look that came with this wave, on the opens just reported; not
    # taken (on the previous hour's data) by a refresh made while reporting them.
    assert store.get_experiment(record.id).winner_arm == 1
