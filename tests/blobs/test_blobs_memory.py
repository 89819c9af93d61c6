"""Streaming, not buffering: a put writes each chunk as it comes, a read verifies as it goes.

This is what keeps a large put flat in memory; the figure itself (peak RSS of a 512 MiB put and
read) is measured by bench/blobs_memory.py.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from cairn.blobs import LocalBlobStore
from cairn.errors import IntegrityError

CHUNK = 1 << 20
CHUNKS = 24
BLOCK = hashlib.sha256(b"seed").digest() * (CHUNK // 32)


def chunk(i: int) -> bytes:
    """A fresh bytes object per chunk, each one different."""
    return i.to_bytes(8, "big") + BLOCK[8:]


def test_put_writes_each_chunk_before_taking_the_next(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    temp = store.root / ".tmp"
    on_disk: list[int] = []  # bytes in the temp folder whenever the put asks for a chunk

    def generate() -> Iterator[bytes]:
        for i in range(CHUNKS):
            on_disk.append(sum(p.stat().st_size for p in temp.iterdir()))
            yield chunk(i)

    ref = store.put(generate())
    expected = hashlib.sha256(b"".join(chunk(i) for i in range(CHUNKS))).hexdigest()
    assert (ref.sha256, ref.size) == (expected, CHUNKS * CHUNK)
    assert on_disk == [i * CHUNK for i in range(CHUNKS)]


def test_read_hands_out_data_before_verifying_the_end(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    ref = store.put(chunk(i) for i in range(CHUNKS))
    path = store.local_path(ref.sha256)
    assert path is not None
    path.chmod(0o644)
    with path.open("r+b") as f:  # damage the very last byte
        f.seek(-1, 2)
        last = f.read(1)
        f.seek(-1, 2)
        f.write(bytes([last[0] ^ 0xFF]))
    with store.open(ref.sha256) as f:
        for i in range(CHUNKS - 1):  # read as it comes: the damage is not seen yet
            assert f.read(CHUNK) == chunk(i)
        with pytest.raises(IntegrityError, match=ref.sha256):
            f.read(CHUNK)
