"""The Store contract, run over every database (sqlite, postgresql).

One suite, every database (as MABWiser runs one suite over every policy): the
store passes when it keeps every promise of :mod:`headliner.storage.base` on each. The
delayed-feedback counting rule has its own module, test_store_counting.py, and
races have test_store_concurrency.py.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from headliner.core.errors import ConflictError, InvalidParameterError, NotFoundError
from headliner.storage.base import (
    ArmRecord,
    EventCounts,
    EventRecord,
    ExperimentRecord,
    ExperimentSpec,
    ExperimentStatus,
    KeyScope,
    OpenResult,
    Snapshot,
    Store,
)

HEADLINES = ["48 Hours Only: Save 25%", "Your Exclusive Spring Offer Is Here", "Ending Tonight"]
WINDOW = 60.0
T0 = 1_700_000_000.0
RUNNING = frozenset({ExperimentStatus.RUNNING})
UNKNOWN = "0" * 32


def make_experiment(
    store: Store, now: float = T0, headlines: list[str] | None = None
) -> ExperimentRecord:
    spec = ExperimentSpec(name="spring", headlines=HEADLINES if headlines is None else headlines)
    return store.create_experiment(spec, now)


# --- experiments -----------------------------------------------------------------------
def test_create_experiment_stores_the_spec_as_running(store: Store) -> None:
    spec = ExperimentSpec(
        name="spring",
        headlines=HEADLINES,
        policy="top_two",
        policy_settings={"beta": 0.5},
        alpha_prior=2.0,
        beta_prior=3.0,
        attribution_window_seconds=3600.0,
        burn_in_per_arm=100,
        floor=0.01,
        winner_exploration=0.05,
        stopping={"p_best_threshold": 0.95, "min_settled_per_arm": 200},
    )
    exp = store.create_experiment(spec, T0)

    assert exp.status is ExperimentStatus.RUNNING
    assert (exp.name, exp.policy, dict(exp.policy_settings)) == ("spring", "top_two", {"beta": 0.5})
    assert (exp.alpha_prior, exp.beta_prior, exp.attribution_window_seconds) == (2.0, 3.0, 3600.0)
    assert (exp.burn_in_per_arm, exp.floor, exp.winner_exploration) == (100, 0.01, 0.05)
    assert dict(exp.stopping) == {"p_best_threshold": 0.95, "min_settled_per_arm": 200}
    assert (exp.winner_arm, exp.created_at, exp.completed_at) == (None, T0, None)
    assert exp.winner_reason is None
    assert store.get_experiment(exp.id) == exp
    assert store.list_arms(exp.id) == [
        ArmRecord(exp.id, i, headline, T0, None) for i, headline in enumerate(HEADLINES)
    ]


def test_create_experiment_refuses_repeated_headlines(store: Store) -> None:
    with pytest.raises(ConflictError, match="distinct"):
        make_experiment(store, headlines=["A", "B", "A"])
    assert store.list_experiments(include_archived=True) == []


@pytest.mark.parametrize(
    "method",
    ["get_experiment", "list_arms", "list_snapshots"],
    ids=["get_experiment", "list_arms", "list_snapshots"],
)
def test_unknown_experiment_is_not_found(store: Store, method: str) -> None:
    with pytest.raises(NotFoundError, match="Experiment '0+' not found"):
        getattr(store, method)(UNKNOWN)


def test_list_experiments_newest_first_without_archived(store: Store) -> None:
    first = make_experiment(store, now=T0)
    second = make_experiment(store, now=T0 + 1)
    third = make_experiment(store, now=T0 + 1)  # same time as second: creation order decides
    store.set_status(
        first.id, ExperimentStatus.ARCHIVED, T0 + 2, allowed_from=frozenset(ExperimentStatus)
    )

    assert [e.id for e in store.list_experiments()] == [third.id, second.id]
    assert [e.id for e in store.list_experiments(include_archived=True)] == [
        third.id,
        second.id,
        first.id,
    ]


def test_set_status_moves_and_stores_winner(store: Store) -> None:
    exp = make_experiment(store)
    declared = store.set_status(
        exp.id,
        ExperimentStatus.WINNER_DECLARED,
        T0 + 5,
        allowed_from=RUNNING,
        winner_arm=2,
        winner_reason="P(best) 0.9912 >= 0.99",
    )
    assert (declared.status, declared.winner_arm, declared.completed_at) == (
        ExperimentStatus.WINNER_DECLARED,
        2,
        None,
    )
    assert declared.winner_reason == "P(best) 0.9912 >= 0.99"
    # No winner_arm or reason given: the stored ones stay; COMPLETED sets completed_at.
    completed = store.set_status(
        exp.id,
        ExperimentStatus.COMPLETED,
        T0 + 9,
        allowed_from=frozenset({ExperimentStatus.RUNNING, ExperimentStatus.WINNER_DECLARED}),
    )
    assert (completed.status, completed.winner_arm, completed.completed_at) == (
        ExperimentStatus.COMPLETED,
        2,
        T0 + 9,
    )
    assert completed.winner_reason == "P(best) 0.9912 >= 0.99"
    assert store.get_experiment(exp.id) == completed


def test_naming_a_winner_records_when_and_a_confirmation_keeps_it(store: Store) -> None:
    exp = make_experiment(store)
    assert exp.winner_declared_at is None
    live = frozenset({ExperimentStatus.RUNNING, ExperimentStatus.WINNER_DECLARED})
    declared = store.set_status(
        exp.id, ExperimentStatus.WINNER_DECLARED, T0 + 5, allowed_from=RUNNING, winner_arm=1
    )
    confirmed = store.set_status(
        exp.id, ExperimentStatus.COMPLETED, T0 + 9, allowed_from=live, winner_arm=1
    )
    assert (declared.winner_declared_at, confirmed.winner_declared_at) == (T0 + 5, T0 + 5)
    assert store.get_experiment(exp.id).winner_declared_at == T0 + 5

    other = make_experiment(store)
    store.set_status(
        other.id, ExperimentStatus.WINNER_DECLARED, T0 + 5, allowed_from=RUNNING, winner_arm=1
    )
    overruled = store.set_status(
        other.id, ExperimentStatus.COMPLETED, T0 + 9, allowed_from=live, winner_arm=2
    )
    assert (overruled.winner_arm, overruled.winner_declared_at) == (2, T0 + 9)


def test_set_status_conflict_names_current_status(store: Store) -> None:
    exp = make_experiment(store)
    store.set_status(exp.id, ExperimentStatus.COMPLETED, T0 + 1, allowed_from=RUNNING)
    with pytest.raises(ConflictError, match="is completed; cannot move it to winner_declared"):
        store.set_status(
            exp.id, ExperimentStatus.WINNER_DECLARED, T0 + 2, allowed_from=RUNNING, winner_arm=0
        )
    assert store.get_experiment(exp.id).winner_arm is None


def test_set_status_unknown_experiment_or_arm(store: Store) -> None:
    with pytest.raises(NotFoundError, match="Experiment"):
        store.set_status(UNKNOWN, ExperimentStatus.COMPLETED, T0, allowed_from=RUNNING)
    exp = make_experiment(store)
    with pytest.raises(NotFoundError, match="Arm 7 not found"):
        store.set_status(exp.id, ExperimentStatus.COMPLETED, T0, allowed_from=RUNNING, winner_arm=7)
    assert store.get_experiment(exp.id).status is ExperimentStatus.RUNNING


# --- arms ------------------------------------------------------------------------------
def test_add_arm_appends_next_position(store: Store) -> None:
    exp = make_experiment(store, headlines=["A", "B"])
    added = store.add_arm(exp.id, "C", T0 + 3)
    assert added == ArmRecord(exp.id, 2, "C", T0 + 3, None)
    assert store.list_arms(exp.id)[-1] == added
    with pytest.raises(ConflictError, match="Headline 'A' already exists"):
        store.add_arm(exp.id, "A", T0 + 4)
    with pytest.raises(NotFoundError, match="Experiment"):
        store.add_arm(UNKNOWN, "D", T0)


def test_retire_arm_keeps_data_and_first_time(store: Store) -> None:
    exp = make_experiment(store, headlines=["A", "B", "C"])
    store.record_decision(exp.id, 1, 0.5, T0)
    retired = store.retire_arm(exp.id, 1, T0 + 5)
    assert (retired.arm, retired.retired_at, retired.active) == (1, T0 + 5, False)
    assert store.retire_arm(exp.id, 1, T0 + 9).retired_at == T0 + 5
    assert [a.active for a in store.list_arms(exp.id)] == [True, False, True]
    assert store.arm_counts(exp.id, T0 + 10, WINDOW)[1].sends == 1
    # Positions are stable for life: a new headline takes the next one.
    assert store.add_arm(exp.id, "D", T0 + 11).arm == 3


def test_retire_last_active_arm_conflicts(store: Store) -> None:
    exp = make_experiment(store, headlines=["A", "B"])
    store.retire_arm(exp.id, 0, T0 + 1)
    with pytest.raises(ConflictError, match="last active arm"):
        store.retire_arm(exp.id, 1, T0 + 2)
    assert store.list_arms(exp.id)[1].active


def test_retire_unknown_arm_or_experiment(store: Store) -> None:
    exp = make_experiment(store)
    with pytest.raises(NotFoundError, match="Arm 9 not found"):
        store.retire_arm(exp.id, 9, T0)
    with pytest.raises(NotFoundError, match="Experiment"):
        store.retire_arm(UNKNOWN, 0, T0)


# --- decisions -------------------------------------------------------------------------
def test_record_decision_is_logged(store: Store) -> None:
    exp = make_experiment(store)
    decision, created = store.record_decision(
        exp.id, 2, 0.25, T0 + 1, recipient_id="r-1", idempotency_key="k-1"
    )
    assert created
    assert (decision.experiment_id, decision.arm, decision.propensity) == (exp.id, 2, 0.25)
    assert (decision.recipient_id, decision.idempotency_key) == ("r-1", "k-1")
    assert (decision.created_at, decision.outcome, decision.opened_at, decision.late) == (
        T0 + 1,
        None,
        None,
        False,
    )
    assert store.get_decision(decision.id) == decision


def test_idempotency_key_replays_the_stored_decision(store: Store) -> None:
    exp = make_experiment(store)
    other = make_experiment(store)
    first, created = store.record_decision(exp.id, 0, 0.4, T0, idempotency_key="key")
    replay, replay_created = store.record_decision(exp.id, 1, 0.9, T0 + 5, idempotency_key="key")
    assert (created, replay_created) == (True, False)
    assert replay == first
    # Keys are per experiment, and decisions without a key never collide.
    assert store.record_decision(other.id, 0, 0.4, T0, idempotency_key="key")[1]
    assert store.record_decision(exp.id, 0, 0.4, T0)[1]
    assert store.record_decision(exp.id, 0, 0.4, T0)[1]
    assert store.arm_counts(exp.id, T0, WINDOW)[0].sends == 3


ENDED = [ExperimentStatus.COMPLETED, ExperimentStatus.ARCHIVED]


def end(store: Store, experiment_id: str, status: ExperimentStatus) -> None:
    store.set_status(experiment_id, status, T0 + 1, allowed_from=frozenset(ExperimentStatus))


@pytest.mark.parametrize("status", ENDED, ids=[s.value for s in ENDED])
def test_record_decision_refused_once_the_experiment_ended(
    store: Store, status: ExperimentStatus
) -> None:
    # The caller's view may be stale (a worker's cache): the store itself refuses.
    exp = make_experiment(store)
    kept, _ = store.record_decision(exp.id, 1, 0.5, T0, idempotency_key="sent")
    end(store, exp.id, status)

    with pytest.raises(ConflictError, match=f"is {status.value}: it makes no more decisions"):
        store.record_decision(exp.id, 0, 0.5, T0 + 2)
    with pytest.raises(ConflictError, match=f"is {status.value}"):
        store.record_decision(exp.id, 0, 0.5, T0 + 2, idempotency_key="new")
    # The status is checked before the arm, as the INSERT checks both at once.
    with pytest.raises(ConflictError, match=f"is {status.value}"):
        store.record_decision(exp.id, 9, 0.5, T0 + 2)
    # A replay of a decision made while live is still answered (see Store.record_decision).
    assert store.record_decision(exp.id, 0, 0.5, T0 + 2, idempotency_key="sent") == (kept, False)
    assert store.find_decision(exp.id, "new") is None
    assert store.arm_counts(exp.id, T0 + 2, WINDOW)[0].sends == 0


def test_record_decision_allowed_after_a_declared_winner(store: Store) -> None:
    exp = make_experiment(store)
    store.set_status(
        exp.id, ExperimentStatus.WINNER_DECLARED, T0 + 1, allowed_from=RUNNING, winner_arm=2
    )
    decision, created = store.record_decision(exp.id, 2, 1.0, T0 + 2)
    wave = store.record_wave(exp.id, {2: 10}, T0 + 2)
    assert created and decision.arm == 2
    assert store.get_wave(exp.id, wave.id) == wave


def test_find_decision_by_idempotency_key(store: Store) -> None:
    exp = make_experiment(store)
    other = make_experiment(store)
    decision, _ = store.record_decision(exp.id, 1, 0.5, T0, idempotency_key="k")
    assert store.find_decision(exp.id, "k") == decision
    assert store.find_decision(other.id, "k") is None  # keys are per experiment
    with pytest.raises(NotFoundError, match="Experiment"):
        store.find_decision(UNKNOWN, "k")


def test_list_decisions_pages_oldest_first_across_arms(store: Store) -> None:
    exp = make_experiment(store)
    other = make_experiment(store)
    store.record_decision(other.id, 0, 0.5, T0)  # another experiment's: never listed
    # Times out of arm order, some equal (ordered by id then), one arm retired later.
    made = [
        store.record_decision(exp.id, arm, 0.5, T0 + at)[0]
        for arm, at in [(2, 5.0), (0, 1.0), (1, 1.0), (0, 3.0), (1, 1.0), (2, 0.0), (0, 9.0)]
    ]
    store.retire_arm(exp.id, 2, T0 + 10)
    store.record_open(exp.id, made[1].id, T0 + 2, WINDOW)
    expected = sorted([store.get_decision(d.id) for d in made], key=lambda d: (d.created_at, d.id))

    pages, after = [], None
    while True:
        page = store.list_decisions(exp.id, after=after, limit=3)
        pages.append(page)
        if len(page) < 3:
            break
        after = page[-1].id

    assert [len(p) for p in pages] == [3, 3, 1]
    assert [d for p in pages for d in p] == expected
    assert store.list_decisions(exp.id, limit=100) == expected
    assert store.list_decisions(exp.id, after=expected[-1].id) == []
    assert store.list_decisions(other.id, limit=5)[0].experiment_id == other.id


def test_list_decisions_refuses_unknown_experiments_and_cursors(store: Store) -> None:
    exp = make_experiment(store)
    other = make_experiment(store)
    foreign, _ = store.record_decision(other.id, 0, 0.5, T0)
    with pytest.raises(NotFoundError, match="Experiment"):
        store.list_decisions(UNKNOWN)
    with pytest.raises(InvalidParameterError, match="after must be the id of a decision"):
        store.list_decisions(exp.id, after=foreign.id)
    for limit in (0, -1, True):
        with pytest.raises(InvalidParameterError, match="limit"):
            store.list_decisions(exp.id, limit=limit)


def test_record_decision_unknown_experiment_or_arm(store: Store) -> None:
    exp = make_experiment(store)
    with pytest.raises(NotFoundError, match="Arm 3 not found"):
        store.record_decision(exp.id, 3, 0.5, T0)
    with pytest.raises(NotFoundError, match="Experiment"):
        store.record_decision(UNKNOWN, 0, 0.5, T0, idempotency_key="k")
    with pytest.raises(NotFoundError, match="Decision"):
        store.get_decision(UNKNOWN)


# --- opens and explicit outcomes -------------------------------------------------------
@pytest.mark.parametrize(
    ("delay", "result", "outcome", "late"),
    [
        (0.0, OpenResult.COUNTED, 1, False),
        (30.0, OpenResult.COUNTED, 1, False),
        (WINDOW, OpenResult.COUNTED, 1, False),
        (WINDOW + 0.001, OpenResult.LATE, None, True),
        (10 * WINDOW, OpenResult.LATE, None, True),
    ],
    ids=["at-send", "inside", "at-window-end", "just-after", "long-after"],
)
def test_record_open_inside_or_after_window(
    store: Store, delay: float, result: OpenResult, outcome: int | None, late: bool
) -> None:
    exp = make_experiment(store)
    decision, _ = store.record_decision(exp.id, 0, 0.5, T0)
    assert store.record_open(exp.id, decision.id, T0 + delay, WINDOW) is result
    stored = store.get_decision(decision.id)
    assert (stored.outcome, stored.opened_at, stored.late) == (outcome, T0 + delay, late)
    # A second report never changes anything, inside the window or not.
    assert store.record_open(exp.id, decision.id, T0 + 1, WINDOW) is OpenResult.DUPLICATE
    assert store.get_decision(decision.id) == stored


def test_record_open_unknown_or_foreign_decision(store: Store) -> None:
    exp = make_experiment(store)
    other = make_experiment(store)
    decision, _ = store.record_decision(other.id, 0, 0.5, T0)
    with pytest.raises(NotFoundError, match="Decision"):
        store.record_open(exp.id, UNKNOWN, T0, WINDOW)
    with pytest.raises(ConflictError, match="belongs to another experiment"):
        store.record_open(exp.id, decision.id, T0, WINDOW)
    assert store.get_decision(decision.id).opened_at is None


@pytest.mark.parametrize("reward", [0, 1], ids=["non-open", "open"])
def test_record_outcome_sets_once(store: Store, reward: int) -> None:
    exp = make_experiment(store)
    decision, _ = store.record_decision(exp.id, 0, 0.5, T0)
    assert store.record_outcome(exp.id, decision.id, reward, T0 + 1) is True
    assert store.record_outcome(exp.id, decision.id, reward, T0 + 2) is False
    with pytest.raises(ConflictError, match=f"already has outcome {reward}; got {1 - reward}"):
        store.record_outcome(exp.id, decision.id, 1 - reward, T0 + 3)
    stored = store.get_decision(decision.id)
    assert (stored.outcome, stored.opened_at, stored.late) == (reward, None, False)
    # An explicit outcome settles the decision: a later open is a duplicate.
    assert store.record_open(exp.id, decision.id, T0 + 4, WINDOW) is OpenResult.DUPLICATE


@pytest.mark.parametrize("delay", [10.0, WINDOW + 10], ids=["counted-open", "late-open"])
def test_record_outcome_after_an_open(store: Store, delay: float) -> None:
    exp = make_experiment(store)
    decision, _ = store.record_decision(exp.id, 0, 0.5, T0)
    store.record_open(exp.id, decision.id, T0 + delay, WINDOW)
    before = store.get_decision(decision.id)
    assert store.record_outcome(exp.id, decision.id, 1, T0 + delay + 1) is False
    with pytest.raises(ConflictError, match="already has outcome 1; got 0"):
        store.record_outcome(exp.id, decision.id, 0, T0 + delay + 1)
    assert store.get_decision(decision.id) == before


def test_record_outcome_unknown_or_foreign_decision(store: Store) -> None:
    exp = make_experiment(store)
    other = make_experiment(store)
    decision, _ = store.record_decision(other.id, 0, 0.5, T0)
    with pytest.raises(NotFoundError, match="Decision"):
        store.record_outcome(exp.id, UNKNOWN, 1, T0)
    with pytest.raises(ConflictError, match="belongs to another experiment"):
        store.record_outcome(exp.id, decision.id, 1, T0)
    assert store.get_decision(decision.id).outcome is None


# --- events ----------------------------------------------------------------------------
def test_an_experiment_keeps_its_kpi_and_counts_opens_by_default(store: Store) -> None:
    clicks = store.create_experiment(ExperimentSpec("c", HEADLINES, kpi="clicks"), T0)
    assert store.get_experiment(clicks.id).kpi == "clicks"
    assert make_experiment(store).kpi == "opens"


def test_every_event_is_stored_with_its_arm_and_counts_nothing(store: Store) -> None:
    exp = make_experiment(store)
    decision, _ = store.record_decision(exp.id, 2, 0.5, T0)

    event = store.record_event(
        exp.id,
        decision.id,
        "open",
        T0 + 5,
        machine=True,
        user_agent="Mozilla/5.0",
        proxy_address="17.58.0.1",
    )
    again = store.record_event(exp.id, decision.id, "open", T0 + 6, machine=True)
    store.record_event(exp.id, decision.id, "click", T0 + 7)

    assert event == EventRecord(
        event.id, exp.id, decision.id, 2, "open", True, T0 + 5, "Mozilla/5.0", "17.58.0.1"
    )
    assert again.id != event.id and (again.user_agent, again.proxy_address) == (None, None)
    assert store.event_counts(exp.id) == [
        EventCounts(arm=2, type="click", events=1, machine=0),
        EventCounts(arm=2, type="open", events=2, machine=2),
    ]
    # Stored, not counted: only record_open counts a success.
    assert store.get_decision(decision.id) == decision
    assert sum(c.opens for c in store.arm_counts(exp.id, T0 + 10, WINDOW)) == 0


def test_event_counts_group_by_arm_and_type_per_experiment(store: Store) -> None:
    exp = make_experiment(store)
    other = make_experiment(store)
    made = [store.record_decision(exp.id, arm, 0.5, T0)[0] for arm in (0, 0, 1)]
    theirs, _ = store.record_decision(other.id, 0, 0.5, T0)
    for i, decision in enumerate(made):
        store.record_event(exp.id, decision.id, "open", T0 + i, machine=i == 0)
    store.record_event(other.id, theirs.id, "open", T0)

    assert store.event_counts(exp.id) == [
        EventCounts(arm=0, type="open", events=2, machine=1),
        EventCounts(arm=1, type="open", events=1, machine=0),
    ]
    assert store.event_counts(make_experiment(store).id) == []


def test_an_event_of_an_unknown_or_foreign_decision_is_not_stored(store: Store) -> None:
    exp = make_experiment(store)
    other = make_experiment(store)
    decision, _ = store.record_decision(other.id, 0, 0.5, T0)
    with pytest.raises(NotFoundError, match="Decision"):
        store.record_event(exp.id, UNKNOWN, "open", T0)
    with pytest.raises(ConflictError, match="belongs to another experiment"):
        store.record_event(exp.id, decision.id, "open", T0)
    with pytest.raises(NotFoundError, match="Experiment"):
        store.event_counts(UNKNOWN)
    assert store.event_counts(exp.id) == store.event_counts(other.id) == []


# --- waves -----------------------------------------------------------------------------
def test_record_wave_stores_pending_sends(store: Store) -> None:
    exp = make_experiment(store)
    wave = store.record_wave(exp.id, {2: 30, 0: 50}, T0)
    assert (wave.experiment_id, wave.created_at) == (exp.id, T0)
    assert dict(wave.arm_to_sends) == {0: 50, 2: 30}
    assert dict(wave.arm_to_opens) == dict(wave.arm_to_late_opens) == {0: 0, 2: 0}
    assert store.get_wave(exp.id, wave.id) == wave


def test_wave_not_found_paths(store: Store) -> None:
    exp = make_experiment(store)
    other = make_experiment(store)
    wave = store.record_wave(other.id, {0: 10}, T0)
    with pytest.raises(NotFoundError, match="Wave"):
        store.get_wave(exp.id, wave.id)  # another experiment's wave
    with pytest.raises(NotFoundError, match="Wave"):
        store.record_wave_opens(exp.id, UNKNOWN, {0: 1}, T0, WINDOW)
    with pytest.raises(NotFoundError, match="Arm 5 not found"):
        store.record_wave(exp.id, {0: 10, 5: 10}, T0)
    with pytest.raises(NotFoundError, match="Experiment"):
        store.record_wave(UNKNOWN, {0: 10}, T0)


@pytest.mark.parametrize("status", ENDED, ids=[s.value for s in ENDED])
def test_record_wave_refused_once_the_experiment_ended(
    store: Store, status: ExperimentStatus
) -> None:
    exp = make_experiment(store)
    end(store, exp.id, status)
    with pytest.raises(ConflictError, match=f"is {status.value}: it makes no more allocations"):
        store.record_wave(exp.id, {0: 10}, T0 + 2)
    # Unknown arms are still reported as such.
    with pytest.raises(NotFoundError, match="Arm 5 not found"):
        store.record_wave(exp.id, {5: 10}, T0 + 2)
    assert store.arm_counts(exp.id, T0 + 2, WINDOW)[0].sends == 0


def test_wave_opens_are_running_totals(store: Store) -> None:
    exp = make_experiment(store)
    wave = store.record_wave(exp.id, {0: 100, 1: 50}, T0)
    after = store.record_wave_opens(exp.id, wave.id, {0: 10, 1: 4}, T0 + 5, WINDOW)
    assert dict(after.arm_to_opens) == {0: 10, 1: 4}
    assert after.reported_at == T0 + 5
    # The same totals again change no count (retries are safe): still observed at T0 + 6.
    same = store.record_wave_opens(exp.id, wave.id, {0: 10, 1: 4}, T0 + 6, WINDOW)
    assert same == replace(after, reported_at=T0 + 6)
    # Lower ones are refused, naming the headline and the stored total.
    for totals, named in (
        ({0: 3}, r"'48 Hours Only: Save 25%' \(#0\), below the running total of 10"),
        ({1: 0}, "'Your Exclusive"),
    ):
        with pytest.raises(ConflictError, match=named):
            store.record_wave_opens(exp.id, wave.id, totals, T0 + 7, WINDOW)
        assert store.get_wave(exp.id, wave.id) == same
    raised = store.record_wave_opens(exp.id, wave.id, {0: 25}, T0 + WINDOW, WINDOW)
    assert dict(raised.arm_to_opens) == {0: 25, 1: 4}
    assert raised.reported_at == T0 + WINDOW
    late = store.record_wave_opens(exp.id, wave.id, {0: 30, 1: 4}, T0 + WINDOW + 1, WINDOW)
    assert (dict(late.arm_to_opens), dict(late.arm_to_late_opens)) == ({0: 25, 1: 4}, {0: 5, 1: 0})
    assert late.reported_at == T0 + WINDOW  # a report after the window observes nothing counted
    assert store.get_wave(exp.id, wave.id) == late


def test_a_lower_wave_total_refuses_the_whole_report(store: Store) -> None:
    exp = make_experiment(store)
    wave = store.record_wave(exp.id, {0: 1000, 1: 1000}, T0)
    before = store.record_wave_opens(exp.id, wave.id, {0: 812, 1: 40}, T0 + 5, WINDOW)

    # Arm 1 rises, arm 0 goes down: nothing of the report is stored.
    with pytest.raises(
        ConflictError, match="800 opens reported for headline '48 Hours.*running total of 812"
    ):
        store.record_wave_opens(exp.id, wave.id, {0: 800, 1: 50}, T0 + 6, WINDOW)

    assert store.get_wave(exp.id, wave.id) == before
    assert store.arm_counts(exp.id, T0 + 6, WINDOW)[1].opens == 40


@pytest.mark.parametrize(
    "totals",
    [{0: 5, 1: 51}, {0: 101}, {0: 5, 2: 1}],
    ids=["one-arm-over", "first-arm-over", "arm-not-in-wave"],
)
def test_wave_opens_beyond_sends_conflict_and_change_nothing(
    store: Store, totals: dict[int, int]
) -> None:
    exp = make_experiment(store)
    wave = store.record_wave(exp.id, {0: 100, 1: 50}, T0)
    with pytest.raises(ConflictError, match="opens reported for arm"):
        store.record_wave_opens(exp.id, wave.id, totals, T0 + 1, WINDOW)
    assert store.get_wave(exp.id, wave.id) == wave


# --- snapshots -------------------------------------------------------------------------
def test_snapshots_oldest_first_latest_limit(store: Store) -> None:
    exp = make_experiment(store, headlines=["A", "B"])
    shots = [
        Snapshot(exp.id, T0 + i, {0: 0.5 + i / 10, 1: 0.5 - i / 10}, {0: 0.5, 1: 0.5})
        for i in range(5)
    ]
    for shot in shots[3:] + shots[:3]:  # stored out of order: listed by time
        store.record_snapshot(shot)
    assert store.list_snapshots(exp.id) == shots
    assert store.list_snapshots(exp.id, limit=2) == shots[-2:]
    with pytest.raises(NotFoundError, match="Experiment"):
        store.record_snapshot(Snapshot(UNKNOWN, T0, {0: 1.0}, {0: 1.0}))


def test_snapshots_keep_estimates_sends_and_burn_in(store: Store) -> None:
    exp = make_experiment(store, headlines=["A", "B"])
    shot = Snapshot(
        exp.id,
        T0,
        {0: 0.75, 1: 0.25},
        {0: 0.6, 1: 0.4},
        arm_to_estimate={0: (0.2, 0.15, 0.25), 1: (0.125, 0.0625, 0.25)},
        arm_to_sends={0: 120, 1: 80},
        burn_in=True,
    )
    store.record_snapshot(shot)
    assert store.list_snapshots(exp.id) == [shot]


# --- what the dashboard reads ------------------------------------------------------------
def test_propensity_groups_of_decisions_and_waves(store: Store) -> None:
    exp = make_experiment(store, headlines=["A", "B"])
    decided = [(0, 0.5), (0, 0.5), (1, 0.5), (0, 0.25), (1, 0.75)]
    ids = [store.record_decision(exp.id, a, p, T0 + i)[0].id for i, (a, p) in enumerate(decided)]
    store.record_open(exp.id, ids[0], T0 + 10, WINDOW)
    store.record_open(exp.id, ids[4], T0 + 10, WINDOW)
    store.record_open(exp.id, ids[3], T0 + 10 * WINDOW, WINDOW)  # late: not counted
    # A third headline from T0 + 20: later decisions were made among three.
    store.add_arm(exp.id, "C", T0 + 20)
    store.record_decision(exp.id, 2, 0.5, T0 + 21)
    store.record_decision(exp.id, 0, 0.5, T0 + 22)
    wave = store.record_wave(exp.id, {0: 30, 1: 10, 2: 0}, T0 + 30)
    store.record_wave_opens(exp.id, wave.id, {0: 6, 1: 1}, T0 + 40, WINDOW)

    groups = store.propensity_groups(exp.id)
    rows = sorted(
        zip(
            groups.wave.tolist(),
            groups.arm.tolist(),
            groups.propensity.tolist(),
            groups.n_arms.tolist(),
            groups.sends.tolist(),
            groups.opens.tolist(),
            strict=True,
        )
    )
    assert rows == [
        (False, 0, 0.25, 2, 1, 0),
        (False, 0, 0.5, 2, 2, 1),
        (False, 0, 0.5, 3, 1, 0),
        (False, 1, 0.5, 2, 1, 0),
        (False, 1, 0.75, 2, 1, 1),
        (False, 2, 0.5, 3, 1, 0),
        (True, 0, 0.75, 3, 30, 6),  # a headline with no sends in a wave is no group
        (True, 1, 0.25, 3, 10, 1),
    ]
    assert len(groups) == 8


def test_propensity_groups_after_a_retirement(store: Store) -> None:
    exp = make_experiment(store)
    store.record_decision(exp.id, 0, 0.2, T0 + 1)
    store.retire_arm(exp.id, 2, T0 + 5)
    store.record_decision(exp.id, 0, 0.2, T0 + 6)
    groups = store.propensity_groups(exp.id)
    assert sorted(zip(groups.n_arms.tolist(), groups.sends.tolist(), strict=True)) == [
        (2, 1),
        (3, 1),
    ]
    empty = store.propensity_groups(make_experiment(store).id)
    assert len(empty) == 0 and empty.propensity.dtype.kind == "f"
    with pytest.raises(NotFoundError, match="Experiment"):
        store.propensity_groups(UNKNOWN)


def test_sends_since_counts_decisions_and_wave_sends(store: Store) -> None:
    exp = make_experiment(store, headlines=["A", "B"])
    store.record_decision(exp.id, 0, 0.5, T0)
    store.record_decision(exp.id, 1, 0.5, T0 + 10)
    store.record_wave(exp.id, {0: 7, 1: 3}, T0 + 20)
    assert store.sends_since(exp.id, T0 - 1) == 12
    assert store.sends_since(exp.id, T0 + 1) == 11
    assert store.sends_since(exp.id, T0 + 20) == 10  # at `since` counts
    assert store.sends_since(exp.id, T0 + 21) == 0
    with pytest.raises(NotFoundError, match="Experiment"):
        store.sends_since(UNKNOWN, T0)


# --- API keys --------------------------------------------------------------------------
def test_api_keys_lifecycle(store: Store) -> None:
    assert not store.has_api_keys()
    assert store.find_api_key("h" * 64) is None
    first = store.create_api_key("ci", "a" * 64, T0)
    second = store.create_api_key("ops", "b" * 64, T0)
    assert store.has_api_keys()
    assert store.find_api_key("a" * 64) == first
    assert (first.name, first.created_at, first.revoked_at) == ("ci", T0, None)
    revoked = store.revoke_api_key(first.id, T0 + 5)
    assert revoked.revoked_at == T0 + 5
    assert store.revoke_api_key(first.id, T0 + 9).revoked_at == T0 + 5
    assert store.find_api_key("a" * 64) == revoked
    assert store.list_api_keys() == [revoked, second]
    assert store.has_api_keys()  # revoked keys still switch auth on
    assert first.scope is KeyScope.FULL


def test_api_key_scopes(store: Store) -> None:
    viewer = store.create_api_key("viewer", "c" * 64, T0, scope=KeyScope.READ)
    assert viewer.scope is KeyScope.READ
    assert store.find_api_key("c" * 64) == viewer
    assert store.list_api_keys() == [viewer]


def test_api_key_conflict_and_not_found(store: Store) -> None:
    store.create_api_key("ci", "a" * 64, T0)
    with pytest.raises(ConflictError, match="already exists"):
        store.create_api_key("again", "a" * 64, T0)
    with pytest.raises(NotFoundError, match="API key"):
        store.revoke_api_key(UNKNOWN, T0)
    assert len(store.list_api_keys()) == 1


# --- housekeeping ----------------------------------------------------------------------
def test_is_a_store_and_pings(store: Store) -> None:
    assert isinstance(store, Store)
    store.ping()
