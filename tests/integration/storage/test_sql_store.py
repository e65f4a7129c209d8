"""The SQL store beyond the contract: engine settings, URLs, several processes on one file."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager

import pytest
import sqlalchemy as sa

from headliner.core.errors import (
    ConflictError,
    InvalidParameterError,
    NotFoundError,
    StoreUnavailableError,
)
from headliner.storage.base import ExperimentSpec, OpenResult
from headliner.storage.engine import make_engine, single_statement_engine, write_engine
from headliner.storage.sql import MAX_HELD_CONNECTIONS, AsyncHotWrites, SqlStore, open_store


def test_sqlite_connections_use_wal_and_a_busy_timeout(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    try:
        with engine.connect() as conn:
            pragmas = {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
            }
    finally:
        engine.dispose()
    # synchronous 1 is NORMAL
    assert pragmas == {
        "journal_mode": "wal",
        "synchronous": 1,
        "foreign_keys": 1,
        "busy_timeout": 30_000,
    }


def test_sqlite_writes_begin_immediate(sqlite_url: str) -> None:
    """A write transaction holds the write lock from BEGIN: a second writer must wait."""
    engine = make_engine(sqlite_url)
    try:
        with write_engine(engine).begin():
            other = sa.create_engine(sqlite_url, connect_args={"timeout": 0})
            try:
                with (
                    other.connect() as conn,
                    pytest.raises(sa.exc.OperationalError, match="locked"),
                ):
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
            finally:
                other.dispose()
    finally:
        engine.dispose()


def test_open_store_refuses_memory() -> None:
    """There is no in-memory store: the URL is refused, naming it and the forms allowed."""
    with pytest.raises(
        InvalidParameterError,
        match=r"must start with sqlite:/// or postgresql\+psycopg://\. Got 'memory://' instead\.",
    ):
        open_store("memory://")


def test_open_store_sql(database_url: str) -> None:
    store = open_store(database_url)
    try:
        assert isinstance(store, SqlStore)
        store.ping()
    finally:
        store.close()


@pytest.mark.slow
def test_sqlite_writers_in_several_processes_are_exact(sqlite_url: str) -> None:
    """Two processes decide and open on one SQLite file at once: nothing lost, no 'locked'."""
    store = SqlStore(sqlite_url)
    try:
        exp = store.create_experiment(ExperimentSpec("multi", ["A", "B"]), 0.0).id
    finally:
        store.close()
    script = (
        "import sys\n"
        "from headliner.storage.sql import SqlStore\n"
        "store = SqlStore(sys.argv[1])\n"
        "for i in range(300):\n"
        "    decision, _ = store.record_decision(sys.argv[2], 0, 0.5, float(i))\n"
        "    store.record_open(sys.argv[2], decision.id, i + 1.0, 3600.0)\n"
        "store.close()\n"
    )
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, sqlite_url, exp],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for process in processes:
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr
    store = SqlStore(sqlite_url)
    try:
        hot = store.arm_counts(exp, 400.0, 3600.0)[0]
    finally:
        store.close()
    assert (hot.sends, hot.opens) == (600, 600)


def test_failed_hot_write_is_rolled_back_and_raised_as_sqlalchemy_error(
    database_url: str,
) -> None:
    """A driver error in a decision's write: SQLAlchemy's class, no transaction left open."""
    store = SqlStore(database_url)
    other = SqlStore(database_url)
    try:
        exp = store.create_experiment(ExperimentSpec("broken", ["A", "B"]), 0.0).id
        with pytest.raises(sa.exc.DBAPIError):
            # A value the driver cannot bind (or PostgreSQL cannot cast to the column).
            store.record_decision(exp, 0, 0.5, 1.0, recipient_id=object())  # type: ignore[arg-type]
        # Another connection writes: the failed one holds no lock.
        decision, created = other.record_decision(exp, 1, 0.5, 2.0)
        assert created
        # And the store that failed goes on writing.
        assert store.record_open(exp, decision.id, 3.0, 60.0).value == "counted"
        assert store.record_decision(exp, 0, 0.5, 4.0)[1]
        assert store.arm_counts(exp, 5.0, 60.0)[0].sends == 1
    finally:
        other.close()
        store.close()


def _terminate_backends(admin: sa.Engine, database: str) -> int:
    """End every session on ``database`` as a server restart would; wait until they are gone."""
    with admin.connect() as conn:
        ended = conn.execute(
            sa.text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = :name AND pid <> pg_backend_pid()"
            ),
            {"name": database},
        ).scalar_one()
        for _ in range(500):  # each backend says goodbye on its socket as it exits
            left = conn.execute(
                sa.text("SELECT count(*) FROM pg_stat_activity WHERE datname = :name"),
                {"name": database},
            ).scalar_one()
            if left == 0:
                break
            time.sleep(0.01)
    return int(ended)


@pytest.mark.postgres
def test_postgres_pool_replaces_connections_the_server_ended(
    postgres_url: str, postgres_admin: sa.Engine
) -> None:
    """No pre-ping round trip, yet no failed call after the server drops every connection."""
    store = SqlStore(postgres_url)
    try:
        exp = store.create_experiment(ExperimentSpec("restart", ["A", "B"]), 0.0).id
        with store.engine.connect(), store.engine.connect():
            pass  # two pooled connections, both about to be ended
        assert _terminate_backends(postgres_admin, sa.make_url(postgres_url).database or "") >= 2

        # Both the write path and the read path find live connections.
        decision, created = store.record_decision(exp, 0, 0.5, 1.0)
        assert created
        assert store.get_decision(decision.id) == decision
        assert store.arm_counts(exp, 1.0, 60.0)[0].sends == 1
    finally:
        store.close()


@pytest.mark.postgres
def test_postgres_engine_sets_keepalives_unless_the_url_does(postgres_url: str) -> None:
    engine = make_engine(postgres_url + "?keepalives_idle=30")
    try:
        with engine.connect() as conn:
            dsn = conn.connection.dbapi_connection.info.get_parameters()
    finally:
        engine.dispose()
    assert (dsn["keepalives"], dsn["keepalives_idle"], dsn["keepalives_count"]) == ("1", "30", "3")
    assert dsn["connect_timeout"] == "5"


def test_an_unavailable_database_fails_calls_as_unavailable_then_recovers(
    database_url: str, database_outage: Callable[[], AbstractContextManager[None]]
) -> None:
    """Every call fails with StoreUnavailableError, never a driver error; no write is doubled."""
    store = SqlStore(database_url)  # opened after database_outage: SQLite's short busy timeout
    try:
        exp = store.create_experiment(ExperimentSpec("outage", ["A", "B"]), 0.0).id
        before, _ = store.record_decision(exp, 0, 0.5, 1.0, idempotency_key="before")
        with database_outage():
            with pytest.raises(StoreUnavailableError, match="unavailable") as raised:
                store.record_decision(exp, 1, 0.5, 2.0, idempotency_key="during")
            with pytest.raises(StoreUnavailableError):
                store.record_open(exp, before.id, 3.0, 60.0)
        assert raised.value.retry_after >= 1
        assert raised.value.__cause__ is not None  # the driver's error, for the logs

        # The same store, no reopening: the retries succeed, each write stored once.
        during, created = store.record_decision(exp, 1, 0.5, 4.0, idempotency_key="during")
        assert created
        assert store.record_open(exp, before.id, 5.0, 60.0).value == "counted"
        counts = {c.arm: (c.sends, c.opens) for c in store.arm_counts(exp, 6.0, 60.0)}
        assert counts == {0: (1, 1), 1: (1, 0)}
        assert store.find_decision(exp, "during") == during
    finally:
        store.close()


@pytest.mark.postgres
def test_postgres_session_ended_mid_use_is_unavailable_and_the_pool_recovers(
    postgres_url: str, postgres_admin: sa.Engine
) -> None:
    """A connection the server ends while it is checked out fails one call, then is replaced."""
    store = SqlStore(postgres_url)
    try:
        with store.engine.connect() as conn:
            pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
            with postgres_admin.connect() as admin:
                admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            with pytest.raises(StoreUnavailableError):
                conn.exec_driver_sql("SELECT 1")
        store.ping()
        assert not store.has_api_keys()
    finally:
        store.close()


def test_a_postgres_server_that_refuses_connections_is_unavailable() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    store = SqlStore(f"postgresql+psycopg://postgres@127.0.0.1:{port}/headliner")
    try:
        with pytest.raises(StoreUnavailableError):
            store.ping()
    finally:
        store.close()


def test_errors_that_retrying_cannot_fix_stay_driver_errors(unmigrated_url: str) -> None:
    """A missing table is a deployment mistake, not an outage: no 503 and Retry-After for it."""
    store = SqlStore(unmigrated_url)
    try:
        with pytest.raises(sa.exc.DBAPIError, match="api_keys"):
            store.has_api_keys()
    finally:
        store.close()


@pytest.mark.postgres
def test_postgres_single_statement_writes_autocommit_without_leaking_it(postgres_url: str) -> None:
    """Hot writes skip BEGIN/COMMIT; the pooled connection is transactional again afterwards."""
    engine = make_engine(postgres_url)
    single = single_statement_engine(engine)
    try:
        with single.connect() as conn:
            raw = conn.connection.driver_connection
            assert raw is not None and raw.autocommit is True
            # Autocommit: each statement is its own transaction.
            first = conn.exec_driver_sql("SELECT txid_current()").scalar()
            second = conn.exec_driver_sql("SELECT txid_current()").scalar()
            assert first != second
        # pool_size 10 but one connection in use at a time: the same one comes back.
        with engine.connect() as conn:
            assert conn.connection.driver_connection is raw
            assert raw.autocommit is False
            first = conn.exec_driver_sql("SELECT txid_current()").scalar()
            second = conn.exec_driver_sql("SELECT txid_current()").scalar()
            assert first == second
    finally:
        engine.dispose()


def test_sqlite_single_statement_writes_begin_immediate(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    try:
        single = single_statement_engine(engine)
        assert single.get_execution_options() == write_engine(engine).get_execution_options()
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_async_hot_writes_match_the_store_and_survive_ended_connections(
    postgres_url: str, postgres_admin: sa.Engine
) -> None:
    """Decisions and opens awaited on the async driver: same results, replays, errors."""
    store = SqlStore(postgres_url)

    async def scenario() -> None:
        writes = AsyncHotWrites(store)
        await writes.open()
        try:
            exp = store.create_experiment(ExperimentSpec("async", ["A", "B"]), 0.0).id
            decision, created = await writes.record_decision(
                exp, 1, 0.25, 1.0, recipient_id="r", idempotency_key="k"
            )
            assert created
            assert store.get_decision(decision.id) == decision
            replay, created = await writes.record_decision(exp, 0, 0.5, 2.0, idempotency_key="k")
            assert (replay, created) == (decision, False)
            assert await writes.record_open(exp, decision.id, 3.0, 60.0) is OpenResult.COUNTED
            assert await writes.record_open(exp, decision.id, 4.0, 60.0) is OpenResult.DUPLICATE
            with pytest.raises(NotFoundError):
                await writes.record_open(exp, "0" * 32, 5.0, 60.0)
            with pytest.raises(sa.exc.DBAPIError):
                await writes.record_decision(exp, 0, 0.5, 6.0, recipient_id=object())  # type: ignore[arg-type]
            # The server ends every connection: the pool hands out a fresh one.
            assert _terminate_backends(postgres_admin, sa.make_url(postgres_url).database or "")
            assert (await writes.record_decision(exp, 0, 0.5, 7.0))[1]
            assert store.arm_counts(exp, 8.0, 60.0)[0].sends == 1
        finally:
            await writes.close()

    try:
        asyncio.run(scenario())
    finally:
        store.close()


def test_async_hot_writes_need_postgres(sqlite_url: str) -> None:
    store = SqlStore(sqlite_url)
    try:
        assert not store.supports_async_writes
        with pytest.raises(InvalidParameterError, match="PostgreSQL"):
            AsyncHotWrites(store)
    finally:
        store.close()


def test_async_hot_writes_fail_as_unavailable_during_an_outage_then_recover(
    database_url: str, database_outage: Callable[[], AbstractContextManager[None]]
) -> None:
    """The awaited writes say an outage the way the synchronous path does: a 503, not a 500."""
    if sa.make_url(database_url).get_backend_name() != "postgresql":
        pytest.skip("the awaited hot writes run on PostgreSQL only")
    store = SqlStore(database_url)

    async def scenario() -> None:
        writes = AsyncHotWrites(store)
        await writes.open()
        try:
            exp = store.create_experiment(ExperimentSpec("async outage", ["A", "B"]), 0.0).id
            with database_outage():
                with pytest.raises(StoreUnavailableError) as raised:
                    await writes.record_decision(exp, 0, 0.5, 1.0, idempotency_key="k")
                assert raised.value.__cause__ is not None  # the driver's error, for the logs
            decision, created = await writes.record_decision(exp, 0, 0.5, 2.0, idempotency_key="k")
            assert created and store.find_decision(exp, "k") == decision  # stored once
        finally:
            await writes.close()

    try:
        asyncio.run(scenario())
    finally:
        store.close()


@pytest.mark.postgres
def test_async_hot_writes_in_one_batch_are_each_exact(postgres_url: str) -> None:
    """Concurrent requests share statements: every result is still the request's own."""
    store = SqlStore(postgres_url)

    async def scenario() -> None:
        writes = AsyncHotWrites(store)
        await writes.open()
        try:
            exp = store.create_experiment(ExperimentSpec("batch", ["A", "B"]), 0.0).id
            other = store.create_experiment(ExperimentSpec("other", ["A", "B"]), 0.0).id
            made = await asyncio.gather(
                *(writes.record_decision(exp, i % 2, 0.5, 1.0) for i in range(40)),
                writes.record_decision(exp, 0, 0.5, 1.0, idempotency_key="same"),
                writes.record_decision(exp, 1, 0.5, 1.0, idempotency_key="same"),
            )
            assert all(created for _, created in made[:40])
            (first, first_created), (second, second_created) = made[40:]
            assert (first_created, second_created) == (True, False)
            assert second == first  # the replay returns the stored decision
            target = made[0][0].id
            opened = await asyncio.gather(
                writes.record_open(exp, target, 2.0, 60.0),
                writes.record_open(exp, target, 2.0, 60.0),
                *(writes.record_open(exp, d.id, 2.0, 60.0) for d, _ in made[1:20]),
                writes.record_open(other, made[20][0].id, 2.0, 60.0),
                return_exceptions=True,
            )
            assert opened[:2] == [OpenResult.COUNTED, OpenResult.DUPLICATE]
            assert opened[2:21] == [OpenResult.COUNTED] * 19
            assert isinstance(opened[21], ConflictError)  # another experiment's decision
        finally:
            await writes.close()
        counts = store.arm_counts(exp, 3.0, 60.0)
        assert sum(c.sends for c in counts) == 41
        assert sum(c.opens for c in counts) == 20

    try:
        asyncio.run(scenario())
    finally:
        store.close()


def test_sqlite_threads_keep_a_bounded_number_of_write_connections(sqlite_url: str) -> None:
    """More writing threads than kept connections: the rest borrow from the pool, all exact."""
    store = SqlStore(sqlite_url)
    try:
        exp = store.create_experiment(ExperimentSpec("threads", ["A", "B"]), 0.0).id
        n_threads = MAX_HELD_CONNECTIONS + 4

        def work(i: int) -> None:
            for j in range(20):
                decision, _ = store.record_decision(exp, i % 2, 0.5, float(j))
                store.record_open(exp, decision.id, j + 1.0, 3600.0)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(n_threads)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(store._held) == MAX_HELD_CONNECTIONS
        counts = store.arm_counts(exp, 30.0, 3600.0)
        assert sum(c.sends for c in counts) == sum(c.opens for c in counts) == 20 * n_threads
    finally:
        store.close()
    assert store._held == []
