"""Migrations: the packaged revisions build exactly schema.metadata, safely, anywhere."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from headliner.core.errors import InvalidParameterError
from headliner.storage.engine import make_engine
from headliner.storage.migrate import alembic_config, current_revision, head_revision, upgrade
from headliner.storage.schema import metadata
from headliner.storage.sql import SqlStore


def table_names(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_matches_schema_metadata(unmigrated_url: str) -> None:
    """Autogenerate finds nothing to change between the migrated database and the metadata."""
    assert current_revision(unmigrated_url) is None
    upgrade(unmigrated_url)
    assert current_revision(unmigrated_url) == head_revision()
    engine = make_engine(unmigrated_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        engine.dispose()
    assert diff == []


def test_upgrade_twice_is_a_no_op(unmigrated_url: str) -> None:
    upgrade(unmigrated_url)
    store = SqlStore(unmigrated_url)
    try:
        store.create_api_key("kept", "a" * 64, 1.0)
    finally:
        store.close()
    upgrade(unmigrated_url)
    store = SqlStore(unmigrated_url)
    try:
        assert [key.name for key in store.list_api_keys()] == ["kept"]
    finally:
        store.close()


def test_downgrade_to_base_and_back(unmigrated_url: str) -> None:
    upgrade(unmigrated_url)
    engine = make_engine(unmigrated_url)
    try:
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "base")
    finally:
        engine.dispose()
    assert table_names(unmigrated_url) <= {"alembic_version"}
    upgrade(unmigrated_url)
    assert table_names(unmigrated_url) >= set(metadata.tables)


def test_store_does_not_create_tables(unmigrated_url: str) -> None:
    store = SqlStore(unmigrated_url)
    try:
        store.ping()  # reachable, but there is no schema until upgrade() runs
        with pytest.raises(sa.exc.DatabaseError):
            store.list_experiments()
    finally:
        store.close()


def test_upgrade_refuses_memory() -> None:
    with pytest.raises(
        InvalidParameterError,
        match=r"must start with sqlite:/// or postgresql\+psycopg://\. Got 'memory://' instead\.",
    ):
        upgrade("memory://")


@pytest.mark.slow
def test_concurrent_upgrades_from_several_processes(unmigrated_url: str, tmp_path: Path) -> None:
    """Workers starting together (`serve --workers 3`) all upgrade; exactly one does the work."""
    script = "import sys; from headliner.storage.migrate import upgrade; upgrade(sys.argv[1])"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, unmigrated_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=120) for p in processes]
    for process, (_, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stderr
    assert current_revision(unmigrated_url) == head_revision()


def test_upgrade_creates_the_sqlite_directory(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'data' / 'nested' / 'headliner.db'}"
    upgrade(url)
    assert current_revision(url) == head_revision()
