"""Sealing a workspace (issue 17, "Sealing") or a published run (#14): its package becomes a
container signed by cairn's seal key, verified and enhanced like any other, recorded in the
provenance store; another organisation's workspace or run is 404, a run never published 422,
and each seal is a new container."""

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
from cairn.client import Client
from cairn.config import Settings
from cairn.db import UnitOfWork
from cairn.provenance import service as provenance
from cairn.provenance.models import Run
from tests.archive.helpers import ArchiveClient, make_archive_client
from tests.archives import published_zip, tar_gz
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


# --- published runs ------------------------------------------------------------------------------


def _published(client: TestClient, member: Member, output: bytes = b"result\n") -> dict:  # type: ignore[type-arg]
    answer = client.post(
        "/api/v1/runs/published",
        headers=member.headers,
        files={"file": ("run-1-v1.zip", published_zip(output))},
    )
    assert answer.status_code == 201, answer.text
    body: dict = answer.json()  # type: ignore[type-arg]
    return body


def _seal_run(client: TestClient, member: Member, run_id: str, **body: object) -> dict:  # type: ignore[type-arg]
    answer = client.post(
        "/api/v1/archive/seals", headers=member.headers, json={"published_run_id": run_id, **body}
    )
    found: dict = {"status_code": answer.status_code, **answer.json()}  # type: ignore[type-arg]
    return found


def test_a_published_run_is_sealed_as_a_verified_container_of_its_package(
    client: TestClient, arch: ArchiveClient, uow: UnitOfWork
) -> None:
    published = _published(client, arch.member)
    run, package = published["run"], published["package_sha256"]
    sealed = _seal_run(client, arch.member, run["run_id"])
    assert sealed["status_code"] == 201, sealed
    assert sealed["status"] == 2, sealed  # verified, as a workspace's seal is
    assert sealed["storage_id"] == arch.storage_id
    with uow.read() as session:
        container = session.get(ArchiveContainer, sealed["id"])
        assert container is not None
        assert container.structure_name == f"run:{run['run_id']}"
        assert container.document_sha256 == package  # the zip the server received, as it is
        assert container.name == f"Seal of published run {run['seq']} (version 1)"
        (record,) = session.scalars(select(Run).where(Run.kind == "archive.seal")).all()
        assert record.organisation_id == arch.member.organisation_id
        assert sealed["id"] in record.script and f"publication {published['publication_id']}" in (
            record.script or ""
        )
        used = provenance.view_run(
            session, record.id, scope=provenance.Scope((arch.member.organisation_id,))
        ).used
        assert [(v.sha256, v.path) for v, _ in used] == [(package, f"run-{run['seq']}-v1.zip")]
        # So lineage runs from the package into the seal.
        down = provenance.trace_runs(
            session,
            package,
            direction="downstream",
            scope=provenance.Scope((arch.member.organisation_id,)),
        )
        assert [v.run.kind for v in down.runs] == ["archive.seal"]

    # The publication's id and the run's number name the same package; the SDK takes either.
    by_publication = _seal_run(client, arch.member, published["publication_id"])
    assert by_publication["status_code"] == 201, by_publication
    sdk = Client("http://testserver", token=arch.member.token, http_client=client)
    by_seq = sdk.archive.seal(published_run_id=str(run["seq"]))
    assert len({sealed["id"], by_publication["id"], by_seq.id}) == 3  # each a new container
    with uow.read() as session:
        documents = session.scalars(
            select(ArchiveContainer.document_sha256).where(
                ArchiveContainer.id.in_([by_publication["id"], by_seq.id])
            )
        ).all()
    assert documents == [package, package]


def test_what_published_runs_cannot_be_sealed(
    client: TestClient, arch: ArchiveClient, make_member: Callable[..., Member]
) -> None:
    run = _published(client, arch.member)["run"]
    stranger = make_member()  # another organisation, with a storage of its own
    theirs = make_archive_client(client.app.state.settings, stranger)  # type: ignore[attr-defined]
    assert _seal_run(client, stranger, run["run_id"])["status_code"] == 404
    assert _seal_run(client, stranger, str(run["seq"]))["status_code"] == 404
    wrong_storage = _seal_run(client, arch.member, run["run_id"], storage_id=theirs.storage_id)
    assert wrong_storage["status_code"] == 404, wrong_storage
    # A run of the organisation that was never published: the upload of a workspace.
    _workspace(client, arch.member)
    uploads = client.get(
        "/api/v1/runs", params={"script": "upload of"}, headers=arch.member.headers
    ).json()["items"]
    refused = _seal_run(client, arch.member, uploads[0]["run_id"])
    assert refused["status_code"] == 422 and refused["code"] == "not-published", refused
    assert (
        _seal_run(client, arch.member, "00000000-0000-4000-8000-000000000000")["status_code"] == 404
    )
    both = client.post(
        "/api/v1/archive/seals",
        headers=arch.member.headers,
        json={"workspace_id": 1, "published_run_id": run["run_id"]},
    )
    neither = client.post("/api/v1/archive/seals", headers=arch.member.headers, json={})
    assert both.status_code == neither.status_code == 422
    listed = client.post("/api/document/search", headers=arch.key_headers, json={})
    assert listed.json()["data"]["totalRecords"] == 0  # none of these stored anything


def test_the_cli_seals_one_workspace_or_one_run() -> None:
    from typer.testing import CliRunner

    from cairn.cli.main import app as cli

    for args in ([], ["--workspace", "1", "--run", "2"]):
        answer = CliRunner().invoke(cli, ["archive", "seal", *args])
        assert answer.exit_code == 2, answer.output
        assert "Give --workspace or --run" in answer.output
