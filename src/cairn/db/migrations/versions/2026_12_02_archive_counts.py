"""archive: search counts kept by triggers as append-only delta rows

Revision ID: archive_0005
Revises: archive_0004
Create Date: 2026-12-02 18:45:00

``archive_container_counts`` gets ``+1`` / ``-1`` rows from triggers on ``archive_containers``
(insert, delete, and an update of organisation, storage, source system or status), so search
sums a few rows instead of counting up to every container of an organisation. Rows are only
ever inserted by the triggers (no shared counter row to lock: concurrent status changes cannot
deadlock on it); the worker folds them per group (``cairn.archive.counts.compact_counts``).
Existing containers are counted once here.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "archive_0005"
down_revision: str | None = "archive_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNTS = "archive_container_counts"
GROUP = "organisation_id, storage_id, source_system_id, status"
WATCHED = "organisation_id, storage_id, source_system_id, status"


def _row(ref: str, delta: int) -> str:
    return (
        f"INSERT INTO {COUNTS} ({GROUP}, delta) VALUES ({ref}.organisation_id, "
        f"{ref}.storage_id, {ref}.source_system_id, {ref}.status, {delta});"
    )


SQLITE = [
    f"CREATE TRIGGER {COUNTS}_insert AFTER INSERT ON archive_containers BEGIN {_row('new', 1)} END",
    f"CREATE TRIGGER {COUNTS}_delete AFTER DELETE ON archive_containers BEGIN "
    f"{_row('old', -1)} END",
    f"CREATE TRIGGER {COUNTS}_update AFTER UPDATE OF {WATCHED} ON archive_containers "
    "WHEN old.organisation_id IS NOT new.organisation_id OR old.storage_id IS NOT new.storage_id "
    "OR old.source_system_id IS NOT new.source_system_id OR old.status IS NOT new.status "
    f"BEGIN {_row('old', -1)} {_row('new', 1)} END",
]

POSTGRESQL = [
    f"""CREATE FUNCTION {COUNTS}_delta() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND (OLD.organisation_id, OLD.storage_id, OLD.source_system_id,
            OLD.status) IS NOT DISTINCT FROM (NEW.organisation_id, NEW.storage_id,
            NEW.source_system_id, NEW.status) THEN
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN {_row("OLD", -1)} END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN {_row("NEW", 1)} END IF;
    RETURN NULL;
END $$""",
    f"CREATE TRIGGER {COUNTS}_change AFTER INSERT OR DELETE OR UPDATE OF {WATCHED} "
    f"ON archive_containers FOR EACH ROW EXECUTE FUNCTION {COUNTS}_delta()",
]


def upgrade() -> None:
    op.create_table(
        COUNTS,
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("organisation_id", sa.String(length=64), nullable=False),
        sa.Column("storage_id", sa.Integer(), nullable=False),
        sa.Column("source_system_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("delta", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_archive_container_counts")),
    )
    op.create_index(
        "ix_archive_container_counts_group",
        COUNTS,
        ["organisation_id", "status", "storage_id", "source_system_id"],
        unique=False,
    )
    op.execute(
        f"INSERT INTO {COUNTS} ({GROUP}, delta) "
        f"SELECT {GROUP}, count(*) FROM archive_containers GROUP BY {GROUP}"
    )
    dialect = op.get_bind().dialect.name
    for statement in SQLITE if dialect == "sqlite" else POSTGRESQL:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for kind in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS {COUNTS}_{kind}")
    else:
        op.execute(f"DROP TRIGGER IF EXISTS {COUNTS}_change ON archive_containers")
        op.execute(f"DROP FUNCTION IF EXISTS {COUNTS}_delta()")
    op.drop_index("ix_archive_container_counts_group", table_name=COUNTS)
    op.drop_table(COUNTS)
