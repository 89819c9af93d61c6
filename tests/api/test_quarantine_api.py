"""The workspace quarantine over HTTP, in-process: list, one entry, download, restore with its
errors (409 name taken, 422 a check refuses, 403 locked or not the owner, 404 another
organisation), the summary's sizes, and the SDK."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cairn import errors
from cairn.client import Client, RemovedFile
from tests.archives import tar_gz
from tests.factories import Member

API = "/api/v1/workspaces"
TEX = b"\\documentclass{article}\n\\begin{document}Hi\\end{document}\n"


@pytest.fixture
def member(make_member: Callable[..., Member]) -> Member:
    return make_member()


def upload(
    client: TestClient, member: Member, files: dict[str, bytes], wid: int | None = None
) -> Any:
    url = f"{API}/upload" if wid is None else f"{API}/{wid}/files"
    answer = client.post(url, headers=member.headers, files={"file": ("p.tar.gz", tar_gz(files))})
    assert answer.status_code == 201, answer.text
    return answer.json()


def test_list_get_download_and_the_summary(client: TestClient, member: Member) -> None:
    workspace = upload(client, member, {"main.tex": TEX, ".env": b"TOKEN=1\n"})
    wid = workspace["id"]
    assert (workspace["removed_count"], workspace["removed_size"]) == (1, 8)
    assert workspace["stored_size"] == workspace["total_size"] + 8
    page = client.get(f"{API}/{wid}/removed", headers=member.headers).json()
    assert page["total"] == 1 and page["page"] == 1
    (entry,) = page["items"]
    assert (entry["path"], entry["rule"], entry["size"]) == (".env", "hidden", 8)
    one = client.get(f"{API}/{wid}/removed/{entry['id']}", headers=member.headers)
    assert one.status_code == 200 and one.json() == entry
    got = client.get(f"{API}/{wid}/removed/{entry['id']}/content", headers=member.headers)
    assert got.status_code == 200 and got.content == b"TOKEN=1\n"
    assert got.headers["etag"].strip('"') == entry["sha256"]
    again = client.get(
        f"{API}/{wid}/removed/{entry['id']}/content",
        headers={**member.headers, "If-None-Match": got.headers["etag"]},
    )
    assert again.status_code == 304
    head = client.head(f"{API}/{wid}/removed/{entry['id']}/content", headers=member.headers)
    assert head.status_code == 200 and head.headers["content-length"] == "8"
    log = client.get(f"{API}/{wid}/log", headers=member.headers).json()
    assert sum("downloaded removed file '.env'" in e["message"] for e in log) == 1


def test_restore_errors_and_success(client: TestClient, member: Member) -> None:
    wid = upload(client, member, {"main.tex": TEX, "a.txt": b"old\n"})["id"]
    upload(client, member, {"a.txt": b"new\n"}, wid)
    (entry,) = client.get(f"{API}/{wid}/removed", headers=member.headers).json()["items"]
    url = f"{API}/{wid}/removed/{entry['id']}/restore"
    taken = client.post(url, headers=member.headers)
    assert taken.status_code == 409 and taken.headers["content-type"] == "application/problem+json"
    assert taken.json()["code"] == "name-taken"
    refused = client.post(url, headers=member.headers, params={"path": "main.tex/a.txt"})
    assert refused.status_code == 422, refused.text
    client.post(f"{API}/{wid}/lock", headers=member.headers)
    assert client.post(url, headers=member.headers, params={"overwrite": "true"}).status_code == 403
    client.post(f"{API}/{wid}/unlock", headers=member.headers)
    done = client.post(url, headers=member.headers, params={"overwrite": "true"})
    assert done.status_code == 200, done.text
    assert done.json()["removed_count"] == 1  # the replaced 'new' a.txt, kept in its turn
    content = client.get(f"{API}/{wid}/content/a.txt", headers=member.headers)
    assert content.content == b"old\n"
    assert client.post(url, headers=member.headers).status_code == 404  # restored: gone


def test_another_organisation_and_a_colleague(
    client: TestClient, member: Member, make_member: Callable[..., Member]
) -> None:
    wid = upload(client, member, {"main.tex": TEX, ".env": b"TOKEN=1\n"})["id"]
    (entry,) = client.get(f"{API}/{wid}/removed", headers=member.headers).json()["items"]
    stranger = make_member()
    for method, suffix in (
        ("GET", "/removed"),
        ("GET", f"/removed/{entry['id']}"),
        ("GET", f"/removed/{entry['id']}/content"),
        ("POST", f"/removed/{entry['id']}/restore"),
    ):
        answer = client.request(method, f"{API}/{wid}{suffix}", headers=stranger.headers)
        assert answer.status_code == 404, (suffix, answer.text)
        assert "TOKEN" not in answer.text and entry["id"] not in answer.text
    colleague = make_member(organisation_id=member.organisation_id, privilege="execute")
    listed = client.get(f"{API}/{wid}/removed", headers=colleague.headers)
    assert listed.status_code == 403, listed.text
    assert client.get(f"{API}/{wid}", headers=colleague.headers).status_code == 200


def test_the_sdk_lists_downloads_and_restores(app: Any, member: Member, tmp_path: Path) -> None:
    with TestClient(app) as http:
        sdk = Client("http://testserver", token=member.token, http_client=http)
        archive = tmp_path / "p.tar.gz"
        archive.write_bytes(tar_gz({"main.tex": TEX, ".env": b"TOKEN=1\n"}))
        workspace = sdk.workspaces.upload(archive)
        assert workspace.removed_count == 1 and workspace.stored_size == len(TEX) + 8
        (entry,) = workspace.removed
        assert isinstance(entry, RemovedFile) and entry.rule == "hidden"
        assert workspace.removed_file(entry.id).sha256 == entry.sha256
        saved = entry.download(tmp_path / "out.env")
        assert saved.read_bytes() == b"TOKEN=1\n"
        with pytest.raises(errors.Invalid):
            workspace.restore_removed(entry)  # a hidden name is removed again
        restored = workspace.restore_removed(entry, path="env.txt")
        assert restored.removed_count == 0 and restored.file_count == 2
        assert list(workspace.removed) == []
