"""Signed transfers: the raw upload (PUT) and download (GET) behind the URLs data routes answer."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import anyio
import anyio.to_thread
from fastapi import Depends, Query, Request, Response
from starlette.requests import ClientDisconnect

from cairn.accounts import service as accounts
from cairn.accounts.service import Actor
from cairn.api.compat.fusion._common import (
    RuntimeDep,
    router,
)
from cairn.api.deps import BlobsDep, SettingsDep
from cairn.api.downloads import blob_response
from cairn.api.uploads import UPLOAD_MARK
from cairn.blobs import BlobStore
from cairn.config import Settings
from cairn.db import UnitOfWork
from cairn.errors import BadRequest, Forbidden, Unauthorized
from cairn.processing._runtime import Download, Runtime
from cairn.tempfiles import scratch_file

# --- signed transfers --------------------------------------------------------------------------


class _Signed:
    """The signature of a transfer URL; without one, the caller's bearer token is needed."""

    def __init__(
        self,
        expires: Annotated[int | None, Query(ge=0, le=2**62)] = None,
        nonce: Annotated[str | None, Query(max_length=64)] = None,
        signature: Annotated[str | None, Query(max_length=128)] = None,
        blob: Annotated[str | None, Query(max_length=64)] = None,
    ) -> None:
        given = [expires is not None, nonce is not None, signature is not None]
        self.signed: dict[str, Any] | None = (
            {"expires": expires, "nonce": nonce, "signature": signature} if all(given) else None
        )
        if self.signed is not None and blob is not None:
            self.signed["blob"] = blob
        if any(given) and not all(given):
            raise Forbidden("This signed URL is not valid.")


def _transfer_actor(request: Request, signed: _Signed) -> Actor | None:
    if signed.signed is not None:
        return None
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("This URL needs its signature, or send 'Authorization: Bearer'.")
    with UnitOfWork(request.app.state.sessionmaker).transaction() as session:
        return accounts.authenticate(session, token.strip())


async def receive_upload(
    request: Request,
    settings: Settings,
    runtime: Runtime,
    file_id: str,
    *,
    signed: Mapping[str, Any] | None,
    actor: Actor | None,
) -> None:
    """Stream a request body into a file's blob: the URL is spent (or the actor's privilege
    checked) before a byte is read, and a body cut off half-way leaves the file incomplete.
    The native processing API's upload shares it."""
    await anyio.to_thread.run_sync(
        lambda: runtime.begin_upload(file_id, signed=signed, actor=actor)
    )
    path: Path | None = None
    try:
        fd, path = scratch_file(settings.work_dir, prefix="fusion-")
        with os.fdopen(fd, "wb") as out:
            async for chunk in request.stream():
                await anyio.to_thread.run_sync(out.write, chunk)
        await anyio.to_thread.run_sync(runtime.finish_upload, file_id, path)
    except ClientDisconnect:
        reason = "The upload was cut off before it completed."
        await anyio.to_thread.run_sync(runtime.abort_upload, file_id, reason)
        raise BadRequest(reason) from None
    except BaseException:
        reason = "The upload failed before it completed."
        await anyio.to_thread.run_sync(runtime.abort_upload, file_id, reason)
        raise
    finally:
        if path is not None:
            path.unlink(missing_ok=True)


@router.put("/transfers/{file_id}/upload", openapi_extra={UPLOAD_MARK: True})
async def upload(
    file_id: str,
    request: Request,
    settings: SettingsDep,
    runtime: RuntimeDep,
    signed: Annotated[_Signed, Depends()],
) -> dict[str, Any]:
    """Receive a file's raw bytes (the URL `add_file` answered). A URL works once; a body cut
    off half-way leaves the file incomplete."""
    actor = await anyio.to_thread.run_sync(_transfer_actor, request, signed)
    await receive_upload(request, settings, runtime, file_id, signed=signed.signed, actor=actor)
    return {}


@router.get("/transfers/{file_id}/download")
@router.head("/transfers/{file_id}/download", include_in_schema=False)
def download(
    file_id: str,
    request: Request,
    blobs: BlobsDep,
    runtime: RuntimeDep,
    signed: Annotated[_Signed, Depends()],
) -> Response:
    """A file's bytes, by the signed URL `download_file` answered (once, within the hour)."""
    actor = _transfer_actor(request, signed)
    return send_download(
        request, blobs, runtime.check_download(file_id, signed=signed.signed, actor=actor)
    )


def send_download(request: Request, blobs: BlobStore, download: Download) -> Response:
    """The bytes a ``Download`` names (ETag, Last-Modified, ranges, HEAD), for both APIs."""
    return blob_response(
        request,
        blobs,
        sha256=download.sha256,
        size=download.size,
        etag=download.sha256,
        modified=download.modified,
        filename=download.file_name,
        media_type=download.media_type,
    )
