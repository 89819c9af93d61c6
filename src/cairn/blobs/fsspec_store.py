"""``FsspecBlobStore``: blobs on any fsspec filesystem (``file://``, ``memory://``, ``s3://`` …).

Same layout as the local store, ``<prefix>/ab/<sha256>``, with temporary keys under
``<prefix>/.tmp/``. How a blob reaches its address depends on what the backend guarantees:

* A streamed put does not know its address until the last byte is hashed, so it is always
  written to a temporary key and then moved with ``fs.mv`` (a rename on ``file://``, a
  server-side copy + delete on object stores). A failed put removes the temporary key.
* Object stores (memory, s3, gcs, azure) make an object visible only once its upload completes,
  so when the hash is known before writing (``put(bytes)``) the blob is written straight to its
  address in one request: no reader can ever see a partial object, and s3 is spared the copy.
* On ``file://`` a direct write could leave a partial file at the address after a crash, so
  it always goes through the temporary file, which is fsynced before the rename and followed
  by a directory fsync, as in ``LocalBlobStore``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import fsspec

from cairn.blobs._streams import iter_chunks, open_verifying
from cairn.blobs.base import BlobRef, BlobSource, BlobStore, validate_sha256
from cairn.errors import BlobMissing, Invalid

__all__ = ["ATOMIC_PUT_PROTOCOLS", "FsspecBlobStore"]

ATOMIC_PUT_PROTOCOLS = frozenset({"memory", "s3", "s3a", "gs", "gcs", "az", "abfs", "abfss"})
"""Protocols whose object writes become visible all at once, so known-hash puts go direct."""

_LOCAL_PROTOCOLS = frozenset({"file", "local"})
_HEX = frozenset("0123456789abcdef")


class FsspecBlobStore(BlobStore):
    """Content-addressed blobs under an fsspec URL; extra keyword arguments go to fsspec."""

    def __init__(self, url: str, **storage_options: Any) -> None:
        try:
            fs, root = fsspec.core.url_to_fs(url, **storage_options)
        except (ImportError, ValueError, TypeError) as exc:
            # Missing driver package, unknown protocol, or a URL the driver cannot parse
            # (e.g. no host); network trouble (OSError) is not the caller's input and propagates.
            raise Invalid(f"cannot open blob store {url!r}: {exc}") from exc
        self.url = url
        self.fs: Any = fs
        self.root: str = root.rstrip("/")
        protocols = {fs.protocol} if isinstance(fs.protocol, str) else set(fs.protocol)
        self._local = bool(protocols & _LOCAL_PROTOCOLS)
        self._atomic_puts = bool(protocols & ATOMIC_PUT_PROTOCOLS)
        self._memory = "memory" in protocols
        if self._local:
            fs.makedirs(self._join(".tmp"), exist_ok=True)

    def __repr__(self) -> str:
        return f"FsspecBlobStore({self.url!r})"

    # -- writing ---------------------------------------------------------------------------

    def put(self, data: BlobSource) -> BlobRef:
        if isinstance(data, bytes) and self._atomic_puts:
            return self._put_direct(data)
        tmp = self._join(".tmp", uuid.uuid4().hex)
        moved = False
        try:
            sha256, size = self._write_temp(tmp, data)
            final = self._path(sha256)
            if not self._present(final, size):
                if self._local:
                    self.fs.makedirs(self._join(sha256[:2]), exist_ok=True)
                self.fs.mv(tmp, final)
                moved = True
                if self._local:
                    # Leaf first: it commits the rename; the rest cover directories made now.
                    leaf = os.path.dirname(final)
                    for directory in (leaf, os.path.dirname(leaf), self.root or "/"):
                        _fsync_dir(directory)
            return BlobRef(sha256, size)
        finally:
            if not moved:
                with contextlib.suppress(FileNotFoundError):
                    self.fs.rm_file(tmp)

    def _put_direct(self, data: bytes) -> BlobRef:
        # ``bytes`` cannot change between hashing and writing, unlike bytearray or a stream.
        sha256 = hashlib.sha256(data).hexdigest()
        final = self._path(sha256)
        if not self._present(final, len(data)):
            self.fs.pipe_file(final, data)
        return BlobRef(sha256, len(data))

    def _write_temp(self, tmp: str, data: BlobSource) -> tuple[str, int]:
        digest = hashlib.sha256()
        size = 0
        f = self.fs.open(tmp, "wb")
        try:
            for chunk in iter_chunks(data):
                digest.update(chunk)
                f.write(chunk)
                size += len(chunk)
            if self._local:
                f.flush()
                os.fsync(f.fileno())
        except BaseException:
            _abandon(f)
            raise
        f.close()
        return digest.hexdigest(), size

    def _present(self, final: str, size: int) -> bool:
        """Whether a put can keep the stored copy (dedupe).

        On ``file://`` a kept copy's mtime is refreshed, as ``LocalBlobStore`` does, so garbage
        collection spares a blob an upload in flight has just re-referenced. Other backends
        keep the original time: object stores cannot touch an object without rewriting it, and
        fsspec's generic ``touch`` would create an empty object if the blob vanished meanwhile.
        There the grace period of ``collect_garbage`` alone protects such a blob.
        """
        try:
            # A stored copy of another size is damaged; overwriting it with this one heals it.
            if int(self.fs.size(final)) != size:
                return False
            if self._local:
                os.utime(final)
        except FileNotFoundError:
            return False
        return True

    # -- reading ---------------------------------------------------------------------------

    def open(self, sha256: str) -> BinaryIO:
        path = self._path(validate_sha256(sha256))
        try:
            if self._memory:
                # MemoryFileSystem hands every reader the same BytesIO (one shared position),
                # so concurrent readers would garble each other; read a private copy instead.
                data = self.fs.cat_file(path)
                return open_verifying(io.BytesIO(data), sha256, len(data))
            source = self.fs.open(path, "rb")
        except (FileNotFoundError, IsADirectoryError):
            raise BlobMissing(f"blob {sha256} is not stored", detail={"sha256": sha256}) from None
        size = getattr(source, "size", None)  # buffered fsspec files know it: no extra request
        if not isinstance(size, int):
            try:
                size = int(self.fs.size(path))
            except BaseException:
                source.close()
                raise
        return open_verifying(source, sha256, size)

    def exists(self, sha256: str) -> bool:
        return bool(self.fs.isfile(self._path(validate_sha256(sha256))))

    def size(self, sha256: str) -> int:
        try:
            return int(self.fs.size(self._path(validate_sha256(sha256))))
        except FileNotFoundError:
            raise BlobMissing(f"blob {sha256} is not stored", detail={"sha256": sha256}) from None

    def modified(self, sha256: str) -> datetime:
        """The object's modification time from fsspec; a naive time is taken to be UTC."""
        try:
            stamp = self.fs.modified(self._path(validate_sha256(sha256)))
        except FileNotFoundError:
            raise BlobMissing(f"blob {sha256} is not stored", detail={"sha256": sha256}) from None
        if not isinstance(stamp, datetime):
            raise TypeError(f"{type(self.fs).__name__}.modified returned {stamp!r}")
        if stamp.tzinfo is None:
            return stamp.replace(tzinfo=UTC)
        return stamp.astimezone(UTC)

    def delete(self, sha256: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(self._path(validate_sha256(sha256)))

    def iter_hashes(self) -> Iterator[str]:
        try:
            paths = self.fs.find(self.root or "/")
        except FileNotFoundError:
            return
        prefix = self.root + "/"
        found = []
        for path in paths:
            if not path.startswith(prefix):
                continue
            parts = path[len(prefix) :].split("/")
            if len(parts) != 2:
                continue
            folder, name = parts
            in_place = name[:2] == folder
            if in_place and len(name) == 64 and _HEX.issuperset(name):
                found.append(name)
        yield from sorted(found)

    def local_path(self, sha256: str) -> Path | None:
        """The blob's file for ``file://`` stores (``BlobMissing`` if absent), else None."""
        path = self._path(validate_sha256(sha256))
        if not self._local:
            return None
        if not os.path.isfile(path):
            raise BlobMissing(f"blob {sha256} is not stored", detail={"sha256": sha256})
        return Path(path)

    def _path(self, sha256: str) -> str:
        return self._join(sha256[:2], sha256)

    def _join(self, *parts: str) -> str:
        return "/".join((self.root, *parts))


def _abandon(f: Any) -> None:
    """Close a half-written temp file; the caller deletes its key.

    Closing may still upload what was written (fsspec files commit on close); that costs a
    wasted upload, never a wrong blob, since only the temporary key receives it.
    """
    with contextlib.suppress(Exception):
        f.close()


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
