"""Fixtures shared by every test layer.

Each section belongs to the layer named in its banner; add new sections rather
than editing another layer's.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

# =====================================================================================
# Storage fixtures (owner: storage)
#
#   sqlite_url        function  a fresh, migrated SQLite file (copied from a template)
#
# The rest of the storage fixtures (PostgreSQL, parametrized URLs and stores) are in
# tests/integration/conftest.py.
# =====================================================================================


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Imported here so that tests which never touch a database do not load the
    # service stack (SQLAlchemy, Alembic) at collection.
    from headliner.storage.migrate import upgrade

    # Migrating once and copying the file is ~100x faster than upgrading per test;
    # upgrade() closes its engine, so the WAL is checkpointed into the one file.
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def sqlite_url(_sqlite_template: Path, tmp_path: Path) -> str:
    """A fresh SQLite file at the latest migration, in the test's tmp_path."""
    path = tmp_path / "headliner.db"
    shutil.copyfile(_sqlite_template, path)
    return f"sqlite:///{path}"


# ============================== end of storage fixtures ==============================
