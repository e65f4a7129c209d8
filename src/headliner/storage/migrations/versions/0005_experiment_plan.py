"""The plan an experiment was created from: ``experiments.plan``.

A JSON column holding the plan's inputs (``headliner plan``'s scenario), so
that what was planned can later be set beside what ran; NULL for an
experiment created without a plan, and for every existing one.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the nullable column (existing experiments have no plan)."""
    op.add_column("experiments", sa.Column("plan", sa.JSON(), nullable=True))


def downgrade() -> None:
    """Drop the column (stored plans are lost), as 0004's downgrade drops its columns."""
    op.drop_column("experiments", "plan")
