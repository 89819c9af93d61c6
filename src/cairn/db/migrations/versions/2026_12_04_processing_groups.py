"""processing: split groups (group_id, group_index, group_count) and their aggregator

Revision ID: processing_0004
Revises: processing_0003
Create Date: 2026-12-04 03:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "processing_0004"
down_revision: str | None = "processing_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing executions are no group's members: nullable group fields, false flags.
    with op.batch_alter_table("processing_executions") as batch:
        batch.add_column(sa.Column("group_id", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("group_index", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("group_count", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("aggregator", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(
            sa.Column("waiting", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(
            sa.Column("group_notified", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.create_index("ix_processing_executions_group_id", ["group_id"])


def downgrade() -> None:
    with op.batch_alter_table("processing_executions") as batch:
        batch.drop_index("ix_processing_executions_group_id")
        for column in ("group_notified", "waiting", "aggregator", "group_count", "group_index"):
            batch.drop_column(column)
        batch.drop_column("group_id")
