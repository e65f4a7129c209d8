"""``experiments.winner_reason``: why the winner was named, recorded when it was.

The stopping rule's criteria change as data keeps arriving, so the report
cannot recompute why a winner was declared; it reads what was stored then.

Revision ID: 0003
Revises: 0002
Create Date: 2026-02-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the nullable column (existing experiments have no recorded reason)."""
    op.add_column("experiments", sa.Column("winner_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    """Drop the column (batch mode: SQLite rebuilds the table)."""
    with op.batch_alter_table("experiments") as batch:
        batch.drop_column("winner_reason")
