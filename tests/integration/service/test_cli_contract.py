"""The whole ``headliner`` command tree through its real entry point, as a shell runs it.

Exit codes: 0 done, 2 usage or domain error, 3 database unreachable or server
refused to start; every error is one line on stderr with no traceback.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer

from headliner.cli import app, main
from headliner.service.schemas import (
    ApiKeyPublic,
    DecisionLogPublic,
    ExperimentSummary,
    ReportPublic,
    iso_time,
)
from headliner.service.settings import get_settings
from headliner.storage.sql import open_store

REFERENCE = Path(__file__).resolve().parents[3] / "scenarios" / "reference.yaml"
T0 = 1_700_000_000.0


@pytest.fixture(autouse=True)
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)
    for name in ("HEADLINER_CONFIG", "HEADLINER_DATABASE_URL", "HEADLINER_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("COLUMNS", "80")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _command_paths(group: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, command in group.commands.items():
        yield (*prefix, name)
        if hasattr(command, "commands"):
            yield from _command_paths(command, (*prefix, name))


COMMANDS = sorted(_command_paths(typer.main.get_command(app)))


def test_the_tree_has_the_lifecycle_commands() -> None:
    for path in [
        ("experiments", "complete"),
        ("experiments", "archive"),
        ("experiments", "headlines", "add"),
        ("experiments", "headlines", "retire"),
        ("experiments", "decisions", "list"),
        ("experiments", "decisions", "export"),
    ]:
        assert path in COMMANDS


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_command_has_help(capsys: pytest.CaptureFixture[str], path: tuple[str, ...]) -> None:
    code, out, err = run(capsys, *path, "--help")
    assert code == 0, err
    assert "Usage" in out and "Traceback" not in out + err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--version")
    assert code == 0
    assert out.startswith("headliner ")


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--nope"], "No such option: --nope"),
        (["simulate", "--replications", "0"], "--replications"),
        (["simulate", "--iteration", "100"], "No such option: --iteration"),
        (["experiments", "report"], "Missing argument"),
        (["experiments", "create", "--from", "nope.yaml"], "nope.yaml"),
        (["keys", "list", "--format", "xml"], "--format"),
        (["experiments", "headlines", "retire", "x", "first"], "ARM"),
        (["experiments", "decisions", "list", "x", "--limit", "0"], "--limit"),
        (["experiments", "decisions", "export", "x"], "--out"),
        (["experiments", "decisions", "export", "x", "--out", "f", "-f", "xml"], "--format"),
        (["experiments", "report", "x", "--html"], "--html"),
        (["keys", "create", "ci", "--read-only", "yes"], "unexpected extra argument"),
    ],
    ids=[
        "unknown-option",
        "out-of-range",
        "typo",
        "missing-id",
        "no-file",
        "bad-format",
        "arm",
        "limit",
        "no-out",
        "export-format",
        "html-file",
        "read-only-flag",
    ],
)
def test_a_usage_error_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], says: str
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("headliner: error: ")
    assert says.lower() in err.lower()
    assert "Traceback" not in out + err


@pytest.mark.parametrize("argv", [[], ["experiments"], ["experiments", "headlines"], ["keys"]])
def test_a_bare_group_prints_its_help_and_exits_2(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert "Usage" in out + err and "Traceback" not in out + err


@pytest.mark.parametrize(
    ("argv", "env", "code", "says"),
    [
        (["experiments", "report", "nope"], {}, 2, "not found"),
        (["keys", "revoke", "nope"], {}, 2, "not found"),
        (["experiments", "complete", "nope", "--winner", "0"], {}, 2, "not found"),
        (["experiments", "decisions", "list", "nope"], {}, 2, "not found"),
        (["experiments", "decisions", "export", "nope", "--out", "d.csv"], {}, 2, "not found"),
        (["experiments", "report", "nope", "--html", "r.html"], {}, 2, "not found"),
        (["db", "upgrade"], {"HEADLINER_DATABASE_URL": "mysql://x/y"}, 2, "database URL"),
        (["keys", "list"], {"HEADLINER_PORT": "abc"}, 2, "invalid setting port"),
        (["keys", "list"], {"HEADLINER_CONFIG": "nope.yaml"}, 2, "not a file"),
        (
            ["keys", "list"],
            {"HEADLINER_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:1/x"},
            3,
            "database",
        ),
    ],
    ids=[
        "report",
        "revoke",
        "complete",
        "decisions",
        "export",
        "html",
        "mysql",
        "port",
        "config",
        "unreachable",
    ],
)
def test_a_failure_exits_non_zero_with_one_line(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    env: dict[str, str],
    code: int,
    says: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    got, out, err = run(capsys, *argv)
    assert got == code
    assert err.count("\n") == 1 and says.lower() in err.lower()
    assert "Traceback" not in out + err


def test_the_lifecycle_and_machine_readable_output(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = run(capsys, "experiments", "create", "--from", str(REFERENCE))
    assert code == 0, err
    experiment_id = out.strip()

    # Another working directory, the same per-user database.
    other = tmp_path / "elsewhere"
    other.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(other)
        get_settings.cache_clear()
        code, out, _ = run(capsys, "experiments", "list", "--format", "json")
    get_settings.cache_clear()
    listed = [ExperimentSummary.model_validate(row) for row in json.loads(out)]
    assert [e.id for e in listed] == [experiment_id]

    code, out, _ = run(capsys, "experiments", "list")
    assert code == 0 and experiment_id in out  # whole, in 80 columns
    assert max(len(line) for line in out.splitlines()) <= 80

    code, out, _ = run(capsys, "experiments", "report", experiment_id, "--format", "json")
    report = ReportPublic.model_validate_json(out)
    assert len(report.arms) == 5

    code, out, _ = run(capsys, "experiments", "report", experiment_id, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["headline"] for r in rows] == [a.headline for a in report.arms]

    code, out, _ = run(capsys, "experiments", "report", experiment_id)
    tables, _, facts = out.partition("open delay:")
    assert code == 0 and facts  # the facts below are one line each, whatever the width
    assert max(len(line) for line in tables.splitlines()) <= 80
    assert all(a.headline.split()[0] in tables for a in report.arms)

    code, out, _ = run(capsys, "experiments", "headlines", "add", experiment_id, "Last call")
    assert code == 0 and "#5" in out
    code, out, _ = run(capsys, "experiments", "headlines", "retire", experiment_id, "0")
    assert code == 0 and "retired headline #0" in out
    winner = report.arms[3].headline
    code, out, _ = run(capsys, "experiments", "complete", experiment_id, "--winner", winner)
    assert code == 0 and winner in out
    code, _, err = run(capsys, "experiments", "complete", experiment_id, "--winner", "1")
    assert code == 2 and "completed" in err
    code, out, _ = run(capsys, "experiments", "archive", experiment_id)
    assert code == 0
    code, out, _ = run(capsys, "experiments", "list", "--format", "json")
    assert json.loads(out) == []


def test_keys_list_formats(capsys: pytest.CaptureFixture[str]) -> None:
    code, secret, _ = run(capsys, "keys", "create", "ci")
    assert code == 0 and secret.strip()
    code, out, _ = run(capsys, "keys", "list", "--format", "json")
    (key,) = [ApiKeyPublic.model_validate(row) for row in json.loads(out)]
    assert key.name == "ci"
    code, out, _ = run(capsys, "keys", "list")
    assert key.id in out and "UTC" in out  # a readable date, not an epoch number


def test_decisions_list_and_export(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = run(capsys, "experiments", "create", "--from", str(REFERENCE))
    assert code == 0, err
    experiment_id = out.strip()
    store = open_store(get_settings().database_url)
    try:
        made = [
            store.record_decision(experiment_id, i % 5, 0.2, T0 + i, recipient_id=f"r{i}")[0]
            for i in range(25)
        ]
        store.record_open(experiment_id, made[3].id, T0 + 30, 3600.0)
    finally:
        store.close()

    code, out, err = run(capsys, "experiments", "decisions", "list", experiment_id)
    assert code == 0, err
    assert made[0].id in out and made[19].id in out and made[20].id not in out  # 20 by default
    assert max(len(line) for line in out.splitlines()) <= 80
    assert err == f"more: --after {made[19].id}\n"

    code, out, err = run(
        capsys, "experiments", "decisions", "list", experiment_id, "--after", made[19].id,
        "--format", "json",
    )  # fmt: skip
    page = [DecisionLogPublic.model_validate(row) for row in json.loads(out)]
    assert [d.decision_id for d in page] == [d.id for d in made[20:]]
    assert err == ""

    code, out, _ = run(capsys, "experiments", "decisions", "list", experiment_id, "-f", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rows[3]["opened_at"] == iso_time(T0 + 30) and rows[4]["opened_at"] == ""

    for fmt in ("csv", "json"):
        target = tmp_path / f"decisions.{fmt}"
        code, out, err = run(
            capsys, "experiments", "decisions", "export", experiment_id, "--out", str(target),
            "--format", fmt,
        )  # fmt: skip
        assert code == 0, err
        assert "exported 25 decisions" in err
        text = target.read_text()
        exported = list(csv.DictReader(io.StringIO(text))) if fmt == "csv" else json.loads(text)
        assert [row["decision_id"] for row in exported] == [d.id for d in made]
        assert [row["recipient_id"] for row in exported] == [f"r{i}" for i in range(25)]
        assert not target.with_name(target.name + ".part").exists()
    _, out, _ = run(capsys, "experiments", "report", experiment_id, "--format", "json")
    headlines = [a.headline for a in ReportPublic.model_validate_json(out).arms]
    assert [row["headline"] for row in exported] == [headlines[i % 5] for i in range(25)]


def test_the_html_report_is_one_file_that_needs_nothing_else(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = run(capsys, "experiments", "create", "--from", str(REFERENCE))
    experiment_id = out.strip()
    store = open_store(get_settings().database_url)
    try:
        for i in range(40):
            store.record_decision(experiment_id, i % 5, 0.2, T0 + i)
        store.record_wave(experiment_id, {0: 30, 1: 30, 2: 30, 3: 30, 4: 30}, T0 + 50)
    finally:
        store.close()
    target = tmp_path / "report.html"

    code, out, err = run(capsys, "experiments", "report", experiment_id, "--html", str(target))
    assert code == 0, err
    assert out == "" and err == f"wrote the report of {experiment_id} to {target}\n"
    html = target.read_text(encoding="utf-8")
    # Everything inline: no stylesheet, script or image fetched, no refresh.
    assert not re.findall(r"<link[^>]+stylesheet|<script[^>]+src=|<img", html)
    assert "<body data-refresh-url" not in html and "does not refresh" in html
    assert "plotly.js v" in html and "Plotly.react" in html
    data = json.loads(html.split('id="page-data">')[1].split("</script>")[0])
    code, out, _ = run(capsys, "experiments", "report", experiment_id, "--format", "json")
    report = json.loads(out)
    counted = ("arm", "headline", "sends", "opens", "pending")
    assert [{k: a[k] for k in counted} for a in data["report"]["arms"]] == [
        {k: a[k] for k in counted} for a in report["arms"]
    ]
    assert sum(a["sends"] for a in report["arms"]) == 190
    assert not target.with_name(target.name + ".part").exists()

    code, _, err = run(
        capsys, "experiments", "report", experiment_id, "--html", str(tmp_path / "no" / "r.html")
    )
    assert code == 2 and err.startswith("headliner: error: cannot write") and err.count("\n") == 1


def test_read_only_keys_from_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, secret, err = run(capsys, "keys", "create", "viewer", "--read-only")
    assert code == 0 and secret.startswith("hl_") and "read" in err
    code, out, _ = run(capsys, "keys", "list", "--format", "json")
    (key,) = [ApiKeyPublic.model_validate(row) for row in json.loads(out)]
    assert key.scope.value == "read"
