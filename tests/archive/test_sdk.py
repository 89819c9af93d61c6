"""The SDK's ``client.archive`` in-process over cairn's native archive routes."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cairn import errors
from cairn.client import Client
from cairn.config import Settings
from tests.archive.helpers import make_archive_client
from tests.archive.pki import LocalPKI, pyhanko_sign
from tests.factories import Member

DOCUMENT = b"Signed minutes.\n"


pytestmark = pytest.mark.usefixtures("trust_the_test_ca")


def test_put_get_search_and_download(
    client: TestClient,
    settings: Settings,
    make_member: Callable[..., Member],
    pki: LocalPKI,
    tmp_path: Path,
) -> None:
    arch = make_archive_client(settings, make_member())
    sdk = Client("http://testserver", token=arch.member.token, http_client=client)
    (tmp_path / "minutes.txt").write_bytes(DOCUMENT)
    signature = tmp_path / "minutes.txt.sig"
    signature.write_bytes(pyhanko_sign(pki.rsa_signer, DOCUMENT))

    assert [s.model_dump() for s in sdk.archive.storages()] == [
        {"id": arch.storage_id, "name": "Main"}
    ]
    container = sdk.archive.put(
        tmp_path / "minutes.txt", [signature], storage_id=arch.storage_id, name="Minutes"
    )
    assert container.status == 2 and container.status_name == "Verified"
    assert container.signatures[0].verdict == "valid" and container.signatures[0].level == "BES"
    assert sdk.archive.get(container.id).name == "Minutes"
    assert [c.id for c in sdk.archive.search(name="minu")] == [container.id]
    assert list(sdk.archive.search(name="nothing")) == []
    assert [r["verdict"] for r in container.reports()] == ["valid"]
    assert [e["kind"] for e in container.events()] == ["created", "verified"]
    zipped = container.download_signatures(tmp_path / "signatures.zip")
    with zipfile.ZipFile(zipped) as archive:
        assert archive.read("signature-0.sig") == signature.read_bytes()
    assert {s["id"] for s in sdk.archive.statuses()} == set(range(9))

    bad = tmp_path / "bad.sig"
    bad.write_bytes(b"not a signature")
    with pytest.raises(errors.BadRequest, match="Not a CMS signature"):
        sdk.archive.put(tmp_path / "minutes.txt", [bad], storage_id=arch.storage_id, name="x")
    stranger = Client("http://testserver", token=make_member().token, http_client=client)
    with pytest.raises(errors.NotFound):
        stranger.archive.get(container.id)
    assert list(stranger.archive.search()) == []
