"""The counting index also covers ``decisions.opened_at``.

``arm_counts`` tells a reported open (``opened_at`` set) from an explicit
outcome to find the matured cohort; with the column in the index the GROUP BY
still reads the index alone.

Revision ID: 0002
Revises: 0001
Create Date: 2026-02-01
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD = ["experiment_id", "arm", "created_at", "outcome", "late"]


def upgrade() -> None:
    """Rebuild ix_decisions_counts with opened_at as its last column."""
    op.drop_index("ix_decisions_counts", table_name="decisions")
    op.create_index("ix_decisions_counts", "decisions", [*_OLD, "opened_at"])


def downgrade() -> None:
    """Back to the index of revision 0001."""
    op.drop_index("ix_decisions_counts", table_name="decisions")
    op.create_index("ix_decisions_counts", "decisions", _OLD)
