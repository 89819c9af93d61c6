"""archive: storage-plugin path on containers, and the plugin tasks (store, post-process)

Revision ID: archive_0003
Revises: archive_0002
Create Date: 2026-12-02 06:35:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cairn.db.base

revision: str = "archive_0003"
down_revision: str | None = "archive_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Added without batch mode: on SQLite a table rebuild would drop archive_0002's triggers.
    op.add_column(
        "archive_containers", sa.Column("document_path", sa.String(length=2000), nullable=True)
    )
    op.create_table(
        "archive_plugin_tasks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("container_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("plugin_name", sa.String(length=200), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_at", cairn.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("lease_until", cairn.db.base.UtcDateTime(timezone=True), nullable=True),
        sa.Column("done_at", cairn.db.base.UtcDateTime(timezone=True), nullable=True),
        sa.Column("gave_up", sa.Boolean(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["container_id"],
            ["archive_containers.id"],
            name=op.f("fk_archive_plugin_tasks_container_id_archive_containers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_archive_plugin_tasks")),
        sa.UniqueConstraint(
            "container_id", "kind", "plugin_name", name=op.f("uq_archive_plugin_tasks_container_id")
        ),
    )
    op.create_index(
        op.f("ix_archive_plugin_tasks_container_id"), "archive_plugin_tasks", ["container_id"]
    )
    op.create_index(op.f("ix_archive_plugin_tasks_next_at"), "archive_plugin_tasks", ["next_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_archive_plugin_tasks_next_at"), table_name="archive_plugin_tasks")
    op.drop_index(op.f("ix_archive_plugin_tasks_container_id"), table_name="archive_plugin_tasks")
    op.drop_table("archive_plugin_tasks")
    op.drop_column("archive_containers", "document_path")
