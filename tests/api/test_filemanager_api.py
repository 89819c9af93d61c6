"""The arXiv-style file manager API in-process: the workspace life cycle and hostile input."""

from __future__ import annotations

import io
import tarfile
import threading
import zipfile
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.archives import tar_gz
from tests.factories import Member

API = "/filemanager/api"
PAPER_TEX = rb"""\documentclass{article}
\begin{document}
Hello, world.
\end{document}
"""


def upload(
    client: TestClient, member: Member, name: str, data: bytes, path: str = API, **form: str
) -> Any:
    return client.post(path, headers=member.headers, files={"file": (name, data)}, data=form)


@pytest.fixture
def member(make_member: Callable[..., Member]) -> Member:
    return make_member()


def test_upload_archive_creates_workspace_with_summary(client: TestClient, member: Member) -> None:
    # A .bbl, not a .bib: the arXiv rules make a .bib without its .bbl an error.
    bbl = b"\\begin{thebibliography}{1}\n"
    archive = tar_gz({"paper/main.tex": PAPER_TEX, "paper/refs.bbl": bbl})
    answer = upload(client, member, "paper.tar.gz", archive)
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert answer.headers["ARXIV-OWNER"] == member.user_id == answer.headers["X-Cairn-Owner"]
    assert answer.headers["Location"].endswith(f"{API}/{body['upload_id']}")
    for key in (
        "upload_id",
        "upload_total_size",
        "upload_compressed_size",
        "created_datetime",
        "modified_datetime",
        "start_datetime",
        "completion_datetime",
        "files",
        "errors",
        "upload_status",
        "workspace_state",
        "lock_state",
        "source_format",
        "checksum",
    ):
        assert key in body
    assert body["workspace_state"] == "ACTIVE" and body["lock_state"] == "UNLOCKED"
    assert body["source_format"] == "tex"
    assert body["upload_status"] in ("READY", "READY_WITH_WARNINGS")
    paths = {f["public_filepath"]: f for f in body["files"]}
    assert set(paths) == {"main.tex", "refs.bbl"}
    tex = next(f for f in body["files"] if f["name"] == "main.tex")
    assert tex["type"].startswith("LATEX") and tex["size"] == len(PAPER_TEX)
    assert body["upload_total_size"] == sum(f["size"] for f in body["files"])
    summary = client.get(f"{API}/{body['upload_id']}", headers=member.headers)
    assert summary.status_code == 200 and summary.json()["checksum"] == body["checksum"]


def test_add_upload_replaces_and_changes_checksum(client: TestClient, member: Member) -> None:
    first = upload(client, member, "main.tex", PAPER_TEX).json()
    wid = first["upload_id"]
    second = upload(
        client, member, "fig.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 64, path=f"{API}/{wid}"
    )
    assert second.status_code == 201
    assert {f["public_filepath"] for f in second.json()["files"]} == {"main.tex", "fig.png"}
    assert second.json()["checksum"] != first["checksum"]
    again = upload(
        client, member, "main.tex", PAPER_TEX.replace(b"Hello", b"Bye"), path=f"{API}/{wid}"
    ).json()
    assert len(again["files"]) == 2
    anc = upload(
        client, member, "data.csv", b"a,b\n1,2\n", path=f"{API}/{wid}", ancillary="true"
    ).json()
    assert "anc/data.csv" in {f["public_filepath"] for f in anc["files"]}


def test_content_package_etag_304_head_and_single_file(client: TestClient, member: Member) -> None:
    body = upload(
        client, member, "paper.tar.gz", tar_gz({"main.tex": PAPER_TEX, "sub/notes.txt": b"notes\n"})
    ).json()
    wid, checksum = body["upload_id"], body["checksum"]
    head = client.head(f"{API}/{wid}/content", headers=member.headers)
    assert head.status_code == 200 and head.headers["ETag"] == f'"{checksum}"'
    got = client.get(f"{API}/{wid}/content", headers=member.headers)
    assert got.status_code == 200 and got.headers["ETag"] == head.headers["ETag"]
    assert int(got.headers["Content-Length"]) == len(got.content)
    assert f"{wid}.tar.gz" in got.headers["Content-Disposition"]
    assert "Last-Modified" in got.headers
    with tarfile.open(fileobj=io.BytesIO(got.content), mode="r:gz") as tar:
        assert sorted(tar.getnames()) == ["main.tex", "sub/notes.txt"]
        main = tar.extractfile("main.tex")
        assert main is not None and main.read() == PAPER_TEX
    again = client.get(f"{API}/{wid}/content", headers=member.headers)
    assert again.content == got.content  # cached and deterministic
    assert client.get(f"{API}/{wid}", headers=member.headers).json()[
        "upload_compressed_size"
    ] == len(got.content)
    cached = client.get(
        f"{API}/{wid}/content", headers={**member.headers, "If-None-Match": f'"{checksum}"'}
    )
    assert cached.status_code == 304 and cached.content == b""
    one = client.get(f"{API}/{wid}/sub/notes.txt/content", headers=member.headers)
    assert one.status_code == 200 and one.content == b"notes\n"
    assert 'filename="notes.txt"' in one.headers["Content-Disposition"]
    assert (
        client.head(f"{API}/{wid}/sub/notes.txt/content", headers=member.headers).headers[
            "Content-Length"
        ]
        == "6"
    )
    assert client.get(f"{API}/{wid}/nope.txt/content", headers=member.headers).status_code == 404
    log = client.get(f"{API}/{wid}/log", headers=member.headers).text
    assert log.count("downloaded package") == 2  # two GETs; HEAD and 304 are not downloads
    assert "downloaded file 'sub/notes.txt'" in log


def test_delete_file_delete_all_and_log(client: TestClient, member: Member) -> None:
    body = upload(
        client, member, "paper.tar.gz", tar_gz({"main.tex": PAPER_TEX, "extra.txt": b"x\n"})
    ).json()
    wid = body["upload_id"]
    gone = client.delete(f"{API}/{wid}/extra.txt", headers=member.headers)
    assert gone.status_code == 200 and gone.json()["reason"] == "deleted file"
    assert [f["public_filepath"] for f in gone.json()["files"]] == ["main.tex"]
    assert gone.json()["checksum"] != body["checksum"]
    assert client.delete(f"{API}/{wid}/extra.txt", headers=member.headers).status_code == 404
    cleared = client.post(f"{API}/{wid}/delete_all", headers=member.headers)
    assert cleared.status_code == 200 and cleared.json()["files"] == []
    assert cleared.json()["reason"] == "deleted all files"
    assert client.get(f"{API}/{wid}/content", headers=member.headers).status_code == 404
    log = client.get(f"{API}/{wid}/log", headers=member.headers)
    assert log.status_code == 200 and log.headers["content-type"].startswith("text/plain")
    lines = log.text.splitlines()
    assert any("workspace created" in line for line in lines)
    assert any("deleted file 'extra.txt'" in line for line in lines)
    assert "deleted all files" in lines[-1]
    entries = client.get(
        f"{API}/{wid}/log", headers={**member.headers, "Accept": "application/json"}
    ).json()
    assert [e["at"] for e in entries] == sorted(e["at"] for e in entries)


def test_lock_release_and_delete_states(client: TestClient, member: Member) -> None:
    wid = upload(client, member, "main.tex", PAPER_TEX).json()["upload_id"]
    base = f"{API}/{wid}"
    locked = client.post(f"{base}/lock", headers=member.headers)
    assert locked.json()["lock_state"] == "LOCKED" and locked.json()["reason"] == "locked workspace"
    refused = upload(client, member, "b.txt", b"b\n", path=base)
    assert refused.status_code == 403 and refused.json()["reason"] == "upload workspace is locked."
    assert client.delete(f"{base}/main.tex", headers=member.headers).status_code == 403
    assert client.post(f"{base}/delete_all", headers=member.headers).status_code == 403
    assert client.get(base, headers=member.headers).json()["lock_state"] == "LOCKED"
    client.post(f"{base}/unlock", headers=member.headers)
    released = client.post(f"{base}/release", headers=member.headers).json()
    assert released["workspace_state"] == "RELEASED"
    refused = upload(client, member, "b.txt", b"b\n", path=base)
    assert refused.status_code == 403
    assert refused.json()["reason"] == "upload workspace is not active."
    client.post(f"{base}/unrelease", headers=member.headers)
    assert upload(client, member, "b.txt", b"b\n", path=base).status_code == 201
    deleted = client.delete(base, headers=member.headers)
    assert deleted.status_code == 200 and deleted.json()["workspace_state"] == "DELETED"
    assert deleted.json()["files"] == []
    assert client.delete(base, headers=member.headers).status_code == 404
    assert upload(client, member, "c.txt", b"c\n", path=base).status_code == 404
    assert client.post(f"{base}/release", headers=member.headers).status_code == 404
    assert client.get(base, headers=member.headers).json()["workspace_state"] == "DELETED"


def test_other_organisation_and_unknown_workspace_are_404(
    client: TestClient, make_member: Callable[..., Member]
) -> None:
    owner, stranger = make_member(), make_member()
    wid = upload(client, owner, "main.tex", PAPER_TEX).json()["upload_id"]
    for method, path in [
        ("GET", f"{API}/{wid}"),
        ("GET", f"{API}/{wid}/content"),
        ("GET", f"{API}/{wid}/log"),
        ("GET", f"{API}/{wid}/main.tex/content"),
        ("DELETE", f"{API}/{wid}/main.tex"),
        ("POST", f"{API}/{wid}/lock"),
        ("DELETE", f"{API}/{wid}"),
        ("GET", f"{API}/999999"),
    ]:
        answer = client.request(method, path, headers=stranger.headers)
        assert answer.status_code == 404, (method, path)
        assert answer.json()["reason"] == "workspace not found"
    assert upload(client, stranger, "x.txt", b"x\n", path=f"{API}/{wid}").status_code == 404
    assert client.get(f"{API}/not-a-number", headers=owner.headers).status_code == 422
    listing = client.get("/api/v1/workspaces", headers=stranger.headers).json()
    assert listing["total"] == 0
    mine = client.get("/api/v1/workspaces", headers=owner.headers).json()
    assert [w["id"] for w in mine["items"]] == [wid]


def test_viewer_can_read_but_not_write(
    client: TestClient, make_member: Callable[..., Member]
) -> None:
    owner = make_member()
    viewer = make_member(privilege="view", organisation_id=owner.organisation_id)
    wid = upload(client, owner, "main.tex", PAPER_TEX).json()["upload_id"]
    assert client.get(f"{API}/{wid}", headers=viewer.headers).status_code == 200
    assert upload(client, viewer, "x.txt", b"x\n", path=f"{API}/{wid}").status_code == 403
    assert upload(client, viewer, "x.txt", b"x\n").status_code == 403


def test_bad_requests_use_arxiv_messages(client: TestClient, member: Member) -> None:
    missing = client.post(API, headers=member.headers, data={"archive": "math"})
    assert missing.status_code == 400 and missing.json()["reason"] == "missing file/archive payload"
    nameless = client.post(API, headers=member.headers, files={"file": ("", b"data")})
    assert nameless.status_code in (400, 422)
    empty = upload(client, member, "empty.tex", b"")
    assert empty.status_code == 400 and empty.json()["reason"] == "file payload is zero length"
    assert client.get("/api/v1/workspaces", headers=member.headers).json()["total"] == 0
    assert client.post(API, files={"file": ("a.txt", b"a")}).status_code == 401


def test_fatal_upload_changes_nothing(client: TestClient, member: Member) -> None:
    body = upload(client, member, "main.tex", PAPER_TEX).json()
    wid = body["upload_id"]
    broken = upload(
        client, member, "broken.tar.gz", b"\x1f\x8b\x08\x00garbage" * 10, path=f"{API}/{wid}"
    )
    assert broken.status_code == 201
    after = broken.json()
    assert after["upload_status"] == "ERRORS"
    assert any(level == "fatal" for level, _, _ in after["errors"])
    assert [f["public_filepath"] for f in after["files"]] == ["main.tex"]
    assert after["checksum"] == body["checksum"]


def test_zip_traversal_never_escapes(client: TestClient, member: Member, settings: Any) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("../../escape.txt", b"evil\n")
        archive.writestr("/etc/passwd-copy", b"evil\n")
        archive.writestr("ok.txt", b"fine\n")
    body = upload(client, member, "evil.zip", buffer.getvalue()).json()
    paths = {f["public_filepath"] for f in body["files"]}
    assert all(".." not in p and not p.startswith("/") for p in paths)
    assert not list(settings.data_dir.parent.glob("**/escape.txt"))


def test_concurrent_uploads_to_one_workspace_lose_nothing(app: Any, member: Member) -> None:
    with TestClient(app) as client:
        wid = upload(client, member, "main.tex", PAPER_TEX).json()["upload_id"]
    errors: list[str] = []

    def send(n: int) -> None:
        with TestClient(app) as own:
            answer = upload(
                own, member, f"file{n}.txt", f"content {n}\n".encode(), path=f"{API}/{wid}"
            )
            if answer.status_code != 201:
                errors.append(answer.text)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with TestClient(app) as client:
        body = client.get(f"{API}/{wid}", headers=member.headers).json()
    assert {f["public_filepath"] for f in body["files"]} == {
        "main.tex",
        *(f"file{n}.txt" for n in range(8)),
    }
    assert body["upload_total_size"] == sum(f["size"] for f in body["files"])


def test_upload_over_the_body_limit_is_413_and_creates_nothing(
    settings: Any, make_member: Callable[..., Member]
) -> None:
    from cairn.api import create_app

    small = settings.model_copy(update={"max_upload_bytes": 64 * 1024})
    member = make_member()
    app = create_app(small)
    try:
        with TestClient(app) as client:
            answer = upload(client, member, "big.bin", b"x" * (256 * 1024))
            assert answer.status_code == 413
            assert answer.json()["reason"].startswith("Request body is over the limit")
            listing = client.get("/api/v1/workspaces", headers=member.headers).json()
            assert listing["total"] == 0
    finally:
        app.state.engine.dispose()


def test_overlong_form_fields_are_422(client: TestClient, member: Member) -> None:
    long_archive = upload(client, member, "a.txt", b"a\n", archive="x" * 101)
    assert long_archive.status_code == 422
    long_org = upload(client, member, "a.txt", b"a\n", organisation_id="o" * 65)
    assert long_org.status_code == 422
    assert client.get("/api/v1/workspaces", headers=member.headers).json()["total"] == 0


def test_creating_in_another_organisation_is_404(
    client: TestClient, make_member: Callable[..., Member]
) -> None:
    mine, theirs = make_member(), make_member()
    answer = upload(client, mine, "a.txt", b"a\n", organisation_id=theirs.organisation_id)
    assert answer.status_code == 404
    listing = client.get("/api/v1/workspaces", headers=theirs.headers).json()
    assert listing["total"] == 0
