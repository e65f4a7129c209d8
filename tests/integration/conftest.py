"""Fixtures shared by the integration tests.

Each section belongs to the layer named in its banner; add new sections rather
than editing another layer's.
"""

from __future__ import annotations

import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from headliner.storage import engine as engine_module
from headliner.storage.base import Store
from headliner.storage.engine import normalize_url
from headliner.storage.migrate import upgrade
from headliner.storage.schema import metadata
from headliner.storage.sql import SqlStore

# =====================================================================================
# Storage fixtures (owner: storage)
#
#   sqlite_url        function  a fresh, migrated SQLite file (in tests/conftest.py)
#   postgres_database session   a fresh, migrated PostgreSQL database, dropped at the end
#   postgres_url      function  postgres_database, emptied before the test
#   postgres_admin    session   AUTOCOMMIT engine on the configured server database
#   unmigrated_url    function  parametrized: a fresh database without schema
#   database_url      function  parametrized: sqlite, postgresql
#   store_factory     function  parametrized: sqlite, postgresql; opens stores on one database
#   store             function  parametrized: sqlite, postgresql (closed after)
#
# PostgreSQL comes from HEADLINER_TEST_POSTGRES_URL (default below). Unreachable:
# the tests skip with a how-to, except under CI=true, where they fail.
# =====================================================================================

POSTGRES_URL_ENV = "HEADLINER_TEST_POSTGRES_URL"
DEFAULT_TEST_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def running_in_ci() -> bool:
    """Whether CI is set to a true value: PostgreSQL tests must run, never skip."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def postgres_server_url() -> sa.URL:
    """The server/database the tests connect to for administration."""
    return normalize_url(os.environ.get(POSTGRES_URL_ENV, DEFAULT_TEST_POSTGRES_URL))


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[sa.Engine]:
    """An AUTOCOMMIT engine on the configured database (CREATE/DROP DATABASE need it)."""
    server = postgres_server_url()
    engine = sa.create_engine(
        server,
        isolation_level="AUTOCOMMIT",
        poolclass=NullPool,
        connect_args={"connect_timeout": 5},
    )
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        engine.dispose()
        where = server.render_as_string(hide_password=True)
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        message = (
            f"PostgreSQL not reachable at {where}; start it or set {POSTGRES_URL_ENV} ({reason})"
        )
        if running_in_ci():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    yield engine
    engine.dispose()


def create_postgres_database(admin: sa.Engine, prefix: str = "headliner_test") -> sa.URL:
    """Create an empty database with a random name; returns its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    return admin.url.set(database=name)


def drop_postgres_database(admin: sa.Engine, url: sa.URL) -> None:
    """Drop a database made by :func:`create_postgres_database`, closing its sessions."""
    with admin.connect() as conn:
        conn.execute(
            sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :name AND pid <> pg_backend_pid()"
            ),
            {"name": url.database},
        )
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{url.database}"'))


@pytest.fixture(scope="session")
def postgres_database(postgres_admin: sa.Engine) -> Iterator[str]:
    """A fresh database migrated to head for this session; dropped at the end."""
    url = create_postgres_database(postgres_admin)
    try:
        rendered = url.render_as_string(hide_password=False)
        upgrade(rendered)
        yield rendered
    finally:
        drop_postgres_database(postgres_admin, url)


def empty_database(url: str) -> None:
    """Delete every row, keeping the schema (children first, for foreign keys)."""
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            for table in reversed(metadata.sorted_tables):
                conn.execute(table.delete())
    finally:
        engine.dispose()


@pytest.fixture
def unmigrated_postgres_url(postgres_admin: sa.Engine) -> Iterator[str]:
    """A fresh, empty PostgreSQL database (no schema) for this test only."""
    url = create_postgres_database(postgres_admin, prefix="headliner_test_bare")
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        drop_postgres_database(postgres_admin, url)


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]
)
def unmigrated_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database without any schema, once per SQL backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'bare.db'}"
    url: str = request.getfixturevalue("unmigrated_postgres_url")
    return url


@pytest.fixture
def postgres_url(postgres_database: str) -> str:
    """The session's PostgreSQL database, emptied so the test starts from nothing."""
    empty_database(postgres_database)
    return postgres_database


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]
)
def database_url(request: pytest.FixtureRequest) -> str:
    """A migrated, empty database URL, once per SQL backend."""
    name = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    url: str = request.getfixturevalue(name)
    return url


StoreFactory = Callable[[], Store]


@pytest.fixture
def store_factory(database_url: str) -> Iterator[StoreFactory]:
    """Opens stores on one shared, empty database, once per SQL backend; closed after."""
    opened: list[Store] = []

    def factory() -> Store:
        opened.append(SqlStore(database_url))
        return opened[-1]

    yield factory
    for store in opened:
        store.close()


@pytest.fixture
def store(store_factory: StoreFactory) -> Store:
    """An empty store on each SQL backend: sqlite, postgresql."""
    return store_factory()


# ============================== end of storage fixtures ==============================


# =====================================================================================
# Outage fixtures (owner: storage)
#
#   database_outage   function  parametrized with database_url: a context manager that
#                               makes that database unavailable while it is open
# =====================================================================================

#: SQLite busy timeout of the stores a test opens after requesting ``database_outage``.
OUTAGE_BUSY_TIMEOUT_MS = 50
DatabaseOutage = Callable[[], AbstractContextManager[None]]


@contextmanager
def _postgres_outage(admin: sa.Engine, database: str) -> Iterator[None]:
    """The database refuses new sessions and its open ones are ended, as in a restart."""
    with admin.connect() as conn:
        conn.execute(sa.text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false'))
    try:
        with admin.connect() as conn:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": database},
            )
            for _ in range(500):  # each backend says goodbye on its socket as it exits
                left = conn.execute(
                    sa.text("SELECT count(*) FROM pg_stat_activity WHERE datname = :name"),
                    {"name": database},
                ).scalar_one()
                if left == 0:
                    break
                time.sleep(0.01)
        yield
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true'))


@contextmanager
def _sqlite_outage(path: str) -> Iterator[None]:
    """Another process holds the write lock: writes fail once the busy timeout has passed."""
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        yield
        holder.execute("ROLLBACK")
    finally:
        holder.close()


@pytest.fixture
def database_outage(
    request: pytest.FixtureRequest, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> DatabaseOutage:
    """``with database_outage(): ...`` makes ``database_url`` unavailable inside the block.

    PostgreSQL: connections are refused and every open session is ended (what a
    server restart looks like to the pool), so reads and writes fail alike.
    SQLite: the write lock is held elsewhere, so writes fail after the busy
    timeout, shortened to :data:`OUTAGE_BUSY_TIMEOUT_MS` for stores opened after
    this fixture; reads go on (WAL).
    """
    url = sa.make_url(database_url)
    if url.get_backend_name() == "sqlite":
        monkeypatch.setattr(engine_module, "SQLITE_BUSY_TIMEOUT_MS", OUTAGE_BUSY_TIMEOUT_MS)
        path = url.database or ""
        return lambda: _sqlite_outage(path)
    admin: sa.Engine = request.getfixturevalue("postgres_admin")
    database = url.database or ""
    return lambda: _postgres_outage(admin, database)


# ============================== end of outage fixtures ===============================
