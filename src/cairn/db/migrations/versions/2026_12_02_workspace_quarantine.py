"""workspace quarantine: the files rules removed or changes replaced (issue #13, section 3)

Revision ID: workspaces_quarantine
Revises: workspaces_checkpoints
Create Date: 2026-12-02 06:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cairn.db.base

revision: str = "workspaces_quarantine"
down_revision: str | None = "workspaces_checkpoints"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "workspace_removed_files",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("public_path", sa.String(length=1024), nullable=False),
        sa.Column("rule", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("removed_at", cairn.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("removed_by", sa.String(length=64), nullable=True),
        sa.Column("sha256", cairn.db.base.BlobHash(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("file_type", sa.String(length=32), nullable=False),
        sa.Column("modified_at", cairn.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_workspace_removed_files_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workspace_removed_files")),
    )
    with op.batch_alter_table("workspace_removed_files", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_workspace_removed_files_workspace_id"), ["workspace_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("workspace_removed_files", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_workspace_removed_files_workspace_id"))
    op.drop_table("workspace_removed_files")
