"""API tokens expire.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this migration (tokens made before it never expire: rotate them)."""
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(sa.Column("expires_at", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    """Undo this migration."""
    with op.batch_alter_table("tokens") as batch:
        batch.drop_column("expires_at")
