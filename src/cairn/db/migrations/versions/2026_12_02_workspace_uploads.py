"""workspace uploads: unfinished resumable (tus 1.0) uploads (issue #13, section 7)

Revision ID: workspaces_tus
Revises: workspaces_quarantine
Create Date: 2026-12-02 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cairn.db.base

revision: str = "workspaces_tus"
down_revision: str | None = "workspaces_quarantine"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "workspace_uploads",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("organisation_id", sa.String(length=64), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=True),
        sa.Column("upload_length", sa.BigInteger(), nullable=False),
        sa.Column("upload_offset", sa.BigInteger(), nullable=False),
        sa.Column("upload_metadata", sa.Text(), nullable=False),
        sa.Column("expires_at", cairn.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("created_at", cairn.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_workspace_uploads_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_workspace_uploads_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workspace_uploads")),
    )
    with op.batch_alter_table("workspace_uploads", schema=None) as batch_op:
        for column in ("organisation_id", "workspace_id", "expires_at"):
            batch_op.create_index(
                batch_op.f(f"ix_workspace_uploads_{column}"), [column], unique=False
            )


def downgrade() -> None:
    with op.batch_alter_table("workspace_uploads", schema=None) as batch_op:
        for column in ("expires_at", "workspace_id", "organisation_id"):
            batch_op.drop_index(batch_op.f(f"ix_workspace_uploads_{column}"))
    op.drop_table("workspace_uploads")
