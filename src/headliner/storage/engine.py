"""SQLAlchemy engines set up the way every Headliner process uses them.

SQLite runs in WAL mode with ``synchronous=NORMAL`` (a commit survives a crash
of the process, not necessarily of the machine) and a busy timeout, so that a
writer in a second process waits for the lock instead of failing. Write
transactions start with ``BEGIN IMMEDIATE`` (see :func:`write_engine`): a
deferred transaction that reads and then writes can fail at once with
``SQLITE_BUSY`` when another process committed in between, and no busy timeout
helps there. PostgreSQL goes through psycopg 3 with a bounded pool.

A pooled PostgreSQL connection can die while it sits in the pool: the server
restarted, or ended the backend (``pg_terminate_backend``, an idle timeout).
SQLAlchemy's ``pool_pre_ping`` finds out with a round trip on every checkout,
which on the hot path is one more round trip per decision. Instead:

* on checkout, the connection's socket is polled, a local system call of a
  few microseconds: a server that ends a backend sends an error and closes
  the socket, so an idle connection with anything to read is dead, and the
  pool swaps it for a new one before anyone uses it (a rare asynchronous
  notice would only cost a needless reconnect);
* TCP keepalives (60 s idle, 3 probes 10 s apart) turn a connection that a
  network failure dropped without a word into one whose socket reports the
  error, for the same check to see; connections are also recycled after
  30 minutes;
* anything that still slips through fails one statement, and SQLAlchemy then
  invalidates the whole pool, so the rest reconnect on their next checkout.

While the database is down or restarting, or a SQLite file stays locked past
the busy timeout, the driver's error becomes
:class:`~headliner.core.errors.StoreUnavailableError` (see
:func:`is_unavailable`), raised by every store method alike, so that callers
tell "try again shortly" apart from a bug without knowing SQLAlchemy or the
driver. The broken connection is still discarded as above, and the store
works again, with no restart, once the database is back.
"""

from __future__ import annotations

import select
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from headliner.core.errors import InvalidParameterError, StoreUnavailableError

__all__ = [
    "is_unavailable",
    "make_engine",
    "normalize_url",
    "single_statement_engine",
    "write_engine",
]

SQLITE_BUSY_TIMEOUT_MS = 30_000
# Per process: `serve --workers 2` opens at most 2 × (10 + 10) connections.
POOL_SIZE = 10
MAX_OVERFLOW = 10
POOL_RECYCLE_SECONDS = 1800
# libpq parameters; a URL that sets one of them wins. The connect timeout bounds how
# long a request waits on a server that does not answer at all (a network outage)
# before it fails as unavailable.
POSTGRES_CONNECT_ARGS = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 60,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}
_BEGIN_OPTION = "headliner_sqlite_begin"
# SQLSTATE classes and codes of a server that is unreachable or cannot take more work
# now: connection exception, insufficient resources; admin shutdown, crash shutdown,
# cannot connect now (starting up or shutting down).
_UNAVAILABLE_SQLSTATE_CLASSES = frozenset({"08", "53"})
_UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03"})
# SQLite primary result codes: BUSY, LOCKED, IOERR, FULL, CANTOPEN.
_UNAVAILABLE_SQLITE_CODES = frozenset({5, 6, 10, 13, 14})
_UNAVAILABLE_MESSAGE = "The database is unavailable (down, restarting or busy); retry shortly."


def normalize_url(url: str) -> sa.URL:
    """Parse a database URL, sending bare ``postgresql://`` URLs to psycopg 3.

    Parameters
    ----------
    url : str
        ``sqlite:///path/to/file.db`` or ``postgresql+psycopg://…``.

    Returns
    -------
    sqlalchemy.URL
        The parsed URL with an explicit driver.

    Raises
    ------
    InvalidParameterError
        For an unparsable URL, an unsupported backend (``memory://`` included)
        or an in-memory SQLite database (each pooled connection would see its
        own empty database).
    """
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        raise InvalidParameterError(
            f"The database URL must be a valid URL. Got {url!r} instead."
        ) from None
    backend = parsed.get_backend_name()
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        if parsed.database in (None, "", ":memory:") or parsed.query.get("mode") == "memory":
            raise InvalidParameterError(
                "A SQLite database URL must name a file, e.g. sqlite:///headliner.db "
                f"(an in-memory database is not shared between connections). Got {url!r} instead."
            )
        return parsed
    raise InvalidParameterError(
        "The database URL must start with sqlite:/// or postgresql+psycopg://. "
        f"Got {parsed.render_as_string(hide_password=True)!r} instead."
    )


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Stop pysqlite from issuing its own BEGIN; _sqlite_on_begin does it instead.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        # busy_timeout first: switching to WAL needs a lock another process may hold.
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def socket_has_news(fd: int) -> bool:
    """Whether the socket has input, a hang-up or an error waiting (without blocking)."""
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fd, select.POLLIN)  # POLLHUP and POLLERR are always reported
        return bool(poller.poll(0))
    readable, _, failed = select.select([fd], [], [fd], 0)  # pragma: no cover - Windows
    return bool(readable or failed)  # pragma: no cover


def _postgres_on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    # An idle connection has nothing to read unless the server ended it (see the
    # module docstring). DisconnectionError makes the pool discard it and check
    # out a fresh one.
    if dbapi_connection.closed or socket_has_news(dbapi_connection.fileno()):
        raise sa.exc.DisconnectionError("the server closed this pooled connection")


def is_unavailable(context: sa.engine.ExceptionContext) -> bool:
    """Whether a failed database call means "the database is unavailable", not a bug.

    True for a connection the server ended or lost (SQLAlchemy's disconnect
    detection), any operational error while connecting (refused, timed out,
    starting up, too many clients, connections not allowed), PostgreSQL errors
    of a server that is shutting down or out of resources, and SQLite's busy,
    locked, I/O, disk-full and cannot-open errors. A constraint violation, a
    syntax error or a missing table stays what it is.
    """
    return driver_error_unavailable(
        context.original_exception,
        disconnect=context.is_disconnect,
        connecting=context.connection is None
        and isinstance(context.sqlalchemy_exception, sa.exc.OperationalError),
    )


def driver_error_unavailable(error: BaseException, *, disconnect: bool, connecting: bool) -> bool:
    """:func:`is_unavailable` for a driver's error met outside SQLAlchemy (the async writes).

    ``connecting``: an operational error raised before a connection was had.
    """
    if disconnect or connecting:
        return True
    sqlstate = getattr(error, "sqlstate", None)  # psycopg
    if isinstance(sqlstate, str) and (
        sqlstate[:2] in _UNAVAILABLE_SQLSTATE_CLASSES or sqlstate in _UNAVAILABLE_SQLSTATES
    ):
        return True
    code = getattr(error, "sqlite_errorcode", None)  # sqlite3 (extended code)
    return isinstance(code, int) and code & 0xFF in _UNAVAILABLE_SQLITE_CODES


def unavailable() -> StoreUnavailableError:
    """The error an unavailable database raises (the caller chains the driver's error)."""
    return StoreUnavailableError(_UNAVAILABLE_MESSAGE)


def _unavailable_error(context: sa.engine.ExceptionContext) -> StoreUnavailableError | None:
    # Returned rather than raised: SQLAlchemy still discards the broken connection
    # (and invalidates the pool) before raising it, chained to the driver's error.
    return unavailable() if is_unavailable(context) else None


def _sqlite_on_begin(connection: Connection) -> None:
    mode = connection.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
    connection.exec_driver_sql(f"BEGIN {mode}")


def make_engine(url: str) -> Engine:
    """An engine for ``url``; dispose of it when done.

    SQLite: WAL, ``synchronous=NORMAL``, a 30 s busy timeout, foreign keys on,
    and transactions begun by the engine (deferred for reads). PostgreSQL:
    psycopg 3 with a pool of 10 (+10 overflow) connections, each checked for a
    closed socket as it leaves the pool (no round trip; see the module
    docstring), so that connections a restarted server ended cost no failed
    request once it is back. On both,
    an unavailable database raises
    :class:`~headliner.core.errors.StoreUnavailableError` (:func:`is_unavailable`).

    Parameters
    ----------
    url : str
        See :func:`normalize_url`.

    Returns
    -------
    sqlalchemy.engine.Engine
    """
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = sa.create_engine(parsed, pool_size=POOL_SIZE, max_overflow=MAX_OVERFLOW)
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
    else:
        connect_args = {k: v for k, v in POSTGRES_CONNECT_ARGS.items() if k not in parsed.query}
        engine = sa.create_engine(
            parsed,
            pool_size=POOL_SIZE,
            max_overflow=MAX_OVERFLOW,
            pool_recycle=POOL_RECYCLE_SECONDS,
            connect_args=connect_args,
        )
        event.listen(engine, "checkout", _postgres_on_checkout)
    # A dialect-level hook: it costs each statement a loop over SQLAlchemy's empty
    # lists of execute hooks (well under a microsecond), nothing more until an error.
    event.listen(engine, "handle_error", _unavailable_error)
    return engine


def write_engine(engine: Engine) -> Engine:
    """The same pool, but SQLite transactions take the write lock as they begin.

    Parameters
    ----------
    engine : sqlalchemy.engine.Engine
        An engine from :func:`make_engine`.

    Returns
    -------
    sqlalchemy.engine.Engine
        ``engine`` itself for PostgreSQL (row locks do the work there).
    """
    if engine.dialect.name == "sqlite":
        return engine.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
    return engine


def single_statement_engine(engine: Engine) -> Engine:
    """Like :func:`write_engine`, for writes of one statement each: autocommit on PostgreSQL.

    A single statement is atomic on its own, and on PostgreSQL the BEGIN and
    COMMIT around it are two more round trips: ``record_decision`` took
    810-870 µs that way against 560-585 µs in autocommit
    (``benchmarks/store_write_loop.py``). SQLite gets :func:`write_engine`.
    """
    if engine.dialect.name == "sqlite":
        return write_engine(engine)
    return engine.execution_options(isolation_level="AUTOCOMMIT")
