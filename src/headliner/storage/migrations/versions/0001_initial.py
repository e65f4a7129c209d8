"""Initial schema: experiments, arms, decisions, waves, snapshots, API keys.

Written out by hand to match :mod:`headliner.storage.schema` as of this
revision (a test compares a migrated database with that metadata), so that
later changes to the metadata never rewrite history.

Revision ID: 0001
Revises:
Create Date: 2026-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create every table."""
    op.create_table(
        "experiments",
        sa.Column("seq", sa.Integer(), nullable=False, autoincrement=True),
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("policy", sa.String(64), nullable=False),
        sa.Column("policy_settings", sa.JSON(), nullable=False),
        sa.Column("alpha_prior", sa.Double(), nullable=False),
        sa.Column("beta_prior", sa.Double(), nullable=False),
        sa.Column("attribution_window_seconds", sa.Double(), nullable=False),
        sa.Column("burn_in_per_arm", sa.Integer(), nullable=False),
        sa.Column("floor", sa.Double(), nullable=False),
        sa.Column("winner_exploration", sa.Double(), nullable=False),
        sa.Column("stopping", sa.JSON(), nullable=False),
        sa.Column("winner_arm", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("completed_at", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_experiments"),
        sa.UniqueConstraint("id", name="uq_experiments_id"),
    )
    op.create_table(
        "arms",
        sa.Column("experiment_id", sa.String(32), nullable=False),
        sa.Column("arm", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("headline", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("retired_at", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("experiment_id", "arm", name="pk_arms"),
        sa.ForeignKeyConstraint(
            ["experiment_id"], ["experiments.id"], name="fk_arms_experiment_id_experiments"
        ),
        sa.UniqueConstraint("experiment_id", "headline", name="uq_arms_experiment_id_headline"),
    )
    # No foreign keys on decisions: see headliner.storage.schema.
    op.create_table(
        "decisions",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("experiment_id", sa.String(32), nullable=False),
        sa.Column("arm", sa.Integer(), nullable=False),
        sa.Column("propensity", sa.Double(), nullable=False),
        sa.Column("recipient_id", sa.Text(), nullable=True),
        sa.Column("idempotency_key", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("outcome", sa.SmallInteger(), nullable=True),
        sa.Column("opened_at", sa.Double(), nullable=True),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_decisions"),
        sa.UniqueConstraint(
            "experiment_id",
            "idempotency_key",
            name="uq_decisions_experiment_id_idempotency_key",
        ),
    )
    op.create_index(
        "ix_decisions_counts",
        "decisions",
        ["experiment_id", "arm", "created_at", "outcome", "late"],
    )
    op.create_table(
        "waves",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("experiment_id", sa.String(32), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_waves"),
        sa.ForeignKeyConstraint(
            ["experiment_id"], ["experiments.id"], name="fk_waves_experiment_id_experiments"
        ),
    )
    op.create_index("ix_waves_experiment_id_created_at", "waves", ["experiment_id", "created_at"])
    op.create_table(
        "wave_arms",
        sa.Column("wave_id", sa.String(32), nullable=False),
        sa.Column("arm", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("sends", sa.Integer(), nullable=False),
        sa.Column("opens", sa.Integer(), nullable=False),
        sa.Column("late_opens", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("wave_id", "arm", name="pk_wave_arms"),
        sa.ForeignKeyConstraint(["wave_id"], ["waves.id"], name="fk_wave_arms_wave_id_waves"),
        sa.CheckConstraint(
            "opens >= 0 AND late_opens >= 0 AND opens + late_opens <= sends",
            name="ck_wave_arms_opens",
        ),
    )
    op.create_table(
        "snapshots",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=True),
        sa.Column("experiment_id", sa.String(32), nullable=False),
        sa.Column("at", sa.Double(), nullable=False),
        sa.Column("arm_to_p_best", sa.JSON(), nullable=False),
        sa.Column("arm_to_allocation", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_snapshots"),
        sa.ForeignKeyConstraint(
            ["experiment_id"], ["experiments.id"], name="fk_snapshots_experiment_id_experiments"
        ),
    )
    op.create_index("ix_snapshots_experiment_id_at", "snapshots", ["experiment_id", "at"])
    op.create_table(
        "api_keys",
        sa.Column("seq", sa.Integer(), nullable=False, autoincrement=True),
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("secret_hash", sa.String(128), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("revoked_at", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_api_keys"),
        sa.UniqueConstraint("id", name="uq_api_keys_id"),
        sa.UniqueConstraint("secret_hash", name="uq_api_keys_secret_hash"),
    )


def downgrade() -> None:
    """Drop every table."""
    op.drop_table("api_keys")
    op.drop_index("ix_snapshots_experiment_id_at", table_name="snapshots")
    op.drop_table("snapshots")
    op.drop_table("wave_arms")
    op.drop_index("ix_waves_experiment_id_created_at", table_name="waves")
    op.drop_table("waves")
    op.drop_index("ix_decisions_counts", table_name="decisions")
    op.drop_table("decisions")
    op.drop_table("arms")
    op.drop_table("experiments")
