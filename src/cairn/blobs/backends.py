"""cairn's own blob backends, shipped as a plugin on the hook third-party backends use."""

from __future__ import annotations

from cairn.blobs.fsspec_store import FsspecBlobStore
from cairn.blobs.registry import BlobStoreFactory
from cairn.hookspecs import hookimpl


@hookimpl
def register_blob_stores() -> dict[str, BlobStoreFactory]:
    """``file://`` and ``memory://`` URLs open an ``FsspecBlobStore``."""
    return {"file": FsspecBlobStore, "memory": FsspecBlobStore}
