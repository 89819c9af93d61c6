"""xmldb: databases, collections and documents

Revision ID: xmldb_0001
Revises: 0002
Create Date: 2026-12-01 22:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cairn.db.base

revision: str = "xmldb_0001"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = ("xmldb",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "xml_databases",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("organisation_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", cairn.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_xml_databases_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_xml_databases")),
        sa.UniqueConstraint("organisation_id", name=op.f("uq_xml_databases_organisation_id")),
    )
    op.create_table(
        "xml_collections",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("database_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("created_at", cairn.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["database_id"],
            ["xml_databases.id"],
            name=op.f("fk_xml_collections_database_id_xml_databases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_xml_collections")),
        sa.UniqueConstraint("database_id", "name", name=op.f("uq_xml_collections_database_id")),
    )
    with op.batch_alter_table("xml_collections", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_xml_collections_database_id"), ["database_id"], unique=False
        )
    op.create_table(
        "xml_documents",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("database_id", sa.String(length=64), nullable=False),
        sa.Column("collection_id", sa.String(length=64), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("sha256", cairn.db.base.BlobHash(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("node_count", sa.BigInteger(), nullable=False),
        sa.Column("first_node_id", sa.BigInteger(), nullable=False),
        sa.Column("next_node_id", sa.BigInteger(), nullable=False),
        sa.Column("node_ids_sha256", cairn.db.base.BlobHash(length=64), nullable=True),
        sa.Column("created_at", cairn.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("modified_at", cairn.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["collection_id"],
            ["xml_collections.id"],
            name=op.f("fk_xml_documents_collection_id_xml_collections"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["database_id"],
            ["xml_databases.id"],
            name=op.f("fk_xml_documents_database_id_xml_databases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_xml_documents")),
        sa.UniqueConstraint("database_id", "name", name=op.f("uq_xml_documents_database_id")),
    )
    with op.batch_alter_table("xml_documents", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_xml_documents_collection_id"), ["collection_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_xml_documents_database_id"), ["database_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("xml_documents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_xml_documents_database_id"))
        batch_op.drop_index(batch_op.f("ix_xml_documents_collection_id"))
    op.drop_table("xml_documents")
    with op.batch_alter_table("xml_collections", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_xml_collections_database_id"))
    op.drop_table("xml_collections")
    op.drop_table("xml_databases")
