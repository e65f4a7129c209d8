"""What the dashboard shows: estimates in snapshots, the declaration time, read-only keys.

* ``snapshots.arm_to_estimate`` (each active headline's posterior mean and 95%
  interval), ``snapshots.arm_to_sends`` and ``snapshots.burn_in``: the rate
  band over time and the burn-in marker. Nullable: older snapshots have none.
* ``experiments.winner_declared_at``: when the winner was named (the stopping
  rule declares long before anyone completes the experiment, so
  ``completed_at`` cannot tell). NULL for every existing experiment.
* ``api_keys.scope``: ``full`` (every existing key) or ``read``.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the nullable columns, and the scope with every existing key full."""
    op.add_column("snapshots", sa.Column("arm_to_estimate", sa.JSON(), nullable=True))
    op.add_column("snapshots", sa.Column("arm_to_sends", sa.JSON(), nullable=True))
    op.add_column("snapshots", sa.Column("burn_in", sa.Boolean(), nullable=True))
    op.add_column("experiments", sa.Column("winner_declared_at", sa.Double(), nullable=True))
    op.add_column(
        "api_keys",
        sa.Column("scope", sa.String(16), nullable=False, server_default=sa.text("'full'")),
    )


def downgrade() -> None:
    """Drop the columns (their values are lost).

    Read-only keys are revoked first: without a scope, the older schema would
    let them write. ``ALTER TABLE ... DROP COLUMN`` rather than batch mode, as
    in 0004: rebuilding ``experiments`` on SQLite would drop a table that
    other tables' rows refer to.
    """
    op.execute(
        "UPDATE api_keys SET revoked_at = created_at WHERE scope = 'read' AND revoked_at IS NULL"
    )
    op.drop_column("api_keys", "scope")
    op.drop_column("experiments", "winner_declared_at")
    op.drop_column("snapshots", "burn_in")
    op.drop_column("snapshots", "arm_to_sends")
    op.drop_column("snapshots", "arm_to_estimate")
