"""Fixtures of the service's HTTP tests: every API test runs on SQLite and on PostgreSQL.

``database_url`` and ``store`` come from the storage section of
``tests/integration/conftest.py`` (a fresh SQLite file per test; the session's
PostgreSQL database, emptied before each test; skipped with a how-to when no
server is reachable, failed under CI=true).
"""

from __future__ import annotations

import os
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
from headliner.storage.schema import events
from headliner.storage.sql import SqlStore

SEED = 20240607


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
        report_cache_seconds=0.0,
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


StoredEvents = Callable[[], list[tuple[Any, ...]]]


@pytest.fixture
def stored_events(store: Store) -> StoredEvents:
    """Every stored event as (type, machine, user_agent, proxy_address), oldest first.

    Read from the table: the API shows only counts of events.
    """

    def read() -> list[tuple[Any, ...]]:
        assert isinstance(store, SqlStore)
        columns = (events.c.type, events.c.machine, events.c.user_agent, events.c.proxy_address)
        with store.engine.connect() as conn:
            rows = conn.execute(sa.select(*columns).order_by(events.c.at, events.c.id))
            return [tuple(row) for row in rows]

    return read
