"""processing

Revision ID: processing_0001
Revises: 0002
Create Date: 2026-12-01 22:42:19.704234
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cairn.db.base

revision: str = "processing_0001"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = ("processing",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Written from the models in cairn.processing.models and reviewed by hand.
    op.create_table(
        "processing_used_urls",
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("used_at", cairn.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("nonce", name=op.f("pk_processing_used_urls")),
    )
    op.create_table(
        "processing_data",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("organisation_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("file_type", sa.String(length=40), nullable=True),
        sa.Column("execution_id", sa.String(length=64), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=True),
        sa.Column("created_at", cairn.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", cairn.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_processing_data_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_processing_data_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_processing_data")),
    )
    with op.batch_alter_table("processing_data", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_processing_data_execution_id"), ["execution_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_processing_data_organisation_id"), ["organisation_id"], unique=False
        )

    op.create_table(
        "processing_processes",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("organisation_id", sa.String(length=64), nullable=False),
        sa.Column("service_id", sa.String(length=64), nullable=False),
        sa.Column("ssd_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("run_type", sa.String(length=20), nullable=False),
        sa.Column("repeat_count", sa.Integer(), nullable=False),
        sa.Column("repeat_start", cairn.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("repeat_end", cairn.db.base.UtcDateTime(timezone=True), nullable=True),
        sa.Column("output_storage_period", sa.Integer(), nullable=False),
        sa.Column("price", sa.Integer(), nullable=False),
        sa.Column("process_status", sa.String(length=16), nullable=False),
        sa.Column("process_status_at", cairn.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("has_executed", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=True),
        sa.Column("created_at", cairn.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", cairn.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_processing_processes_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_processing_processes_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_processing_processes")),
    )
    with op.batch_alter_table("processing_processes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_processing_processes_organisation_id"), ["organisation_id"], unique=False
        )

    op.create_table(
        "processing_data_files",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("organisation_id", sa.String(length=64), nullable=False),
        sa.Column("data_id", sa.String(length=64), nullable=False),
        sa.Column("file_name", sa.String(length=500), nullable=False),
        sa.Column("file_type", sa.String(length=40), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("sha256", cairn.db.base.BlobHash(length=64), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("analysis", sa.JSON(), nullable=True),
        sa.Column("upload_expires_at", cairn.db.base.UtcDateTime(timezone=True), nullable=True),
        sa.Column("created_at", cairn.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", cairn.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["data_id"],
            ["processing_data.id"],
            name=op.f("fk_processing_data_files_data_id_processing_data"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_processing_data_files_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_processing_data_files")),
    )
    with op.batch_alter_table("processing_data_files", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_processing_data_files_data_id"), ["data_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_processing_data_files_organisation_id"),
            ["organisation_id"],
            unique=False,
        )

    op.create_table(
        "processing_executions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("organisation_id", sa.String(length=64), nullable=False),
        sa.Column("process_id", sa.String(length=64), nullable=False),
        sa.Column("service_id", sa.String(length=64), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("price", sa.Integer(), nullable=False),
        sa.Column("progress", sa.Integer(), nullable=False),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.Column("stopped", sa.Boolean(), nullable=False),
        sa.Column("abort", sa.Boolean(), nullable=False),
        sa.Column("abort_reason", sa.Text(), nullable=True),
        sa.Column("started_at", cairn.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", cairn.db.base.UtcDateTime(timezone=True), nullable=True),
        sa.Column("delete_expiry", cairn.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("created_at", cairn.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", cairn.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_processing_executions_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["process_id"],
            ["processing_processes.id"],
            name=op.f("fk_processing_executions_process_id_processing_processes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_processing_executions")),
    )
    with op.batch_alter_table("processing_executions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_processing_executions_organisation_id"),
            ["organisation_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_processing_executions_process_id"), ["process_id"], unique=False
        )

    op.create_table(
        "processing_components",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("organisation_id", sa.String(length=64), nullable=False),
        sa.Column("execution_id", sa.String(length=64), nullable=False),
        sa.Column("process_id", sa.String(length=64), nullable=False),
        sa.Column("service_id", sa.String(length=64), nullable=False),
        sa.Column("chain_index", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("started_at", cairn.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", cairn.db.base.UtcDateTime(timezone=True), nullable=True),
        sa.Column("runtime", sa.Integer(), nullable=True),
        sa.Column("cpu", sa.Float(), nullable=False),
        sa.Column("memory", sa.BigInteger(), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("outputs", sa.JSON(), nullable=False),
        sa.Column("success", sa.Boolean(), nullable=True),
        sa.Column("created_at", cairn.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", cairn.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["execution_id"],
            ["processing_executions.id"],
            name=op.f("fk_processing_components_execution_id_processing_executions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_processing_components_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_processing_components")),
    )
    with op.batch_alter_table("processing_components", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_processing_components_execution_id"), ["execution_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_processing_components_organisation_id"),
            ["organisation_id"],
            unique=False,
        )

    op.create_table(
        "processing_component_logs",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("component_id", sa.String(length=64), nullable=False),
        sa.Column("logged_at", cairn.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created_at", cairn.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["component_id"],
            ["processing_components.id"],
            name=op.f("fk_processing_component_logs_component_id_processing_components"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_processing_component_logs")),
    )
    with op.batch_alter_table("processing_component_logs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_processing_component_logs_component_id"), ["component_id"], unique=False
        )


def downgrade() -> None:
    # Written from the models in cairn.processing.models and reviewed by hand.
    with op.batch_alter_table("processing_component_logs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_processing_component_logs_component_id"))

    op.drop_table("processing_component_logs")
    with op.batch_alter_table("processing_components", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_processing_components_organisation_id"))
        batch_op.drop_index(batch_op.f("ix_processing_components_execution_id"))

    op.drop_table("processing_components")
    with op.batch_alter_table("processing_executions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_processing_executions_process_id"))
        batch_op.drop_index(batch_op.f("ix_processing_executions_organisation_id"))

    op.drop_table("processing_executions")
    with op.batch_alter_table("processing_data_files", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_processing_data_files_organisation_id"))
        batch_op.drop_index(batch_op.f("ix_processing_data_files_data_id"))

    op.drop_table("processing_data_files")
    with op.batch_alter_table("processing_processes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_processing_processes_organisation_id"))

    op.drop_table("processing_processes")
    with op.batch_alter_table("processing_data", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_processing_data_organisation_id"))
        batch_op.drop_index(batch_op.f("ix_processing_data_execution_id"))

    op.drop_table("processing_data")
    op.drop_table("processing_used_urls")
