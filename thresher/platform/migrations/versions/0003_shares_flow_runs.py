"""Dataset shares, and the Prefect flow run behind each run.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this migration."""
    op.create_table(
        "dataset_shares",
        sa.Column("dataset_id", sa.String(length=24), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("access_type", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("dataset_id", "email"),
    )
    op.create_index(op.f("ix_dataset_shares_email"), "dataset_shares", ["email"], unique=False)
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("prefect_flow_run_id", sa.String(length=36), nullable=True))


def downgrade() -> None:
    """Undo this migration."""
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("prefect_flow_run_id")
    op.drop_index(op.f("ix_dataset_shares_email"), table_name="dataset_shares")
    op.drop_table("dataset_shares")
