"""End of storage (status 6), deletion (status 8) and fixity checks on both databases: the
document goes and a tombstone stays, a storage plugin's copy is deleted through the plugin,
each step is a logged event, and a real tampered blob file is found and named."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from cairn.archive._plugin_tasks import run_plugin_tasks
from cairn.archive.fixity import check_container, check_due
from cairn.archive.models import ArchiveContainer, ArchiveEvent, ArchiveSignature
from cairn.archive.plugins import load_plugins
from cairn.archive.retention import end_storage
from cairn.blobs import BlobStore
from cairn.config import Settings
from cairn.db import UnitOfWork, make_engine, utcnow
from tests.archive.helpers import ArchiveClient, upload_form
from tests.archive.pki import LocalPKI, pyhanko_sign
from tests.factories import Member

DOCUMENT = b"Keep me until 2030, then let me go.\n"


@pytest.fixture(autouse=True)
def plugins_folder(pki: LocalPKI, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("CAIRN_ARCHIVE_TRUST_ROOTS", str(pki.roots))
    folder = tmp_path / "plugins"
    folder.mkdir()
    monkeypatch.setenv("CAIRN_ARCHIVE_PLUGINS", str(folder))
    storage = {
        "IsEnabled": True,
        "ReadOnly": False,
        "PluginName": "fs_01",
        "AssemblyName": "filesystem",
        "Parameters": {"DocumentsFolderPath": "documents"},
    }
    config = {"Plugins": {"DocumentStorage": [storage], "SanConnector": []}}
    (folder / "plugin-config.json").write_text(json.dumps(config), encoding="utf-8")
    return folder


def _put(client: TestClient, arch: ArchiveClient, pki: LocalPKI, **fields: str) -> str:
    signs = [pyhanko_sign(pki.rsa_signer, DOCUMENT)]
    form = upload_form(arch.storage_id, DOCUMENT, signs, **{"UseArchiveCa": "true", **fields})
    answer = client.post("/api/document/content", headers=arch.key_headers, **form)
    assert answer.status_code == 200, answer.text
    container_id: str = answer.json()["data"]
    return container_id


def _details(client: TestClient, arch: ArchiveClient, container_id: str) -> dict[str, Any]:
    answer = client.get(f"/api/document/{container_id}", headers=arch.key_headers)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()["data"]
    return found


def _kinds(uow: UnitOfWork, container_id: str) -> list[str]:
    with uow.read() as session:
        return list(
            session.scalars(
                select(ArchiveEvent.kind)
                .where(ArchiveEvent.container_id == container_id)
                .order_by(ArchiveEvent.id)
            )
        )


def _blobs(client: TestClient) -> BlobStore:
    store: BlobStore = client.app.state.blobs  # type: ignore[attr-defined]
    return store


def test_temporary_containers_past_their_date_end_their_storage(
    client: TestClient, arch: ArchiveClient, pki: LocalPKI, uow: UnitOfWork
) -> None:
    temporary = _put(client, arch, pki)  # ArchiveDate 21.07.2030
    permanent = _put(client, arch, pki, SaveType="Permanent", ArchiveDate="")
    plugins = load_plugins(None)
    assert end_storage(uow, plugins) == []  # not yet
    after = utcnow().replace(year=2030, month=7, day=22)
    assert end_storage(uow, plugins, now=after) == [temporary]
    assert end_storage(uow, plugins, now=after) == []  # once
    details = _details(client, arch, temporary)
    assert details["status"] == 6 and details["isAvailable"] is False
    assert _details(client, arch, permanent)["status"] == 2
    assert _kinds(uow, temporary)[-1] == "storage-ended"
    with uow.read() as session:
        container = session.get(ArchiveContainer, temporary)
        assert container is not None and container.document_sha256 is None
        assert "Temporary storage ended" in (container.status_reason or "")
    # isArchived=false lists exactly the Temporary containers whose storage ended.
    found = client.post(
        "/api/document/search", headers=arch.key_headers, json={"filters": {"isArchived": False}}
    ).json()["data"]
    assert [d["id"] for d in found["documents"]] == [temporary]
    # The tombstone keeps its signatures (evidence) but serves no document.
    assert (
        client.get(f"/api/document/{temporary}/sign", headers=arch.key_headers).status_code == 200
    )


def test_ending_storage_deletes_a_plugin_copy_through_the_plugin(
    client: TestClient, arch: ArchiveClient, pki: LocalPKI, uow: UnitOfWork, plugins_folder: Path
) -> None:
    container_id = _put(client, arch, pki, ArchiveCaPluginName="fs_01")
    plugins = load_plugins(plugins_folder)
    assert run_plugin_tasks(uow, _blobs(client), plugins) == 1
    saved = plugins_folder / "documents" / container_id
    assert saved.read_bytes() == DOCUMENT
    after = utcnow().replace(year=2031)
    assert end_storage(uow, plugins, now=after) == [container_id]
    assert not saved.exists()
    assert _kinds(uow, container_id)[-2:] == ["storage-ended", "document-removed"]
    with uow.read() as session:
        container = session.get(ArchiveContainer, container_id)
        assert container is not None and container.document_path is None


def test_delete_leaves_a_tombstone_and_only_the_owner_may(
    client: TestClient,
    arch: ArchiveClient,
    pki: LocalPKI,
    uow: UnitOfWork,
    make_member: Callable[..., Member],
) -> None:
    container_id = _put(client, arch, pki)
    path = f"/api/v1/archive/containers/{container_id}"
    stranger = make_member()
    assert client.delete(path, headers=stranger.headers).status_code == 404
    assert _details(client, arch, container_id)["status"] == 2
    assert client.delete(path, headers=arch.member.headers).status_code == 204
    assert client.delete(path, headers=arch.member.headers).status_code == 204  # idempotent
    details = _details(client, arch, container_id)
    assert details["status"] == 8 and details["isAvailable"] is False
    assert _kinds(uow, container_id).count("deleted") == 1
    statuses = client.post(
        "/api/document/search", headers=arch.key_headers, json={"filters": {"status": 8}}
    ).json()["data"]
    assert statuses["totalRecords"] == 1


def test_fixity_passes_then_names_a_tampered_document_blob(
    client: TestClient, arch: ArchiveClient, pki: LocalPKI, uow: UnitOfWork
) -> None:
    container_id = _put(client, arch, pki, SaveType="Permanent", ArchiveDate="")
    blobs, plugins = _blobs(client), load_plugins(None)
    every = timedelta(days=30)
    assert check_due(uow, blobs, plugins, every=every) == []  # hashed on upload
    later = utcnow() + timedelta(days=31)
    outcomes = check_due(uow, blobs, plugins, every=every, now=later)
    assert [(o.container_id, o.ok) for o in outcomes] == [(container_id, True)]
    assert check_due(uow, blobs, plugins, every=every, now=later) == []  # just checked
    assert _kinds(uow, container_id)[-1] == "fixity-ok"
    with uow.read() as session:
        container = session.get(ArchiveContainer, container_id)
        assert container is not None and container.document_sha256 is not None
        sha = container.document_sha256
    stored = blobs.local_path(sha)
    if stored is None:
        pytest.skip("the blob store keeps this blob in a pack: no file to modify")
    stored.chmod(0o644)
    stored.write_bytes(DOCUMENT.replace(b"2030", b"2050"))
    outcome = check_container(uow, blobs, plugins, container_id)
    assert outcome is not None and not outcome.ok
    assert outcome.problems == ["the document does not match its recorded SHA-256"]
    details = _details(client, arch, container_id)
    assert details["status"] == 7
    assert _kinds(uow, container_id)[-1] == "fixity-failed"
    found = client.post(
        "/api/document/search", headers=arch.key_headers, json={"filters": {"status": 7}}
    ).json()["data"]
    assert [d["id"] for d in found["documents"]] == [container_id]


def test_fixity_names_a_tampered_or_missing_signature_blob(
    client: TestClient, arch: ArchiveClient, pki: LocalPKI, uow: UnitOfWork
) -> None:
    container_id = _put(client, arch, pki)
    blobs, plugins = _blobs(client), load_plugins(None)
    with uow.read() as session:
        signature = session.scalars(
            select(ArchiveSignature).where(ArchiveSignature.container_id == container_id)
        ).one()
        sha = signature.raw_sha256
    stored = blobs.local_path(sha)
    if stored is None:
        pytest.skip("the blob store keeps this blob in a pack: no file to modify")
    raw = stored.read_bytes()
    stored.chmod(0o644)
    stored.write_bytes(raw[:-1] + bytes([raw[-1] ^ 1]))
    outcome = check_container(uow, blobs, plugins, container_id)
    assert outcome is not None
    assert outcome.problems == ["signature 0 (as uploaded) does not match its SHA-256"]
    stored.unlink()
    outcome = check_container(uow, blobs, plugins, container_id)
    assert outcome is not None
    assert outcome.problems == ["signature 0 (as uploaded) is missing from the blob store"]


def test_cli_fixity_exits_1_naming_a_tampered_document(
    client: TestClient,
    arch: ArchiveClient,
    pki: LocalPKI,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from typer.testing import CliRunner

    from cairn.cli.main import app as cli
    from cairn.config import get_settings

    container_id = _put(client, arch, pki, SaveType="Permanent", ArchiveDate="")
    monkeypatch.setenv("CAIRN_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("CAIRN_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("CAIRN_BLOB_URL", settings.blob_url)
    get_settings.cache_clear()
    try:
        good = CliRunner().invoke(cli, ["archive", "fixity", container_id, "--json"])
        assert good.exit_code == 0, good.output
        assert json.loads(good.stdout) == [{"container": container_id, "ok": True, "problems": ""}]
        engine = make_engine(settings)
        with engine.connect() as connection:
            sha = connection.execute(
                select(ArchiveContainer.document_sha256).where(ArchiveContainer.id == container_id)
            ).scalar_one()
        engine.dispose()
        stored = _blobs(client).local_path(sha)
        if stored is None:
            pytest.skip("the blob store keeps this blob in a pack: no file to modify")
        stored.chmod(0o644)
        stored.write_bytes(b"Someone else's words.\n")
        bad = CliRunner().invoke(cli, ["archive", "fixity", "--every-days", "0", "--json"])
        assert bad.exit_code == 1, bad.output
        rows = json.loads(bad.stdout)
        assert rows == [
            {
                "container": container_id,
                "ok": False,
                "problems": "the document does not match its recorded SHA-256",
            }
        ]
    finally:
        get_settings.cache_clear()
