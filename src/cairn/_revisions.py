"""The migration heads the revision scripts (``cairn/db/migrations``) declare, read with ``ast``.

Outside ``cairn.db`` on purpose: importing that package imports SQLAlchemy, and `cairn record`
on a SQLite data folder checks the heads with the standard library's ``sqlite3`` alone, without
it (issue #14). ``cairn.db.migrate`` re-exports these names.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

__all__ = ["MIGRATIONS", "known_heads"]

MIGRATIONS = Path(__file__).parent / "db" / "migrations"


def target_is_declaration(target: ast.expr) -> bool:
    return isinstance(target, ast.Name) and target.id in ("revision", "down_revision")


_FIRST_DEFINITION = re.compile(r"^(?:def|async def|class|@)", re.MULTILINE)


def _declared(script: Path) -> tuple[str, tuple[str, ...]] | None:
    """A revision script's ``(revision, down_revisions)``, from its module-level assignments.

    Alembic's template declares them above the functions, so the text before the first
    definition is parsed first (a tenth of the work); the whole file only when that fails."""
    text = script.read_text(encoding="utf-8")
    head = _FIRST_DEFINITION.search(text)
    if head is not None:
        try:
            found = _assignments(text[: head.start()])
        except SyntaxError:
            found = {}
        if isinstance(found.get("revision"), str) and "down_revision" in found:
            return _pair(found)
    return _pair(_assignments(text))


def _assignments(text: str) -> dict[str, object]:
    found: dict[str, object] = {}
    for node in ast.parse(text).body:
        if isinstance(node, ast.AnnAssign | ast.Assign):
            targets = [node.target] if isinstance(node, ast.AnnAssign) else node.targets
            for target in targets:
                if target_is_declaration(target) and node.value is not None:
                    found[target.id] = ast.literal_eval(node.value)  # type: ignore[attr-defined]
    return found


def _pair(found: dict[str, object]) -> tuple[str, tuple[str, ...]] | None:
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
