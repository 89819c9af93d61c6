"""Run Alembic migrations programmatically and find every blob the database references.

Every command migrates first, and Alembic is costly to start (importing it and every area's
models, loading each revision script: most of a short `cairn record`'s time, issue #14). So
:func:`migrate` first asks the database, with one plain ``SELECT``, whether it already stands at
the heads the revision scripts declare (read from the scripts' text, not imported), and only
starts Alembic when not.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from cairn.db.base import Base, BlobHash

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["alembic_config", "at_heads", "known_heads", "migrate", "referenced_blobs"]

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine, scripts: Path = MIGRATIONS) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(scripts))
    config.attributes["engine"] = engine
    return config


def target_is_declaration(target: ast.expr) -> bool:
    return isinstance(target, ast.Name) and target.id in ("revision", "down_revision")


def _declared(script: Path) -> tuple[str, tuple[str, ...]] | None:
    """A revision script's ``(revision, down_revisions)``, from its module-level assignments."""
    found: dict[str, object] = {}
    for node in ast.parse(script.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.AnnAssign | ast.Assign):
            targets = [node.target] if isinstance(node, ast.AnnAssign) else node.targets
            for target in targets:
                if target_is_declaration(target) and node.value is not None:
                    found[target.id] = ast.literal_eval(node.value)  # type: ignore[attr-defined]
    revision = found.get("revision")
    if not isinstance(revision, str):
        return None
    down = found.get("down_revision")
    downs = () if down is None else (down,) if isinstance(down, str) else tuple(down)  # type: ignore[arg-type]
    return revision, downs


def known_heads(scripts: Path = MIGRATIONS) -> frozenset[str]:
    """The revisions no other revision script builds on: what ``upgrade heads`` reaches.

    Read with ``ast`` (a few milliseconds) so the fast path never imports Alembic; a test
    checks it agrees with Alembic's own ``ScriptDirectory.get_heads()``.
    """
    revisions: set[str] = set()
    below: set[str] = set()
    for script in (scripts / "versions").glob("*.py"):
        declared = _declared(script)
        if declared:
            revisions.add(declared[0])
            below.update(declared[1])
    return frozenset(revisions - below)


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
