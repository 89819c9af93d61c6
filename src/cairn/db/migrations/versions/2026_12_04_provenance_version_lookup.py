"""provenance: file versions looked up by organisation and path together (issue #14)

Every recorded run and platform activity looks up the existing versions of its files by
``organisation_id`` and ``path_key``. With one index per column, SQLite (no statistics) chose
the organisation's and read every version the organisation ever recorded, once per 500 paths:
a 10,000-file upload's activity read its organisation's whole history twenty times. The
composite index answers both columns at once and still serves lookups by organisation alone.

Revision ID: provenance_0003
Revises: provenance_0002
Create Date: 2026-12-04
"""

from collections.abc import Sequence

from alembic import op

revision: str = "provenance_0003"
down_revision: str | None = "provenance_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_prov_file_versions_organisation_path",
        "prov_file_versions",
        ["organisation_id", "path_key"],
        unique=False,
    )
    op.drop_index("ix_prov_file_versions_organisation_id", table_name="prov_file_versions")


def downgrade() -> None:
    op.create_index(
        "ix_prov_file_versions_organisation_id",
        "prov_file_versions",
        ["organisation_id"],
        unique=False,
    )
    op.drop_index("ix_prov_file_versions_organisation_path", table_name="prov_file_versions")
