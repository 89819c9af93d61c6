"""workspace checkpoints: saved file sets of a workspace, sharing its blobs (issue #13, section 4)

Revision ID: workspaces_checkpoints
Revises: 0002
Create Date: 2026-12-01 22:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cairn.db.base

revision: str = "workspaces_checkpoints"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "workspace_checkpoints",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("checksum", sa.String(length=64), nullable=False),
        sa.Column("file_count", sa.Integer(), nullable=False),
        sa.Column("total_size", sa.BigInteger(), nullable=False),
        sa.Column("created_at", cairn.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=True),
        sa.Column("package_sha256", cairn.db.base.BlobHash(length=64), nullable=True),
        sa.Column("package_size", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_workspace_checkpoints_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workspace_checkpoints")),
        sa.UniqueConstraint(
            "workspace_id", "checksum", name=op.f("uq_workspace_checkpoints_workspace_id")
        ),
    )
    with op.batch_alter_table("workspace_checkpoints", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_workspace_checkpoints_workspace_id"), ["workspace_id"], unique=False
        )

    op.create_table(
        "workspace_checkpoint_files",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("checkpoint_id", sa.String(length=64), nullable=False),
        sa.Column("public_path", sa.String(length=1024), nullable=False),
        sa.Column("sha256", cairn.db.base.BlobHash(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("file_type", sa.String(length=32), nullable=False),
        sa.Column("modified_at", cairn.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["checkpoint_id"],
            ["workspace_checkpoints.id"],
            name=op.f("fk_workspace_checkpoint_files_checkpoint_id_workspace_checkpoints"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workspace_checkpoint_files")),
        sa.UniqueConstraint(
            "checkpoint_id",
            "public_path",
            name=op.f("uq_workspace_checkpoint_files_checkpoint_id"),
        ),
    )
    with op.batch_alter_table("workspace_checkpoint_files", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_workspace_checkpoint_files_checkpoint_id"),
            ["checkpoint_id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("workspace_checkpoint_files", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_workspace_checkpoint_files_checkpoint_id"))
    op.drop_table("workspace_checkpoint_files")
    with op.batch_alter_table("workspace_checkpoints", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_workspace_checkpoints_workspace_id"))
    op.drop_table("workspace_checkpoints")
