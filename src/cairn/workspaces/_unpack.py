"""Process one upload into a staging folder: unpack, sanitize, type and check every file.

``process_upload`` is pure and database-free. It streams: members are copied in chunks while
they are hashed and counted, nothing is held whole in memory, and sizes declared in headers are
never trusted. Every limit is checked on bytes actually produced, so an archive bomb stops after
at most about ``Limits.ratio_grace_bytes`` (or the first limit crossed). Nothing is written
outside ``staging``: names are sanitized component by component, parents are created by us and
verified, files are opened with ``O_NOFOLLOW | O_EXCL``, and links and devices are never made.
A thread decompresses a few steps ahead (``_Prefetch``); everything else, the limit checks
included, happens in the calling thread.

The caller stores every ``StagedFile`` in the blob store and merges them into the workspace in
one transaction, or discards everything when ``ProcessedUpload.fatal`` (issue 3: "An upload that
fails fatally changes nothing already in the workspace").
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import hashlib
import io
import lzma
import os
import queue
import re
import stat
import struct
import tarfile
import threading
import zipfile
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, Protocol, Self

from cairn.workspaces import _checks as ck
from cairn.workspaces import _filetypes as ft
from cairn.workspaces._checks import Finding, infer_source_format
from cairn.workspaces._limits import ARCHIVE_LIMITS, DEFAULT_LIMITS, Limits, limits_for

__all__ = [
    "ARCHIVE_LIMITS",
    "DEFAULT_LIMITS",
    "Finding",
    "Limits",
    "ProcessedUpload",
    "StagedFile",
    "infer_source_format",
    "limits_for",
    "process_upload",
]

# Read bzip2, xz and zip input in 64 KiB steps: small enough that "compressed bytes consumed"
# (read-ahead included) stays close to the truth, so a bomb is stopped right after the ratio grace.
CHUNK = 64 * 1024
# Decompressed data (and plain files) is pulled in steps of up to 1 MiB; the limits are checked
# on each step, so they are crossed by at most a few steps.
BUFFER = 1024 * 1024
# A thread decompresses up to this many steps ahead of the main thread (see _Prefetch).
PREFETCH_SLOTS = 3
# Compressed bytes read at once for gzip; only what zlib has used counts as consumed.
GUNZIP_INPUT = 1024 * 1024
# GNU long names and pax headers are read whole by tarfile; real ones are a few hundred bytes.
MAX_TAR_META_BYTES = 1024 * 1024
# zipfile reads the whole central directory into memory; 64 MiB is ~500,000 ordinary entries.
MAX_ZIP_DIRECTORY_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class StagedFile:
    """One sanitized file in the staging folder, at ``staging / public_path``."""

    public_path: str
    local_path: Path
    size: int
    file_type: str
    sha256: str


@dataclass
class ProcessedUpload:
    """What ``process_upload`` produced: the staged files and every finding, in order."""

    files: list[StagedFile]
    findings: list[Finding]
    removed: list[str]  # public paths removed by sanitizing (junk, hidden, empty, links ...)
    source_format: str  # tex, pdf, ps, html, unknown or invalid (of this upload's files alone)
    compressed_size: int  # size of the uploaded file
    total_size: int  # sum of the staged files' sizes

    @property
    def fatal(self) -> bool:
        """Whether any finding is fatal: the caller must then discard the whole upload."""
        return any(f.level == "fatal" for f in self.findings)


def process_upload(
    source: Path,
    filename: str,
    *,
    staging: Path,
    limits: Limits,
    ancillary: bool = False,
    existing_total: int = 0,
    existing_count: int = 0,
) -> ProcessedUpload:
    """Unpack and check one uploaded file into ``staging`` (an empty folder).

    Args:
        source: the uploaded bytes, already saved to a file.
        filename: the name the client gave; only its last component is used.
        staging: an empty folder that receives the sanitized tree (created if missing).
        limits: the limits of the target archive (see ``limits_for``).
        ancillary: put every file under ``anc/``.
        existing_total: bytes the workspace already holds (counts toward ``max_total_bytes``).
        existing_count: files the workspace already holds (counts toward ``max_files``).

    Returns:
        The staged files (sorted by public path) and findings. Bad input never raises: it shows
        as a ``fatal`` finding. Only server trouble (disk full, staging not empty) raises.
    """
    staging.mkdir(parents=True, exist_ok=True)
    staging = staging.resolve()
    if any(staging.iterdir()):
        raise ValueError(f"staging folder {staging} is not empty")
    upload = _Upload(
        staging=staging,
        limits=limits,
        ancillary=ancillary,
        existing_total=existing_total,
        existing_count=existing_count,
        source_size=source.stat().st_size,
    )
    try:
        upload.run(source, filename)
    except _Abort as abort:
        upload.findings.append(abort.finding)
    return upload.result()


# --- internals ---------------------------------------------------------------------------------
class _Abort(Exception):
    """A limit was crossed: stop processing the whole upload."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.message)
        self.finding = finding


class _Corrupt(Exception):
    """Reading an archive failed (truncated, bad checksum, not what it claims ...)."""


class _BadHeader(Exception):
    """A tar header in the middle of an archive is invalid, or an extended header is huge."""


# Errors that reading hostile or damaged archives may raise; they become a fatal finding.
_READ_ERRORS: tuple[type[BaseException], ...] = (
    tarfile.TarError,
    zipfile.BadZipFile,
    zlib.error,
    lzma.LZMAError,
    EOFError,
    OSError,
    ValueError,
    NotImplementedError,
    RuntimeError,
    UnicodeError,
    struct.error,
    _BadHeader,
)


class _ReadErrorMap:
    """Turns what a reader raises on damaged input into ``_Corrupt``, chained to the cause.

    A class rather than ``contextlib.contextmanager``: it wraps every read of every member, and
    entering a generator-based manager costs ten times more.
    """

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        if isinstance(exc, _READ_ERRORS):
            raise _Corrupt(str(exc) or type(exc).__name__) from exc


_MAP_READ_ERRORS = _ReadErrorMap()


def _map_read_errors() -> _ReadErrorMap:
    """``with _map_read_errors(): ...``: reader errors inside become ``_Corrupt``.

    Our own ``_Abort`` and ``_Corrupt`` pass through unchanged (they are not reader errors).
    """
    return _MAP_READ_ERRORS


class _Reader(Protocol):
    # A memoryview result is to be used before the next call (see ``_Decompressed.chunk``).
    def read(self, size: int, /) -> bytes | memoryview | None: ...


class _CountingRaw(io.RawIOBase):
    """A raw file that counts the bytes read through it (compressed bytes consumed)."""

    def __init__(self, f: io.FileIO) -> None:
        super().__init__()
        self._f = f
        self.count = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._f.seek(offset, whence)

    def tell(self) -> int:
        return self._f.tell()

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = self._f.readinto(buffer)
        self.count += n
        return n


@dataclass
class _Meter:
    """Bytes one archive consumed (compressed) and produced, for the ratio limit."""

    label: str
    consumed: Callable[[], int]
    step: int = CHUNK  # read size for member data: bigger steps read further ahead of checks
    expanded: int = 0  # decompressed bytes pulled by the tar reader, written or skipped
    produced: int = 0  # bytes written to staging from this archive


_EMPTY = memoryview(b"")


class _Gunzip:
    """gzip data decompressed with zlib directly: what ``gzip.GzipFile`` reads, with less Python.

    zlib parses each member's header and checks its CRC and size; members may follow each other,
    with zero bytes between them (as ``GzipFile`` allows). ``consumed`` counts the compressed
    bytes zlib has actually used, read-ahead excluded, for the ratio limit. (Read from the main
    thread while ``_Prefetch`` runs ahead, it is at most ``PREFETCH_SLOTS`` steps early: for a
    bomb, a few KiB of input.)
    """

    def __init__(self, raw: io.RawIOBase) -> None:
        self._raw = raw
        self._zlib = zlib.decompressobj(wbits=31)
        self._read = 0  # compressed bytes read from the file
        self.consumed = 0  # ... and used by zlib (written by one thread, read by another)

    def read(self, size: int, /) -> bytes:
        """At most ``size`` bytes (one zlib call's output); empty only at the end."""
        while True:
            z = self._zlib
            if z.eof:  # a member ended, its CRC and size checked: skip zero padding, then next
                data = z.unused_data.lstrip(b"\0")
                while not data:
                    data = self._input()
                    if not data:
                        self.consumed = self._read
                        return b""
                    data = data.lstrip(b"\0")
                self._zlib = z = zlib.decompressobj(wbits=31)
            else:
                data = z.unconsumed_tail or self._input()
                if not data:
                    raise EOFError(
                        "Compressed file ended before the end-of-stream marker was reached"
                    )
            try:
                out = z.decompress(data, size)
            except zlib.error as exc:
                raise _gzip_error(exc) from exc
            self.consumed = self._read - len(z.unconsumed_tail) - len(z.unused_data)
            if out:
                return out

    def _input(self) -> bytes:
        data = self._raw.read(GUNZIP_INPUT) or b""
        self._read += len(data)
        return data


# zlib's wording for what gzip.GzipFile reports in its own words (messages show the cause).
_GZIP_ERRORS = {
    "incorrect data check": "CRC check failed",
    "incorrect length check": "Incorrect length of data produced",
    "incorrect header check": "Not a gzipped file",
}


def _gzip_error(exc: zlib.error) -> Exception:
    for zlib_words, gzip_words in _GZIP_ERRORS.items():
        if zlib_words in str(exc):
            return gzip.BadGzipFile(gzip_words)
    return exc


class _Prefetch:
    """Calls ``read(BUFFER)`` ahead in a thread, keeping at most ``slots`` results unused.

    Decompression (zlib, bz2, lzma release the GIL) then overlaps with writing and hashing in
    the main thread, with memory and the read-ahead still bounded. Only the thread calls
    ``read`` until ``close``, which stops and joins it (call it before closing the source).
    """

    def __init__(self, read: Callable[[int], bytes], slots: int = PREFETCH_SLOTS) -> None:
        self._read = read
        self._slots = threading.Semaphore(slots)
        self._ready: queue.SimpleQueue[bytes | BaseException] = queue.SimpleQueue()
        self._stopped = False
        self._last: bytes | BaseException | None = None  # set once the thread has ended
        self._thread = threading.Thread(target=self._run, name="cairn-unpack", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            self._slots.acquire()  # waits while every slot holds an unused result
            if self._stopped:
                return
            try:
                data = self._read(BUFFER)
            except BaseException as exc:  # handed to the reader, which decides
                self._ready.put(exc)
                return
            self._ready.put(data)
            if not data:
                return

    def next(self) -> bytes:
        """The next result (empty at the end); raises what the thread raised. Frees no slot."""
        item = self._last
        if item is None:
            item = self._ready.get()
            if isinstance(item, BaseException) or not item:
                self._last = item
        if isinstance(item, BaseException):
            raise item
        return item

    def release(self) -> None:
        """A result from ``next`` is no longer used: the thread may read one more."""
        self._slots.release()

    def close(self) -> None:
        self._stopped = True
        self._slots.release()
        self._thread.join()


class _Decompressed:
    """The decompressed bytes of one archive or compressed file, read forward.

    Every byte pulled from the decompressor is counted and the limits checked at once (not only
    on writes), so members that are skipped (junk, links) are bounded too: their data is still
    decompressed. Member data is handed out as views of what was decompressed (``chunk``),
    never copied. ``tarfile`` reads headers through ``read``, ``tell`` and ``seek``, which only
    goes forward (skipping is reading): it is opened in plain ``"r"`` mode on this object, not
    in stream mode.
    """

    def __init__(self, src: _Prefetch, meter: _Meter, upload: _Upload) -> None:
        self._src = src
        self._meter = meter
        self._upload = upload
        self._view = _EMPTY  # the current piece, from self._src
        self._start = 0  # its bytes not handed out yet are self._view[self._start : self._end]
        self._end = 0
        self._pos = 0  # stream position of the next byte handed out

    def _fill(self) -> bool:
        if self._view is not _EMPTY:
            self._src.release()
            self._view = _EMPTY
        with _map_read_errors():
            data = self._src.next()
        n = len(data)
        self._start, self._end = 0, n
        if not n:
            return False
        self._view = memoryview(data)
        self._meter.expanded += n
        self._upload.expanded_total += n
        self._upload.check_stream(self._meter)
        return True

    def chunk(self, limit: int) -> memoryview:
        """The next 1 to ``limit`` bytes (``limit`` > 0; none at the end of the data).

        Use the view before the next call, and do not keep it: the piece it shows is then given
        back to the read-ahead, which only counts pieces, so kept views would hold memory.
        """
        start = self._start
        if start == self._end:
            if not self._fill():
                return _EMPTY
            start = 0
        end = min(self._end, start + limit)
        self._start = end
        self._pos += end - start
        return self._view[start:end]

    def drain(self) -> None:
        """Read to the end, so the decompressor verifies its checksum (gzip CRC, xz check)."""
        while self.chunk(BUFFER):
            pass

    # --- the file interface tarfile uses ---
    def read(self, size: int, /) -> bytes:
        """Exactly ``size`` bytes, fewer only at the end of the data."""
        if size < 0:
            raise ValueError("reading a whole tar stream is not supported")
        if size == 0:
            return b""
        piece = self.chunk(size)
        if len(piece) == size or not piece:
            return piece.tobytes()
        parts = [piece.tobytes()]
        got = len(piece)
        while got < size and (piece := self.chunk(size - got)):
            parts.append(piece.tobytes())
            got += len(piece)
        return b"".join(parts)

    def tell(self) -> int:
        return self._pos

    def seekable(self) -> bool:
        return True

    def seek(self, pos: int, whence: int = 0, /) -> int:
        if whence != io.SEEK_SET or pos < self._pos:
            raise tarfile.StreamError("seeking backwards is not allowed")
        while self._pos < pos and self.chunk(pos - self._pos):
            pass
        return self._pos

    def write(self, data: bytes, /) -> int:
        raise io.UnsupportedOperation("write")

    def close(self) -> None:
        pass


class _Member:
    """One member's data from a ``_Decompressed``: ``size`` bytes, or all of it for ``None``."""

    def __init__(self, source: _Decompressed, size: int | None) -> None:
        self._source = source
        self._left = size

    def read(self, size: int, /) -> memoryview:
        left = self._left
        if left is None:
            return self._source.chunk(size)
        if left <= 0:
            return _EMPTY
        piece = self._source.chunk(min(size, left))
        if not piece:
            raise _Corrupt("unexpected end of data")
        self._left = left - len(piece)
        return piece


_TAR_META_TYPES = (
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
)


# The number fields of a tar header besides the checksum: mode, uid, gid, size, mtime, devmajor
# and devminor.
_TAR_NUMBERS = ((100, 108), (108, 116), (116, 124), (124, 136), (136, 148), (329, 337), (337, 345))
_HIGH_BYTES = bytes(range(128, 256))


def _octal(field: bytes | bytearray) -> int:
    """``tarfile.nti`` of a field in plain octal; ``ValueError`` for anything else (base-256)."""
    return int(field.split(b"\0", 1)[0].strip() or b"0", 8)


def _text(field: bytes | bytearray, encoding: str, errors: str) -> str:
    """``tarfile.nts``: the field up to its first NUL, decoded."""
    return field.split(b"\0", 1)[0].decode(encoding, errors)


class _SafeTarInfo(tarfile.TarInfo):
    """TarInfo that refuses huge extended headers and reports mid-archive header damage.

    ``tarfile`` reads a GNU long name or pax header whole, trusting its declared size, and it
    ends an archive silently at an invalid header. Both would hide hostile input.
    """

    @classmethod
    def frombuf(cls, buf: bytes | bytearray, encoding: str, errors: str) -> Self:
        info = cls.ordinary_frombuf(buf, encoding, errors)
        if info is None:
            info = super().frombuf(buf, encoding, errors)
        if info.type in _TAR_META_TYPES and info.size > MAX_TAR_META_BYTES:
            raise _BadHeader(f"extended header of {info.size} bytes")
        return info

    @classmethod
    def ordinary_frombuf(cls, buf: bytes | bytearray, encoding: str, errors: str) -> Self | None:
        """What ``tarfile.TarInfo.frombuf`` makes of an ordinary header, in half the time.

        Ordinary: a 512-byte block with a valid checksum and every number in plain octal, not
        an old GNU sparse header. For anything else (an end block, base-256 numbers, damage) it
        returns ``None``, and tarfile decides. A test compares both on many headers.
        """
        if len(buf) != tarfile.BLOCKSIZE or buf[156:157] == tarfile.GNUTYPE_SPARSE:
            return None
        try:
            checksum = _octal(buf[148:156])
            mode, uid, gid, size, mtime, devmajor, devminor = [
                _octal(buf[start:end]) for start, end in _TAR_NUMBERS
            ]
        except ValueError:
            return None
        # tarfile accepts the unsigned sum of the bytes or the signed one (Sun and NeXT tars),
        # the checksum field counting as spaces.
        unsigned = 256 + sum(buf) - sum(buf[148:156])
        if checksum != unsigned:
            field = buf[148:156]
            high = len(buf) - len(buf.translate(None, _HIGH_BYTES))
            high -= len(field) - len(field.translate(None, _HIGH_BYTES))
            if checksum != unsigned - 256 * high:
                return None
        info = cls()
        info.name = _text(buf[0:100], encoding, errors)
        info.mode, info.uid, info.gid, info.size, info.mtime = mode, uid, gid, size, mtime
        info.chksum = checksum
        info.type = bytes(buf[156:157])
        info.linkname = _text(buf[157:257], encoding, errors)
        info.uname = _text(buf[265:297], encoding, errors)
        info.gname = _text(buf[297:329], encoding, errors)
        info.devmajor, info.devminor = devmajor, devminor
        prefix = _text(buf[345:500], encoding, errors)
        if info.type == tarfile.AREGTYPE and info.name.endswith("/"):
            info.type = tarfile.DIRTYPE  # the old V7 way to store a directory
        if info.isdir():
            info.name = info.name.rstrip("/")
        if prefix and info.type not in tarfile.GNU_TYPES:
            info.name = prefix + "/" + info.name  # a ustar long name
        return info

    @classmethod
    def fromtarfile(cls, tarfile_: tarfile.TarFile) -> Self:
        try:
            return super().fromtarfile(tarfile_)
        except tarfile.HeaderError as exc:
            # A zero block or the end of data is the normal end of an archive.
            if type(exc).__name__ in ("EOFHeaderError", "EmptyHeaderError"):
                raise
            raise _BadHeader(f"invalid tar header ({exc})") from exc


MemberKind = Literal["file", "dir", "symlink", "hardlink", "chardev", "blockdev", "fifo", "other"]
_KIND_LABEL = {
    "symlink": "Symbolic links",
    "hardlink": "Hard links",
    "chardev": "Character devices",
    "blockdev": "Block devices",
    "fifo": "FIFO devices",
    "other": "Special files",
}
_CLAIMS = (
    (".tar.gz", "tar"),
    (".tgz", "tar"),
    (".tar.bz2", "tar"),
    (".tbz2", "tar"),
    (".tbz", "tar"),
    (".tar.xz", "tar"),
    (".txz", "tar"),
    (".tar", "tar"),
    (".zip", "zip"),
    (".gz", "gzip"),
    (".gzip", "gzip"),
    (".bz2", "bzip2"),
    (".xz", "xz"),
)
_COMPRESSION_SUFFIX = re.compile(r"(\.gz|\.gzip|-gz|\.bz2|\.xz)$", re.IGNORECASE)


def _claimed_kind(name: str) -> str | None:
    lower = name.lower()
    for suffix, kind in _CLAIMS:
        if lower.endswith(suffix):
            return kind
    return None


def _human(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:g} {unit}" if unit == "bytes" else f"{n:.3g} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


@dataclass
class _Entry:
    local_path: Path
    size: int
    sha256: str
    file_type: str
    origin: tuple[str, ...]  # original member path, to tell duplicates from name clashes


@dataclass
class _Upload:
    staging: Path
    limits: Limits
    ancillary: bool
    existing_total: int
    existing_count: int
    source_size: int
    findings: list[Finding] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    entries: dict[str, _Entry] = field(default_factory=dict)
    dirs: set[str] = field(default_factory=set)
    queue: deque[tuple[str, _Entry, ft.ArchiveKind, int]] = field(default_factory=deque)
    current_total: int = 0
    produced_total: int = 0
    expanded_total: int = 0
    members_seen: int = 0
    was_archive: bool = False
    _reported: set[tuple[str, str]] = field(default_factory=set)
    _temp_counter: int = 0

    # --- findings ---
    def add(self, level: ck.Level, path: str | None, message: str) -> None:
        self.findings.append(Finding(level, path, message))

    def once(self, key: tuple[str, str], level: ck.Level, path: str | None, message: str) -> bool:
        if key in self._reported:
            return False
        self._reported.add(key)
        self.add(level, path, message)
        return True

    def fatal_limit(self, message: str, path: str | None = None) -> _Abort:
        return _Abort(Finding("fatal", path, message))

    # --- limits ---
    def _check_ratio(self, meter: _Meter) -> None:
        lim = self.limits
        out = max(meter.expanded, meter.produced)
        if out > lim.ratio_grace_bytes and out > lim.max_ratio * max(meter.consumed(), 1):
            raise self._ratio_abort(meter.label)
        overall = max(self.produced_total, self.expanded_total)
        if overall > lim.ratio_grace_bytes and overall > lim.max_ratio * max(self.source_size, 1):
            raise self._ratio_abort(meter.label)

    def _ratio_abort(self, label: str) -> _Abort:
        return self.fatal_limit(
            f"Archive '{label}' expands more than {self.limits.max_ratio:g} times its "
            "compressed size (possible archive bomb); unpacking stopped."
        )

    def check_stream(self, meter: _Meter) -> None:
        self._check_ratio(meter)
        # Skipped members cost decompression too: bound the stream by the size limit.
        slack = max(64 * 1024 * 1024, self.limits.max_total_bytes // 10)
        if meter.expanded > self.limits.max_total_bytes + slack:
            raise self._total_abort()

    def _total_abort(self) -> _Abort:
        return self.fatal_limit(
            f"Upload exceeds the limit of {_human(self.limits.max_total_bytes)} in total "
            f"for archive '{self.limits.name}'."
        )

    def _count_abort(self) -> _Abort:
        return self.fatal_limit(
            f"Upload exceeds the limit of {self.limits.max_files} files "
            f"for archive '{self.limits.name}'."
        )

    def _seen_member(self) -> None:
        # Directories, links and junk cost work too; bound them with the file limit.
        self.members_seen += 1
        if self.members_seen > 4 * self.limits.max_files + 1000:
            raise self._count_abort()

    # --- top level ---
    def run(self, source: Path, filename: str) -> None:
        name, notes = ck.clean_upload_filename(filename)
        self.findings.extend(notes)
        base: tuple[str, ...] = ("anc",) if self.ancillary else ()
        shown = ck.display_name(name)
        with source.open("rb") as f:
            head = f.read(ft.HEAD_BYTES)
        kind = ft.archive_kind(head)
        claimed = _claimed_kind(name)
        try:
            if kind == "zip" and claimed != "zip" and ft.zip_subtype(source, head) != ft.ZIP:
                kind = None  # DOCX, ODT, JAR ...: a document, not an archive to unpack
            if kind is not None and self.source_size > 0:
                inner = ft.compressed_tar(head, kind) if kind in ("gzip", "bzip2", "xz") else None
                if kind in ("gzip", "bzip2", "xz") and inner is None:
                    raise _Corrupt(f"cannot decompress {kind} data")
                if kind in ("tar", "zip") or inner:
                    actual = "tar" if kind != "zip" else "zip"
                    if claimed is not None and claimed != actual and claimed != kind:
                        self.add(
                            "warn",
                            None,
                            f"File '{shown}' is a {actual} archive, not what its name says; "
                            f"unpacked as {actual}.",
                        )
                    self.was_archive = True
                    self._unpack(source, kind, shown, base, depth=1)
                    self._drain_queue()
                    return
                if claimed == "tar":
                    self.add("fatal", None, f"Unable to read tar '{shown}': not a tar file")
                    return
                if claimed is not None or _COMPRESSION_SUFFIX.search(name):
                    self._decompress_single(source, kind, name, base, shown)
                    self._drain_queue()
                    return
            elif claimed is not None and self.source_size > 0:
                self.add("fatal", None, f"Unable to read {claimed} '{shown}': not a {claimed} file")
                return
            self._single_file(source, name, base, head)
        except _Corrupt as exc:
            self._corrupt(shown, None, exc)

    def _corrupt(self, shown: str, path: str | None, exc: BaseException) -> None:
        detail = ck.display_name(str(exc) or type(exc).__name__)
        self.add(
            "fatal",
            path,
            f"There were problems unpacking '{shown}'. Please try again and confirm your "
            f"files. Error: {detail}",
        )

    def _single_file(self, source: Path, name: str, base: tuple[str, ...], head: bytes) -> None:
        file_type = ft.detect_type(name, head, self.source_size, source)
        if file_type in (ft.RAR, ft.SEVENZIP):
            label = "rar" if file_type == ft.RAR else "7z"
            self.add(
                "fatal",
                None,
                f"We do not support '{label}' files. Please use 'zip' or 'tar' instead.",
            )
            return
        if file_type == ft.COMPRESSED:
            self.add(
                "warn",
                None,
                f"File '{ck.display_name(name)}' is compressed with Unix compress (.Z), which "
                "is not unpacked; it was kept as it is.",
            )
        with source.open("rb", buffering=0) as raw:
            meter = _Meter(name, lambda: meter.produced, step=BUFFER)
            self._add_member(name, "file", lambda: raw, base, meter, depth=0)

    def _decompress_single(
        self, source: Path, kind: ft.ArchiveKind, name: str, base: tuple[str, ...], shown: str
    ) -> None:
        inner = _COMPRESSION_SUFFIX.sub("", name) or name
        with self._open_decompressed(source, kind, shown) as (stream, meter):
            self._add_member(inner, "file", lambda: _Member(stream, None), base, meter, depth=1)

    @contextlib.contextmanager
    def _open_decompressed(
        self, path: Path, kind: ft.ArchiveKind, label: str
    ) -> Iterator[tuple[_Decompressed, _Meter]]:
        with contextlib.ExitStack() as stack:
            raw_file = stack.enter_context(path.open("rb", buffering=0))
            src: _Gunzip | io.BufferedIOBase
            if kind == "gzip":
                gunzip = _Gunzip(raw_file)
                meter = _Meter(label, lambda: gunzip.consumed, step=BUFFER)
                src = gunzip
            else:
                counting = _CountingRaw(raw_file)
                buffered = io.BufferedReader(counting, CHUNK)
                meter = _Meter(label, lambda: counting.count, step=BUFFER)
                if kind == "bzip2":
                    src = stack.enter_context(bz2.BZ2File(buffered, "rb"))
                elif kind == "xz":
                    src = stack.enter_context(lzma.LZMAFile(buffered, "rb"))
                else:
                    src = buffered
            prefetch = _Prefetch(src.read)
            stack.callback(prefetch.close)  # stops the thread before src is closed
            yield _Decompressed(prefetch, meter, self), meter

    # --- archives ---
    def _unpack(
        self, path: Path, kind: ft.ArchiveKind, label: str, base: tuple[str, ...], depth: int
    ) -> None:
        if kind == "zip":
            self._unpack_zip(path, label, base, depth)
        else:
            self._unpack_tar(path, kind, label, base, depth)

    def _unpack_tar(
        self, path: Path, kind: ft.ArchiveKind, label: str, base: tuple[str, ...], depth: int
    ) -> None:
        with contextlib.ExitStack() as stack:
            stream, meter = stack.enter_context(self._open_decompressed(path, kind, label))
            with _map_read_errors():
                tf = stack.enter_context(
                    tarfile.TarFile(
                        fileobj=stream,
                        mode="r",
                        tarinfo=_SafeTarInfo,
                        encoding="utf-8",
                        errors="surrogateescape",
                    )
                )
            while True:
                with _map_read_errors():
                    info = tf.next()
                if info is None:
                    # tarfile stops at the end-of-archive blocks; read on to the end of the
                    # compressed stream so its checksum (gzip CRC, xz check) is verified.
                    stream.drain()
                    return
                # TarFile keeps every TarInfo otherwise (not in typeshed).
                tf.members.clear()  # type: ignore[attr-defined]
                self._seen_member()
                member = info

                def opener(member: tarfile.TarInfo = member) -> _Reader | None:
                    if member.sparse is None and member.offset_data == stream.tell():
                        return _Member(stream, member.size)  # the data follows its header
                    return tf.extractfile(member)  # sparse: holes are filled by tarfile

                self._add_member(member.name, _tar_kind(member), opener, base, meter, depth)

    def _unpack_zip(self, path: Path, label: str, base: tuple[str, ...], depth: int) -> None:
        directory = ft.read_zip_directory(path)
        if directory is None:
            raise _Corrupt("File is not a zip file")
        if directory.size > MAX_ZIP_DIRECTORY_BYTES:
            raise self._count_abort()
        if directory.entries > 4 * self.limits.max_files + 1000:
            raise self._count_abort()
        with path.open("rb", buffering=0) as raw_file:
            counting = _CountingRaw(raw_file)
            buffered = io.BufferedReader(counting, CHUNK)
            meter = _Meter(label, lambda: counting.count)
            with _map_read_errors():
                zf = zipfile.ZipFile(buffered)
            with zf:
                for info in zf.infolist():
                    self._seen_member()
                    if info.flag_bits & 0x1:
                        self.add(
                            "fatal",
                            None,
                            f"Encrypted files are not supported: "
                            f"'{ck.display_name(info.filename)}' in '{label}'.",
                        )
                        continue
                    kind = _zip_kind(info)
                    if kind == "file" and info.compress_type not in (
                        zipfile.ZIP_STORED,
                        zipfile.ZIP_DEFLATED,
                    ):
                        # zipfile decompresses bzip2/lzma members without an output bound.
                        self.add(
                            "fatal",
                            None,
                            f"Compression method {info.compress_type} of "
                            f"'{ck.display_name(info.filename)}' in '{label}' is not supported; "
                            "please use deflate.",
                        )
                        continue

                    def opener(info: zipfile.ZipInfo = info) -> _Reader | None:
                        return zf.open(info)

                    self._add_member(info.filename, kind, opener, base, meter, depth)

    def _drain_queue(self) -> None:
        """Unpack archives found inside archives, in place, breadth first, up to max_depth."""
        while self.queue:
            public, entry, kind, depth = self.queue.popleft()
            if self.entries.get(public) is not entry:  # replaced by a later member of that name
                continue
            if depth > self.limits.max_depth:
                self.add(
                    "fatal",
                    public,
                    f"Archive '{public}' is nested more than {self.limits.max_depth} levels "
                    "deep; not unpacked.",
                )
                continue
            # Move the archive out of the public namespace (hidden names are never staged), so
            # its members may reuse its name, then unpack next to where it was.
            self._temp_counter += 1
            temp = self.staging / f".cairn-unpack-{self._temp_counter}"
            os.rename(entry.local_path, temp)
            self._forget(public)
            self.add("info", public, f"Unpacked archive '{public}'.")
            try:
                self._unpack(temp, kind, public, tuple(public.split("/")[:-1]), depth)
            except _Corrupt as exc:
                self._corrupt(public, public, exc)
            finally:
                temp.unlink()

    def _forget(self, public: str) -> None:
        entry = self.entries.pop(public)
        self.current_total -= entry.size

    # --- one member ---
    def _add_member(
        self,
        name: str,
        kind: MemberKind,
        opener: Callable[[], _Reader | None],
        base: tuple[str, ...],
        meter: _Meter,
        depth: int,
    ) -> None:
        if kind == "dir":
            return
        member = ck.split_member_path(name, base)
        if isinstance(member, str):
            self.add("fatal", None, ck.msg_refused(ck.display_name(name), member))
            return
        public = member.public
        junk = ck.junk_kind(member)
        if junk is not None:
            what, index = junk
            where = "/".join(member.parts[: index + 1])
            if what == "macosx":
                if self.once(("macosx", meter.label), "warn", where, ck.MSG_MACOSX):
                    self.removed.append(where)
            elif what == "hidden":
                if self.once(("hidden", where), "warn", where, ck.MSG_HIDDEN):
                    self.removed.append(where)
            else:
                self.add("warn", public, ck.msg_not_allowed(ck.display_name(name)))
                self.removed.append(public)
            return
        if kind != "file":
            self.add("warn", public, ck.msg_link(_KIND_LABEL[kind], ck.display_name(name)))
            self.removed.append(public)
            return
        self._report_renames(member, meter.label, name)
        for index, part in enumerate(member.parts[:-1]):
            if part == "processed":
                where = "/".join(member.parts[: index + 1])
                self.once(("processed", where), "warn", where, ck.MSG_PROCESSED)
        resolved = self._resolve_clash(member, name)
        if resolved is None:
            return
        public = resolved
        if not self.ancillary and not public.startswith("anc/") and ck.is_tex_backup(public):
            self.add("warn", public, ck.msg_backup(public))
        if self.existing_count + len(self.entries) + 1 > self.limits.max_files:
            raise self._count_abort()
        with _map_read_errors():
            reader = opener()
        if reader is None:
            return
        entry, head = self._write(public, member.original, reader, meter)
        if entry.size == 0:
            entry.local_path.unlink()
            self.add("warn", public, ck.msg_empty(public))
            self.removed.append(public)
            return
        entry.file_type = ft.detect_type(public, head, entry.size, entry.local_path)
        self.entries[public] = entry
        self.current_total += entry.size
        archive = ft.unpackable_kind(head, entry.file_type)
        if archive is not None:
            self.queue.append((public, entry, archive, depth + 1))

    def _report_renames(self, member: ck.MemberPath, label: str, name: str) -> None:
        if member.backslashes:
            shown = ck.display_name(name)
            self.once(("backslash", label), "warn", None, f"{ck.MSG_BACKSLASH}: '{shown}'.")
        for index, reason in enumerate(member.reasons):
            if reason is None:
                continue
            parents = "/".join(member.parts[:index])
            old = ck.display_name(member.original[index])
            old = f"{parents}/{old}" if parents else old
            new = "/".join(member.parts[: index + 1])
            key = ("rename", "\0".join(member.original[: index + 1]))
            self.once(key, "warn", new, ck.rename_message(old, new, reason))

    def _resolve_clash(self, member: ck.MemberPath, name: str) -> str | None:
        """The public path to write, after handling clashes with files already staged."""
        parts = member.parts
        for index in range(1, len(parts)):
            prefix = "/".join(parts[:index])
            if prefix in self.entries:
                self.add(
                    "fatal",
                    None,
                    ck.msg_refused(
                        ck.display_name(name),
                        f"a file named '{prefix}' is in the way of its folder",
                    ),
                )
                return None
        public = member.public
        if public in self.dirs:
            shown = ck.display_name(name)
            self.add("fatal", None, ck.msg_refused(shown, f"a folder named '{public}' exists"))
            return None
        existing = self.entries.get(public)
        if existing is None:
            return public
        if existing.origin == member.original:
            # The same name twice (tar appends): like tar, the last copy wins.
            self.once(
                ("duplicate", public),
                "warn",
                public,
                f"File '{public}' appears more than once; the last copy was kept.",
            )
            existing.local_path.unlink()
            self._forget(public)
            return public
        # Two different names sanitized to the same one: keep both, renaming this one.
        shown = ck.display_name(name)
        stem, dot, ext = parts[-1].rpartition(".")
        if not stem:
            stem, dot, ext = parts[-1], "", ""
        for number in range(1, len(self.entries) + 2):
            candidate_name = ck.sanitize_name(f"{stem}_{number}{dot}{ext}")
            candidate = "/".join((*parts[:-1], candidate_name))
            if candidate not in self.entries and candidate not in self.dirs:
                self.add(
                    "warn",
                    candidate,
                    f"Renamed '{shown}' to '{candidate}' [the name '{public}' is already used].",
                )
                return candidate
        raise AssertionError("unreachable: a free name always exists")

    def _target(self, public: str) -> str:
        """Create the parents of ``public`` inside staging and return its path, verified."""
        root = str(self.staging)
        parent, _, _ = public.rpartition("/")
        if parent and parent not in self.dirs:  # else known: created and verified before
            parts = public.split("/")
            for index in range(1, len(parts)):
                key = "/".join(parts[:index])
                if key in self.dirs:
                    continue
                folder = os.path.join(root, key)
                with contextlib.suppress(FileExistsError):
                    os.mkdir(folder)
                # We never create links, but verify anyway: nothing may land outside staging.
                if os.path.realpath(folder) != folder or not folder.startswith(root + os.sep):
                    raise self.fatal_limit(
                        ck.msg_refused(public, "it resolves outside the workspace")
                    )
                self.dirs.add(key)
        return os.path.join(root, public)

    def _write(
        self, public: str, origin: tuple[str, ...], reader: _Reader, meter: _Meter
    ) -> tuple[_Entry, bytes]:
        target = self._target(public)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(target, flags, 0o644)
        digest = hashlib.sha256()
        head = b""
        size = 0
        lim = self.limits
        step = meter.step
        try:
            try:
                while True:
                    with _map_read_errors():
                        chunk = reader.read(step)
                    if not chunk:
                        break
                    n = len(chunk)
                    size += n
                    meter.produced += n
                    self.produced_total += n
                    if size > lim.max_file_bytes:
                        raise self.fatal_limit(
                            f"File '{public}' is larger than the limit of "
                            f"{_human(lim.max_file_bytes)} per file for archive '{lim.name}'.",
                            public,
                        )
                    if self.existing_total + self.current_total + size > lim.max_total_bytes:
                        raise self._total_abort()
                    self._check_ratio(meter)
                    digest.update(chunk)
                    if len(head) < ft.HEAD_BYTES:  # a copy: chunks are not to be kept
                        head += chunk[: ft.HEAD_BYTES - len(head)]
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(target)
            raise
        entry = _Entry(Path(target), size, digest.hexdigest(), ft.BINARY, origin)
        return entry, head

    # --- finish ---
    def result(self) -> ProcessedUpload:
        fatal = any(f.level == "fatal" for f in self.findings)
        _prune_empty_dirs(self.staging)
        if not fatal and self.was_archive and not self.ancillary and self.existing_count == 0:
            self._flatten_top_level()
        accepted = self.limits.accepted_types
        if accepted is not None:
            for public, entry in self.entries.items():
                if not public.startswith("anc/") and entry.file_type not in accepted:
                    self.add(
                        "fatal",
                        public,
                        f"File '{public}' has type {entry.file_type}, which archive "
                        f"'{self.limits.name}' does not accept.",
                    )
        files = [
            StagedFile(public, e.local_path, e.size, e.file_type, e.sha256)
            for public, e in sorted(self.entries.items())
        ]
        source_format, _ = infer_source_format((f.public_path, f.file_type) for f in files)
        return ProcessedUpload(
            files=files,
            findings=self.findings,
            removed=self.removed,
            source_format=source_format,
            compressed_size=self.source_size,
            total_size=sum(f.size for f in files),
        )

    def _flatten_top_level(self) -> None:
        """arXiv's RemoveTopLevelDirectory: ``paper/main.tex`` becomes ``main.tex``."""
        while self.entries:
            tops = {p.split("/", 1)[0] for p in self.entries}
            if len(tops) != 1:
                return
            top = tops.pop()
            if top == "anc" or top in self.entries:
                return
            temp = self.staging / ".cairn-flatten"
            os.rename(self.staging / top, temp)
            for child in os.listdir(temp):
                os.rename(temp / child, self.staging / child)
            os.rmdir(temp)
            cut = len(top) + 1

            def move(path: str | None, top: str = top, cut: int = cut) -> str | None:
                if path is None or path == top:
                    return None
                return path[cut:] if path.startswith(top + "/") else path

            self.entries = {
                p[cut:]: replace(e, local_path=self.staging / p[cut:])
                for p, e in self.entries.items()
            }
            self.dirs = {d[cut:] for d in self.dirs if d.startswith(top + "/")}
            self.findings = [replace(f, public_path=move(f.public_path)) for f in self.findings]
            self.removed = [moved for p in self.removed if (moved := move(p)) is not None]
            self.add("warn", None, f"{ck.MSG_TOP_LEVEL} '{top}'.")


def _prune_empty_dirs(root: Path) -> None:
    """Remove folders left empty (by an unpacked nested archive or an aborted file)."""
    for folder, subdirs, files in os.walk(root, topdown=False):
        if folder != str(root) and not files and not os.listdir(folder):
            os.rmdir(folder)
        del subdirs


def _tar_kind(info: tarfile.TarInfo) -> MemberKind:
    if info.isreg():
        return "file"
    if info.isdir():
        return "dir"
    if info.issym():
        return "symlink"
    if info.islnk():
        return "hardlink"
    if info.ischr():
        return "chardev"
    if info.isblk():
        return "blockdev"
    if info.isfifo():
        return "fifo"
    return "other"


def _zip_kind(info: zipfile.ZipInfo) -> MemberKind:
    if info.is_dir():
        return "dir"
    mode = info.external_attr >> 16
    fmt = stat.S_IFMT(mode)
    if fmt in (0, stat.S_IFREG):
        return "file"
    if fmt == stat.S_IFDIR:
        return "dir"
    if fmt == stat.S_IFLNK:
        return "symlink"
    if fmt == stat.S_IFCHR:
        return "chardev"
    if fmt == stat.S_IFBLK:
        return "blockdev"
    if fmt == stat.S_IFIFO:
        return "fifo"
    return "other"
