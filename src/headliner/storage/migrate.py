"""Schema migrations: :func:`upgrade` brings a database to the latest revision.

Alembic is configured in code (no ``alembic.ini`` or working directory
needed); the revisions live in ``headliner/storage/migrations/versions``.
``upgrade`` is safe when several processes start at once (``serve --workers
2``): the whole upgrade runs in one transaction that first takes a lock, an
advisory lock on PostgreSQL and the database's write lock on SQLite
(``BEGIN IMMEDIATE``, waiting out the busy timeout). Whoever comes second finds
the schema at head and does nothing.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from headliner.storage.engine import make_engine, normalize_url, write_engine

__all__ = ["alembic_config", "current_revision", "head_revision", "upgrade"]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Any fixed 64-bit number shared by every Headliner process ("headlin" in ASCII).
ADVISORY_LOCK_KEY = 0x686561646C696E


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration pointing at the packaged migrations.

    Parameters
    ----------
    connection : Connection or None, default=None
        The connection ``env.py`` runs the migrations on; None makes it open
        one from ``sqlalchemy.url`` or ``HEADLINER_DATABASE_URL`` (for the
        ``alembic`` command line).
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision shipped with this version of Headliner."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships revisions
        raise RuntimeError("No migrations found in the package.")
    return head


def current_revision(url: str) -> str | None:
    """The revision the database at ``url`` is at (None if never migrated)."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def upgrade(url: str, revision: str = "head") -> None:
    """Apply every migration up to ``revision`` to the database at ``url``.

    Parameters
    ----------
    url : str
        A SQLite or PostgreSQL URL, as for :class:`~headliner.storage.sql.SqlStore`.
    revision : str, default="head"
        The target revision.
    """
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        # A first start may name a file in a directory that does not exist yet.
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = make_engine(url)
    try:
        # One transaction: DDL is transactional on both databases, so a failed
        # upgrade leaves the schema as it was and the lock is held throughout.
        with write_engine(engine).begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(ADVISORY_LOCK_KEY)))
            command.upgrade(alembic_config(conn), revision)
    finally:
        engine.dispose()
