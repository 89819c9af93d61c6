"""Provenance fixtures: a run store on each database (its own transactions, like the CLI's),
and a helper that writes a script and records it."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from cairn.blobs import BlobStore
from cairn.db import UnitOfWork, make_sessionmaker
from cairn.provenance import RecordResult, RunStore
from cairn.provenance.recording import record_script
from tests.conftest import _wipe


@pytest.fixture
def store(engine: Engine, blobs: BlobStore, tmp_path: Path) -> Iterator[RunStore]:
    work = tmp_path / "work"
    work.mkdir()
    try:
        yield RunStore(UnitOfWork(make_sessionmaker(engine)), blobs, work)
    finally:
        _wipe(engine)


@pytest.fixture
def db(store: RunStore) -> Iterator[Session]:
    """A session on the store's database, for reading what recording wrote."""
    with store.uow.transaction() as session:
        yield session


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


@pytest.fixture
def run_script(store: RunStore, project: Path) -> Callable[..., RecordResult]:
    def _run(source: str, *args: str, name: str = "script.py", **kwargs: object) -> RecordResult:
        script = project / name
        script.write_text(textwrap.dedent(source))
        return record_script(script, *args, store=store, **kwargs)  # type: ignore[arg-type]

    return _run
