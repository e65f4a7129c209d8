"""CLI commands of the decision service: ``serve``, ``experiments``, ``keys``, ``db``.

Each command is one call into :mod:`headliner.service` or
:mod:`headliner.storage`; the store comes from the settings
(``HEADLINER_DATABASE_URL``, ``.env``, ``HEADLINER_CONFIG``). Library and
settings errors become exit code 2 and one line on stderr, here as in the root
command; a database that cannot be reached, or a server that refuses to
start, exit code 3. Lists and reports print as a table, or with
``--format json`` (the API's own schemas) or ``--format csv`` for pipelines.

Everything heavy (pydantic-settings, SQLAlchemy, Alembic, FastAPI, numpy,
Rich) is imported inside the command that needs it: this module is imported
on every ``headliner`` invocation, ``--help`` and ``simulate`` included, and
importing those at the top made each of them pay for the service.
"""

from __future__ import annotations

import csv
import enum
import ipaddress
import json
import os
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from headliner.core.errors import HeadlinerError, StoreUnavailableError

if TYPE_CHECKING:
    from fastapi import FastAPI
    from rich.table import Table

    from headliner.service.experiments import ExperimentService
    from headliner.service.settings import Settings
    from headliner.storage.base import Store

#: A database that cannot be reached, or a server that refuses to start.
EXIT_UNAVAILABLE = 3

#: What each worker of ``serve --workers N`` imports to build its app.
WORKER_APP_FACTORY = "headliner.cli.service:worker_app"
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>

experiments_app = typer.Typer(
    help="Create, list, report, complete and archive experiments.", no_args_is_help=True
)
headlines_app = typer.Typer(help="Add and retire an experiment's headlines.", no_args_is_help=True)
decisions_app = typer.Typer(
    help="List and export an experiment's per-send decisions.", no_args_is_help=True
)
keys_app = typer.Typer(
    help="Manage API keys (needed by every /v1 route once one exists).", no_args_is_help=True
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add ``serve`` and the ``experiments``, ``keys`` and ``db`` groups to ``app``."""
    app.command("serve")(serve)
    app.add_typer(experiments_app, name="experiments")
    experiments_app.add_typer(headlines_app, name="headlines")
    experiments_app.add_typer(decisions_app, name="decisions")
    app.add_typer(keys_app, name="keys")
    app.add_typer(db_app, name="db")


def _fail(message: str, code: int = 2) -> typer.Exit:
    print(f"headliner: error: {message}", file=sys.stderr)
    return typer.Exit(code)


@contextmanager
def _errors() -> Iterator[None]:
    """Library errors -> one line on stderr and exit code 2; database errors -> exit code 3."""
    try:
        yield
    except StoreUnavailableError as exc:
        raise _fail(str(exc), EXIT_UNAVAILABLE) from None
    except HeadlinerError as exc:
        raise _fail(str(exc)) from None
    except Exception as exc:
        if type(exc).__module__.partition(".")[0] not in ("sqlalchemy", "psycopg", "sqlite3"):
            raise
        # The driver's first line says what failed (no such database, connection refused).
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise _fail(f"cannot use the database: {detail}", EXIT_UNAVAILABLE) from None


def _settings() -> Settings:
    """The settings, or one line naming what is wrong with them and exit code 2."""
    from pydantic import ValidationError

    from headliner.service.settings import get_settings

    try:
        return get_settings()
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise _fail(f"invalid setting {where}: {error['msg']}") from None
    except (ValueError, OSError) as exc:
        raise _fail(str(exc)) from None


def _service(store: Store, settings: Settings) -> ExperimentService:
    import numpy as np

    from headliner.service.clock import SystemClock
    from headliner.service.experiments import ExperimentService

    return ExperimentService(
        store, SystemClock(), np.random.default_rng(settings.seed), posterior_refresh_seconds=0
    )


class OutputFormat(enum.StrEnum):
    """How a list or report prints."""

    table = "table"
    json = "json"
    csv = "csv"


FormatOption = Annotated[
    OutputFormat,
    typer.Option("--format", "-f", help="table for people; json or csv for pipelines"),
]


def _when(time: float | str | None) -> str:
    """A time as people read it (see :func:`headliner.service.clock.readable_time`)."""
    from headliner.service.clock import readable_time

    return readable_time(time)


def _flat(row: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flat(value, f"{name}."))
        elif isinstance(value, list | tuple):
            out[name] = json.dumps(value)
        else:
            out[name] = value
    return out


def _print_rows(rows: Sequence[Mapping[str, Any]], fmt: OutputFormat, table: Table) -> None:
    """Print ``rows`` (JSON-ready dicts) as JSON or CSV, or ``table`` for people."""
    if fmt is OutputFormat.json:
        print(json.dumps(list(rows), indent=2))
    elif fmt is OutputFormat.csv:
        flat = [_flat(row) for row in rows]
        fields = list(dict.fromkeys(key for row in flat for key in row))
        writer = csv.DictWriter(sys.stdout, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(flat)
    else:
        from rich.console import Console

        Console().print(table)


#: Columns of free text, which wrap; every other column keeps its values whole.
_TEXT_COLUMNS = frozenset(("name", "headline", "winner"))


def _table(*columns: str, title: str) -> Table:
    """A Rich table for 80 columns that never cuts an id or a number (only text wraps)."""
    from rich import box
    from rich.table import Table

    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False)
    for name in columns:
        table.add_column(name, no_wrap=name not in _TEXT_COLUMNS, overflow="fold")
    return table


@contextmanager
def _store(settings: Settings) -> Iterator[Store]:
    from headliner.service.app import open_configured_store

    _prepare_sqlite_directory(settings)
    store = open_configured_store(settings)
    try:
        yield store
    finally:
        store.close()


def _now() -> float:
    from headliner.service.clock import SystemClock

    return SystemClock().now()


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name could resolve anywhere: treat it as public


# --- serve ----------------------------------------------------------------------
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind [default: settings]")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="Port")] = None,
    workers: Annotated[int | None, typer.Option(min=1, max=64, help="Worker processes")] = None,
) -> None:
    """Run the decision service with uvicorn.

    Refuses to listen on a non-loopback address while no API key exists
    (make one with `headliner keys create NAME`).
    """
    import uvicorn

    settings = _settings()
    bind = host or settings.host
    n_workers = workers or settings.workers
    with _errors(), _store(settings) as store:  # also applies migrations, once, before workers
        protected = store.has_api_keys()
    if not is_loopback(bind) and not protected:
        raise _fail(
            f"refusing to listen on {bind} with no API key; "
            "run `headliner keys create NAME` first or bind 127.0.0.1.",
            EXIT_UNAVAILABLE,
        )
    print(f"headliner: database {_database(settings)}", file=sys.stderr)
    options = {
        "host": bind,
        "port": port or settings.port,
        "access_log": False,  # the app writes its own JSON access log
        "log_level": settings.log_level.lower(),
    }
    if n_workers == 1:
        from headliner.service.app import create_app

        uvicorn.run(create_app(settings), **options)  # type: ignore[arg-type]
        return
    # Workers are fresh processes: they read the same environment, so the settings
    # agree; one metrics directory lets /metrics sum every worker's counts.
    os.environ["HEADLINER_UPGRADE_ON_START"] = "false"
    with tempfile.TemporaryDirectory(prefix="headliner-metrics-") as metrics_dir:
        os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", metrics_dir)
        uvicorn.run(WORKER_APP_FACTORY, factory=True, workers=n_workers, **options)  # type: ignore[arg-type]


def worker_app() -> FastAPI:
    """The app of one ``serve --workers N`` worker process, which ends with its parent.

    uvicorn's workers outlive a parent killed with SIGKILL (or by the OOM
    killer), keep serving on its port and keep a new ``serve`` from binding
    it. See :func:`exit_with_parent`.
    """
    from headliner.service.app import create_app

    exit_with_parent()
    return create_app()


def exit_with_parent() -> None:
    """Have this process sent SIGTERM once the process that spawned it dies.

    SIGTERM, not SIGKILL: uvicorn then stops the way it does for Ctrl-C,
    finishing the requests in flight and closing the database pool. On Linux
    the kernel sends it (``prctl(PR_SET_PDEATHSIG)``); elsewhere a daemon
    thread waits on the pipe that ``multiprocessing`` keeps open to the parent,
    which closes when the parent dies. Does nothing in a process that
    ``multiprocessing`` did not start (tests, an embedding application).
    """
    import ctypes
    import multiprocessing
    import signal
    import threading

    parent = multiprocessing.parent_process()
    if parent is None:
        return
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) == 0:
            if os.getppid() != parent.pid:  # the parent died before the call: no signal comes
                os.kill(os.getpid(), signal.SIGTERM)
            return

    def watch() -> None:
        parent.join()
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="headliner-exit-with-parent", daemon=True).start()


# --- experiments ----------------------------------------------------------------
@experiments_app.command("create")
def experiments_create(
    source: Annotated[
        Path,
        typer.Option(
            "--from", exists=True, dir_okay=False, help="Scenario or experiment YAML file"
        ),
    ],
) -> None:
    """Create a running experiment from a YAML file; print its id."""
    from headliner.service.experiment_file import load_experiment_file

    settings = _settings()
    with _errors():
        spec = load_experiment_file(source)
        with _store(settings) as store:
            record = store.create_experiment(spec, _now())
    print(record.id)


@experiments_app.command("list")
def experiments_list(
    include_archived: Annotated[bool, typer.Option("--all", help="Include archived")] = False,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """List experiments, newest first."""
    from headliner.service.schemas import ExperimentSummary

    settings = _settings()
    with _errors(), _store(settings) as store:
        records = store.list_experiments(include_archived=include_archived)
    # The winner's headline is in `experiments report`: with it, 80 columns leave no room
    # for the name.
    table = _table("id", "name", "status", "created (UTC)", title="Experiments")
    for r in records:
        table.add_row(r.id, r.name, r.status.value, _when(r.created_at)[:16])
    rows = [ExperimentSummary.of(r).model_dump(mode="json") for r in records]
    _print_rows(rows, fmt, table)


#: The report's column of KPI successes, by KPI ("conversions" is too wide for 80 columns).
_KPI_COLUMN = {"conversions": "conv."}


def _pct(value: float | None) -> str:
    return "" if value is None else f"{100.0 * value:.2f}%"


@experiments_app.command("report")
def experiments_report(
    experiment_id: Annotated[str, typer.Argument(help="Experiment id")],
    fmt: FormatOption = OutputFormat.table,
    html: Annotated[
        Path | None,
        typer.Option(
            "--html",
            dir_okay=False,
            help="Write the dashboard's page to this file instead (one self-contained HTML file)",
        ),
    ] = None,
) -> None:
    """Show an experiment's report: per headline, then the open delay and the stopping rule.

    The counts are successes of the experiment's KPI (opens, clicks or
    conversions); the open events stored, and the machine opens among them
    (stored, never counted), are shown beside them.
    ``--format json`` prints the API's report (``GET /v1/experiments/{id}/report``);
    ``--format csv`` one row per headline. ``--html FILE`` writes the
    dashboard's experiment page as one file (styles, charts and data inlined,
    no refresh, nothing fetched from the network), to mail or archive.
    """
    from rich.console import Console

    from headliner.service.schemas import ReportPublic

    settings = _settings()
    if html is not None:
        _write_html_report(settings, experiment_id, html)
        return
    with _errors(), _store(settings) as store:
        report = _service(store, settings).report(experiment_id, snapshot_limit=0)
    if fmt is OutputFormat.json:
        print(ReportPublic.of(report).model_dump_json(indent=2))
        return
    if fmt is OutputFormat.csv:
        rows = ReportPublic.of(report).model_dump(mode="json")["arms"]
        _print_rows(rows, fmt, _table(title=""))
        return
    record = report.experiment
    kpi = record.kpi  # "opens", "clicks" or "conversions": what the counts are
    console = Console()
    console.print(
        f"{record.name}  [dim]{record.id}[/dim]  {report.status}  KPI: {kpi}", soft_wrap=True
    )
    # Narrow tables rather than one wide one: each fits 80 columns.
    estimates = _table(
        "#", "headline", "sends", _KPI_COLUMN.get(kpi, kpi), "estimate (95% CI)", "P(best)",
        "share",
        title="Headlines",
    )  # fmt: skip
    evidence = _table(
        "#", "eff. sends", "pending", "late", "matured rate", "exp. loss",
        title="Evidence during the attribution window",
    )  # fmt: skip
    machines = _table(
        "#", "open events", "machine opens", "machine share",
        title="Open events stored (machine opens never count)",
    )  # fmt: skip
    for a in report.arms:
        low, high = a.credible_interval
        estimates.add_row(
            str(a.arm),
            a.headline + ("" if a.active else " (retired)"),
            f"{a.sends:,}",
            f"{a.opens:,}",
            f"{_pct(a.posterior_mean)} ({_pct(low)}-{_pct(high)})",
            _pct(a.p_best),
            _pct(a.allocation),
        )
        evidence.add_row(
            str(a.arm),
            f"{a.effective_sends:,.0f}",
            f"{a.pending:,}",
            f"{a.late_opens:,}",
            _pct(a.observed_rate),
            _pct(a.expected_loss),
        )
        machines.add_row(
            str(a.arm),
            f"{a.open_events:,}",
            f"{a.machine_opens:,}",
            _pct(a.machine_opens / a.open_events if a.open_events else None),
        )
    console.print(estimates)
    console.print(evidence)
    console.print(machines)
    delay = report.delay
    console.print(
        f"open delay: half of the opens arrive within {_duration(delay.median_seconds)}, "
        f"nine tenths within {_duration(delay.p90_seconds)} "
        f"({delay.opens_seen:.0f} opens with timing; prior beyond "
        f"{_duration(delay.horizon_seconds)})",
        soft_wrap=True,  # one line per fact, whatever the terminal's width
    )
    if report.machine_open_share is not None:
        stored = sum(a.open_events for a in report.arms)
        console.print(
            f"machine opens: {_pct(report.machine_open_share)} of {stored:,} open events",
            soft_wrap=True,
        )
    console.print(f"next sends: {report.allocation_reason}", soft_wrap=True)
    arms = report.arms
    winner = "none yet" if report.winner_arm is None else repr(arms[report.winner_arm].headline)
    stop = report.stopping_status
    needed = "off" if stop.min_opens is None else f"{stop.min_opens:,} {kpi} needed"
    console.print(
        f"winner: {winner}; leader {arms[stop.champion].headline!r}, "
        f"P(best) {_pct(stop.p_best)}, value remaining {_pct(stop.value_remaining)}; "
        f"{stop.opens:,} {kpi} ({needed})" + ("; waiting for burn-in" if stop.in_burn_in else ""),
        soft_wrap=True,
    )
    if stop.reason is not None:
        console.print(f"why the winner: {stop.reason}", soft_wrap=True)


def _write_html_report(settings: Settings, experiment_id: str, out: Path) -> None:
    """Write the experiment page as one file, renamed into place once complete."""
    from headliner.service.dashboard import Dashboard
    from headliner.service.routes.dashboard import render_experiment

    with _errors(), _store(settings) as store:
        dashboard = Dashboard(_service(store, settings), plans_in_background=False)
        data = dashboard.page(experiment_id, wait_for_plan=True)
    text = render_experiment(data, standalone=True)
    partial = out.with_name(out.name + ".part")
    try:
        partial.write_text(text, encoding="utf-8")
        partial.replace(out)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise _fail(f"cannot write {out}: {exc.strerror or exc}") from None
    print(f"wrote the report of {experiment_id} to {out}", file=sys.stderr)


@experiments_app.command("complete")
def experiments_complete(
    experiment_id: Annotated[str, typer.Argument(help="Experiment id")],
    winner: Annotated[
        str, typer.Option("--winner", help="The winning headline: its text, or its number (#)")
    ],
) -> None:
    """End an experiment by hand, naming the winner; later sends all get that headline."""
    settings = _settings()
    named: int | str = int(winner) if winner.isdigit() else winner
    with _errors(), _store(settings) as store:
        service = _service(store, settings)
        record = service.complete(experiment_id, winner=named)
        headline = store.list_arms(experiment_id)[record.winner_arm or 0].headline
    print(f"completed {record.id}: winner {headline!r}")


@experiments_app.command("archive")
def experiments_archive(
    experiment_id: Annotated[str, typer.Argument(help="Experiment id")],
) -> None:
    """Archive an experiment: hidden from lists, no more decisions, data kept."""
    settings = _settings()
    with _errors(), _store(settings) as store:
        record = _service(store, settings).archive(experiment_id)
    print(f"archived {record.id}")


@headlines_app.command("add")
def headlines_add(
    experiment_id: Annotated[str, typer.Argument(help="Experiment id")],
    headline: Annotated[str, typer.Argument(help="The new headline's text")],
) -> None:
    """Add a headline to a running experiment; it explores within its burn-in share."""
    settings = _settings()
    with _errors(), _store(settings) as store:
        arm = _service(store, settings).add_arm(experiment_id, headline)
    print(f"added headline #{arm.arm}: {arm.headline!r}")


@headlines_app.command("retire")
def headlines_retire(
    experiment_id: Annotated[str, typer.Argument(help="Experiment id")],
    arm: Annotated[int, typer.Argument(min=0, help="The headline's number (# in the report)")],
) -> None:
    """Retire a headline: no more sends; its data stays in the report."""
    settings = _settings()
    with _errors(), _store(settings) as store:
        record = _service(store, settings).retire_arm(experiment_id, arm)
    print(f"retired headline #{record.arm}: {record.headline!r}")


#: Decisions per page of an export (the most the store is asked for at once).
EXPORT_PAGE = 1000


class ExportFormat(enum.StrEnum):
    """How an export is written."""

    csv = "csv"
    json = "json"


def _open_label(row: Mapping[str, Any]) -> str:
    """What became of a send, in a word: opened, late, no (an explicit 0), or blank."""
    if row["late"]:
        return "late"
    return {1: "opened", 0: "no"}.get(row["outcome"], "")


@decisions_app.command("list")
def decisions_list(
    experiment_id: Annotated[str, typer.Argument(help="Experiment id")],
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Decisions to list")] = 20,
    after: Annotated[
        str | None, typer.Option(help="Start after this decision id (the last one listed)")
    ] = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """List decisions, oldest first: headline, propensity, and what became of the send.

    One page; when more follow, stderr says the ``--after`` of the next page.
    ``--format json`` rows are the API's (``GET /v1/experiments/{id}/decisions``).
    """
    from headliner.service.schemas import DecisionListPublic

    settings = _settings()
    with _errors(), _store(settings) as store:
        page = _service(store, settings).list_decisions(experiment_id, after=after, limit=limit)
    rows: list[dict[str, Any]] = DecisionListPublic.payload(page)["decisions"]
    # Month, day and time of the send: with the whole id, 80 columns leave room for the
    # headline only without the year and the propensity (both in json and csv).
    table = _table("id", "#", "headline", "sent (UTC)", "open", title="Decisions")
    for row in rows:
        table.add_row(
            row["decision_id"],
            str(row["arm"]),
            row["headline"],
            _when(row["created_at"])[5:16],
            _open_label(row),
        )
    _print_rows(rows, fmt, table)
    if page.next_after is not None:
        print(f"more: --after {page.next_after}", file=sys.stderr)


@decisions_app.command("export")
def decisions_export(
    experiment_id: Annotated[str, typer.Argument(help="Experiment id")],
    out: Annotated[Path, typer.Option("--out", "-o", dir_okay=False, help="File to write")],
    fmt: Annotated[
        ExportFormat, typer.Option("--format", "-f", help="csv, or json (an array)")
    ] = ExportFormat.csv,
) -> None:
    """Write every decision of an experiment to a file, oldest first, a page at a time.

    The columns are those of ``decisions list --format json``. The file
    appears only once complete: it is written beside it first, then renamed.
    """
    from headliner.service.schemas import DecisionListPublic, DecisionLogPublic

    settings = _settings()
    partial = out.with_name(out.name + ".part")
    count = 0
    try:
        with _errors(), _store(settings) as store, partial.open("w", newline="") as file:
            service = _service(store, settings)
            writer = csv.DictWriter(
                file, fieldnames=list(DecisionLogPublic.model_fields), lineterminator="\n"
            )
            if fmt is ExportFormat.csv:
                writer.writeheader()
            else:
                file.write("[")
            after: str | None = None
            while True:
                page = service.list_decisions(experiment_id, after=after, limit=EXPORT_PAGE)
                rows: list[dict[str, Any]] = DecisionListPublic.payload(page)["decisions"]
                for row in rows:
                    if fmt is ExportFormat.csv:
                        writer.writerow(row)
                    else:
                        file.write(("\n" if count == 0 else ",\n") + json.dumps(row))
                    count += 1
                after = page.next_after
                if after is None:
                    break
            if fmt is ExportFormat.json:
                file.write("\n]\n")
        partial.replace(out)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise _fail(f"cannot write {out}: {exc.strerror or exc}") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    print(f"exported {count} decisions of {experiment_id} to {out}", file=sys.stderr)


def _duration(seconds: float) -> str:
    """Seconds as a marketer reads them: 45 min, 2.5 h, 3.0 days."""
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


# --- keys -----------------------------------------------------------------------
@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="A label for the key")],
    read_only: Annotated[
        bool,
        typer.Option("--read-only", help="May only read: GET on /v1 and the dashboard"),
    ] = False,
) -> None:
    """Make an API key and print it once (only its hash is stored)."""
    from headliner.service.auth import create_key
    from headliner.storage.base import KeyScope

    settings = _settings()
    scope = KeyScope.READ if read_only else KeyScope.FULL
    with _errors(), _store(settings) as store:
        record, secret = create_key(store, name, _now(), scope=scope)
    print(secret)
    print(
        f"key {record.id} ({record.name}, {record.scope.value}): store it now, "
        "it is not shown again",
        file=sys.stderr,
    )


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="Key id (see `keys list`)")]) -> None:
    """Revoke a key; running servers stop accepting it within the key cache TTL (5 s)."""
    settings = _settings()
    with _errors(), _store(settings) as store:
        record = store.revoke_api_key(key_id, _now())
    print(f"revoked key {record.id} ({record.name})")


@keys_app.command("list")
def keys_list(fmt: FormatOption = OutputFormat.table) -> None:
    """List API keys (never their secrets)."""
    from headliner.service.schemas import ApiKeyPublic

    settings = _settings()
    with _errors(), _store(settings) as store:
        records = store.list_api_keys()
    # To the minute: with the whole id and the scope, seconds leave no room for the name.
    table = _table("id", "name", "scope", "created (UTC)", "revoked (UTC)", title="API keys")
    for r in records:
        table.add_row(
            r.id, r.name, r.scope.value, _when(r.created_at)[:16], _when(r.revoked_at)[:16]
        )
    _print_rows([ApiKeyPublic.of(r).model_dump(mode="json") for r in records], fmt, table)


# --- db -------------------------------------------------------------------------
@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the schema migrations to the configured database."""
    from headliner.storage.migrate import upgrade

    settings = _settings()
    with _errors():
        _prepare_sqlite_directory(settings)
        upgrade(settings.database_url)
    print(f"database {_database(settings)} is up to date")


def _database(settings: Settings) -> str:
    from headliner.service.settings import describe_database

    return describe_database(settings.database_url)


def _prepare_sqlite_directory(settings: Settings) -> None:
    from headliner.service.settings import sqlite_path

    path = sqlite_path(settings.database_url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
