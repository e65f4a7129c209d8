"""Fixtures of the service's HTTP tests: every API test runs on SQLite and on PostgreSQL.

``store`` is parametrized over both databases. Each database is created and
migrated once per session (PostgreSQL: a fresh database on the server named by
``HEADLINER_TEST_POSTGRES_URL``, dropped at the end) and emptied after every
test, so tests do not see each other's experiments or API keys.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient

from headliner.service.app import create_app
from headliner.service.clock import ManualClock
from headliner.service.settings import Settings
from headliner.storage.base import Store

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
SEED = 20240607


def _postgres_server_url() -> str:
    return os.environ.get("HEADLINER_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


def _unreachable(reason: str) -> None:
    message = (
        f"PostgreSQL is not reachable ({reason}). Start a server (e.g. "
        "`pg_ctlcluster 15 main start`) or point HEADLINER_TEST_POSTGRES_URL at one, e.g. "
        f"{DEFAULT_POSTGRES_URL}."
    )
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def service_sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated SQLite file for the session."""
    from headliner.storage.migrate import upgrade

    url = f"sqlite:///{tmp_path_factory.mktemp('service-db') / 'headliner.db'}"
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def service_postgres_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for the session, dropped at the end."""
    from headliner.storage.migrate import upgrade

    server = sa.make_url(_postgres_server_url())
    name = f"headliner_service_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        _unreachable(str(exc.orig).splitlines()[0] if exc.orig else str(exc))
    url = server.set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _empty(url: str) -> None:
    """Delete every row (keeps the schema): the next test starts from nothing."""
    from headliner.storage.schema import metadata

    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            for table in reversed(metadata.sorted_tables):
                conn.execute(table.delete())
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """URL of a migrated, empty database of each backend."""
    url: str = request.getfixturevalue(f"service_{request.param}_url")
    yield url
    _empty(url)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    """An open SQL store on ``database_url``."""
    from headliner.storage.sql import open_store

    opened = open_store(database_url)
    yield opened
    opened.close()


@pytest.fixture
def clock() -> ManualClock:
    """A clock that only moves when the test says so."""
    return ManualClock()


@pytest.fixture(autouse=True)
def _no_developer_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never read the developer's HEADLINER_* variables."""
    for name in list(os.environ):
        if name.startswith("HEADLINER_") and not name.startswith("HEADLINER_TEST_"):
            monkeypatch.delenv(name)


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Test settings: fresh posterior on every request, seeded decisions, no .env."""
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database_url,
        posterior_refresh_seconds=0.0,
        snapshot_interval_seconds=0.0,
        api_key_cache_seconds=0.0,
        seed=SEED,
        log_level="WARNING",
    )


@pytest.fixture
def app(settings: Settings, store: Store, clock: ManualClock) -> FastAPI:
    """The real app on the test store and clock."""
    return create_app(settings, store=store, clock=clock)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    """A TestClient with the app's lifespan running."""
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def new_experiment(client: TestClient) -> Callable[..., dict[str, Any]]:
    """Factory: create an experiment over headlines A, B, C (or as overridden); return its body."""

    def make(**overrides: object) -> dict[str, Any]:
        body: dict[str, object] = {"name": "Spring sale", "headlines": ["A", "B", "C"]}
        body.update(overrides)
        response = client.post("/v1/experiments", json=body)
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    return make
