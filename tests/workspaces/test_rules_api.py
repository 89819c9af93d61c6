"""The rule set per target through both APIs in-process (issue #13, section 1): /filemanager/api
applies arXiv's rules when the upload names no archive, the native API cairn's own; ``archive``
picks the rules on both."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cairn.workspaces._arxiv_rules import msg_bbl_missing
from tests.archives import tar_gz
from tests.factories import Member

FM = "/filemanager/api"
NATIVE = "/api/v1/workspaces/upload"
TEX = b"\\documentclass{article}\n\\begin{document}Hi\\end{document}\n"
PAPER = tar_gz(
    {"main.tex": TEX, "refs.bib": b"@article{x, title={T}}\n", "main.tex~": TEX, "Thumbs.db": b"x"}
)


@pytest.fixture
def member(make_member: Callable[..., Member]) -> Member:
    return make_member()


def post(client: TestClient, member: Member, path: str, name: str, data: bytes, **form: str) -> Any:
    answer = client.post(path, headers=member.headers, files={"file": (name, data)}, data=form)
    assert answer.status_code == 201, answer.text
    return answer.json()


def test_filemanager_applies_the_arxiv_rules_by_default(client: TestClient, member: Member) -> None:
    body = post(client, member, FM, "paper.tar.gz", PAPER)
    assert {f["public_filepath"] for f in body["files"]} == {
        "main.tex",
        "main.tex_",
        "refs.bib",
        "Thumbs.db",
    }
    assert body["upload_status"] == body["readiness"] == "ERRORS"
    assert ["fatal", "refs.bib", msg_bbl_missing("refs")] in body["errors"]
    native = client.get(f"/api/v1/workspaces/{body['upload_id']}", headers=member.headers).json()
    assert native["archive"] == "arxiv"
    # A later upload into it, on either API, keeps the workspace's rules: the .bbl removes the .bib.
    later = client.post(
        f"/api/v1/workspaces/{body['upload_id']}/files",
        headers=member.headers,
        files={"file": ("refs.bbl", b"\\begin{thebibliography}{1}\n")},
    )
    assert later.status_code == 201, later.text
    assert later.json()["status"] == "READY_WITH_WARNINGS"
    assert "refs.bib" not in {
        f["path"]
        for f in client.get(
            f"/api/v1/workspaces/{body['upload_id']}/files", headers=member.headers
        ).json()["items"]
    }


def test_the_native_default_keeps_cairns_rules(client: TestClient, member: Member) -> None:
    body = post(client, member, NATIVE, "paper.tar.gz", PAPER)
    assert body["archive"] is None and body["status"] == "READY_WITH_WARNINGS"
    listed = client.get(f"/api/v1/workspaces/{body['id']}/files", headers=member.headers).json()
    assert {f["path"] for f in listed["items"]} == {"main.tex", "refs.bib"}


@pytest.mark.parametrize("target", ["arxiv", "math", "hep-th"])
def test_archive_picks_the_arxiv_rules_on_the_native_api(
    client: TestClient, member: Member, target: str
) -> None:
    body = post(client, member, NATIVE, "paper.tar.gz", PAPER, archive=target)
    assert body["archive"] == target and body["status"] == "ERRORS"
    assert {"level": "fatal", "path": "refs.bib", "message": msg_bbl_missing("refs")} in body[
        "findings"
    ]


def test_archive_default_picks_cairns_rules_on_the_filemanager(
    client: TestClient, member: Member
) -> None:
    data = gzip.compress(b"a,b\n1,2\n")
    general = post(client, member, FM, "table.csv.gz", data, archive="default")
    assert general["upload_status"] == "READY_WITH_WARNINGS"  # a lone table: not a paper
    assert [f["public_filepath"] for f in general["files"]] == ["table.csv"]
    arxiv = post(client, member, FM, "table.csv.gz", data)
    assert arxiv["upload_status"] == "ERRORS" and arxiv["files"] == []
    assert arxiv["errors"] == [
        ["fatal", "table.csv.gz", "Unable to read tar 'table.csv': not a tar file"]
    ]
