"""Small members without files of their own: memory within the budget, then the spool."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from cairn.blobs import LocalBlobStore
from cairn.blobs._packs import PackSpool
from cairn.workspaces import _staging
from cairn.workspaces._limits import DEFAULT_LIMITS, limits_for
from cairn.workspaces._staging import SMALL_MAX
from cairn.workspaces.service import prepare_upload

from .conftest import Run


def tar_gz(path: Path, members: list[tuple[str, bytes]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def members(n: int) -> list[tuple[str, bytes]]:
    return [(f"d{i % 3}/f{i}.txt", f"file {i}\n".encode() * (i + 50)) for i in range(n)]


def test_small_members_stay_in_memory_and_large_ones_get_files(tmp_path: Path, run: Run) -> None:
    big = os.urandom(SMALL_MAX + 1)
    source = tar_gz(tmp_path / "a.tar.gz", [*members(20), ("big.bin", big)])
    result = run(source, limits=DEFAULT_LIMITS)
    by_path = {f.public_path: f for f in result.files}
    assert by_path["big.bin"].local_path is not None
    assert by_path["big.bin"].read_bytes() == big
    small = [f for f in result.files if f.public_path != "big.bin"]
    assert small and all(f.local_path is None for f in small)
    for (name, data), staged in zip(
        sorted(members(20)), sorted(small, key=lambda f: f.public_path), strict=True
    ):
        assert staged.public_path == name
        assert staged.read_bytes() == data
        assert hashlib.sha256(data).hexdigest() == staged.sha256


def test_past_the_memory_budget_members_go_to_one_spool_file(
    tmp_path: Path, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_staging, "MEMORY_BUDGET", 2000)
    source = tar_gz(tmp_path / "a.tar.gz", members(30))
    result = run(source)
    assert [f.read_bytes() for f in result.files] == [d for _, d in sorted(members(30))]
    spools = list(tmp_path.glob("box*/staging/.cairn-spool"))
    assert len(spools) == 1  # one file for all the members past the budget
    assert not list(tmp_path.glob("box*/staging/d0/*"))  # no file per member


def test_spooled_text_is_repaired_in_memory(
    tmp_path: Path, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_staging, "MEMORY_BUDGET", 0)
    tex = b"\\documentclass{article}\r\n\\begin{document}\r\nHi\r\n\\end{document}\r\n"
    source = tar_gz(tmp_path / "p.tar.gz", [("main.tex", tex), ("other.tex", tex)])
    result = run(source, limits=limits_for("arxiv"))
    fixed = tex.replace(b"\r\n", b"\n")
    for staged in result.files:
        assert staged.read_bytes() == fixed
        assert staged.sha256 == hashlib.sha256(fixed).hexdigest()
        assert staged.size == len(fixed)


def test_prepare_upload_packs_the_small_members(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    source = tar_gz(tmp_path / "a.tar.gz", members(500))
    prepared = prepare_upload(store, source, "a.tar.gz", work_dir=tmp_path / "work")
    assert not prepared.fatal and len(prepared.files) == 500
    assert len(list((tmp_path / "blobs" / "packs").glob("*.pack"))) == 1
    assert all(
        store.read_bytes(f.sha256) == d
        for f, (_, d) in zip(prepared.files, sorted(members(500)), strict=True)
    )
    assert list((tmp_path / "work").iterdir()) == []  # staging removed


def spy_spools(store: LocalBlobStore, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ids of the spools ``store`` gives out from now on."""
    spools: list[str] = []
    real = store.spool

    def spool() -> PackSpool:
        made = real()
        spools.append(made.id)
        return made

    monkeypatch.setattr(store, "spool", spool)
    return spools


def test_past_the_budget_members_are_written_once_into_the_stores_pack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_staging, "MEMORY_BUDGET", 2000)
    store = LocalBlobStore(tmp_path / "blobs")
    spools = spy_spools(store, monkeypatch)
    source = tar_gz(tmp_path / "a.tar.gz", members(300))
    prepared = prepare_upload(store, source, "a.tar.gz", work_dir=tmp_path / "work")
    assert not prepared.fatal and len(prepared.files) == 300
    [pack] = (tmp_path / "blobs" / "packs").glob("*.pack")
    assert [pack.stem] == spools  # the spool itself became the pack: no second copy
    assert os.listdir(tmp_path / "blobs" / ".tmp") == []
    assert all(
        store.read_bytes(f.sha256) == d
        for f, (_, d) in zip(prepared.files, sorted(members(300)), strict=True)
    )


def test_the_same_upload_twice_adds_no_pack_and_leaves_no_spool(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    source = tar_gz(tmp_path / "a.tar.gz", members(200))
    for _ in range(2):
        prepared = prepare_upload(store, source, "a.tar.gz", work_dir=tmp_path / "work")
        assert not prepared.fatal and len(prepared.files) == 200
    assert len(list((tmp_path / "blobs" / "packs").glob("*.pack"))) == 1
    assert os.listdir(tmp_path / "blobs" / ".tmp") == []


def test_a_fatal_upload_leaves_no_spool_in_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_staging, "MEMORY_BUDGET", 0)
    store = LocalBlobStore(tmp_path / "blobs")
    # A rar member is fatal for arXiv's targets, after the small members were spooled.
    rar = b"Rar!\x1a\x07\x00" + b"\x00" * 100
    source = tar_gz(tmp_path / "a.tar.gz", [*members(50), ("zz.rar", rar)])
    prepared = prepare_upload(
        store, source, "a.tar.gz", work_dir=tmp_path / "work", archive="arxiv"
    )
    assert prepared.fatal and prepared.files == []
    assert os.listdir(tmp_path / "blobs" / ".tmp") == []
    assert list(store.iter_hashes()) == []


def test_a_repaired_spooled_member_is_stored_under_its_new_hash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_staging, "MEMORY_BUDGET", 0)
    store = LocalBlobStore(tmp_path / "blobs")
    spools = spy_spools(store, monkeypatch)
    tex = b"\\documentclass{article}\r\n\\begin{document}\r\nHi\r\n\\end{document}\r\n"
    source = tar_gz(tmp_path / "p.tar.gz", [("main.tex", tex)])
    prepared = prepare_upload(
        store, source, "p.tar.gz", work_dir=tmp_path / "work", archive="arxiv"
    )
    fixed = tex.replace(b"\r\n", b"\n")
    [stored] = prepared.files
    assert stored.sha256 == hashlib.sha256(fixed).hexdigest()
    assert store.read_bytes(stored.sha256) == fixed  # verified on read: the record is right
    [original] = prepared.removed
    assert store.read_bytes(original.sha256) == tex
    # The original kept its spool record (not hashed or spooled again): the spool is the pack.
    assert [p.stem for p in (tmp_path / "blobs" / "packs").glob("*.pack")] == spools


def test_an_upload_makes_one_filesystem_sync_and_fsyncs_only_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cairn.blobs import local

    monkeypatch.setattr(_staging, "MEMORY_BUDGET", 4000)  # memory, spool and a large file
    store = LocalBlobStore(tmp_path / "blobs")
    syncs: list[str] = []
    fsynced: list[bool] = []
    real_syncfs, real_fsync = local._syncfs, os.fsync

    def syncfs(path: str) -> bool:
        syncs.append(path)
        return real_syncfs(path)

    def fsync(fd: int) -> None:
        fsynced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        real_fsync(fd)

    monkeypatch.setattr(local, "_syncfs", syncfs)
    monkeypatch.setattr(os, "fsync", fsync)
    big = os.urandom(SMALL_MAX + 1)
    source = tar_gz(tmp_path / "a.tar.gz", [*members(100), ("big.bin", big)])
    prepared = prepare_upload(store, source, "a.tar.gz", work_dir=tmp_path / "work")
    assert len(prepared.files) == 101
    assert syncs == [str(store.root)]  # one syncfs for the whole upload
    assert fsynced and all(fsynced)  # then only the folders that received renames


def test_a_check_that_raises_mid_upload_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cairn.workspaces import _filetypes

    monkeypatch.setattr(_staging, "MEMORY_BUDGET", 0)  # every member already in the spool
    store = LocalBlobStore(tmp_path / "blobs")
    calls = 0
    real = _filetypes.detect_type

    def detect_type(*args: object, **kwargs: object) -> str:
        nonlocal calls
        calls += 1
        if calls == 40:
            raise RuntimeError("a check broke")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(_filetypes, "detect_type", detect_type)
    source = tar_gz(tmp_path / "a.tar.gz", members(100))
    with pytest.raises(RuntimeError, match="a check broke"):
        prepare_upload(store, source, "a.tar.gz", work_dir=tmp_path / "work")
    assert calls == 40
    assert os.listdir(tmp_path / "blobs" / ".tmp") == []
    assert list(store.iter_hashes()) == []
    assert list((tmp_path / "work").iterdir()) == []
    # The store takes the same upload afterwards.
    monkeypatch.setattr(_filetypes, "detect_type", real)
    assert len(prepare_upload(store, source, "a.tar.gz", work_dir=tmp_path / "work").files) == 100
