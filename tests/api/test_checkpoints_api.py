"""Workspace checkpoints over HTTP, in-process: cairn's routes and the file manager's (arXiv's
names), the errors each answers, and another organisation's ids."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cairn import errors
from cairn.client import Checkpoint, Client
from tests.archives import tar_gz
from tests.factories import Member

API = "/api/v1/workspaces"
FM = "/filemanager/api"
TEX = b"\\documentclass{article}\n\\begin{document}Hi\\end{document}\n"


@pytest.fixture
def member(make_member: Callable[..., Member]) -> Member:
    return make_member()


def new_workspace(client: TestClient, member: Member, files: dict[str, bytes]) -> int:
    answer = client.post(
        f"{API}/upload", headers=member.headers, files={"file": ("p.tar.gz", tar_gz(files))}
    )
    assert answer.status_code == 201, answer.text
    return int(answer.json()["id"])


def add(client: TestClient, member: Member, wid: int, files: dict[str, bytes]) -> Any:
    answer = client.post(
        f"{API}/{wid}/files", headers=member.headers, files={"file": ("p.tar.gz", tar_gz(files))}
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


def paths(client: TestClient, member: Member, wid: int) -> set[str]:
    page = client.get(f"{API}/{wid}/files", headers=member.headers).json()
    return {f["path"] for f in page["items"]}


def test_native_life_cycle(client: TestClient, member: Member) -> None:
    wid = new_workspace(client, member, {"main.tex": TEX, "a.txt": b"a\n"})
    client.app.state.package_builder.wait(wid)  # type: ignore[attr-defined]
    workspace = client.get(f"{API}/{wid}", headers=member.headers).json()
    checksum = workspace["checksum"]
    saved = client.post(f"{API}/{wid}/checkpoints", headers=member.headers)
    assert saved.status_code == 201, saved.text
    checkpoint = saved.json()
    assert checkpoint["checksum"] == checksum and checkpoint["file_count"] == 2
    # The workspace's package, built in the background, is this content's: the checkpoint
    # shares it (the service tests cover a checkpoint whose package is built on download).
    assert checkpoint["package_size"] == workspace["package_size"] is not None
    assert saved.headers["location"].endswith(f"{API}/{wid}/checkpoints/{checkpoint['id']}")
    again = client.post(f"{API}/{wid}/checkpoints", headers=member.headers)
    assert again.status_code == 200 and again.json()["id"] == checkpoint["id"]

    listed = client.get(f"{API}/{wid}/checkpoints", headers=member.headers).json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == checkpoint["id"]
    for key in (checkpoint["id"], checksum):
        one = client.get(f"{API}/{wid}/checkpoints/{key}", headers=member.headers)
        assert one.status_code == 200 and one.json()["id"] == checkpoint["id"]

    add(client, member, wid, {"b.txt": b"b\n"})
    assert paths(client, member, wid) == {"main.tex", "a.txt", "b.txt"}

    package_url = f"{API}/{wid}/checkpoints/{checkpoint['id']}/package"
    head = client.head(package_url, headers=member.headers)
    assert head.status_code == 200 and not head.content
    assert head.headers["content-length"] == str(checkpoint["package_size"])
    package = client.get(package_url, headers=member.headers)
    assert package.status_code == 200 and package.headers["etag"] == f'"{checksum}"'
    assert package.headers["content-type"] == "application/gzip"
    with tarfile.open(fileobj=io.BytesIO(package.content), mode="r:gz") as tar:
        assert sorted(tar.getnames()) == ["a.txt", "main.tex"]
    cached = client.get(package_url, headers={**member.headers, "If-None-Match": f'"{checksum}"'})
    assert cached.status_code == 304
    head = client.head(package_url, headers=member.headers)
    assert head.headers["content-length"] == str(len(package.content))

    restored = client.post(
        f"{API}/{wid}/checkpoints/{checkpoint['id']}/restore", headers=member.headers
    )
    assert restored.status_code == 200, restored.text
    assert restored.json()["checksum"] == checksum and restored.json()["file_count"] == 2
    assert paths(client, member, wid) == {"main.tex", "a.txt"}
    log = [e["message"] for e in client.get(f"{API}/{wid}/log", headers=member.headers).json()]
    assert f"restored checkpoint {checksum} (2 files; 3 replaced)" in log

    gone = client.delete(f"{API}/{wid}/checkpoints/{checksum}", headers=member.headers)
    assert gone.status_code == 204
    missing = client.get(f"{API}/{wid}/checkpoints/{checkpoint['id']}", headers=member.headers)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    client.post(f"{API}/{wid}/checkpoints", headers=member.headers)
    assert client.delete(f"{API}/{wid}/checkpoints", headers=member.headers).status_code == 204
    assert client.get(f"{API}/{wid}/checkpoints", headers=member.headers).json()["total"] == 0


def test_an_eleventh_checkpoint_is_409(client: TestClient, member: Member) -> None:
    wid = new_workspace(client, member, {"main.tex": TEX})
    for n in range(10):
        add(client, member, wid, {"n.txt": b"%d\n" % n})
        assert client.post(f"{API}/{wid}/checkpoints", headers=member.headers).status_code == 201
    add(client, member, wid, {"n.txt": b"eleven\n"})
    native = client.post(f"{API}/{wid}/checkpoints", headers=member.headers)
    assert native.status_code == 409
    problem = native.json()
    assert problem["code"] == "checkpoint-limit" and "10 checkpoints" in problem["detail"]
    arxiv = client.post(f"{FM}/{wid}/checkpoint", headers=member.headers)
    assert arxiv.status_code == 409 and arxiv.json()["reason"] == problem["detail"]
    assert client.get(f"{API}/{wid}/checkpoints", headers=member.headers).json()["total"] == 10


def test_a_locked_workspace_refuses_restore(client: TestClient, member: Member) -> None:
    wid = new_workspace(client, member, {"main.tex": TEX})
    checkpoint = client.post(f"{API}/{wid}/checkpoints", headers=member.headers).json()
    add(client, member, wid, {"b.txt": b"b\n"})
    assert client.post(f"{API}/{wid}/lock", headers=member.headers).status_code == 200
    native = client.post(
        f"{API}/{wid}/checkpoints/{checkpoint['id']}/restore", headers=member.headers
    )
    assert native.status_code == 403 and "locked" in native.json()["detail"]
    arxiv = client.get(
        f"{FM}/{wid}/restore_checkpoint/{checkpoint['checksum']}", headers=member.headers
    )
    assert arxiv.status_code == 403 and arxiv.json()["reason"] == "upload workspace is locked."
    assert paths(client, member, wid) == {"main.tex", "b.txt"}


def test_empty_workspace_unknown_and_malformed_checkpoints(
    client: TestClient, member: Member
) -> None:
    empty = client.post(API, headers=member.headers, json={}).json()["id"]
    refused = client.post(f"{API}/{empty}/checkpoints", headers=member.headers)
    assert refused.status_code == 400 and refused.json()["detail"] == "workspace is empty"
    arxiv = client.post(f"{FM}/{empty}/checkpoint", headers=member.headers)
    assert arxiv.status_code == 400 and arxiv.json()["reason"] == "workspace is empty"
    wid = new_workspace(client, member, {"main.tex": TEX})
    for key, status in [("nope", 404), ("x" * 65, 422), ("0" * 64, 404)]:
        answer = client.post(f"{API}/{wid}/checkpoints/{key}/restore", headers=member.headers)
        assert answer.status_code == status, (key, answer.text)
        answer = client.get(f"{FM}/{wid}/checkpoint/{key}", headers=member.headers)
        assert answer.status_code == status, (key, answer.text)
    assert client.post(f"{API}/999999/checkpoints", headers=member.headers).status_code == 404


def test_another_organisations_checkpoints_are_not_found(
    client: TestClient, member: Member, make_member: Callable[..., Member]
) -> None:
    wid = new_workspace(client, member, {"main.tex": TEX})
    checkpoint = client.post(f"{API}/{wid}/checkpoints", headers=member.headers).json()
    stranger = make_member()
    cid, checksum = checkpoint["id"], checkpoint["checksum"]
    for method, url in [
        ("POST", f"{API}/{wid}/checkpoints"),
        ("GET", f"{API}/{wid}/checkpoints"),
        ("GET", f"{API}/{wid}/checkpoints/{cid}"),
        ("GET", f"{API}/{wid}/checkpoints/{cid}/package"),
        ("POST", f"{API}/{wid}/checkpoints/{cid}/restore"),
        ("DELETE", f"{API}/{wid}/checkpoints/{cid}"),
        ("DELETE", f"{API}/{wid}/checkpoints"),
        ("POST", f"{FM}/{wid}/checkpoint"),
        ("GET", f"{FM}/{wid}/list_checkpoints"),
        ("GET", f"{FM}/{wid}/checkpoint/{checksum}"),
        ("GET", f"{FM}/{wid}/restore_checkpoint/{checksum}"),
        ("DELETE", f"{FM}/{wid}/delete_checkpoint/{checksum}"),
        ("POST", f"{FM}/{wid}/delete_all_checkpoints"),
    ]:
        answer = client.request(method, url, headers=stranger.headers)
        assert answer.status_code == 404, (method, url, answer.text)
        assert cid not in answer.text
    assert client.get(f"{API}/{wid}/checkpoints", headers=member.headers).json()["total"] == 1


def test_file_manager_routes_under_arxivs_names(client: TestClient, member: Member) -> None:
    wid = new_workspace(client, member, {"main.tex": TEX})
    saved = client.post(f"{FM}/{wid}/checkpoint", headers=member.headers)
    assert saved.status_code == 200, saved.text
    checksum = saved.json()["checksum"]
    assert saved.headers["etag"] == f'"{checksum}"'

    with_upload = client.post(
        f"{FM}/{wid}/checkpoint_with_upload",
        headers=member.headers,
        files={"file": ("b.txt", b"b\n")},
    )
    assert with_upload.status_code == 201, with_upload.text
    assert {f["public_filepath"] for f in with_upload.json()["files"]} == {"main.tex", "b.txt"}
    listed = client.get(f"{FM}/{wid}/list_checkpoints", headers=member.headers).json()
    # The checkpoint taken before the upload is the one saved first: the same content.
    assert [c["checksum"] for c in listed] == [checksum]
    assert listed[0]["file_count"] == 1 and listed[0]["name"].endswith(".tar.gz")

    content = client.get(f"{FM}/{wid}/checkpoint/{checksum}", headers=member.headers)
    assert content.status_code == 200 and content.headers["arxiv-owner"] == member.user_id
    with tarfile.open(fileobj=io.BytesIO(content.content), mode="r:gz") as tar:
        assert tar.getnames() == ["main.tex"]
    head = client.head(f"{FM}/{wid}/checkpoint/{checksum}", headers=member.headers)
    assert head.status_code == 200 and head.headers["content-length"] == str(len(content.content))

    restored = client.get(f"{FM}/{wid}/restore_checkpoint/{checksum}", headers=member.headers)
    assert restored.status_code == 200, restored.text
    body = restored.json()
    assert body["reason"] == "restored checkpoint" and body["checksum"] == checksum
    assert [f["public_filepath"] for f in body["files"]] == ["main.tex"]

    client.post(f"{FM}/{wid}", headers=member.headers, files={"file": ("c.txt", b"c\n")})
    client.post(f"{FM}/{wid}/checkpoint", headers=member.headers)
    deleted = client.delete(f"{FM}/{wid}/delete_checkpoint/{checksum}", headers=member.headers)
    assert deleted.status_code == 200 and deleted.json()["reason"] == "deleted checkpoint"
    assert len(client.get(f"{FM}/{wid}/list_checkpoints", headers=member.headers).json()) == 1
    cleared = client.post(f"{FM}/{wid}/delete_all_checkpoints", headers=member.headers)
    assert cleared.status_code == 200 and cleared.json()["reason"] == "deleted all checkpoints"
    assert client.get(f"{FM}/{wid}/list_checkpoints", headers=member.headers).json() == []
    # The files are untouched by checkpoint deletions.
    assert paths(client, member, wid) == {"main.tex", "c.txt"}


def test_checkpoint_with_upload_on_a_locked_workspace_saves_nothing(
    client: TestClient, member: Member
) -> None:
    wid = new_workspace(client, member, {"main.tex": TEX})
    client.post(f"{API}/{wid}/lock", headers=member.headers)
    answer = client.post(
        f"{FM}/{wid}/checkpoint_with_upload",
        headers=member.headers,
        files={"file": ("b.txt", b"b\n")},
    )
    assert answer.status_code == 403
    assert client.get(f"{FM}/{wid}/list_checkpoints", headers=member.headers).json() == []


def test_the_sdk_saves_lists_downloads_restores_and_deletes(
    app: Any, member: Member, tmp_path: Path
) -> None:
    with TestClient(app) as http:
        sdk = Client("http://testserver", token=member.token, http_client=http)
        archive = tmp_path / "p.tar.gz"
        archive.write_bytes(tar_gz({"main.tex": TEX}))
        workspace = sdk.workspaces.upload(archive)
        saved = workspace.save_checkpoint()
        assert isinstance(saved, Checkpoint) and saved.checksum == workspace.checksum
        extra = tmp_path / "b.txt"
        extra.write_bytes(b"b\n")
        workspace.upload(extra)
        assert [c.id for c in workspace.checkpoints] == [saved.id]
        assert workspace.checkpoint(saved.checksum).id == saved.id
        target = saved.download(tmp_path)
        with tarfile.open(target, mode="r:gz") as tar:
            assert tar.getnames() == ["main.tex"]
        workspace.lock()
        with pytest.raises(errors.Forbidden):
            workspace.restore(saved)
        workspace.unlock()
        assert workspace.restore(saved).file_count == 1
        assert workspace.checksum == saved.checksum
        saved.delete()
        with pytest.raises(errors.NotFound):
            workspace.checkpoint(saved.id)
        workspace.save_checkpoint()
        workspace.delete_checkpoints()
        assert list(workspace.checkpoints) == []
