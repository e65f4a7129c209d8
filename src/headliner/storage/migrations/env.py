"""Alembic environment for Headliner (online migrations only).

:func:`headliner.storage.migrate.upgrade` passes an open connection in
``config.attributes["connection"]``; the ``alembic`` command line (with
``-c src/headliner/storage/alembic.ini``) opens one from ``sqlalchemy.url``
or ``HEADLINER_DATABASE_URL`` instead.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy.engine import Connection

from headliner.storage.engine import make_engine, write_engine
from headliner.storage.schema import metadata


def run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things in place; batch mode copies the table.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    if context.is_offline_mode():
        raise RuntimeError("Headliner migrations run online only (no --sql).")
    connection = context.config.attributes.get("connection")
    if connection is not None:
        run_on(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url") or os.environ.get(
        "HEADLINER_DATABASE_URL"
    )
    if not url:
        raise RuntimeError("Set sqlalchemy.url or HEADLINER_DATABASE_URL to run migrations.")
    engine = make_engine(url)
    try:
        with write_engine(engine).connect() as conn:
            run_on(conn)
            conn.commit()
    finally:
        engine.dispose()


main()
