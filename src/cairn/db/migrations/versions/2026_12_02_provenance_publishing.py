"""provenance: a run's editable metadata and its published versions (issue #14, publishing)

Revision ID: provenance_0002
Revises: provenance_0001
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cairn.db.base

revision: str = "provenance_0002"
down_revision: str | None = "provenance_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("prov_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("science_metadata", sa.Text(), nullable=True))
    op.create_table(
        "prov_publications",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("run_seq", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("previous_id", sa.String(length=36), nullable=True),
        sa.Column("science_metadata", sa.Text(), nullable=False),
        sa.Column("package_sha256", sa.String(length=64), nullable=False),
        sa.Column("doi", sa.String(length=256), nullable=True),
        sa.Column("created_at", cairn.db.base.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["run_seq"], ["prov_runs.seq"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["previous_id"], ["prov_publications.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("prov_publications", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_prov_publications_run_seq"), ["run_seq"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("prov_publications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_prov_publications_run_seq"))
    op.drop_table("prov_publications")
    with op.batch_alter_table("prov_runs", schema=None) as batch_op:
        batch_op.drop_column("science_metadata")
