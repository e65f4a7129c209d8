"""Throughput of the decision service at a latency bound: find the knee, then profile it.

Locust (Python) saturates a core of its own long before the service does on a
2-core machine, so this uses ``wrk`` (C, LuaJIT) as the load generator and a
Lua script that keeps a *target request rate* instead of a fixed concurrency:
before each request it waits for the next slot of a fixed schedule (the
idea of wrk2, which Debian does not package), over many connections, so that
a slower server does not quietly slow the generator down. Every other request
is a decision, the rest are opens of decisions this generator just received
(the 50/50 decide+open mix of the probe in the seed design), so an open always
refers to a real, unopened decision.

For each target rate, ``wrk`` runs for ``--step-seconds`` on a fresh
experiment (the decision path periodically aggregates the experiment's rows,
so its cost grows with the experiment; ``--same-experiment`` keeps one across
the steps to show that) and reports the achieved rate and latency
percentiles; a step is *sustained* when the achieved rate is at least 97% of
the target, nothing failed and p99 <= ``--p99-ms``.
The knee is the highest sustained rate. ``srv CPU`` is the CPU time of the
server's processes (user + system, from /proc) as a share of one core, and
``us/req`` the same time per completed request: the figure to compare
between versions, as it barely moves with the load of other processes
(SQLite runs inside the server's process and is included; PostgreSQL's own
backends are not). With ``--profile-rate`` it then runs
``py-spy record`` on the server's processes under that load and prints the
frames where the time goes.

Usage (``apt-get install wrk``; ``.venv/bin/pip install py-spy`` for the
profile)::

    .venv/bin/python benchmarks/service_throughput.py --rates 500,1000,1500,2000
    .venv/bin/python benchmarks/service_throughput.py --workers 2 \
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test
    .venv/bin/python benchmarks/service_throughput.py --rates 2000 --profile-rate 2000

Run it on an otherwise idle machine: the generator, the server and the
database share the cores.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
# The server launcher is shared with `make load-test`; tests/ is not a package.
sys.path.insert(0, str(REPO / "tests" / "performance"))

from serving import BIN, Server, fresh_database, running_server, upgrade_database  # noqa: E402

REFERENCE_HEADLINES = [
    "48 Hours Only: Save 25%",
    "Your Exclusive Spring Offer Is Here",
    "Don't Miss Your Member Discount",
    "Ending Tonight: Final Chance to Save",
    "A Little Something Just for You",
]

# wrk calls delay() before each request and request() right after it; response()
# sees every body. One Lua state per wrk thread, so the schedule is per thread.
WRK_SCRIPT = r"""
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } hl_timespec;
int clock_gettime(int clk_id, hl_timespec *tp);
]]
local ts = ffi.new("hl_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts)  -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000.0 + tonumber(ts.tv_nsec) / 1e6
end

local base, interval, next_slot
local pending = {}   -- decision ids not yet opened (a FIFO)
local head, tail = 1, 0
local turn = 0
local decide_req
local counts = {decide = 0, open = 0, non2xx = 0}

function init(args)
  base = "/v1/experiments/" .. args[1]
  interval = 1000.0 / tonumber(args[2])  -- ms between this thread's requests
  decide_req = wrk.format("POST", base .. "/decisions", nil, "")
end

function delay()
  local now = now_ms()
  if next_slot == nil then next_slot = now end
  local wait = next_slot - now
  next_slot = next_slot + interval
  if wait < 0 then return 0 end
  return math.floor(wait)
end

function request()
  turn = turn + 1
  if turn % 2 == 0 and head <= tail then
    local id = pending[head]
    pending[head] = nil
    head = head + 1
    counts.open = counts.open + 1
    return wrk.format("POST", base .. "/decisions/" .. id .. "/open", nil, "")
  end
  counts.decide = counts.decide + 1
  return decide_req
end

function response(status, headers, body)
  if status >= 300 then
    counts.non2xx = counts.non2xx + 1
    return
  end
  local id = body:match('"decision_id":"(%x+)","experiment_id"')
  if id and status == 201 then
    tail = tail + 1
    pending[tail] = id
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "connect_errors": %d, "read_errors": %d, ' ..
    '"write_errors": %d, "status_errors": %d, "timeouts": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "p999_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max))
end
"""


@dataclass(frozen=True)
class Step:
    """One target rate and what the service did at it."""

    target: float
    achieved: float
    errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    server_cpu_pct: float  # all server processes, % of one core
    cpu_us_per_request: float  # server CPU time (user + system) per completed request

    def sustained(self, p99_limit_ms: float) -> bool:
        """At (nearly) the target rate, without errors, within the p99 bound."""
        return (
            self.achieved >= 0.97 * self.target and self.errors == 0 and self.p99_ms <= p99_limit_ms
        )


def create_experiment(server: Server) -> str:
    """A Thompson experiment over the reference headlines (no automatic winner)."""
    with httpx.Client(base_url=server.base_url, timeout=30.0) as client:
        response = client.post(
            "/v1/experiments",
            json={
                "name": "throughput benchmark",
                "headlines": REFERENCE_HEADLINES,
                # A declared winner would replace the Thompson draw by a constant.
                "stopping": {"enabled": False},
            },
        )
        response.raise_for_status()
        experiment_id: str = response.json()["id"]
        return experiment_id


def group_cpu_seconds(pgid: int) -> float:
    """CPU time (user + system) of the live processes in process group ``pgid``.

    The server runs in a session of its own, so its group is the server and
    its workers.
    """
    ticks = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue  # the process ended meanwhile
        # Fields after the parenthesized command: state ppid pgrp ... utime(11) stime(12).
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def run_wrk(
    server: Server,
    script: Path,
    experiment_id: str,
    rate: float,
    seconds: float,
    *,
    threads: int,
    connections: int,
) -> Step:
    """Drive ``rate`` requests/s for ``seconds``; the achieved rate and latency."""
    command = [
        "wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds:.0f}s",
        "--timeout", "5s", "-s", str(script), server.base_url,
        "--", experiment_id, str(rate / threads),
    ]  # fmt: skip
    cpu_before, wall_before = group_cpu_seconds(server.process.pid), time.monotonic()
    out = subprocess.run(
        command, capture_output=True, text=True, check=True, timeout=seconds + 60
    ).stdout
    cpu = group_cpu_seconds(server.process.pid) - cpu_before
    wall = time.monotonic() - wall_before
    line = next(x for x in reversed(out.splitlines()) if x.startswith("{"))
    data = json.loads(line)
    errors = sum(
        data[k]
        for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts")
    )
    return Step(
        target=rate,
        achieved=data["requests"] / (data["duration_us"] / 1e6),
        errors=errors,
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        p999_ms=data["p999_us"] / 1000,
        max_ms=data["max_us"] / 1000,
        server_cpu_pct=100.0 * cpu / wall,
        cpu_us_per_request=1e6 * cpu / max(data["requests"], 1),
    )


def format_steps(steps: list[Step], p99_limit_ms: float) -> str:
    """A table of the steps, marking the sustained ones."""
    header = (
        f"{'target/s':>9} {'achieved/s':>10} {'errors':>6} {'p50 ms':>7} {'p90 ms':>7} "
        f"{'p99 ms':>7} {'p99.9 ms':>8} {'max ms':>7} {'srv CPU':>7} {'us/req':>6}  ok"
    )
    lines = [header, "-" * len(header)]
    for s in steps:
        mark = "yes" if s.sustained(p99_limit_ms) else "no"
        lines.append(
            f"{s.target:>9.0f} {s.achieved:>10.0f} {s.errors:>6} {s.p50_ms:>7.1f} "
            f"{s.p90_ms:>7.1f} {s.p99_ms:>7.1f} {s.p999_ms:>8.1f} {s.max_ms:>7.0f} "
            f"{s.server_cpu_pct:>6.0f}% {s.cpu_us_per_request:>6.0f}  {mark}"
        )
    return "\n".join(lines)


# --- profile ------------------------------------------------------------------------
def _frame_name(frame: str) -> str:
    # py-spy raw frames read "function (package/module.py:line)": drop the line.
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rstrip(')').rsplit(':', 1)[0]})"


def _package(frame: str) -> str:
    # "sqlalchemy/engine/base.py" -> sqlalchemy; headliner is split by layer.
    parts = frame.partition(" (")[2].rstrip(")").rsplit(":", 1)[0].split("/")
    if parts[0] == "headliner" and len(parts) > 2:
        return f"headliner.{parts[1]}"
    return parts[0].removesuffix(".py")


PROFILE_HZ = 100
LOOP_THREAD = "MainThread"  # uvicorn runs each worker's event loop on its main thread


def summarize_profile(
    raw: Path, top: int, *, samples_per_loop: float | None = None, supervised: bool = False
) -> str:
    """Where the event-loop threads spend their time, from py-spy's raw stacks.

    Only stacks of the event-loop threads count (py-spy ``--threads`` names
    the thread at the root of each stack): the helper threads mostly wait on
    pipes and locks, which py-spy does not always recognize as idle; their
    share is printed on one line. Time is wall time
    while not idle, so an inline store call that waits for PostgreSQL shows as
    ``Connection.wait``: the loop is blocked for it. Self time of the frame
    that calls into the event loop (``Runner.run``) is time in uvloop's C code:
    sockets, timers and callbacks. ``samples_per_loop``, the samples one fully
    busy loop would give, turns the sample count into a busy share.
    ``supervised``: the server runs worker processes under a supervisor (which
    only watches them), so only stacks of a child process count.
    """
    self_time: Counter[str] = Counter()
    by_package: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    elsewhere: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        parts = stack.split(";")
        thread = next((p for p in parts if p.startswith("thread (")), "")
        frames = [p for p in parts if not p.startswith(("thread (", "process "))]
        if not frames:
            continue
        in_worker = not supervised or sum(p.startswith("process ") for p in parts) > 1
        if not (in_worker and thread.endswith(f": {LOOP_THREAD}")):
            elsewhere[_frame_name(frames[-1])] += count
            continue
        total += count
        self_time[_frame_name(frames[-1])] += count
        by_package[_package(frames[-1])] += count
        for name in {_frame_name(f) for f in frames}:
            inclusive[name] += count
    if total == 0:
        return "profile: no samples of an event-loop thread"
    # Headliner's own frames, callees included: which of our calls the time goes to
    # (the middleware wraps every request and says little, so only what lies below).
    inclusive = Counter(
        {
            k: n
            for k, n in inclusive.items()
            if "(headliner/" in k and "Middleware" not in k and "/cli/" not in k
        }
    )

    def block(title: str, counter: Counter[str]) -> list[str]:
        rows = [f"{title} ({total} samples)"]
        rows += [f"  {100 * n / total:5.1f}%  {name}" for name, n in counter.most_common(top)]
        return rows

    lines = []
    if samples_per_loop:
        # Not CPU: a loop blocked in a store call is busy too (see srv CPU for CPU).
        busy = 100 * total / samples_per_loop
        lines.append(f"event loops busy (not idle in epoll): {busy:.0f}% of one core's time")
    other = sum(elsewhere.values())
    head = ", ".join(f"{name} {n}" for name, n in elsewhere.most_common(3))
    lines += [f"other threads and processes: {other} samples (top: {head})", ""]
    lines += block("event-loop self time by package", by_package) + [""]
    lines += block("event-loop self time by frame", self_time) + [""]
    lines += block("inclusive time of headliner frames", inclusive)
    return "\n".join(lines)


def profile(
    server: Server, script: Path, experiment_id: str, args: argparse.Namespace, out_dir: Path
) -> str:
    """Record the server's processes with py-spy while wrk drives ``--profile-rate``."""
    py_spy = shutil.which("py-spy", path=str(BIN)) or shutil.which("py-spy")
    if py_spy is None:
        return "profile skipped: py-spy not found (.venv/bin/pip install py-spy)"
    raw = out_dir / "profile.txt"
    # --nonblocking: py-spy reads the processes' memory without pausing them, so the
    # profiled run keeps its throughput (pausing at 100 Hz costs a lot of it).
    common = [
        "--pid", str(server.process.pid), "--subprocesses", "--threads", "--nonblocking",
        "--rate", str(PROFILE_HZ),
    ]  # fmt: skip
    seconds = args.profile_seconds
    spy_log = (out_dir / "py-spy.log").open("wb")
    flame = subprocess.Popen(
        [py_spy, "record", *common, "-d", str(int(seconds)), "--format", "raw", "-o", str(raw)],
        stdout=spy_log,
        stderr=subprocess.STDOUT,
    )
    try:
        time.sleep(1.0)  # py-spy attaches first, so the whole window is under load
        step = run_wrk(
            server,
            script,
            experiment_id,
            args.profile_rate,
            seconds,
            threads=args.threads,
            connections=args.connections,
        )
    finally:
        flame.wait(timeout=seconds + 60)
        spy_log.close()
    if not raw.is_file():
        return f"profile failed: see {out_dir / 'py-spy.log'}"
    # The raw file is in collapsed-stack format: speedscope.app or flamegraph.pl draw it.
    header = f"profile at {args.profile_rate:.0f}/s for {seconds:.0f} s (raw stacks: {raw})"
    return "\n".join(
        [
            header,
            format_steps([step], args.p99_ms),
            "",
            summarize_profile(
                raw,
                args.top,
                samples_per_loop=PROFILE_HZ * seconds,
                supervised=args.workers > 1,
            ),
        ]
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="500,1000,1500,2000,2500,3000,3500,4000")
    parser.add_argument("--step-seconds", type=float, default=15.0)
    parser.add_argument("--warmup-seconds", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL (default: SQLite)")
    parser.add_argument(
        "--log-level", default=None, help="Server log level (default: the server's INFO)"
    )
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="Extra server setting, e.g. HEADLINER_STORE_CALLS_IN_THREADPOOL=true (repeatable)",
    )
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--connections", type=int, default=100, help="wrk connections")
    parser.add_argument("--p99-ms", type=float, default=50.0)
    parser.add_argument("--profile-rate", type=float, default=None)
    parser.add_argument("--profile-seconds", type=float, default=20.0)
    parser.add_argument("--top", type=int, default=15, help="Frames to list in the profile")
    parser.add_argument("--out", type=Path, default=REPO / "reports", help="Where output goes")
    parser.add_argument(
        "--same-experiment",
        action="store_true",
        help="Keep one experiment for every step (it grows) instead of a fresh one per step",
    )
    parser.add_argument(
        "--stop-after-misses",
        type=int,
        default=2,
        help="Stop stepping up after this many unsustained rates in a row",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Step through the rates, print the table and the knee, optionally profile."""
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print("service_throughput: wrk not found (apt-get install -y wrk)", file=sys.stderr)
        return 2
    rates = [float(r) for r in args.rates.split(",") if r.strip()]
    backend = "PostgreSQL" if args.database_url else "SQLite"
    print(f"service_throughput: {backend}, {args.workers} worker(s), cpus={os.cpu_count()}")
    extra_env = {"HEADLINER_LOG_LEVEL": args.log_level} if args.log_level else {}
    for item in args.server_env:
        name, sep, value = item.partition("=")
        if not sep:
            print(f"service_throughput: --server-env needs NAME=VALUE: {item!r}", file=sys.stderr)
            return 2
        extra_env[name] = value
    if extra_env:
        print(f"server settings: {extra_env}")
    steps: list[Step] = []
    profile_text = ""
    with tempfile.TemporaryDirectory(prefix="headliner-bench-") as scratch:
        workdir = Path(scratch)
        script = workdir / "mix.lua"
        script.write_text(WRK_SCRIPT)
        with fresh_database(args.database_url, workdir) as url:
            upgrade_database(url, workdir)
            with running_server(url, workdir, workers=args.workers, extra_env=extra_env) as server:
                experiment_id = create_experiment(server)
                if args.warmup_seconds > 0:  # connections, caches, first snapshot
                    run_wrk(
                        server, script, experiment_id, min(rates), args.warmup_seconds,
                        threads=args.threads, connections=args.connections,
                    )  # fmt: skip
                misses = 0
                for rate in rates:
                    if not args.same_experiment:
                        experiment_id = create_experiment(server)
                    step = run_wrk(
                        server, script, experiment_id, rate, args.step_seconds,
                        threads=args.threads, connections=args.connections,
                    )  # fmt: skip
                    steps.append(step)
                    print(format_steps([step], args.p99_ms).splitlines()[-1], flush=True)
                    misses = 0 if step.sustained(args.p99_ms) else misses + 1
                    if misses >= args.stop_after_misses:
                        break
                if args.profile_rate:
                    args.out.mkdir(parents=True, exist_ok=True)
                    profile_text = profile(server, script, experiment_id, args, args.out)
    print()
    print(format_steps(steps, args.p99_ms))
    sustained = [s for s in steps if s.sustained(args.p99_ms)]
    if sustained:
        best = max(sustained, key=lambda s: s.target)
        print(
            f"\nknee: {best.achieved:.0f} req/s sustained with p99 {best.p99_ms:.1f} ms "
            f"(<= {args.p99_ms:.0f} ms)"
        )
    else:
        print(f"\nno rate was sustained with p99 <= {args.p99_ms:.0f} ms")
    if profile_text:
        print()
        print(profile_text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
