"""cairn's own workspace API in-process: every operation, and the same upload through both APIs."""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cairn.config import Settings
from tests.api.test_filemanager_api import PAPER_TEX
from tests.archives import tar_gz
from tests.factories import Member

API = "/api/v1/workspaces"
ARCHIVE = tar_gz(
    {
        "paper/main.tex": PAPER_TEX,
        "paper/refs.bib": b"@article{x, title={T}}\n",
        "paper/.DS_Store": b"junk",
        "paper/notes (draft).txt": b"draft\n",
        "paper/fig/plot.png": b"\x89PNG\r\n\x1a\n" + b"\0" * 64,
    }
)


@pytest.fixture
def member(make_member: Callable[..., Member]) -> Member:
    return make_member()


def upload(
    client: TestClient,
    member: Member,
    name: str,
    data: bytes,
    path: str = f"{API}/upload",
    **form: str,
) -> Any:
    return client.post(path, headers=member.headers, files={"file": (name, data)}, data=form)


def files_of(client: TestClient, member: Member, wid: int) -> dict[str, dict[str, Any]]:
    page = client.get(f"{API}/{wid}/files", headers=member.headers, params={"page_size": 500})
    assert page.status_code == 200, page.text
    return {f["path"]: f for f in page.json()["items"]}


def test_the_same_archive_through_both_apis_gives_the_same_workspace(
    client: TestClient, member: Member
) -> None:
    # /filemanager/api applies arXiv's rules by default; the native API when asked for them.
    native = upload(client, member, "paper.tar.gz", ARCHIVE, archive="arxiv")
    arxiv = upload(client, member, "paper.tar.gz", ARCHIVE, path="/filemanager/api")
    assert native.status_code == arxiv.status_code == 201, (native.text, arxiv.text)
    ours, theirs = native.json(), arxiv.json()
    listed = files_of(client, member, ours["id"])
    assert set(listed) == {f["public_filepath"] for f in theirs["files"]}
    for f in theirs["files"]:
        assert (listed[f["public_filepath"]]["size"], listed[f["public_filepath"]]["type"]) == (
            f["size"],
            f["type"],
        )
    # The checksum covers paths, contents and modification times: equal once the times are.
    assert (
        ours["status"] == theirs["upload_status"]
        and ours["source_format"] == theirs["source_format"]
    )
    assert [(f["level"], f["path"], f["message"]) for f in ours["findings"]] == [
        tuple(triple) for triple in theirs["errors"]
    ]
    same = {p: (f["sha256"], f["size"]) for p, f in listed.items()}
    other = files_of(client, member, theirs["upload_id"])
    assert same == {p: (f["sha256"], f["size"]) for p, f in other.items()}


def test_life_cycle_in_cairns_names(client: TestClient, member: Member, settings: Settings) -> None:
    made = upload(client, member, "paper.tar.gz", ARCHIVE)
    assert made.status_code == 201
    body = made.json()
    wid = body["id"]
    assert made.headers["Location"] == f"{settings.base_url}{API}/{wid}"
    assert body["state"] == "ACTIVE" and body["lock_state"] == "UNLOCKED"
    assert body["status"] == "READY_WITH_WARNINGS" and body["file_count"] == 4

    one = client.get(f"{API}/{wid}/files/main.tex", headers=member.headers).json()
    assert one["sha256"] == hashlib.sha256(PAPER_TEX).hexdigest()
    content = client.get(f"{API}/{wid}/content/main.tex", headers=member.headers)
    assert content.content == PAPER_TEX and content.headers["ETag"] == f'"{one["sha256"]}"'
    head = client.head(f"{API}/{wid}/content/main.tex", headers=member.headers)
    assert head.status_code == 200 and head.headers["Content-Length"] == str(len(PAPER_TEX))
    again = client.get(
        f"{API}/{wid}/content/main.tex",
        headers={**member.headers, "If-None-Match": content.headers["ETag"]},
    )
    assert again.status_code == 304

    added = upload(
        client, member, "data.csv", b"a,b\n1,2\n", path=f"{API}/{wid}/files", ancillary="true"
    )
    assert added.status_code == 201 and "anc/data.csv" in files_of(client, member, wid)

    package = client.get(f"{API}/{wid}/package", headers=member.headers)
    assert package.status_code == 200 and package.headers["ETag"] == f'"{added.json()["checksum"]}"'
    with tarfile.open(fileobj=io.BytesIO(package.content), mode="r:gz") as tar:
        assert set(tar.getnames()) == set(files_of(client, member, wid))
    not_modified = client.get(
        f"{API}/{wid}/package", headers={**member.headers, "If-None-Match": package.headers["ETag"]}
    )
    assert not_modified.status_code == 304

    assert client.post(f"{API}/{wid}/lock", headers=member.headers).json()["lock_state"] == "LOCKED"
    refused = upload(client, member, "x.txt", b"x\n", path=f"{API}/{wid}/files")
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
    assert "reason" not in refused.json()  # cairn's problem documents, not arXiv's
    client.post(f"{API}/{wid}/unlock", headers=member.headers)
    deleted = client.delete(f"{API}/{wid}/files/main.tex", headers=member.headers)
    assert deleted.status_code == 200 and "main.tex" not in files_of(client, member, wid)
    assert client.delete(f"{API}/{wid}/files", headers=member.headers).json()["file_count"] == 0
    released = client.post(f"{API}/{wid}/release", headers=member.headers).json()
    assert released["state"] == "RELEASED"
    client.post(f"{API}/{wid}/unrelease", headers=member.headers)
    log = client.get(f"{API}/{wid}/log", headers=member.headers).json()
    assert any("deleted file 'main.tex'" in e["message"] for e in log)
    assert client.delete(f"{API}/{wid}", headers=member.headers).json()["state"] == "DELETED"
    assert client.delete(f"{API}/{wid}", headers=member.headers).status_code == 404


def test_create_an_empty_workspace_then_upload(client: TestClient, member: Member) -> None:
    made = client.post(API, headers=member.headers, json={"archive": "math"})
    assert made.status_code == 201 and made.json()["file_count"] == 0
    wid = made.json()["id"]
    assert client.get(f"{API}/{wid}/package", headers=member.headers).status_code == 404
    up = upload(client, member, "main.tex", PAPER_TEX, path=f"{API}/{wid}/files")
    assert up.status_code == 201 and up.json()["archive"] == "math"
    unknown = client.post(API, headers=member.headers, json={"archive": "astrology"})
    assert unknown.status_code == 400 and "Known:" in unknown.json()["detail"]


def test_head_of_a_package_has_no_side_effect(client: TestClient, member: Member) -> None:
    wid = upload(client, member, "main.tex", PAPER_TEX).json()["id"]
    # The upload queued a background build (issue #13, section 6); a HEAD while none has
    # finished builds nothing (tests/api/test_package_builds_api.py holds one back).
    client.app.state.package_builder.wait(wid)  # type: ignore[attr-defined]
    log_before = client.get(f"{API}/{wid}/log", headers=member.headers).json()
    head = client.head(f"{API}/{wid}/package", headers=member.headers)
    assert head.status_code == 200
    assert client.get(f"{API}/{wid}/log", headers=member.headers).json() == log_before
    built = client.get(f"{API}/{wid}/package", headers=member.headers)
    assert head.headers["Content-Length"] == str(len(built.content))


@pytest.mark.parametrize("path", [f"{API}/upload", "/filemanager/api"])
def test_malformed_upload_forms_are_refused_and_create_nothing(
    client: TestClient, member: Member, path: str
) -> None:
    def answer(headers: dict[str, str] | None = None, **kwargs: Any) -> Any:
        return client.post(path, headers={**member.headers, **(headers or {})}, **kwargs)

    two = answer(files=[("file", ("a.txt", b"a\n")), ("file", ("b.txt", b"b\n"))])
    assert two.status_code == 400 and "one file" in two.json()["detail"]
    nul = answer(files={"file": ("a.txt", b"a\n")}, data={"archive": "ma\0th"})
    assert nul.status_code == 422 and "NUL" in nul.json()["detail"]
    unknown = answer(files={"file": ("a.txt", b"a\n")}, data={"archive": "astrology"})
    assert unknown.status_code == 400 and "math" in unknown.json()["detail"]
    twice = answer(files={"file": ("a.txt", b"a\n")}, data={"archive": ["math", "cs"]})
    assert twice.status_code == 400
    no_file = answer(data={"archive": "math"})
    assert no_file.status_code == 400 and no_file.json()["detail"] == "missing file/archive payload"
    empty = answer(files={"file": ("a.txt", b"")})
    assert empty.status_code == 400 and empty.json()["detail"] == "file payload is zero length"
    not_form = answer(content=b"{}", headers={"Content-Type": "application/json"})
    assert not_form.status_code == 400
    broken = answer(
        content=b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\nab',
        headers={"Content-Type": "multipart/form-data; boundary=xyz"},
    )
    assert broken.status_code == 400
    assert client.get(API, headers=member.headers).json()["total"] == 0


def test_a_json_route_takes_the_small_limit_whatever_the_content_type(client: TestClient) -> None:
    big = b"x" * (2 * 1024 * 1024)  # the test settings allow 1 MiB outside uploads
    for content_type in ("application/json", "multipart/form-data; boundary=x"):
        answer = client.post(
            "/api/v1/auth/login", content=big, headers={"Content-Type": content_type}
        )
        assert answer.status_code == 413, content_type
    upload_route = client.post(
        f"{API}/upload", content=big, headers={"Content-Type": "multipart/form-data; boundary=x"}
    )
    assert upload_route.status_code == 401  # the upload limit is larger: the token is missing
