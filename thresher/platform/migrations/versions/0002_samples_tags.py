"""Samples and tags.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this migration."""
    op.create_table(
        "samples",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("dataset_id", sa.String(length=24), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("file_name", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dataset_id", "file_name", name="uq_samples_dataset_file_name"),
        sa.UniqueConstraint("dataset_id", "position", name="uq_samples_dataset_position"),
    )
    op.create_table(
        "tags",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("dataset_id", sa.String(length=24), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("prev_tag_id", sa.String(length=24), nullable=True),
        sa.Column("bit_mask_data", sa.Text(), nullable=False),
        sa.Column("tot_size", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(length=24), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("last_modified_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dataset_id", "name", name="uq_tags_dataset_name"),
    )
    op.create_index(op.f("ix_tags_run_id"), "tags", ["run_id"], unique=False)


def downgrade() -> None:
    """Undo this migration."""
    op.drop_index(op.f("ix_tags_run_id"), table_name="tags")
    op.drop_table("tags")
    op.drop_table("samples")
