"""Delay-aware counting: experiment settings, when waves were reported, wave open reports.

* ``experiments.burn_in_share`` (1.0 for existing experiments) and
  ``experiments.delay_prior`` (``{}``: no prior) are stored with the experiment;
* ``waves.reported_at`` is when the wave's opens were last reported inside its
  window (NULL: never, and for every existing wave);
* ``wave_open_reports`` logs each in-window increase of an arm's counted opens
  with its time, the data the open-delay curve is estimated from. Existing
  waves have no such history: their opens so far are not logged.

Revision ID: 0004
Revises: 0003
Create Date: 2026-03-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the three columns (existing rows get their defaults) and the report log."""
    op.add_column(
        "experiments",
        sa.Column("burn_in_share", sa.Double(), nullable=False, server_default=sa.text("1.0")),
    )
    op.add_column(
        "experiments",
        sa.Column("delay_prior", sa.JSON(), nullable=False, server_default=sa.text("'{}'")),
    )
    op.add_column("waves", sa.Column("reported_at", sa.Double(), nullable=True))
    op.create_table(
        "wave_open_reports",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=True),
        sa.Column("wave_id", sa.String(32), nullable=False),
        sa.Column("arm", sa.Integer(), nullable=False),
        sa.Column("at", sa.Double(), nullable=False),
        sa.Column("opens", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_wave_open_reports"),
        sa.ForeignKeyConstraint(
            ["wave_id"], ["waves.id"], name="fk_wave_open_reports_wave_id_waves"
        ),
    )
    op.create_index("ix_wave_open_reports_wave_id", "wave_open_reports", ["wave_id"])


def downgrade() -> None:
    """Drop the log and the three columns (their values are lost).

    ``ALTER TABLE ... DROP COLUMN`` on both databases (SQLite has it since
    3.35) rather than batch mode: rebuilding ``experiments`` or ``waves`` on
    SQLite would drop a table that other tables' rows refer to, which fails
    with foreign keys on once the database holds data.
    """
    op.drop_index("ix_wave_open_reports_wave_id", table_name="wave_open_reports")
    op.drop_table("wave_open_reports")
    op.drop_column("waves", "reported_at")
    op.drop_column("experiments", "delay_prior")
    op.drop_column("experiments", "burn_in_share")
