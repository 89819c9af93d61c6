"""End to end: the workspace quarantine through the `cairn workspace` commands against a real
server (list, download, restore with a taken name), and `cairn admin gc` keeping a blob only
the quarantine refers to."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.archives import write_tar_gz
from tests.e2e.conftest import Server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

EMAIL, PASSWORD = "grace@example.org", "Compiler-1952!"
TEX = b"\\documentclass{article}\n\\begin{document}Hi\\end{document}\n"


@pytest.fixture(scope="module")
def grace(server: Server) -> Server:
    return server.sign_in(EMAIL, PASSWORD, "Harvard Lab")


def test_cli_removed_files(grace: Server, tmp_path: Path) -> None:
    first = write_tar_gz(tmp_path / "a.tar.gz", {"main.tex": TEX, "data.txt": b"old\n"})
    summary = grace.json("workspace", "upload", str(first))
    assert isinstance(summary, dict)
    wid = str(summary["id"])
    second = write_tar_gz(tmp_path / "b.tar.gz", {"data.txt": b"new\n"})
    grace.json("workspace", "upload", str(second), "--workspace", wid)

    # Only the quarantine refers to the old data.txt now: gc keeps its blob.
    grace.json("admin", "gc", "--grace-minutes", "0")
    listed = grace.json("workspace", "removed", wid)
    assert isinstance(listed, list) and [(r["path"], r["rule"]) for r in listed] == [
        ("data.txt", "replaced")
    ]
    entry = listed[0]["id"]
    table = grace.cli("workspace", "removed", wid)
    assert table.returncode == 0 and "data.txt" in table.stdout

    out = tmp_path / "old.txt"
    got = grace.cli("workspace", "download-removed", wid, entry, "-o", str(out))
    assert got.returncode == 0, got.stderr
    assert out.read_bytes() == b"old\n"

    taken = grace.cli("workspace", "restore-removed", wid, entry)
    assert taken.returncode != 0 and "overwrite" in taken.stderr
    restored = grace.json("workspace", "restore-removed", wid, entry, "--overwrite")
    assert isinstance(restored, dict) and restored["removed_count"] == 1
    back = grace.cli("workspace", "download", wid, "--file", "data.txt", "-o", str(tmp_path))
    assert back.returncode == 0 and (tmp_path / "data.txt").read_bytes() == b"old\n"
