"""Example cairn plugin: blobs under ``example:///<folder>`` and a ``GET /example/ping`` route."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from cairn import hookimpl
from cairn.blobs import BlobStoreFactory, LocalBlobStore
from cairn.errors import Invalid

SCHEME = "example"

router = APIRouter(prefix="/example", tags=["example"])


class ExampleBlobStore(LocalBlobStore):
    """A local blob store on the folder an ``example:///absolute/folder`` URL names."""

    def __init__(self, url: str) -> None:
        folder = url.split("://", 1)[1]
        if not folder.startswith("/"):
            raise Invalid(f"{SCHEME}:// URLs name an absolute folder: {url!r}")
        self.url = url
        super().__init__(folder)


@router.get("/ping")
def ping() -> dict[str, str]:
    """Answers ``pong``: the example plugin is loaded."""
    return {"ping": "pong"}


@hookimpl
def register_blob_stores() -> dict[str, BlobStoreFactory]:
    return {SCHEME: ExampleBlobStore}


@hookimpl
def register_routes(app: FastAPI) -> None:
    # The hook also offers ``settings``; an implementation takes only what it needs.
    app.include_router(router)
