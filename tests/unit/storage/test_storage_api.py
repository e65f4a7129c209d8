"""The storage package's public surface and URL handling (no database server needed)."""

from __future__ import annotations

import pytest

import headliner.storage as storage
from headliner.core.errors import InvalidParameterError
from headliner.storage.engine import normalize_url
from headliner.storage.sql import SqlStore, open_store


def test_all_is_sorted_and_importable() -> None:
    assert storage.__all__ == sorted(storage.__all__)
    for name in storage.__all__:
        assert getattr(storage, name) is not None


def test_sql_store_is_a_store(sqlite_url: str) -> None:
    store = storage.SqlStore(sqlite_url)
    try:
        assert isinstance(store, storage.Store)
    finally:
        store.close()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u:p@db:5432/h", "postgresql+psycopg://u:p@db:5432/h"),
        ("postgres://u@db/h", "postgresql+psycopg://u@db/h"),
        ("postgresql+psycopg://u@db/h", "postgresql+psycopg://u@db/h"),
        ("sqlite:///headliner.db", "sqlite:///headliner.db"),
        ("sqlite:////var/lib/headliner.db", "sqlite:////var/lib/headliner.db"),
    ],
    ids=["postgresql", "postgres-alias", "psycopg", "sqlite-relative", "sqlite-absolute"],
)
def test_normalize_url(url: str, expected: str) -> None:
    assert normalize_url(url).render_as_string(hide_password=False) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite://", "must name a file"),
        ("sqlite:///:memory:", "must name a file, e.g. sqlite:///headliner.db"),
        ("sqlite:///file:h?mode=memory&uri=true", "must name a file, e.g. sqlite:///headliner.db"),
        ("mysql://u@db/h", "must start with sqlite:///"),
        ("not a url", "must be a valid URL"),
    ],
    ids=["sqlite-no-path", "sqlite-memory", "sqlite-memory-uri", "mysql", "garbage"],
)
def test_normalize_url_refuses(url: str, message: str) -> None:
    with pytest.raises(InvalidParameterError, match=message):
        normalize_url(url)


def test_open_store_refuses_unknown_scheme() -> None:
    with pytest.raises(InvalidParameterError, match="must start with"):
        open_store("redis://localhost")


def test_sql_store_repr_hides_the_password() -> None:
    store = SqlStore("postgresql://user:s3cret@127.0.0.1:1/headliner")  # no connection yet
    try:
        assert "s3cret" not in repr(store)
        assert "user:***@127.0.0.1" in repr(store)
    finally:
        store.close()
