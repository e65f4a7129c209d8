"""Scenario files: the reference scenario, and one clear line for every bad file."""

from __future__ import annotations

from pathlib import Path

import pytest

from headliner import (
    ABTestThenCommit,
    InvalidParameterError,
    Scenario,
    ScenarioError,
    ThompsonSampling,
    UniformRandom,
    load_scenario,
    reference_scenario,
)
from headliner.core.policies import UCB1, EpsilonGreedy, TopTwoThompson, ab_test_sample_size
from headliner.sim.scenarios import parse_scenario

ROOT = Path(__file__).resolve().parents[3]
GOOD = """
headlines:
  - {text: A, true_open_rate: 0.1}
  - {text: B, true_open_rate: 0.3}
iterations: [10, 100]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_root_reference_yaml_is_the_packaged_copy() -> None:
    root = (ROOT / "scenarios" / "reference.yaml").read_bytes()
    packaged = (ROOT / "src" / "headliner" / "scenarios" / "reference.yaml").read_bytes()
    assert root == packaged


def test_reference_scenario_is_seed_spec_section_3(
    headlines: list[str], rates: list[float]
) -> None:
    scenario = reference_scenario()
    assert scenario.headline_texts == headlines
    assert scenario.true_probabilities.tolist() == rates
    assert scenario.iterations == [100, 1_000, 10_000, 100_000, 1_000_000]
    assert (scenario.seeds.random_seed, scenario.seeds.bandit_seed) == (42, 123)
    assert (scenario.priors.alpha_prior, scenario.priors.beta_prior) == (1.0, 1.0)
    assert scenario.horizon == 1_000_000
    assert scenario.n_arms == 5
    assert load_scenario(ROOT / "scenarios" / "reference.yaml") == scenario


def test_reference_policies_plan_the_ab_test_like_a_marketer() -> None:
    policies = reference_scenario().build_policies()
    assert policies[:2] == [ThompsonSampling(), UniformRandom()]
    assert policies[2] == ABTestThenCommit(n_test_sends=5 * ab_test_sample_size(0.2, 0.1))


def test_defaults_of_a_minimal_file(tmp_path: Path) -> None:
    scenario = load_scenario(write(tmp_path, GOOD))
    assert isinstance(scenario, Scenario)
    assert scenario.seeds.random_seed == 42 and scenario.seeds.bandit_seed == 123
    assert scenario.seeds.monte_carlo_seed is None
    assert scenario.replications == 1
    assert scenario.build_policies() == [ThompsonSampling(), UniformRandom()]


def test_every_policy_with_its_settings(tmp_path: Path) -> None:
    text = GOOD + (
        "policies:\n"
        "  - thompson\n"
        "  - {name: ab_test, n_test_sends: 50}\n"
        "  - {name: epsilon_greedy, epsilon: 0.2}\n"
        "  - ucb1\n"
        "  - {name: top_two, leader_probability: 0.7}\n"
        "  - uniform\n"
    )
    assert load_scenario(write(tmp_path, text)).build_policies() == [
        ThompsonSampling(),
        ABTestThenCommit(n_test_sends=50),
        EpsilonGreedy(epsilon=0.2),
        UCB1(),
        TopTwoThompson(leader_probability=0.7),
        UniformRandom(),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            GOOD.replace("0.3", "1.5"),
            "headlines[1].true_open_rate: Input should be less than or equal to 1 (got 1.5)",
        ),
        (GOOD.replace("text: B", "txt: B"), "headlines[1].text: Field required"),
        (GOOD + "colour: red\n", "colour: Extra inputs are not permitted"),
        (GOOD.replace("[10, 100]", "[100, 10]"), "iterations: must be strictly increasing"),
        (GOOD.replace("[10, 100]", "[0, 100]"), "iterations[0]: Input should be greater than"),
        (GOOD.replace("[10, 100]", "[]"), "iterations: List should have at least 1 item"),
        (GOOD.replace("text: B", "text: A"), "headlines: headline texts must be distinct"),
        (
            GOOD + "seeds: {random_seed: -1}\n",
            "seeds.random_seed: Input should be greater than or equal to 0 (got -1)",
        ),
        (
            GOOD + "priors: {alpha_prior: 0}\n",
            "priors.alpha_prior: Input should be greater than or equal to 0.001 (got 0)",
        ),
        (GOOD + "replications: 0\n", "replications: Input should be greater than or equal to 1"),
        (
            GOOD + "policies: [thompson, {name: ab_test}]\n",
            "policies[1]: give n_test_sends, or both baseline_rate and min_detectable_lift",
        ),
        (
            GOOD + "policies: [{name: ab_test, n_test_sends: 10, baseline_rate: 0.2}]\n",
            "policies[0]: give either n_test_sends or baseline_rate",
        ),
        (
            GOOD + "policies: [{name: epsilon_greedy, epsilon: 2}]\n",
            "policies[0].epsilon: Input should be less than or equal to 1 (got 2)",
        ),
        (
            GOOD + "policies: [{name: ucb1, c: 2}]\n",
            "policies[0].c: Extra inputs are not permitted",
        ),
        (GOOD + "policies: [greedy]\n", "policies[0]: Input tag 'greedy' found using 'name'"),
        (
            GOOD + "policies: [{name: ab_test, baseline_rate: 0.6, min_detectable_lift: 1.0}]\n",
            "policies[0]: The 'min_detectable_lift' parameter of ab_test_sample_size must be",
        ),
        ("- just\n- a list\n", "top level: expected a mapping of scenario keys, got list"),
        ("", "top level: expected a mapping of scenario keys, got nothing"),
        ("headlines: [\n", "invalid YAML"),
        ("a: b: c\n", "line 1, column 5: invalid YAML"),
    ],
    ids=[
        "rate-above-one",
        "missing-text",
        "unknown-key",
        "iterations-not-increasing",
        "iteration-zero",
        "no-iterations",
        "repeated-headline",
        "negative-seed",
        "zero-prior",
        "zero-replications",
        "ab-test-unsized",
        "ab-test-sized-twice",
        "epsilon-above-one",
        "unknown-policy-setting",
        "unknown-policy",
        "ab-test-impossible-lift",
        "list-document",
        "empty-document",
        "unclosed-bracket",
        "mapping-in-value",
    ],
)
def test_bad_file_gives_one_line_naming_file_key_and_problem(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    assert expected in message


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(ScenarioError, match=r"nope.yaml: cannot read scenario file"):
        load_scenario(path)


def test_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "binary.yaml"
    path.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ScenarioError, match=r"binary.yaml: not a UTF-8 text file"):
        load_scenario(path)


def test_scenario_error_is_an_invalid_parameter_error() -> None:
    assert issubclass(ScenarioError, InvalidParameterError)
    assert issubclass(ScenarioError, ValueError)


def test_several_problems_share_one_line() -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario({"headlines": [], "iterations": [0]}, "inline")
    message = str(caught.value)
    assert message.startswith("inline: headlines: ")
    assert "; iterations[0]: " in message


def test_scenario_is_immutable() -> None:
    scenario = reference_scenario()
    with pytest.raises(ValueError, match="frozen"):
        scenario.replications = 3  # type: ignore[misc]
