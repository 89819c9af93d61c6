"""``open_blob_store``: turn a configured storage location into a ``BlobStore``.

Resolution order: a plain path is a ``LocalBlobStore``; a URL's scheme is looked up in the
entry-point group ``cairn.storage`` (plugins); failing that, any protocol fsspec knows gets an
``FsspecBlobStore``.
"""

from __future__ import annotations

import os
import re
from importlib import metadata

from fsspec import get_filesystem_class

from cairn.blobs.base import BlobStore
from cairn.blobs.fsspec_store import FsspecBlobStore
from cairn.blobs.local import LocalBlobStore
from cairn.errors import Invalid

__all__ = ["ENTRY_POINT_GROUP", "open_blob_store"]

ENTRY_POINT_GROUP = "cairn.storage"
"""Plugins register ``<scheme> = "module:Factory"`` here; ``Factory(url)`` returns a store."""

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")


def open_blob_store(url: str | os.PathLike[str]) -> BlobStore:
    """Open the blob store at ``url``: a folder path, or ``scheme://…`` for plugins and fsspec.

    Raises:
        Invalid: the scheme is unknown, its plugin fails to load, or its driver is missing.
    """
    if isinstance(url, os.PathLike):
        return LocalBlobStore(url)
    if "://" not in url:
        return LocalBlobStore(url)
    match = _SCHEME.match(url)
    if match is None:
        raise Invalid(f"not a storage URL: {url!r} (expected a folder path or scheme://...)")
    scheme = match.group(1).lower()

    plugins = metadata.entry_points(group=ENTRY_POINT_GROUP, name=scheme)
    for entry_point in plugins:
        try:
            factory = entry_point.load()
        except Exception as exc:
            raise Invalid(
                f"storage plugin {scheme!r} ({entry_point.value}) failed to load: {exc}"
            ) from exc
        store = factory(url)
        if not isinstance(store, BlobStore):
            raise Invalid(
                f"storage plugin {scheme!r} ({entry_point.value}) returned "
                f"{type(store).__name__}, not a BlobStore"
            )
        return store

    try:
        get_filesystem_class(scheme)
    except ValueError:
        known = sorted({ep.name for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)})
        raise Invalid(
            f"no blob store for {scheme}:// URLs: no {ENTRY_POINT_GROUP!r} plugin is registered "
            f"for it and fsspec does not know the protocol"
            + (f" (plugins: {', '.join(known)})" if known else ""),
            detail={"scheme": scheme},
        ) from None
    except ImportError as exc:
        raise Invalid(
            f"blob store for {scheme}:// URLs needs an extra package: {exc}",
            detail={"scheme": scheme},
        ) from exc
    return FsspecBlobStore(url)
