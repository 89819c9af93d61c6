"""Resumable uploads into a workspace, by the tus 1.0 protocol (issue #13, section 7).

Core protocol with the creation, creation-with-upload, termination, checksum (sha256) and
expiration extensions, under ``/api/v1/workspaces/{id}/uploads``. Errors are problem+json like
every native route, and carry ``Tus-Resumable`` as the protocol asks. Each handler makes one
``cairn.workspaces.service`` call; the workspace is checked (401, then 404 for another
organisation's) before the protocol version (412), so strangers learn nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from email.utils import format_datetime
from typing import Annotated, Any

import anyio.from_thread
from fastapi import APIRouter, Depends, Header, Path, Request, Response
from starlette.requests import ClientDisconnect

from cairn.api import workspace_calls as calls
from cairn.api.deps import (
    ActorDep,
    SessionDep,
    SettingsDep,
    UnitOfWorkDep,
    UploadIdPath,
    WorkflowDep,
)
from cairn.api.errors import PROBLEM_JSON, Problem, ProblemRoute
from cairn.api.uploads import UPLOAD_MARK
from cairn.errors import BadRequest, PreconditionFailed, UnsupportedMedia
from cairn.workspaces import resumable as tus
from cairn.workspaces import service

__all__ = ["router"]

OFFSET_STREAM = "application/offset+octet-stream"
_BATCH = 1024 * 1024


class TusRoute(ProblemRoute):
    """problem+json errors with the ``Tus-Resumable`` header tus clients look for, and
    ``Tus-Version`` on a 412 (the versions this server speaks)."""

    @staticmethod
    def render_problem(body: dict[str, Any], headers: Mapping[str, str] | None) -> Response:
        extra = {"Tus-Resumable": tus.TUS_VERSION}
        if body["status"] == 412:
            extra["Tus-Version"] = tus.TUS_VERSION
        return ProblemRoute.render_problem(body, {**(headers or {}), **extra})


def _checked_workspace(
    request: Request, upload_id: UploadIdPath, actor: ActorDep, uow: UnitOfWorkDep
) -> None:
    """The workspace is the caller's (else 404), then the client speaks tus 1.0.0 (else 412)."""
    with uow.transaction() as session:
        service.get_workspace(session, actor, upload_id)
    if request.method != "OPTIONS":
        version = request.headers.get("tus-resumable")
        if version != tus.TUS_VERSION:
            raise PreconditionFailed(
                f"This server speaks tus {tus.TUS_VERSION}; send 'Tus-Resumable: "
                f"{tus.TUS_VERSION}' (got {(version or 'none')[:20]!r})."
            )


router = APIRouter(
    prefix="/api/v1/workspaces/{upload_id}/uploads",
    tags=["workspaces"],
    route_class=TusRoute,
    dependencies=[Depends(_checked_workspace)],
)


def _problem(description: str) -> dict[str, Any]:
    schema = {"$ref": f"#/components/schemas/{Problem.__name__}"}
    return {
        "model": Problem,
        "description": description,
        "content": {PROBLEM_JSON: {"schema": schema}},
    }


TUS_ERRORS: dict[int | str, dict[str, Any]] = {
    410: _problem("The upload expired"),
    412: _problem("Tus-Resumable missing or not 1.0.0"),
}
PATCH_ERRORS: dict[int | str, dict[str, Any]] = {
    **TUS_ERRORS,
    415: _problem(f"The body is not {OFFSET_STREAM}"),
    460: _problem("Checksum mismatch: the bytes do not match Upload-Checksum"),
}


def _body_openapi(required: bool) -> dict[str, Any]:
    """The raw body tus sends, and the mark giving the route the upload body limit."""
    content = {OFFSET_STREAM: {"schema": {"type": "string", "format": "binary"}}}
    return {"requestBody": {"required": required, "content": content}, UPLOAD_MARK: True}


ResumableIdPath = Annotated[
    str,
    Path(min_length=1, max_length=64, description="The resumable upload's id (from Location)."),
]
OffsetHeader = Annotated[
    int | None,
    Header(
        alias="Upload-Offset",
        ge=0,
        le=2**63 - 1,
        description="Where these bytes go: the upload's current offset (HEAD tells it).",
    ),
]
ChecksumHeader = Annotated[
    str | None,
    Header(
        alias="Upload-Checksum",
        max_length=200,
        description="'sha256 <base64 digest>' of this request's bytes; 460 if they differ.",
    ),
]


def _resumable(request: Request, settings: SettingsDep) -> tus.Resumable:
    return tus.Resumable(
        folder=tus.partial_folder(request.app.state.blobs, settings.data_dir),
        work_dir=settings.work_dir,
        expiry=settings.resumable_upload_expiry,
        max_upload_bytes=settings.max_upload_bytes,
    )


ResumableDep = Annotated[tus.Resumable, Depends(_resumable)]


def _body(request: Request) -> Iterator[bytes]:
    """The request body in batches of about 1 MiB, read from the sync handler's thread."""
    stream = request.stream().__aiter__()

    async def next_batch() -> bytes:
        parts: list[bytes] = []
        size = 0
        while size < _BATCH:
            try:
                chunk = await stream.__anext__()
            except StopAsyncIteration:
                break
            except ClientDisconnect as exc:
                raise BadRequest("The upload was interrupted before its end.") from exc
            if chunk:
                parts.append(chunk)
                size += len(chunk)
        return b"".join(parts)

    while data := anyio.from_thread.run(next_batch):
        yield data


def _declared_size(request: Request) -> int | None:
    value = request.headers.get("content-length", "")
    return int(value) if value.isdigit() else None


def _state_headers(state: tus.ResumableUpload) -> dict[str, str]:
    return {
        "Tus-Resumable": tus.TUS_VERSION,
        "Upload-Offset": str(state.offset),
        "Upload-Expires": format_datetime(state.expires_at, usegmt=True),
    }


@router.options("", status_code=204, responses={204: {"description": "What this server takes."}})
@router.options("/{resumable_id}", status_code=204, include_in_schema=False)
def upload_capabilities(
    upload_id: UploadIdPath, actor: ActorDep, session: SessionDep, settings: SettingsDep
) -> Response:
    """What this server's tus uploads take: the version, the extensions, the checksum
    algorithm and `Tus-Max-Size`, the largest upload this workspace accepts."""
    largest = tus.resumable_max_size(
        session, actor, upload_id, max_upload_bytes=settings.max_upload_bytes
    )
    headers = {
        "Tus-Resumable": tus.TUS_VERSION,
        "Tus-Version": tus.TUS_VERSION,
        "Tus-Extension": ",".join(tus.TUS_EXTENSIONS),
        "Tus-Checksum-Algorithm": ",".join(tus.CHECKSUM_ALGORITHMS),
        "Tus-Max-Size": str(largest),
    }
    return Response(status_code=204, headers=headers)


@router.post(
    "",
    status_code=201,
    response_class=Response,
    responses={201: {"description": "Created; `Location` is the upload's URL."}, **PATCH_ERRORS},
    openapi_extra=_body_openapi(required=False),
)
def create_upload(
    upload_id: UploadIdPath,
    request: Request,
    work: WorkflowDep,
    resumable: ResumableDep,
    settings: SettingsDep,
    rebuild: calls.RebuildDep,
    length: Annotated[
        int | None,
        Header(alias="Upload-Length", ge=0, le=2**63 - 1, description="The file's size."),
    ] = None,
    metadata: Annotated[
        str | None,
        Header(
            alias="Upload-Metadata",
            description="'filename <base64>', and optionally 'archive <base64>' and "
            "'ancillary <base64 of true>', comma-separated.",
        ),
    ] = None,
    checksum: ChecksumHeader = None,
) -> Response:
    """Start a resumable upload of one file or archive of `Upload-Length` bytes (at most
    `Tus-Max-Size`). Send its bytes with PATCH to `Location`; a body of type
    `application/offset+octet-stream` here sends the first ones at once. When the last byte
    arrives, the file is unpacked and checked like any upload into this workspace."""
    if length is None:
        raise BadRequest("Send the file's size as Upload-Length (deferred lengths are not taken).")
    body = None
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == OFFSET_STREAM:
        body = _body(request)
    elif _declared_size(request) or "transfer-encoding" in request.headers:
        raise UnsupportedMedia(f"A body sent with the creation must be {OFFSET_STREAM}.")
    state = tus.create_upload(
        work.uow,
        work.blobs,
        work.actor,
        upload_id,
        length=length,
        metadata=metadata or "",
        resumable=resumable,
        body=body,
        declared_size=_declared_size(request),
        checksum=tus.parse_checksum(checksum),
    )
    if state.workspace is not None:
        rebuild.after(state.workspace)
    location = f"{settings.base_url}{router.prefix.format(upload_id=upload_id)}/{state.id}"
    return Response(status_code=201, headers={**_state_headers(state), "Location": location})


@router.head(
    "/{resumable_id}",
    response_class=Response,
    responses={
        200: {"description": "`Upload-Offset` and `Upload-Length` tell the state."},
        **TUS_ERRORS,
    },
)
def get_upload_offset(
    upload_id: UploadIdPath, resumable_id: ResumableIdPath, actor: ActorDep, session: SessionDep
) -> Response:
    """How many bytes of the upload the server holds durably (`Upload-Offset`): resume from
    there. An expired upload answers 410."""
    state = tus.upload_status(session, actor, upload_id, resumable_id)
    headers = {**_state_headers(state), "Upload-Length": str(state.length)}
    headers["Cache-Control"] = "no-store"
    if state.metadata:
        headers["Upload-Metadata"] = state.metadata
    return Response(status_code=200, headers=headers)


@router.patch(
    "/{resumable_id}",
    status_code=204,
    responses={204: {"description": "Stored; `Upload-Offset` is the new offset."}, **PATCH_ERRORS},
    openapi_extra=_body_openapi(required=True),
)
def append_upload(
    upload_id: UploadIdPath,
    resumable_id: ResumableIdPath,
    request: Request,
    work: WorkflowDep,
    resumable: ResumableDep,
    rebuild: calls.RebuildDep,
    offset: OffsetHeader = None,
    checksum: ChecksumHeader = None,
) -> Response:
    """Append bytes at `Upload-Offset`, which must be the upload's offset (409 otherwise, as
    while another request writes it). With `Upload-Checksum` the bytes are kept only if they
    match (460). Bytes past `Upload-Length` are refused (413). The answer after the last byte
    comes once the file has been processed; the workspace then shows its findings."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != OFFSET_STREAM:
        raise UnsupportedMedia(f"PATCH bodies must be {OFFSET_STREAM}.")
    if offset is None:
        raise BadRequest("Send Upload-Offset: where these bytes go (HEAD tells it).")
    state = tus.append_upload(
        work.uow,
        work.blobs,
        work.actor,
        upload_id,
        resumable_id,
        offset=offset,
        body=_body(request),
        resumable=resumable,
        declared_size=_declared_size(request),
        checksum=tus.parse_checksum(checksum),
    )
    if state.workspace is not None:
        rebuild.after(state.workspace)
    return Response(status_code=204, headers=_state_headers(state))


@router.delete("/{resumable_id}", status_code=204, responses=TUS_ERRORS)
def terminate_upload(
    upload_id: UploadIdPath,
    resumable_id: ResumableIdPath,
    work: WorkflowDep,
    resumable: ResumableDep,
) -> Response:
    """Abandon the upload: its bytes are deleted and its URL answers 404."""
    tus.terminate_upload(work.uow, work.actor, upload_id, resumable_id, resumable=resumable)
    return Response(status_code=204, headers={"Tus-Resumable": tus.TUS_VERSION})
