"""Exact counts under concurrency: 8 client threads against ``headliner serve --workers 2``.

Phase 1: every thread makes 500 decisions on one shared experiment; each
simulated recipient opens with its headline's true rate, and a
quarter of those opens are sent twice (the pixel firing again). Every 25th
decision carries an idempotency key and is retried at once.

Phase 2, the races: behind a barrier, every thread opens the same 40
unopened decisions (exactly one open per decision may count) and decides with
the same 20 idempotency keys (exactly one decision per key may be created).
The two workers serve the threads' requests, so these races cross processes
and meet only in the database.

Then the report's per-headline sends and opens must equal exactly what the
clients recorded, and no request may have failed.

The server is the installed ``headliner serve --workers 2`` on a free loopback
port, once over SQLite (a file in ``tmp_path``) and once over PostgreSQL (a new
database on the server of ``HEADLINER_TEST_POSTGRES_URL``, through the shared
``postgres_admin`` fixture, which skips with a how-to when no server is
reachable and fails under CI). The database starts empty: ``serve`` applies the
migrations itself before its workers start, as in production. A finalizer
always stops the server (SIGTERM, then SIGKILL of the process group it alone
runs in) before the database is dropped.
"""

from __future__ import annotations

import sys
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import sqlalchemy as sa

# The server launcher is shared with `make load-test`; tests/ is not a package.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "performance"))

from serving import Server, running_server  # noqa: E402

pytestmark = pytest.mark.slow

N_THREADS = 8
DECISIONS_PER_THREAD = 500
REPEAT_OPEN_SHARE = 0.25
IDEMPOTENT_EVERY = 25
CONTESTED_OPENS = 40
CONTESTED_KEYS = 20
SEED = 20240611
TIMEOUT = httpx.Timeout(30.0)

REFERENCE_HEADLINES = {
    "48 Hours Only: Save 25%": 0.18,
    "Your Exclusive Spring Offer Is Here": 0.21,
    "Don't Miss Your Member Discount": 0.16,
    "Ending Tonight: Final Chance to Save": 0.24,
    "A Little Something Just for You": 0.20,
}
TRUE_RATES = np.array(list(REFERENCE_HEADLINES.values()))


# --- the server under test --------------------------------------------------
WORKERS = 2


@pytest.fixture
def fresh_postgres_url(postgres_admin: sa.Engine) -> Iterator[str]:
    """A new, empty PostgreSQL database for this test only; dropped afterwards."""
    name = f"headliner_concurrency_{uuid.uuid4().hex[:12]}"
    with postgres_admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield postgres_admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with postgres_admin.connect() as conn:
            # FORCE: a server killed mid-request may leave sessions behind.
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]
)
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    """``headliner serve --workers 2`` on loopback over a fresh, unmigrated database."""
    if request.param == "sqlite":
        database_url = f"sqlite:///{tmp_path / 'headliner.db'}"
    else:
        database_url = request.getfixturevalue("fresh_postgres_url")
    # No access log: errors and tracebacks still show up in the server log.
    with running_server(
        database_url, tmp_path, workers=WORKERS, extra_env={"HEADLINER_LOG_LEVEL": "WARNING"}
    ) as server:
        yield server


# --- the clients ------------------------------------------------------------
@dataclass
class ThreadLog:
    """What one client thread did, as the server acknowledged it."""

    decision_to_arm: dict[str, int] = field(default_factory=dict)
    opened: set[str] = field(default_factory=set)
    counted_opens: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    open_results: dict[str, str] = field(default_factory=dict)  # phase 2: decision -> result
    key_to_decision: dict[str, tuple[str, int, int]] = field(default_factory=dict)


def _expect(response: httpx.Response, log: ThreadLog, *statuses: int) -> dict[str, Any]:
    log.statuses[response.status_code] += 1
    assert response.status_code in statuses, (
        f"{response.request.method} {response.request.url.path}: "
        f"{response.status_code} {response.text[:300]}"
    )
    body: dict[str, Any] = response.json()
    return body


def _decide(
    client: httpx.Client, experiment_id: str, log: ThreadLog, key: str | None
) -> tuple[httpx.Response, dict[str, Any]]:
    headers = {"Idempotency-Key": key} if key is not None else None
    response = client.post(f"/v1/experiments/{experiment_id}/decisions", headers=headers)
    return response, _expect(response, log, 200, 201)


def _open(client: httpx.Client, experiment_id: str, decision_id: str, log: ThreadLog) -> str:
    response = client.post(f"/v1/experiments/{experiment_id}/decisions/{decision_id}/open")
    result: str = _expect(response, log, 200)["result"]
    log.counted_opens += result == "counted"
    return result


def send_and_open(
    client: httpx.Client, experiment_id: str, rng: np.random.Generator, index: int
) -> ThreadLog:
    """Phase 1: decisions, opens at the true rates, repeated opens, retried keyed decisions."""
    log = ThreadLog()
    for i in range(DECISIONS_PER_THREAD):
        key = f"thread-{index}-send-{i}" if i % IDEMPOTENT_EVERY == 0 else None
        response, body = _decide(client, experiment_id, log, key)
        assert response.status_code == 201, f"a new decision must be 201: {body}"
        decision_id, arm = body["decision_id"], body["arm"]
        log.decision_to_arm[decision_id] = arm
        if key is not None:
            retry, replay = _decide(client, experiment_id, log, key)
            assert (retry.status_code, replay["decision_id"]) == (200, decision_id)
        if rng.random() < TRUE_RATES[arm]:
            assert _open(client, experiment_id, decision_id, log) == "counted"
            log.opened.add(decision_id)
            if rng.random() < REPEAT_OPEN_SHARE:
                assert _open(client, experiment_id, decision_id, log) == "duplicate"
    return log


def race(
    client: httpx.Client,
    experiment_id: str,
    rng: np.random.Generator,
    barrier: threading.Barrier,
    contested: list[str],
) -> ThreadLog:
    """Phase 2: every thread opens the same decisions and reuses the same keys, at once."""
    log = ThreadLog()
    barrier.wait()  # all threads start together: the races are real
    for decision_id in rng.permutation(contested):
        log.open_results[str(decision_id)] = _open(client, experiment_id, str(decision_id), log)
    for k in rng.permutation(CONTESTED_KEYS):
        key = f"contested-{k}"
        response, body = _decide(client, experiment_id, log, key)
        log.key_to_decision[key] = (body["decision_id"], body["arm"], response.status_code)
    return log


@pytest.fixture
def clients(served: Server) -> Iterator[list[httpx.Client]]:
    """One HTTP client per thread (each keeps its own keep-alive connection)."""
    with ExitStack() as stack:
        yield [
            stack.enter_context(httpx.Client(base_url=served.base_url, timeout=TIMEOUT))
            for _ in range(N_THREADS)
        ]


def test_counts_are_exact_under_concurrent_decisions_and_opens(
    served: Server, clients: list[httpx.Client]
) -> None:
    admin = clients[0]
    created = admin.post(
        "/v1/experiments",
        json={
            "name": f"concurrency on {served.base_url}",
            "headlines": list(REFERENCE_HEADLINES),
            # No automatic winner: the counts, not the stopping rule, are under test.
            "stopping": {"enabled": False},
        },
    )
    assert created.status_code == 201, created.text
    experiment_id = created.json()["id"]
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(SEED).spawn(N_THREADS)]

    with ThreadPoolExecutor(max_workers=N_THREADS) as pool:
        phase1 = list(
            pool.map(send_and_open, clients, [experiment_id] * N_THREADS, rngs, range(N_THREADS))
        )
        decision_to_arm = {d: a for log in phase1 for d, a in log.decision_to_arm.items()}
        opened = {d for log in phase1 for d in log.opened}
        contested = sorted(set(decision_to_arm) - opened)[:CONTESTED_OPENS]
        barrier = threading.Barrier(N_THREADS, timeout=60)
        phase2 = list(
            pool.map(
                race,
                clients,
                [experiment_id] * N_THREADS,
                rngs,
                [barrier] * N_THREADS,
                [contested] * N_THREADS,
            )
        )
    report_response = admin.get(f"/v1/experiments/{experiment_id}/report")
    assert report_response.status_code == 200, report_response.text
    report = report_response.json()

    logs = phase1 + phase2
    statuses = sum((log.statuses for log in logs), Counter[int]())
    assert not [s for s in statuses if s >= 500], f"{statuses}\n{served.log_tail()}"
    # Nothing went wrong quietly either (the server logs WARNING and above).
    assert "Traceback" not in served.log_path.read_text(errors="replace"), served.log_tail()
    assert len(decision_to_arm) == N_THREADS * DECISIONS_PER_THREAD  # ids are unique
    # Each contested open counted exactly once across threads (and workers).
    for decision_id in contested:
        results = Counter(log.open_results[decision_id] for log in phase2)
        assert results == {"counted": 1, "duplicate": N_THREADS - 1}, (decision_id, results)
    # Each contested key made exactly one decision; every thread got that one back.
    key_decisions: dict[str, int] = {}
    for key in (f"contested-{k}" for k in range(CONTESTED_KEYS)):
        seen = {log.key_to_decision[key] for log in phase2}
        assert len({(d, a) for d, a, _ in seen}) == 1, (key, seen)
        assert sorted(s for _, _, s in (log.key_to_decision[key] for log in phase2)) == (
            [200] * (N_THREADS - 1) + [201]
        ), key
        decision_id, arm, _ = next(iter(seen))
        key_decisions[decision_id] = arm
    all_decisions = decision_to_arm | key_decisions
    all_opened = opened | set(contested)
    assert sum(log.counted_opens for log in logs) == len(all_opened)

    expected_sends = Counter(all_decisions.values())
    expected_opens = Counter(decision_to_arm[d] for d in all_opened)
    lines = {line["arm"]: line for line in report["arms"]}
    reported_sends = {arm: lines[arm]["sends"] for arm in lines}
    reported_opens = {arm: lines[arm]["opens"] for arm in lines}
    arms = range(len(REFERENCE_HEADLINES))
    assert reported_sends == {arm: expected_sends[arm] for arm in arms}
    assert reported_opens == {arm: expected_opens[arm] for arm in arms}
    # Inside the 72 h window: every open counted, every other send still pending.
    assert all(line["late_opens"] == 0 for line in lines.values())
    assert {arm: lines[arm]["pending"] for arm in arms} == {
        arm: expected_sends[arm] - expected_opens[arm] for arm in arms
    }
