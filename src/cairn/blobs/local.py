"""``LocalBlobStore``: blobs as read-only files in a local folder (the default backend).

Layout ``<root>/ab/<sha256>``: one fan-out level, as git does, so bulk ingest creates at most
256 folders. Writes go to ``<root>/.tmp/`` on the same filesystem, are fsynced, then renamed
into place with ``os.replace`` and the directory is fsynced, so a blob path either holds the
complete, durable content or does not exist.

Small blobs stored in a batch (``ingest``, ``put_many``: an unpacked upload) are appended to
pack files under ``<root>/packs/`` instead, one file per batch (``_packs``), with the same
guarantee: a pack becomes visible only once it and its index are durable.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import hashlib
import heapq
import logging
import os
import stat
import sys
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from cairn.blobs._packs import PACK_MAGIC, PACK_MAX_BLOB, PackSet, PackSpool, PackWriter
from cairn.blobs._streams import iter_chunks, open_verifying
from cairn.blobs.base import (
    CHUNK_SIZE,
    BlobRef,
    BlobSource,
    BlobStore,
    StagedBlob,
    validate_sha256,
)
from cairn.errors import BlobMissing
from cairn.tempfiles import remove_stale

__all__ = ["LocalBlobStore"]

logger = logging.getLogger(__name__)

FILE_CHUNK_SIZE = 4 * CHUNK_SIZE
"""Read size for ``put_file``: fewer syscalls per file, still a small fixed buffer."""

_TEMP_DIR = ".tmp"
_PARTIAL_DIR = ".partial"
_PACK_DIR = "packs"
_RECORD_OVERHEAD = 41  # per packed blob: tag, digest and size
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_FADVISE = getattr(os, "posix_fadvise", None)
_HEX = frozenset("0123456789abcdef")
_COPY_FILE_RANGE = getattr(os, "copy_file_range", None)
_COPY_STEP = 1 << 30
_NO_KERNEL_COPY = frozenset(
    {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EPERM, errno.EBADF}
)
_PARALLEL_SYNC_MIN = 256 << 10
"""Below this a helper thread costs more than the hashing it would overlap with the fsync."""


def _is_hex(name: str, length: int) -> bool:
    return len(name) == length and _HEX.issuperset(name)


def _write_all(fd: int, view: memoryview) -> None:
    while view:
        view = view[os.write(fd, view) :]


def _kernel_copy(src: int, dst: int) -> int:
    """Copy ``src`` from its current offset to EOF into ``dst``; -1 if the kernel can't."""
    assert _COPY_FILE_RANGE is not None
    copied = 0
    while True:
        try:
            n = _COPY_FILE_RANGE(src, dst, _COPY_STEP)
        except OSError as exc:
            if copied == 0 and exc.errno in _NO_KERNEL_COPY:
                return -1
            raise
        if n == 0:
            return copied
        copied += n


def _fsync(path: str) -> None:
    """fsync a file or a folder (a folder's fsync makes the renames into it durable)."""
    fd = os.open(path, os.O_RDONLY | _O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@functools.cache
def _libc_syncfs() -> Callable[[int], int] | None:
    """Linux's ``syncfs(2)`` from the C library (``os`` has no ``syncfs``), or None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        syncfs = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):  # a C library without it
        return None
    syncfs.argtypes = [ctypes.c_int]
    syncfs.restype = ctypes.c_int
    return syncfs


def _syncfs(path: str) -> bool:
    """Flush the filesystem holding ``path`` (only that one, unlike ``os.sync``).

    Returns False where ``syncfs`` is unavailable, so the caller fsyncs file by file instead.
    """
    syncfs = _libc_syncfs()
    if syncfs is None:
        return False
    fd = os.open(path, os.O_RDONLY | _O_CLOEXEC)
    try:
        if syncfs(fd) != 0:
            code = ctypes.get_errno()
            if code == errno.ENOSYS:  # e.g. filtered out by a container's seccomp profile
                return False
            raise OSError(code, f"syncfs: {os.strerror(code)}", path)
    finally:
        os.close(fd)
    return True


class LocalBlobStore(BlobStore):
    """Content-addressed blobs under ``root`` (created if missing)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(os.path.abspath(root))
        self._root = str(self.root)
        self._tmp = os.path.join(self._root, _TEMP_DIR)
        os.makedirs(self._tmp, exist_ok=True)
        self._packs = PackSet(os.path.join(self._root, _PACK_DIR))
        self._buffers = threading.local()

    def __repr__(self) -> str:
        return f"LocalBlobStore({self._root!r})"

    # -- writing ---------------------------------------------------------------------------

    def put(self, data: BlobSource) -> BlobRef:
        def fill(fd: int) -> tuple[str, int]:
            digest = hashlib.sha256()
            size = 0
            for chunk in iter_chunks(data, self._buffer(CHUNK_SIZE)):
                digest.update(chunk)
                _write_all(fd, chunk)
                size += len(chunk)
            return digest.hexdigest(), size

        return self._store(fill)

    def put_file(self, path: str | os.PathLike[str]) -> BlobRef:
        """Store a local file (``OSError`` if it cannot be read).

        The kernel copies the file into the temp file (``copy_file_range``: no trip through
        Python, a reflink on filesystems that can), then the temp file is read back and hashed
        while another thread fsyncs it. Hashing the copy, not the source, means a source that
        changes mid-put can never produce a blob whose content differs from its name.
        """
        src = os.open(path, os.O_RDONLY | _O_CLOEXEC)
        try:
            info = os.fstat(src)
            if _FADVISE is not None:
                _FADVISE(src, 0, 0, os.POSIX_FADV_SEQUENTIAL)
            # /proc-style files report size 0 yet have content, and copy_file_range copies
            # nothing from them; only plain non-empty files take the kernel-copy path.
            if _COPY_FILE_RANGE is None or not stat.S_ISREG(info.st_mode) or info.st_size == 0:
                return self._store(self._stream_fill(src))

            def fill(fd: int) -> tuple[str, int]:
                size = _kernel_copy(src, fd)
                if size >= 0:
                    return self._hash_while_syncing(fd, size)
                # Kernel copy unsupported here (another filesystem, an old kernel …).
                sha256, size = self._stream_fill(src)(fd)
                os.fsync(fd)
                return sha256, size

            return self._store(fill, fill_syncs=True)
        finally:
            os.close(src)

    def ingest_files(
        self,
        paths: Sequence[str | os.PathLike[str]],
        *,
        refs: Sequence[BlobRef] | None = None,
    ) -> list[BlobRef]:
        """Move the files in, made durable with one ``syncfs`` for the batch (see ``ingest``).

        Without ``refs`` each file is hashed here first."""
        names = [os.fspath(p) for p in paths]
        if refs is None:
            refs = [self._hash_file(name) for name in names]
        elif len(refs) != len(names):
            raise ValueError("ingest_files needs one ref per path")
        return self.ingest(
            [StagedBlob(ref, path=name) for name, ref in zip(names, refs, strict=True)]
        )

    def ingest(self, staged: Sequence[StagedBlob]) -> list[BlobRef]:
        """Pack the small blobs held in memory, move the files in; one sync for the batch.

        Blobs given as bytes (up to ``PACK_MAX_BLOB``) are appended to new pack files
        (``_packs``), so 10,000 small files make a few files, not 10,000. Files are moved in
        (no copy). One flush of the store's filesystem (``syncfs``) makes all of it durable,
        instead of an fsync per file; it leaves the host's other filesystems alone, and where
        it is missing each file is fsynced. Then the packs and files are renamed into place and
        the folders that received them are fsynced. Content already stored is kept (dedupe),
        and its age refreshed for gc. Files on another filesystem fall back to ``put_file``.
        """
        packs = self._packs
        packs.refresh()  # once: see what other processes packed, and what they deleted
        writer = PackWriter(self._tmp)
        moves: list[tuple[str, BlobRef]] = []
        refs: list[BlobRef] = []
        seen: set[str] = set()
        spool = self._own_spool(staged)
        spooled: list[tuple[str, int, int]] = []  # (sha256, offset, size) in ``spool``
        try:
            for item in staged:
                ref = item.ref
                sha256 = validate_sha256(ref.sha256)
                refs.append(ref)
                if item.path is not None:
                    os.chmod(item.path, 0o444)  # before the flush, so that the mode is durable
                    moves.append((item.path, ref))
                    continue
                if sha256 in seen or self._stored(sha256, ref.size):
                    continue
                seen.add(sha256)
                if ref.size <= PACK_MAX_BLOB and spool is not None:
                    at = item.spooled
                    offset = at[1] if at is not None and at[0] is spool else None
                    if offset is None:  # held in memory: appended, so one pack holds all
                        offset = spool.append(sha256, item.content())
                    spooled.append((sha256, offset, ref.size))
                    continue
                data = item.content()
                if len(data) > PACK_MAX_BLOB:
                    self.put(data)  # large content given as bytes: a loose blob of its own
                    continue
                writer.add(sha256, data)
            if spool is not None and spooled:
                # The spool is the pack, unless most of its bytes are records this batch does
                # not use (an upload stored before): then its used records are copied.
                used = sum(size for _, _, size in spooled)
                if 2 * used >= sum(size for _, _, size in spool.records):
                    writer.adopt(spool, spooled)
                else:
                    for sha256, offset, size in spooled:
                        writer.add(sha256, spool.read(offset, size))
            writer.seal()
            if not _syncfs(self._root):
                for path in [*writer.paths(), *(name for name, _ in moves)]:
                    _fsync(path)
            published = packs.publish(writer)
        except BaseException:
            writer.discard()
            raise
        finally:
            if spool is not None:
                spool.discard()  # not adopted (published ones were moved away already)
        folders: set[str] = {packs.folder} if published else set()
        made: set[str] = set()
        for name, ref in moves:
            final = self._path(ref.sha256)
            # A kept duplicate's folder too: a concurrent put may not have synced its rename.
            folders.add(os.path.dirname(final))
            if self._present(final, ref.size):
                os.unlink(name)
                continue
            if ref.sha256[:2] not in made:
                folders.update(self._make_parents(ref.sha256))
                made.add(ref.sha256[:2])
            try:
                os.replace(name, final)
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                self.put_file(name)
                os.unlink(name)
        for folder in folders:
            _fsync(folder)
        return refs

    def spool(self) -> PackSpool:
        """A pack in the store's temp folder, for an upload's small blobs (``ingest`` adopts it)."""
        return PackSpool(self._tmp)

    def _own_spool(self, staged: Sequence[StagedBlob]) -> PackSpool | None:
        """The one spool of this store that ``staged`` blobs are in, if any."""
        found = {id(s): s for s, _ in (i.spooled for i in staged if i.spooled is not None)}
        ours = [s for s in found.values() if isinstance(s, PackSpool) and s.tmp == self._tmp]
        return ours[0] if len(ours) == 1 and len(found) == 1 else None

    def _stored(self, sha256: str, size: int) -> bool:
        """Whether a batch put can keep a stored copy (loose or packed), refreshing its age."""
        if self._present(self._path(sha256), size):
            return True
        loc = self._packs.find(sha256, retry=False)  # the batch refreshed the index first
        return loc is not None and loc.size == size and self._packs.touch(loc)

    def repack(self) -> int:
        """Rewrite every pack holding deleted blobs into a new pack of its live blobs.

        The live blobs' bytes are copied as they are (a damaged one stays damaged, for
        ``cairn check`` to report); the new pack is synced and published before the old one is
        removed, so a crash in between leaves a blob in two packs, never in none."""
        packs = self._packs
        freed = 0
        with packs.exclusive():
            for name, live in packs.dead_packs():
                writer = PackWriter(self._tmp)
                try:
                    for sha256, loc in live:
                        with packs.open_range(loc) as reader:
                            writer.add(sha256, reader.read(loc.size))
                    writer.seal()
                    for path in writer.paths():
                        _fsync(path)
                    packs.publish(writer)
                except BaseException:
                    writer.discard()
                    raise
                _fsync(packs.folder)
                before = os.stat(os.path.join(packs.folder, name + ".pack")).st_size
                packs.remove(name)
                _fsync(packs.folder)
                after = sum(_RECORD_OVERHEAD + loc.size for _, loc in live)
                freed += before - (after + len(PACK_MAGIC) if live else 0)
        packs.refresh()
        return freed

    def _hash_file(self, name: str) -> BlobRef:
        buf = self._buffer(FILE_CHUNK_SIZE)
        view = memoryview(buf)
        digest = hashlib.sha256()
        size = 0
        fd = os.open(name, os.O_RDONLY | _O_CLOEXEC)
        try:
            while n := os.readv(fd, [buf]):
                digest.update(view[:n])
                size += n
        finally:
            os.close(fd)
        return BlobRef(digest.hexdigest(), size)

    def purge_temp(self, *, older_than: timedelta, dry_run: bool = False) -> list[str]:
        return remove_stale(Path(self._tmp), older_than=older_than, dry_run=dry_run)

    def partial_folder(self) -> Path:
        """``<root>/.partial``: resumable uploads in progress (see ``BlobStore.partial_folder``)."""
        return self.root / _PARTIAL_DIR

    def _stream_fill(self, src: int) -> Callable[[int], tuple[str, int]]:
        """Copy ``src`` to the temp file through a reusable buffer, hashing on the way."""
        buf = self._buffer(FILE_CHUNK_SIZE)
        view = memoryview(buf)

        def fill(fd: int) -> tuple[str, int]:
            digest = hashlib.sha256()
            size = 0
            while n := os.readv(src, [buf]):
                chunk = view[:n]
                digest.update(chunk)
                _write_all(fd, chunk)
                size += n
            return digest.hexdigest(), size

        return fill

    def _hash_while_syncing(self, fd: int, size: int) -> tuple[str, int]:
        """Hash the temp file's ``size`` bytes; fsync it meanwhile (both release the GIL)."""
        buf = self._buffer(FILE_CHUNK_SIZE)
        view = memoryview(buf)
        failures: list[BaseException] = []

        def sync() -> None:
            try:
                os.fsync(fd)
            except BaseException as exc:  # re-raised in the calling thread below
                failures.append(exc)

        syncer = None
        if size >= _PARALLEL_SYNC_MIN:
            syncer = threading.Thread(target=sync, name="cairn-blob-fsync", daemon=True)
            syncer.start()
        try:
            digest = hashlib.sha256()
            offset = 0
            while offset < size and (n := os.preadv(fd, [buf], offset)):
                digest.update(view[:n])
                offset += n
        finally:
            if syncer is not None:
                syncer.join()
        if syncer is None:
            sync()
        if failures:
            raise failures[0]
        if offset != size:
            raise OSError(f"temp file holds {offset} bytes, {size} were copied into it")
        return digest.hexdigest(), size

    def _store(
        self, fill: Callable[[int], tuple[str, int]], *, fill_syncs: bool = False
    ) -> BlobRef:
        """Run ``fill`` against a fresh temp file, then commit it under its content address.

        ``fill`` writes the content to the descriptor and returns ``(sha256, size)``; unless
        ``fill_syncs``, the temp file is fsynced here, and only when it is not a duplicate.
        """
        tmp = os.path.join(self._tmp, uuid.uuid4().hex)
        # 0o444: blobs are immutable; a stray open(..., "w") on one should fail. O_RDWR lets
        # put_file read back what it copied through the same descriptor.
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | _O_CLOEXEC, 0o444)
        committed = False
        try:
            try:
                sha256, size = fill(fd)
                final = self._path(sha256)
                if self._present(final, size):
                    # Dedupe. Sync the directory anyway: a concurrent put may have renamed the
                    # blob in but not yet made the rename durable when we return.
                    _fsync(os.path.dirname(final))
                    return BlobRef(sha256, size)
                if not fill_syncs:
                    os.fsync(fd)
            finally:
                os.close(fd)
            created = self._make_parents(sha256)
            os.replace(tmp, final)
            committed = True
            # The leaf's fsync commits the rename; parents made just now need theirs too.
            _fsync(os.path.dirname(final))
            for parent in created:
                _fsync(parent)
            return BlobRef(sha256, size)
        finally:
            if not committed:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)

    def _present(self, final: str, size: int) -> bool:
        """Whether a put can keep the stored copy (dedupe); if so, mark it as stored just now.

        Refreshing the mtime keeps garbage collection off a blob that an upload in flight has
        just re-referenced but not yet committed rows for (see ``BlobStore.modified``). If the
        blob vanishes in between (collected a moment ago), the put stores its fresh copy.
        """
        try:
            stored = os.stat(final).st_size
        except FileNotFoundError:
            return False
        if stored != size:
            # Same hash, different size: the stored copy is damaged, so the fresh copy heals it.
            logger.warning(
                "replacing damaged blob %s (%d bytes, expected %d)",
                os.path.basename(final),
                stored,
                size,
            )
            return False
        try:
            os.utime(final)  # mode 0444 does not matter: the owner may always set times
        except FileNotFoundError:
            return False
        return True

    def _make_parents(self, sha256: str) -> list[str]:
        """Create ``ab/``; return the directories whose entry for a new child needs a sync."""
        folder = os.path.join(self._root, sha256[:2])
        try:
            os.mkdir(folder)
        except FileExistsError:
            return []
        return [self._root]

    def _buffer(self, size: int) -> bytearray:
        """A per-thread scratch buffer, reused across puts to avoid allocating each time."""
        buffers: dict[int, bytearray] | None = getattr(self._buffers, "by_size", None)
        if buffers is None:
            buffers = self._buffers.by_size = {}
        buf = buffers.get(size)
        if buf is None:
            buf = buffers[size] = bytearray(size)
        return buf

    # -- reading ---------------------------------------------------------------------------

    def open(self, sha256: str) -> BinaryIO:
        path = self._path(validate_sha256(sha256))
        try:
            f = open(path, "rb", buffering=0)  # noqa: SIM115 - the verifying reader owns it
        except FileNotFoundError:
            return self._open_packed(sha256)
        try:
            size = os.fstat(f.fileno()).st_size
            if _FADVISE is not None:
                _FADVISE(f.fileno(), 0, 0, os.POSIX_FADV_SEQUENTIAL)
        except BaseException:
            f.close()
            raise
        return open_verifying(f, sha256, size)

    def _open_packed(self, sha256: str) -> BinaryIO:
        for fresh in (False, True):  # a repack elsewhere may have moved it to another pack
            loc = self._packs.find(sha256, fresh=fresh)
            if loc is None:
                break
            try:
                return open_verifying(self._packs.open_range(loc), sha256, loc.size)
            except FileNotFoundError:
                continue
        raise BlobMissing(f"blob {sha256} is not stored", detail={"sha256": sha256})

    def exists(self, sha256: str) -> bool:
        if os.path.isfile(self._path(validate_sha256(sha256))):
            return True
        return self._packs.find(sha256) is not None

    def size(self, sha256: str) -> int:
        try:
            return os.stat(self._path(validate_sha256(sha256))).st_size
        except FileNotFoundError:
            loc = self._packs.find(sha256)
            if loc is None:
                raise BlobMissing(
                    f"blob {sha256} is not stored", detail={"sha256": sha256}
                ) from None
            return loc.size

    def modified(self, sha256: str) -> datetime:
        """The blob file's mtime: when it was stored, or last re-put (dedupe); for a packed
        blob its pack index's, which a dedupe put refreshes for the whole pack."""
        try:
            mtime = os.stat(self._path(validate_sha256(sha256))).st_mtime
        except FileNotFoundError:
            mtime = None
        if mtime is None:
            loc = self._packs.find(sha256)
            try:
                mtime = self._packs.index_mtime(loc) if loc is not None else None
            except FileNotFoundError:
                mtime = None
        if mtime is None:
            raise BlobMissing(f"blob {sha256} is not stored", detail={"sha256": sha256})
        return datetime.fromtimestamp(mtime, tz=UTC)

    def delete(self, sha256: str) -> None:
        # Directories stay: removing them would race with a put that just created them.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(validate_sha256(sha256)))
        self._packs.delete(sha256)  # its bytes go at the next repack

    def iter_hashes(self) -> Iterator[str]:
        loose = self._iter_loose()
        packed = iter(sorted(self._packs.hashes()))
        # Merge the two sorted streams; a blob both loose and packed is yielded once.
        last = None
        for sha256 in heapq.merge(loose, packed):
            if sha256 != last:
                yield sha256
                last = sha256

    def _iter_loose(self) -> Iterator[str]:
        for folder in _sorted_names(self._root):
            if not _is_hex(folder, 2):
                continue
            for name in _sorted_names(os.path.join(self._root, folder)):
                if _is_hex(name, 64) and name.startswith(folder):
                    yield name

    def local_path(self, sha256: str) -> Path | None:
        """The blob's file, None for a packed blob (``BlobMissing`` if absent); see
        ``BlobStore.local_path``."""
        path = self._path(validate_sha256(sha256))
        if os.path.isfile(path):
            return Path(path)
        if self._packs.find(sha256) is not None:
            return None
        raise BlobMissing(f"blob {sha256} is not stored", detail={"sha256": sha256})

    def _path(self, sha256: str) -> str:
        return os.path.join(self._root, sha256[:2], sha256)


def _sorted_names(path: str) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except (FileNotFoundError, NotADirectoryError):
        return []
