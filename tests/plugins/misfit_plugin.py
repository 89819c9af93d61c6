"""A plugin whose implementation wants an argument the hook does not have."""

from __future__ import annotations

from cairn import hookimpl


@hookimpl
def register_blob_stores(nonsense: object) -> None:
    """Never called: registering it fails."""
