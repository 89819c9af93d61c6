"""``migrate`` skips Alembic when the database already stands at the scripts' heads, and still
upgrades when a revision script is added (issue #14, start-up), on SQLite and PostgreSQL."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, inspect, text

from cairn.db.migrate import MIGRATIONS, alembic_config, at_heads, known_heads, migrate
from tests.conftest import POSTGRES_URL, _postgres_problem

ADDED = '''"""a revision added after the database was migrated"""

revision: str = "cairn_test_added"
down_revision: str | None = "{parent}"
branch_labels = None
depends_on = None

from alembic import op
import sqlalchemy as sa


def upgrade() -> None:
    op.create_table("cairn_test_added", sa.Column("id", sa.Integer(), primary_key=True))


def downgrade() -> None:
    op.drop_table("cairn_test_added")
'''


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fresh_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An empty database of its own (a file, or a new PostgreSQL schema)."""
    if request.param == "sqlite":
        engine = create_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
        yield engine
        engine.dispose()
        return
    problem = _postgres_problem()
    if problem:
        pytest.skip(problem)
    schema = f"cairn_fresh_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = create_engine(f"{POSTGRES_URL}?options=-csearch_path%3D{schema}")
    yield engine
    engine.dispose()
    with admin.connect() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def test_known_heads_agree_with_alembic(engine: Engine) -> None:
    alembic_heads = ScriptDirectory.from_config(alembic_config(engine)).get_heads()
    assert known_heads() == frozenset(alembic_heads)
    assert len(known_heads()) > 1  # one head per area branch


def test_a_migrated_database_is_not_migrated_again(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert at_heads(engine)
    calls: list[str] = []
    monkeypatch.setattr(command, "upgrade", lambda _config, revision: calls.append(revision))
    migrate(engine)
    assert calls == []
    migrate(engine, "provenance@head")  # an explicit target always goes to Alembic
    assert calls == ["provenance@head"]


def test_a_new_database_is_migrated(fresh_engine: Engine) -> None:
    assert not at_heads(fresh_engine)  # no alembic_version table: no error, just "not there"
    migrate(fresh_engine)
    assert at_heads(fresh_engine)
    assert "prov_runs" in inspect(fresh_engine).get_table_names()


def test_an_added_migration_is_applied(fresh_engine: Engine, tmp_path: Path) -> None:
    migrate(fresh_engine)
    parent = min(head for head in known_heads() if head.startswith("provenance"))
    scripts = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    (scripts / "versions" / "2099_01_01_added.py").write_text(
        ADDED.format(parent=parent), encoding="utf-8"
    )
    assert known_heads(scripts) == (known_heads() - {parent}) | {"cairn_test_added"}
    assert not at_heads(fresh_engine, scripts)

    migrate(fresh_engine, scripts=scripts)

    assert "cairn_test_added" in inspect(fresh_engine).get_table_names()
    assert at_heads(fresh_engine, scripts)
    assert not at_heads(fresh_engine)  # the database is now ahead of the real scripts
