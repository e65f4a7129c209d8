"""The SQL :class:`~headliner.storage.base.Store` on SQLAlchemy 2 Core (SQLite, PostgreSQL).

Core rather than the ORM: ``record_decision`` and ``record_open`` are the
service's hot path, one statement each, compiled once and run on the
driver's cursor (:class:`_DriverStatement`). Every write runs in its own
transaction, committed before the method returns; counts only ever change
through INSERTs and conditional single-row UPDATEs (never read, changed in
Python and written back), and ``arm_counts`` aggregates rows with one GROUP BY
per table, as do ``pending_sends`` and ``open_delays``. A report of a wave's
opens locks the wave's row, so that each increase is logged exactly once.
Engines and their SQLite/PostgreSQL settings live in
:mod:`headliner.storage.engine`.

The store does not create tables: run :func:`headliner.storage.migrate.upgrade`
first (the service does at start-up, and so does ``headliner db upgrade``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

import numpy as np
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.sql.compiler import SQLCompiler

from headliner.core.errors import InvalidParameterError
from headliner.storage import _common as common
from headliner.storage._queries import (
    BATCH_INSERT_DECISIONS,
    BATCH_OPEN_DECISIONS,
    DECISION_BY_ID,
    DECISION_BY_KEY,
    DECISION_COUNTS,
    DECISION_INSERT_COLUMNS,
    EVENT_COUNTS,
    INSERT_EVENT,
    LOCK_WAVE,
    LOG_WAVE_OPENS,
    OPEN_DECISION,
    PENDING_WAVE_SENDS,
    RAISE_WAVE_LATE_OPENS,
    RAISE_WAVE_OPENS,
    SENDS_SINCE,
    SET_OUTCOME,
    SET_WAVE_REPORTED_AT,
    WAVE_COUNTS,
    WAVE_OPEN_DELAYS,
    WAVE_PROPENSITIES,
    api_key_record,
    arm_map,
    arm_record,
    decision_propensities,
    decision_record,
    delay_queries,
    estimate_map,
    event_record,
    experiment_is_live,
    experiment_record,
    insert_decision,
    opt_float,
    sends_map,
)
from headliner.storage.base import (
    LIVE_STATUSES,
    ApiKeyRecord,
    ArmCounts,
    ArmRecord,
    DecisionRecord,
    EventCounts,
    EventRecord,
    ExperimentRecord,
    ExperimentSpec,
    ExperimentStatus,
    KeyScope,
    OpenDelays,
    OpenResult,
    PendingSends,
    PropensityGroups,
    Snapshot,
    Store,
    WaveRecord,
)
from headliner.storage.engine import (
    POOL_RECYCLE_SECONDS,
    POOL_SIZE,
    POSTGRES_CONNECT_ARGS,
    driver_error_unavailable,
    make_engine,
    single_statement_engine,
    socket_has_news,
    unavailable,
    write_engine,
)
from headliner.storage.schema import (
    api_keys,
    arms,
    decisions,
    experiments,
    snapshots,
    wave_arms,
    waves,
)

__all__ = ["AsyncHotWrites", "SqlStore", "open_store"]

_Item = TypeVar("_Item")
_Result = TypeVar("_Result")


def open_store(url: str) -> Store:
    """The store for ``url``: a :class:`SqlStore`.

    Parameters
    ----------
    url : str
        ``sqlite:///path/to/file.db`` or
        ``postgresql+psycopg://user:password@host:5432/database``.

    Returns
    -------
    Store
        An open store; call ``close()`` when done.

    Raises
    ------
    InvalidParameterError
        For an unsupported or malformed URL (``memory://`` included: there is
        no in-memory store; use a file such as ``sqlite:///headliner.db``).
    """
    return SqlStore(url)


#: SQLite connections kept open by threads for the hot writes, at most (of POOL_SIZE).
MAX_HELD_CONNECTIONS = 4

_EXPERIMENT_COLUMNS = [c for c in experiments.c if c.name != "seq"]


def decision_parameters(record: DecisionRecord) -> dict[str, Any]:
    """The parameters of the decision's INSERT."""
    return {f"p_{name}": getattr(record, name) for name in DECISION_INSERT_COLUMNS}


class _DriverStatement:
    """A hot statement compiled once for the engine's dialect, run on the driver's cursor.

    SQLAlchemy's execute path (execution context, events, result wrapping,
    the BEGIN sent through it again) cost more Python than SQLite takes to
    run the statement: ``record_decision`` took 112 µs through it against
    47 µs on the cursor. The SQL is exactly what SQLAlchemy renders for
    the dialect, bind casts included. Values go to the driver as they are,
    so they must already be of the driver's types (str, int, float, bool,
    None): no bind processor runs.
    """

    def __init__(self, statement: sa.ClauseElement, dialect: sa.Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)  # a statement, not DDL
        self.sql = compiled.string
        # qmark (SQLite) takes a tuple in order; pyformat (psycopg) a dict.
        self._order = tuple(compiled.positiontup or ()) if compiled.positional else None
        # Literals of the statement that SQLAlchemy binds as parameters (CASE ... THEN 1).
        self._fixed = {
            name: bind.effective_value
            for bind, name in compiled.bind_names.items()
            if not bind.required
        }

    def parameters(self, values: Mapping[str, Any]) -> Any:
        """The driver's parameters for ``values`` (keyed by bind parameter name)."""
        merged = {**self._fixed, **values} if self._fixed else values
        if self._order is None:
            return merged
        return tuple(map(merged.__getitem__, self._order))


class SqlStore:
    """A :class:`~headliner.storage.base.Store` in SQLite or PostgreSQL.

    Parameters
    ----------
    url : str
        ``sqlite:///path/to/file.db`` or ``postgresql+psycopg://…`` (a bare
        ``postgresql://`` uses psycopg 3 too). The schema must already be at
        the latest migration (:func:`headliner.storage.migrate.upgrade`).
    """

    def __init__(self, url: str) -> None:
        self._engine = make_engine(url)
        self._writer = write_engine(self._engine)
        # The hot writes (a decision, an open, an outcome) are one statement
        # each; what follows one that changed nothing only reads, to say why.
        self._single = single_statement_engine(self._engine)
        # Both dialects' insert() has ON CONFLICT DO NOTHING; the generic one has not.
        self._insert = sqlite.insert if self._engine.dialect.name == "sqlite" else pg.insert
        self._insert_decision = insert_decision(self._insert)
        dialect = self._engine.dialect
        self._sqlite = dialect.name == "sqlite"
        self._driver_insert_decision = _DriverStatement(self._insert_decision, dialect)
        self._driver_open_decision = _DriverStatement(OPEN_DECISION, dialect)
        self._driver_set_outcome = _DriverStatement(SET_OUTCOME, dialect)
        self._local = threading.local()  # SQLite: each thread's hot-write connection
        self._held: list[Connection] = []
        self._held_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SqlStore({self._engine.url.render_as_string(hide_password=True)!r})"

    @property
    def supports_async_writes(self) -> bool:
        """Whether :class:`AsyncHotWrites` can run the hot writes (PostgreSQL)."""
        return not self._sqlite

    @property
    def engine(self) -> Engine:
        """The underlying engine (for migrations and tests)."""
        return self._engine

    # --- helpers --------------------------------------------------------------
    @contextmanager
    def _hot_connection(self) -> Iterator[Connection]:
        """The connection of a hot write: on SQLite this thread's own, kept open.

        A pool checkout and return cost about as much Python as the write's
        driver calls on SQLite, and a file has no server that could drop the
        connection, so each thread keeps one (``close`` closes them), up to
        :data:`MAX_HELD_CONNECTIONS`; other threads check one out each time.
        PostgreSQL checks one out of the pool each time, where the checkout
        check replaces a connection the server ended.
        """
        held: Connection | None = getattr(self._local, "conn", None)
        if held is not None and not (held.closed or held.invalidated):
            yield held
            return
        held = None
        if self._sqlite:
            with self._held_lock:
                # Bounded: the service's event loop is one thread, but a thread pool
                # has dozens, and what they kept the pool could not lend.
                self._held = [c for c in self._held if not (c.closed or c.invalidated)]
                if len(self._held) < MAX_HELD_CONNECTIONS:
                    held = self._single.connect()
                    self._held.append(held)
            if held is not None:
                self._local.conn = held
                yield held
                return
        with self._single.connect() as pooled:
            yield pooled

    def _write_one(
        self, conn: Connection, statement: _DriverStatement, values: Mapping[str, Any]
    ) -> tuple[list[Any], int]:
        """Run one hot write on ``conn``'s driver connection, committed before it returns.

        Returns the rows of its RETURNING clause and its rowcount. SQLite: in
        a ``BEGIN IMMEDIATE`` transaction of its own, as :func:`write_engine`
        would begin it; PostgreSQL: ``conn`` is in autocommit
        (:func:`single_statement_engine`), where one statement is a
        transaction. A driver error goes through SQLAlchemy's own handling,
        as for any statement: rolled back, raised as SQLAlchemy's exception
        class, and on a lost connection the pool invalidated.
        """
        driver = conn.connection.dbapi_connection
        assert driver is not None  # a connection checked out of the pool
        parameters = statement.parameters(values)
        cursor = driver.cursor()
        try:
            if self._sqlite:
                cursor.execute("BEGIN IMMEDIATE")
            cursor.execute(statement.sql, parameters)
            # fetchall, not fetchone: SQLite finishes the statement before COMMIT.
            rows = list(cursor.fetchall()) if cursor.description is not None else []
            count = cursor.rowcount
            if self._sqlite:
                driver.commit()
        except Exception as exc:
            # Rolls back, wraps, invalidates on a disconnect (the private
            # method is what every statement SQLAlchemy runs goes through).
            conn._handle_dbapi_exception(exc, statement.sql, parameters, cursor, None)
        finally:
            cursor.close()
        return rows, count

    @staticmethod
    def _lock_experiment(conn: Connection, experiment_id: str) -> None:
        """Serialize arm changes of one experiment; NotFoundError if it does not exist.

        PostgreSQL: ``FOR NO KEY UPDATE`` on the experiment row, which does not
        block the ``FOR KEY SHARE`` locks of foreign-key checks. SQLite: the
        transaction already holds the database's write lock (BEGIN IMMEDIATE).
        """
        query = sa.select(experiments.c.id).where(experiments.c.id == experiment_id)
        if conn.execute(query.with_for_update(key_share=True)).first() is None:
            raise common.experiment_not_found(experiment_id)

    @staticmethod
    def _require_experiment(conn: Connection, experiment_id: str) -> None:
        query = sa.select(experiments.c.id).where(experiments.c.id == experiment_id)
        if conn.execute(query).first() is None:
            raise common.experiment_not_found(experiment_id)

    @classmethod
    def _require_arms(cls, conn: Connection, experiment_id: str, positions: set[int]) -> None:
        query = sa.select(arms.c.arm).where(arms.c.experiment_id == experiment_id)
        known = set(conn.execute(query).scalars())
        if not known:
            cls._require_experiment(conn, experiment_id)
        missing = sorted(positions - known)
        if missing:
            raise common.arm_not_found(experiment_id, missing[0])

    @staticmethod
    def _require_live(conn: Connection, experiment_id: str, what: str) -> None:
        """NotFoundError or ConflictError (naming the status) unless the experiment is live."""
        query = sa.select(experiments.c.status).where(experiments.c.id == experiment_id)
        status = conn.execute(query).scalar()
        if status is None:
            raise common.experiment_not_found(experiment_id)
        if ExperimentStatus(status) not in LIVE_STATUSES:
            raise common.not_live(experiment_id, ExperimentStatus(status), what)

    @staticmethod
    def _decision_owner(conn: Connection, experiment_id: str, decision_id: str) -> Row[Any]:
        """The decision's row after a conditional UPDATE matched nothing."""
        row = conn.execute(DECISION_BY_ID, {"p_decision_id": decision_id}).first()
        if row is None:
            raise common.decision_not_found(decision_id)
        if row.experiment_id != experiment_id:
            raise common.foreign_decision(experiment_id, decision_id)
        return row

    @staticmethod
    def _wave(conn: Connection, experiment_id: str, wave_id: str) -> WaveRecord:
        query = (
            sa.select(waves.c.created_at, waves.c.reported_at, wave_arms)
            .outerjoin(wave_arms, wave_arms.c.wave_id == waves.c.id)
            .where(waves.c.id == wave_id, waves.c.experiment_id == experiment_id)
            .order_by(wave_arms.c.arm)
        )
        rows = conn.execute(query).all()
        if not rows:
            raise common.wave_not_found(experiment_id, wave_id)
        return WaveRecord(
            id=wave_id,
            experiment_id=experiment_id,
            created_at=float(rows[0].created_at),
            # An empty wave has one row of NULLs from the outer join.
            arm_to_sends={r.arm: r.sends for r in rows if r.arm is not None},
            arm_to_opens={r.arm: r.opens for r in rows if r.arm is not None},
            arm_to_late_opens={r.arm: r.late_opens for r in rows if r.arm is not None},
            reported_at=opt_float(rows[0].reported_at),
        )

    # --- experiments and arms -------------------------------------------------
    def create_experiment(
        self,
        spec: ExperimentSpec,
        now: float,
        *,
        check: Callable[[ExperimentRecord, list[ArmRecord]], object] | None = None,
    ) -> ExperimentRecord:
        """Store a new RUNNING experiment and its headlines as arms 0..K-1.

        ``check(record, arms)`` runs before the commit; if it raises, nothing is stored.
        """
        record = common.new_experiment(spec, now)
        values = {c.name: getattr(record, c.name) for c in _EXPERIMENT_COLUMNS}
        values["status"] = record.status.value
        arm_rows = [
            {"experiment_id": record.id, "arm": i, "headline": h, "created_at": record.created_at}
            for i, h in enumerate(spec.headlines)
        ]
        with self._writer.begin() as conn:
            conn.execute(experiments.insert(), values)
            if arm_rows:
                conn.execute(arms.insert(), arm_rows)
            if check is not None:
                check(
                    record,
                    [ArmRecord(record.id, i, h, now, None) for i, h in enumerate(spec.headlines)],
                )
        return record

    def get_experiment(self, experiment_id: str) -> ExperimentRecord:
        """The experiment, or NotFoundError."""
        query = sa.select(*_EXPERIMENT_COLUMNS).where(experiments.c.id == experiment_id)
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            raise common.experiment_not_found(experiment_id)
        return experiment_record(row)

    def list_experiments(self, *, include_archived: bool = False) -> list[ExperimentRecord]:
        """Experiments, newest first (equal ``created_at`` by creation order, newest first)."""
        query = sa.select(*_EXPERIMENT_COLUMNS).order_by(
            experiments.c.created_at.desc(), experiments.c.seq.desc()
        )
        if not include_archived:
            query = query.where(experiments.c.status != ExperimentStatus.ARCHIVED.value)
        with self._engine.connect() as conn:
            return [experiment_record(row) for row in conn.execute(query)]

    def set_status(
        self,
        experiment_id: str,
        status: ExperimentStatus,
        now: float,
        *,
        allowed_from: frozenset[ExperimentStatus],
        winner_arm: int | None = None,
        winner_reason: str | None = None,
    ) -> ExperimentRecord:
        """Move to ``status`` atomically if the current status is in ``allowed_from``."""
        values: dict[str, Any] = {"status": status.value}
        if winner_arm is not None:
            values["winner_arm"] = winner_arm
        if winner_reason is not None:
            values["winner_reason"] = winner_reason
        if status is ExperimentStatus.COMPLETED:
            values["completed_at"] = now
        if winner_arm is not None:
            # Confirming the winner already named keeps the time it was first named.
            values["winner_declared_at"] = sa.case(
                (
                    sa.and_(
                        experiments.c.winner_arm == winner_arm,
                        experiments.c.winner_declared_at.is_not(None),
                    ),
                    experiments.c.winner_declared_at,
                ),
                else_=sa.literal(float(now), sa.Double()),
            )
        # One conditional UPDATE: two concurrent moves cannot both pass the check.
        update = (
            experiments.update()
            .where(
                experiments.c.id == experiment_id,
                experiments.c.status.in_(sorted(s.value for s in allowed_from)),
            )
            .values(values)
            .returning(*_EXPERIMENT_COLUMNS)
        )
        with self._writer.begin() as conn:
            if winner_arm is not None:
                self._require_arms(conn, experiment_id, {winner_arm})
            row = conn.execute(update).first()
            if row is not None:
                return experiment_record(row)
            query = sa.select(experiments.c.status).where(experiments.c.id == experiment_id)
            current = conn.execute(query).scalar()
        if current is None:
            raise common.experiment_not_found(experiment_id)
        raise common.status_conflict(experiment_id, ExperimentStatus(current), status)

    def list_arms(self, experiment_id: str) -> list[ArmRecord]:
        """All arms, retired ones included, by position."""
        query = sa.select(arms).where(arms.c.experiment_id == experiment_id).order_by(arms.c.arm)
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
            if not rows:
                self._require_experiment(conn, experiment_id)
        return [arm_record(row) for row in rows]

    def add_arm(self, experiment_id: str, headline: str, now: float) -> ArmRecord:
        """Append a headline as the next position; ConflictError if the headline exists."""
        with self._writer.begin() as conn:
            self._lock_experiment(conn, experiment_id)
            query = sa.select(arms.c.arm, arms.c.headline).where(
                arms.c.experiment_id == experiment_id
            )
            rows = conn.execute(query).all()
            if any(row.headline == headline for row in rows):
                raise common.headline_exists(experiment_id, headline)
            position = max((row.arm for row in rows), default=-1) + 1
            record = ArmRecord(experiment_id, position, headline, float(now), None)
            conn.execute(
                arms.insert().values(
                    experiment_id=experiment_id,
                    arm=position,
                    headline=headline,
                    created_at=record.created_at,
                )
            )
        return record

    def retire_arm(self, experiment_id: str, arm: int, now: float) -> ArmRecord:
        """Stop sending an arm; retiring a retired arm returns it unchanged."""
        with self._writer.begin() as conn:
            # The lock makes "not the last active arm" hold when the UPDATE lands.
            self._lock_experiment(conn, experiment_id)
            query = sa.select(arms).where(arms.c.experiment_id == experiment_id)
            by_position = {row.arm: row for row in conn.execute(query)}
            if arm not in by_position:
                raise common.arm_not_found(experiment_id, arm)
            record = arm_record(by_position[arm])
            if not record.active:
                return record
            if sum(row.retired_at is None for row in by_position.values()) <= 1:
                raise common.last_active_arm(experiment_id, arm)
            conn.execute(
                arms.update()
                .where(arms.c.experiment_id == experiment_id, arms.c.arm == arm)
                .values(retired_at=now)
            )
        return ArmRecord(record.experiment_id, arm, record.headline, record.created_at, float(now))

    # --- per-send decisions ---------------------------------------------------
    def record_decision(
        self,
        experiment_id: str,
        arm: int,
        propensity: float,
        now: float,
        *,
        recipient_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> tuple[DecisionRecord, bool]:
        """Log a decision; with a known ``idempotency_key`` return the stored one."""
        record = common.new_decision(
            experiment_id, arm, propensity, now, recipient_id, idempotency_key
        )
        params = decision_parameters(record)
        with self._hot_connection() as conn:
            inserted, _ = self._write_one(conn, self._driver_insert_decision, params)
        if inserted:
            return record, True
        return self._decision_not_inserted(record), False

    def _decision_not_inserted(self, record: DecisionRecord) -> DecisionRecord:
        """The stored decision of a replayed key, or the error that kept ``record`` out.

        Rows are never deleted, so reading why after the write is as good as inside it.
        """
        with self._engine.connect() as conn:
            if record.idempotency_key is not None:
                row = conn.execute(DECISION_BY_KEY, decision_parameters(record)).first()
                if row is not None:
                    return decision_record(row)
            self._require_live(conn, record.experiment_id, "decisions")
            self._require_arms(conn, record.experiment_id, {record.arm})
        raise AssertionError("unreachable: the insert matched an existing arm")  # pragma: no cover

    def find_decision(self, experiment_id: str, idempotency_key: str) -> DecisionRecord | None:
        """The experiment's decision logged under ``idempotency_key``, or None."""
        params = {"p_experiment_id": experiment_id, "p_idempotency_key": idempotency_key}
        with self._engine.connect() as conn:
            row = conn.execute(DECISION_BY_KEY, params).first()
            if row is None:
                self._require_experiment(conn, experiment_id)
        return None if row is None else decision_record(row)

    def list_decisions(
        self, experiment_id: str, *, after: str | None = None, limit: int = 100
    ) -> list[DecisionRecord]:
        """The experiment's decisions, oldest first (equal times by id), after ``after``.

        One query per arm, each a range scan of the counts index (which leads
        with experiment and arm, then ``created_at``), merged here: every page
        costs about ``limit`` rows per arm, however far into the log it is.
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidParameterError(
                f"limit must be a positive integer. Got {limit!r} instead.", parameter="limit"
            )
        d = decisions.c
        with self._engine.connect() as conn:
            query = sa.select(arms.c.arm).where(arms.c.experiment_id == experiment_id)
            positions = list(conn.execute(query).scalars())
            if not positions:
                self._require_experiment(conn, experiment_id)
            since = None
            if after is not None:
                cursor = sa.select(d.created_at).where(
                    d.id == after, d.experiment_id == experiment_id
                )
                since = conn.execute(cursor).scalar()
                if since is None:
                    raise common.unknown_cursor(experiment_id, after)
            rows: list[Row[Any]] = []
            for arm in positions:
                page = sa.select(decisions).where(d.experiment_id == experiment_id, d.arm == arm)
                if since is not None:
                    page = page.where(
                        d.created_at >= since, sa.or_(d.created_at > since, d.id > after)
                    )
                rows.extend(conn.execute(page.order_by(d.created_at, d.id).limit(limit)))
        rows.sort(key=lambda row: (row.created_at, row.id))
        return [decision_record(row) for row in rows[:limit]]

    def get_decision(self, decision_id: str) -> DecisionRecord:
        """The decision, or NotFoundError."""
        with self._engine.connect() as conn:
            row = conn.execute(DECISION_BY_ID, {"p_decision_id": decision_id}).first()
        if row is None:
            raise common.decision_not_found(decision_id)
        return decision_record(row)

    def record_open(
        self, experiment_id: str, decision_id: str, now: float, window_seconds: float
    ) -> OpenResult:
        """Record an open for a decision, idempotently."""
        params = self.open_parameters(experiment_id, decision_id, now, window_seconds)
        with self._hot_connection() as conn:
            rows, _ = self._write_one(conn, self._driver_open_decision, params)
        return self._open_result(rows, experiment_id, decision_id)

    def _open_result(self, rows: list[Any], experiment_id: str, decision_id: str) -> OpenResult:
        """What the open's UPDATE returned means; NotFoundError if it matched no decision."""
        if rows:
            return OpenResult.LATE if rows[0][0] else OpenResult.COUNTED
        with self._engine.connect() as conn:
            self._decision_owner(conn, experiment_id, decision_id)
        return OpenResult.DUPLICATE

    @staticmethod
    def open_parameters(
        experiment_id: str, decision_id: str, now: float, window_seconds: float
    ) -> dict[str, Any]:
        """The parameters of the open's UPDATE."""
        return {
            "p_decision_id": decision_id,
            "p_experiment_id": experiment_id,
            "p_cutoff": now - window_seconds,
            "p_now": float(now),
        }

    def record_outcome(self, experiment_id: str, decision_id: str, reward: int, now: float) -> bool:
        """Set an explicit 0/1 outcome; False if the same one was already known."""
        params = {
            "p_decision_id": decision_id,
            "p_experiment_id": experiment_id,
            "p_reward": reward,
        }
        with self._hot_connection() as conn:
            _, count = self._write_one(conn, self._driver_set_outcome, params)
        if count == 1:
            return True
        with self._engine.connect() as conn:
            row = self._decision_owner(conn, experiment_id, decision_id)
        # A reported open (counted or late) is an outcome of 1 already.
        stored = row.outcome if row.outcome is not None else 1
        if stored != reward:
            raise common.outcome_conflict(decision_id, stored, reward)
        return False

    # --- events ---------------------------------------------------------------
    def record_event(
        self,
        experiment_id: str,
        decision_id: str,
        event_type: str,
        now: float,
        *,
        machine: bool = False,
        user_agent: str | None = None,
        proxy_address: str | None = None,
    ) -> EventRecord:
        """Store an event of a decision's send, with the decision's arm (one INSERT).

        The INSERT reads the decision's row, so an unknown or foreign decision
        stores nothing; then the row is read again only to say which it was.
        """
        params = {
            "p_id": common.new_id(),
            "p_decision_id": decision_id,
            "p_experiment_id": experiment_id,
            "p_type": event_type,
            "p_machine": bool(machine),
            "p_at": float(now),
            "p_user_agent": user_agent,
            "p_proxy_address": proxy_address,
        }
        with self._writer.begin() as conn:
            row = conn.execute(INSERT_EVENT, params).first()
        if row is not None:
            return event_record(row)
        with self._engine.connect() as conn:
            self._decision_owner(conn, experiment_id, decision_id)
        raise AssertionError("unreachable: the decision is the experiment's")  # pragma: no cover

    def event_counts(self, experiment_id: str) -> list[EventCounts]:
        """The stored events per arm and type, grouped in the database."""
        with self._engine.connect() as conn:
            rows = conn.execute(EVENT_COUNTS, {"p_experiment_id": experiment_id}).all()
            if not rows:
                self._require_experiment(conn, experiment_id)
        return [
            EventCounts(
                arm=row.arm, type=row.type, events=int(row.events), machine=int(row.machine)
            )
            for row in rows
        ]

    # --- waves ----------------------------------------------------------------
    def record_wave(
        self, experiment_id: str, arm_to_sends: Mapping[int, int], now: float
    ) -> WaveRecord:
        """Store a wave's sends per arm as pending."""
        wave = common.new_wave(experiment_id, arm_to_sends, now)
        rows = [
            {"wave_id": wave.id, "arm": arm, "sends": n, "opens": 0, "late_opens": 0}
            for arm, n in wave.arm_to_sends.items()
        ]
        # The status check is part of the INSERT, as for decisions.
        insert = (
            waves.insert()
            .from_select(
                ["id", "experiment_id", "created_at"],
                sa.select(
                    sa.literal(wave.id, waves.c.id.type),
                    sa.literal(experiment_id, waves.c.experiment_id.type),
                    sa.literal(wave.created_at, waves.c.created_at.type),
                ).where(experiment_is_live(sa.literal(experiment_id, experiments.c.id.type))),
            )
            .returning(waves.c.id)
        )
        with self._writer.begin() as conn:
            self._require_arms(conn, experiment_id, set(wave.arm_to_sends))
            if conn.execute(insert).first() is None:
                self._require_live(conn, experiment_id, "allocations")
                raise AssertionError("unreachable: the experiment is live")  # pragma: no cover
            if rows:
                conn.execute(wave_arms.insert(), rows)
        return wave

    def get_wave(self, experiment_id: str, wave_id: str) -> WaveRecord:
        """The wave, or NotFoundError."""
        with self._engine.connect() as conn:
            return self._wave(conn, experiment_id, wave_id)

    def record_wave_opens(
        self,
        experiment_id: str,
        wave_id: str,
        arm_to_total_opens: Mapping[int, int],
        now: float,
        window_seconds: float,
    ) -> WaveRecord:
        """Raise each arm's running total of opens for the wave (idempotent).

        The wave's row is locked first (``FOR NO KEY UPDATE`` on PostgreSQL;
        on SQLite the write transaction holds the database's lock), so one
        report of a wave runs at a time and what it reads next is current:
        each arm's increase is logged, computed from its row by the INSERT
        itself, before the conditional UPDATE raises the total. A total below
        the stored one is refused under the same lock, before anything is written.
        """
        key = {"p_experiment_id": experiment_id, "p_wave_id": wave_id, "p_now": float(now)}
        with self._writer.begin() as conn:
            if conn.execute(LOCK_WAVE, key).first() is None:
                raise common.wave_not_found(experiment_id, wave_id)
            before = self._wave(conn, experiment_id, wave_id)
            common.check_wave_totals(wave_id, before.arm_to_sends, arm_to_total_opens)
            stored = {
                arm: before.arm_to_opens[arm] + before.arm_to_late_opens[arm]
                for arm in before.arm_to_sends
            }
            lowered = sorted(a for a, t in arm_to_total_opens.items() if t < stored.get(a, 0))
            if lowered:
                arm = lowered[0]
                query = sa.select(arms.c.headline).where(
                    arms.c.experiment_id == experiment_id, arms.c.arm == arm
                )
                headline = conn.execute(query).scalar()
                raise common.wave_total_lowered(
                    wave_id, arm, headline, arm_to_total_opens[arm], stored[arm]
                )
            params = [
                {**key, "p_arm": int(arm), "p_total": int(total)}
                for arm, total in sorted(arm_to_total_opens.items())
                if total > stored.get(arm, 0)
            ]
            in_window = before.created_at >= now - window_seconds
            if params and in_window:
                conn.execute(LOG_WAVE_OPENS, params)
                conn.execute(RAISE_WAVE_OPENS, params)
            elif params:
                conn.execute(RAISE_WAVE_LATE_OPENS, params)
            if in_window:
                conn.execute(SET_WAVE_REPORTED_AT, key)
            return self._wave(conn, experiment_id, wave_id)

    # --- aggregation ----------------------------------------------------------
    def arm_counts(self, experiment_id: str, now: float, window_seconds: float) -> list[ArmCounts]:
        """Counts per arm (every arm, by position), aggregated in the database."""
        params = {"p_experiment_id": experiment_id, "p_cutoff": now - window_seconds}
        # Arms last: every arm a counted row refers to existed before that row
        # (the insert checked it) and arms are never deleted, so none is missed.
        arm_query = sa.select(arms.c.arm).where(arms.c.experiment_id == experiment_id)
        n_counts = len(DECISION_COUNTS.selected_columns) - 1  # every column after arm
        totals: dict[int, list[int]] = {}
        with self._engine.connect() as conn:
            for query in (DECISION_COUNTS, WAVE_COUNTS):
                for row in conn.execute(query, params):
                    acc = totals.setdefault(row.arm, [0] * n_counts)
                    for i, value in enumerate(row[1:]):
                        acc[i] += int(value or 0)
            positions = sorted(conn.execute(arm_query).scalars())
            if not positions:
                self._require_experiment(conn, experiment_id)
        # The queries' columns are in ArmCounts' field order after arm.
        return [ArmCounts(arm, *totals.get(arm, [0] * n_counts)) for arm in positions]

    def pending_sends(
        self,
        experiment_id: str,
        now: float,
        window_seconds: float,
        age_edges: Sequence[float],
    ) -> PendingSends:
        """The sends inside their window with neither an open nor an outcome, in groups.

        Two queries, each grouped in the database: decisions by arm and age
        bin (see :meth:`~headliner.storage.base.Store.pending_sends`), waves
        by wave and arm.
        """
        edges = common.age_edges(age_edges, window_seconds)
        params = {
            "p_experiment_id": experiment_id,
            "p_now": float(now),
            "p_cutoff": now - window_seconds,
        }
        with self._engine.connect() as conn:
            decided = conn.execute(delay_queries(edges).pending, params).all()
            sent = conn.execute(PENDING_WAVE_SENDS, params).all()
            if not decided and not sent:
                self._require_experiment(conn, experiment_id)
        rows = [*decided, *sent]
        return PendingSends(
            arm=np.array([row.arm for row in rows], dtype=np.int64),
            # Not below 0: a send stamped after `now` (another process's clock) is just sent.
            age=np.maximum(np.array([row.age for row in rows], dtype=np.float64), 0.0),
            count=np.array([row.count for row in rows], dtype=np.float64),
        )

    def open_delays(
        self,
        experiment_id: str,
        now: float,
        window_seconds: float,
        age_edges: Sequence[float],
    ) -> OpenDelays:
        """The delays of counted opens and the ages they could be seen by, in groups.

        Two queries: decisions' opens grouped by delay bin and observable bin
        in the database, and the waves' logged increases one row each.
        """
        edges = common.age_edges(age_edges, window_seconds)
        params = {
            "p_experiment_id": experiment_id,
            "p_now": float(now),
            "p_cutoff": now - window_seconds,
            "p_window": edges[-1],
        }
        with self._engine.connect() as conn:
            decided = conn.execute(delay_queries(edges).delays, params).all()
            reported = conn.execute(WAVE_OPEN_DELAYS, params).all()
            if not decided and not reported:
                self._require_experiment(conn, experiment_id)
        grid = np.array(edges, dtype=np.float64)
        delay_bins = np.array([row.delay_bin for row in decided], dtype=np.int64)
        age_bins = np.array([row.age_bin for row in decided], dtype=np.int64)
        # Not below 0, as in pending_sends (a report stamped before its wave's creation).
        wave_delay = np.maximum(np.array([r.delay for r in reported], dtype=np.float64), 0.0)
        wave_seen = np.maximum(np.array([r.observable for r in reported], dtype=np.float64), 0.0)
        return OpenDelays(
            # Upper edge of the delay's bin; lower edge of the age's (edges[-1]: the window).
            delay=np.concatenate([grid[delay_bins + 1], wave_delay]),
            observable=np.concatenate([grid[age_bins], wave_seen]),
            count=np.array([row.count for row in [*decided, *reported]], dtype=np.float64),
        )

    def propensity_groups(self, experiment_id: str) -> PropensityGroups:
        """Every send so far, grouped by headline, propensity and active headlines.

        Two queries: the decisions grouped in the database by arm, propensity
        and epoch (the spans between additions and retirements of headlines,
        a balanced CASE over their times), and one row per (wave, arm) with
        the wave's total and headline count.
        """
        params = {"p_experiment_id": experiment_id}
        with self._engine.connect() as conn:
            query = sa.select(arms).where(arms.c.experiment_id == experiment_id)
            arm_rows = [arm_record(row) for row in conn.execute(query)]
            if not arm_rows:
                self._require_experiment(conn, experiment_id)
            first = min(a.created_at for a in arm_rows)
            changes = sorted(
                {a.created_at for a in arm_rows if a.created_at > first}
                | {a.retired_at for a in arm_rows if a.retired_at is not None}
            )
            decided = conn.execute(decision_propensities(changes), params).all()
            waved = conn.execute(WAVE_PROPENSITIES, params).all()

        def active_at(when: float) -> int:
            return sum(
                a.created_at <= when and (a.retired_at is None or a.retired_at > when)
                for a in arm_rows
            )

        # Epoch e starts at changes[e - 1]; epoch 0 at the experiment's creation.
        headcount = [active_at(when) for when in [first, *changes]]
        n_decided = len(decided)
        return PropensityGroups(
            arm=np.array([r.arm for r in decided] + [r.arm for r in waved], dtype=np.int64),
            propensity=np.array(
                [float(r.propensity) for r in decided] + [r.sends / r.total for r in waved],
                dtype=np.float64,
            ),
            n_arms=np.array(
                [headcount[r.epoch] for r in decided] + [r.n_arms for r in waved], dtype=np.int64
            ),
            sends=np.array([r.sends for r in decided] + [r.sends for r in waved], dtype=np.int64),
            opens=np.array(
                [int(r.opens or 0) for r in decided] + [r.opens for r in waved], dtype=np.int64
            ),
            wave=np.arange(n_decided + len(waved)) >= n_decided,
        )

    def sends_since(self, experiment_id: str, since: float) -> int:
        """Sends (decisions and waves' sends) made at ``since`` or later."""
        params = {"p_experiment_id": experiment_id, "p_cutoff": float(since)}
        with self._engine.connect() as conn:
            self._require_experiment(conn, experiment_id)
            return int(conn.execute(SENDS_SINCE, params).scalar() or 0)

    def record_snapshot(self, snapshot: Snapshot) -> None:
        """Append a snapshot."""
        estimate = snapshot.arm_to_estimate
        sends = snapshot.arm_to_sends
        values = {
            "experiment_id": snapshot.experiment_id,
            "at": snapshot.at,
            "arm_to_p_best": {str(k): float(v) for k, v in snapshot.arm_to_p_best.items()},
            "arm_to_allocation": {str(k): float(v) for k, v in snapshot.arm_to_allocation.items()},
            "arm_to_estimate": None
            if estimate is None
            else {str(k): [float(x) for x in v] for k, v in estimate.items()},
            "arm_to_sends": None if sends is None else {str(k): int(v) for k, v in sends.items()},
            "burn_in": snapshot.burn_in,
        }
        with self._writer.begin() as conn:
            self._require_experiment(conn, snapshot.experiment_id)
            conn.execute(snapshots.insert(), values)

    def list_snapshots(self, experiment_id: str, *, limit: int = 1000) -> list[Snapshot]:
        """Snapshots, oldest first (the latest ``limit``)."""
        query = (
            sa.select(snapshots)
            .where(snapshots.c.experiment_id == experiment_id)
            .order_by(snapshots.c.at.desc(), snapshots.c.id.desc())
            .limit(max(limit, 0))
        )
        with self._engine.connect() as conn:
            self._require_experiment(conn, experiment_id)
            rows = conn.execute(query).all()
        return [
            Snapshot(
                experiment_id=row.experiment_id,
                at=float(row.at),
                arm_to_p_best=arm_map(row.arm_to_p_best),
                arm_to_allocation=arm_map(row.arm_to_allocation),
                arm_to_estimate=estimate_map(row.arm_to_estimate),
                arm_to_sends=sends_map(row.arm_to_sends),
                burn_in=None if row.burn_in is None else bool(row.burn_in),
            )
            for row in reversed(rows)
        ]

    # --- API keys -------------------------------------------------------------
    def create_api_key(
        self, name: str, secret_hash: str, now: float, *, scope: KeyScope = KeyScope.FULL
    ) -> ApiKeyRecord:
        """Store a key by the hash of its secret; ConflictError if the hash exists."""
        key = ApiKeyRecord(
            id=common.new_id(),
            name=name,
            created_at=float(now),
            revoked_at=None,
            scope=KeyScope(scope),
        )
        insert = (
            self._insert(api_keys)
            .values(
                id=key.id,
                name=name,
                secret_hash=secret_hash,
                created_at=now,
                scope=key.scope.value,
            )
            .on_conflict_do_nothing(index_elements=[api_keys.c.secret_hash])
            .returning(api_keys.c.id)
        )
        with self._writer.begin() as conn:
            if conn.execute(insert).first() is None:
                raise common.api_key_exists()
        return key

    def find_api_key(self, secret_hash: str) -> ApiKeyRecord | None:
        """The key with this hash, revoked or not; None if unknown."""
        query = sa.select(api_keys).where(api_keys.c.secret_hash == secret_hash)
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else api_key_record(row)

    def revoke_api_key(self, key_id: str, now: float) -> ApiKeyRecord:
        """Revoke a key (NotFoundError if unknown); revoking twice keeps the first time."""
        update = (
            api_keys.update()
            .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        with self._writer.begin() as conn:
            conn.execute(update)
            row = conn.execute(sa.select(api_keys).where(api_keys.c.id == key_id)).first()
        if row is None:
            raise common.api_key_not_found(key_id)
        return api_key_record(row)

    def list_api_keys(self) -> list[ApiKeyRecord]:
        """All keys, revoked ones included, oldest first."""
        query = sa.select(api_keys).order_by(api_keys.c.created_at, api_keys.c.seq)
        with self._engine.connect() as conn:
            return [api_key_record(row) for row in conn.execute(query)]

    def has_api_keys(self) -> bool:
        """Whether any key (revoked or not) exists."""
        with self._engine.connect() as conn:
            return bool(conn.execute(sa.select(sa.exists().select_from(api_keys))).scalar())

    # --- housekeeping ---------------------------------------------------------
    def ping(self) -> None:
        """Raise if the database is not reachable."""
        with self._engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    def close(self) -> None:
        """Release every pooled connection."""
        with self._held_lock:
            held, self._held = self._held, []
        for conn in held:
            conn.close()
        self._engine.dispose()


class _Batches(Generic[_Item, _Result]):
    """Writes submitted while the event loop is busy, run together by one call of ``run``.

    The first submission schedules the batch's run for the loop's next
    turn, so every request whose handler reaches its write in between
    joins it; while a batch waits for its commit, the next one gathers.
    Each submitter awaits its own result, so it is answered only once its
    batch has committed; an error of the batch is every submitter's error.
    """

    def __init__(self, run: Callable[[list[_Item]], Awaitable[list[_Result]]]) -> None:
        self._run = run
        self._pending: list[tuple[_Item, asyncio.Future[_Result]]] = []
        self._running: set[asyncio.Task[None]] = set()

    def submit(self, item: _Item) -> asyncio.Future[_Result]:
        """Add ``item`` to the next batch; the future of its result."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_Result] = loop.create_future()
        if not self._pending:
            loop.call_soon(self._flush)
        self._pending.append((item, future))
        return future

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        loop = asyncio.get_running_loop()
        for start in range(0, len(pending), MAX_BATCH):
            task = loop.create_task(self._write(pending[start : start + MAX_BATCH]))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _write(self, batch: list[tuple[_Item, asyncio.Future[_Result]]]) -> None:
        try:
            results = await self._run([item for item, _ in batch])
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        except BaseException:  # cancelled (the loop is closing): so are its requests
            for _, future in batch:
                future.cancel()
            raise
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():  # its request was cancelled meanwhile
                future.set_result(result)

    async def drain(self) -> None:
        """Wait for the batches under way."""
        while self._pending or self._running:
            await asyncio.gather(*self._running, asyncio.sleep(0), return_exceptions=True)


#: Requests per statement at most (a larger batch is split).
MAX_BATCH = 256


@dataclass(frozen=True)
class _Open:
    decision_id: str
    experiment_id: str
    cutoff: float
    now: float


class AsyncHotWrites:
    """The hot writes (a decision, an open) on PostgreSQL, awaited, and committed in batches.

    Each worker's event loop runs the decision path inline; a synchronous
    write blocks that loop until PostgreSQL has flushed the commit to disk,
    so a worker had one commit in flight at a time, and the throughput was
    bounded by the disk's flush time rather than by the CPU. Here the
    decisions (and the opens) that requests submit while the loop is busy
    are written by one statement, in one autocommitted transaction
    (:data:`~headliner.storage._queries.BATCH_INSERT_DECISIONS`,
    :data:`~headliner.storage._queries.BATCH_OPEN_DECISIONS`: the same
    conditions as the single-row statements), awaited on psycopg's async
    driver while the loop serves other requests. One round trip and one
    disk flush then serve the whole batch, and every response still waits
    for the commit of its own write. A statement is atomic, so an error
    leaves none of its batch written, and every request of it fails.

    A pool of its own (psycopg_pool), bound to the event loop that opens it:
    :meth:`open` and :meth:`close` from that loop. As with the store's
    engine, a pooled connection's socket is polled as it is handed out
    (no round trip) and one the server ended is replaced. A driver error is
    raised as SQLAlchemy's exception class, as the synchronous path raises
    it. The rare follow-up reads (why nothing was written) go through the
    store, synchronously.

    Parameters
    ----------
    store : SqlStore
        A PostgreSQL store (``store.supports_async_writes``).
    max_size : int, default=POOL_SIZE
        Connections at most.
    """

    def __init__(self, store: SqlStore, max_size: int = POOL_SIZE) -> None:
        if not store.supports_async_writes:
            raise InvalidParameterError(
                f"Async writes need a PostgreSQL store. Got {store!r} instead."
            )
        from psycopg_pool import AsyncConnectionPool

        self._store = store
        engine = store.engine
        self._dialect = engine.dialect
        args, kwargs = engine.dialect.create_connect_args(engine.url)
        assert not args  # psycopg takes keyword arguments only
        kwargs.pop("context", None)  # SQLAlchemy's adapters; the hot values need none
        options = {**POSTGRES_CONNECT_ARGS, **kwargs, "autocommit": True}
        self._pool = AsyncConnectionPool(
            kwargs=options,
            min_size=1,
            max_size=max_size,
            open=False,
            check=_check_async,
            max_lifetime=POOL_RECYCLE_SECONDS,
        )
        self._decisions: _Batches[DecisionRecord, bool] = _Batches(self._insert_decisions)
        self._opens: _Batches[_Open, bool | None] = _Batches(self._open_decisions)

    async def open(self) -> None:
        """Open the pool (one connection now, the others as needed)."""
        await self._pool.open(wait=True)

    async def close(self) -> None:
        """Finish the batches under way, then close every pooled connection."""
        await self._decisions.drain()
        await self._opens.drain()
        await self._pool.close()

    async def record_decision(
        self,
        experiment_id: str,
        arm: int,
        propensity: float,
        now: float,
        *,
        recipient_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> tuple[DecisionRecord, bool]:
        """:meth:`SqlStore.record_decision`, awaiting the commit instead of blocking for it."""
        record = common.new_decision(
            experiment_id, arm, propensity, now, recipient_id, idempotency_key
        )
        if await self._decisions.submit(record):
            return record, True
        return self._store._decision_not_inserted(record), False

    async def record_open(
        self, experiment_id: str, decision_id: str, now: float, window_seconds: float
    ) -> OpenResult:
        """:meth:`SqlStore.record_open`, awaiting the commit instead of blocking for it."""
        late = await self._opens.submit(
            _Open(decision_id, experiment_id, now - window_seconds, float(now))
        )
        rows = [] if late is None else [(late,)]
        return self._store._open_result(rows, experiment_id, decision_id)

    async def _insert_decisions(self, records: list[DecisionRecord]) -> list[bool]:
        columns = ("id", "experiment_id", "arm", "propensity", "recipient_id")
        values: dict[str, list[Any]] = {c: [getattr(r, c) for r in records] for c in columns}
        values["idempotency_key"] = [r.idempotency_key for r in records]
        values["created_at"] = [r.created_at for r in records]
        inserted = {row[0] for row in await self._execute(BATCH_INSERT_DECISIONS, values)}
        return [r.id in inserted for r in records]

    async def _open_decisions(self, opens: list[_Open]) -> list[bool | None]:
        # One row per decision (see BATCH_OPEN_DECISIONS): a repeated open of the
        # same decision in the batch finds it opened already, as it would after it.
        first: dict[str, _Open] = {}
        for item in opens:
            first.setdefault(item.decision_id, item)
        unique = list(first.values())
        values = {
            "decision_id": [o.decision_id for o in unique],
            "experiment_id": [o.experiment_id for o in unique],
            "cutoff": [o.cutoff for o in unique],
            "now": [o.now for o in unique],
        }
        late = {row[0]: bool(row[1]) for row in await self._execute(BATCH_OPEN_DECISIONS, values)}
        return [
            late.get(item.decision_id) if first[item.decision_id] is item else None
            for item in opens
        ]

    async def _execute(self, sql: str, values: Mapping[str, Any]) -> list[Any]:
        import psycopg

        connected = False
        try:
            async with self._pool.connection() as conn, conn.cursor() as cursor:
                connected = True
                await cursor.execute(sql, values)
                return list(await cursor.fetchall())
        except psycopg.Error as exc:
            # A broken connection is dropped by the pool as it comes back.
            disconnect = self._dialect.is_disconnect(cast(Any, exc), None, None)
            connecting = not connected and isinstance(exc, psycopg.OperationalError)
            if driver_error_unavailable(exc, disconnect=disconnect, connecting=connecting):
                # As the synchronous path says it (the engine's error hook): a 503.
                raise unavailable() from exc
            raise sa.exc.DBAPIError.instance(
                sql,
                values,
                exc,
                psycopg.Error,
                connection_invalidated=disconnect,
                dialect=self._dialect,
            ) from exc


async def _check_async(conn: Any) -> None:
    """The pool's check as a connection is handed out: the socket poll of the engine.

    The connection is closed before raising: the pool takes back a failed
    connection that still looks idle, and only replaces a closed one.
    """
    if conn.closed or socket_has_news(conn.fileno()):
        await conn.close()
        raise sa.exc.DisconnectionError("the server closed this pooled connection")
