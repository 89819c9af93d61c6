"""``check_blobs``: fixity and reference check of a blob store (behind ``cairn check``), and
``collect_garbage``: deletion of unreferenced blobs (behind ``cairn admin gc``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cairn.blobs.base import CHUNK_SIZE, BlobStore
from cairn.errors import BlobMissing, IntegrityError

__all__ = ["CheckReport", "GarbageReport", "check_blobs", "collect_garbage"]


@dataclass
class CheckReport:
    """Outcome of ``check_blobs``; hash lists are sorted."""

    checked: int = 0
    """Stored blobs re-hashed (corrupt ones included)."""
    corrupt: list[str] = field(default_factory=list)
    """Stored blobs whose bytes no longer match their hash."""
    missing: list[str] = field(default_factory=list)
    """Referenced but not stored (including referenced strings that are not valid hashes)."""
    unreferenced: list[str] = field(default_factory=list)
    """Stored but not referenced: orphans, e.g. from a put whose transaction rolled back."""
    bytes_checked: int = 0

    @property
    def ok(self) -> bool:
        """No corrupt and no missing blobs; orphans are garbage, not damage."""
        return not self.corrupt and not self.missing


def check_blobs(
    store: BlobStore,
    referenced: Iterable[str],
    *,
    progress: Callable[[int, int], None] | None = None,
) -> CheckReport:
    """Re-hash every stored blob and compare the stored set with the ``referenced`` hashes.

    Args:
        store: the store to check.
        referenced: hashes the database refers to (duplicates are fine).
        progress: called as ``progress(done, total)`` in blobs after each blob is checked.
    """
    wanted = set(referenced)
    stored = list(store.iter_hashes())
    report = CheckReport()
    total = len(stored)
    gone: set[str] = set()
    for done, sha256 in enumerate(stored, start=1):
        try:
            with store.open(sha256) as f:
                while chunk := f.read(CHUNK_SIZE):
                    report.bytes_checked += len(chunk)
        except IntegrityError:
            report.corrupt.append(sha256)
            report.checked += 1
        except BlobMissing:
            gone.add(sha256)  # deleted while the check ran: no longer stored
        else:
            report.checked += 1
        if progress is not None:
            progress(done, total)
    present = set(stored) - gone
    report.missing = sorted(wanted - present)
    report.unreferenced = sorted(present - wanted)
    return report


@dataclass
class GarbageReport:
    """Outcome of ``collect_garbage``; hash lists are sorted."""

    deleted: list[str] = field(default_factory=list)
    """Unreferenced blobs older than the grace period: deleted, or only listed on a dry run."""
    kept_recent: list[str] = field(default_factory=list)
    """Unreferenced blobs younger than the grace period, kept: perhaps an upload in flight."""
    bytes_freed: int = 0
    """Total size of ``deleted`` (what a dry run would free)."""
    bytes_repacked: int = 0
    """Bytes of deleted blobs dropped from pack files by the repack after the deletions."""
    dry_run: bool = False


def collect_garbage(
    store: BlobStore,
    referenced: Iterable[str],
    *,
    grace: timedelta,
    dry_run: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> GarbageReport:
    """Delete every stored blob that is not ``referenced`` and was stored before ``now - grace``.

    Blobs are shared between rows (dedupe), so deleting rows leaves their blobs behind; this
    removes the ones nothing points at any more. The grace period protects uploads in flight:
    an upload stores its blobs a moment before it commits the rows that reference them, so a
    young unreferenced blob may be about to gain a reference. It should exceed the longest
    upload. Packs holding deleted blobs are then rewritten (``BlobStore.repack``). A dedupe put
    refreshes a blob's age where the backend can (see
    ``BlobStore.modified``); elsewhere the grace period also covers a blob that an upload
    re-uses. Each blob's age is read immediately before it is deleted.

    Args:
        store: the store to clean.
        referenced: every hash the database refers to (duplicates are fine); take it before
            calling, since blobs stored after that are protected by their age.
        grace: minimum age of a blob to delete; zero or less considers every unreferenced blob.
        dry_run: report what would be deleted, delete nothing.
        progress: called as ``progress(done, total)`` after each unreferenced blob is handled.
    """
    wanted = set(referenced)
    candidates = [sha256 for sha256 in store.iter_hashes() if sha256 not in wanted]
    cutoff = datetime.now(UTC) - grace
    report = GarbageReport(dry_run=dry_run)
    total = len(candidates)
    for done, sha256 in enumerate(candidates, start=1):
        try:
            size = store.size(sha256)
            stored_at = store.modified(sha256)
        except BlobMissing:
            pass  # deleted meanwhile: nothing left to collect
        else:
            if stored_at >= cutoff:
                report.kept_recent.append(sha256)
            else:
                if not dry_run:
                    store.delete(sha256)
                report.deleted.append(sha256)
                report.bytes_freed += size
        if progress is not None:
            progress(done, total)
    if not dry_run:
        # Packed blobs are only marked deleted above; rewriting their packs frees the bytes.
        report.bytes_repacked = store.repack()
    return report
