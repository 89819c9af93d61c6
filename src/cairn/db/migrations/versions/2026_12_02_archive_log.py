"""archive: the transparency log (per-organisation RFC 9162 Merkle tree of container events), fixity

Revision ID: archive_0004
Revises: archive_0003
Create Date: 2026-12-02 13:20:00

Events get their leaf index and exact leaf input; ``archive_log_heads`` holds each log's size
(the row that orders concurrent appends) and ``archive_log_nodes`` every complete perfect
subtree. Events recorded before this revision have no leaf. Containers get ``fixity_at``, when
their stored objects were last re-hashed.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cairn.db.base

revision: str = "archive_0004"
down_revision: str | None = "archive_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain add_column (no batch mode): archive_events has no triggers, but keep to one way.
    op.add_column("archive_events", sa.Column("log_index", sa.BigInteger(), nullable=True))
    op.add_column("archive_events", sa.Column("log_entry", sa.Text(), nullable=True))
    # Never batch mode on archive_containers: a rebuild drops archive_0002's FTS triggers.
    op.add_column(
        "archive_containers",
        sa.Column("fixity_at", cairn.db.base.UtcDateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "archive_log_heads",
        sa.Column("organisation_id", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_archive_log_heads_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organisation_id", name=op.f("pk_archive_log_heads")),
    )
    op.create_table(
        "archive_log_nodes",
        sa.Column("organisation_id", sa.String(length=64), nullable=False),
        sa.Column("node", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_archive_log_nodes_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organisation_id", "node", name=op.f("pk_archive_log_nodes")),
    )


def downgrade() -> None:
    op.drop_table("archive_log_nodes")
    op.drop_table("archive_log_heads")
    op.drop_column("archive_containers", "fixity_at")
    op.drop_column("archive_events", "log_entry")
    op.drop_column("archive_events", "log_index")
