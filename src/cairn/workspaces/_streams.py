"""Stream plumbing for unpacking: bytes counted, decompressed, read ahead and cut into members.

Also where reader errors end: ``map_read_errors`` turns what a reader raises on damaged input
into ``Corrupt``, which the member pipeline reports as a fatal finding.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import lzma
import queue
import struct
import tarfile
import threading
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cairn.workspaces import _filetypes as ft
from cairn.workspaces._tarheader import BadHeader

__all__ = [
    "BUFFER",
    "CHUNK",
    "READ_ERRORS",
    "Corrupt",
    "CountingRaw",
    "Decompressed",
    "Gunzip",
    "MemberReader",
    "Meter",
    "Prefetch",
    "Reader",
    "map_read_errors",
    "open_decompressed",
]

# Read bzip2, xz and zip input in 64 KiB steps: small enough that "compressed bytes consumed"
# (read-ahead included) stays close to the truth, so a bomb is stopped right after the ratio grace.
CHUNK = 64 * 1024
# Decompressed data (and plain files) is pulled in steps of up to 1 MiB; the limits are checked
# on each step, so they are crossed by at most a few steps.
BUFFER = 1024 * 1024
# A thread decompresses up to this many steps ahead of the main thread (see Prefetch).
PREFETCH_SLOTS = 3
# Compressed bytes read at once for gzip; only what zlib has used counts as consumed.
GUNZIP_INPUT = 1024 * 1024


class Corrupt(Exception):
    """Reading an archive failed (truncated, bad checksum, not what it claims ...)."""


# Errors that reading hostile or damaged archives may raise; they become a fatal finding.
READ_ERRORS: tuple[type[BaseException], ...] = (
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
    BadHeader,
)


class _ReadErrorMap:
    """Turns what a reader raises on damaged input into ``Corrupt``, chained to the cause.

    A class rather than ``contextlib.contextmanager``: it wraps every read of every member, and
    entering a generator-based manager costs ten times more.
    """

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        if exc is not None and isinstance(exc, READ_ERRORS):
            raise Corrupt(str(exc) or type(exc).__name__) from exc


_MAP_READ_ERRORS = _ReadErrorMap()


def map_read_errors() -> _ReadErrorMap:
    """``with map_read_errors(): ...``: reader errors inside become ``Corrupt``.

    ``Corrupt`` and the pipeline's ``Abort`` pass through unchanged (they are not reader errors).
    """
    return _MAP_READ_ERRORS


class Reader(Protocol):
    # A memoryview result is to be used before the next call (see ``Decompressed.chunk``).
    def read(self, size: int, /) -> bytes | memoryview | None: ...


class CountingRaw(io.RawIOBase):
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
class Meter:
    """Bytes one archive consumed (compressed) and produced, for the ratio limit."""

    label: str
    consumed: Callable[[], int]
    step: int = CHUNK  # read size for member data: bigger steps read further ahead of checks
    expanded: int = 0  # decompressed bytes pulled by the tar reader, written or skipped
    produced: int = 0  # bytes written to staging from this archive


EMPTY = memoryview(b"")


class Gunzip:
    """gzip data decompressed with zlib directly: what ``gzip.GzipFile`` reads, with less Python.

    zlib parses each member's header and checks its CRC and size; members may follow each other,
    with zero bytes between them (as ``GzipFile`` allows). ``consumed`` counts the compressed
    bytes zlib has actually used, read-ahead excluded, for the ratio limit. (Read from the main
    thread while ``Prefetch`` runs ahead, it is at most ``PREFETCH_SLOTS`` steps early: for a
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


class Prefetch:
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


class Decompressed:
    """The decompressed bytes of one archive or compressed file, read forward.

    Every byte pulled from the decompressor is counted and the limits checked at once (not only
    on writes), so members that are skipped (junk, links) are bounded too: their data is still
    decompressed. Member data is handed out as views of what was decompressed (``chunk``),
    never copied. ``tarfile`` reads headers through ``read``, ``tell`` and ``seek``, which only
    goes forward (skipping is reading): it is opened in plain ``"r"`` mode on this object, not
    in stream mode.
    """

    def __init__(self, src: Prefetch, meter: Meter, count: Callable[[Meter, int], None]) -> None:
        self._src = src
        self._meter = meter
        self._count = count  # counts each piece against the limits; raises to stop
        self._view = EMPTY  # the current piece, from self._src
        self._start = 0  # its bytes not handed out yet are self._view[self._start : self._end]
        self._end = 0
        self._pos = 0  # stream position of the next byte handed out

    def _fill(self) -> bool:
        if self._view is not EMPTY:
            self._src.release()
            self._view = EMPTY
        with map_read_errors():
            data = self._src.next()
        n = len(data)
        self._start, self._end = 0, n
        if not n:
            return False
        self._view = memoryview(data)
        self._count(self._meter, n)
        return True

    def chunk(self, limit: int) -> memoryview:
        """The next 1 to ``limit`` bytes (``limit`` > 0; none at the end of the data).

        Use the view before the next call, and do not keep it: the piece it shows is then given
        back to the read-ahead, which only counts pieces, so kept views would hold memory.
        """
        start = self._start
        if start == self._end:
            if not self._fill():
                return EMPTY
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


class MemberReader:
    """One member's data from a ``Decompressed``: ``size`` bytes, or all of it for ``None``."""

    def __init__(self, source: Decompressed, size: int | None) -> None:
        self._source = source
        self._left = size

    def read(self, size: int, /) -> memoryview:
        left = self._left
        if left is None:
            return self._source.chunk(size)
        if left <= 0:
            return EMPTY
        piece = self._source.chunk(min(size, left))
        if not piece:
            raise Corrupt("unexpected end of data")
        self._left = left - len(piece)
        return piece


@contextlib.contextmanager
def open_decompressed(
    path: Path, kind: ft.ArchiveKind, label: str, count: Callable[[Meter, int], None]
) -> Iterator[tuple[Decompressed, Meter]]:
    """The data of ``path`` decompressed as ``kind`` (a plain tar as it is), read ahead.

    ``count(meter, n)`` is called for every piece decompressed, before it is handed out.
    """
    with contextlib.ExitStack() as stack:
        raw_file = stack.enter_context(path.open("rb", buffering=0))
        src: Gunzip | io.BufferedIOBase
        if kind == "gzip":
            gunzip = Gunzip(raw_file)
            meter = Meter(label, lambda: gunzip.consumed, step=BUFFER)
            src = gunzip
        else:
            counting = CountingRaw(raw_file)
            buffered = io.BufferedReader(counting, CHUNK)
            meter = Meter(label, lambda: counting.count, step=BUFFER)
            if kind == "bzip2":
                src = stack.enter_context(bz2.BZ2File(buffered, "rb"))
            elif kind == "xz":
                src = stack.enter_context(lzma.LZMAFile(buffered, "rb"))
            else:
                src = buffered
        prefetch = Prefetch(src.read)
        stack.callback(prefetch.close)  # stops the thread before src is closed
        yield Decompressed(prefetch, meter, count), meter
