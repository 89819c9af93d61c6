"""Sealing a workspace (issue 17, "Sealing"): its content package becomes a container signed
by cairn's seal key, verified and enhanced like any other, recorded in the provenance store;
another organisation's workspace is 404 and each seal is a new container."""

from __future__ import annotations

import io
import subprocess
import zipfile
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select

from cairn.archive import seal
from cairn.archive._worker import EnhanceContext, Worker
from cairn.archive.models import ArchiveContainer
from cairn.archive.settings import ArchiveSettings
from cairn.config import Settings
from cairn.db import UnitOfWork
from cairn.provenance.models import Run
from tests.archive.helpers import ArchiveClient, make_archive_client
from tests.archives import tar_gz
from tests.factories import Member


def _workspace(client: TestClient, member: Member) -> int:
    answer = client.post(
        "/api/v1/workspaces/upload",
        headers=member.headers,
        files={"file": ("paper.tar.gz", tar_gz({"main.tex": b"\\documentclass{article}\n"}))},
    )
    assert answer.status_code == 201, answer.text
    workspace_id: int = answer.json()["id"]
    return workspace_id


def _seal(client: TestClient, member: Member, workspace_id: int, **body: object) -> dict:  # type: ignore[type-arg]
    answer = client.post(
        "/api/v1/archive/seals",
        headers=member.headers,
        json={"workspace_id": workspace_id, **body},
    )
    found: dict = {"status_code": answer.status_code, **answer.json()}  # type: ignore[type-arg]
    return found


def test_a_sealed_workspace_is_a_verified_container_openssl_accepts(
    client: TestClient,
    arch: ArchiveClient,
    settings: Settings,
    uow: UnitOfWork,
    tmp_path: Path,
) -> None:
    workspace_id = _workspace(client, arch.member)
    locked = client.post(f"/api/v1/workspaces/{workspace_id}/lock", headers=arch.member.headers)
    assert locked.status_code == 200, locked.text  # a locked workspace can be sealed
    sealed = _seal(client, arch.member, workspace_id)
    assert sealed["status_code"] == 201, sealed
    assert sealed["status"] == 2, sealed  # verified: the server trusts its own seal root
    assert sealed["storage_id"] == arch.storage_id  # the organisation's first storage
    container_id = sealed["id"]

    package = client.get(
        f"/api/v1/workspaces/{workspace_id}/package", headers=arch.member.headers
    ).content
    with uow.read() as session:
        container = session.get(ArchiveContainer, container_id)
        assert container is not None
        assert container.structure_name == f"workspace:{workspace_id}"
        assert container.document_sha256 is not None  # the archive keeps the package
        stored = client.app.state.blobs.read_bytes(container.document_sha256)  # type: ignore[attr-defined]
        assert stored == package
        runs = session.scalars(select(Run).where(Run.kind == "archive.seal")).all()
        assert [r.organisation_id for r in runs] == [arch.member.organisation_id]
        assert container_id in runs[0].script

    zipped = client.get(f"/api/document/{container_id}/sign", headers=arch.key_headers)
    signature = tmp_path / "seal.sig"
    signature.write_bytes(zipfile.ZipFile(io.BytesIO(zipped.content)).read("signature-0.sig"))
    (tmp_path / "package.tar.gz").write_bytes(package)
    root = settings.data_dir / "archive-seal" / "root.pem"
    checked = subprocess.run(
        ["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", str(signature),
         "-content", str(tmp_path / "package.tar.gz"), "-CAfile", str(root),
         "-purpose", "any", "-out", "/dev/null"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr

    context = EnhanceContext(client.app.state.blobs, ArchiveSettings(), settings.data_dir)  # type: ignore[attr-defined]
    Worker(uow, context).run_once()  # enhanced like any container
    status = client.get(f"/api/v1/archive/containers/{container_id}", headers=arch.member.headers)
    assert status.json()["status"] == 4, status.text


def test_sealing_twice_makes_two_containers(client: TestClient, arch: ArchiveClient) -> None:
    workspace_id = _workspace(client, arch.member)
    first, second = (_seal(client, arch.member, workspace_id) for _ in range(2))
    assert first["status_code"] == second["status_code"] == 201
    assert first["id"] != second["id"]


def test_what_cannot_be_sealed(
    client: TestClient, arch: ArchiveClient, make_member: Callable[..., Member]
) -> None:
    workspace_id = _workspace(client, arch.member)
    stranger = make_member()  # another organisation, with a storage of its own
    theirs = make_archive_client(client.app.state.settings, stranger)  # type: ignore[attr-defined]
    assert _seal(client, stranger, workspace_id)["status_code"] == 404
    other_storage = _seal(client, arch.member, workspace_id, storage_id=theirs.storage_id)
    assert other_storage["status_code"] == 404, other_storage
    assert _seal(client, arch.member, 10**9)["status_code"] == 404
    assert _seal(client, arch.member, workspace_id, extra=1)["status_code"] == 422
    nothing = make_member()  # an organisation without a storage
    refused = _seal(client, nothing, _workspace(client, nothing))
    assert refused["status_code"] == 404 and "create-storage" in str(refused), refused
    listed = client.post("/api/document/search", headers=arch.key_headers, json={})
    assert listed.json()["data"]["totalRecords"] == 0  # none of these stored anything


def test_the_seal_root_is_trusted_only_once_it_exists(tmp_path: Path) -> None:
    assert seal.archive_trust_roots(ArchiveSettings(), tmp_path) == []
    key = seal.open_seal_key(tmp_path)
    roots = seal.archive_trust_roots(ArchiveSettings(), tmp_path)
    assert [r.dump() for r in roots] == [key.root.dump()]
    assert (tmp_path / "archive-seal" / "seal.key").stat().st_mode & 0o077 == 0
