"""Run Alembic migrations programmatically and find every blob the database references."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from cairn.db.base import Base, BlobHash

__all__ = ["alembic_config", "migrate", "referenced_blobs"]

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def migrate(engine: Engine, revision: str = "heads") -> None:
    """Upgrade the database to ``revision`` (every area's newest); safe to run on every start.

    Each area keeps its own branch of revisions, rooted on the core's (``0002``) and named by
    its ``branch_labels``, so areas built side by side never fight over one linear chain.
    """
    command.upgrade(alembic_config(engine), revision)


def referenced_blobs(session: Session) -> set[str]:
    """Every SHA-256 that some row holds in a ``BlobHash`` column."""
    import cairn.db.models  # noqa: F401  (registers every area's tables)

    found: set[str] = set()
    for table in Base.metadata.sorted_tables:
        for column in table.columns:
            if isinstance(column.type, BlobHash):
                rows = session.execute(select(column).where(column.is_not(None)).distinct())
                found.update(value for (value,) in rows)
    return found
