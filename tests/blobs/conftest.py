"""Fixtures for the blob store tests: one store per backend, and a backdoor to damage blobs."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cairn.blobs import BlobStore, FsspecBlobStore, LocalBlobStore

BACKENDS = ["local", "file", "memory"]


class Backdoor:
    """Reaches under a store's API to inspect temp files and to damage stored blobs."""

    def __init__(self, store: BlobStore) -> None:
        self.store = store

    def temp_names(self) -> list[str]:
        if isinstance(self.store, LocalBlobStore):
            return os.listdir(self.store.root / ".tmp")
        assert isinstance(self.store, FsspecBlobStore)
        try:
            return list(self.store.fs.find(self.store.root + "/.tmp"))
        except FileNotFoundError:
            return []

    def read_raw(self, sha256: str) -> bytes:
        path = self.store.local_path(sha256)
        if path is not None:
            return path.read_bytes()
        assert isinstance(self.store, FsspecBlobStore)
        return bytes(self.store.fs.cat_file(self.store._path(sha256)))

    def write_raw(self, sha256: str, data: bytes) -> None:
        """Overwrite a stored blob in place, as bit rot or a careless admin would."""
        path = self.store.local_path(sha256)
        if path is not None:
            path.chmod(0o644)
            path.write_bytes(data)
            return
        assert isinstance(self.store, FsspecBlobStore)
        self.store.fs.pipe_file(self.store._path(sha256), data)

    def flip_byte(self, sha256: str, index: int = 0) -> None:
        data = bytearray(self.read_raw(sha256))
        data[index] ^= 0xFF
        self.write_raw(sha256, bytes(data))


def make_store(kind: str, tmp_path: Path) -> BlobStore:
    if kind == "local":
        return LocalBlobStore(tmp_path / "blobs")
    if kind == "file":
        return FsspecBlobStore(f"file://{tmp_path}/fsspec-blobs")
    if kind == "memory":
        return FsspecBlobStore(f"memory://cairn-test-{uuid.uuid4().hex}/blobs")
    raise AssertionError(kind)


def drop_store(store: BlobStore) -> None:
    if isinstance(store, FsspecBlobStore) and store.url.startswith("memory://"):
        bucket = "/" + store.root.strip("/").split("/")[0]
        with contextlib.suppress(FileNotFoundError):
            store.fs.rm(bucket, recursive=True)


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    """A fresh, empty store on each backend: local folder, ``file://`` and ``memory://``."""
    blob_store = make_store(request.param, tmp_path)
    yield blob_store
    drop_store(blob_store)


@pytest.fixture
def backdoor(store: BlobStore) -> Backdoor:
    return Backdoor(store)
