"""Stale temporary files of interrupted work are found and removed; live ones are kept."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path

from cairn.blobs import LocalBlobStore
from cairn.tempfiles import remove_stale


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_remove_stale_keeps_young_entries_and_honours_dry_run(tmp_path: Path) -> None:
    (tmp_path / "old-file").write_bytes(b"x")
    (tmp_path / "old-dir").mkdir()
    (tmp_path / "old-dir" / "inner").write_bytes(b"y")
    (tmp_path / "young-file").write_bytes(b"z")
    _age(tmp_path / "old-file", 7200)
    _age(tmp_path / "old-dir", 7200)
    hour = timedelta(hours=1)
    assert remove_stale(tmp_path, older_than=hour, dry_run=True) == ["old-dir", "old-file"]
    assert (tmp_path / "old-file").exists()
    assert remove_stale(tmp_path, older_than=hour) == ["old-dir", "old-file"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["young-file"]
    assert remove_stale(tmp_path / "missing", older_than=hour) == []


def test_local_store_purges_abandoned_temp_files(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    ref = store.put(b"kept")
    abandoned = tmp_path / "blobs" / ".tmp" / "crashed-put"
    abandoned.write_bytes(b"half a blob")
    _age(abandoned, 7200)
    assert store.purge_temp(older_than=timedelta(hours=1)) == ["crashed-put"]
    assert not abandoned.exists() and store.read_bytes(ref.sha256) == b"kept"
