"""A local plugin module, registered because settings name it (``CAIRN_PLUGINS``)."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from cairn import hookimpl
from cairn.blobs import BlobStoreFactory, LocalBlobStore
from cairn.config import Settings


@hookimpl
def register_blob_stores() -> dict[str, BlobStoreFactory]:
    return {"settingstest": lambda url: LocalBlobStore(url.split("://", 1)[1])}


@hookimpl
def register_routes(app: FastAPI, settings: Settings) -> None:
    router = APIRouter(prefix="/settings-plugin", tags=["settings-plugin"])

    @router.get("/limit")
    def limit() -> int:
        """The request size limit of the settings the app was made with."""
        return settings.max_request_bytes

    app.include_router(router)
