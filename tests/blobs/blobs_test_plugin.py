"""A blob store plugin for the registry tests, registered through a real entry point.

``test_blobs_registry`` writes a ``*.dist-info`` whose ``entry_points.txt`` names this module in
the group ``cairn`` into a temporary folder and puts it on ``sys.path``, as ``pip install``
would.
"""

from __future__ import annotations

from cairn import hookimpl
from cairn.blobs import BlobStoreFactory, LocalBlobStore


class PluginStore(LocalBlobStore):
    """A local store addressed as ``<scheme>:///absolute/path``; remembers the URL it got."""

    def __init__(self, url: str) -> None:
        self.url = url
        super().__init__(url.split("://", 1)[1])


class NotAStore:
    """A factory that returns something that is not a BlobStore."""

    def __init__(self, url: str) -> None:
        self.url = url


@hookimpl
def register_blob_stores() -> dict[str, BlobStoreFactory]:
    return {
        "CairnTest": PluginStore,  # schemes are case-insensitive, as URLs' are
        "ftp": PluginStore,  # a protocol fsspec knows: a plugin must win over the fallback
        "cairnwrong": NotAStore,  # type: ignore[dict-item]
    }
