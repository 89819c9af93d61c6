"""Content-addressed blob store: the ``BlobStore`` API, its backends, fixity check and GC.

    store = open_blob_store("/srv/cairn/blobs")      # or "s3://bucket/prefix", "memory://x"
    ref = store.put(stream)                          # BlobRef(sha256=..., size=...)
    with store.open(ref.sha256) as f: ...            # verifies the hash as it reads

Blobs are immutable and named by their SHA-256; rows reference them by hash, never by path.
Extra backends come from plugins (hook ``register_blob_stores``, docs/plugins.md).
"""

from typing import TYPE_CHECKING

from cairn.blobs.base import (
    CHUNK_SIZE,
    BlobRef,
    BlobSource,
    BlobStore,
    Spool,
    StagedBlob,
    validate_sha256,
)
from cairn.blobs.check import CheckReport, GarbageReport, check_blobs, collect_garbage
from cairn.blobs.local import LocalBlobStore
from cairn.blobs.registry import BlobStoreFactory, open_blob_store

if TYPE_CHECKING:
    from cairn.blobs.fsspec_store import FsspecBlobStore

__all__ = [
    "CHUNK_SIZE",
    "BlobRef",
    "BlobSource",
    "BlobStore",
    "BlobStoreFactory",
    "CheckReport",
    "FsspecBlobStore",
    "GarbageReport",
    "LocalBlobStore",
    "Spool",
    "StagedBlob",
    "check_blobs",
    "collect_garbage",
    "open_blob_store",
    "validate_sha256",
]


def __getattr__(name: str) -> object:
    # fsspec costs ~60 ms to import and the local store (the default) never needs it, so
    # `cairn record` and every local command import it only when an fsspec URL is opened (#14).
    if name == "FsspecBlobStore":
        from cairn.blobs.fsspec_store import FsspecBlobStore

        return FsspecBlobStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
