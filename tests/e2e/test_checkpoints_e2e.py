"""End to end: workspace checkpoints through the `cairn workspace` commands against a real
server, and `cairn admin gc` keeping the blobs only a checkpoint still refers to."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from tests.archives import write_tar_gz
from tests.e2e.conftest import Server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

EMAIL, PASSWORD = "ada@example.org", "Analytical-1843!"
TEX = b"\\documentclass{article}\n\\begin{document}Hi\\end{document}\n"


@pytest.fixture(scope="module")
def ada(server: Server) -> Server:
    return server.sign_in(EMAIL, PASSWORD, "Engine Lab")


def test_cli_checkpoint_life_cycle(ada: Server, tmp_path: Path) -> None:
    archive = write_tar_gz(tmp_path / "p.tar.gz", {"main.tex": TEX, "data.txt": b"x\n" * 999})
    summary = ada.json("workspace", "upload", str(archive))
    assert isinstance(summary, dict)
    wid = str(summary["id"])
    saved = ada.json("workspace", "checkpoint", wid)
    assert isinstance(saved, dict) and saved["checksum"] == summary["checksum"]

    # Only the checkpoint refers to data.txt's blob once the file is deleted: gc keeps it.
    assert ada.cli("workspace", "delete-file", wid, "data.txt").returncode == 0
    gc = ada.json("admin", "gc", "--grace-minutes", "0")
    assert isinstance(gc, dict)
    listed = ada.json("workspace", "checkpoints", wid)
    assert isinstance(listed, list) and [c["id"] for c in listed] == [saved["id"]]

    out = tmp_path / "out"
    out.mkdir()
    got = ada.cli("workspace", "download-checkpoint", wid, saved["checksum"], "-o", str(out))
    assert got.returncode == 0, got.stderr
    [package] = out.iterdir()
    with tarfile.open(package, mode="r:gz") as tar:
        assert sorted(tar.getnames()) == ["data.txt", "main.tex"]

    assert ada.cli("workspace", "lock", wid).returncode == 0
    refused = ada.cli("workspace", "restore", wid, saved["id"])
    assert refused.returncode == 3 and "locked" in refused.stderr
    assert ada.cli("workspace", "unlock", wid).returncode == 0
    restored = ada.json("workspace", "restore", wid, saved["id"])
    assert isinstance(restored, dict) and restored["checksum"] == saved["checksum"]
    data = ada.cli("workspace", "download", wid, "--file", "data.txt", "-o", str(tmp_path))
    assert data.returncode == 0, data.stderr
    assert (tmp_path / "data.txt").read_bytes() == b"x\n" * 999

    assert ada.cli("workspace", "delete-checkpoint", wid, saved["id"]).returncode == 0
    assert ada.cli("workspace", "restore", wid, saved["id"]).returncode == 4
    ada.json("workspace", "checkpoint", wid)
    assert ada.cli("workspace", "delete-checkpoints", wid).returncode == 0
    assert ada.json("workspace", "checkpoints", wid) == []
