"""Archive fixtures: the test PKI (built once per session) and a document."""

from __future__ import annotations

import pytest

from tests.archive.pki import LocalPKI, make_pki


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> LocalPKI:
    return make_pki(tmp_path_factory.mktemp("pki"))
