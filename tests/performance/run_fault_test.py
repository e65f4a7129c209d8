"""``make fault-test``: restart PostgreSQL under load and check what the clients were told.

Steps: a new PostgreSQL database next to the one ``--database-url`` names
(dropped afterwards), ``headliner serve --workers N`` on a free loopback port,
one experiment, then ``--clients`` threads that each decide and open in a loop
on one keep-alive connection, as a careful client would: every decision
carries an idempotency key, and a request answered 503 is sent again, the
same key included, after the ``Retry-After`` it came with. A further thread
polls ``/ready``. After ``--before`` seconds PostgreSQL is restarted
(``pg_ctlcluster … restart``, a fast shutdown that ends every session); the
load goes on for ``--after`` seconds once it is back.

It then checks, and prints:

* every answer during the outage was a 503 with a JSON body and a
  ``Retry-After`` header: no 500, no dropped or reset connection;
* ``/ready`` said 503 while the database was down and 200 once it was back;
* the clients got successful answers again after the restart, from the same
  server processes;
* no acknowledged write was lost or doubled: the decisions the database holds
  for the experiment are exactly the acknowledged ones (one per idempotency
  key, with the id the client was given), and the opened decisions exactly
  the acknowledged opens.

The exit status is 0 when all of that holds, 1 when something does not, and
2 when the run was inconclusive or broke (no 503 seen, so the restart went
unnoticed; the server did not start). Restarting PostgreSQL interrupts every
other user of the server for a moment: run it by hand, not in a loop.

Usage::

    .venv/bin/python tests/performance/run_fault_test.py \
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test --workers 2
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import sqlalchemy as sa
from serving import fresh_database, running_server, upgrade_database

from headliner.storage.engine import normalize_url
from headliner.storage.schema import decisions

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
# A request is retried for at most this long before the client gives up on it.
GIVE_UP_SECONDS = 60.0
# After the restart command returns, the clients get this long to succeed again.
RECOVERY_LIMIT_SECONDS = 30.0
TIMEOUT = httpx.Timeout(30.0)


def default_restart_command() -> str:
    """``pg_ctlcluster`` for the one cluster of a Debian-style installation."""
    versions = sorted(p.name for p in Path("/etc/postgresql").glob("*"))
    version = versions[-1] if versions else "16"
    return f"pg_ctlcluster --skip-systemctl-redirect {version} main restart"


@dataclass
class ClientLog:
    """What one client thread sent and what it was told."""

    statuses: Counter[int] = field(default_factory=Counter)
    decisions: dict[str, str] = field(default_factory=dict)  # acknowledged: key -> decision id
    opened: set[str] = field(default_factory=set)  # acknowledged opens, by decision id
    transport_errors: list[str] = field(default_factory=list)
    bad_503s: list[str] = field(default_factory=list)  # without JSON body or Retry-After
    unexpected: list[str] = field(default_factory=list)  # any other status
    given_up: list[str] = field(default_factory=list)
    unavailable_at: list[float] = field(default_factory=list)
    succeeded_at: list[float] = field(default_factory=list)


class Client:
    """One keep-alive connection, retrying each request until it is acknowledged."""

    def __init__(self, base_url: str, log: ClientLog) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=TIMEOUT)
        self.log = log

    def until_acknowledged(self, path: str, body: object, ok: tuple[int, ...]) -> object | None:
        """POST until the answer is one of ``ok``; its JSON body, or None after giving up."""
        deadline = time.monotonic() + GIVE_UP_SECONDS
        while time.monotonic() < deadline:
            try:
                response = self.http.post(path, json=body)
            except httpx.TransportError as exc:
                self.log.transport_errors.append(f"{path}: {exc!r}")
                time.sleep(0.1)
                continue
            self.log.statuses[response.status_code] += 1
            if response.status_code in ok:
                self.log.succeeded_at.append(time.monotonic())
                return response.json()
            if response.status_code == 503:
                self.log.unavailable_at.append(time.monotonic())
                retry_after = response.headers.get("retry-after", "")
                try:
                    detail = response.json()["detail"]
                except (ValueError, KeyError):
                    detail = None
                if not retry_after.isdigit() or not detail:
                    self.log.bad_503s.append(f"{path}: {response.headers} {response.text[:200]}")
                time.sleep(float(retry_after) if retry_after.isdigit() else 1.0)
                continue
            self.log.unexpected.append(f"{path}: {response.status_code} {response.text[:200]}")
            time.sleep(0.1)
        self.log.given_up.append(path)
        return None

    def close(self) -> None:
        self.http.close()


def client_loop(
    base_url: str, experiment_id: str, name: str, stop: threading.Event, log: ClientLog
) -> None:
    """Decide, and open every other decision, until told to stop (never mid-retry)."""
    client = Client(base_url, log)
    decide = f"/v1/experiments/{experiment_id}/decisions"
    try:
        n = 0
        while not stop.is_set():
            key = f"{name}-{n}"
            n += 1
            body = client.until_acknowledged(decide, {"idempotency_key": key}, (200, 201))
            if not isinstance(body, dict):
                continue
            decision_id = str(body["decision_id"])
            log.decisions[key] = decision_id
            if n % 2 == 0:
                opened = client.until_acknowledged(f"{decide}/{decision_id}/open", None, (200,))
                if opened is not None:
                    log.opened.add(decision_id)
    finally:
        client.close()


def ready_loop(base_url: str, stop: threading.Event, seen: list[tuple[float, int, str]]) -> None:
    """Poll ``/ready`` on one connection: (time, status, Retry-After)."""
    with httpx.Client(base_url=base_url, timeout=TIMEOUT) as http:
        while not stop.is_set():
            try:
                response = http.get("/ready")
                seen.append(
                    (
                        time.monotonic(),
                        response.status_code,
                        response.headers.get("retry-after", ""),
                    )
                )
            except httpx.TransportError:
                seen.append((time.monotonic(), -1, ""))
            time.sleep(0.2)


def stored_writes(database_url: str, experiment_id: str) -> tuple[list[tuple[str, str]], set[str]]:
    """(key, decision id) of every stored decision of the experiment, and the opened ids."""
    engine = sa.create_engine(database_url, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(decisions.c.idempotency_key, decisions.c.id, decisions.c.opened_at).where(
                    decisions.c.experiment_id == experiment_id
                )
            ).all()
    finally:
        engine.dispose()
    return [(r.idempotency_key, r.id) for r in rows], {r.id for r in rows if r.opened_at}


def postgres_answers(server_url: str) -> bool:
    """Whether the server behind ``server_url`` accepts a connection now."""
    engine = sa.create_engine(
        normalize_url(server_url), poolclass=sa.NullPool, connect_args={"connect_timeout": 3}
    )
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return True
    except sa.exc.OperationalError:
        return False
    finally:
        engine.dispose()


def restart_postgres(command: str, server_url: str) -> tuple[float, float]:
    """Run the restart command; wait until the server answers again. Monotonic start, end."""
    started = time.monotonic()
    subprocess.run(shlex.split(command), check=True, timeout=120, capture_output=True)
    while not postgres_answers(server_url):
        if time.monotonic() - started > 120:
            raise RuntimeError("PostgreSQL did not come back within 120 s of the restart")
        time.sleep(0.1)
    return started, time.monotonic()


@dataclass(frozen=True)
class Outcome:
    """What the run saw, judged."""

    failures: list[str]
    inconclusive: list[str]
    lines: list[str]


def judge(
    logs: list[ClientLog],
    ready: list[tuple[float, int, str]],
    stored: list[tuple[str, str]],
    stored_opened: set[str],
    restart: tuple[float, float],
) -> Outcome:
    """Compare what the clients were told with what the database holds."""
    failures: list[str] = []
    inconclusive: list[str] = []
    statuses = sum((log.statuses for log in logs), Counter[int]())
    acknowledged = {k: v for log in logs for k, v in log.decisions.items()}
    opened = set().union(*(log.opened for log in logs))
    unavailable = sorted(t for log in logs for t in log.unavailable_at)
    succeeded = sorted(t for log in logs for t in log.succeeded_at)
    restart_start, restart_end = restart

    lines = [
        f"requests: {sum(statuses.values())} answered, by status {dict(sorted(statuses.items()))}",
        f"restart: the command and PostgreSQL's return took {restart_end - restart_start:.1f} s",
    ]
    if unavailable:
        first_ok = next((t for t in succeeded if t > unavailable[-1]), None)
        lines.append(
            f"503 answers: {len(unavailable)}, from {unavailable[0] - restart_start:+.1f} s "
            f"to {unavailable[-1] - restart_start:+.1f} s after the restart began; "
            "first success after the last 503: "
            + ("none" if first_ok is None else f"{first_ok - restart_start:+.1f} s")
        )
    else:
        inconclusive.append("no 503 answer: the clients never saw the outage")
    recovered = [t for t in succeeded if t > restart_end]
    if not recovered or recovered[0] - restart_end > RECOVERY_LIMIT_SECONDS:
        failures.append(
            f"no successful answer within {RECOVERY_LIMIT_SECONDS:.0f} s of the restart"
        )
    else:
        lines.append(f"recovered: {len(recovered)} successful answers after PostgreSQL was back")

    ready_down = [s for t, s, _ in ready if restart_start <= t <= restart_end and s == 503]
    ready_headers = all(h.isdigit() for _, s, h in ready if s == 503)
    lines.append(
        f"/ready: {len(ready)} polls, {len(ready_down)} answered 503 during the restart, "
        f"last one {ready[-1][1] if ready else 'none'}"
    )
    if not ready or ready[-1][1] != 200:
        failures.append("/ready did not answer 200 at the end")
    if not ready_headers:
        failures.append("/ready answered 503 without Retry-After")
    if any(s == -1 for _, s, _ in ready):
        failures.append("/ready lost its connection")

    for what, items in (
        ("dropped or reset connections", [e for log in logs for e in log.transport_errors]),
        (
            "503 answers without a JSON detail or Retry-After",
            [b for log in logs for b in log.bad_503s],
        ),
        ("answers other than success or 503", [u for log in logs for u in log.unexpected]),
        ("requests given up after retrying", [g for log in logs for g in log.given_up]),
    ):
        if items:
            failures.append(f"{len(items)} {what}, e.g. {items[0]}")

    keys = Counter(k for k, _ in stored)
    doubled = sorted(k for k, n in keys.items() if n > 1)
    stored_ids = dict(stored)
    lost = sorted(k for k in acknowledged if k not in stored_ids)
    changed = sorted(k for k, d in acknowledged.items() if k in stored_ids and stored_ids[k] != d)
    extra = sorted(k for k in stored_ids if k not in acknowledged)
    lost_opens = sorted(opened - stored_opened)
    extra_opens = sorted(stored_opened - opened)
    lines.append(
        f"writes: {len(acknowledged)} decisions and {len(opened)} opens acknowledged; "
        f"the database holds {len(stored)} decisions ({len(stored_opened)} opened): "
        f"{len(lost)} lost, {len(doubled)} doubled, {len(changed)} with another id, "
        f"{len(extra)} never acknowledged; opens {len(lost_opens)} lost, "
        f"{len(extra_opens)} never acknowledged"
    )
    for what, items in (
        ("acknowledged decisions lost", lost),
        ("idempotency keys stored twice", doubled),
        ("decisions stored under another id", changed),
        ("decisions stored but never acknowledged", extra),
        ("acknowledged opens lost", lost_opens),
        ("opens stored but never acknowledged", extra_opens),
    ):
        if items:
            failures.append(f"{len(items)} {what}, e.g. {items[0]}")
    return Outcome(failures, inconclusive, lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--workers", type=int, default=2, help="headliner serve --workers")
    parser.add_argument("--clients", type=int, default=8, help="Client threads")
    parser.add_argument("--before", type=float, default=3.0, help="Seconds of load before")
    parser.add_argument("--after", type=float, default=5.0, help="Seconds of load after")
    parser.add_argument(
        "--restart-command",
        default=None,
        help="Restarts PostgreSQL [default: pg_ctlcluster … main restart]",
    )
    args = parser.parse_args(argv)
    if args.workers < 1 or args.clients < 1:
        parser.error("--workers and --clients must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the fault test; the exit status says how it went."""
    args = parse_args(argv)
    command = args.restart_command or default_restart_command()
    print(
        f"fault-test: {args.clients} clients, {args.workers} worker(s); "
        f"restart with `{command}` after {args.before:.0f} s",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="headliner-fault-") as scratch:
        workdir = Path(scratch)
        try:
            with fresh_database(args.database_url, workdir) as url:
                upgrade_database(url, workdir)
                extra_env = {"HEADLINER_LOG_LEVEL": "WARNING"}
                with running_server(url, workdir, workers=args.workers, extra_env=extra_env) as srv:
                    created = httpx.post(
                        f"{srv.base_url}/v1/experiments",
                        json={"name": "Fault test", "headlines": ["A", "B", "C"]},
                        timeout=TIMEOUT,
                    )
                    created.raise_for_status()
                    experiment_id = created.json()["id"]
                    workers = {p.pid for p in psutil.Process(srv.process.pid).children()}
                    stop = threading.Event()
                    logs = [ClientLog() for _ in range(args.clients)]
                    ready: list[tuple[float, int, str]] = []
                    threads = [
                        threading.Thread(
                            target=client_loop,
                            args=(srv.base_url, experiment_id, f"c{i}", stop, log),
                        )
                        for i, log in enumerate(logs)
                    ]
                    threads.append(
                        threading.Thread(target=ready_loop, args=(srv.base_url, stop, ready))
                    )
                    for thread in threads:
                        thread.start()
                    try:
                        time.sleep(args.before)
                        print("fault-test: restarting PostgreSQL", flush=True)
                        restart = restart_postgres(command, args.database_url)
                        print(
                            f"fault-test: PostgreSQL is back after {restart[1] - restart[0]:.1f} s",
                            flush=True,
                        )
                        time.sleep(args.after)
                    finally:
                        stop.set()
                        for thread in threads:
                            thread.join(timeout=GIVE_UP_SECONDS + 30)
                    # The same processes: the service was not restarted, nor a worker replaced.
                    still_serving = srv.process.poll() is None and workers == {
                        p.pid for p in psutil.Process(srv.process.pid).children()
                    }
                    warnings = srv.log_path.read_text().count('"database unavailable"')
                stored, stored_opened = stored_writes(url, experiment_id)
        except (RuntimeError, subprocess.CalledProcessError, OSError, httpx.HTTPError) as exc:
            print(f"fault-test: error: {exc}", file=sys.stderr)
            return 2
        finally:
            if not postgres_answers(args.database_url):
                start = command.rsplit(" ", 1)[0] + " start"
                print(f"fault-test: PostgreSQL is down; running `{start}`", file=sys.stderr)
                subprocess.run(shlex.split(start), check=False, timeout=120)

    outcome = judge(logs, ready, stored, stored_opened, restart)
    print()
    for line in outcome.lines:
        print(line)
    print(f"server: the same processes throughout: {still_serving}; {warnings} outage warnings")
    if not still_serving:
        outcome.failures.append("the server or one of its workers was restarted")
    print(json.dumps({"failures": outcome.failures, "inconclusive": outcome.inconclusive}))
    if outcome.failures:
        print(f"fault-test: FAIL: {'; '.join(outcome.failures)}")
        return 1
    if outcome.inconclusive:
        print(f"fault-test: INCONCLUSIVE: {'; '.join(outcome.inconclusive)}")
        return 2
    print("fault-test: PASS (503 with Retry-After during the outage, nothing lost or doubled)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
