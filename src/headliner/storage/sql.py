"""The SQL :class:`~headliner.storage.base.Store` on SQLAlchemy 2 Core (SQLite, PostgreSQL).

Core rather than the ORM: ``record_decision`` and ``record_open`` are the
service's hot path, one statement each. Every write runs in its own
transaction, committed before the method returns; counts only ever change
through INSERTs and conditional single-row UPDATEs, and ``arm_counts``
aggregates rows with one GROUP BY per table.

SQLite runs in WAL mode with ``synchronous=NORMAL`` (a commit survives a crash
of the process, not of the machine) and a busy timeout, so that a writer in a
second process waits for the lock instead of failing. Write transactions start
with ``BEGIN IMMEDIATE``: a deferred transaction that reads and then writes
can fail at once with ``SQLITE_BUSY`` when another process committed in
between, and no busy timeout helps there.

The store does not create tables: run :func:`headliner.storage.migrate.upgrade`
first (the service does at start-up, and so does ``headliner db upgrade``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Connection, Engine, Row

from headliner.core.errors import ConflictError, InvalidParameterError, NotFoundError
from headliner.storage.base import (
    ApiKeyRecord,
    ArmCounts,
    ArmRecord,
    DecisionRecord,
    ExperimentRecord,
    ExperimentSpec,
    ExperimentStatus,
    OpenResult,
    Snapshot,
    Store,
    WaveRecord,
)
from headliner.storage.memory import InMemoryStore, check_wave_totals, new_id, status_conflict
from headliner.storage.schema import (
    api_keys,
    arms,
    decisions,
    experiments,
    snapshots,
    wave_arms,
    waves,
)

__all__ = ["SqlStore", "make_engine", "open_store"]

SQLITE_BUSY_TIMEOUT_MS = 30_000
# Per process: `serve --workers 2` makes 2 × (10 + 10) connections at most.
POOL_SIZE = 10
MAX_OVERFLOW = 10
_BEGIN_OPTION = "headliner_sqlite_begin"


def normalize_url(url: str) -> sa.URL:
    """Parse a database URL, sending bare ``postgresql://`` URLs to psycopg 3.

    Raises
    ------
    InvalidParameterError
        For an unparsable URL, an unsupported backend or an in-memory SQLite
        database (each connection would see its own empty database; use
        ``memory://`` for a process-local store).
    """
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        raise InvalidParameterError(f"The database URL must be a valid URL. Got {url!r}.") from None
    backend = parsed.get_backend_name()
    if backend == "postgresql" or parsed.drivername == "postgres":
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        if parsed.database in (None, "", ":memory:") or parsed.query.get("mode") == "memory":
            raise InvalidParameterError(
                "A SQLite database URL must name a file, e.g. sqlite:///headliner.db "
                f"(use memory:// for an in-memory store). Got {url!r}."
            )
        return parsed
    raise InvalidParameterError(
        "The database URL must start with sqlite:///, postgresql+psycopg:// or memory://. "
        f"Got {parsed.render_as_string(hide_password=True)!r}."
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


def _sqlite_on_begin(connection: Connection) -> None:
    mode = connection.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
    connection.exec_driver_sql(f"BEGIN {mode}")


def make_engine(url: str) -> Engine:
    """An engine for ``url`` set up the way every Headliner process uses it.

    SQLite: WAL, ``synchronous=NORMAL``, a 30 s busy timeout, foreign keys on,
    and transactions begun by the engine (deferred, or ``IMMEDIATE`` on an
    engine made with :func:`write_engine`). PostgreSQL: psycopg 3 with a pool
    of 10 (+10 overflow) connections, checked with a ping before use.
    """
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = sa.create_engine(parsed, pool_size=POOL_SIZE, max_overflow=MAX_OVERFLOW)
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    return sa.create_engine(
        parsed, pool_size=POOL_SIZE, max_overflow=MAX_OVERFLOW, pool_pre_ping=True
    )


def write_engine(engine: Engine) -> Engine:
    """The same pool, but SQLite transactions take the write lock when they begin."""
    if engine.dialect.name == "sqlite":
        return engine.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
    return engine


def open_store(url: str) -> Store:
    """The store for ``url``: ``memory://`` gives an :class:`InMemoryStore`, else :class:`SqlStore`.

    Parameters
    ----------
    url : str
        ``memory://``, ``sqlite:///path/to/file.db`` or
        ``postgresql+psycopg://user:password@host:5432/database``.

    Returns
    -------
    Store
        An open store; call ``close()`` when done.
    """
    if url.strip() == "memory://":
        return InMemoryStore()
    return SqlStore(url)


# --- row -> record ---------------------------------------------------------------
# float() on every Double column: SQLite hands back integral REALs as ints from
# RETURNING clauses (e.g. 5 for 5.0), and records promise floats.
def _opt(value: float | None) -> float | None:
    return None if value is None else float(value)


def _experiment(row: Row[Any]) -> ExperimentRecord:
    return ExperimentRecord(
        id=row.id,
        name=row.name,
        status=ExperimentStatus(row.status),
        policy=row.policy,
        policy_settings=dict(row.policy_settings),
        alpha_prior=float(row.alpha_prior),
        beta_prior=float(row.beta_prior),
        attribution_window_seconds=float(row.attribution_window_seconds),
        burn_in_per_arm=row.burn_in_per_arm,
        floor=float(row.floor),
        winner_exploration=float(row.winner_exploration),
        stopping=dict(row.stopping),
        winner_arm=row.winner_arm,
        created_at=float(row.created_at),
        completed_at=_opt(row.completed_at),
    )


def _arm(row: Row[Any]) -> ArmRecord:
    return ArmRecord(
        row.experiment_id, row.arm, row.headline, float(row.created_at), _opt(row.retired_at)
    )


def _decision(row: Row[Any]) -> DecisionRecord:
    return DecisionRecord(
        id=row.id,
        experiment_id=row.experiment_id,
        arm=row.arm,
        propensity=float(row.propensity),
        recipient_id=row.recipient_id,
        idempotency_key=row.idempotency_key,
        created_at=float(row.created_at),
        outcome=row.outcome,
        opened_at=_opt(row.opened_at),
        late=bool(row.late),
    )


def _api_key(row: Row[Any]) -> ApiKeyRecord:
    return ApiKeyRecord(row.id, row.name, float(row.created_at), _opt(row.revoked_at))


def _arm_map(values: Mapping[str, float]) -> dict[int, float]:
    return {int(arm): float(value) for arm, value in values.items()}


_EXPERIMENT_COLUMNS = [c for c in experiments.c if c.name != "seq"]
_DECISION_INSERT_COLUMNS = [
    "id",
    "experiment_id",
    "arm",
    "propensity",
    "recipient_id",
    "idempotency_key",
    "created_at",
    "late",
]


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
        self._insert = sqlite.insert if self._engine.dialect.name == "sqlite" else pg.insert

    def __repr__(self) -> str:
        return f"SqlStore({self._engine.url.render_as_string(hide_password=True)!r})"

    @property
    def engine(self) -> Engine:
        """The underlying engine (for migrations and tests)."""
        return self._engine

    # --- helpers --------------------------------------------------------------
    @staticmethod
    def _lock_experiment(conn: Connection, experiment_id: str) -> None:
        """Serialize arm changes of one experiment; NotFoundError if it does not exist.

        PostgreSQL: ``FOR NO KEY UPDATE`` on the experiment row, which does not
        block the ``FOR KEY SHARE`` locks of foreign-key checks. SQLite: the
        transaction already holds the database's write lock (BEGIN IMMEDIATE).
        """
        query = sa.select(experiments.c.id).where(experiments.c.id == experiment_id)
        if conn.execute(query.with_for_update(key_share=True)).first() is None:
            raise NotFoundError(f"Experiment {experiment_id!r} not found.")

    @staticmethod
    def _require_experiment(conn: Connection, experiment_id: str) -> None:
        query = sa.select(experiments.c.id).where(experiments.c.id == experiment_id)
        if conn.execute(query).first() is None:
            raise NotFoundError(f"Experiment {experiment_id!r} not found.")

    @classmethod
    def _require_arms(cls, conn: Connection, experiment_id: str, positions: set[int]) -> None:
        query = sa.select(arms.c.arm).where(arms.c.experiment_id == experiment_id)
        known = set(conn.execute(query).scalars())
        if not known:
            cls._require_experiment(conn, experiment_id)
        for arm in sorted(positions - known):
            raise NotFoundError(f"Arm {arm} not found in experiment {experiment_id!r}.")

    @staticmethod
    def _decision_owner(conn: Connection, experiment_id: str, decision_id: str) -> Row[Any]:
        """The decision's row after a conditional UPDATE matched nothing."""
        row = conn.execute(sa.select(decisions).where(decisions.c.id == decision_id)).first()
        if row is None:
            raise NotFoundError(f"Decision {decision_id!r} not found.")
        if row.experiment_id != experiment_id:
            raise ConflictError(
                f"Decision {decision_id!r} belongs to another experiment, not {experiment_id!r}."
            )
        return row

    @staticmethod
    def _wave(conn: Connection, experiment_id: str, wave_id: str) -> WaveRecord:
        query = (
            sa.select(waves.c.created_at, wave_arms)
            .join(wave_arms, wave_arms.c.wave_id == waves.c.id)
            .where(waves.c.id == wave_id, waves.c.experiment_id == experiment_id)
            .order_by(wave_arms.c.arm)
        )
        rows = conn.execute(query).all()
        if not rows:
            raise NotFoundError(f"Wave {wave_id!r} not found in experiment {experiment_id!r}.")
        return WaveRecord(
            id=wave_id,
            experiment_id=experiment_id,
            created_at=float(rows[0].created_at),
            arm_to_sends={r.arm: r.sends for r in rows},
            arm_to_opens={r.arm: r.opens for r in rows},
            arm_to_late_opens={r.arm: r.late_opens for r in rows},
        )

    # --- experiments and arms -------------------------------------------------
    def create_experiment(self, spec: ExperimentSpec, now: float) -> ExperimentRecord:
        """Store a new RUNNING experiment and its headlines as arms 0..K-1."""
        if len(set(spec.headlines)) != len(spec.headlines):
            raise ConflictError("Headlines of an experiment must be distinct.")
        record = ExperimentRecord(
            id=new_id(),
            name=spec.name,
            status=ExperimentStatus.RUNNING,
            policy=spec.policy,
            policy_settings=dict(spec.policy_settings),
            alpha_prior=spec.alpha_prior,
            beta_prior=spec.beta_prior,
            attribution_window_seconds=spec.attribution_window_seconds,
            burn_in_per_arm=spec.burn_in_per_arm,
            floor=spec.floor,
            winner_exploration=spec.winner_exploration,
            stopping=dict(spec.stopping),
            winner_arm=None,
            created_at=now,
            completed_at=None,
        )
        values = {c.name: getattr(record, c.name) for c in _EXPERIMENT_COLUMNS}
        values["status"] = record.status.value
        arm_rows = [
            {"experiment_id": record.id, "arm": i, "headline": h, "created_at": now}
            for i, h in enumerate(spec.headlines)
        ]
        with self._writer.begin() as conn:
            conn.execute(experiments.insert(), values)
            if arm_rows:
                conn.execute(arms.insert(), arm_rows)
        return record

    def get_experiment(self, experiment_id: str) -> ExperimentRecord:
        """The experiment, or NotFoundError."""
        query = sa.select(*_EXPERIMENT_COLUMNS).where(experiments.c.id == experiment_id)
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            raise NotFoundError(f"Experiment {experiment_id!r} not found.")
        return _experiment(row)

    def list_experiments(self, *, include_archived: bool = False) -> list[ExperimentRecord]:
        """Experiments, newest first (equal ``created_at`` by creation order, newest first)."""
        query = sa.select(*_EXPERIMENT_COLUMNS).order_by(
            experiments.c.created_at.desc(), experiments.c.seq.desc()
        )
        if not include_archived:
            query = query.where(experiments.c.status != ExperimentStatus.ARCHIVED.value)
        with self._engine.connect() as conn:
            return [_experiment(row) for row in conn.execute(query)]

    def set_status(
        self,
        experiment_id: str,
        status: ExperimentStatus,
        now: float,
        *,
        allowed_from: frozenset[ExperimentStatus],
        winner_arm: int | None = None,
    ) -> ExperimentRecord:
        """Move to ``status`` atomically if the current status is in ``allowed_from``."""
        values: dict[str, Any] = {"status": status.value}
        if winner_arm is not None:
            values["winner_arm"] = winner_arm
        if status is ExperimentStatus.COMPLETED:
            values["completed_at"] = now
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
                return _experiment(row)
            query = sa.select(experiments.c.status).where(experiments.c.id == experiment_id)
            current = conn.execute(query).scalar()
        if current is None:
            raise NotFoundError(f"Experiment {experiment_id!r} not found.")
        raise ConflictError(status_conflict(experiment_id, ExperimentStatus(current), status))

    def list_arms(self, experiment_id: str) -> list[ArmRecord]:
        """All arms, retired ones included, by position."""
        query = sa.select(arms).where(arms.c.experiment_id == experiment_id).order_by(arms.c.arm)
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
            if not rows:
                self._require_experiment(conn, experiment_id)
        return [_arm(row) for row in rows]

    def add_arm(self, experiment_id: str, headline: str, now: float) -> ArmRecord:
        """Append a headline as the next position; ConflictError if the headline exists."""
        with self._writer.begin() as conn:
            self._lock_experiment(conn, experiment_id)
            query = sa.select(arms.c.arm, arms.c.headline).where(
                arms.c.experiment_id == experiment_id
            )
            rows = conn.execute(query).all()
            if any(row.headline == headline for row in rows):
                raise ConflictError(
                    f"Headline {headline!r} already exists in experiment {experiment_id!r}."
                )
            position = max((row.arm for row in rows), default=-1) + 1
            record = ArmRecord(experiment_id, position, headline, now, None)
            conn.execute(
                arms.insert(),
                {"experiment_id": experiment_id, "arm": position, "headline": headline,
                 "created_at": now},
            )  # fmt: skip
        return record

    def retire_arm(self, experiment_id: str, arm: int, now: float) -> ArmRecord:
        """Stop sending an arm; retiring a retired arm returns it unchanged."""
        with self._writer.begin() as conn:
            # The lock makes "not the last active arm" hold when the UPDATE lands.
            self._lock_experiment(conn, experiment_id)
            query = sa.select(arms).where(arms.c.experiment_id == experiment_id)
            by_position = {row.arm: row for row in conn.execute(query)}
            if arm not in by_position:
                raise NotFoundError(f"Arm {arm} not found in experiment {experiment_id!r}.")
            record = _arm(by_position[arm])
            if not record.active:
                return record
            if sum(row.retired_at is None for row in by_position.values()) <= 1:
                raise ConflictError(
                    f"Arm {arm} is the last active arm of experiment {experiment_id!r}."
                )
            conn.execute(
                arms.update()
                .where(arms.c.experiment_id == experiment_id, arms.c.arm == arm)
                .values(retired_at=now)
            )
        return ArmRecord(record.experiment_id, arm, record.headline, record.created_at, now)

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
        record = DecisionRecord(
            id=new_id(),
            experiment_id=experiment_id,
            arm=arm,
            propensity=propensity,
            recipient_id=recipient_id,
            idempotency_key=idempotency_key,
            created_at=now,
            outcome=None,
            opened_at=None,
            late=False,
        )
        # One statement: the row is inserted only if the arm exists (instead of
        # a foreign key, see schema) and only if the key is new.
        source = sa.select(
            *(sa.literal(getattr(record, name), decisions.c[name].type).label(name)
              for name in _DECISION_INSERT_COLUMNS)
        ).where(
            sa.exists().where(arms.c.experiment_id == experiment_id, arms.c.arm == arm)
        )  # fmt: skip
        insert = (
            self._insert(decisions)
            .from_select(_DECISION_INSERT_COLUMNS, source)
            .on_conflict_do_nothing(
                index_elements=[decisions.c.experiment_id, decisions.c.idempotency_key]
            )
            # RETURNING tells "inserted" from "skipped" (rowcount is not kept for INSERTs).
            .returning(decisions.c.id)
        )
        with self._writer.begin() as conn:
            if conn.execute(insert).first() is not None:
                return record, True
            if idempotency_key is not None:
                query = sa.select(decisions).where(
                    decisions.c.experiment_id == experiment_id,
                    decisions.c.idempotency_key == idempotency_key,
                )
                row = conn.execute(query).first()
                if row is not None:
                    return _decision(row), False
            self._require_arms(conn, experiment_id, {arm})
        raise AssertionError("unreachable: the insert matched an existing arm")  # pragma: no cover

    def get_decision(self, decision_id: str) -> DecisionRecord:
        """The decision, or NotFoundError."""
        query = sa.select(decisions).where(decisions.c.id == decision_id)
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            raise NotFoundError(f"Decision {decision_id!r} not found.")
        return _decision(row)

    def record_open(
        self, experiment_id: str, decision_id: str, now: float, window_seconds: float
    ) -> OpenResult:
        """Record an open for a decision, idempotently."""
        in_window = decisions.c.created_at >= now - window_seconds
        # Only the first report changes the row, whoever wins a race.
        update = (
            decisions.update()
            .where(
                decisions.c.id == decision_id,
                decisions.c.experiment_id == experiment_id,
                decisions.c.outcome.is_(None),
                decisions.c.opened_at.is_(None),
            )
            .values(
                outcome=sa.case((in_window, 1), else_=sa.null()),
                opened_at=now,
                late=sa.case((in_window, sa.false()), else_=sa.true()),
            )
            .returning(decisions.c.late)
        )
        with self._writer.begin() as conn:
            late = conn.execute(update).scalar()
            if late is None:
                self._decision_owner(conn, experiment_id, decision_id)
                return OpenResult.DUPLICATE
        return OpenResult.LATE if late else OpenResult.COUNTED

    def record_outcome(self, experiment_id: str, decision_id: str, reward: int, now: float) -> bool:
        """Set an explicit 0/1 outcome; False if the same one was already known."""
        update = (
            decisions.update()
            .where(
                decisions.c.id == decision_id,
                decisions.c.experiment_id == experiment_id,
                decisions.c.outcome.is_(None),
                decisions.c.opened_at.is_(None),
            )
            .values(outcome=reward)
        )
        with self._writer.begin() as conn:
            if conn.execute(update).rowcount == 1:
                return True
            row = self._decision_owner(conn, experiment_id, decision_id)
        # A reported open (counted or late) is an outcome of 1 already.
        stored = row.outcome if row.outcome is not None else 1
        if stored != reward:
            raise ConflictError(
                f"Decision {decision_id!r} already has outcome {stored}; got {reward}."
            )
        return False

    # --- waves ----------------------------------------------------------------
    def record_wave(
        self, experiment_id: str, arm_to_sends: Mapping[int, int], now: float
    ) -> WaveRecord:
        """Store a wave's sends per arm as pending."""
        sends = {int(arm): int(n) for arm, n in sorted(arm_to_sends.items())}
        wave = WaveRecord(
            id=new_id(),
            experiment_id=experiment_id,
            created_at=now,
            arm_to_sends=sends,
            arm_to_opens=dict.fromkeys(sends, 0),
            arm_to_late_opens=dict.fromkeys(sends, 0),
        )
        rows = [
            {"wave_id": wave.id, "arm": arm, "sends": n, "opens": 0, "late_opens": 0}
            for arm, n in sends.items()
        ]
        with self._writer.begin() as conn:
            self._require_arms(conn, experiment_id, set(sends))
            conn.execute(
                waves.insert(), {"id": wave.id, "experiment_id": experiment_id, "created_at": now}
            )
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
        """Raise each arm's running total of opens for the wave (idempotent)."""
        total = sa.bindparam("total", type_=sa.Integer)
        reported = wave_arms.c.opens + wave_arms.c.late_opens
        raise_total = wave_arms.update().where(
            wave_arms.c.wave_id == wave_id,
            wave_arms.c.arm == sa.bindparam("position", type_=sa.Integer),
            reported < total,  # totals never go down; a concurrent higher total wins
        )
        with self._writer.begin() as conn:
            # Sends and created_at never change after record_wave, so reading
            # them first is safe; the counts change only in the UPDATEs below.
            before = self._wave(conn, experiment_id, wave_id)
            check_wave_totals(wave_id, before.arm_to_sends, arm_to_total_opens)
            params = [
                {"position": int(arm), "total": int(n)}
                for arm, n in sorted(arm_to_total_opens.items())
                if n > 0
            ]
            if params:
                if before.created_at >= now - window_seconds:
                    stmt = raise_total.values(opens=total - wave_arms.c.late_opens)
                else:
                    stmt = raise_total.values(late_opens=total - wave_arms.c.opens)
                conn.execute(stmt, params)
            return self._wave(conn, experiment_id, wave_id)

    # --- aggregation ----------------------------------------------------------
    def arm_counts(self, experiment_id: str, now: float, window_seconds: float) -> list[ArmCounts]:
        """Counts per arm (every arm, by position), aggregated in the database."""
        cutoff = now - window_seconds
        d = decisions.c
        from_decisions = (
            sa.select(
                d.arm,
                sa.func.count().label("sends"),
                sa.func.sum(sa.case((d.outcome == 1, 1), else_=0)).label("opens"),
                sa.func.sum(
                    sa.case(
                        (d.outcome == 0, 1),
                        (sa.and_(d.outcome.is_(None), d.created_at <= cutoff), 1),
                        else_=0,
                    )
                ).label("non_opens"),
                sa.func.sum(sa.case((d.late, 1), else_=0)).label("late_opens"),
            )
            .where(d.experiment_id == experiment_id)
            .group_by(d.arm)
        )
        matured = waves.c.created_at <= cutoff
        w = wave_arms.c
        from_waves = (
            sa.select(
                w.arm,
                sa.func.sum(w.sends).label("sends"),
                sa.func.sum(w.opens).label("opens"),
                sa.func.sum(sa.case((matured, w.sends - w.opens), else_=0)).label("non_opens"),
                sa.func.sum(w.late_opens).label("late_opens"),
            )
            .join(waves, waves.c.id == w.wave_id)
            .where(waves.c.experiment_id == experiment_id)
            .group_by(w.arm)
        )
        # Arms last: every arm a counted row refers to existed before that row
        # (the insert checked it) and arms are never deleted, so none is missed.
        arm_query = sa.select(arms.c.arm).where(arms.c.experiment_id == experiment_id)
        totals: dict[int, list[int]] = {}
        with self._engine.connect() as conn:
            for query in (from_decisions, from_waves):
                for row in conn.execute(query):
                    acc = totals.setdefault(row.arm, [0, 0, 0, 0])
                    for i, value in enumerate(row[1:]):
                        acc[i] += int(value or 0)
            positions = sorted(conn.execute(arm_query).scalars())
            if not positions:
                self._require_experiment(conn, experiment_id)
        return [ArmCounts(arm, *totals.get(arm, [0, 0, 0, 0])) for arm in positions]

    def record_snapshot(self, snapshot: Snapshot) -> None:
        """Append a P(best)/allocation snapshot."""
        values = {
            "experiment_id": snapshot.experiment_id,
            "at": snapshot.at,
            "arm_to_p_best": {str(k): float(v) for k, v in snapshot.arm_to_p_best.items()},
            "arm_to_allocation": {str(k): float(v) for k, v in snapshot.arm_to_allocation.items()},
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
                arm_to_p_best=_arm_map(row.arm_to_p_best),
                arm_to_allocation=_arm_map(row.arm_to_allocation),
            )
            for row in reversed(rows)
        ]

    # --- API keys -------------------------------------------------------------
    def create_api_key(self, name: str, secret_hash: str, now: float) -> ApiKeyRecord:
        """Store a key by the hash of its secret; ConflictError if the hash exists."""
        key = ApiKeyRecord(id=new_id(), name=name, created_at=now, revoked_at=None)
        insert = (
            self._insert(api_keys)
            .values(id=key.id, name=name, secret_hash=secret_hash, created_at=now)
            .on_conflict_do_nothing(index_elements=[api_keys.c.secret_hash])
            .returning(api_keys.c.id)
        )
        with self._writer.begin() as conn:
            if conn.execute(insert).first() is None:
                raise ConflictError("An API key with this secret already exists.")
        return key

    def find_api_key(self, secret_hash: str) -> ApiKeyRecord | None:
        """The key with this hash, revoked or not; None if unknown."""
        query = sa.select(api_keys).where(api_keys.c.secret_hash == secret_hash)
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else _api_key(row)

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
            raise NotFoundError(f"API key {key_id!r} not found.")
        return _api_key(row)

    def list_api_keys(self) -> list[ApiKeyRecord]:
        """All keys, revoked ones included, oldest first."""
        query = sa.select(api_keys).order_by(api_keys.c.created_at, api_keys.c.seq)
        with self._engine.connect() as conn:
            return [_api_key(row) for row in conn.execute(query)]

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
        self._engine.dispose()
