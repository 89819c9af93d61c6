"""processing: schedules, the scheduler's lease, daily storage charges, expiry warnings

Revision ID: processing_0003
Revises: processing_0002
Create Date: 2026-12-04 03:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cairn.db.base

revision: str = "processing_0003"
down_revision: str | None = "processing_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = cairn.db.base.UtcDateTime(timezone=True)


def upgrade() -> None:
    # Nullable (or defaulted), so existing processes need no rewrite: run once, not armed.
    with op.batch_alter_table("processing_processes") as batch:
        batch.add_column(sa.Column("repeat_gap", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("repeat_offset", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("cron", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("next_due_at", UTC, nullable=True))
        batch.add_column(sa.Column("runs_done", sa.Integer(), nullable=False, server_default="0"))
        batch.create_index("ix_processing_processes_next_due_at", ["next_due_at"])
    with op.batch_alter_table("processing_executions") as batch:
        batch.add_column(sa.Column("expiry_warned_at", UTC, nullable=True))
    op.create_table(
        "processing_leases",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("expires_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_processing_leases")),
    )
    op.create_table(
        "processing_daily_runs",
        sa.Column("job", sa.String(length=40), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("organisation_id", sa.String(length=64), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_processing_daily_runs_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "job", "day", "organisation_id", name=op.f("pk_processing_daily_runs")
        ),
    )
    op.create_table(
        "processing_credit_states",
        sa.Column("organisation_id", sa.String(length=64), nullable=False),
        sa.Column("negative_since", UTC, nullable=True),
        sa.Column("warned_at", UTC, nullable=True),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_processing_credit_states_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organisation_id", name=op.f("pk_processing_credit_states")),
    )


def downgrade() -> None:
    op.drop_table("processing_credit_states")
    op.drop_table("processing_daily_runs")
    op.drop_table("processing_leases")
    with op.batch_alter_table("processing_executions") as batch:
        batch.drop_column("expiry_warned_at")
    with op.batch_alter_table("processing_processes") as batch:
        batch.drop_index("ix_processing_processes_next_due_at")
        for column in ("runs_done", "next_due_at", "cron", "repeat_offset", "repeat_gap"):
            batch.drop_column(column)
