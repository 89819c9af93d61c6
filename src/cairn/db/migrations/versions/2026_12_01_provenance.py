"""provenance: recorded runs, their tags, file versions and used/generated edges (issue #14)

The first revision of the provenance branch. Every index is created in batch mode, so the same
file runs on SQLite and PostgreSQL.

Revision ID: provenance_0001
Revises: 0002
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cairn.db.base

revision: str = "provenance_0001"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = ("provenance",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "prov_file_versions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("organisation_id", sa.String(length=64), nullable=True),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("path_key", sa.String(length=64), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("modified_at", cairn.db.base.UtcDateTime(timezone=True), nullable=True),
        sa.Column("created_at", cairn.db.base.UtcDateTime(timezone=True), nullable=True),
        sa.Column("archived_sha256", cairn.db.base.BlobHash(length=64), nullable=True),
        sa.Column("flagged", sa.String(length=256), nullable=True),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_prov_file_versions_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prov_file_versions")),
    )
    with op.batch_alter_table("prov_file_versions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_prov_file_versions_organisation_id"), ["organisation_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_prov_file_versions_path_key"), ["path_key"], unique=False
        )
        batch_op.create_index(
            "ix_prov_file_versions_sha256_ctime", ["sha256", "created_at"], unique=False
        )

    op.create_table(
        "prov_runs",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("organisation_id", sa.String(length=64), nullable=True),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("script", sa.Text(), nullable=True),
        sa.Column("script_sha256", sa.String(length=64), nullable=True),
        sa.Column("arguments", sa.Text(), nullable=False),
        sa.Column("cwd", sa.Text(), nullable=True),
        sa.Column("started_at", cairn.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", cairn.db.base.UtcDateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("traceback", sa.Text(), nullable=True),
        sa.Column("username", sa.String(length=256), nullable=True),
        sa.Column("host", sa.String(length=256), nullable=True),
        sa.Column("os", sa.String(length=256), nullable=True),
        sa.Column("interpreter", sa.Text(), nullable=True),
        sa.Column("interpreter_version", sa.String(length=256), nullable=True),
        sa.Column("packages", sa.Text(), nullable=False),
        sa.Column("console_log", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_prov_runs_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_prov_runs")),
        sa.UniqueConstraint("id", name=op.f("uq_prov_runs_id")),
    )
    with op.batch_alter_table("prov_runs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_prov_runs_organisation_id"), ["organisation_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_prov_runs_started_at"), ["started_at"], unique=False)

    op.create_table(
        "prov_edges",
        sa.Column("run_seq", sa.Integer(), nullable=False),
        sa.Column("file_id", sa.Integer(), nullable=False),
        sa.Column("access", sa.String(length=8), nullable=False),
        sa.Column("at", cairn.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["file_id"],
            ["prov_file_versions.id"],
            name=op.f("fk_prov_edges_file_id_prov_file_versions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_seq"],
            ["prov_runs.seq"],
            name=op.f("fk_prov_edges_run_seq_prov_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_seq", "file_id", "access", name=op.f("pk_prov_edges")),
    )
    with op.batch_alter_table("prov_edges", schema=None) as batch_op:
        batch_op.create_index("ix_prov_edges_file_id_access", ["file_id", "access"], unique=False)

    op.create_table(
        "prov_run_tags",
        sa.Column("run_seq", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(length=256), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_seq"],
            ["prov_runs.seq"],
            name=op.f("fk_prov_run_tags_run_seq_prov_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_seq", "tag", name=op.f("pk_prov_run_tags")),
    )


def downgrade() -> None:
    op.drop_table("prov_run_tags")
    with op.batch_alter_table("prov_edges", schema=None) as batch_op:
        batch_op.drop_index("ix_prov_edges_file_id_access")

    op.drop_table("prov_edges")
    with op.batch_alter_table("prov_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_prov_runs_started_at"))
        batch_op.drop_index(batch_op.f("ix_prov_runs_organisation_id"))

    op.drop_table("prov_runs")
    with op.batch_alter_table("prov_file_versions", schema=None) as batch_op:
        batch_op.drop_index("ix_prov_file_versions_sha256_ctime")
        batch_op.drop_index(batch_op.f("ix_prov_file_versions_path_key"))
        batch_op.drop_index(batch_op.f("ix_prov_file_versions_organisation_id"))

    op.drop_table("prov_file_versions")
