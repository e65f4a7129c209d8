"""The service's CLI commands, on a SQLite file named by HEADLINER_DATABASE_URL."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from headliner.cli.service import is_loopback, register
from headliner.service.schemas import ReportPublic
from headliner.service.settings import get_settings
from headliner.storage.sql import open_store

REFERENCE = Path(__file__).resolve().parents[3] / "scenarios" / "reference.yaml"
T0 = 1_700_000_000.0


@pytest.fixture
def cli() -> typer.Typer:
    """A root app with only the service commands registered."""
    app = typer.Typer()

    @app.callback()
    def root() -> None:
        """Headliner (test root)."""

    register(app)
    return app


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(autouse=True)
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A fresh SQLite file per test; run from tmp_path so no .env is picked up."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "220")  # Rich tables wide enough to show whole headlines
    monkeypatch.setenv("HEADLINER_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _run(runner: CliRunner, cli: typer.Typer, *args: str) -> Any:
    return runner.invoke(cli, list(args))


@pytest.mark.parametrize(
    "command",
    [
        ["serve"],
        ["experiments", "create"],
        ["experiments", "list"],
        ["experiments", "report"],
        ["keys", "create"],
        ["keys", "revoke"],
        ["keys", "list"],
        ["db", "upgrade"],
    ],
    ids=lambda c: " ".join(c),
)
def test_every_command_has_help(runner: CliRunner, cli: typer.Typer, command: list[str]) -> None:
    result = _run(runner, cli, *command, "--help")

    assert result.exit_code == 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) >= 3  # usage, a description, options


def test_db_upgrade(runner: CliRunner, cli: typer.Typer, tmp_path: Path) -> None:
    result = _run(runner, cli, "db", "upgrade")

    assert result.exit_code == 0
    assert "up to date" in result.output
    assert (tmp_path / "cli.db").exists()


def test_keys_create_list_revoke(runner: CliRunner, cli: typer.Typer) -> None:
    created = _run(runner, cli, "keys", "create", "pipeline")
    secret = created.stdout.strip()
    listed = _run(runner, cli, "keys", "list")
    key_id = created.stderr.split()[1]
    revoked = _run(runner, cli, "keys", "revoke", key_id)
    again = _run(runner, cli, "keys", "list")

    assert created.exit_code == 0
    assert secret.startswith("hl_") and len(secret) > 40
    assert "not shown again" in created.stderr
    assert "pipeline" in listed.stdout and secret not in listed.stdout
    assert revoked.exit_code == 0 and key_id in revoked.stdout
    assert key_id[:8] in again.stdout


def test_keys_create_read_only(runner: CliRunner, cli: typer.Typer) -> None:
    created = _run(runner, cli, "keys", "create", "viewer", "--read-only")
    listed = _run(runner, cli, "keys", "list", "--format", "json")

    assert created.exit_code == 0 and "read" in created.stderr
    assert [(k["name"], k["scope"]) for k in json.loads(listed.stdout)] == [("viewer", "read")]
    assert "read" in _run(runner, cli, "keys", "list").stdout


def test_revoking_an_unknown_key_is_one_line_and_exit_2(
    runner: CliRunner, cli: typer.Typer
) -> None:
    result = _run(runner, cli, "keys", "revoke", "nope")

    assert result.exit_code == 2
    assert result.stderr.startswith("headliner: error:")
    assert len(result.stderr.strip().splitlines()) == 1


def test_experiments_create_from_the_reference_scenario_list_and_report(
    runner: CliRunner, cli: typer.Typer
) -> None:
    created = _run(runner, cli, "experiments", "create", "--from", str(REFERENCE))
    experiment_id = created.stdout.strip()
    listed = _run(runner, cli, "experiments", "list")
    report = _run(runner, cli, "experiments", "report", experiment_id)

    assert created.exit_code == 0, created.output
    assert len(experiment_id) == 32
    assert "reference" in listed.stdout and experiment_id in listed.stdout
    assert report.exit_code == 0, report.output
    assert "Ending Tonight" in report.stdout
    assert "burn_in" in report.stdout
    assert "eff. sends" in report.stdout
    assert "open delay: half of the opens arrive within" in report.stdout
    assert "next sends: burn-in: every headline has fewer than 100 effective sends" in report.stdout
    assert "0 opens (100 opens needed); waiting for burn-in" in report.stdout


def test_experiments_create_with_service_settings(
    runner: CliRunner, cli: typer.Typer, tmp_path: Path
) -> None:
    source = tmp_path / "spring.yaml"
    source.write_text(
        "name: Spring\nheadlines: [A, B, C]\n"
        "experiment:\n  policy: top-two\n  burn_in_per_arm: 5\n"
        "  attribution_window_seconds: 3600\n"
    )

    created = _run(runner, cli, "experiments", "create", "--from", str(source))
    report = _run(runner, cli, "experiments", "report", created.stdout.strip())

    assert created.exit_code == 0, created.output
    assert "burn_in" in report.stdout


def test_an_experiment_file_chooses_the_kpi_and_the_report_shows_machine_opens(
    runner: CliRunner, cli: typer.Typer, tmp_path: Path
) -> None:
    source = tmp_path / "clicks.yaml"
    source.write_text("name: Spring\nheadlines: [A, B]\nexperiment:\n  kpi: clicks\n")
    created = _run(runner, cli, "experiments", "create", "--from", str(source))
    experiment_id = created.stdout.strip()
    store = open_store(get_settings().database_url)
    try:
        assert store.get_experiment(experiment_id).kpi == "clicks"
        sends = [store.record_decision(experiment_id, i % 2, 0.5, T0)[0] for i in range(4)]
        for i, send in enumerate(sends):  # 1 of 4 open events is a machine's
            store.record_event(experiment_id, send.id, "open", T0 + 1, machine=i == 0)
    finally:
        store.close()

    table = _run(runner, cli, "experiments", "report", experiment_id)
    as_json = _run(runner, cli, "experiments", "report", experiment_id, "--format", "json")
    as_csv = _run(runner, cli, "experiments", "report", experiment_id, "--format", "csv")

    assert created.exit_code == 0, created.output
    assert "KPI: clicks" in table.stdout
    assert "Open events stored" in table.stdout
    assert "machine opens: 25.00% of 4 open events" in table.stdout
    assert "0 clicks (100 clicks needed)" in table.stdout
    report = ReportPublic.model_validate_json(as_json.stdout)
    assert (report.kpi, report.machine_open_share) == ("clicks", 0.25)
    assert [(a.open_events, a.machine_opens) for a in report.arms] == [(2, 1), (2, 0)]
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [(r["open_events"], r["machine_opens"]) for r in rows] == [("2", "1"), ("2", "0")]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("name: x\nheadlines: [A]\n", "headlines"),
        ("name: x\nheadlines: [A, B]\nkpi: revenue\n", "kpi: Input should be 'opens', "),
        ("- just\n- a list\n", "mapping"),
        ("name: x\nheadlines: [A, B]\nexperiment:\n  policy: ucb1\n", "policy"),
        ("name: x\nheadlines: [A, B]\npolicy: ucb1\n", "'policy' parameter of Experiment"),
        ("name: [unclosed\n", "not valid YAML"),
        (
            "name: x\nheadlines: [A, B]\nfloor: -1\nburn_in_per_arm: -5\n",
            "burn_in_per_arm: Input should be greater than or equal to 0; floor:",
        ),
    ],
    ids=[
        "one headline",
        "unknown kpi",
        "not a mapping",
        "unknown policy",
        "top-level policy",
        "bad yaml",
        "every error",
    ],
)
def test_experiments_create_rejects_a_bad_file(
    runner: CliRunner, cli: typer.Typer, tmp_path: Path, content: str, message: str
) -> None:
    source = tmp_path / "bad.yaml"
    source.write_text(content)

    result = _run(runner, cli, "experiments", "create", "--from", str(source))

    assert result.exit_code == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_report_of_an_unknown_experiment_exits_2(runner: CliRunner, cli: typer.Typer) -> None:
    result = _run(runner, cli, "experiments", "report", "missing")

    assert result.exit_code == 2
    assert "not found" in result.stderr


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("::1", True),
        ("127.0.0.2", True),
        ("0.0.0.0", False),
        ("192.168.1.10", False),
        ("example.com", False),
    ],
)
def test_is_loopback(host: str, expected: bool) -> None:
    assert is_loopback(host) is expected


class _Uvicorn:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, dict[str, Any]]] = []
        self.env: dict[str, str | None] = {}

    def run(self, app: Any, **kwargs: Any) -> None:
        self.calls.append((app, kwargs))
        self.env["PROMETHEUS_MULTIPROC_DIR"] = os.environ.get("PROMETHEUS_MULTIPROC_DIR")


@pytest.fixture
def uvicorn_run(monkeypatch: pytest.MonkeyPatch) -> _Uvicorn:
    import uvicorn

    fake = _Uvicorn()
    monkeypatch.setattr(uvicorn, "run", fake.run)
    # Set before deleting, so that monkeypatch restores the variable's absence too:
    # `serve` sets it itself, and a leaked one points later tests' /metrics at a
    # directory that no longer exists.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "")
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    monkeypatch.delenv("HEADLINER_UPGRADE_ON_START", raising=False)
    return fake


def test_serve_refuses_a_public_address_without_keys(
    runner: CliRunner, cli: typer.Typer, uvicorn_run: _Uvicorn
) -> None:
    result = _run(runner, cli, "serve", "--host", "0.0.0.0")

    assert result.exit_code == 3  # refused to start
    assert "refusing to listen on 0.0.0.0" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert uvicorn_run.calls == []


def test_serve_on_a_public_address_once_a_key_exists(
    runner: CliRunner, cli: typer.Typer, uvicorn_run: _Uvicorn
) -> None:
    _run(runner, cli, "keys", "create", "ops")

    result = _run(runner, cli, "serve", "--host", "0.0.0.0", "--port", "8123")

    assert result.exit_code == 0, result.output
    ((app, options),) = uvicorn_run.calls
    assert options["host"] == "0.0.0.0" and options["port"] == 8123
    assert options["access_log"] is False


def test_serve_on_loopback_needs_no_key(
    runner: CliRunner, cli: typer.Typer, uvicorn_run: _Uvicorn
) -> None:
    from fastapi import FastAPI

    result = _run(runner, cli, "serve")

    assert result.exit_code == 0, result.output
    ((app, options),) = uvicorn_run.calls
    assert isinstance(app, FastAPI)
    assert options["host"] == "127.0.0.1"


def test_serve_with_workers_uses_the_factory_and_shared_metrics(
    runner: CliRunner, cli: typer.Typer, uvicorn_run: _Uvicorn
) -> None:
    result = _run(runner, cli, "serve", "--workers", "2")

    assert result.exit_code == 0, result.output
    ((app, options),) = uvicorn_run.calls
    assert app == "headliner.cli.service:worker_app"  # the workers end with their parent
    assert options["factory"] is True and options["workers"] == 2
    assert uvicorn_run.env["PROMETHEUS_MULTIPROC_DIR"]
    assert not Path(str(uvicorn_run.env["PROMETHEUS_MULTIPROC_DIR"])).exists()  # cleaned up
