"""The delayed-feedback counting rule of ``arm_counts``, on every store.

Each scenario is a timeline of events; for a query time ``now`` the test
replays only the events that happened by then (a store holds what was
reported, it does not travel in time) and checks the counts against the rule
in :mod:`headliner.storage.base`, before, at and after the window.
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


def counts(store: Store, exp_id: str, now: float) -> list[tuple[int, int, int, int]]:
    return [
        (c.sends, c.opens, c.non_opens, c.late_opens) for c in store.arm_counts(exp_id, now, WINDOW)
    ]


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
    ("offset", "arm0", "arm1"),
    [
        # (sends, opens, non_opens, late_opens); c stays silent throughout
        (0.0, (6, 0, 0, 0), (0, 0, 0, 0)),
        (30.0, (6, 1, 1, 0), (1, 0, 0, 0)),
        (WINDOW - 0.5, (6, 1, 1, 0), (1, 0, 0, 0)),
        (WINDOW, (6, 2, 4, 0), (1, 0, 0, 0)),  # a, d open; b explicit; c, e, f matured
        (WINDOW + 1, (6, 2, 4, 1), (1, 0, 0, 0)),  # e's open is late: still a non-open
        (WINDOW + 30, (6, 2, 4, 1), (1, 0, 1, 0)),  # arm 1's send matures
        (120.0, (6, 3, 3, 1), (1, 0, 1, 0)),  # f's explicit open counts after the window
    ],
    ids=["at-send", "inside", "just-before-end", "at-end", "late-open", "arm1-matures", "after"],
)
def test_decisions_follow_the_window(
    store: Store,
    offset: float,
    arm0: tuple[int, int, int, int],
    arm1: tuple[int, int, int, int],
) -> None:
    now = T0 + offset
    exp = replay_decisions(store, now)
    assert counts(store, exp, now) == [arm0, arm1]


def test_late_open_result_matches_counts(store: Store) -> None:
    exp = new_experiment(store)
    decision, _ = store.record_decision(exp, 1, 0.5, T0)
    assert store.record_open(exp, decision.id, T0 + WINDOW + 5, WINDOW) is OpenResult.LATE
    counted = store.arm_counts(exp, T0 + WINDOW + 5, WINDOW)[1]
    assert counted == ArmCounts(arm=1, sends=1, opens=0, non_opens=1, late_opens=1)
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
        (T0 + 120, {1: 3}),  # below the stored total: nothing
    ]
    for at, totals in reports:
        if at <= now:
            store.record_wave_opens(exp, wave, totals, at, WINDOW)
    return exp


@pytest.mark.parametrize(
    ("offset", "arm0", "arm1"),
    [
        (0.0, (100, 0, 0, 0), (50, 0, 0, 0)),
        (30.0, (100, 10, 0, 0), (50, 0, 0, 0)),
        (WINDOW - 0.5, (100, 10, 0, 0), (50, 0, 0, 0)),
        (WINDOW, (100, 15, 85, 0), (50, 5, 45, 0)),
        (WINDOW + 1, (100, 15, 85, 5), (50, 5, 45, 0)),
        (120.0, (100, 15, 85, 5), (50, 5, 45, 0)),
    ],
    ids=["at-send", "inside", "just-before-end", "at-end", "late-opens", "after"],
)
def test_waves_follow_the_window(
    store: Store,
    offset: float,
    arm0: tuple[int, int, int, int],
    arm1: tuple[int, int, int, int],
) -> None:
    now = T0 + offset
    exp = replay_wave(store, now)
    assert counts(store, exp, now) == [arm0, arm1]


# --- together --------------------------------------------------------------------------
def test_counts_cover_every_arm_by_position(store: Store) -> None:
    exp = new_experiment(store, n_arms=3)
    store.add_arm(exp, "H3", T0)
    store.retire_arm(exp, 0, T0)
    store.record_decision(exp, 2, 0.5, T0)
    assert [c.arm for c in store.arm_counts(exp, T0, WINDOW)] == [0, 1, 2, 3]
    assert store.arm_counts(exp, T0, WINDOW)[2] == ArmCounts(2, 1, 0, 0, 0)
    with pytest.raises(NotFoundError, match="Experiment"):
        store.arm_counts("0" * 32, T0, WINDOW)


def test_counts_are_per_experiment(store: Store) -> None:
    exp, other = new_experiment(store), new_experiment(store)
    store.record_decision(other, 0, 0.5, T0)
    store.record_wave(other, {0: 10}, T0)
    assert counts(store, exp, T0 + WINDOW) == [(0, 0, 0, 0), (0, 0, 0, 0)]


@pytest.mark.parametrize("seed", SEEDS, ids=[f"seed{s}" for s in SEEDS])
def test_random_campaign_counts_match_the_rule(store: Store, seed: int) -> None:
    """Decisions and waves at random times, opens at random delays, counted by hand."""
    rng = np.random.default_rng(seed)
    n_arms = 3
    exp = new_experiment(store, n_arms=n_arms)
    now = T0 + 200.0
    expected = np.zeros((n_arms, 4), dtype=np.int64)  # sends, opens, non_opens, late
    for _ in range(60):
        arm = int(rng.integers(n_arms))
        created = T0 + float(rng.uniform(0, 200))
        decision, _ = store.record_decision(exp, arm, 1 / n_arms, created)
        expected[arm, 0] += 1
        kind = rng.choice(["silent", "open", "outcome0", "outcome1"])
        opened_at = created + float(rng.uniform(0, 2 * WINDOW))
        if kind == "open" and opened_at <= now:
            late = store.record_open(exp, decision.id, opened_at, WINDOW) is OpenResult.LATE
            expected[arm, 1 if not late else 2] += 1
            expected[arm, 3] += late
            assert late == (opened_at > created + WINDOW)
        elif kind in ("outcome0", "outcome1"):
            reward = int(kind[-1])
            store.record_outcome(exp, decision.id, reward, created)
            expected[arm, 1 if reward else 2] += 1
        elif created <= now - WINDOW:
            expected[arm, 2] += 1
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
        for arm, n in sends.items():
            opens = totals[arm] if in_window else 0
            expected[arm] += (
                n,
                opens,
                n - opens if created <= now - WINDOW else 0,
                totals[arm] if late else 0,
            )
    assert counts(store, exp, now) == [tuple(int(v) for v in row) for row in expected]
