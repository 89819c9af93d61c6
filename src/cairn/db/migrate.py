"""Run Alembic migrations programmatically and find every blob the database references.

Every command migrates first, and Alembic is costly to start (importing it and every area's
models, loading each revision script: most of a short `cairn record`'s time, issue #14). So
:func:`migrate` first asks the database, with one plain ``SELECT``, whether it already stands at
the heads the revision scripts declare (read from the scripts' text, not imported), and only
starts Alembic when not.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from cairn._revisions import MIGRATIONS, known_heads
from cairn.db.base import Base, BlobHash

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = [
    "MIGRATIONS",
    "alembic_config",
    "at_heads",
    "known_heads",
    "migrate",
    "referenced_blobs",
]


def alembic_config(engine: Engine, scripts: Path = MIGRATIONS) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(scripts))
    config.attributes["engine"] = engine
    return config


def at_heads(engine: Engine, scripts: Path = MIGRATIONS) -> bool:
    """Whether the database's ``alembic_version`` holds exactly the scripts' heads."""
    try:
        with engine.connect() as connection:
            stamped = connection.execute(text("SELECT version_num FROM alembic_version"))
            versions = frozenset(value for (value,) in stamped)
            connection.rollback()
    except DBAPIError:  # no alembic_version table yet: a new database
        return False
    return bool(versions) and versions == known_heads(scripts)


def migrate(engine: Engine, revision: str = "heads", *, scripts: Path = MIGRATIONS) -> None:
    """Upgrade the database to ``revision`` (every area's newest); safe to run on every start,
    and cheap when there is nothing to do (:func:`at_heads`).

    Each area keeps its own branch of revisions, rooted on the core's (``0002``) and named by
    its ``branch_labels``, so areas built side by side never fight over one linear chain.
    """
    if revision == "heads" and at_heads(engine, scripts):
        return
    from alembic import command

    command.upgrade(alembic_config(engine, scripts), revision)


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
