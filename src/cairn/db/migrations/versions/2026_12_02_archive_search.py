"""archive: search indexes (organisation + newest first) and a trigram index on names

Revision ID: archive_0002
Revises: archive_0001
Create Date: 2026-12-02 06:15:00

Search always filters by organisation and pages newest first: ``(organisation_id, created_at,
id)`` finds a page, and covering indexes over the equality filters count the total without
reading table rows. The name filter is a substring match, which
no B-tree serves: on PostgreSQL a ``pg_trgm`` GIN index on ``lower(name)`` (skipped, with
search still correct but scanning, when the extension cannot be created), on SQLite an FTS5
trigram table kept in step by triggers.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "archive_0002"
down_revision: str | None = "archive_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COMPOSITE = {  # as in cairn.archive.models (copied: a migration must not change later)
    "ix_archive_containers_org_created": ["organisation_id", "created_at", "id"],
    "ix_archive_containers_org_status": [
        "organisation_id",
        "status",
        "storage_id",
        "source_system_id",
    ],
    "ix_archive_containers_org_storage": [
        "organisation_id",
        "storage_id",
        "status",
        "source_system_id",
    ],
    "ix_archive_containers_org_ended": ["organisation_id", "save_type", "archive_until", "status"],
}
NAMES_FTS = "archive_container_names"  # SQLite only; cairn.archive.search reads it
NAMES_GIN = "ix_archive_containers_name_trgm"  # PostgreSQL only

SQLITE_NAMES = [
    f"CREATE VIRTUAL TABLE {NAMES_FTS} USING fts5("
    "container_id UNINDEXED, name, tokenize='trigram')",
    f"INSERT INTO {NAMES_FTS} (container_id, name) SELECT id, name FROM archive_containers",
    f"CREATE TRIGGER {NAMES_FTS}_insert AFTER INSERT ON archive_containers BEGIN "
    f"INSERT INTO {NAMES_FTS} (container_id, name) VALUES (new.id, new.name); END",
    f"CREATE TRIGGER {NAMES_FTS}_delete AFTER DELETE ON archive_containers BEGIN "
    f"DELETE FROM {NAMES_FTS} WHERE container_id = old.id; END",
    f"CREATE TRIGGER {NAMES_FTS}_update AFTER UPDATE OF name ON archive_containers BEGIN "
    f"UPDATE {NAMES_FTS} SET name = new.name WHERE container_id = old.id; END",
]


def _trgm_schema(connection: sa.Connection) -> str | None:
    """The schema holding pg_trgm, creating the extension in ``public`` when it is missing;
    None when this role may not create it (the name filter then scans)."""
    find = sa.text(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
        "WHERE e.extname = 'pg_trgm'"
    )
    schema = connection.scalar(find)
    if schema is None:
        try:
            with connection.begin_nested():
                connection.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public"))
        except sa.exc.DBAPIError:  # no privilege, not installed, or a concurrent create
            pass
        schema = connection.scalar(find)
    return None if schema is None else str(schema)


def upgrade() -> None:
    with op.batch_alter_table("archive_containers", schema=None) as batch_op:
        for name, columns in COMPOSITE.items():
            batch_op.create_index(name, columns, unique=False)
    connection = op.get_bind()
    if connection.dialect.name == "sqlite":
        for statement in SQLITE_NAMES:
            op.execute(statement)
    elif connection.dialect.name == "postgresql":
        schema = _trgm_schema(connection)
        if schema is not None:
            op.execute(
                f"CREATE INDEX {NAMES_GIN} ON archive_containers "
                f'USING gin (lower(name) "{schema}".gin_trgm_ops)'
            )


def downgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name == "sqlite":
        for kind in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS {NAMES_FTS}_{kind}")
        op.execute(f"DROP TABLE IF EXISTS {NAMES_FTS}")
    elif connection.dialect.name == "postgresql":
        op.execute(f"DROP INDEX IF EXISTS {NAMES_GIN}")
    with op.batch_alter_table("archive_containers", schema=None) as batch_op:
        for name in COMPOSITE:
            batch_op.drop_index(name)
