"""Run a real ``headliner serve`` on a fresh database, on loopback, for a bounded time.

Shared by ``run_load_test.py`` (``make load-test``) and
``benchmarks/service_throughput.py``. The server is the installed command
from this virtual environment, not an in-process app, so what is measured is
what an operator runs: uvicorn, its workers, the real database.

The server gets a clean environment (no ``HEADLINER_*`` variable of the
developer's shell) and a scratch working directory, so neither a ``.env``
file nor production settings leak into a measurement.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import sqlalchemy as sa

LOOPBACK = "127.0.0.1"
BIN = Path(sys.executable).parent
READY_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 20.0


def free_port() -> int:
    """A TCP port that is free on loopback right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def server_environment(database_url: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without ``HEADLINER_*``, plus the database URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADLINER_")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # `serve` makes its own per run
    env["HEADLINER_DATABASE_URL"] = database_url
    env.update(extra or {})
    return env


@contextmanager
def fresh_database(database_url: str | None, workdir: Path) -> Iterator[str]:
    """Yield the URL of a new, empty database; a PostgreSQL one is dropped afterwards.

    Parameters
    ----------
    database_url : str or None
        None: a SQLite file in ``workdir``. A PostgreSQL URL names the server
        and a database to connect to for administration; a new database with
        a random name is created next to it.
    workdir : Path
        Scratch directory (holds the SQLite file).
    """
    if database_url is None:
        yield f"sqlite:///{workdir / 'headliner.db'}"
        return
    from headliner.storage.engine import normalize_url

    server = normalize_url(database_url)
    if server.get_backend_name() != "postgresql":
        raise SystemExit(f"--database-url must be a PostgreSQL URL; got {database_url!r}")
    name = f"headliner_load_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(
        server,
        isolation_level="AUTOCOMMIT",
        poolclass=sa.NullPool,
        connect_args={"connect_timeout": 5},
    )
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        try:
            yield server.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                # FORCE closes sessions a killed server may have left behind.
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def upgrade_database(database_url: str, workdir: Path) -> None:
    """Run ``headliner db upgrade`` (``serve`` would too, but a failure is clearer here)."""
    subprocess.run(
        [str(BIN / "headliner"), "db", "upgrade"],
        env=server_environment(database_url),
        cwd=workdir,
        check=True,
        timeout=120,
        stdout=subprocess.DEVNULL,
    )


@dataclass(frozen=True)
class Server:
    """A running server: its base URL, process and log file."""

    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, n_lines: int = 30) -> str:
        """The last lines of the server's output (for error messages)."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n_lines:])


def wait_until_ready(server: Server, timeout: float = READY_TIMEOUT_SECONDS) -> None:
    """Poll ``/ready`` until it answers 200; RuntimeError if the server dies or times out."""
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError(
                    f"headliner serve exited with {server.process.returncode}:\n{server.log_tail()}"
                )
            try:
                if client.get(f"{server.base_url}/ready").status_code == 200:
                    return
            except httpx.TransportError:
                pass  # not listening yet
            time.sleep(0.1)
    raise RuntimeError(f"headliner serve not ready after {timeout:.0f} s:\n{server.log_tail()}")


def stop(process: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT_SECONDS) -> None:
    """Stop the server gracefully (SIGTERM: uvicorn drains and stops its workers), then hard.

    The server runs in its own session, so its process group is exactly the
    server and its workers; only a server that ignores SIGTERM gets SIGKILL.
    """
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=timeout)
    try:
        # Workers outlive a supervisor that was killed; the group is ours alone.
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@contextmanager
def running_server(
    database_url: str,
    workdir: Path,
    *,
    workers: int = 1,
    extra_env: Mapping[str, str] | None = None,
) -> Iterator[Server]:
    """Start ``headliner serve`` on a free loopback port; stop it on exit, whatever happens."""
    port = free_port()
    log_path = workdir / f"server-{port}.log"
    command = [
        str(BIN / "headliner"), "serve",
        "--host", LOOPBACK, "--port", str(port), "--workers", str(workers),
    ]  # fmt: skip
    with log_path.open("wb") as log:
        # A file, not a pipe: nobody reads a pipe during the run, and a full one blocks
        # the server mid-request.
        process = subprocess.Popen(
            command,
            env=server_environment(database_url, extra_env),
            cwd=workdir,  # no stray .env from the caller's working directory
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us, and we stop the server ourselves
        )
        server = Server(f"http://{LOOPBACK}:{port}", process, log_path)
        try:
            wait_until_ready(server)
            yield server
        finally:
            stop(process)
