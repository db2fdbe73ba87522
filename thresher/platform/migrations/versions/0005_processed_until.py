"""Datasets remember until when their datasource was processed (Lightly's processedUntilTimestamp).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this migration (existing datasets start at 0: nothing processed yet)."""
    with op.batch_alter_table("datasets") as batch:
        batch.add_column(sa.Column("processed_until", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    """Undo this migration."""
    with op.batch_alter_table("datasets") as batch:
        batch.drop_column("processed_until")
