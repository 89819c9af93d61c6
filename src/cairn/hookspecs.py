"""Hook specifications: what a plugin may implement with ``@cairn.hookimpl``.

A hook exists once the code that calls it does; docs/plugins.md documents each one and lists
the hooks that coming areas will add. An implementation may accept any subset of a hook's
arguments, so hooks can gain arguments without breaking plugins.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from pathlib import Path

    from fastapi import FastAPI

    from cairn.archive.verify import Verification
    from cairn.blobs.registry import BlobStoreFactory
    from cairn.config import Settings
    from cairn.notify import Notifier
    from cairn.processing.ssd import Dispatcher, Service

__all__ = [
    "hookimpl",
    "hookspec",
    "mint_doi",
    "register_archive_post_processors",
    "register_archive_storages",
    "register_blob_stores",
    "register_dispatchers",
    "register_notifiers",
    "register_routes",
    "register_services",
    "verify_archive_signature",
]

hookspec = pluggy.HookspecMarker("cairn")
hookimpl = pluggy.HookimplMarker("cairn")


@hookspec
def register_blob_stores() -> Mapping[str, BlobStoreFactory] | None:
    """Map URL schemes to factories that open a ``BlobStore`` for a URL of that scheme."""


@hookspec
def register_routes(app: FastAPI, settings: Settings) -> None:
    """Add routers to the app (``app.include_router``) after cairn's own."""


@hookspec
def register_services() -> Sequence[Service] | None:
    """Return processing service descriptions (``cairn.processing.ssd.Service``) to offer."""


@hookspec
def register_dispatchers() -> Sequence[Dispatcher] | None:
    """Return dispatcher services (``cairn.processing.ssd.Dispatcher``) processes may add."""


@hookspec
def register_notifiers(settings: Settings) -> Sequence[Notifier] | None:
    """Return notifiers (``cairn.notify.Notifier``), one channel each, that deliver notices."""


@hookspec
def register_archive_storages() -> Mapping[str, type] | None:
    """Map names to archive document-storage plugin classes (AssemblyName may name them)."""


@hookspec
def register_archive_post_processors() -> Mapping[str, type] | None:
    """Map names to archive post-processing plugin classes (AssemblyName may name them)."""


@hookspec
def verify_archive_signature(
    signature: bytes,
    document: bytes | Path | None,
    algorithms: Sequence[str],
    level: str,
    attached: bool,
) -> Verification | None:
    """Give the verdict on a signature the archive cannot verify (GOST); docs/plugins.md."""


@hookspec
def mint_doi(publication_id: str, metadata: Mapping[str, object]) -> str | None:
    """Mint a DOI for a published run the server received, or return None; docs/plugins.md."""
