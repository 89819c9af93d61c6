"""processing: the dispatchers a process adds

Revision ID: processing_0002
Revises: processing_0001
Create Date: 2026-12-02 18:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "processing_0002"
down_revision: str | None = "processing_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable, so existing processes need no rewrite: no dispatchers.
    op.add_column("processing_processes", sa.Column("dispatchers", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("processing_processes") as batch:
        batch.drop_column("dispatchers")
