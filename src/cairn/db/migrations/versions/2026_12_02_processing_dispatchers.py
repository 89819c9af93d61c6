"""processing: the dispatchers a process adds, and the DEM sources Elevation clips

Revision ID: processing_0002
Revises: processing_0001
Create Date: 2026-12-02 18:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cairn.db.base

revision: str = "processing_0002"
down_revision: str | None = "processing_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable, so existing processes need no rewrite: no dispatchers.
    op.add_column("processing_processes", sa.Column("dispatchers", sa.JSON(), nullable=True))
    op.create_table(
        "processing_dem_sources",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("crs", sa.Text(), nullable=False),
        sa.Column("west", sa.Float(), nullable=False),
        sa.Column("south", sa.Float(), nullable=False),
        sa.Column("east", sa.Float(), nullable=False),
        sa.Column("north", sa.Float(), nullable=False),
        sa.Column("created_at", cairn.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_processing_dem_sources")),
        sa.UniqueConstraint("name", name=op.f("uq_processing_dem_sources_name")),
    )


def downgrade() -> None:
    op.drop_table("processing_dem_sources")
    with op.batch_alter_table("processing_processes") as batch:
        batch.drop_column("dispatchers")
