"""Packed small blobs: batch puts, damage and crashes, gc's repack, concurrent batches."""

from __future__ import annotations

import hashlib
import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cairn.blobs import (
    BlobRef,
    BlobStore,
    LocalBlobStore,
    StagedBlob,
    check_blobs,
    collect_garbage,
)
from cairn.blobs._packs import _RECORD, PackSpool
from cairn.errors import BlobMissing, IntegrityError


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def blobs(n: int, tag: str = "b") -> list[bytes]:
    return [f"{tag}-{i}-".encode() * (i % 7 + 1) for i in range(n)]


def pack_files(store: LocalBlobStore, ext: str = ".pack") -> list[Path]:
    return sorted(p for p in (store.root / "packs").iterdir() if p.name.endswith(ext))


@pytest.fixture
def local(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs")


# -- every backend ---------------------------------------------------------------------------


def test_put_many_round_trips_on_every_backend(store: BlobStore) -> None:
    data = blobs(50)
    refs = store.put_many(data)
    assert refs == [BlobRef(sha(d), len(d)) for d in data]
    assert all(store.read_bytes(sha(d)) == d for d in data)
    assert all(store.size(sha(d)) == len(d) for d in data)
    assert list(store.iter_hashes()) == sorted({sha(d) for d in data})


def test_ingest_mixes_files_and_bytes(store: BlobStore, tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.write_bytes(os.urandom(3 << 20))
    small = b"small and in memory"
    refs = store.ingest(
        [
            StagedBlob(BlobRef(sha(big.read_bytes()), 3 << 20), path=str(big)),
            StagedBlob(BlobRef(sha(small), len(small)), data=lambda: small),
        ]
    )
    assert not big.exists()  # consumed
    assert store.read_bytes(refs[1].sha256) == small
    assert store.size(refs[0].sha256) == 3 << 20


# -- the local store's packs -----------------------------------------------------------------


def test_a_batch_makes_one_pack_not_a_file_per_blob(local: LocalBlobStore) -> None:
    data = blobs(2000)
    local.put_many(data)
    assert len(pack_files(local)) == 1
    assert len(pack_files(local, ".idx")) == 1
    assert not [p for p in local.root.iterdir() if len(p.name) == 2]  # no loose folder
    assert local.local_path(sha(data[0])) is None  # packed: no file of its own
    assert os.listdir(local.root / ".tmp") == []
    # A fresh store (another process) reads the packs from disk.
    again = LocalBlobStore(local.root)
    assert again.read_bytes(sha(data[1999])) == data[1999]
    assert again.exists(sha(data[5]))


def test_batch_dedupes_against_loose_packed_and_itself(local: LocalBlobStore) -> None:
    loose = local.put(b"loose one")
    local.put_many([b"packed one"])
    refs = local.put_many([b"loose one", b"packed one", b"new", b"new"])
    assert [r.sha256 for r in refs] == [loose.sha256, sha(b"packed one"), sha(b"new"), sha(b"new")]
    assert len(pack_files(local)) == 2  # the second batch packed only b"new", once
    assert list(local.iter_hashes()) == sorted({loose.sha256, sha(b"packed one"), sha(b"new")})


def test_dedupe_refreshes_a_packed_blobs_age(local: LocalBlobStore) -> None:
    local.put_many([b"old"])
    [index] = pack_files(local, ".idx")
    long_ago = (datetime.now(UTC) - timedelta(days=2)).timestamp()
    os.utime(index, (long_ago, long_ago))
    assert local.modified(sha(b"old")) < datetime.now(UTC) - timedelta(days=1)
    local.put_many([b"old"])
    assert local.modified(sha(b"old")) > datetime.now(UTC) - timedelta(minutes=5)


def test_corrupt_pack_is_caught_on_read_and_by_check(local: LocalBlobStore) -> None:
    data = blobs(20)
    local.put_many(data)
    [pack] = pack_files(local)
    raw = bytearray(pack.read_bytes())
    where = raw.find(data[3])
    raw[where] ^= 0xFF
    pack.chmod(0o644)
    pack.write_bytes(bytes(raw))
    store = LocalBlobStore(local.root)
    with pytest.raises(IntegrityError):
        store.read_bytes(sha(data[3]))
    assert store.read_bytes(sha(data[4])) == data[4]
    report = check_blobs(store, [sha(d) for d in data])
    assert report.corrupt == [sha(data[3])]
    assert report.checked == 20 and not report.missing


def test_truncated_pack_loses_only_the_blobs_cut_off(local: LocalBlobStore) -> None:
    data = blobs(20)
    local.put_many(data)
    [pack] = pack_files(local)
    raw = pack.read_bytes()
    cut = raw.find(data[15])  # in the middle of the records: 15 and after are gone
    pack.chmod(0o644)
    with pack.open("r+b") as f:
        f.truncate(cut + 2)
    store = LocalBlobStore(local.root)  # the index says more than the pack holds: rebuilt
    assert store.read_bytes(sha(data[14])) == data[14]
    with pytest.raises(BlobMissing):
        store.read_bytes(sha(data[15]))
    report = check_blobs(store, [sha(d) for d in data])
    assert report.missing == sorted(sha(d) for d in data[15:])
    assert not report.corrupt
    # The rebuilt index was written: a third opening agrees without rebuilding.
    assert set(LocalBlobStore(local.root).iter_hashes()) == {sha(d) for d in data[:15]}


def test_crash_between_pack_and_index_rebuilds_the_index(local: LocalBlobStore) -> None:
    data = blobs(30)
    local.put_many(data)
    [index] = pack_files(local, ".idx")
    index.unlink()  # as if the process died after the pack's rename, before the index's
    store = LocalBlobStore(local.root)
    assert store.read_bytes(sha(data[29])) == data[29]
    assert set(store.iter_hashes()) == {sha(d) for d in data}
    assert len(pack_files(local, ".idx")) == 1


def test_damaged_index_is_rebuilt_from_the_records(local: LocalBlobStore) -> None:
    data = blobs(10)
    local.put_many(data)
    [index] = pack_files(local, ".idx")
    index.chmod(0o644)
    index.write_bytes(index.read_bytes()[:-5] + b"XXXXX")
    assert LocalBlobStore(local.root).read_bytes(sha(data[7])) == data[7]


def test_crash_before_publish_leaves_only_temp_files(local: LocalBlobStore) -> None:
    """A batch that dies before its packs are renamed in stores nothing; purge_temp cleans."""
    data = blobs(10)

    class Boom(Exception):
        pass

    def failing() -> bytes:
        raise Boom

    staged = [StagedBlob(BlobRef(sha(d), len(d)), data=d) for d in data]
    staged.append(StagedBlob(BlobRef(sha(b"x"), 1), data=failing))
    with pytest.raises(Boom):
        local.ingest(staged)
    assert list(local.iter_hashes()) == []
    assert os.listdir(local.root / ".tmp") == []  # the half-written pack was removed
    # A pack left in the temp folder (a kill, not an exception) is invisible, then purged.
    (local.root / ".tmp" / "dead.pack").write_bytes(b"CAIRNPK1")
    assert list(local.iter_hashes()) == []
    assert local.purge_temp(older_than=timedelta(0)) == ["dead.pack"]


def test_delete_then_gc_repack_keeps_the_live_blobs(local: LocalBlobStore) -> None:
    data = blobs(100)
    local.put_many(data)
    [old_pack] = pack_files(local)
    old_size = old_pack.stat().st_size
    keep = {sha(d) for d in data[:40]}
    for path in pack_files(local, ".idx"):
        past = (datetime.now(UTC) - timedelta(hours=2)).timestamp()
        os.utime(path, (past, past))
    report = collect_garbage(local, keep, grace=timedelta(hours=1))
    assert set(report.deleted) == {sha(d) for d in data[40:]}
    assert report.bytes_repacked > 0
    [new_pack] = pack_files(local)
    assert new_pack != old_pack and not old_pack.exists()
    assert new_pack.stat().st_size == old_size - report.bytes_repacked
    fresh = LocalBlobStore(local.root)
    assert set(fresh.iter_hashes()) == keep
    assert all(fresh.read_bytes(sha(d)) == d for d in data[:40])
    with pytest.raises(BlobMissing):
        fresh.read_bytes(sha(data[50]))
    assert check_blobs(fresh, keep).ok


def test_a_deleted_packed_blob_is_gone_for_other_instances(local: LocalBlobStore) -> None:
    local.put_many([b"one", b"two"])
    other = LocalBlobStore(local.root)
    assert other.exists(sha(b"one"))
    local.delete(sha(b"one"))
    assert not local.exists(sha(b"one"))
    # The other instance sees the deletion when it next stores (dedupe must not trust it).
    other.put_many([b"one"])
    assert local.read_bytes(sha(b"one")) == b"one"


def test_reader_in_another_instance_survives_a_repack(local: LocalBlobStore) -> None:
    local.put_many([b"stay", b"go"])
    reader = LocalBlobStore(local.root)
    assert reader.exists(sha(b"stay"))  # index cached
    local.delete(sha(b"go"))
    assert local.repack() > 0
    assert reader.read_bytes(sha(b"stay")) == b"stay"  # its pack moved: found again


def test_concurrent_batches_from_separate_instances(tmp_path: Path) -> None:
    root = tmp_path / "blobs"
    LocalBlobStore(root)
    errors: list[BaseException] = []
    shared = blobs(200, "shared")

    def worker(n: int) -> None:
        try:
            store = LocalBlobStore(root)  # like another server process
            for round_ in range(5):
                store.put_many([*blobs(50, f"w{n}r{round_}"), *shared])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    store = LocalBlobStore(root)
    expected = {sha(d) for d in shared}
    for n in range(4):
        for round_ in range(5):
            expected |= {sha(d) for d in blobs(50, f"w{n}r{round_}")}
    assert set(store.iter_hashes()) == expected
    assert check_blobs(store, expected).ok


def test_concurrent_repack_and_batches(tmp_path: Path) -> None:
    root = tmp_path / "blobs"
    store = LocalBlobStore(root)
    first = blobs(100, "first")
    store.put_many(first)
    for d in first[50:]:
        store.delete(sha(d))
    errors: list[BaseException] = []

    def put() -> None:
        try:
            LocalBlobStore(root).put_many(blobs(100, "second"))
        except BaseException as exc:
            errors.append(exc)

    def repack() -> None:
        try:
            LocalBlobStore(root).repack()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=put), threading.Thread(target=repack)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    live = {sha(d) for d in first[:50]} | {sha(d) for d in blobs(100, "second")}
    fresh = LocalBlobStore(root)
    assert set(fresh.iter_hashes()) == live
    assert check_blobs(fresh, live).ok


# -- the upload spool ------------------------------------------------------------------------


def spooled(spool: PackSpool, data: list[bytes]) -> list[StagedBlob]:
    items = []
    for d in data:
        offset = spool.append(sha(d), d)
        items.append(StagedBlob(BlobRef(sha(d), len(d)), spooled=(spool, offset)))
    return items


def test_a_spool_whose_records_are_all_used_becomes_the_pack(local: LocalBlobStore) -> None:
    spool = local.spool()
    data = blobs(300)
    in_memory = b"held in memory, appended at ingest"
    memory = StagedBlob(BlobRef(sha(in_memory), len(in_memory)), data=in_memory)
    items = [*spooled(spool, data), memory]
    assert items[7].spooled is not None
    assert spool.read(items[7].spooled[1], len(data[7])) == data[7]
    local.ingest(items)
    [pack] = pack_files(local)
    assert pack.name == spool.id + ".pack"  # adopted, not copied
    assert os.listdir(local.root / ".tmp") == []
    again = LocalBlobStore(local.root)
    assert all(again.read_bytes(sha(d)) == d for d in [*data, in_memory])
    report = check_blobs(again, {sha(d) for d in [*data, in_memory]})
    assert report.checked == 301 and not (report.corrupt or report.missing or report.unreferenced)
    spool.discard()  # the caller's clean-up leaves an adopted pack alone
    assert pack.exists()


def test_a_mostly_used_spool_becomes_the_pack_its_unused_records_deleted(
    local: LocalBlobStore,
) -> None:
    """A member staged as a file after all (one looking like gzip, say) leaves a record no blob
    uses: the spool is still adopted, not copied, and that record is a deleted blob."""
    local.put_many([b"stored before"])
    spool = local.spool()
    data = blobs(50)
    unused = [b"stored before", b"materialized as a file", data[3]]  # the last repeats a used one
    items = spooled(spool, [*data[:20], *unused, *data[20:]])
    local.ingest([*items[:21], *items[23:]])  # "stored before" is kept where it was
    assert {p.name for p in pack_files(local)} >= {spool.id + ".pack"}  # adopted, not copied
    assert os.listdir(local.root / ".tmp") == []
    again = LocalBlobStore(local.root)
    assert all(again.read_bytes(sha(d)) == d for d in data)
    assert not again.exists(sha(b"materialized as a file"))
    assert again.read_bytes(sha(b"stored before")) == b"stored before"  # the first copy
    live = {sha(d) for d in [*data, b"stored before"]}
    assert set(again.iter_hashes()) == live
    report = check_blobs(again, live)
    assert report.ok and report.checked == len(live)
    freed = sum(_RECORD.size + len(d) for d in unused)
    assert again.repack() == freed  # gc's repack frees the unused records like deleted blobs
    assert all(again.read_bytes(sha(d)) == d for d in data)
    assert check_blobs(LocalBlobStore(local.root), live).ok


def test_a_spool_with_unused_records_is_copied_and_removed(local: LocalBlobStore) -> None:
    """Most of the spool unused (an upload stored before): its few used records are copied."""
    local.put_many([b"stored before"])
    spool = local.spool()
    items = spooled(spool, [b"stored before", b"dup", b"dup", b"replaced", b"new"])
    local.ingest([items[0], items[1], items[2], items[4]])  # "replaced" is not referenced
    assert spool.id + ".pack" not in {p.name for p in pack_files(local)}
    assert len(pack_files(local)) == 2
    assert os.listdir(local.root / ".tmp") == []
    assert local.read_bytes(sha(b"dup")) == b"dup" and local.read_bytes(sha(b"new")) == b"new"
    assert not local.exists(sha(b"replaced"))


def test_a_discarded_spool_leaves_nothing(local: LocalBlobStore) -> None:
    spool = local.spool()
    spooled(spool, blobs(10))
    assert os.listdir(local.root / ".tmp") == [spool.id + ".pack"]
    spool.discard()
    assert os.listdir(local.root / ".tmp") == []
    assert list(local.iter_hashes()) == []


def test_other_stores_give_no_spool(store: BlobStore) -> None:
    assert (store.spool() is None) == (not isinstance(store, LocalBlobStore))
