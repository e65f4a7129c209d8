"""``headliner simulate``: default output, formats, options and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from headliner.cli import app, main


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_default_run_prints_the_reference_table_and_writes_plots(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = _run(capsys, "simulate", "--out", str(tmp_path))
    assert code == 0, err
    row = next(line for line in out.splitlines() if line.split()[:1] == ["10000"])
    # The seed design's published 10,000-send row for seeds 42 and 123.
    assert row.split()[1:3] == ["1908", "2371"]
    assert "24.27%" in row
    assert "19.08%" in row and "23.71%" in row
    assert "lift_vs_ab_test_pct" in out
    for name in ("extra_opens.png", "p_best.png", "send_share.png", "posteriors.png"):
        assert (tmp_path / name).stat().st_size > 10_000
    assert not (tmp_path / "regret.png").exists()


def test_replications_add_monte_carlo_table_and_regret_plot(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = _run(
        capsys,
        "simulate",
        "--iterations",
        "100,2000",
        "--replications",
        "20",
        "--policies",
        "thompson,uniform",
        "--seed",
        "7",
        "--out",
        str(tmp_path),
    )
    assert code == 0, err
    assert "Monte Carlo: 20 replications, seed 7" in out
    assert (tmp_path / "regret.png").stat().st_size > 10_000


def test_json_format_is_machine_readable(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(
        capsys, "simulate", "--iterations", "10000", "--format", "json", "--no-plots"
    )
    assert code == 0
    document = json.loads(out)
    (row,) = document["comparison"]
    # One unit for rates and lifts in machine output: fractions (+24.27% is 0.2427).
    assert (row["random_opens"], row["bandit_opens"], row["opens_lift"]) == (1908, 2371, 0.2427)
    assert (row["random_open_rate"], row["bandit_open_rate"]) == (0.1908, 0.2371)
    assert not [key for key in row if key.endswith("_pct")]


def test_csv_format_has_the_seed_columns_as_fractions(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(
        capsys, "simulate", "--iterations", "10000", "--format", "csv", "--no-plots"
    )
    assert code == 0
    header, row = (line.split(",") for line in out.splitlines()[:2])
    assert header[:8] == [
        "iterations",
        "random_opens",
        "bandit_opens",
        "additional_opens_from_bandit",
        "opens_lift",
        "random_open_rate",
        "bandit_open_rate",
        "open_rate_lift",
    ]
    assert row[:8] == ["10000", "1908", "2371", "463", "0.2427", "0.1908", "0.2371", "0.2427"]


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        pytest.param(["--format", "xml"], "--format", id="bad-format"),
        pytest.param(["--iterations", "ten"], "--iterations", id="non-integer-iterations"),
        pytest.param(["--iterations", "0"], "--iterations", id="zero-iterations"),
        pytest.param(["--policies", "thompson,magic"], "policies[1]", id="unknown-policy"),
    ],
)
def test_bad_options_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], fragment: str
) -> None:
    code, out, err = _run(capsys, "simulate", "--no-plots", *argv)
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0]


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        pytest.param("headlines: [", "invalid YAML", id="not-yaml"),
        pytest.param(
            "headlines: [{text: A, true_open_rate: 1.5}]\niterations: [10]\n",
            "headlines[0].true_open_rate",
            id="rate-above-one",
        ),
        pytest.param(
            "headlines: [{text: A, true_open_rate: 0.1}]\niterations: [10]\ncolour: red\n",
            "colour",
            id="unknown-key",
        ),
    ],
)
def test_bad_scenario_exits_2_with_one_line_on_stderr(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: str, fragment: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    code, out, err = _run(capsys, "simulate", str(path), "--no-plots")
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert "bad.yaml" in lines[0] and fragment in lines[0]


def test_missing_scenario_file_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = _run(capsys, "simulate", str(tmp_path / "nope.yaml"), "--no-plots")
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "nope.yaml" in err


def test_every_command_has_help_text() -> None:
    import typer.main

    group = typer.main.get_command(app)
    commands = group.commands  # type: ignore[attr-defined]
    assert "simulate" in commands
    for name, command in commands.items():
        assert (command.help or "").strip(), f"command {name} has no help text"
