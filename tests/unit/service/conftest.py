"""Fixtures of the service's unit tests: the domain layer on a real SQL store.

``sqlite_url`` (tests/conftest.py) copies a SQLite file migrated once per
session, so a store costs a file copy rather than a migration.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from headliner.storage.sql import SqlStore


@pytest.fixture
def store(sqlite_url: str) -> Iterator[SqlStore]:
    """An empty :class:`SqlStore` on a fresh SQLite file, closed after the test."""
    opened = SqlStore(sqlite_url)
    yield opened
    opened.close()
