"""collect_garbage and BlobStore.modified: old orphans go, referenced and young blobs stay."""

from __future__ import annotations

import hashlib
import io
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cairn.blobs import BlobStore, FsspecBlobStore, GarbageReport, collect_garbage
from cairn.errors import BlobMissing, Invalid

HOUR = timedelta(hours=1)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def age(store: BlobStore, sha256: str, by: timedelta) -> None:
    """Backdate a stored blob as if it had been stored ``by`` ago."""
    when = datetime.now(UTC) - by
    path = store.local_path(sha256)
    if path is not None:
        os.utime(path, (when.timestamp(), when.timestamp()))
        return
    assert isinstance(store, FsspecBlobStore)
    store.fs.store[store._path(sha256)].modified = when  # memory:// keeps a time per file


def test_modified_is_an_aware_utc_time_of_the_put(store: BlobStore) -> None:
    before = datetime.now(UTC) - timedelta(seconds=5)
    ref = store.put(b"timestamped")
    stored_at = store.modified(ref.sha256)
    assert stored_at.tzinfo is not None and stored_at.utcoffset() == timedelta(0)
    assert before <= stored_at <= datetime.now(UTC) + timedelta(seconds=5)


def test_modified_of_an_absent_or_malformed_blob(store: BlobStore) -> None:
    with pytest.raises(BlobMissing):
        store.modified(sha(b"never stored"))
    with pytest.raises(Invalid):
        store.modified("../etc/passwd")


def test_collects_old_orphans_and_keeps_referenced_and_young_blobs(store: BlobStore) -> None:
    kept = store.put(b"referenced, and old")
    orphan = store.put(b"nobody points here any more")
    young = store.put(b"an upload in flight, rows not committed yet")
    age(store, kept.sha256, 3 * HOUR)
    age(store, orphan.sha256, 3 * HOUR)

    report = collect_garbage(store, [kept.sha256, kept.sha256], grace=HOUR)

    assert report == GarbageReport(
        deleted=[orphan.sha256],
        kept_recent=[young.sha256],
        bytes_freed=orphan.size,
        dry_run=False,
    )
    assert sorted(store.iter_hashes()) == sorted([kept.sha256, young.sha256])
    again = collect_garbage(store, [kept.sha256], grace=HOUR)
    assert (again.deleted, again.kept_recent, again.bytes_freed) == ([], [young.sha256], 0)


def test_dry_run_reports_but_deletes_nothing(store: BlobStore) -> None:
    orphans = sorted((store.put(b"orphan %d" % i) for i in range(3)), key=lambda r: r.sha256)
    for ref in orphans:
        age(store, ref.sha256, 2 * HOUR)

    report = collect_garbage(store, [], grace=HOUR, dry_run=True)

    assert report.dry_run
    assert report.deleted == [ref.sha256 for ref in orphans]
    assert report.bytes_freed == sum(ref.size for ref in orphans)
    assert sorted(store.iter_hashes()) == report.deleted
    assert all(store.read_bytes(ref.sha256) for ref in orphans)


def test_zero_grace_collects_every_unreferenced_blob(store: BlobStore) -> None:
    kept = store.put(b"still referenced")
    fresh = store.put(b"stored just now")
    empty = store.put(b"")

    report = collect_garbage(store, [kept.sha256], grace=timedelta(0))

    assert report.deleted == sorted([fresh.sha256, empty.sha256])
    assert report.kept_recent == []
    assert report.bytes_freed == fresh.size
    assert list(store.iter_hashes()) == [kept.sha256]


def test_corrupt_orphans_are_collected_too(store: BlobStore) -> None:
    ref = store.put(b"orphan that rotted")
    path = store.local_path(ref.sha256)
    if path is not None:
        path.chmod(0o644)
        path.write_bytes(b"rot")
    age(store, ref.sha256, 2 * HOUR)
    report = collect_garbage(store, [], grace=HOUR)
    assert report.deleted == [ref.sha256]
    assert not store.exists(ref.sha256)


def test_progress_is_reported_per_unreferenced_blob(store: BlobStore) -> None:
    kept = store.put(b"referenced")
    for i in range(3):
        store.put(b"orphan %d" % i)
    calls: list[tuple[int, int]] = []
    collect_garbage(
        store,
        [kept.sha256],
        grace=HOUR,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert calls == [(1, 3), (2, 3), (3, 3)]


def test_empty_store(store: BlobStore) -> None:
    assert collect_garbage(store, [sha(b"missing")], grace=HOUR) == GarbageReport()


@pytest.mark.parametrize("how", ["bytes", "stream", "file", "ingest"])
def test_a_dedupe_put_makes_an_old_blob_young_again(
    store: BlobStore, tmp_path: Path, how: str
) -> None:
    """An upload re-using an orphan's content must not lose it to a collection before commit."""
    data = b"content an upload in flight stores again"
    ref = store.put(data)
    path = store.local_path(ref.sha256)
    if path is None:
        pytest.skip("memory:// keeps a blob's first time; the grace period alone protects it")
    age(store, ref.sha256, 3 * HOUR)
    assert collect_garbage(store, [], grace=HOUR, dry_run=True).deleted == [ref.sha256]

    source = tmp_path / "again.bin"
    source.write_bytes(data)
    if how == "bytes":
        again = store.put(data)
    elif how == "stream":
        again = store.put(io.BytesIO(data))
    elif how == "file":
        again = store.put_file(source)
    else:
        [again] = store.ingest_files([source])
        assert not source.exists()

    assert again == ref
    assert store.modified(ref.sha256) > datetime.now(UTC) - timedelta(minutes=5)
    report = collect_garbage(store, [], grace=HOUR)
    assert (report.deleted, report.kept_recent) == ([], [ref.sha256])
    assert store.read_bytes(ref.sha256) == data
