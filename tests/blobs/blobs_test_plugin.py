"""A storage plugin for the registry tests, registered through a real entry point.

``test_blobs_registry`` writes a ``*.dist-info`` with an ``entry_points.txt`` naming these
classes into a temporary folder and puts it on ``sys.path``, exactly as ``pip install`` would.
"""

from __future__ import annotations

from cairn.blobs import LocalBlobStore


class PluginStore(LocalBlobStore):
    """A local store addressed as ``<scheme>:///absolute/path``; remembers the URL it got."""

    def __init__(self, url: str) -> None:
        self.url = url
        super().__init__(url.split("://", 1)[1])


class NotAStore:
    """A factory that returns something that is not a BlobStore."""

    def __init__(self, url: str) -> None:
        self.url = url
