"""Pack files of the local blob store: many small blobs in one file, with an index beside it.

Creating a file costs 0.2-0.9 ms of kernel time on the machines cairn runs on (issue #13 §8),
so an upload of 10,000 small files spent most of its time in ``open`` and ``rename``. A batch
of small blobs is instead appended to one pack file, which then gets an index file:

    <root>/packs/<id>.pack   b"CAIRNPK1", then per blob: b"R", 32-byte digest, 8-byte size, data
    <root>/packs/<id>.idx    b"CAIRNIX1", pack size (8), count (8), per blob digest + offset +
                             size (48), then the SHA-256 of everything before it (32)
    <root>/packs/<id>.dead   32-byte digests of the pack's deleted blobs, appended

The index lives beside its pack, not in the database: the blob store has no database by design
(``open_blob_store`` takes only a URL, and ``cairn check`` compares the store against the
database's references, which needs the store to describe itself). Every pack record repeats its
blob's digest and size, so an index that is missing (a crash between writing the pack and its
index), damaged or shorter than its pack is rebuilt from the pack on open, record by record,
each re-hashed; a record cut short is dropped. A blob's bytes are verified on every read as for
loose blobs. A pack is never changed once its index is written: deleting a blob appends its
digest to ``.dead``, and ``repack`` (run by ``cairn admin gc``) rewrites packs with dead blobs.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import functools
import hashlib
import logging
import os
import struct
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

__all__ = ["PACK_MAX_BLOB", "PACK_TARGET", "PackLocation", "PackSet", "PackSpool"]

logger = logging.getLogger(__name__)

PACK_MAX_BLOB = 1 << 20
"""Blobs up to this size are packed by a batch put; larger ones stay loose files."""
PACK_TARGET = 64 << 20
"""A batch starts a new pack once the current one holds this much."""

PACK_MAGIC = b"CAIRNPK1"
INDEX_MAGIC = b"CAIRNIX1"
_RECORD = struct.Struct(">c32sQ")  # b"R", digest, size
_ENTRY = struct.Struct(">32sQQ")  # digest, data offset, size
_HEAD = struct.Struct(">8sQQ")  # magic, pack size, count
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
WRITEBACK_STEP = 8 << 20
"""A spool asks the kernel to start writing back each time it has grown by this much."""
_SYNC_FILE_RANGE_WRITE = 2


@functools.cache
def _libc_sync_file_range() -> Callable[[int, int, int, int], int] | None:
    """Linux's ``sync_file_range(2)`` (not in ``os``), or None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        call = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    call.restype = ctypes.c_int
    return call


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Let the disk start on ``length`` bytes at ``offset`` now, without waiting for them.

    Not a sync (nothing is promised durable; the upload's one ``syncfs`` does that), but the
    writes then overlap the unpacking instead of all waiting for that sync at the end."""
    call = _libc_sync_file_range()
    if call is not None:
        call(fd, offset, length, _SYNC_FILE_RANGE_WRITE)  # a hint: a failure changes nothing


@dataclass(frozen=True, slots=True)
class PackLocation:
    """Where a packed blob's bytes are."""

    pack: str  # the pack's id (its file name without ``.pack``)
    offset: int
    size: int


@dataclass
class _Pack:
    entries: dict[str, PackLocation]  # live and dead
    dead: set[str]
    dead_bytes: int  # size of the .dead file read so far


def _write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _write_new(path: str, data: bytes, mode: int = 0o444) -> None:
    """Create ``path`` holding ``data`` (not yet synced)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_CLOEXEC, mode)
    try:
        _write_all(fd, data)
    finally:
        os.close(fd)


def _read_file(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def encode_index(pack_size: int, entries: list[tuple[str, int, int]]) -> bytes:
    """The bytes of an index file for ``entries`` (hex digest, data offset, size)."""
    body = bytearray(_HEAD.pack(INDEX_MAGIC, pack_size, len(entries)))
    for sha256, offset, size in entries:
        body += _ENTRY.pack(bytes.fromhex(sha256), offset, size)
    body += hashlib.sha256(body).digest()
    return bytes(body)


def decode_index(data: bytes) -> tuple[int, list[tuple[str, int, int]]] | None:
    """``(pack size, entries)`` of an index file, or None if it is damaged."""
    if len(data) < _HEAD.size + 32 or hashlib.sha256(data[:-32]).digest() != data[-32:]:
        return None
    magic, pack_size, count = _HEAD.unpack_from(data)
    if magic != INDEX_MAGIC or len(data) != _HEAD.size + count * _ENTRY.size + 32:
        return None
    entries = []
    for i in range(count):
        digest, offset, size = _ENTRY.unpack_from(data, _HEAD.size + i * _ENTRY.size)
        entries.append((digest.hex(), offset, size))
    return pack_size, entries


def scan_pack(path: str) -> tuple[int, list[tuple[str, int, int]]]:
    """Rebuild a pack's entries from its records, re-hashing each; stops at the first bad one.

    Returns the size of the good prefix and its entries."""
    entries: list[tuple[str, int, int]] = []
    with open(path, "rb") as f:
        if f.read(len(PACK_MAGIC)) != PACK_MAGIC:
            return 0, []
        good = len(PACK_MAGIC)
        while True:
            header = f.read(_RECORD.size)
            if len(header) < _RECORD.size:
                return good, entries
            tag, digest, size = _RECORD.unpack(header)
            if tag != b"R" or size > PACK_MAX_BLOB:
                return good, entries
            data = f.read(size)
            if len(data) != size or hashlib.sha256(data).digest() != digest:
                return good, entries
            entries.append((digest.hex(), good + _RECORD.size, size))
            good += _RECORD.size + size


class PackWriter:
    """Appends blobs to new pack files in the store's temp folder; ``seal`` indexes them.

    Nothing is visible to readers until the caller has made the files durable and called
    ``PackSet.publish``; until then the files are temporary files like any other put's."""

    def __init__(self, tmp: str) -> None:
        self._tmp = tmp
        self.done: list[tuple[str, str, str]] = []  # (id, pack temp path, index temp path)
        self.dead: dict[str, str] = {}  # id -> temp path of its ``.dead`` file, if it has one
        self._fd = -1
        self._id = ""
        self._size = 0
        self._entries: list[tuple[str, int, int]] = []
        self._buffer = bytearray()

    def add(self, sha256: str, data: bytes | memoryview) -> None:
        if self._fd < 0:
            self._id = uuid.uuid4().hex
            path = os.path.join(self._tmp, self._id + ".pack")
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_CLOEXEC, 0o444)
            self._buffer += PACK_MAGIC
            self._size = len(PACK_MAGIC)
        self._buffer += _RECORD.pack(b"R", bytes.fromhex(sha256), len(data))
        self._entries.append((sha256, self._size + _RECORD.size, len(data)))
        self._buffer += data
        self._size += _RECORD.size + len(data)
        if len(self._buffer) >= 4 << 20:
            self._flush()
        if self._size >= PACK_TARGET:
            self.seal()

    def _flush(self) -> None:
        _write_all(self._fd, self._buffer)
        self._buffer.clear()

    def seal(self) -> None:
        """Finish the current pack: write out its data and its index (not yet synced)."""
        if self._fd < 0:
            return
        try:
            self._flush()
        finally:
            os.close(self._fd)
            self._fd = -1
        index = os.path.join(self._tmp, self._id + ".idx")
        _write_new(index, encode_index(self._size, self._entries))
        self.done.append((self._id, os.path.join(self._tmp, self._id + ".pack"), index))
        self._entries = []

    def adopt(self, spool: PackSpool, entries: list[tuple[str, int, int]]) -> None:
        """Take a whole spool as one more sealed pack of this batch, indexed by ``entries``.

        Records the batch did not use (a member staged as a file after all, content replaced
        by a repair, a blob stored before) stay in the pack, indexed and listed as deleted, so
        that no reader finds them and ``repack`` frees them as any deleted blob. A record
        repeating a used blob's digest is left out of the index (same bytes, never read)."""
        spool.hand_over()
        used = {sha256 for sha256, _, _ in entries}
        unused = {r[0]: r for r in spool.records if r[0] not in used}
        if unused:
            self.dead[spool.id] = os.path.join(self._tmp, spool.id + ".dead")
            dead = b"".join(bytes.fromhex(sha256) for sha256 in unused)
            _write_new(self.dead[spool.id], dead, 0o644)  # ``PackSet.delete`` appends to it
        index = os.path.join(self._tmp, spool.id + ".idx")
        _write_new(index, encode_index(spool.size, [*entries, *unused.values()]))
        self.done.append((spool.id, spool.path, index))

    def paths(self) -> list[str]:
        dead = list(self.dead.values())
        return [*(p for _, pack, index in self.done for p in (pack, index)), *dead]

    def discard(self) -> None:
        """Remove what was written (the batch failed)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
            self.done.append((self._id, os.path.join(self._tmp, self._id + ".pack"), ""))
        for path in self.paths():
            if path:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
        self.done, self.dead = [], {}


class PackSpool:
    """A pack written while an upload is unpacked: small blobs appended as they are staged,
    read back by offset, and adopted whole by ``ingest`` (indexed and renamed, not copied).

    The upload's staging would otherwise write its small members to a spool file of its own,
    which ``ingest`` then read back, copied into a pack and deleted: each byte written twice
    and a large file unlinked per upload. Records are written at once (``pwrite``), so a read
    never waits for a buffer; nothing is visible to readers before ``ingest`` publishes it.
    """

    def __init__(self, tmp: str) -> None:
        self.tmp = tmp
        self.id = uuid.uuid4().hex
        self.path = os.path.join(tmp, self.id + ".pack")
        self._fd = -1
        self.size = 0
        self.records: list[tuple[str, int, int]] = []  # (sha256, data offset, size) appended
        self._written_back = 0  # bytes handed to ``start_writeback``

    def append(self, sha256: str, data: bytes | memoryview) -> int:
        """Write one record; the offset of its data."""
        if self._fd < 0:
            flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | _O_CLOEXEC
            self._fd = os.open(self.path, flags, 0o444)
            self._pwrite(PACK_MAGIC)
        self._pwrite(_RECORD.pack(b"R", bytes.fromhex(sha256), len(data)) + bytes(data))
        self.records.append((sha256, self.size - len(data), len(data)))
        if self.size - self._written_back >= WRITEBACK_STEP:
            start_writeback(self._fd, self._written_back, self.size - self._written_back)
            self._written_back = self.size
        return self.size - len(data)

    def _pwrite(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.pwrite(self._fd, view, self.size)
            view = view[written:]
            self.size += written

    def read(self, offset: int, size: int) -> bytes:
        if self._fd < 0:
            raise ValueError("the spool was ingested or discarded")
        return os.pread(self._fd, size, offset)

    def close(self) -> None:
        """The staging is done (the file stays open: ``ingest`` may still append to it)."""

    def hand_over(self) -> None:
        """Close the file for good, leaving it where it is (a writer now owns it)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def discard(self) -> None:
        """Remove the file unless ``ingest`` has taken it (an upload that failed, or whose
        blobs were copied into another pack)."""
        if self._fd >= 0:
            self.hand_over()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)


class PackSet:
    """The packs of one store folder, indexed in memory and refreshed from disk on a miss."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        os.makedirs(folder, exist_ok=True)
        self._lock = threading.Lock()
        self._packs: dict[str, _Pack] = {}
        self._where: dict[str, PackLocation] = {}
        self._loaded = False

    # -- index -------------------------------------------------------------------------------

    def _path(self, pack: str, ext: str) -> str:
        return os.path.join(self.folder, pack + ext)

    def refresh(self) -> None:
        """Load new packs, forget removed ones and re-read every pack's deletions."""
        with self._lock:
            names = set()
            with contextlib.suppress(FileNotFoundError):
                names = {n[:-5] for n in os.listdir(self.folder) if n.endswith(".pack")}
            changed = False
            for gone in set(self._packs) - names:
                del self._packs[gone]
                changed = True
            for name in sorted(names - set(self._packs)):
                loaded = self._load(name)
                if loaded is not None:
                    self._packs[name] = loaded
                    changed = True
            for name, pack in self._packs.items():
                changed |= self._read_dead(name, pack)
            if changed or not self._loaded:
                self._reindex()
            self._loaded = True

    def _reindex(self) -> None:
        where: dict[str, PackLocation] = {}
        for pack in self._packs.values():
            for sha256, loc in pack.entries.items():
                if sha256 not in pack.dead:
                    where[sha256] = loc
        self._where = where

    def _load(self, name: str) -> _Pack | None:
        pack_path = self._path(name, ".pack")
        try:
            pack_size = os.stat(pack_path).st_size
        except FileNotFoundError:
            return None
        raw = _read_file(self._path(name, ".idx"))
        decoded = decode_index(raw) if raw is not None else None
        if decoded is None or decoded[0] > pack_size:
            # No index (a crash before it was written), a damaged one, or a truncated pack.
            logger.warning("rebuilding the index of pack %s from its records", name)
            good, entries = scan_pack(pack_path)
            self._write_index(name, good, entries)
        else:
            entries = decoded[1]
        pack = _Pack({s: PackLocation(name, o, n) for s, o, n in entries}, set(), 0)
        self._read_dead(name, pack)
        return pack

    def _write_index(self, name: str, pack_size: int, entries: list[tuple[str, int, int]]) -> None:
        final = self._path(name, ".idx")
        temp = f"{final}.{uuid.uuid4().hex}.tmp"
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_CLOEXEC, 0o444)
            try:
                _write_all(fd, encode_index(pack_size, entries))
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temp, final)
        except OSError as exc:  # a read-only store still serves the rebuilt index from memory
            logger.warning("could not write the rebuilt index of pack %s: %s", name, exc)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)

    def _read_dead(self, name: str, pack: _Pack) -> bool:
        """Read deletions appended since last time; whether there were any."""
        raw = _read_file(self._path(name, ".dead")) or b""
        usable = len(raw) - len(raw) % 32
        if usable <= pack.dead_bytes:
            return False
        for start in range(pack.dead_bytes, usable, 32):
            pack.dead.add(raw[start : start + 32].hex())
        pack.dead_bytes = usable
        return True

    def find(self, sha256: str, *, fresh: bool = False, retry: bool = True) -> PackLocation | None:
        """Where the blob is packed, or None; ``fresh`` re-reads the disk first, ``retry``
        re-reads it on a miss (a batch that has just refreshed needs neither)."""
        if fresh or not self._loaded:
            self.refresh()
        loc = self._where.get(sha256)
        if loc is None and retry and not fresh:
            self.refresh()  # another process may have written a pack since
            loc = self._where.get(sha256)
        return loc

    def hashes(self) -> set[str]:
        self.refresh()
        return set(self._where)

    # -- publishing, reading, deleting --------------------------------------------------------

    def publish(self, writer: PackWriter) -> list[str]:
        """Move sealed, synced packs into the folder (index after pack); returns their ids."""
        for name, pack, index in writer.done:
            if name in writer.dead:  # first: a reader finding the pack never sees those live
                os.replace(writer.dead[name], self._path(name, ".dead"))
            os.replace(pack, self._path(name, ".pack"))
            os.replace(index, self._path(name, ".idx"))
        ids = [name for name, _, _ in writer.done]
        writer.done, writer.dead = [], {}
        return ids

    def open_range(self, loc: PackLocation) -> _RangeReader:
        fd = os.open(self._path(loc.pack, ".pack"), os.O_RDONLY | _O_CLOEXEC)
        return _RangeReader(fd, loc.offset, loc.size)

    def index_mtime(self, loc: PackLocation) -> float:
        return os.stat(self._path(loc.pack, ".idx")).st_mtime

    def touch(self, loc: PackLocation) -> bool:
        """Mark the pack as just used (a dedupe put), for gc's grace period."""
        try:
            os.utime(self._path(loc.pack, ".idx"))
        except FileNotFoundError:
            return False
        return True

    def delete(self, sha256: str) -> None:
        loc = self.find(sha256, fresh=True)
        if loc is None:
            return
        fd = os.open(
            self._path(loc.pack, ".dead"),
            os.O_WRONLY | os.O_APPEND | os.O_CREAT | _O_CLOEXEC,
            0o644,
        )
        try:
            _write_all(fd, bytes.fromhex(sha256))
            os.fsync(fd)
        finally:
            os.close(fd)
        with self._lock:
            self._where.pop(sha256, None)
            pack = self._packs.get(loc.pack)
            if pack is not None:
                pack.dead.add(sha256)

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the folder's repack lock (one repack at a time, across processes)."""
        fd = os.open(os.path.join(self.folder, ".lock"), os.O_RDWR | os.O_CREAT | _O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def dead_packs(self) -> list[tuple[str, list[tuple[str, PackLocation]]]]:
        """Packs holding deleted blobs, each with its live blobs."""
        self.refresh()
        with self._lock:
            return [
                (name, [(s, loc) for s, loc in pack.entries.items() if s not in pack.dead])
                for name, pack in sorted(self._packs.items())
                if pack.dead & pack.entries.keys()
            ]

    def remove(self, name: str) -> None:
        """Drop a pack whose live blobs are stored elsewhere now (index first: then no reader
        finds it, and a leftover pack without index would be rebuilt, not lost)."""
        for ext in (".idx", ".pack", ".dead"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._path(name, ext))
        with self._lock:
            self._packs.pop(name, None)
            self._reindex()


class _RangeReader:
    """A raw reader of ``size`` bytes at ``offset`` of a pack, then one byte more if present
    (so the verifying reader sees a blob that was cut short, never one that "grew")."""

    def __init__(self, fd: int, offset: int, size: int) -> None:
        self._fd = fd
        self._pos = offset
        self._end = offset + size

    def readinto(self, buffer: memoryview) -> int:
        want = min(len(buffer), self._end - self._pos)
        if want <= 0:
            return 0
        data = os.pread(self._fd, want, self._pos)
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def read(self, n: int) -> bytes:
        # Only asked for the byte after the end: a packed blob never has one.
        want = min(n, self._end - self._pos)
        if want <= 0:
            return b""
        data = os.pread(self._fd, want, self._pos)
        self._pos += len(data)
        return data

    def __enter__(self) -> _RangeReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
