"""``open_blob_store``: turn a configured storage location into a ``BlobStore``.

Resolution order: a plain path is a ``LocalBlobStore``; a URL's scheme is looked up among the
schemes plugins register (hook ``register_blob_stores``; cairn's own ``file`` and ``memory`` are
a built-in plugin); failing that, any protocol fsspec knows gets an ``FsspecBlobStore``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import TypeAlias

from cairn.blobs.base import BlobStore
from cairn.blobs.local import LocalBlobStore
from cairn.errors import Invalid
from cairn.plugins import PluginError, call_hook

__all__ = ["BlobStoreFactory", "open_blob_store"]

BlobStoreFactory: TypeAlias = Callable[[str], BlobStore]
"""What ``register_blob_stores`` maps a scheme to: called with the whole URL, opens the store."""

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")


def open_blob_store(url: str | os.PathLike[str]) -> BlobStore:
    """Open the blob store at ``url``: a folder path, or ``scheme://…`` for plugins and fsspec.

    Raises:
        Invalid: the scheme is unknown or its driver is missing.
        PluginError: a plugin failed to load, or its factory returned no ``BlobStore``.
    """
    if isinstance(url, os.PathLike):
        return LocalBlobStore(url)
    if "://" not in url:
        return LocalBlobStore(url)
    match = _SCHEME.match(url)
    if match is None:
        raise Invalid(f"not a storage URL: {url!r} (expected a folder path or scheme://...)")
    scheme = match.group(1).lower()

    factories = _registered_factories()
    factory = factories.get(scheme)
    if factory is not None:
        store = factory(url)
        if not isinstance(store, BlobStore):
            name = f"{getattr(factory, '__module__', '?')}:{getattr(factory, '__qualname__', '?')}"
            raise PluginError(
                f"blob store plugin for {scheme}:// ({name}) returned "
                f"{type(store).__name__}, not a BlobStore",
                detail={"scheme": scheme},
            )
        return store

    from fsspec import get_filesystem_class  # only for fsspec URLs: ~60 ms to import

    from cairn.blobs.fsspec_store import FsspecBlobStore

    try:
        get_filesystem_class(scheme)
    except ValueError:
        raise Invalid(
            f"no blob store for {scheme}:// URLs: no plugin registers the scheme and fsspec "
            f"does not know the protocol (plugins register: {', '.join(sorted(factories))})",
            detail={"scheme": scheme},
        ) from None
    except ImportError as exc:
        raise Invalid(
            f"blob store for {scheme}:// URLs needs an extra package: {exc}",
            detail={"scheme": scheme},
        ) from exc
    return FsspecBlobStore(url)


def _registered_factories() -> dict[str, BlobStoreFactory]:
    """Every scheme plugins register, lowercased; the plugin registered last wins a clash."""
    factories: dict[str, BlobStoreFactory] = {}
    for registered in reversed(call_hook("register_blob_stores")):
        factories.update((scheme.lower(), factory) for scheme, factory in registered.items())
    return factories
