"""``headliner simulate`` on a scenario with a campaign: table, JSON, CSV, plots and errors."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from headliner.cli import app, main
from headliner.core.policies import ab_test_sample_size
from headliner.sim.campaign import mean_and_ci, proportion_and_ci, simulate_campaign
from headliner.sim.scenarios import load_scenario

# 3 headlines, 5 waves of 200, fast opens: a campaign that runs in a blink.
TINY = """\
name: tiny
headlines:
  - {text: "Ten percent", true_open_rate: 0.1}
  - {text: "Twenty percent", true_open_rate: 0.2}
  - {text: "Forty percent", true_open_rate: 0.4}
seeds: {monte_carlo_seed: 11}
campaign:
  list_size: 1000
  waves: {size: 200, every: 1h}
  open_delay: {median: 30m, p95: 2h}
  delay_prior: {median: 30m, p95: 2h}
  attribution_window: 6h
  burn_in_per_arm: 20
  stopping: {min_opens: 20, check_interval: 0}
  replications: 10
"""
PLOTS = ("campaign_allocation.png", "campaign_p_best.png", "campaign_decision_time.png")


@pytest.fixture
def scenario_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY, encoding="utf-8")
    return path


def invoke(*argv: str) -> tuple[str, str]:
    """Run the CLI in-process; return stdout and stderr of a successful run."""
    result = CliRunner().invoke(app, list(argv))
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout, result.stderr


def test_table_shows_the_campaign_figures_and_plots_are_written(
    scenario_file: Path, tmp_path: Path
) -> None:
    out_dir = tmp_path / "out"
    stdout, stderr = invoke("simulate", str(scenario_file), "--out", str(out_dir))
    flat = " ".join(stdout.split())
    assert 'Campaign "tiny": 1,000 sends in waves of 200 every 1h' in flat
    assert "10 simulated campaigns, seed 11" in flat  # the file's replications and seed
    for label in (
        "Opens per campaign",
        "Extra opens vs an even split",
        "Opens lost vs always the best headline",
        "Campaigns that declared a winner",
        "Declared winners within 1% of the best",
        "Hours to a decision: median",
        "Sends to a decision: 90th percentile",
        f"needs {ab_test_sample_size(0.2, 1.0):,} sends per headline",
    ):
        assert label in flat
    assert max(len(line) for line in stdout.splitlines()) <= 80
    # No seed comparison: the scenario has no iterations.
    assert "random_opens" not in stdout and "iterations" not in stdout
    for name in PLOTS:
        assert (out_dir / name).stat().st_size > 10_000
        assert f"wrote {out_dir / name}" in stderr
    assert not (out_dir / "extra_opens.png").exists()


def test_json_agrees_with_simulate_campaign(scenario_file: Path) -> None:
    stdout, _ = invoke(
        "simulate", str(scenario_file), "--replications", "6", "--seed", "3",
        "--format", "json", "--no-plots",
    )  # fmt: skip
    document = json.loads(stdout)
    for key in (
        "scenario",
        "replications",
        "seed",
        "opens",
        "extra_opens_vs_even",
        "regret",
        "decided_share",
        "within_1pct_share",
        "hours_to_decision",
        "sends_to_decision",
        "ab_test_sends_per_arm",
    ):
        assert key in document
    assert (document["scenario"], document["replications"], document["seed"]) == ("tiny", 6, 3)

    direct = simulate_campaign(load_scenario(scenario_file).build_campaign(), 6, seed=3)
    mean, half = mean_and_ci(direct.opens)
    assert document["opens"]["mean"] == pytest.approx(mean, rel=1e-12)
    assert document["opens"]["ci95"] == pytest.approx([mean - half, mean + half], rel=1e-12)
    even = 1000 * (0.1 + 0.2 + 0.4) / 3
    assert document["extra_opens_vs_even"]["mean"] == pytest.approx(mean - even, rel=1e-12)
    assert document["regret"]["mean"] == pytest.approx(direct.regret.mean(), rel=1e-12)
    share, low, high = proportion_and_ci(direct.decided)
    assert document["decided_share"]["value"] == pytest.approx(share)
    assert document["decided_share"]["ci95"] == pytest.approx([low, high])
    within = direct.within_best(0.01)[direct.decided]
    assert document["within_1pct_share"]["value"] == pytest.approx(within.mean())
    hours = direct.decision_hours[direct.decided]
    assert document["hours_to_decision"]["median"] == pytest.approx(np.median(hours))
    assert document["hours_to_decision"]["p90"] == pytest.approx(np.quantile(hours, 0.9))
    sends = direct.decision_sends[direct.decided]
    assert document["sends_to_decision"]["median"] == pytest.approx(np.median(sends))
    assert document["ab_test_sends_per_arm"] == ab_test_sample_size(0.2, 1.0)


def test_csv_has_one_row_per_replication(scenario_file: Path) -> None:
    stdout, _ = invoke(
        "simulate", str(scenario_file), "--replications", "4", "--format", "csv", "--no-plots"
    )
    rows = list(csv.DictReader(io.StringIO(stdout)))
    assert len(rows) == 4
    direct = simulate_campaign(load_scenario(scenario_file).build_campaign(), 4, seed=11)
    assert [int(row["opens"]) for row in rows] == direct.opens.tolist()
    assert [int(row["declared_arm"]) for row in rows] == direct.declared_arm.tolist()
    for row in rows:
        assert {"regret", "decision_hours", "decision_sends"} <= row.keys()


def test_iterations_and_campaign_run_and_print_both(scenario_file: Path) -> None:
    scenario_file.write_text(TINY + "iterations: [100, 500]\n", encoding="utf-8")
    stdout, _ = invoke("simulate", str(scenario_file), "--replications", "3", "--no-plots")
    assert "random_opens" in stdout and "bandit_opens" in stdout
    assert "3 simulated campaigns, seed 11" in " ".join(stdout.split())

    stdout, _ = invoke(
        "simulate", str(scenario_file), "--replications", "3", "--format", "json", "--no-plots"
    )
    document = json.loads(stdout)
    assert [row["iterations"] for row in document["comparison"]] == [100, 500]
    assert "monte_carlo" not in document  # --replications is the campaign's
    assert document["replications"] == 3 and "opens" in document


def test_iterations_option_adds_the_comparison_to_a_campaign(scenario_file: Path) -> None:
    stdout, _ = invoke(
        "simulate", str(scenario_file), "--iterations", "100", "--replications", "2",
        "--no-plots",
    )  # fmt: skip
    assert "random_opens" in stdout and "Opens per campaign" in stdout


def _main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_policies_without_a_comparison_exit_2(
    capsys: pytest.CaptureFixture[str], scenario_file: Path
) -> None:
    code, out, err = _main(
        capsys, "simulate", str(scenario_file), "--policies", "thompson", "--no-plots"
    )
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "--policies" in lines[0]


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ("  colour: red\n", "campaign.colour"),
        ("  per_send: {rate_per_hour: 100}\n", "campaign: give either waves or per_send"),
        ("  floor: 0.9\n", "campaign.floor: The 'floor' parameter of Campaign"),
    ],
    ids=["unknown-key", "waves-and-per-send", "floor-too-high"],
)
def test_bad_campaign_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, extra: str, fragment: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(TINY + extra, encoding="utf-8")
    code, out, err = _main(capsys, "simulate", str(path), "--no-plots")
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert "bad.yaml" in lines[0] and fragment in lines[0]
