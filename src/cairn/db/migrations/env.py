"""Alembic environment: the engine comes from cairn, never from an ini file."""

from __future__ import annotations

from alembic import context

import cairn.db.models  # noqa: F401  (registers every area's tables)
from cairn.db.base import Base

engine = context.config.attributes["engine"]


def _managed(name: str | None, type_: str, parent_names: object) -> bool:
    """Autogenerate leaves alone what an area builds by hand (e.g. an SQLite FTS5 table)."""
    return not (type_ in ("table", "index") and name in Base.metadata.info.get("unmanaged", ()))


with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_name=_managed,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
