"""cairn's own blob backends, shipped as a plugin on the hook third-party backends use."""

from __future__ import annotations

from cairn.blobs.base import BlobStore
from cairn.blobs.registry import BlobStoreFactory
from cairn.hookspecs import hookimpl


def _fsspec_store(url: str) -> BlobStore:
    # Imported on use: listing the schemes must not import fsspec (#14, `cairn record` start-up).
    from cairn.blobs.fsspec_store import FsspecBlobStore

    return FsspecBlobStore(url)


@hookimpl
def register_blob_stores() -> dict[str, BlobStoreFactory]:
    """``file://`` and ``memory://`` URLs open an ``FsspecBlobStore``."""
    return {"file": _fsspec_store, "memory": _fsspec_store}
