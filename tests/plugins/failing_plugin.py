"""A plugin whose hooks raise, as a buggy plugin's would."""

from __future__ import annotations

from cairn import hookimpl


@hookimpl
def register_blob_stores() -> None:
    raise RuntimeError("this plugin fails on purpose")


@hookimpl
def register_routes() -> None:
    raise RuntimeError("this plugin fails on purpose")
