"""Row-to-record converters and the aggregation queries of the SQL store."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Row

from headliner.storage.base import (
    LIVE_STATUSES,
    ApiKeyRecord,
    ArmRecord,
    DecisionRecord,
    EventRecord,
    ExperimentRecord,
    ExperimentStatus,
    KeyScope,
)
from headliner.storage.schema import (
    arms,
    decisions,
    events,
    experiments,
    wave_arms,
    wave_open_reports,
    waves,
)


# --- row -> record ---------------------------------------------------------------
# float() on every Double column: SQLite hands back integral REALs as ints from
# RETURNING clauses (e.g. 5 for 5.0), and records promise floats.
def opt_float(value: float | None) -> float | None:
    return None if value is None else float(value)


def experiment_record(row: Row[Any]) -> ExperimentRecord:
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
        completed_at=opt_float(row.completed_at),
        winner_reason=row.winner_reason,
        burn_in_share=float(row.burn_in_share),
        delay_prior={str(k): float(v) for k, v in row.delay_prior.items()},
        plan=None if row.plan is None else dict(row.plan),
        winner_declared_at=opt_float(row.winner_declared_at),
        kpi=row.kpi,
    )


def arm_record(row: Row[Any]) -> ArmRecord:
    return ArmRecord(
        row.experiment_id, row.arm, row.headline, float(row.created_at), opt_float(row.retired_at)
    )


def decision_record(row: Row[Any]) -> DecisionRecord:
    return DecisionRecord(
        id=row.id,
        experiment_id=row.experiment_id,
        arm=row.arm,
        propensity=float(row.propensity),
        recipient_id=row.recipient_id,
        idempotency_key=row.idempotency_key,
        created_at=float(row.created_at),
        outcome=row.outcome,
        opened_at=opt_float(row.opened_at),
        late=bool(row.late),
    )


def event_record(row: Row[Any]) -> EventRecord:
    return EventRecord(
        id=row.id,
        experiment_id=row.experiment_id,
        decision_id=row.decision_id,
        arm=row.arm,
        type=row.type,
        machine=bool(row.machine),
        at=float(row.at),
        user_agent=row.user_agent,
        proxy_address=row.proxy_address,
    )


def api_key_record(row: Row[Any]) -> ApiKeyRecord:
    return ApiKeyRecord(
        row.id, row.name, float(row.created_at), opt_float(row.revoked_at), KeyScope(row.scope)
    )


def arm_map(values: Mapping[str, float]) -> dict[int, float]:
    return {int(arm): float(value) for arm, value in values.items()}


def estimate_map(
    values: Mapping[str, Sequence[float]] | None,
) -> dict[int, tuple[float, float, float]] | None:
    if values is None:
        return None
    return {int(arm): (float(v[0]), float(v[1]), float(v[2])) for arm, v in values.items()}


def sends_map(values: Mapping[str, int] | None) -> dict[int, int] | None:
    return None if values is None else {int(arm): int(n) for arm, n in values.items()}


# --- aggregation (the delayed-feedback rule of headliner.storage.base) ----------------
# A send's window has passed once created_at <= p_cutoff (now - window).
_experiment_id = sa.bindparam("p_experiment_id", type_=decisions.c.experiment_id.type)
_cutoff: sa.BindParameter[float] = sa.bindparam("p_cutoff", type_=sa.Double())
_d = decisions.c
_window_passed = _d.created_at <= _cutoff
_matured_silent = sa.and_(_d.outcome.is_(None), _window_passed)
# An explicit outcome is final at once; a reported open (opened_at set) is not:
# its send matures with the window, like the sends that were not opened.
_final = sa.or_(_window_passed, sa.and_(_d.outcome.is_not(None), _d.opened_at.is_(None)))


def _count(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[Any]:
    return sa.func.sum(sa.case((condition, 1), else_=0))


DECISION_COUNTS = (
    sa.select(
        _d.arm,
        sa.func.count().label("sends"),
        _count(_d.outcome == 1).label("opens"),
        _count(sa.or_(_d.outcome == 0, _matured_silent)).label("non_opens"),
        _count(_d.late).label("late_opens"),
        _count(_final).label("matured"),
        _count(sa.and_(_final, _d.outcome == 1)).label("matured_opens"),
    )
    .where(_d.experiment_id == _experiment_id)
    .group_by(_d.arm)
)
"""Per arm: sends, opens, non-opens, late opens, matured sends and their opens (decisions)."""

_w = wave_arms.c
_wave_passed = waves.c.created_at <= _cutoff


def _once_passed(value: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    return sa.func.sum(sa.case((_wave_passed, value), else_=0))


WAVE_COUNTS = (
    sa.select(
        _w.arm,
        sa.func.sum(_w.sends).label("sends"),
        sa.func.sum(_w.opens).label("opens"),
        _once_passed(_w.sends - _w.opens).label("non_opens"),
        sa.func.sum(_w.late_opens).label("late_opens"),
        _once_passed(_w.sends).label("matured"),
        _once_passed(_w.opens).label("matured_opens"),
    )
    .join(waves, waves.c.id == _w.wave_id)
    .where(waves.c.experiment_id == _experiment_id)
    .group_by(_w.arm)
)
"""Per arm: the same six counts over an experiment's waves (a wave matures as a block)."""


def decision_propensities(epoch_starts: Sequence[float]) -> sa.Select[Any]:
    """Per-send decisions by arm, propensity and epoch: sends and counted opens.

    Epoch ``e`` holds the decisions made from ``epoch_starts[e - 1]`` (on)
    until ``epoch_starts[e]`` (epoch 0: before the first start); the store
    passes the times at which headlines were added or retired, so that every
    decision of an epoch was made with the same headlines active.
    """
    return (
        sa.select(
            _d.arm,
            _d.propensity,
            _bin(_d.created_at, tuple(epoch_starts)).label("epoch"),
            sa.func.count().label("sends"),
            _count(_d.outcome == 1).label("opens"),
        )
        .where(_d.experiment_id == _experiment_id)
        .group_by(_d.arm, _d.propensity, sa.literal_column("epoch"))
    )


_wave_totals = (
    sa.select(
        _w.wave_id.label("wave_id"),
        sa.func.sum(_w.sends).label("total"),
        sa.func.count().label("n_arms"),
    )
    .join(waves, waves.c.id == _w.wave_id)
    .where(waves.c.experiment_id == _experiment_id)
    .group_by(_w.wave_id)
    .subquery("totals")
)

WAVE_PROPENSITIES = (
    sa.select(_w.arm, _w.sends, _w.opens, _wave_totals.c.total, _wave_totals.c.n_arms)
    .join(_wave_totals, _wave_totals.c.wave_id == _w.wave_id)
    .where(_w.sends > 0)
)
"""Per (wave, arm) with sends: sends, counted opens, the wave's total and its headline count."""

SENDS_SINCE = sa.select(
    sa.select(sa.func.count())
    .where(_d.experiment_id == _experiment_id, _d.created_at >= _cutoff)
    .scalar_subquery()
    + sa.select(sa.func.coalesce(sa.func.sum(_w.sends), 0))
    .join(waves, waves.c.id == _w.wave_id)
    .where(waves.c.experiment_id == _experiment_id, waves.c.created_at >= _cutoff)
    .scalar_subquery()
)
"""Sends (decisions and waves' sends) made at ``p_cutoff`` or later."""


# --- hot-path statements, built once -----------------------------------------------------
# Building a statement costs more than running it on SQLite (~0.3 ms of Python
# per call), so the per-send statements are made once with bound parameters and
# found in SQLAlchemy's compiled cache on every call. Parameter names start
# with "p_" because UPDATE reserves column names for its SET clause.
DECISION_INSERT_COLUMNS = (
    "id",
    "experiment_id",
    "arm",
    "propensity",
    "recipient_id",
    "idempotency_key",
    "created_at",
    "late",
)


def experiment_is_live(experiment_id: sa.ColumnElement[Any]) -> sa.Exists:
    """EXISTS: the experiment is in one of :data:`~headliner.storage.base.LIVE_STATUSES`.

    The statuses are literals rather than bound parameters, so the hot
    statements stay plain cached SQL (an expanding IN is re-rendered per call).
    A plain read: it takes no lock on the experiment's row.
    """
    live: list[sa.ColumnClause[Any]] = [
        sa.literal_column(f"'{status.value}'") for status in sorted(LIVE_STATUSES)
    ]
    return sa.exists().where(experiments.c.id == experiment_id, experiments.c.status.in_(live))


def insert_decision(insert: Callable[[sa.Table], Any]) -> sa.Insert:
    """INSERT a decision if its arm exists, the experiment is live and the key is new.

    RETURNING id, so nothing returned means one of the three failed.
    ``insert`` is the dialect's ``insert`` (both have ON CONFLICT DO NOTHING).
    The arm check replaces a foreign key (see :mod:`headliner.storage.schema`);
    the status check in the same statement means that a caller working from a
    stale status cannot log a decision after the experiment was completed.
    """
    source = sa.select(
        *(sa.bindparam(f"p_{name}", type_=decisions.c[name].type).label(name)
          for name in DECISION_INSERT_COLUMNS)
    ).where(
        sa.exists().where(
            arms.c.experiment_id == sa.bindparam("p_experiment_id"),
            arms.c.arm == sa.bindparam("p_arm"),
        ),
        experiment_is_live(sa.bindparam("p_experiment_id")),
    )  # fmt: skip
    statement: sa.Insert = (
        insert(decisions)
        .from_select(list(DECISION_INSERT_COLUMNS), source)
        .on_conflict_do_nothing(
            index_elements=[decisions.c.experiment_id, decisions.c.idempotency_key]
        )
        # RETURNING tells "inserted" from "skipped" (rowcount is not kept for INSERTs).
        .returning(decisions.c.id)
    )
    return statement


def _unsettled_decision() -> sa.Update:
    # Only a decision with no open and no outcome yet changes: whoever wins a race.
    return decisions.update().where(
        decisions.c.id == sa.bindparam("p_decision_id"),
        decisions.c.experiment_id == sa.bindparam("p_experiment_id"),
        decisions.c.outcome.is_(None),
        decisions.c.opened_at.is_(None),
    )


_in_window = decisions.c.created_at >= sa.bindparam("p_cutoff", type_=sa.Double())

OPEN_DECISION = (
    _unsettled_decision()
    .values(
        outcome=sa.case((_in_window, 1), else_=sa.null()),
        opened_at=sa.bindparam("p_now", type_=sa.Double()),
        late=sa.case((_in_window, sa.false()), else_=sa.true()),
    )
    .returning(decisions.c.late)
)
"""Record the first open of a decision: counted in the window, late after it."""

SET_OUTCOME = _unsettled_decision().values(
    outcome=sa.bindparam("p_reward", type_=sa.SmallInteger())
)
"""Set an explicit outcome on a decision that has none and no open."""

DECISION_BY_ID = sa.select(decisions).where(decisions.c.id == sa.bindparam("p_decision_id"))
DECISION_BY_KEY = sa.select(decisions).where(
    decisions.c.experiment_id == sa.bindparam("p_experiment_id"),
    decisions.c.idempotency_key == sa.bindparam("p_idempotency_key"),
)


# --- events ---------------------------------------------------------------------------
_e = events.c

INSERT_EVENT = (
    events.insert()
    .from_select(
        [c.name for c in events.c],
        sa.select(
            sa.bindparam("p_id", type_=_e.id.type),
            _d.experiment_id,
            _d.id,
            _d.arm,
            sa.bindparam("p_type", type_=_e.type.type),
            sa.bindparam("p_machine", type_=sa.Boolean()),
            sa.bindparam("p_at", type_=sa.Double()),
            sa.bindparam("p_user_agent", type_=_e.user_agent.type),
            sa.bindparam("p_proxy_address", type_=_e.proxy_address.type),
        ).where(
            _d.id == sa.bindparam("p_decision_id"),
            _d.experiment_id == sa.bindparam("p_experiment_id"),
        ),
    )
    .returning(*events.c)
)
"""Store an event of a decision of this experiment, with its arm; RETURNING the row.

Nothing returned: no such decision in the experiment, and nothing stored.
"""

EVENT_COUNTS = (
    sa.select(
        _e.arm,
        _e.type,
        sa.func.count().label("events"),
        _count(_e.machine).label("machine"),
    )
    .where(_e.experiment_id == _experiment_id)
    .group_by(_e.arm, _e.type)
    .order_by(_e.arm, _e.type)
)
"""Per arm and type: stored events, and those a machine made."""


# --- wave open reports ---------------------------------------------------------------
# record_wave_opens runs these with the wave's row locked (one report at a time
# per wave), one parameter set per arm whose total rises.
_wave_id = sa.bindparam("p_wave_id", type_=waves.c.id.type)
_position = sa.bindparam("p_arm", type_=sa.Integer())
_total = sa.bindparam("p_total", type_=sa.Integer())
_now: sa.BindParameter[float] = sa.bindparam("p_now", type_=sa.Double())
_window: sa.BindParameter[float] = sa.bindparam("p_window", type_=sa.Double())
_reported = _w.opens + _w.late_opens
_rises = sa.and_(_w.wave_id == _wave_id, _w.arm == _position, _reported < _total)

LOCK_WAVE = (
    sa.select(waves.c.id)
    .where(waves.c.id == _wave_id, waves.c.experiment_id == _experiment_id)
    .with_for_update(key_share=True)
)
"""Lock the wave's row until the transaction ends (PostgreSQL; a no-op on SQLite).

``FOR NO KEY UPDATE``: it excludes other reports of the wave but not the
``FOR KEY SHARE`` locks that foreign-key checks take.
"""

LOG_WAVE_OPENS = wave_open_reports.insert().from_select(
    ["wave_id", "arm", "at", "opens"],
    sa.select(_w.wave_id, _w.arm, _now, _total - _reported).where(_rises),
)
"""Log an arm's increase of counted opens (run before :data:`RAISE_WAVE_OPENS`)."""

RAISE_WAVE_OPENS = wave_arms.update().where(_rises).values(opens=_total - _w.late_opens)
"""Raise an arm's counted opens to the reported total (inside the window)."""

RAISE_WAVE_LATE_OPENS = wave_arms.update().where(_rises).values(late_opens=_total - _w.opens)
"""Raise an arm's late opens so that opens plus late opens make the total (after the window)."""

SET_WAVE_REPORTED_AT = (
    waves.update()
    .where(
        waves.c.id == _wave_id,
        sa.or_(waves.c.reported_at.is_(None), waves.c.reported_at < _now),
    )
    .values(reported_at=_now)
)
"""Move ``reported_at`` forward to ``p_now`` (never back)."""


# --- delay-aware counting: pending sends and open delays ---------------------------------
_unopened = _w.sends - _w.opens - _w.late_opens

PENDING_WAVE_SENDS = (
    sa.select(
        _w.arm,
        (sa.func.coalesce(waves.c.reported_at, waves.c.created_at) - waves.c.created_at).label(
            "age"
        ),
        _unopened.label("count"),
    )
    .join(waves, waves.c.id == _w.wave_id)
    .where(waves.c.experiment_id == _experiment_id, waves.c.created_at > _cutoff, _unopened > 0)
    .order_by(waves.c.created_at, waves.c.id, _w.arm)
)
"""Per (wave, arm) inside the window: unopened sends and the age they were last seen at."""

_r = wave_open_reports.c
# A report that raised one arm but lowered another left reported_at where it
# was; its increase was still seen at ``at``.
_seen = sa.case(
    (sa.or_(waves.c.reported_at.is_(None), waves.c.reported_at < _r.at), _r.at),
    else_=waves.c.reported_at,
)

WAVE_OPEN_DELAYS = (
    sa.select(
        (_r.at - waves.c.created_at).label("delay"),
        sa.case((_wave_passed, _window), else_=_seen - waves.c.created_at).label("observable"),
        _r.opens.label("count"),
    )
    .join(waves, waves.c.id == _r.wave_id)
    .where(waves.c.experiment_id == _experiment_id)
    .order_by(waves.c.created_at, waves.c.id, _r.id)
)
"""One row per logged increase of a wave's counted opens: delay, observable age, opens."""


def _bin(
    value: sa.ColumnElement[float], thresholds: Sequence[float], first: int = 0
) -> sa.ColumnElement[int]:
    """``first`` plus how many sorted ``thresholds`` are at most ``value``: a balanced nested CASE.

    A binary search: ``ceil(log2(len(thresholds) + 1))`` comparisons per row,
    in plain SQL that SQLite and PostgreSQL both run (no ``floor`` or ``ln``,
    which SQLite may lack). With the inner edges ``edges[1:-1]`` as thresholds
    it is the bin ``b`` with ``edges[b] <= value < edges[b + 1]``, values
    below ``edges[1]`` in bin 0 and from ``edges[-2]`` on in the last bin.
    """
    if not thresholds:
        return sa.literal_column(str(first), sa.Integer())
    mid = len(thresholds) // 2
    return sa.case(
        (value < sa.literal(thresholds[mid], sa.Double()), _bin(value, thresholds[:mid], first)),
        else_=_bin(value, thresholds[mid + 1 :], first + mid + 1),
    )


class DelayQueries(NamedTuple):
    """The two decision queries that bin on a set of age edges."""

    pending: sa.Select[Any]
    """Per arm and age bin: pending decisions (``count``) and their mean ``age``."""
    delays: sa.Select[Any]
    """Per delay bin and observable bin: counted opens of decisions (``count``)."""


@functools.lru_cache(maxsize=32)
def delay_queries(edges: tuple[float, ...]) -> DelayQueries:
    """The decision queries of ``pending_sends`` and ``open_delays`` for these edges.

    Cached: the nested CASEs are made once per distinct edges (one grid per
    attribution window in use), not on every refresh. ``edges`` as
    returned by :func:`headliner.storage._common.age_edges`.
    """
    inner = edges[1:-1]
    pending_ages = (
        sa.select(_d.arm, (_now - _d.created_at).label("age"))
        .where(
            _d.experiment_id == _experiment_id,
            _d.outcome.is_(None),
            _d.opened_at.is_(None),
            _d.created_at > _cutoff,
        )
        .subquery("pending")
    )
    by_bin = sa.select(
        pending_ages.c.arm, pending_ages.c.age, _bin(pending_ages.c.age, inner).label("bin")
    ).subquery("binned")
    pending = (
        sa.select(
            by_bin.c.arm, sa.func.count().label("count"), sa.func.avg(by_bin.c.age).label("age")
        )
        .group_by(by_bin.c.arm, by_bin.c.bin)
        .order_by(by_bin.c.arm, by_bin.c.bin)
    )

    opened = (
        sa.select(
            (_d.opened_at - _d.created_at).label("delay"), (_now - _d.created_at).label("age")
        )
        .where(
            _d.experiment_id == _experiment_id,
            _d.outcome == 1,
            _d.opened_at.is_not(None),
            sa.not_(_d.late),
        )
        .subquery("opened")
    )
    # The age's bin among every edge but 0: len(edges) - 1 means "the window or older".
    binned = sa.select(
        _bin(opened.c.delay, inner).label("delay_bin"),
        _bin(opened.c.age, edges[1:]).label("age_bin"),
    ).subquery("binned")
    delays = (
        sa.select(binned.c.delay_bin, binned.c.age_bin, sa.func.count().label("count"))
        # The delay, rounded up to edges[delay_bin + 1], must not exceed the
        # observable age, rounded down to edges[age_bin].
        .where(binned.c.delay_bin < binned.c.age_bin)
        .group_by(binned.c.delay_bin, binned.c.age_bin)
        .order_by(binned.c.delay_bin, binned.c.age_bin)
    )
    return DelayQueries(pending, delays)


# --- the hot writes of many requests at once (PostgreSQL) -------------------------------
# The same conditions as insert_decision() and OPEN_DECISION, over arrays: one
# statement (one round trip, one commit) for every request gathered in a batch.
# Plain SQL, as SQLAlchemy has no construct for unnest() with column aliases.
_LIVE_SQL = ", ".join(f"'{status.value}'" for status in sorted(LIVE_STATUSES))

BATCH_INSERT_DECISIONS = f"""\
INSERT INTO decisions (id, experiment_id, arm, propensity, recipient_id, idempotency_key,
                       created_at, late)
SELECT v.id, v.experiment_id, v.arm, v.propensity, v.recipient_id, v.idempotency_key,
       v.created_at, false
FROM unnest(%(id)s::varchar[], %(experiment_id)s::varchar[], %(arm)s::integer[],
            %(propensity)s::float8[], %(recipient_id)s::text[], %(idempotency_key)s::text[],
            %(created_at)s::float8[])
     AS v(id, experiment_id, arm, propensity, recipient_id, idempotency_key, created_at)
WHERE EXISTS (SELECT 1 FROM arms WHERE arms.experiment_id = v.experiment_id AND arms.arm = v.arm)
  AND EXISTS (SELECT 1 FROM experiments
              WHERE experiments.id = v.experiment_id AND experiments.status IN ({_LIVE_SQL}))
ON CONFLICT (experiment_id, idempotency_key) DO NOTHING
RETURNING id"""
"""INSERT pending decisions (``late`` false) whose arm exists, experiment is live and key is new.

Arrays named after the columns; RETURNING the ids inserted. A key repeated
within the batch is inserted once (the first), like two requests one after the other.
"""

BATCH_OPEN_DECISIONS = """\
UPDATE decisions AS d
SET outcome = CASE WHEN d.created_at >= v.cutoff THEN 1 ELSE NULL END,
    opened_at = v.now,
    late = CASE WHEN d.created_at >= v.cutoff THEN false ELSE true END
FROM unnest(%(decision_id)s::varchar[], %(experiment_id)s::varchar[], %(cutoff)s::float8[],
            %(now)s::float8[]) AS v(decision_id, experiment_id, cutoff, now)
WHERE d.id = v.decision_id AND d.experiment_id = v.experiment_id
  AND d.outcome IS NULL AND d.opened_at IS NULL
RETURNING d.id, d.late"""
"""Record the first open of each decision, as OPEN_DECISION; RETURNING id and late.

Each decision may appear once per batch: an UPDATE takes one of several
matching source rows, unpredictably.
"""
