"""The database schema as SQLAlchemy Core tables (the SQL store's single source).

Times are float seconds since the epoch (``Double``), as in the records of
:mod:`headliner.storage.base`. Every constraint and index has a fixed name
(``metadata.naming_convention``) so that migrations can refer to it and the
migrated database compares equal to this metadata.

Counts are never kept in hot rows: a decision is one appended row, and
``arm_counts`` aggregates rows at read time (one counter row per
arm capped PostgreSQL near 4,300-5,000 commits/s, plain inserts reached
17,000/s). For the same reason ``decisions`` has no foreign keys: PostgreSQL
checks a foreign key by taking a ``FOR KEY SHARE`` lock on the referenced row,
which turns the experiment's and the favourite arm's rows into hot rows again.
The store checks that the arm exists inside the INSERT instead; experiments
and arms are never deleted, so that check cannot be invalidated later.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = [
    "api_keys",
    "arms",
    "decisions",
    "events",
    "experiments",
    "metadata",
    "snapshots",
    "wave_arms",
    "wave_open_reports",
    "waves",
]

ID = sa.String(32)  # uuid4 hex
Time: sa.Double[float] = sa.Double()

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

experiments = sa.Table(
    "experiments",
    metadata,
    # seq orders experiments created at the same (injected) time: newest first.
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("id", ID, nullable=False, unique=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("policy", sa.String(64), nullable=False),
    sa.Column("policy_settings", sa.JSON, nullable=False),
    sa.Column("alpha_prior", sa.Double, nullable=False),
    sa.Column("beta_prior", sa.Double, nullable=False),
    sa.Column("attribution_window_seconds", sa.Double, nullable=False),
    sa.Column("burn_in_per_arm", sa.Integer, nullable=False),
    # Stored as given (the service validates and uses it); 1.0 for older experiments.
    sa.Column("burn_in_share", sa.Double, nullable=False, server_default=sa.text("1.0")),
    # The open-delay prior, {"median_seconds", "p95_seconds", "weight"}; {} when unset.
    sa.Column("delay_prior", sa.JSON, nullable=False, server_default=sa.text("'{}'")),
    # The inputs of the plan the experiment was created from; NULL: created without one.
    sa.Column("plan", sa.JSON, nullable=True),
    # What a success is (headliner.core.kpi.Kpi); experiments made before KPIs counted opens.
    sa.Column("kpi", sa.String(16), nullable=False, server_default=sa.text("'opens'")),
    sa.Column("floor", sa.Double, nullable=False),
    sa.Column("winner_exploration", sa.Double, nullable=False),
    sa.Column("stopping", sa.JSON, nullable=False),
    sa.Column("winner_arm", sa.Integer, nullable=True),
    sa.Column("winner_reason", sa.Text, nullable=True),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("completed_at", Time, nullable=True),
    # When the current winner was named; NULL: none yet, or named before this was kept.
    sa.Column("winner_declared_at", Time, nullable=True),
)

arms = sa.Table(
    "arms",
    metadata,
    sa.Column("experiment_id", ID, sa.ForeignKey("experiments.id"), primary_key=True),
    sa.Column("arm", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("headline", sa.Text, nullable=False),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("retired_at", Time, nullable=True),
    sa.UniqueConstraint("experiment_id", "headline"),
)

decisions = sa.Table(
    "decisions",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("experiment_id", ID, nullable=False),  # no FK on purpose: see module docstring
    sa.Column("arm", sa.Integer, nullable=False),
    sa.Column("propensity", sa.Double, nullable=False),
    sa.Column("recipient_id", sa.Text, nullable=True),
    sa.Column("idempotency_key", sa.Text, nullable=True),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("outcome", sa.SmallInteger, nullable=True),
    sa.Column("opened_at", Time, nullable=True),
    sa.Column("late", sa.Boolean, nullable=False),
    # NULL keys never clash, so decisions without a key are unconstrained.
    sa.UniqueConstraint("experiment_id", "idempotency_key"),
    # Covers arm_counts: the GROUP BY arm reads only this index (opened_at tells a
    # reported open from an explicit outcome, for the matured cohort).
    sa.Index(
        "ix_decisions_counts", "experiment_id", "arm", "created_at", "outcome", "late", "opened_at"
    ),
)

# Every event a sender reported for a send (an open, a click, a conversion), with
# what its email service provider knew: whether a machine made it, the user agent
# and the address it came from. Kept whether or not it counted toward the KPI; a
# counted one is also the decision's success (``decisions.outcome``/``opened_at``),
# which is what the counts read. No foreign key, as for decisions: the insert
# reads the decision's arm from its row, which must exist.
events = sa.Table(
    "events",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("experiment_id", ID, nullable=False),
    sa.Column("decision_id", ID, nullable=False),
    sa.Column("arm", sa.Integer, nullable=False),
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("machine", sa.Boolean, nullable=False),
    sa.Column("at", Time, nullable=False),
    sa.Column("user_agent", sa.Text, nullable=True),
    sa.Column("proxy_address", sa.String(64), nullable=True),
    sa.Index(None, "experiment_id"),
)

waves = sa.Table(
    "waves",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("experiment_id", ID, sa.ForeignKey("experiments.id"), nullable=False),
    sa.Column("created_at", Time, nullable=False),
    # When the wave's opens were last reported inside its window (None: never).
    sa.Column("reported_at", Time, nullable=True),
    sa.Index(None, "experiment_id", "created_at"),
)

wave_arms = sa.Table(
    "wave_arms",
    metadata,
    sa.Column("wave_id", ID, sa.ForeignKey("waves.id"), primary_key=True),
    sa.Column("arm", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("sends", sa.Integer, nullable=False),
    sa.Column("opens", sa.Integer, nullable=False),
    sa.Column("late_opens", sa.Integer, nullable=False),
    # The last line of defence behind the store's own check.
    sa.CheckConstraint("opens >= 0 AND late_opens >= 0 AND opens + late_opens <= sends", "opens"),
)

# One row per arm whose counted opens rose in a report made inside the wave's
# window: ``opens`` is the increase, ``at`` the report's time. The open-delay
# curve is estimated from these (late increases are not logged).
wave_open_reports = sa.Table(
    "wave_open_reports",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("wave_id", ID, sa.ForeignKey("waves.id"), nullable=False),
    sa.Column("arm", sa.Integer, nullable=False),
    sa.Column("at", Time, nullable=False),
    sa.Column("opens", sa.Integer, nullable=False),
    sa.Index(None, "wave_id"),
)

snapshots = sa.Table(
    "snapshots",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("experiment_id", ID, sa.ForeignKey("experiments.id"), nullable=False),
    sa.Column("at", Time, nullable=False),
    # JSON objects keyed by the arm's position as a string (JSON keys are strings).
    sa.Column("arm_to_p_best", sa.JSON, nullable=False),
    sa.Column("arm_to_allocation", sa.JSON, nullable=False),
    # {arm: [posterior mean, 95% low, 95% high]}, {arm: sends}, burn-in on; NULL in
    # snapshots stored before they were recorded.
    sa.Column("arm_to_estimate", sa.JSON, nullable=True),
    sa.Column("arm_to_sends", sa.JSON, nullable=True),
    sa.Column("burn_in", sa.Boolean, nullable=True),
    sa.Index(None, "experiment_id", "at"),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("id", ID, nullable=False, unique=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("secret_hash", sa.String(128), nullable=False, unique=True),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("revoked_at", Time, nullable=True),
    # "full" or "read" (KeyScope); keys made before scopes existed are full.
    sa.Column("scope", sa.String(16), nullable=False, server_default=sa.text("'full'")),
)
