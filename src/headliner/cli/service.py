"""CLI commands of the decision service: ``serve``, ``experiments``, ``keys``, ``db``.

Each command is one call into :mod:`headliner.service` or
:mod:`headliner.storage`; the store comes from the settings
(``HEADLINER_DATABASE_URL``, ``.env``, ``HEADLINER_CONFIG``). Library errors
become exit code 2 and one line on stderr, here as in the root command.

Everything heavy (pydantic-settings, SQLAlchemy, Alembic, FastAPI, numpy,
Rich) is imported inside the command that needs it: this module is imported
on every ``headliner`` invocation, ``--help`` and ``simulate`` included, and
importing those at the top made each of them pay for the service.
"""

from __future__ import annotations

import ipaddress
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from headliner.core.errors import HeadlinerError

if TYPE_CHECKING:
    from fastapi import FastAPI

    from headliner.service.settings import Settings
    from headliner.storage.base import Store

#: What each worker of ``serve --workers N`` imports to build its app.
WORKER_APP_FACTORY = "headliner.cli.service:worker_app"
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>

experiments_app = typer.Typer(help="Create, list and report experiments.", no_args_is_help=True)
keys_app = typer.Typer(
    help="Manage API keys (needed by every /v1 route once one exists).", no_args_is_help=True
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add ``serve`` and the ``experiments``, ``keys`` and ``db`` groups to ``app``."""
    app.command("serve")(serve)
    app.add_typer(experiments_app, name="experiments")
    app.add_typer(keys_app, name="keys")
    app.add_typer(db_app, name="db")


@contextmanager
def _errors() -> Iterator[None]:
    """Library errors -> one line on stderr and exit code 2."""
    try:
        yield
    except HeadlinerError as exc:
        print(f"headliner: error: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None


def _settings() -> Settings:
    from headliner.service.settings import get_settings

    return get_settings()


@contextmanager
def _store(settings: Settings) -> Iterator[Store]:
    from headliner.service.app import open_configured_store

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
        print(
            f"headliner: error: refusing to listen on {bind} with no API key; "
            "run `headliner keys create NAME` first or bind 127.0.0.1.",
            file=sys.stderr,
        )
        raise typer.Exit(2)
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
) -> None:
    """List experiments, newest first."""
    from rich.console import Console
    from rich.table import Table

    settings = _settings()
    with _errors(), _store(settings) as store:
        records = store.list_experiments(include_archived=include_archived)
    table = Table("id", "name", "status", "policy", "winner", title="Experiments")
    for r in records:
        winner = "" if r.winner_arm is None else str(r.winner_arm)
        table.add_row(r.id, r.name, r.status.value, r.policy, winner)
    Console().print(table)


def _pct(value: float | None) -> str:
    return "" if value is None else f"{100.0 * value:.2f}%"


@experiments_app.command("report")
def experiments_report(experiment_id: Annotated[str, typer.Argument(help="Experiment id")]) -> None:
    """Show an experiment's report as a table."""
    import numpy as np
    from rich.console import Console
    from rich.table import Table

    from headliner.service.clock import SystemClock
    from headliner.service.experiments import ExperimentService

    settings = _settings()
    with _errors(), _store(settings) as store:
        service = ExperimentService(
            store, SystemClock(), np.random.default_rng(settings.seed), posterior_refresh_seconds=0
        )
        report = service.report(experiment_id, snapshot_limit=0)
    record = report.experiment
    table = Table(
        "arm", "headline", "sends", "opens", "eff. sends", "pending", "late", "estimate",
        "95% CI", "matured rate", "P(best)", "loss", "share",
        title=f"{record.name} ({record.id}) - {report.status}",
    )  # fmt: skip
    for a in report.arms:
        low, high = a.credible_interval
        table.add_row(
            str(a.arm),
            a.headline + ("" if a.active else " (retired)"),
            str(a.sends),
            str(a.opens),
            f"{a.effective_sends:.0f}",
            str(a.pending),
            str(a.late_opens),
            _pct(a.posterior_mean),
            f"{_pct(low)} - {_pct(high)}",
            _pct(a.observed_rate),
            _pct(a.p_best),
            _pct(a.expected_loss),
            _pct(a.allocation),
        )
    console = Console()
    console.print(table)
    delay = report.delay
    console.print(
        f"open delay: half of the opens arrive within {_duration(delay.median_seconds)}, "
        f"nine tenths within {_duration(delay.p90_seconds)} "
        f"({delay.opens_seen:.0f} opens with timing; prior beyond "
        f"{_duration(delay.horizon_seconds)})",
        soft_wrap=True,  # one line per fact, whatever the terminal's width
    )
    console.print(f"next sends: {report.allocation_reason}", soft_wrap=True)
    winner = "none yet" if report.winner_arm is None else f"headline {report.winner_arm}"
    stop = report.stopping_status
    needed = "off" if stop.min_opens is None else f"{stop.min_opens} opens needed"
    console.print(
        f"winner: {winner}; champion headline {stop.champion}, P(best) {_pct(stop.p_best)}, "
        f"value remaining {_pct(stop.value_remaining)}; {stop.opens} opens ({needed})"
        + ("; waiting for burn-in" if stop.in_burn_in else ""),
        soft_wrap=True,
    )
    if stop.reason is not None:
        console.print(f"why the winner: {stop.reason}", soft_wrap=True)


def _duration(seconds: float) -> str:
    """Seconds as a marketer reads them: 45 min, 2.5 h, 3.0 days."""
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


# --- keys -----------------------------------------------------------------------
@keys_app.command("create")
def keys_create(name: Annotated[str, typer.Argument(help="A label for the key")]) -> None:
    """Make an API key and print it once (only its hash is stored)."""
    from headliner.service.auth import create_key

    settings = _settings()
    with _errors(), _store(settings) as store:
        record, secret = create_key(store, name, _now())
    print(secret)
    print(f"key {record.id} ({record.name}): store it now, it is not shown again", file=sys.stderr)


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="Key id (see `keys list`)")]) -> None:
    """Revoke a key; running servers stop accepting it within the key cache TTL (5 s)."""
    settings = _settings()
    with _errors(), _store(settings) as store:
        record = store.revoke_api_key(key_id, _now())
    print(f"revoked key {record.id} ({record.name})")


@keys_app.command("list")
def keys_list() -> None:
    """List API keys (never their secrets)."""
    from rich.console import Console
    from rich.table import Table

    settings = _settings()
    with _errors(), _store(settings) as store:
        records = store.list_api_keys()
    table = Table("id", "name", "created", "revoked", title="API keys")
    for r in records:
        revoked = "" if r.revoked_at is None else f"{r.revoked_at:.0f}"
        table.add_row(r.id, r.name, f"{r.created_at:.0f}", revoked)
    Console().print(table)


# --- db -------------------------------------------------------------------------
@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the schema migrations to the configured database."""
    from headliner.storage.migrate import upgrade

    settings = _settings()
    with _errors():
        upgrade(settings.database_url)
    print("database is up to date")
