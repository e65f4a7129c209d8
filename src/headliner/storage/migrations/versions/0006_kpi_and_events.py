"""An experiment's KPI, and every event a sender reports: ``experiments.kpi``, ``events``.

* ``experiments.kpi`` says what a success is (``opens``, ``clicks`` or
  ``conversions``); every existing experiment counted opens, so it gets
  ``'opens'``;
* ``events`` stores each reported open, click or conversion of a send with
  what the email service provider knew (a machine made it, its user agent,
  the proxy's address), counted toward the KPI or not. Existing opens were
  recorded on their decisions only and have no events.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the column (existing experiments count opens) and the events table."""
    op.add_column(
        "experiments",
        sa.Column("kpi", sa.String(16), nullable=False, server_default=sa.text("'opens'")),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("experiment_id", sa.String(32), nullable=False),
        sa.Column("decision_id", sa.String(32), nullable=False),
        sa.Column("arm", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("machine", sa.Boolean(), nullable=False),
        sa.Column("at", sa.Double(), nullable=False),
        sa.Column("user_agent", sa.Text(), nullable=True),
        sa.Column("proxy_address", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
    )
    op.create_index("ix_events_experiment_id", "events", ["experiment_id"])


def downgrade() -> None:
    """Drop the table and the column (stored events and KPIs are lost).

    ``DROP COLUMN`` rather than batch mode, as in 0004's downgrade.
    """
    op.drop_index("ix_events_experiment_id", table_name="events")
    op.drop_table("events")
    op.drop_column("experiments", "kpi")
