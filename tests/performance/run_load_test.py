"""``make load-test``: a headless Locust run against a real server on a fresh database.

Steps: make a fresh database (a SQLite file in a scratch directory, or with
``--database-url`` a new PostgreSQL database next to the one named, dropped
afterwards), ``headliner db upgrade``, ``headliner serve`` on a free loopback
port, wait for ``/ready``, run ``locustfile.py`` headless, stop the server,
then print RPS, p50/p95/p99 and the failure share per request type and in
aggregate, read from Locust's CSV statistics, and beside them the latency the
server itself measured (its ``/metrics`` histogram), which tells the
service's share of the latency from the load generator's own queueing.

The exit status is the gate of the seed design: 1 when the
aggregated p95 exceeds 300 ms or more than 1% of requests failed, 2 when the
run itself broke (server did not start, Locust crashed), 0 otherwise. The HTML
report and the CSV files go to ``reports/load-<UTC timestamp>*``.

Usage::

    .venv/bin/python tests/performance/run_load_test.py --users 50 --duration 2m --workers 1
    .venv/bin/python tests/performance/run_load_test.py --workers 2 \
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import csv
import math
import re
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
from serving import BIN, fresh_database, running_server, upgrade_database

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
LOCUSTFILE = HERE / "locustfile.py"

P95_LIMIT_MS = 300.0
FAILURE_LIMIT_PCT = 1.0
# Locust gets this long beyond --duration (ramp-up, stop timeout, writing the report)
# before it is killed: the run is bounded even if a request hangs.
LOCUST_GRACE_SECONDS = 120.0

_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?")


def parse_duration(text: str) -> float:
    """Seconds in a Locust run time such as ``2m``, ``90s``, ``1h30m`` or ``45``."""
    match = _DURATION.fullmatch(text.strip())
    if not text.strip() or match is None:
        raise argparse.ArgumentTypeError(f"not a duration like 2m, 90s or 1h30m: {text!r}")
    hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    total = 3600 * hours + 60 * minutes + seconds
    if total <= 0:
        raise argparse.ArgumentTypeError(f"duration must be positive: {text!r}")
    return float(total)


@dataclass(frozen=True)
class Stats:
    """One line of Locust's ``*_stats.csv`` (times in milliseconds)."""

    name: str
    requests: int
    failures: int
    rps: float
    p50: float
    p95: float
    p99: float
    max: float

    @property
    def failure_pct(self) -> float:
        """Share of failed requests, in percent (0 for no requests)."""
        return 100.0 * self.failures / self.requests if self.requests else 0.0


def _number(value: str) -> float:
    # Locust writes "N/A" for a percentile of a type without requests.
    try:
        return float(value)
    except ValueError:
        return float("nan")


def read_stats(path: Path) -> list[Stats]:
    """Request types, then the ``Aggregated`` line, from Locust's stats CSV."""
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [
        Stats(
            name=row["Name"],
            requests=int(row["Request Count"]),
            failures=int(row["Failure Count"]),
            rps=_number(row["Requests/s"]),
            p50=_number(row["50%"]),
            p95=_number(row["95%"]),
            p99=_number(row["99%"]),
            max=_number(row["Max Response Time"]),
        )
        for row in rows
    ]


def format_table(stats: list[Stats]) -> str:
    """A fixed-width table: one line per request type, the aggregate last."""
    header = (
        f"{'request':<52} {'count':>8} {'RPS':>8} {'p50 ms':>7} {'p95 ms':>7} "
        f"{'p99 ms':>7} {'max ms':>7} {'fail %':>7}"
    )
    lines = [header, "-" * len(header)]
    for s in stats:
        lines.append(
            f"{s.name:<52} {s.requests:>8} {s.rps:>8.1f} {s.p50:>7.0f} {s.p95:>7.0f} "
            f"{s.p99:>7.0f} {s.max:>7.0f} {s.failure_pct:>7.2f}"
        )
    return "\n".join(lines)


def gate(aggregate: Stats, p95_limit_ms: float, failure_limit_pct: float) -> list[str]:
    """The reasons the run fails the gate (empty when it passes)."""
    problems = []
    if aggregate.requests == 0:
        problems.append("no request was made")
    if not aggregate.p95 <= p95_limit_ms:  # NaN fails too
        problems.append(f"p95 {aggregate.p95:.0f} ms > {p95_limit_ms:.0f} ms")
    if aggregate.failure_pct > failure_limit_pct:
        problems.append(f"failures {aggregate.failure_pct:.2f}% > {failure_limit_pct:.2f}%")
    return problems


@dataclass(frozen=True)
class ServerLine:
    """Server-side latency of one route, from the service's Prometheus histogram."""

    route: str
    requests: int
    errors_5xx: int
    p50: float
    p95: float
    p99: float


def _quantile(q: float, cumulative: list[tuple[float, float]]) -> float:
    # As PromQL's histogram_quantile: linear inside the bucket holding the rank.
    total = cumulative[-1][1]
    if total == 0:
        return math.nan
    rank = q * total
    low, below = 0.0, 0.0
    for upper, count in cumulative:
        if count >= rank:
            if math.isinf(upper):
                return low  # beyond the last finite bucket: report its bound
            return low + (upper - low) * (rank - below) / max(count - below, 1e-12)
        low, below = upper, count
    return low


def server_latency(metrics_text: str) -> list[ServerLine]:
    """Per route: requests, 5xx and p50/p95/p99 (ms) as the server measured them.

    Locust's times include its own queueing when the generator is short of
    CPU; the server's histogram (summed over workers by ``/metrics``) shows
    how much of the latency is the service's. It times a request from when
    the app starts on it: waiting for a busy event loop before that is not in
    it. Quantiles are interpolated inside the histogram buckets (approximate).
    """
    from prometheus_client.parser import text_string_to_metric_families

    buckets: dict[str, Counter[float]] = defaultdict(Counter)
    requests: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    for family in text_string_to_metric_families(metrics_text):
        if family.name != "headliner_request_duration_seconds":
            continue
        for sample in family.samples:
            route = f"{sample.labels.get('method', '')} {sample.labels.get('route', '')}"
            if sample.name.endswith("_bucket"):
                buckets[route][float(sample.labels["le"])] += sample.value
            elif sample.name.endswith("_count"):
                requests[route] += int(sample.value)
                if sample.labels.get("status", "").startswith("5"):
                    errors[route] += int(sample.value)
    lines = []
    for route in sorted(buckets, key=lambda r: -requests[r]):
        cumulative = sorted(buckets[route].items())
        p50, p95, p99 = (1000.0 * _quantile(q, cumulative) for q in (0.5, 0.95, 0.99))
        lines.append(ServerLine(route, requests[route], errors[route], p50, p95, p99))
    return lines


def format_server_table(lines: list[ServerLine]) -> str:
    """A fixed-width table of the server-side latency."""
    header = (
        f"{'server-side (/metrics)':<66} {'count':>8} {'5xx':>5} "
        f"{'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7}"
    )
    rows = [header, "-" * len(header)]
    for s in lines:
        rows.append(
            f"{s.route:<66} {s.requests:>8} {s.errors_5xx:>5} "
            f"{s.p50:>7.1f} {s.p95:>7.1f} {s.p99:>7.1f}"
        )
    return "\n".join(rows)


def fetch_metrics(base_url: str) -> str:
    """``/metrics`` of the server, or "" if it does not answer."""
    try:
        response = httpx.get(f"{base_url}/metrics", timeout=10.0)
    except httpx.HTTPError:
        return ""
    return response.text if response.status_code == 200 else ""


def run_locust(args: argparse.Namespace, host: str, prefix: Path) -> int:
    """Run Locust headless against ``host``; its exit code (killed after the time bound)."""
    command = [
        str(BIN / "locust"),
        "-f", str(LOCUSTFILE),
        "--headless",
        "--host", host,
        "-u", str(args.users),
        "-r", str(args.spawn_rate),
        "-t", f"{int(args.duration)}s",
        "--stop-timeout", "10",
        "--html", f"{prefix}.html",
        "--csv", str(prefix),
        "--only-summary",
        "--loglevel", "WARNING",
        "--wait-min", str(args.wait_min),
        "--wait-max", str(args.wait_max),
    ]  # fmt: skip
    with subprocess.Popen(command, cwd=REPO) as process:
        try:
            return process.wait(timeout=args.duration + LOCUST_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            print("load-test: Locust overran its time bound and was killed", file=sys.stderr)
            return -1
        except BaseException:
            process.kill()  # Ctrl-C: do not leave Locust running on its own
            raise


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (the Makefile passes --users, --duration, --workers, --database-url)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=50, help="Concurrent Locust users")
    parser.add_argument("--spawn-rate", type=float, default=10.0, help="Users started per second")
    parser.add_argument(
        "--duration", type=parse_duration, default=120.0, help="Run time: 2m, 90s, 1h30m"
    )
    parser.add_argument("--workers", type=int, default=1, help="headliner serve --workers")
    parser.add_argument(
        "--database-url",
        default=None,
        help="PostgreSQL server URL; a fresh database is made on it and dropped (default: SQLite)",
    )
    parser.add_argument(
        "--log-level",
        default=None,
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="Server log level (default: the server's own, INFO: one JSON line per request)",
    )
    parser.add_argument("--wait-min", type=float, default=0.05, help="User think time, min s")
    parser.add_argument("--wait-max", type=float, default=0.15, help="User think time, max s")
    parser.add_argument("--reports-dir", type=Path, default=REPO / "reports")
    parser.add_argument("--p95-limit-ms", type=float, default=P95_LIMIT_MS)
    parser.add_argument("--failure-limit-pct", type=float, default=FAILURE_LIMIT_PCT)
    args = parser.parse_args(argv)
    if args.users < 1 or args.workers < 1 or args.spawn_rate <= 0:
        parser.error("--users, --workers and --spawn-rate must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the load test; the exit status is the gate."""
    args = parse_args(argv)
    args.reports_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    prefix = args.reports_dir / f"load-{stamp}"
    backend = "PostgreSQL" if args.database_url else "SQLite"
    extra_env = {"HEADLINER_LOG_LEVEL": args.log_level} if args.log_level else {}
    print(
        f"load-test: {args.users} users for {args.duration:.0f} s, {backend}, "
        f"{args.workers} worker(s)",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="headliner-load-") as scratch:
        workdir = Path(scratch)
        try:
            with fresh_database(args.database_url, workdir) as url:
                upgrade_database(url, workdir)
                with running_server(
                    url, workdir, workers=args.workers, extra_env=extra_env
                ) as server:
                    print(f"load-test: server ready at {server.base_url}", flush=True)
                    code = run_locust(args, server.base_url, prefix)
                    metrics_text = fetch_metrics(server.base_url)
        except (RuntimeError, subprocess.CalledProcessError, OSError) as exc:
            print(f"load-test: error: {exc}", file=sys.stderr)
            return 2
    stats_path = Path(f"{prefix}_stats.csv")
    if not stats_path.is_file():
        print(f"load-test: error: Locust wrote no statistics (exit {code})", file=sys.stderr)
        return 2
    stats = read_stats(stats_path)
    print()
    print(format_table(stats))
    if metrics_text:
        print()
        print(format_server_table(server_latency(metrics_text)))
    print(f"\nHTML report: {prefix}.html")
    aggregate = next((s for s in stats if s.name == "Aggregated"), None)
    if aggregate is None:
        print("load-test: error: no Aggregated line in the statistics", file=sys.stderr)
        return 2
    problems = gate(aggregate, args.p95_limit_ms, args.failure_limit_pct)
    if problems:
        print(f"load-test: FAIL: {'; '.join(problems)}")
        return 1
    print(
        f"load-test: PASS (p95 <= {args.p95_limit_ms:.0f} ms, "
        f"failures <= {args.failure_limit_pct:.2f}%)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
