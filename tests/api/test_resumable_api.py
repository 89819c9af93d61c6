"""Resumable (tus 1.0) uploads over HTTP, in-process: the protocol's answers and headers, the
bad input of issue #13 section 7, and another organisation's ids."""

from __future__ import annotations

import base64
import hashlib
import itertools
from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from cairn.db import UnitOfWork, utcnow
from cairn.workspaces.models import WorkspaceUpload
from tests.archives import tar_gz
from tests.factories import Member

API = "/api/v1/workspaces"
TUS = {"Tus-Resumable": "1.0.0"}
STREAM = {"Content-Type": "application/offset+octet-stream"}


@pytest.fixture
def member(make_member: Callable[..., Member]) -> Member:
    return make_member()


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def sha256_header(data: bytes) -> str:
    return "sha256 " + base64.b64encode(hashlib.sha256(data).digest()).decode()


def empty_workspace(client: TestClient, member: Member, archive: str | None = None) -> int:
    answer = client.post(API, json={"archive": archive}, headers=member.headers)
    assert answer.status_code == 201, answer.text
    return int(answer.json()["id"])


def start(
    client: TestClient, member: Member, wid: int, length: int, name: str = "data.bin", **kw: str
) -> str:
    """Create an upload and return its path (from Location)."""
    metadata = ",".join(f"{k} {b64(v)}" for k, v in {"filename": name, **kw}.items())
    answer = client.post(
        f"{API}/{wid}/uploads",
        headers={
            **member.headers,
            **TUS,
            "Upload-Length": str(length),
            "Upload-Metadata": metadata,
        },
    )
    assert answer.status_code == 201, answer.text
    assert answer.headers["tus-resumable"] == "1.0.0"
    assert "upload-expires" in answer.headers
    return answer.headers["location"].split("http://127.0.0.1:8000", 1)[-1]


def patch(
    client: TestClient, member: Member, url: str, offset: int, data: bytes, **headers: str
) -> object:
    return client.patch(
        url,
        content=data,
        headers={**member.headers, **TUS, **STREAM, "Upload-Offset": str(offset), **headers},
    )


def offset_of(client: TestClient, member: Member, url: str) -> int:
    answer = client.head(url, headers={**member.headers, **TUS})
    assert answer.status_code == 200, answer.headers
    assert answer.headers["cache-control"] == "no-store"
    return int(answer.headers["upload-offset"])


def test_options_tells_the_capabilities_and_this_workspaces_limit(
    client: TestClient, member: Member
) -> None:
    paper = empty_workspace(client, member, archive="math")
    data = empty_workspace(client, member)
    answer = client.options(f"{API}/{paper}/uploads", headers=member.headers)
    assert answer.status_code == 204
    assert answer.headers["tus-version"] == "1.0.0"
    assert set(answer.headers["tus-extension"].split(",")) == {
        "creation",
        "creation-with-upload",
        "termination",
        "checksum",
        "expiration",
    }
    assert answer.headers["tus-checksum-algorithm"] == "sha256"
    assert int(answer.headers["tus-max-size"]) == 100 * 1024 * 1024  # the paper total limit
    other = client.options(f"{API}/{data}/uploads", headers=member.headers)
    assert int(other.headers["tus-max-size"]) == 8 * 1024**3  # the upload body limit


def test_an_archive_in_three_patches_is_processed_like_any_upload(
    client: TestClient, member: Member
) -> None:
    wid = empty_workspace(client, member)
    archive = tar_gz({"main.tex": b"\\documentclass{article}\n", "data/a.csv": b"a,b\n1,2\n"})
    url = start(client, member, wid, len(archive), name="paper.tar.gz")
    assert offset_of(client, member, url) == 0
    cuts = [0, 50, 100, len(archive)]
    for begin, end in itertools.pairwise(cuts):
        chunk = archive[begin:end]
        answer = patch(
            client, member, url, begin, chunk, **{"Upload-Checksum": sha256_header(chunk)}
        )
        assert answer.status_code == 204, answer.text  # type: ignore[attr-defined]
        assert int(answer.headers["upload-offset"]) == end  # type: ignore[attr-defined]
    workspace = client.get(f"{API}/{wid}", headers=member.headers).json()
    files = client.get(f"{API}/{wid}/files", headers=member.headers).json()["items"]
    assert {f["path"] for f in files} == {"main.tex", "data/a.csv"}
    assert workspace["file_count"] == 2
    # The upload is over: its URL is gone, and so are its partial bytes.
    assert client.head(url, headers={**member.headers, **TUS}).status_code == 404
    folder = client.app.state.blobs.partial_folder()  # type: ignore[attr-defined]
    assert list(folder.iterdir()) == []
    log = client.get(f"{API}/{wid}/log", headers=member.headers).json()
    assert any("resumable upload" in entry["message"] for entry in log)


def test_creation_with_upload_sends_the_whole_file_at_once(
    client: TestClient, member: Member
) -> None:
    wid = empty_workspace(client, member)
    data = b"x,y\n" * 1000
    answer = client.post(
        f"{API}/{wid}/uploads",
        content=data,
        headers={
            **member.headers,
            **TUS,
            **STREAM,
            "Upload-Length": str(len(data)),
            "Upload-Metadata": f"filename {b64('table.csv')}",
        },
    )
    assert answer.status_code == 201, answer.text
    assert int(answer.headers["upload-offset"]) == len(data)
    files = client.get(f"{API}/{wid}/files", headers=member.headers).json()["items"]
    assert [(f["path"], f["size"]) for f in files] == [("table.csv", len(data))]


def test_a_wrong_offset_is_409_and_changes_nothing(client: TestClient, member: Member) -> None:
    wid = empty_workspace(client, member)
    url = start(client, member, wid, 10)
    assert patch(client, member, url, 0, b"12345").status_code == 204  # type: ignore[attr-defined]
    for wrong in (0, 3, 6):
        answer = patch(client, member, url, wrong, b"67890")
        assert answer.status_code == 409, answer.text  # type: ignore[attr-defined]
        assert answer.json()["errors"] == {"offset": 5}  # type: ignore[attr-defined]
        assert answer.headers["tus-resumable"] == "1.0.0"  # type: ignore[attr-defined]
    assert offset_of(client, member, url) == 5


def test_a_checksum_mismatch_is_460_and_keeps_none_of_the_bytes(
    client: TestClient, member: Member
) -> None:
    wid = empty_workspace(client, member)
    url = start(client, member, wid, 10)
    answer = patch(client, member, url, 0, b"12345", **{"Upload-Checksum": sha256_header(b"nope")})
    assert answer.status_code == 460, answer.text  # type: ignore[attr-defined]
    assert answer.json()["code"] == "checksum-mismatch"  # type: ignore[attr-defined]
    assert offset_of(client, member, url) == 0
    # A checksum in another algorithm, or malformed, is a bad request (nothing stored either).
    for value in ("md5 AAAA", "sha256 not-base64!", "sha256 " + b64("short")):
        bad = patch(client, member, url, 0, b"12345", **{"Upload-Checksum": value})
        assert bad.status_code == 400, (value, bad.text)  # type: ignore[attr-defined]
    assert offset_of(client, member, url) == 0
    good = patch(client, member, url, 0, b"12345", **{"Upload-Checksum": sha256_header(b"12345")})
    assert good.status_code == 204  # type: ignore[attr-defined]
    assert offset_of(client, member, url) == 5


def test_bytes_beyond_the_declared_length_are_refused(client: TestClient, member: Member) -> None:
    wid = empty_workspace(client, member)
    url = start(client, member, wid, 8)
    assert patch(client, member, url, 0, b"1234").status_code == 204  # type: ignore[attr-defined]
    answer = patch(client, member, url, 4, b"56789")
    assert answer.status_code == 413, answer.text  # type: ignore[attr-defined]
    assert offset_of(client, member, url) == 4
    # Sent chunked (no Content-Length), the excess is found while streaming: none kept.
    chunked = client.patch(
        url,
        content=iter([b"56", b"789"]),
        headers={**member.headers, **TUS, **STREAM, "Upload-Offset": "4"},
    )
    assert chunked.status_code == 413, chunked.text
    assert offset_of(client, member, url) == 4
    assert client.get(f"{API}/{wid}", headers=member.headers).json()["file_count"] == 0


def test_an_expired_upload_is_410(client: TestClient, member: Member) -> None:
    wid = empty_workspace(client, member)
    url = start(client, member, wid, 10)
    upload_id = url.rsplit("/", 1)[-1]
    with UnitOfWork(client.app.state.sessionmaker).transaction() as session:  # type: ignore[attr-defined]
        session.execute(
            update(WorkspaceUpload)
            .where(WorkspaceUpload.id == upload_id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    assert client.head(url, headers={**member.headers, **TUS}).status_code == 410
    answer = patch(client, member, url, 0, b"12345")
    assert answer.status_code == 410, answer.text  # type: ignore[attr-defined]
    assert answer.json()["code"] == "gone"  # type: ignore[attr-defined]
    # Terminating an expired upload still works.
    assert client.delete(url, headers={**member.headers, **TUS}).status_code == 204


def test_termination_removes_the_upload(client: TestClient, member: Member) -> None:
    wid = empty_workspace(client, member)
    url = start(client, member, wid, 10)
    patch(client, member, url, 0, b"12345")
    answer = client.delete(url, headers={**member.headers, **TUS})
    assert answer.status_code == 204 and answer.headers["tus-resumable"] == "1.0.0"
    assert client.head(url, headers={**member.headers, **TUS}).status_code == 404
    assert patch(client, member, url, 5, b"67890").status_code == 404  # type: ignore[attr-defined]
    folder = client.app.state.blobs.partial_folder()  # type: ignore[attr-defined]
    assert list(folder.iterdir()) == []


def test_protocol_errors(client: TestClient, member: Member) -> None:
    wid = empty_workspace(client, member)
    url = start(client, member, wid, 10)
    no_version = client.head(url, headers=member.headers)
    assert no_version.status_code == 412 and no_version.headers["tus-version"] == "1.0.0"
    wrong_type = client.patch(
        url, content=b"123", headers={**member.headers, **TUS, "Upload-Offset": "0"}
    )
    assert wrong_type.status_code == 415, wrong_type.text
    no_offset = client.patch(url, content=b"123", headers={**member.headers, **TUS, **STREAM})
    assert no_offset.status_code == 400, no_offset.text
    base = {**member.headers, **TUS}
    cases = {
        "no length": {"Upload-Metadata": f"filename {b64('a')}"},
        "zero length": {"Upload-Length": "0", "Upload-Metadata": f"filename {b64('a')}"},
        "no filename": {"Upload-Length": "5"},
        "bad base64": {"Upload-Length": "5", "Upload-Metadata": "filename ***"},
        "key twice": {"Upload-Length": "5", "Upload-Metadata": f"filename {b64('a')},filename"},
        "other target": {
            "Upload-Length": "5",
            "Upload-Metadata": f"filename {b64('a')},archive {b64('math')}",
        },
    }
    for label, headers in cases.items():
        answer = client.post(f"{API}/{wid}/uploads", headers={**base, **headers})
        assert answer.status_code == 400, (label, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
    huge = client.post(
        f"{API}/{wid}/uploads",
        headers={
            **base,
            "Upload-Length": str(9 * 1024**3),
            "Upload-Metadata": f"filename {b64('a')}",
        },
    )
    assert huge.status_code == 413, huge.text
    assert offset_of(client, member, url) == 0


def test_a_locked_workspace_refuses_new_bytes(client: TestClient, member: Member) -> None:
    wid = empty_workspace(client, member)
    url = start(client, member, wid, 10)
    assert client.post(f"{API}/{wid}/lock", headers=member.headers).status_code == 200
    assert patch(client, member, url, 0, b"12345").status_code == 403  # type: ignore[attr-defined]
    assert offset_of(client, member, url) == 0


def test_another_organisation_cannot_resume_or_see_an_upload(
    client: TestClient, member: Member, make_member: Callable[..., Member]
) -> None:
    wid = empty_workspace(client, member)
    url = start(client, member, wid, 10)
    patch(client, member, url, 0, b"12345")
    stranger = make_member()
    own = empty_workspace(client, stranger)
    upload_id = url.rsplit("/", 1)[-1]
    for path in (url, f"{API}/{own}/uploads/{upload_id}"):  # the upload via its own workspace too
        head = {**stranger.headers, **TUS}
        assert client.head(path, headers=head).status_code == 404
        assert patch(client, stranger, path, 5, b"67890").status_code == 404  # type: ignore[attr-defined]
        assert client.delete(path, headers=head).status_code == 404
    assert client.options(f"{API}/{wid}/uploads", headers=stranger.headers).status_code == 404
    assert offset_of(client, member, url) == 5
