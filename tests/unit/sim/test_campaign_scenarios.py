"""The ``campaign:`` section of scenario files: parsing, defaults, errors and the shipped files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from headliner import ScenarioError, load_scenario
from headliner.core.delay import DelayPrior
from headliner.core.policies import ThompsonSampling, TopTwoThompson, UniformRandom
from headliner.core.stopping import StoppingRule
from headliner.sim.campaign import Campaign, OpenDelay, simulate_campaign
from headliner.sim.scenarios import parse_duration, parse_scenario
from headliner.sim.study import run_campaign_study, run_study

ROOT = Path(__file__).resolve().parents[3]
HEADLINES = """
headlines:
  - {text: A, true_open_rate: 0.1}
  - {text: B, true_open_rate: 0.2}
  - {text: C, true_open_rate: 0.4}
"""
CAMPAIGN = HEADLINES + "campaign:\n  list_size: 1000\n"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "campaign.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_omitted_keys_take_the_library_defaults(tmp_path: Path) -> None:
    scenario = load_scenario(write(tmp_path, CAMPAIGN))
    assert scenario.iterations is None
    assert scenario.campaign is not None and scenario.campaign.replications == 1000
    # Campaign's own defaults, which are the service's.
    assert scenario.build_campaign() == Campaign((0.1, 0.2, 0.4), n_sends=1000)


def test_build_campaign_maps_every_field(tmp_path: Path) -> None:
    text = HEADLINES + (
        "priors: {alpha_prior: 2.0, beta_prior: 3.0}\n"
        "campaign:\n"
        "  list_size: 5000\n"
        "  waves: {size: 250, every: 30m}\n"
        "  open_delay: {median: 1h, p95: 12h}\n"
        "  attribution_window: 2d\n"
        "  policy: {name: top_two, leader_probability: 0.7}\n"
        "  burn_in_per_arm: 40\n"
        "  burn_in_share: 0.5\n"
        "  floor: 0.05\n"
        "  winner_exploration: 0.1\n"
        "  stopping:\n"
        "    p_best_threshold: 0.95\n"
        "    value_remaining_threshold: 0.02\n"
        "    value_remaining_quantile: 0.9\n"
        "    require: all\n"
        "    min_opens: 50\n"
        "    check_interval: 2h\n"
        "  delay_prior: {median: 4h, p95: 48h, weight: 5}\n"
        "  counting: known_curve\n"
        "  replications: 7\n"
    )
    scenario = load_scenario(write(tmp_path, text))
    assert scenario.build_campaign() == Campaign(
        true_rates=(0.1, 0.2, 0.4),
        n_sends=5000,
        wave_size=250,
        interval_seconds=1800.0,
        sends_per_hour=None,
        open_delay=OpenDelay(3600.0, 12 * 3600.0),
        attribution_window_seconds=48 * 3600.0,
        policy=TopTwoThompson(leader_probability=0.7),
        alpha_prior=2.0,
        beta_prior=3.0,
        burn_in_per_arm=40,
        burn_in_share=0.5,
        floor=0.05,
        winner_exploration=0.1,
        stopping=StoppingRule(
            p_best_threshold=0.95,
            value_remaining_threshold=0.02,
            value_remaining_quantile=0.9,
            require="all",
            min_opens=50,
            check_interval_seconds=7200.0,
        ),
        delay_prior=DelayPrior(4 * 3600.0, 48 * 3600.0, 5.0),
        counting="known_curve",
    )
    assert scenario.campaign is not None and scenario.campaign.replications == 7


def test_per_send_traffic_none_delay_and_stopping_off(tmp_path: Path) -> None:
    text = CAMPAIGN + (
        "  per_send: {rate_per_hour: 2000, refresh: 5m}\n"
        "  open_delay: none\n"
        "  stopping: off\n"
        "  policy: uniform\n"
    )
    campaign = load_scenario(write(tmp_path, text)).build_campaign()
    assert (campaign.wave_size, campaign.sends_per_hour) == (None, 2000.0)
    assert campaign.interval_seconds == 300.0
    assert campaign.open_delay is None and campaign.counting == "immediate"
    assert campaign.stopping is None
    assert campaign.policy == UniformRandom()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90.0),
        ("15m", 900.0),
        ("2h", 7200.0),
        ("3d", 259200.0),
        ("1.5h", 5400.0),
        (" 2 H ", 7200.0),
        ("600", 600.0),
        (45, 45.0),
        (0.5, 0.5),
    ],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_a_duration_key_accepts_a_unit(tmp_path: Path) -> None:
    text = CAMPAIGN + "  waves: {size: 100, every: 90s}\n  attribution_window: 3600\n"
    campaign = load_scenario(write(tmp_path, text)).build_campaign()
    assert (campaign.interval_seconds, campaign.attribution_window_seconds) == (90.0, 3600.0)


def test_stopping_criterion_can_be_switched_off(tmp_path: Path) -> None:
    text = CAMPAIGN + "  stopping: {p_best_threshold: off, min_opens: 10}\n"
    rule = load_scenario(write(tmp_path, text)).build_campaign().stopping
    assert rule == StoppingRule(p_best_threshold=None, min_opens=10)


def test_policy_names_are_the_services(tmp_path: Path) -> None:
    for name, policy in (
        ("thompson", ThompsonSampling()),
        ("uniform", UniformRandom()),
        ("top_two", TopTwoThompson()),
    ):
        text = CAMPAIGN + f"  policy: {name}\n"
        assert load_scenario(write(tmp_path, text)).build_campaign().policy == policy


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            "  waves: {size: 100, every: 1h}\n  per_send: {rate_per_hour: 10}\n",
            "campaign: give either waves or per_send, not both",
        ),
        ("  colour: red\n", "campaign.colour: Extra inputs are not permitted"),
        ("  waves: {size: 100, often: 1h}\n", "campaign.waves.often: Extra inputs are not"),
        ("  stopping: {p_best: 0.9}\n", "campaign.stopping.p_best: Extra inputs are not"),
        (
            "  waves: {every: 1 hour}\n",
            "campaign.waves.every: a duration must be seconds, or a number with a unit "
            "s, m, h or d (e.g. 90s, 15m, 2h, 3d) (got '1 hour')",
        ),
        (
            "  attribution_window: -2h\n",
            "campaign.attribution_window: Input should be greater than 0",
        ),
        (
            "  open_delay: {median: 0s}\n",
            "campaign.open_delay.median: Input should be greater than 0",
        ),
        ("  waves: {size: 0}\n", "campaign.waves.size: Input should be greater than or equal"),
        ("  per_send: {refresh: 5m}\n", "campaign.per_send.rate_per_hour: Field required"),
        ("  burn_in_share: 1.5\n", "campaign.burn_in_share: Input should be less than or equal"),
        ("  counting: eventually\n", "campaign.counting: Input should be 'delay_aware'"),
        ("  policy: ucb1\n", "campaign.policy: Input tag 'ucb1' found using 'name'"),
        (
            "  policy: {name: top_two, leader_probability: 2}\n",
            "campaign.policy.leader_probability: Input should be less than or equal to 1",
        ),
        ("  replications: 0\n", "campaign.replications: Input should be greater than or equal"),
        (
            "  stopping: {p_best_threshold: 0.3}\n",
            "campaign.stopping.p_best_threshold: Input should be greater than or equal to 0.5",
        ),
        # Settings that only the library can judge, reported at their key path.
        (
            "  waves: {size: 100, every: 2h}\n  attribution_window: 1h\n",
            "campaign.attribution_window: The 'attribution_window_seconds' parameter of "
            "Campaign must be a float >= 7200. Got 3600.0 instead.",
        ),
        (
            "  floor: 0.5\n",
            "campaign.floor: The 'floor' parameter of Campaign must be at most 1/3 with 3 "
            "headlines. Got 0.5 instead.",
        ),
        (
            "  open_delay: {median: 2h, p95: 1h}\n",
            "campaign.open_delay.p95: The 'p95_seconds' parameter of OpenDelay must be",
        ),
        (
            "  delay_prior: {median: 3h, p95: 2h}\n",
            "campaign.delay_prior.p95: The 'p95_seconds' parameter of DelayPrior must be",
        ),
        (
            "  stopping: {p_best_threshold: off, value_remaining_threshold: off}\n",
            "campaign.stopping.p_best_threshold: The 'p_best_threshold' parameter of "
            "StoppingRule must be set when value_remaining_threshold is None",
        ),
    ],
    ids=[
        "waves-and-per-send",
        "unknown-key",
        "unknown-waves-key",
        "unknown-stopping-key",
        "bad-duration",
        "negative-duration",
        "zero-duration",
        "zero-wave-size",
        "per-send-without-rate",
        "burn-in-share-above-one",
        "unknown-counting",
        "policy-not-the-services",
        "top-two-leader-above-one",
        "zero-replications",
        "p-best-threshold-too-low",
        "window-shorter-than-a-wave",
        "floor-above-an-even-share",
        "open-delay-p95-below-median",
        "delay-prior-p95-below-median",
        "stopping-with-no-criterion",
    ],
)
def test_bad_campaign_gives_one_line_with_the_key_path(
    tmp_path: Path, extra: str, expected: str
) -> None:
    path = write(tmp_path, CAMPAIGN + extra)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    assert expected in message


def test_missing_list_size(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"campaign\.list_size: Field required"):
        load_scenario(write(tmp_path, HEADLINES + "campaign:\n  replications: 3\n"))


def test_a_scenario_needs_iterations_or_a_campaign(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="top level: give iterations, a campaign section"):
        load_scenario(write(tmp_path, HEADLINES))


def test_iterations_and_campaign_together(tmp_path: Path) -> None:
    scenario = load_scenario(write(tmp_path, CAMPAIGN + "iterations: [10, 100]\n"))
    assert scenario.iterations == [10, 100] and scenario.horizon == 100
    assert scenario.build_campaign().n_sends == 1000


def test_a_campaign_only_scenario_has_no_horizon(tmp_path: Path) -> None:
    scenario = load_scenario(write(tmp_path, CAMPAIGN))
    with pytest.raises(ScenarioError, match="iterations"):
        _ = scenario.horizon
    with pytest.raises(ScenarioError, match="iterations"):
        run_study(scenario)


def test_build_campaign_without_a_campaign(tmp_path: Path) -> None:
    scenario = load_scenario(write(tmp_path, HEADLINES + "iterations: [10]\n"))
    assert scenario.campaign is None
    with pytest.raises(ScenarioError, match="campaign: the scenario has no campaign section"):
        scenario.build_campaign()


def test_a_campaign_survives_a_round_trip_through_model_dump(tmp_path: Path) -> None:
    # `headliner simulate --policies` re-validates the dumped scenario.
    text = CAMPAIGN + (
        "  per_send: {rate_per_hour: 500, refresh: 10m}\n  open_delay: none\n  stopping: off\n"
    )
    scenario = load_scenario(write(tmp_path, text))
    again = parse_scenario(scenario.model_dump(), "dump")
    assert again.build_campaign() == scenario.build_campaign()


@pytest.mark.parametrize(
    ("name", "wave_size", "sends_per_hour", "interval", "replications"),
    [
        ("email-waves", 1000, None, 3600.0, 1000),
        ("email-per-send", None, 4000.0, 300.0, 200),
    ],
)
def test_shipped_campaign_scenarios_load(
    name: str,
    wave_size: int | None,
    sends_per_hour: float | None,
    interval: float,
    replications: int,
    headlines: list[str],
    rates: list[float],
) -> None:
    scenario = load_scenario(ROOT / "scenarios" / f"{name}.yaml")
    assert scenario.name == name
    assert scenario.headline_texts == headlines
    assert scenario.true_probabilities.tolist() == rates
    assert scenario.seeds.monte_carlo_seed is not None
    assert scenario.campaign is not None and scenario.campaign.replications == replications
    campaign = scenario.build_campaign()
    assert campaign.n_sends == 100_000
    assert (campaign.wave_size, campaign.sends_per_hour) == (wave_size, sends_per_hour)
    assert campaign.interval_seconds == interval
    assert campaign.open_delay == OpenDelay(2 * 3600.0, 24 * 3600.0)
    assert campaign.attribution_window_seconds == 72 * 3600.0


def test_run_campaign_study_is_simulate_campaign_with_the_scenarios_seed(tmp_path: Path) -> None:
    text = CAMPAIGN.replace("1000", "600") + (
        "  waves: {size: 200, every: 1h}\n  replications: 3\nseeds: {monte_carlo_seed: 5}\n"
    )
    scenario = load_scenario(write(tmp_path, text))
    study = run_campaign_study(scenario, n_threads=1)
    direct = simulate_campaign(scenario.build_campaign(), 3, seed=5)
    assert study.scenario is scenario and study.headlines == ["A", "B", "C"]
    assert study.result.seed == 5 and study.result.n_replications == 3
    np.testing.assert_array_equal(study.result.opens, direct.opens)
    np.testing.assert_array_equal(study.result.sends, direct.sends)
    # Overrides win over the scenario's replications and seed.
    other = run_campaign_study(scenario, replications=2, seed=9)
    assert (other.result.n_replications, other.result.seed) == (2, 9)
    np.testing.assert_array_equal(
        other.result.opens, simulate_campaign(scenario.build_campaign(), 2, seed=9).opens
    )
