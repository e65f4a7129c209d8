"""The delayed-feedback counting rule of ``arm_counts``, on every store.

Each scenario is a timeline of events; for a query time ``now`` the test
replays only the events that happened by then (a store holds what was
reported, it does not travel in time) and checks the counts against the rule
in :mod:`headliner.storage.base`, before, at and after the window: the
decision posterior's counts (sends, opens, non-opens, late opens) and the
matured cohort (matured sends, opens among them).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from headliner.core.errors import NotFoundError
from headliner.storage.base import ArmCounts, ExperimentSpec, OpenResult, Store

WINDOW = 60.0
T0 = 1_700_000_000.0
SEEDS = [0, 1, 2, 3, 4]


def new_experiment(store: Store, n_arms: int = 2) -> str:
    spec = ExperimentSpec(
        name="counting",
        headlines=[f"H{i}" for i in range(n_arms)],
        attribution_window_seconds=WINDOW,
    )
    return store.create_experiment(spec, T0).id


Counts = tuple[int, int, int, int]
Cohort = tuple[int, int]


def counts(store: Store, exp_id: str, now: float) -> list[Counts]:
    return [
        (c.sends, c.opens, c.non_opens, c.late_opens) for c in store.arm_counts(exp_id, now, WINDOW)
    ]


def cohort(store: Store, exp_id: str, now: float) -> list[Cohort]:
    """(matured, matured_opens) per arm."""
    return [(c.matured, c.matured_opens) for c in store.arm_counts(exp_id, now, WINDOW)]


# --- per-send decisions ----------------------------------------------------------------
def replay_decisions(store: Store, now: float) -> str:
    """Arm 0: six decisions at T0 with different fates; arm 1: one silent send at T0 + 30."""
    exp = new_experiment(store)
    ids = [store.record_decision(exp, 0, 0.5, T0)[0].id for _ in range(6)]
    a, b, _c, d, e, f = ids
    events: list[tuple[float, Callable[[], object]]] = [
        (T0 + 30, lambda: store.record_decision(exp, 1, 0.5, T0 + 30)),  # matures at T0 + 90
        (T0 + 5, lambda: store.record_outcome(exp, b, 0, T0 + 5)),  # explicit non-open
        (T0 + 10, lambda: store.record_open(exp, a, T0 + 10, WINDOW)),  # open in window
        (T0 + WINDOW, lambda: store.record_open(exp, d, T0 + WINDOW, WINDOW)),  # at the end
        (T0 + WINDOW + 1, lambda: store.record_open(exp, e, T0 + WINDOW + 1, WINDOW)),  # late
        (T0 + 100, lambda: store.record_outcome(exp, f, 1, T0 + 100)),  # explicit open, any time
    ]
    for at, event in events:
        if at <= now:
            event()
    return exp


@pytest.mark.parametrize(
    ("offset", "arm0", "arm1", "matured"),
    [
        # (sends, opens, non_opens, late_opens) per arm; c stays silent throughout;
        # matured: (matured, matured_opens) per arm.
        (0.0, (6, 0, 0, 0), (0, 0, 0, 0), [(0, 0), (0, 0)]),
        # a's open counts for the posterior, but only b (explicit) is final.
        (30.0, (6, 1, 1, 0), (1, 0, 0, 0), [(1, 0), (0, 0)]),
        (WINDOW - 0.5, (6, 1, 1, 0), (1, 0, 0, 0), [(1, 0), (0, 0)]),
        # a, d open; b explicit; c, e, f matured: all six final, a and d opens.
        (WINDOW, (6, 2, 4, 0), (1, 0, 0, 0), [(6, 2), (0, 0)]),
        # e's open is late: still a non-open, not a matured open.
        (WINDOW + 1, (6, 2, 4, 1), (1, 0, 0, 0), [(6, 2), (0, 0)]),
        (WINDOW + 30, (6, 2, 4, 1), (1, 0, 1, 0), [(6, 2), (1, 0)]),  # arm 1's send matures
        # f's explicit open counts after the window, in both views.
        (120.0, (6, 3, 3, 1), (1, 0, 1, 0), [(6, 3), (1, 0)]),
    ],
    ids=["at-send", "inside", "just-before-end", "at-end", "late-open", "arm1-matures", "after"],
)
def test_decisions_follow_the_window(
    store: Store, offset: float, arm0: Counts, arm1: Counts, matured: list[Cohort]
) -> None:
    now = T0 + offset
    exp = replay_decisions(store, now)
    assert counts(store, exp, now) == [arm0, arm1]
    assert cohort(store, exp, now) == matured


@pytest.mark.parametrize(
    ("offset", "matured"),
    [(2.0, (2, 1)), (WINDOW - 0.5, (2, 1)), (WINDOW, (3, 2))],
    ids=["inside", "just-before-end", "at-end"],
)
def test_explicit_outcomes_mature_at_once_reported_opens_with_the_window(
    store: Store, offset: float, matured: Cohort
) -> None:
    exp = new_experiment(store)
    explicit_open, explicit_non_open, reported_open = (
        store.record_decision(exp, 0, 0.5, T0)[0].id for _ in range(3)
    )
    store.record_outcome(exp, explicit_open, 1, T0 + 1)
    store.record_outcome(exp, explicit_non_open, 0, T0 + 1)
    assert store.record_open(exp, reported_open, T0 + 1, WINDOW) is OpenResult.COUNTED
    now = T0 + offset
    # Both opens count for the decision posterior from the start ...
    assert counts(store, exp, now)[0] == (3, 2, 1, 0)
    # ... but the reported one joins the matured cohort only with its window.
    assert cohort(store, exp, now)[0] == matured


def test_late_open_result_matches_counts(store: Store) -> None:
    exp = new_experiment(store)
    decision, _ = store.record_decision(exp, 1, 0.5, T0)
    assert store.record_open(exp, decision.id, T0 + WINDOW + 5, WINDOW) is OpenResult.LATE
    counted = store.arm_counts(exp, T0 + WINDOW + 5, WINDOW)[1]
    assert counted == ArmCounts(
        arm=1, sends=1, opens=0, non_opens=1, late_opens=1, matured=1, matured_opens=0
    )
    assert (counted.settled, counted.pending) == (1, 0)


# --- waves -----------------------------------------------------------------------------
def replay_wave(store: Store, now: float) -> str:
    """One wave at T0 of 100 + 50 sends; running totals reported over time."""
    exp = new_experiment(store)
    wave = store.record_wave(exp, {0: 100, 1: 50}, T0).id
    reports = [
        (T0 + 10, {0: 10}),
        (T0 + WINDOW, {0: 15, 1: 5}),  # at the end of the window: counted
        (T0 + WINDOW + 1, {0: 20}),  # 5 more, late
        (T0 + 120, {1: 5}),  # the same total again: nothing
    ]
    for at, totals in reports:
        if at <= now:
            store.record_wave_opens(exp, wave, totals, at, WINDOW)
    return exp


@pytest.mark.parametrize(
    ("offset", "arm0", "arm1", "matured"),
    [
        (0.0, (100, 0, 0, 0), (50, 0, 0, 0), [(0, 0), (0, 0)]),
        # 10 opens count for the posterior; the wave's sends are not final yet.
        (30.0, (100, 10, 0, 0), (50, 0, 0, 0), [(0, 0), (0, 0)]),
        (WINDOW - 0.5, (100, 10, 0, 0), (50, 0, 0, 0), [(0, 0), (0, 0)]),
        # The whole wave matures at once, with the opens counted by then.
        (WINDOW, (100, 15, 85, 0), (50, 5, 45, 0), [(100, 15), (50, 5)]),
        (WINDOW + 1, (100, 15, 85, 5), (50, 5, 45, 0), [(100, 15), (50, 5)]),
        (120.0, (100, 15, 85, 5), (50, 5, 45, 0), [(100, 15), (50, 5)]),
    ],
    ids=["at-send", "inside", "just-before-end", "at-end", "late-opens", "after"],
)
def test_waves_follow_the_window(
    store: Store, offset: float, arm0: Counts, arm1: Counts, matured: list[Cohort]
) -> None:
    now = T0 + offset
    exp = replay_wave(store, now)
    assert counts(store, exp, now) == [arm0, arm1]
    assert cohort(store, exp, now) == matured


# --- together --------------------------------------------------------------------------
def test_counts_cover_every_arm_by_position(store: Store) -> None:
    exp = new_experiment(store, n_arms=3)
    store.add_arm(exp, "H3", T0)
    store.retire_arm(exp, 0, T0)
    store.record_decision(exp, 2, 0.5, T0)
    assert [c.arm for c in store.arm_counts(exp, T0, WINDOW)] == [0, 1, 2, 3]
    assert store.arm_counts(exp, T0, WINDOW)[2] == ArmCounts(2, 1, 0, 0, 0, 0, 0)
    with pytest.raises(NotFoundError, match="Experiment"):
        store.arm_counts("0" * 32, T0, WINDOW)


def test_counts_are_per_experiment(store: Store) -> None:
    exp, other = new_experiment(store), new_experiment(store)
    store.record_decision(other, 0, 0.5, T0)
    store.record_wave(other, {0: 10}, T0)
    assert counts(store, exp, T0 + WINDOW) == [(0, 0, 0, 0), (0, 0, 0, 0)]
    assert cohort(store, exp, T0 + WINDOW) == [(0, 0), (0, 0)]


@pytest.mark.parametrize("seed", SEEDS, ids=[f"seed{s}" for s in SEEDS])
def test_random_campaign_counts_match_the_rule(store: Store, seed: int) -> None:
    """Decisions and waves at random times, opens at random delays, counted by hand."""
    rng = np.random.default_rng(seed)
    n_arms = 3
    exp = new_experiment(store, n_arms=n_arms)
    now = T0 + 200.0
    # sends, opens, non_opens, late, matured, matured_opens
    expected = np.zeros((n_arms, 6), dtype=np.int64)
    for _ in range(60):
        arm = int(rng.integers(n_arms))
        created = T0 + float(rng.uniform(0, 200))
        decision, _ = store.record_decision(exp, arm, 1 / n_arms, created)
        window_passed = created <= now - WINDOW
        expected[arm, 0] += 1
        kind = rng.choice(["silent", "open", "outcome0", "outcome1"])
        opened_at = created + float(rng.uniform(0, 2 * WINDOW))
        if kind == "open" and opened_at <= now:
            late = store.record_open(exp, decision.id, opened_at, WINDOW) is OpenResult.LATE
            expected[arm, 1 if not late else 2] += 1
            expected[arm, 3] += late
            expected[arm, 4:] += (1, not late) if window_passed else (0, 0)
            assert late == (opened_at > created + WINDOW)
        elif kind in ("outcome0", "outcome1"):
            reward = int(kind[-1])
            store.record_outcome(exp, decision.id, reward, created)
            expected[arm, 1 if reward else 2] += 1
            expected[arm, 4:] += (1, reward)  # explicit: final at once
        elif window_passed:
            expected[arm, 2] += 1
            expected[arm, 4] += 1
    for _ in range(5):
        created = T0 + float(rng.uniform(0, 200))
        sends = {arm: int(rng.integers(1, 40)) for arm in range(n_arms)}
        wave = store.record_wave(exp, sends, created).id
        totals = {arm: int(rng.integers(0, n + 1)) for arm, n in sends.items()}
        report_at = created + float(rng.uniform(0, 2 * WINDOW))
        if report_at <= now:
            store.record_wave_opens(exp, wave, totals, report_at, WINDOW)
        in_window = report_at <= created + WINDOW and report_at <= now
        late = report_at > created + WINDOW and report_at <= now
        window_passed = created <= now - WINDOW
        for arm, n in sends.items():
            opens = totals[arm] if in_window else 0
            expected[arm] += (
                n,
                opens,
                n - opens if window_passed else 0,
                totals[arm] if late else 0,
                n if window_passed else 0,
                opens if window_passed else 0,
            )
    arm_counts = store.arm_counts(exp, now, WINDOW)
    assert counts(store, exp, now) == [tuple(int(v) for v in row[:4]) for row in expected]
    assert cohort(store, exp, now) == [tuple(int(v) for v in row[4:]) for row in expected]
    # Every non-open is final, so the matured cohort is its opens plus every non-open.
    assert all(c.matured == c.matured_opens + c.non_opens for c in arm_counts)
    assert all(c.matured_opens <= c.opens and c.matured <= c.sends for c in arm_counts)
