"""Archive fixtures: the test PKI (built once per session), trusting its CA, a member with a
storage and a source system, and a unit of work on the app's database."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from cairn.config import Settings
from cairn.db import UnitOfWork, make_engine, make_sessionmaker
from tests.archive.helpers import ArchiveClient, make_archive_client
from tests.archive.pki import LocalPKI, make_pki
from tests.factories import Member


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> LocalPKI:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def trust_the_test_ca(pki: LocalPKI, monkeypatch: pytest.MonkeyPatch) -> None:
    """The server trusts the test PKI's CA (modules use it with ``usefixtures``)."""
    monkeypatch.setenv("CAIRN_ARCHIVE_TRUST_ROOTS", str(pki.roots))


@pytest.fixture
def arch(settings: Settings, make_member: Callable[..., Member]) -> ArchiveClient:
    return make_archive_client(settings, make_member())


@pytest.fixture
def uow(settings: Settings) -> Iterator[UnitOfWork]:
    engine = make_engine(settings)
    yield UnitOfWork(make_sessionmaker(engine))
    engine.dispose()
