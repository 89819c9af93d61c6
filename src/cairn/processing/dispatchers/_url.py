"""The ``Storage URL`` dispatcher: writes the outputs below any fsspec URL the server can
reach (``s3://``, ``gcs://``, ``sftp://``, ``memory://`` ...). Local paths are refused: the
``Local folder`` dispatcher writes on the server, and only inside its dispatch root; so is the
location of the server's own blob store (or a folder above it)."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from typing import Any

import fsspec
from fsspec.core import split_protocol, url_to_fs
from fsspec.implementations.local import LocalFileSystem

from cairn.errors import Invalid
from cairn.processing._context import DispatchContext
from cairn.processing.dispatchers._layout import dispatch_path
from cairn.processing.ssd import Dispatcher, OptionSpec

__all__ = ["STORAGE_URL", "dispatch_to_url"]

_LOCAL = {"file", "local", "simplecache", "filecache", "blockcache", "cached", "reference"}


def _check(options: Mapping[str, Any]) -> None:
    url = (options.get("url") or "").strip()
    protocol, _ = split_protocol(url)
    if protocol is None or "::" in url:  # chained URLs could wrap the server's own files
        raise Invalid(
            f"Option 'url' is an fsspec URL with its protocol (s3://bucket/prefix); "
            f"got {url[:200]!r}."
        )
    if protocol in _LOCAL:
        raise Invalid(
            "Option 'url' may not name the server's own files; use the 'Local folder' "
            "dispatcher, which writes inside the dispatch root."
        )
    if protocol not in fsspec.available_protocols():
        raise Invalid(f"Option 'url': this server does not know the protocol {protocol!r}.")


def _inside(url: str, store: str) -> bool:
    """Whether ``url`` names the blob store's location or a place below it."""
    if "://" not in store:
        return False
    url, store = url.rstrip("/") + "/", store.rstrip("/") + "/"
    return url.startswith(store) or store.startswith(url)


def dispatch_to_url(ctx: DispatchContext) -> None:
    """Write each file to ``<url>/<execution id>/<n>_<component>/<data item>/<file>``."""
    _check(ctx.options)
    url = ctx.options["url"].strip()
    fs, root = url_to_fs(url)
    if isinstance(fs, LocalFileSystem):
        raise ValueError("the URL leads to the server's own files")
    if _inside(url, ctx.settings.blob_url):
        raise ValueError("the URL leads into the server's own blob store")
    base = f"{root.rstrip('/')}/{ctx.execution_id}"
    for file in ctx.files:
        path = f"{base}/{dispatch_path(file)}"
        fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        with ctx.open(file) as source, fs.open(path, "wb") as out:
            shutil.copyfileobj(source, out, 8 * 1024 * 1024)
    ctx.log(f"wrote {len(ctx.files)} file(s) to {fs.unstrip_protocol(base)}")


STORAGE_URL = Dispatcher(
    id="0c6e2f4a-7b19-4d3e-8f51-a2b4c6d8e0f5",
    ssd_id="0c6e2f4a-7b19-4d3e-8f51-a2b4c6d8e0f4",
    version=1,
    name="Storage URL",
    keywords=["Dispatcher", "fsspec", "URL"],
    categories=["Dispatcher"],
    summary="Writes the outputs below an fsspec URL.",
    description="After an execution succeeds, writes its outputs below `url` (any fsspec URL "
    "the server can reach with its own credentials, such as s3://bucket/prefix or "
    "sftp://host/path), under the execution's id. The server's own files are refused.",
    options=[
        OptionSpec(
            "url",
            "string",
            title="URL",
            description="An fsspec URL with its protocol (s3://bucket/prefix).",
        )
    ],
    dispatch=dispatch_to_url,
    check=_check,
)
