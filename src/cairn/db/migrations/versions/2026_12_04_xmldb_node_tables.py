"""xmldb: saved node tables, database generation

Revision ID: xmldb_0003
Revises: xmldb_0002
Create Date: 2026-12-04 03:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cairn.db.base

revision: str = "xmldb_0003"
down_revision: str | None = "xmldb_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("xml_databases", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("generation", sa.Integer(), server_default="0", nullable=False)
        )
    with op.batch_alter_table("xml_documents", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("records_sha256", cairn.db.base.BlobHash(length=64), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("xml_databases", schema=None) as batch_op:
        batch_op.drop_column("generation")
    with op.batch_alter_table("xml_documents", schema=None) as batch_op:
        batch_op.drop_column("records_sha256")
