"""The content package is a pure function of the manifest: same files, same bytes."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from cairn.blobs import LocalBlobStore
from cairn.workspaces._package import PackageFile, build_package


def _package(root: Path, mtime: int) -> tuple[str, bytes]:
    store = LocalBlobStore(root / "blobs")
    files = []
    for name, data in {"b/two.txt": b"two\n", "a.tex": b"\\documentclass{article}\n"}.items():
        ref = store.put(data)
        files.append(PackageFile(name, ref.sha256, ref.size, mtime))
    sha256, _ = build_package(store, files, work_dir=root)
    return sha256, store.read_bytes(sha256)


def test_package_is_deterministic_and_sorted(tmp_path: Path) -> None:
    first, data = _package(tmp_path / "one", 1_700_000_000)
    second, _ = _package(tmp_path / "two", 1_700_000_000)
    later, _ = _package(tmp_path / "three", 1_700_000_001)
    assert first == second != later
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == ["a.tex", "b/two.txt"]
    assert {(m.uid, m.gid, m.mode, m.mtime) for m in members} == {(0, 0, 0o644, 1_700_000_000)}
