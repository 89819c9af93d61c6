"""The blob store contract: ``BlobRef``, the ``BlobStore`` ABC and hash validation.

Blobs are immutable and addressed by the SHA-256 of their bytes. Rows reference blobs by hash,
never by path, so a backend is free to lay them out as it likes; both built-in backends use
``<root>/ab/<sha256>``.
"""

from __future__ import annotations

import hashlib
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO, Protocol, TypeAlias

from cairn.errors import Invalid

__all__ = [
    "CHUNK_SIZE",
    "BlobRef",
    "BlobSource",
    "BlobStore",
    "Spool",
    "StagedBlob",
    "validate_sha256",
]

CHUNK_SIZE = 1 << 20
"""Bytes per read/write/hash step when streaming; bounds memory whatever the blob size."""

BlobSource: TypeAlias = BinaryIO | bytes | bytearray | memoryview | Iterable[bytes]
"""What ``BlobStore.put`` accepts: bytes, a binary stream, or an iterable of byte chunks."""

_SHA256 = re.compile(r"[0-9a-f]{64}")


def validate_sha256(sha256: object) -> str:
    """Return ``sha256`` if it is 64 lowercase hex digits, else raise ``Invalid``.

    Every store method runs this before building a path or key from the hash, so it is the
    guard against path traversal (``../etc/passwd``) and against two spellings of one blob.
    """
    if not isinstance(sha256, str) or _SHA256.fullmatch(sha256) is None:
        shown = repr(sha256) if len(repr(sha256)) <= 80 else repr(sha256)[:77] + "..."
        raise Invalid(
            f"not a blob hash: {shown} (expected 64 lowercase hex digits)",
            detail={"sha256": str(sha256)[:200]},
        )
    return sha256


@dataclass(frozen=True, slots=True)
class BlobRef:
    """What a put returns and what rows store: the content hash and the size in bytes."""

    sha256: str
    size: int


class Spool(Protocol):
    """An append-only file of small blobs an upload stages before ``ingest``, read by offset.

    ``BlobStore.spool`` may give one in the store's own format (the local store: a pack that
    ``ingest`` then adopts without copying); else the staging keeps a plain file of its own."""

    def append(self, sha256: str, data: bytes) -> int:
        """Write ``data`` (whose hash is ``sha256``); its offset, for ``read``."""
        ...

    def read(self, offset: int, size: int) -> bytes: ...

    def close(self) -> None:
        """No more appends (reads stay possible where the file is still open)."""
        ...

    def discard(self) -> None:
        """Remove the file, if ``ingest`` has not taken it."""
        ...


@dataclass(frozen=True, slots=True)
class StagedBlob:
    """A blob waiting to be stored by ``BlobStore.ingest``: its ref and where its bytes are.

    Either ``path``, a file the store consumes (moves in or deletes), or ``data``, the bytes
    themselves or a callable that returns them (a small blob held in memory or in a spool).
    """

    ref: BlobRef
    path: str | None = None
    data: bytes | Callable[[], bytes] | None = None
    spooled: tuple[Spool, int] | None = None  # where ``data`` is, if in a ``Spool``

    def content(self) -> bytes:
        """The bytes of a ``data`` blob."""
        data = self.data
        if data is None:
            raise ValueError("a staged file has no bytes in memory")
        return data() if callable(data) else data


class BlobStore(ABC):
    """A content-addressed store of immutable blobs.

    Backends implement the abstract methods; ``put_file``, ``read_bytes`` and ``local_path``
    have generic defaults a backend may override with something faster. Every method that takes
    a hash raises ``Invalid`` for a malformed one; reads of an absent blob raise ``BlobMissing``.
    """

    @abstractmethod
    def put(self, data: BlobSource) -> BlobRef:
        """Store ``data`` and return its reference.

        Data is streamed in chunks, hashed while written to a temporary name and moved to its
        content address only when complete, so a failing source leaves nothing behind. Storing
        content that already exists keeps the existing blob (dedupe) and returns the same ref.
        """

    def put_file(self, path: str | os.PathLike[str]) -> BlobRef:
        """Store the contents of the file at ``path`` (``OSError`` if it cannot be read)."""
        with open(path, "rb") as f:
            return self.put(f)

    def ingest_files(
        self,
        paths: Sequence[str | os.PathLike[str]],
        *,
        refs: Sequence[BlobRef] | None = None,
    ) -> list[BlobRef]:
        """Store many files at once and consume them (they are moved in or deleted).

        For bulk ingest, such as an unpacked archive: a backend may move files in rather than
        copy them and make the whole batch durable with one sync. ``refs`` are the files'
        hashes and sizes when the caller computed them while writing the files; a backend may
        trust them (every read still verifies). The default ignores them and stores each file
        with ``put_file``.
        """
        stored = []
        for path in paths:
            stored.append(self.put_file(path))
            os.unlink(path)
        return stored

    def ingest(self, staged: Sequence[StagedBlob]) -> list[BlobRef]:
        """Store a batch of staged blobs (files are consumed); their refs, in order.

        For an upload: a backend may pack the small ones into one object and make the whole
        batch durable with one sync. Each ref is trusted as the caller computed it while
        staging (every read still verifies). The default puts each blob on its own.
        """
        stored = []
        for item in staged:
            if item.path is not None:
                stored.append(self.put_file(item.path))
                os.unlink(item.path)
            else:
                stored.append(self.put(item.content()))
        return stored

    def spool(self) -> Spool | None:
        """A spool for an upload's small blobs in the store's own format, which ``ingest``
        takes over without a copy; None (the default): the caller keeps its own."""
        return None

    def put_many(self, blobs: Sequence[bytes]) -> list[BlobRef]:
        """Store many small blobs at once (one ``ingest`` batch); their refs, in order."""
        return self.ingest(
            [StagedBlob(BlobRef(hashlib.sha256(b).hexdigest(), len(b)), data=b) for b in blobs]
        )

    def repack(self) -> int:
        """Rewrite storage that holds deleted blobs (packs), after gc; the bytes freed.

        The default has nothing to rewrite (each blob is its own object)."""
        return 0

    def purge_temp(self, *, older_than: timedelta, dry_run: bool = False) -> list[str]:
        """Remove temporary files that interrupted puts left behind; returns their names.

        The default has nothing to purge (object stores write whole objects at once)."""
        return []

    def partial_folder(self) -> Path | None:
        """The store's own folder for unfinished resumable uploads, kept across restarts (not
        a per-process scratch folder), on the store's filesystem so that a finished upload
        moves in without a copy; None where the store has no local folder."""
        return None

    @abstractmethod
    def open(self, sha256: str) -> BinaryIO:
        """Open a blob for reading; the stream verifies the hash as it is read.

        The read that reaches the end raises ``IntegrityError`` instead of returning the final
        bytes when the content no longer matches its hash or size. A reader that stops early
        gets no verdict, so use ``read_bytes`` or read to the end when it matters.
        """

    def read_bytes(self, sha256: str) -> bytes:
        """Return the whole blob, verified against its hash (``IntegrityError`` if not)."""
        with self.open(sha256) as f:
            return f.read()

    @abstractmethod
    def exists(self, sha256: str) -> bool:
        """Whether the blob is stored (its content is not checked)."""

    @abstractmethod
    def size(self, sha256: str) -> int:
        """Size of the stored blob in bytes (``BlobMissing`` if absent)."""

    @abstractmethod
    def modified(self, sha256: str) -> datetime:
        """When the blob was stored, as an aware UTC datetime (``BlobMissing`` if absent).

        Garbage collection spares unreferenced blobs younger than its grace period, because an
        upload stores its blobs a moment before it commits the rows that reference them. A put
        that finds its content already stored (dedupe) should therefore refresh this time where
        the backend can do so cheaply; where it cannot, only the grace period protects the blob.
        """

    @abstractmethod
    def delete(self, sha256: str) -> None:
        """Remove the blob; deleting an absent blob is not an error."""

    @abstractmethod
    def iter_hashes(self) -> Iterator[str]:
        """Yield the hash of every stored blob, in ascending order."""

    def local_path(self, sha256: str) -> Path | None:
        """A real file holding the blob, for ``sendfile`` and friends, or None if remote.

        Reading the file directly bypasses verification; it suits serving bytes that a fixity
        check vouches for, not paths that must prove integrity.
        """
        validate_sha256(sha256)
        return None
