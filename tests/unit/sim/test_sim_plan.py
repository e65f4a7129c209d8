"""Planning a campaign: the inputs, the figures against the raw simulation, the searches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from headliner.core.errors import InvalidParameterError
from headliner.core.policies import ab_test_sends_per_arm
from headliner.sim.campaign import simulate_campaign
from headliner.sim.plan import (
    TARGET,
    PlanSpec,
    censored_quantile,
    load_plan,
    parse_plan,
    plan_campaign,
)
from headliner.sim.scenarios import ScenarioError

SCENARIOS = Path(__file__).resolve().parents[3] / "scenarios"

# Three headlines, 6,000 sends in 6 hourly waves, opens within the hour: most
# simulated campaigns declare within a few waves.
SMALL: dict[str, Any] = {
    "name": "small",
    "headlines": ["A", "B", "C"],
    "open_rates": [0.10, 0.15, 0.20],
    "list_size": 6_000,
    "waves": {"count": 6, "every": "1h"},
    "open_delay": {"median": "10m", "p95": "45m"},
    "attribution_window": "3h",
    "burn_in_per_arm": 30,
    "stopping": {"min_opens": 30, "check_interval": "1h"},
    "replications": 40,
    "seed": 11,
}


@pytest.fixture(scope="module")
def small_plan() -> Any:
    return plan_campaign(parse_plan(SMALL), search_replications=20, n_threads=1)


def test_the_forms_of_headlines_rates_and_volume() -> None:
    by_count = parse_plan({"headlines": 3, "baseline_rate": 0.2, "best_lift": 0.1, "list_size": 9})
    assert by_count.headlines == ["Headline 1", "Headline 2", "Headline 3"]
    assert by_count.true_rates == pytest.approx((0.22, 0.2, 0.2))
    scenario_style = parse_plan(
        {
            "headlines": [
                {"text": "A", "true_open_rate": 0.1},
                {"text": "B", "true_open_rate": 0.2},
            ],
            "daily_volume": 2400,
            "campaign_length": "2d",
        }
    )
    assert scenario_style.open_rates == [0.1, 0.2]
    campaign = scenario_style.build_campaign()
    # Daily volume without waves: per-send at a 24th of it an hour, over the length.
    assert (campaign.n_sends, campaign.wave_size, campaign.sends_per_hour) == (4800, None, 100.0)
    rates_only = parse_plan({"open_rates": [0.1, 0.2], "list_size": 1000, "waves": {"count": 3}})
    assert rates_only.headlines == ["Headline 1", "Headline 2"]
    assert rates_only.build_campaign().wave_size == 334


def test_the_inputs_survive_a_round_trip_through_json() -> None:
    spec = parse_plan(SMALL)
    again = PlanSpec.model_validate_json(spec.model_dump_json())
    assert again == spec
    assert again.build_campaign() == spec.build_campaign()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"open_rates": [0.1, 1.5, 0.2]}, "open_rates[1]: Input should be less than 1 (got 1.5)"),
        ({"open_rates": [0.0, 0.1, 0.2]}, "open_rates[0]: Input should be greater than 0"),
        (
            {"open_rates": None, "baseline_rate": 0.5, "best_lift": 1.5},
            "best_lift: makes the best headline's rate 1.25; it must be < 1",
        ),
        ({"list_size": 0}, "list_size: Input should be greater than or equal to 1 (got 0)"),
        (
            {"list_size": None, "daily_volume": 0, "campaign_length": "1d"},
            "daily_volume: Input should be greater than 0",
        ),
        ({"attribution_window": "-3h"}, "attribution_window: Input should be greater than 0"),
        ({"attribution_window": -10}, "attribution_window: Input should be greater than 0"),
        ({"list_size": 2}, "list_size: 2 sends for 3 headlines; a plan needs at least one"),
        ({"open_rates": [0.1, 0.2]}, "open_rates: 2 rates for 3 headlines"),
        ({"headlines": 1, "open_rates": [0.1]}, "headlines: a number of headlines must be"),
        ({"budget": 3}, "budget: Extra inputs are not permitted"),
        ({"waves": {"count": 6, "size": 10}}, "waves: give either size or count, not both"),
        ({"counting": "settled"}, "counting: Input should be 'delay_aware'"),
        (
            {"waves": {"count": 6, "every": "5h"}},
            "attribution_window: The 'attribution_window_seconds' parameter of Campaign",
        ),
    ],
)
def test_bad_inputs_give_one_line_naming_the_key(change: dict[str, Any], message: str) -> None:
    data = {**SMALL, **change}
    data = {key: value for key, value in data.items() if value is not None}
    with pytest.raises(ScenarioError) as raised:
        parse_plan(data, "plan.yaml")
    text = str(raised.value)
    assert text.startswith("plan.yaml: ")
    assert message in text
    assert "\n" not in text


def test_the_figures_are_the_simulations(small_plan: Any) -> None:
    result = small_plan.result
    direct = simulate_campaign(parse_plan(SMALL).build_campaign(), 40, seed=11)
    np.testing.assert_array_equal(result.sends, direct.sends)
    document = small_plan.to_document()
    assert document["replications"] == 40 and document["seed"] == 11
    decided = result.decided
    assert document["no_decision_share"] == pytest.approx(1 - decided.mean())
    assert document["p_within_1pct"] == pytest.approx(result.within_best().mean())
    best = decided & (result.declared_arm == 2)
    assert document["p_best"] == pytest.approx(best.mean())
    hours = np.sort(np.where(decided, result.decision_hours, np.inf))
    assert document["hours_to_decision"]["median"] == hours[19]  # the 20th of 40
    expected = result.sends @ np.array([0.10, 0.15, 0.20]) - 6_000 * 0.15
    assert document["extra_opens_vs_even"]["mean"] == pytest.approx(expected.mean())
    assert document["ab_test_sends_per_arm"] == ab_test_sends_per_arm((0.1, 0.15, 0.2))
    low, high = document["p_within_1pct_ci95"]
    assert low <= document["p_within_1pct"] <= high
    for key in ("verdict", "extra_opens_vs_ab_test", "sends_to_decision", "recommendations"):
        assert key in document
    assert document["verdict"].startswith("With 6,000 sends in 6 waves every 1h")
    assert PlanSpec.model_validate(document["inputs"]) == parse_plan(SMALL)


def test_the_ab_test_then_the_winner(small_plan: Any) -> None:
    document = small_plan.to_document()
    assert document["ab_test_fits"]
    assert "an A/B test of 906 sends per headline then the winner" in document["verdict"]
    # The test's sends are split evenly; the rest go to a winner no better than the best.
    rest = 6_000 - 3 * 906
    best_case = 906 * 0.45 + rest * 0.20
    assert small_plan.ab_test_opens.max() <= best_case + 1e-9
    assert small_plan.ab_test_opens.min() >= 906 * 0.45 + rest * 0.10 - 1e-9


def test_the_ab_test_is_all_test_when_the_list_is_too_small() -> None:
    tiny = parse_plan({**SMALL, "list_size": 600, "replications": 10})
    document = plan_campaign(tiny, recommend=False, n_threads=1).to_document()
    assert document["ab_test_sends_per_arm"] * 3 > 600
    assert not document["ab_test_fits"]
    assert document["extra_opens_vs_ab_test"] == document["extra_opens_vs_even"]
    assert "more than the list" in document["verdict"]


def test_the_searches(small_plan: Any) -> None:
    kinds = [search.kind for search in small_plan.searches]
    assert kinds == ["list_size", "cadence", "burn_in"]
    for search in small_plan.searches:
        assert sum(c.is_plan for c in search.candidates) == 1
        assert all(c.replications == (40 if c.is_plan else 20) for c in search.candidates)
        if search.recommended is not None:
            assert search.recommended.p_within_1pct >= TARGET
    sizes = [c.campaign.n_sends for c in small_plan.search("list_size").candidates]
    assert sizes == sorted(sizes) and sizes[-1] >= 6_000
    # Every list keeps the plan's six waves.
    assert {
        c.campaign.step_sends().shape[0] for c in small_plan.search("list_size").candidates
    } == {6}
    burn_ins = [c.campaign.burn_in_per_arm for c in small_plan.search("burn_in").candidates]
    assert burn_ins == [0, 15, 30, 60, 120]
    chosen = small_plan.search("burn_in").recommended
    if chosen is not None:
        tried = small_plan.search("burn_in").candidates
        smaller = [c for c in tried if c.campaign.burn_in_per_arm < chosen.campaign.burn_in_per_arm]
        assert all(c.p_within_1pct < TARGET for c in smaller)
    assert "simulated 20 times" in small_plan.to_document()["recommendations"]["method"]


def test_a_per_send_plan_searches_the_refresh() -> None:
    per_send = {key: value for key, value in SMALL.items() if key != "waves"}
    spec = parse_plan({**per_send, "per_send": {"rate_per_hour": 1000, "refresh": "30m"}})
    plan = plan_campaign(spec, replications=10, search_replications=5, n_threads=1)
    refreshes = [c.setting for c in plan.search("cadence").candidates]
    assert refreshes == [{"refresh_hours": 0.25}, {"refresh_hours": 0.5}, {"refresh_hours": 1.0}]
    assert "sends at 1,000 an hour" in plan.verdict()


def test_a_plan_with_no_learning_says_so() -> None:
    blast = parse_plan({**SMALL, "waves": {"count": 1}, "replications": 10})
    plan = plan_campaign(blast, recommend=False, n_threads=1)
    assert plan.to_document()["no_decision_share"] == 1.0
    assert plan.to_document()["hours_to_decision"]["median"] is None
    assert "no winner is declared" in plan.verdict()
    assert "single blast learns nothing" in plan.verdict()


def test_experiment_settings_are_the_services_request() -> None:
    from headliner.service.schemas import ExperimentCreate

    spec = parse_plan(
        {**SMALL, "policy": {"name": "top_two", "leader_probability": 0.6}, "floor": 0.05}
    )
    settings = spec.experiment_settings()
    request = ExperimentCreate.model_validate(settings)
    assert request.headlines == ["A", "B", "C"]
    assert (request.policy, request.leader_probability) == ("top_two", 0.6)
    assert request.attribution_window_seconds == 3 * 3600.0
    assert (request.burn_in_per_arm, request.floor) == (30, 0.05)
    assert request.stopping.min_opens == 30 and request.stopping.enabled
    off = parse_plan({**SMALL, "stopping": "off"}).experiment_settings()
    assert ExperimentCreate.model_validate(off).stopping.rule() is None


def test_a_simulate_scenario_is_a_plan() -> None:
    spec = load_plan(SCENARIOS / "email-waves.yaml")
    assert spec.n_sends == 100_000 and spec.seed == 2024
    assert spec.true_rates == (0.18, 0.21, 0.16, 0.24, 0.20)
    assert spec.build_campaign().wave_size == 1_000


def test_overrides_are_checked() -> None:
    spec = parse_plan(SMALL)
    with pytest.raises(InvalidParameterError, match="'replications'"):
        plan_campaign(spec, replications=0)
    with pytest.raises(InvalidParameterError, match="'seed'"):
        plan_campaign(spec, seed=-1)


def test_censored_quantile() -> None:
    values = np.array([1.0, 2.0, np.inf, np.inf])
    assert censored_quantile(values, 0.5)[0] == 2.0
    assert censored_quantile(values, 0.9)[0] == np.inf
    assert all(np.isnan(censored_quantile(np.array([]), 0.5)))
