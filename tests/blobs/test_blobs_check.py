"""check_blobs: fixity (re-hash) and the stored-versus-referenced comparison."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from cairn.blobs import BlobStore, CheckReport, check_blobs

if TYPE_CHECKING:  # importing conftest by name is fragile at run time; hints only
    from conftest import Backdoor


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_empty_store_with_no_references_is_ok(store: BlobStore) -> None:
    report = check_blobs(store, [])
    assert report == CheckReport(checked=0, corrupt=[], missing=[], unreferenced=[])
    assert report.ok


def test_healthy_store(store: BlobStore) -> None:
    blobs = [b"alpha", b"beta" * 1000, b""]
    refs = [store.put(b) for b in blobs]
    report = check_blobs(store, [r.sha256 for r in refs] + [refs[0].sha256])  # duplicates fine
    assert report.ok
    assert report.checked == 3
    assert report.bytes_checked == sum(len(b) for b in blobs)
    assert (report.corrupt, report.missing, report.unreferenced) == ([], [], [])


def test_reports_corrupt_missing_and_unreferenced(store: BlobStore, backdoor: Backdoor) -> None:
    kept = store.put(b"referenced and fine")
    rotten = store.put(b"referenced but bit-rotted")
    orphan = store.put(b"stored but nobody points here")
    lost = sha(b"referenced but never stored")
    backdoor.flip_byte(rotten.sha256, index=4)

    report = check_blobs(store, [kept.sha256, rotten.sha256, lost])

    assert report.checked == 3
    assert report.corrupt == [rotten.sha256]
    assert report.missing == [lost]
    assert report.unreferenced == [orphan.sha256]
    assert not report.ok


def test_orphans_alone_do_not_fail_the_check(store: BlobStore) -> None:
    store.put(b"orphan")
    report = check_blobs(store, [])
    assert report.ok
    assert report.unreferenced == [sha(b"orphan")]


def test_malformed_references_count_as_missing(store: BlobStore) -> None:
    report = check_blobs(store, ["../etc/passwd", "ABC"])
    assert sorted(report.missing) == ["../etc/passwd", "ABC"]
    assert not report.ok


def test_progress_is_reported_per_blob(store: BlobStore) -> None:
    for i in range(3):
        store.put(b"blob %d" % i)
    calls: list[tuple[int, int]] = []
    check_blobs(store, [], progress=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 3), (2, 3), (3, 3)]


def test_corrupt_blobs_still_count_towards_unreferenced(
    store: BlobStore, backdoor: Backdoor
) -> None:
    ref = store.put(b"orphan that rotted")
    backdoor.write_raw(ref.sha256, b"short")
    report = check_blobs(store, [])
    assert report.corrupt == [ref.sha256]
    assert report.unreferenced == [ref.sha256]
