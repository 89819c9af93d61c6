"""xmldb: value index definitions

Revision ID: xmldb_0002
Revises: xmldb_0001
Create Date: 2026-12-02 13:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cairn.db.base

revision: str = "xmldb_0002"
down_revision: str | None = "xmldb_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "xml_indexes",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("database_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("key_type", sa.String(length=32), nullable=False),
        sa.Column("created_at", cairn.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["database_id"],
            ["xml_databases.id"],
            name=op.f("fk_xml_indexes_database_id_xml_databases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_xml_indexes")),
        sa.UniqueConstraint("database_id", "name", name=op.f("uq_xml_indexes_database_id")),
    )
    with op.batch_alter_table("xml_indexes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_xml_indexes_database_id"), ["database_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("xml_indexes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_xml_indexes_database_id"))
    op.drop_table("xml_indexes")
