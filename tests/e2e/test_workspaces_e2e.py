"""End to end: upload workspaces through the CLI and SDK against a real server; `cairn check`."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from cairn import client, errors
from tests.e2e.conftest import Server

pytestmark = pytest.mark.e2e

EMAIL, PASSWORD = "grace@example.org", "Compiler-1952!"
TEX = b"\\documentclass{article}\n\\begin{document}Hi\\end{document}\n"


@pytest.fixture(scope="module")
def grace(server: Server) -> Server:
    return server.sign_in(EMAIL, PASSWORD, "Navy Lab")


def make_archive(path: Path) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in {
            "main.tex": TEX,
            "fig/plot.png": b"\x89PNG\r\n\x1a\n" + b"1" * 99,
            ".DS_Store": b"junk",
            "notes (draft).txt": b"draft\n",
        }.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_cli_workspace_life_cycle(grace: Server, tmp_path: Path) -> None:
    archive = make_archive(tmp_path / "paper.tar.gz")
    made = grace.cli("workspace", "upload", str(archive), "--json")
    assert made.returncode == 0, made.stderr
    summary = json.loads(made.stdout)
    wid = str(summary["id"])
    files = json.loads(grace.cli("workspace", "files", wid, "--json").stdout)
    assert {f["path"] for f in files} == {"main.tex", "fig/plot.png", "notes__draft_.txt"}
    assert summary["status"] == "READY_WITH_WARNINGS"
    messages = " ".join(f["message"] for f in summary["findings"])
    assert "Renamed" in messages or "renamed" in messages

    extra = tmp_path / "refs.bib"
    extra.write_bytes(b"@article{k, title={T}}\n")
    added = grace.cli(
        "workspace", "upload", str(extra), "--workspace", wid, "--ancillary", "--json"
    )
    assert added.returncode == 0 and json.loads(added.stdout)["file_count"] == 4
    files = json.loads(grace.cli("workspace", "files", wid, "--json").stdout)
    assert "anc/refs.bib" in {f["path"] for f in files}

    listed = json.loads(grace.cli("workspace", "list", "--json").stdout)
    assert int(wid) in [w["id"] for w in listed]
    files = json.loads(grace.cli("workspace", "files", wid, "--json").stdout)
    assert {f["type"] for f in files} >= {"IMAGE"}

    out = tmp_path / "out"
    out.mkdir()
    assert grace.cli("workspace", "download", wid, "-o", str(out)).returncode == 0
    with tarfile.open(out / f"{wid}.tar.gz") as tar:
        assert "main.tex" in tar.getnames()
    one = grace.cli("workspace", "download", wid, "--file", "main.tex", "-o", str(out))
    assert one.returncode == 0 and (out / "main.tex").read_bytes() == TEX

    assert grace.cli("workspace", "lock", wid).returncode == 0
    refused = grace.cli("workspace", "upload", str(extra), "--workspace", wid)
    assert refused.returncode == 3 and "locked" in refused.stderr
    assert grace.cli("workspace", "unlock", wid).returncode == 0
    gone = json.loads(grace.cli("workspace", "delete-file", wid, "main.tex", "--json").stdout)
    assert gone["file_count"] == 3
    files = json.loads(grace.cli("workspace", "files", wid, "--json").stdout)
    assert "main.tex" not in {f["path"] for f in files}
    assert "deleted file 'main.tex'" in grace.cli("workspace", "log", wid).stdout
    assert grace.cli("workspace", "release", wid).returncode == 0
    assert (
        json.loads(grace.cli("workspace", "unrelease", wid, "--json").stdout)["state"] == "ACTIVE"
    )
    assert grace.cli("workspace", "delete-all", wid).returncode == 0
    deleted = json.loads(grace.cli("workspace", "delete", wid, "--json").stdout)
    assert deleted["state"] == "DELETED"
    again = grace.cli("workspace", "delete", wid)
    assert again.returncode == 4 and "not found" in again.stderr


def test_sdk_workspace_round_trip(grace: Server, tmp_path: Path) -> None:
    archive = make_archive(tmp_path / "paper.tar.gz")
    seen: list[int] = []
    with client.login(email=EMAIL, password=PASSWORD, api_url=grace.url) as me:
        workspace = me.workspaces.upload(archive, progress=seen.append)
        assert sum(seen) == archive.stat().st_size
        assert workspace.source_format == "tex"
        saved = workspace.download(tmp_path, file="fig/plot.png")
        assert saved.read_bytes().startswith(b"\x89PNG")
        workspace.lock()
        with pytest.raises(errors.Forbidden):
            workspace.upload(archive)
        assert workspace.refresh().lock_state == "LOCKED"
        with pytest.raises(errors.NotFound):
            me.workspaces.get(10_000_000)


def test_check_names_a_corrupted_blob(grace: Server, tmp_path: Path) -> None:
    note = tmp_path / "note.txt"
    note.write_bytes(b"a note that will rot on disk\n")
    summary = json.loads(grace.cli("workspace", "upload", str(note), "--json").stdout)
    wid = summary["id"]
    assert json.loads(grace.cli("check", "--json").stdout)["ok"] is True
    data = note.read_bytes()
    # A small upload's blob sits in a pack file (blobs/packs/), a large one in a file of its own.
    holder = next(
        p for p in (grace.data_dir / "blobs").rglob("*") if p.is_file() and data in p.read_bytes()
    )
    holder.chmod(0o644)
    holder.write_bytes(holder.read_bytes().replace(data, b"A note that will rot on disk\n"))
    checked = grace.cli("check", "--json")
    assert checked.returncode == 1
    assert json.loads(checked.stdout)["corrupt"] == [hashlib.sha256(data).hexdigest()]
    with (
        client.login(email=EMAIL, password=PASSWORD, api_url=grace.url) as me,
        pytest.raises(errors.CairnError),
    ):
        me.workspaces.get(wid).download(tmp_path / "rotten.txt", file="note.txt")
    assert not (tmp_path / "rotten.txt").exists()
