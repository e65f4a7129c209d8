"""``headliner plan``: a file, options over it, the three formats, plots and bad inputs."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from headliner.cli import app, main
from headliner.sim.plan import parse_plan, plan_campaign

PLAN = """\
name: spring
headlines: [Save 25%, Final chance, Just for you]
open_rates: [0.10, 0.15, 0.20]
list_size: 3000
waves: {count: 6, every: 1h}
open_delay: {median: 10m, p95: 45m}
attribution_window: 3h
burn_in_per_arm: 30
stopping: {min_opens: 30}
replications: 20
seed: 5
"""
OPTIONS = ("--headlines", "3", "--rates", "10%,15%,20%", "--list-size", "3000", "--waves", "6")
QUICK = ("--no-recommend", "--no-plots", "--replications", "10", "--seed", "5")


@pytest.fixture
def plan_file(tmp_path: Path) -> Path:
    path = tmp_path / "spring.yaml"
    path.write_text(PLAN, encoding="utf-8")
    return path


def invoke(*argv: str) -> tuple[str, str]:
    result = CliRunner().invoke(app, list(argv))
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout, result.stderr


def test_the_table_plots_and_recommendations(plan_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    stdout, stderr = invoke("plan", str(plan_file), "--out", str(out))
    flat = " ".join(stdout.split())
    assert 'Plan "spring": 3,000 sends in waves of 500 every 1h' in flat
    assert "With 3,000 sends in 6 waves every 1h" in flat
    assert "Declared one within 1% of the best" in flat
    assert "To keep the pick within 1% of the best in 95% of campaigns:" in flat
    assert "Searched: a bounded search" in flat
    assert all(len(line) <= 80 for line in stdout.splitlines())
    for name in ("plan_decision_time.png", "plan_allocation.png", "plan_list_size.png"):
        assert (out / name).stat().st_size > 0
        assert f"wrote {out / name}" in stderr


def test_json_is_the_library_document(plan_file: Path) -> None:
    stdout, _ = invoke("plan", str(plan_file), "--format", "json", "--no-plots")
    document = json.loads(stdout)
    expected = plan_campaign(parse_plan(PLAN_DATA())).to_document()
    for key in (
        "replications",
        "hours_to_decision",
        "sends_to_decision",
        "no_decision_share",
        "p_best",
        "p_within_1pct",
        "extra_opens_vs_even",
        "extra_opens_vs_ab_test",
        "ab_test_sends_per_arm",
        "verdict",
    ):
        assert document[key] == expected[key], key
    assert set(document["hours_to_decision"]) >= {"median", "p90"}
    assert set(document["extra_opens_vs_even"]) >= {"mean", "ci95"}


def PLAN_DATA() -> dict[str, object]:  # noqa: N802  # the file's keys, as a mapping
    import yaml

    data: dict[str, object] = yaml.safe_load(PLAN)
    return data


def test_options_alone_and_over_a_file(plan_file: Path) -> None:
    stdout, _ = invoke("plan", *OPTIONS, *QUICK, "--format", "json")
    document = json.loads(stdout)
    assert document["inputs"]["headlines"] == ["Headline 1", "Headline 2", "Headline 3"]
    assert document["campaign"]["waves"] == {"count": 6, "size": 500, "every_hours": 1.0}
    stdout, _ = invoke(
        "plan", str(plan_file), *QUICK, "--format", "json", "--wave-size", "1000", "--every", "2h"
    )
    document = json.loads(stdout)
    assert document["campaign"]["waves"] == {"count": 3, "size": 1000, "every_hours": 2.0}
    assert document["inputs"]["headlines"][0] == "Save 25%"
    assert document["replications"] == 10


def test_csv_has_one_row_per_figure(plan_file: Path) -> None:
    stdout, _ = invoke("plan", str(plan_file), *QUICK, "--format", "csv")
    rows = {row["figure"]: row for row in csv.DictReader(io.StringIO(stdout))}
    assert float(rows["p_within_1pct"]["ci95_low"]) <= float(rows["p_within_1pct"]["value"])
    assert {"hours_to_decision_median", "extra_opens_vs_ab_test", "verdict"} <= set(rows)


def test_a_simulate_scenario_plans_its_campaign() -> None:
    scenario = Path(__file__).resolve().parents[3] / "scenarios" / "email-waves.yaml"
    stdout, _ = invoke("plan", str(scenario), *QUICK, "--list-size", "5000", "--format", "json")
    document = json.loads(stdout)
    assert document["campaign"]["list_size"] == 5000
    assert document["headlines"][3]["text"] == "Ending Tonight: Final Chance to Save"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--rates", "0.1,1.2,0.2"), "--rates[1]: Input should be less than 1 (got 1.2)"),
        (("--rates", "0,0.1,0.2"), "--rates[0]: Input should be greater than 0"),
        (("--rates", "", "--baseline", "60%", "--lift", "100%"), "--lift: makes the best"),
        (("--list-size", "0"), "--list-size: Input should be greater than or equal to 1"),
        (("--daily-volume", "0", "--length", "3d"), "--daily-volume: Input should be greater"),
        (("--window", "-1h"), "--window: Input should be greater than 0"),
        (("--list-size", "2"), "--list-size: 2 sends for 3 headlines"),
        (("--headlines", "1"), "--headlines: a number of headlines must be"),
        (("--rates", "ten"), "--rates must be comma-separated rates"),
        (("--format", "xml"), "--format must be one of table, json, csv"),
    ],
)
def test_bad_inputs_are_one_line_and_exit_2(
    argv: tuple[str, ...], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = list(OPTIONS)
    for option, value in zip(argv[::2], argv[1::2], strict=True):
        if option in args:
            at = args.index(option)
            del args[at : at + 2]
        if value:
            args += [option, value]
    assert main(["plan", *args, *QUICK]) == 2
    err = capsys.readouterr().err
    assert err.startswith("headliner: error: ")
    assert message in err
    assert err.count("\n") == 1


def test_a_missing_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(tmp_path / "nope.yaml")]) == 2
    assert "cannot read scenario file" in capsys.readouterr().err
