"""Every upload of the hostile corpus through the API: no 500, nothing outside the workspace,
and a fatal upload leaves the workspace exactly as it was."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cairn.config import Settings
from cairn.workspaces._arxiv_rules import msg_bbl_missing
from tests.factories import Member
from tests.workspaces.hostile import CORPUS, OUTCOME

API = "/filemanager/api"
TEX = b"\\documentclass{article}\n\\begin{document}Kept.\\end{document}\n"


def _all_files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file() or p.is_symlink()}


# /filemanager/api applies arXiv's rules (issue #13, section 1); where they end an upload
# otherwise than cairn's own (OUTCOME, the native default), what arXiv does.
ARXIV_OUTCOME = {
    "data_gz": "fatal",  # a gzip of one file that is not a tar: "Unable to read tar"
    "gzip_embedded_name": "fatal",
    "tiny_files": "fatal",  # more files than a paper target takes
    "latex_paper": "errors",  # refs.bib without refs.bbl: bbl_missing
}


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_hostile_upload(
    name: str,
    client: TestClient,
    make_member: Callable[..., Member],
    settings: Settings,
    tmp_path: Path,
) -> None:
    member = make_member()
    first = client.post(API, headers=member.headers, files={"file": ("main.tex", TEX)}).json()
    wid = first["upload_id"]
    corpus_dir = tmp_path / "corpus"
    corpus_dir.mkdir()
    upload = CORPUS[name](corpus_dir)
    client.app.state.package_builder.wait_idle()  # type: ignore[attr-defined]
    outside_before = _all_files(tmp_path) - _all_files(settings.data_dir)

    with upload.open("rb") as handle:
        answer = client.post(
            f"{API}/{wid}", headers=member.headers, files={"file": (upload.name, handle)}
        )

    if upload.stat().st_size == 0:
        assert answer.status_code == 400
        assert answer.json()["reason"] == "file payload is zero length"
        return
    assert answer.status_code == 201, answer.text
    body = answer.json()
    levels = {level for level, _, _ in body["errors"]}
    outcome = ARXIV_OUTCOME.get(name, OUTCOME[name])
    if outcome == "errors":  # a workspace-wide arXiv error: the files stay, the status says so
        assert body["upload_status"] == "ERRORS"
        assert [m for level, _, m in body["errors"] if level == "fatal"] == [
            msg_bbl_missing("refs")
        ]
        assert {f["public_filepath"] for f in body["files"]} >= {"main.tex", "refs.bib"}
    elif outcome == "fatal":
        assert body["upload_status"] == "ERRORS"
        assert [f["public_filepath"] for f in body["files"]] == ["main.tex"]
        assert body["checksum"] == first["checksum"]
    else:
        assert "fatal" not in levels, body["errors"][:5]
        assert body["upload_status"] != "ERRORS"
        assert len(body["files"]) >= 1
    for f in body["files"]:
        path = f["public_filepath"]
        assert not path.startswith("/") and ".." not in path.split("/") and "\\" not in path
    # Nothing new outside the data folder, and no staging or spooled upload left behind, once
    # the package build the upload queued has finished (issue #13, section 6).
    client.app.state.package_builder.wait_idle()  # type: ignore[attr-defined]
    assert _all_files(tmp_path) - _all_files(settings.data_dir) == outside_before
    assert list(settings.work_dir.iterdir()) == []
    log = client.get(f"{API}/{wid}/log", headers=member.headers)
    assert log.status_code == 200
    assert f"upload of '{upload.name}'" in log.text
