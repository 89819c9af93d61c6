"""Streaming helpers shared by the backends: input chunking and the verifying reader."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from typing import Any, BinaryIO

from cairn.blobs.base import CHUNK_SIZE, BlobSource
from cairn.errors import IntegrityError, Invalid

__all__ = ["VerifyingReader", "iter_chunks", "open_verifying"]

_BYTES_LIKE = (bytes, bytearray, memoryview)


def iter_chunks(data: BlobSource, buffer: bytearray | None = None) -> Iterator[memoryview]:
    """Yield ``data`` as memoryviews of at most ``CHUNK_SIZE`` bytes (iterables: as given).

    Streams are read with ``readinto`` into ``buffer`` when they support it, so a put allocates
    nothing per chunk; the consumer must use each chunk before asking for the next one.
    """
    if isinstance(data, _BYTES_LIKE):
        view = memoryview(data).cast("B")
        for start in range(0, len(view), CHUNK_SIZE):
            yield view[start : start + CHUNK_SIZE]
        return
    if isinstance(data, str | os.PathLike | io.TextIOBase):
        raise Invalid(
            "blob data must be bytes, a binary stream or an iterable of bytes, not text or a "
            "path (use put_file() for a path)"
        )
    if hasattr(data, "read"):
        yield from _iter_stream(data, buffer)
        return
    for chunk in data:
        if not isinstance(chunk, _BYTES_LIKE):
            raise Invalid(f"blob chunks must be bytes, got {type(chunk).__name__}")
        if chunk:
            yield memoryview(chunk).cast("B")


def _iter_stream(stream: Any, buffer: bytearray | None) -> Iterator[memoryview]:
    readinto = getattr(stream, "readinto", None)
    if readinto is None:
        while chunk := stream.read(CHUNK_SIZE):
            if not isinstance(chunk, _BYTES_LIKE):
                raise Invalid(f"blob stream must yield bytes, got {type(chunk).__name__}")
            yield memoryview(chunk).cast("B")
        return
    buf = buffer if buffer is not None and len(buffer) > 0 else bytearray(CHUNK_SIZE)
    view = memoryview(buf)
    while True:
        n = readinto(view)
        if n is None:
            raise Invalid("non-blocking streams cannot be stored as blobs")
        if n == 0:
            return
        yield view[:n]


class VerifyingReader(io.RawIOBase):
    """Raw stream over a stored blob that hashes what it hands out.

    The size is known at open time, so the read that reaches it also checks for trailing bytes
    and compares digests; on a mismatch it raises ``IntegrityError`` instead of returning those
    final bytes, and every later read raises the same error.
    """

    def __init__(self, source: Any, sha256: str, size: int) -> None:
        super().__init__()
        self.name = sha256
        self._source = source
        self._readinto = getattr(source, "readinto", None)
        self._sha256 = sha256
        self._size = size
        self._pos = 0
        self._hash = hashlib.sha256()
        self._done = False
        self._error: IntegrityError | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.closed:
            raise ValueError("I/O operation on closed blob")
        if self._error is not None:
            raise self._error
        if self._done:
            return 0
        view = memoryview(buffer).cast("B")
        if not view:
            return 0
        n = self._fill(view)
        if n:
            self._hash.update(view[:n])
            self._pos += n
        if n == 0 or self._pos >= self._size:
            if n and self._pos == self._size:
                # The expected end: one more byte would mean the blob grew.
                extra = self._source.read(1)
                if extra:
                    self._hash.update(extra)
                    self._pos += len(extra)
            self._finish()
        return n

    def readall(self) -> bytes:
        """Read the rest into one buffer sized from the known length (not 8 KiB steps)."""
        out = bytearray(max(self._size - self._pos, 0))
        view = memoryview(out)
        filled = 0
        while not self._done:
            n = self.readinto(view[filled:] if filled < len(out) else bytearray(1))
            if n == 0:
                break
            filled += n
        return bytes(view[:filled])

    def close(self) -> None:
        if not self.closed:
            try:
                self._source.close()
            finally:
                super().close()

    def _fill(self, view: memoryview) -> int:
        if self._readinto is not None:
            n = self._readinto(view)
            if n is None:
                raise OSError("blob source returned no data (non-blocking)")
            return int(n)
        data = self._source.read(len(view))
        view[: len(data)] = data
        return len(data)

    def _finish(self) -> None:
        actual = self._hash.hexdigest()
        if self._pos != self._size:
            problem = f"has {self._pos} bytes where {self._size} were expected"
        elif actual != self._sha256:
            problem = f"now hashes to {actual}"
        else:
            self._done = True
            return
        self._error = IntegrityError(
            f"blob {self._sha256} is corrupt: its content {problem}",
            detail={"sha256": self._sha256, "actual_sha256": actual, "size": self._pos},
        )
        raise self._error


def open_verifying(source: Any, sha256: str, size: int) -> BinaryIO:
    """Wrap a backend's raw binary stream in a buffered, verifying, read-only file object."""
    return io.BufferedReader(VerifyingReader(source, sha256, size), buffer_size=CHUNK_SIZE)
