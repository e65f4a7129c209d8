"""The data behind the dashboard's pages: sentences, charts, diagnostics, caches."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

from headliner.core.diagnostics import extra_opens_over_even_split
from headliner.service import dashboard as dashboard_module
from headliner.service.clock import ManualClock
from headliner.service.dashboard import (
    Dashboard,
    charts,
    diagnostics,
    fmt_duration,
    fmt_prob,
    fmt_time,
    interval_axis,
    plan_comparison,
    status_sentence,
)
from headliner.service.experiment_file import spec_from_plan
from headliner.service.experiments import ExperimentService, build_spec
from headliner.service.forecast import DecisionForecast
from headliner.service.reporting import Report
from headliner.sim.plan import parse_plan
from headliner.storage.base import ExperimentStatus
from headliner.storage.sql import SqlStore

HOUR = 3600.0
T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
LIVE = frozenset({ExperimentStatus.RUNNING, ExperimentStatus.WINNER_DECLARED})


def make_service(
    store: SqlStore, *, snapshot: float = 0.0
) -> tuple[ExperimentService, ManualClock]:
    clock = ManualClock(T0)
    service = ExperimentService(
        store,
        clock,
        np.random.default_rng(0),
        posterior_refresh_seconds=0.0,
        snapshot_interval_seconds=snapshot,
        refresh_in_background=False,
    )
    return service, clock


def settled(
    service: ExperimentService,
    clock: ManualClock,
    opens: tuple[int, ...] = (100, 130),
    sends: int = 1000,
    **settings: Any,
) -> str:
    """An experiment whose one wave has passed its 1-hour window: every count final."""
    settings = {"burn_in_per_arm": 10, **settings}
    spec = build_spec(
        "sale", ["A", "B", "C"][: len(opens)], attribution_window_seconds=HOUR, **settings
    )
    record = service.create(spec)
    wave = service.allocate(record.id, sends * len(opens)).wave
    clock.advance(0.5 * HOUR)
    service.record_wave_opens(record.id, wave.id, dict(enumerate(opens)))
    clock.advance(HOUR)
    return record.id


def forecast(seconds: float | None) -> DecisionForecast:
    return DecisionForecast(seconds, 0.9, 1000.0, 14 * 86400.0, 128)


# --- formats ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "–"),
        (0.0, "<0.1%"),
        (0.004, "0.4%"),
        (0.0312, "3%"),
        (0.934, "93%"),
        (0.9931, "99.3%"),
        (0.99991, ">99.9%"),
    ],
)
def test_probabilities_read_as_people_say_them(value: float | None, text: str) -> None:
    assert fmt_prob(value) == text


def test_durations_and_times() -> None:
    assert [fmt_duration(s) for s in (20.0, 1800.0, 3600.0, 9.4 * HOUR, 72 * HOUR)] == [
        "1 minute",
        "30 minutes",
        "1 hour",
        "9 hours",
        "3 days",
    ]
    assert fmt_time(T0, T0 + 60) == "22:13 UTC"  # the same day: the time alone
    assert fmt_time(T0, T0 + 86400) == "14 Nov 2023 22:13 UTC"


def test_interval_axis_is_the_top_bound_rounded_up_to_5_points() -> None:
    assert interval_axis([0.12, 0.231]) == 0.25
    assert interval_axis([0.25]) == 0.25
    assert interval_axis([0.001]) == 0.05
    assert interval_axis([0.99]) == 1.0


# --- the status sentence -------------------------------------------------------------------
def test_burn_in_says_so(store: SqlStore) -> None:
    service, clock = make_service(store)
    record = service.create(build_spec("sale", ["A", "B"], burn_in_per_arm=100))
    report = service.report(record.id)
    text = status_sentence(report, None, 0.0)
    assert text.startswith("Burn-in: every headline gets an even share of sends until it has 100")


@pytest.mark.parametrize(
    ("seconds", "volume", "ending"),
    [
        (9.4 * HOUR, 1000.0, "; at the current volume a winner is likely in about 9 hours."),
        (1200.0, 1000.0, "; at the current volume a winner is likely within the hour."),
        (80 * HOUR, 1000.0, "; at the current volume a winner is likely in about 3 days."),
        (None, 1000.0, "; at the current volume a winner is not likely within 14 days."),
    ],
)
def test_the_leader_and_the_forecast(
    store: SqlStore, seconds: float | None, volume: float, ending: str
) -> None:
    service, clock = make_service(store)
    report = service.report(settled(service, clock))
    leader = max((a for a in report.arms), key=lambda a: a.p_best or 0.0)

    text = status_sentence(report, forecast(seconds), volume)

    assert leader.headline == "B"
    assert text == f"B leads with a {fmt_prob(leader.p_best)} chance of being best{ending}"


def test_no_volume_and_no_rule_say_why_there_is_no_forecast(store: SqlStore) -> None:
    service, clock = make_service(store)
    quiet = service.report(settled(service, clock))
    manual = service.report(settled(service, clock, auto_stop=False))
    assert status_sentence(quiet, None, 0.0).endswith(
        "; no sends in the last hours, so no forecast of a winner."
    )
    assert status_sentence(manual, None, 500.0).endswith(
        "; automatic stopping is off: complete the experiment by hand."
    )


def test_a_declared_winner_says_when_and_why(store: SqlStore) -> None:
    service, clock = make_service(store)
    experiment_id = settled(service, clock)
    reason = "stopping rule: P(no headline beats it by more than 1.00%) 0.9800 > 0.97"
    store.set_status(
        experiment_id,
        ExperimentStatus.WINNER_DECLARED,
        clock.now(),
        allowed_from=frozenset({ExperimentStatus.RUNNING}),
        winner_arm=1,
        winner_reason=reason,
    )
    service.cache.invalidate(experiment_id)
    report = service.report(experiment_id)
    assert status_sentence(report, None, 10.0) == (
        "Winner declared at 23:43 UTC: B (value remaining fell below 1%). "
        "It now gets 100% of sends."
    )

    service.complete(experiment_id, winner="A")
    report = service.report(experiment_id)
    # Overruled by hand: named by hand, when it was.
    assert status_sentence(report, None, 10.0) == (
        f"Completed. Winner: A, named by hand at {fmt_time(clock.now(), clock.now())}."
    )


def test_stopped_without_a_winner(store: SqlStore) -> None:
    service, clock = make_service(store)
    experiment_id = settled(service, clock)
    service.archive(experiment_id)
    assert status_sentence(service.report(experiment_id), None, 0.0) == "Archived without a winner."


# --- charts -------------------------------------------------------------------------------
def test_charts_follow_the_snapshots_with_markers(store: SqlStore) -> None:
    service, clock = make_service(store, snapshot=HOUR)
    record = service.create(
        build_spec("sale", ["A", "B"], attribution_window_seconds=HOUR, burn_in_per_arm=50)
    )
    for _ in range(4):  # burn-in on at first, then off
        wave = service.allocate(record.id, 200).wave
        clock.advance(0.5 * HOUR)
        sent = wave.arm_to_sends
        service.record_wave_opens(record.id, wave.id, {0: sent[0] // 5, 1: sent[1] // 10})
        clock.advance(0.5 * HOUR)
    service.complete(record.id, winner=0)
    report = service.report(record.id)
    drawn = charts(report)

    shots = report.snapshots
    assert shots[0].burn_in is True and shots[-1].burn_in is False
    labels = [note["text"] for note in drawn["p_best"]["layout"]["annotations"]]
    assert labels == ["burn-in ended", "winner declared"]
    p_best = drawn["p_best"]["data"]
    assert [t["name"] for t in p_best] == ["A", "B"]
    assert p_best[0]["y"] == [s.arm_to_p_best[0] for s in shots]
    assert len(drawn["allocation"]["data"]) == 2
    # Per headline: the band's upper and lower bounds, then the mean, all from the snapshots.
    rate = drawn["rate"]["data"]
    assert len(rate) == 6
    sent = [s for s in shots if s.arm_to_estimate and s.arm_to_sends and s.arm_to_sends[0]]
    assert 0 < len(sent) < len(shots)  # from the first sends on: not the prior before them
    assert rate[2]["y"] == [s.arm_to_estimate[0][0] for s in sent if s.arm_to_estimate]
    assert rate[1]["fill"] == "tonexty"


def test_snapshots_carry_the_reports_estimates(store: SqlStore) -> None:
    """A snapshot written at a refresh holds what the report shows for that moment."""
    service, clock = make_service(store, snapshot=0.0)
    experiment_id = settled(service, clock)
    report = service.report(experiment_id)  # its refresh writes a snapshot at the same time
    shot = report.snapshots[-1]
    assert shot.at == report.generated_at
    for arm in report.arms:
        assert shot.arm_to_estimate is not None and shot.arm_to_sends is not None
        assert shot.arm_to_estimate[arm.arm] == (arm.posterior_mean, *arm.credible_interval)
        assert shot.arm_to_sends[arm.arm] == arm.sends
    assert shot.burn_in is False


def test_densities_integrate_to_one_over_the_percent_axis(store: SqlStore) -> None:
    service, clock = make_service(store)
    report = service.report(settled(service, clock))
    for trace in charts(report)["density"]["data"]:
        x, y = np.array(trace["x"]), np.array(trace["y"])
        # The trapezoid rule on 241 points over +-3.3 sd: error far below 1%.
        assert np.trapezoid(y, x) == pytest.approx(1.0, abs=0.01)


# --- diagnostics -----------------------------------------------------------------------------
def test_diagnostics_come_from_the_logged_propensities(store: SqlStore) -> None:
    service, clock = make_service(store)
    record = service.create(build_spec("sale", ["A", "B"], attribution_window_seconds=HOUR))
    made = [service.decide(record.id).decision for _ in range(40)]
    for decision in made[::3]:
        service.record_open(record.id, decision.id)
    # A declared winner without exploration: its later sends had no choice.
    store.set_status(
        record.id, ExperimentStatus.WINNER_DECLARED, clock.now(), allowed_from=LIVE, winner_arm=0
    )
    service.cache.invalidate(record.id)
    after = [service.decide(record.id).decision for _ in range(5)]
    report = service.report(record.id)
    checks = diagnostics(service, report)

    groups = store.propensity_groups(record.id)
    expected = extra_opens_over_even_split(
        groups.propensity, groups.n_arms, groups.sends, groups.opens
    )
    assert all(d.propensity == 1.0 for d in after)
    assert checks["extra_opens"] == {
        "value": expected.value,
        "low": expected.low,
        "high": expected.high,
    }
    assert checks["decisions"] == 45
    assert checks["decisions_without_open"] == 45 - len(made[::3])
    srm = checks["sample_ratio"]
    assert sum(srm["observed"]) == 40  # the 5 sends without a choice are left out
    assert srm["flagged"] is False  # a sound pipeline: the propensities fit the sends
    assert checks["pending"] == sum(a.pending for a in report.arms)


# --- plan against actual ---------------------------------------------------------------------
def test_plan_rows_set_the_plan_beside_what_happened(store: SqlStore) -> None:
    service, clock = make_service(store)
    report = service.report(settled(service, clock, opens=(100, 130)))
    figures = {
        "replications": 200,
        "hours_to_decision": {"median": 7.0, "p90": 11.0},
        "sends_to_decision": {"median": 10_780.0},
        "p_best": 0.97,
        "extra_opens_vs_even": {"mean": 2303.4},
        "list_size": 60_000,
        "sends_per_hour": 1540.0,
        "open_rates": [0.10, 0.12],
        "headlines": ["A", "B"],
    }
    rows = {
        row["what"]: (row["planned"], row["actual"])
        for row in plan_comparison(figures, report, forecast(2 * HOUR), 250.0, 12.6)
    }
    assert rows["Time to a winner"] == (
        "about 7 h (9 in 10 by 11 h)",
        "not yet (2 h in; about 4 h forecast)",
    )
    assert rows["Sends so far / planned list"] == ("60,000", "2,000 (3%)")
    assert rows["Sends per hour"] == ("1,540", "250")
    assert rows["Extra opens over an even split"] == ("2,303 over the campaign", "13 so far")
    assert rows["Open rate: B"][0] == "12.0%"
    assert rows["Chance the pick is the best"][0] == "97%"


# --- the dashboard's caches ------------------------------------------------------------------
def test_the_forecast_and_diagnostics_are_reused_for_a_minute(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    service, clock = make_service(store)
    experiment_id = settled(service, clock)
    store.record_wave(experiment_id, {0: 300, 1: 300}, clock.now())  # volume: 600 in the hour
    runs: list[float] = []
    real = dashboard_module.forecast_decision

    def counted(*args: Any, **kwargs: Any) -> DecisionForecast | None:
        runs.append(kwargs["now"])
        return real(*args, **kwargs)

    monkeypatch.setattr(dashboard_module, "forecast_decision", counted)
    board = Dashboard(service)
    first = board.page(experiment_id)
    clock.advance(59.0)
    board.page(experiment_id)
    clock.advance(2.0)
    board.page(experiment_id)

    assert runs == [T0 + 1.5 * HOUR, T0 + 1.5 * HOUR + 61.0]
    # 2,600 sends since the start 1.5 h ago (the volume looks back 6 h, or to the start).
    assert first["volume"] == pytest.approx(2600 / 1.5)
    assert first["report"]["experiment_id"] == experiment_id
    assert first["sentence"].startswith("B leads with")


def test_the_list_shows_leaders_and_winners(store: SqlStore) -> None:
    service, clock = make_service(store)
    running = settled(service, clock)
    done = settled(service, clock, opens=(90, 60))
    service.complete(done, winner="A")
    board = Dashboard(service)

    rows = {row.id: row for row in board.rows()}
    assert (rows[running].leader, rows[running].status, rows[running].winner) == (
        "B",
        "running",
        None,
    )
    assert (rows[done].status, rows[done].winner, rows[done].sends, rows[done].opens) == (
        "completed",
        "A",
        2000,
        150,
    )
    assert [row.id for row in board.rows("completed")] == [done]
    assert board.rows("archived") == []


def test_a_report_without_snapshots_still_charts(store: SqlStore) -> None:
    service, _ = make_service(store)
    record = service.create(build_spec("sale", ["A", "B"]))
    report: Report = service.report(record.id, snapshot_limit=0)
    drawn = charts(report)
    assert [t["x"] for t in drawn["p_best"]["data"]] == [[], []]
    assert len(drawn["density"]["data"]) == 2


def test_a_stored_plan_is_simulated_once_and_set_beside_the_actual(store: SqlStore) -> None:
    service, clock = make_service(store)
    plan = parse_plan(
        {
            "name": "planned",
            "headlines": [
                {"text": "A", "true_open_rate": 0.1},
                {"text": "B", "true_open_rate": 0.13},
            ],
            "list_size": 20_000,
            "waves": {"size": 1000, "every": "1h"},
            "seed": 3,
        }
    )
    record = service.create(spec_from_plan(plan))
    wave = service.allocate(record.id, 2000).wave
    clock.advance(1800.0)
    service.record_wave_opens(record.id, wave.id, {0: 90, 1: 120})
    board = Dashboard(service, plan_replications=50, plans_in_background=False)

    page = board.page(record.id)
    figures = board.plan(service.store.get_experiment(record.id))

    assert figures is not None and figures["replications"] == 50
    assert figures["open_rates"] == [0.1, 0.13] and figures["list_size"] == 20_000
    assert figures["sends_per_hour"] == 1000.0
    assert board.plan(service.store.get_experiment(record.id)) is figures  # simulated once
    rows = {row["what"]: row for row in page["plan"]["rows"]}
    assert rows["Open rate: B"]["planned"] == "13.0%"
    assert rows["Sends so far / planned list"]["actual"] == "2,000 (10%)"
    assert page["plan"]["replications"] == 50


def test_a_plan_simulates_in_the_background(store: SqlStore) -> None:
    service, _ = make_service(store)
    plan = parse_plan({"headlines": 2, "open_rates": [0.1, 0.12], "list_size": 4000, "seed": 1})
    record = service.create(spec_from_plan(plan))
    board = Dashboard(service, plan_replications=20)

    assert board.plan(record) == {"pending": True}
    deadline = time.monotonic() + 300.0  # a cold numba cache compiles the simulator first
    while (done := board.plan(record)) == {"pending": True} and time.monotonic() < deadline:
        time.sleep(0.05)
    assert done is not None and done["replications"] == 20
    assert board.plan(service.create(build_spec("plain", ["A", "B"]))) is None
