"""``check_blobs``: fixity and reference check of a blob store (behind ``cairn check``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from cairn.blobs.base import CHUNK_SIZE, BlobStore
from cairn.errors import BlobMissing, IntegrityError

__all__ = ["CheckReport", "check_blobs"]


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
