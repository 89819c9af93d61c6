"""Root fixtures: settings on a temp data folder, an engine per database backend, sessions,
the blob store, the app and an in-process client. Every DB test runs on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import settings as hypothesis_settings
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session

from cairn.api import create_app
from cairn.blobs import BlobStore, open_blob_store
from cairn.config import Settings
from cairn.db import Base, make_engine, make_sessionmaker, migrate, session_scope

pytest_plugins = ["tests.factories", "tests.servers"]

# CI runs the same examples every time (a red CI is then reproducible, never a coin toss) and
# never fails a property on timing alone; locally hypothesis explores afresh.
hypothesis_settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
hypothesis_settings.register_profile("dev", deadline=None)
hypothesis_settings.load_profile("ci" if os.environ.get("CI") else "dev")

POSTGRES_URL = os.environ.get(
    "CAIRN_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _postgres_problem() -> str | None:
    """Why PostgreSQL cannot be used, or None when it answers."""
    try:
        probe = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
        with probe.connect() as connection:
            connection.execute(text("SELECT 1"))
        probe.dispose()
    except Exception as exc:
        return f"no PostgreSQL server reachable at {POSTGRES_URL}: {type(exc).__name__}"
    return None


@pytest.fixture(scope="session")
def postgres_schema_url() -> Iterator[str]:
    """A fresh schema in the `test` database for this test run, dropped afterwards."""
    problem = _postgres_problem()
    if problem:
        pytest.skip(problem)
    schema = f"cairn_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    with admin.connect() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(
    scope="session", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('db') / 'cairn.db'}"
    url: str = request.getfixturevalue("postgres_schema_url")
    return url


@pytest.fixture(scope="session")
def engine(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """One migrated engine per backend for the whole run."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("engine"), database_url=db_url)
    engine = make_engine(settings)
    migrate(engine)
    yield engine
    engine.dispose()


def _wipe(engine: Engine) -> None:
    import cairn.db.models  # noqa: F401

    with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(table.delete())


@pytest.fixture
def settings(tmp_path: Path, engine: Engine) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=engine.url.render_as_string(hide_password=False),
        max_request_bytes=1024 * 1024,
    )


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session committed at the end of the test; every table is emptied afterwards."""
    factory = make_sessionmaker(engine)
    try:
        with session_scope(factory) as session:
            yield session
    finally:
        _wipe(engine)


@pytest.fixture
def blobs(settings: Settings) -> BlobStore:
    return open_blob_store(settings.blob_url)


@pytest.fixture
def app(settings: Settings, engine: Engine) -> Iterator[object]:
    application = create_app(settings)
    yield application
    application.state.engine.dispose()
    _wipe(engine)


@pytest.fixture
def client(app: object) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:  # type: ignore[arg-type]
        yield test_client
