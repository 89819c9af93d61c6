"""arXiv file manager API (``/filemanager/api``) on top of cairn's upload workspaces.

Paths, field names, status codes and messages follow the arXiv file manager, so its clients
work unchanged; errors also carry ``reason`` as its clients expect.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, Response, UploadFile
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy.orm import Session

from cairn.accounts.service import Actor
from cairn.api.deps import ActorDep, BlobsDep, SessionDep, SettingsDep, UploadIdPath
from cairn.api.downloads import blob_response, etag_matches, http_date
from cairn.blobs import BlobStore
from cairn.config import Settings
from cairn.errors import BadRequest
from cairn.workspaces import service
from cairn.workspaces.models import Workspace
from cairn.workspaces.schemas import LogEntryRead, WorkspaceSummary, summarise

router = APIRouter(prefix="/filemanager/api", tags=["filemanager"])

FileField = Annotated[UploadFile | None, File(description="The file or archive to upload.")]
ArchiveField = Annotated[
    str | None,
    Form(max_length=100, description="Target archive whose size and type limits apply."),
]
AncillaryField = Annotated[
    str | None, Form(description="'true' to store the files under anc/ as ancillary.")
]
OrganisationField = Annotated[
    str | None,
    Form(
        max_length=64, description="Organisation to create the workspace in (if you have several)."
    ),
]


def _headers(workspace: Workspace) -> dict[str, str]:
    return {
        "ARXIV-OWNER": workspace.owner_id,
        "X-Cairn-Owner": workspace.owner_id,
        "ETag": f'"{workspace.checksum}"',
        "Last-Modified": http_date(workspace.modified_at),
    }


def _answer(
    session: Session,
    workspace: Workspace,
    *,
    status: int = 200,
    reason: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    summary = summarise(service.describe(session, workspace), reason=reason)
    # Serialised by pydantic's own encoder: a summary can list tens of thousands of files.
    return Response(
        summary.model_dump_json(exclude={"reason"} if reason is None else None),
        status_code=status,
        media_type="application/json",
        headers={**_headers(workspace), **(headers or {})},
    )


@dataclass(frozen=True)
class UploadForm:
    """The multipart fields of an upload, checked as the arXiv service checks them."""

    file: UploadFile
    filename: str
    archive: str | None
    ancillary: bool


def _upload_form(
    file: FileField = None, archive: ArchiveField = None, ancillary: AncillaryField = None
) -> UploadForm:
    """arXiv's 400s: no file field, no filename, zero bytes."""
    if file is None:
        raise BadRequest("missing file/archive payload")
    if not file.filename:
        raise BadRequest("file argument missing filename or file not selected")
    if file.size == 0:
        raise BadRequest("file payload is zero length")
    flag = (ancillary or "").strip().lower() in {"true", "1", "yes", "on"}
    return UploadForm(file, file.filename, archive, flag)


UploadDep = Annotated[UploadForm, Depends(_upload_form)]


def _work_dir(settings: Settings) -> Path:
    work = settings.work_dir
    work.mkdir(parents=True, exist_ok=True)
    return work


@contextmanager
def _on_disk(file: UploadFile, work_dir: Path) -> Iterator[Path]:
    """The upload as a named file next to the blob store; removed afterwards."""
    fd, name = tempfile.mkstemp(prefix="upload-", dir=work_dir)
    path = Path(name)
    try:
        with open(fd, "wb") as handle:
            file.file.seek(0)
            shutil.copyfileobj(file.file, handle, 1024 * 1024)
        yield path
    finally:
        path.unlink(missing_ok=True)


def _receive(
    session: Session,
    actor: Actor,
    blobs: BlobStore,
    settings: Settings,
    workspace: Workspace,
    form: UploadForm,
) -> Workspace:
    workspace_id = workspace.id
    existing_total, existing_count = workspace.total_size, workspace.file_count
    archive = form.archive or workspace.archive
    # End the transaction before the slow part: unpacking must not hold the database lock.
    session.commit()
    work_dir = _work_dir(settings)
    with _on_disk(form.file, work_dir) as path:
        prepared = service.prepare_upload(
            blobs,
            path,
            form.filename,
            work_dir=work_dir,
            archive=archive,
            ancillary=form.ancillary,
            existing_total=existing_total,
            existing_count=existing_count,
        )
    return service.apply_upload(session, actor, workspace_id, prepared)


@router.post("", status_code=201, response_model=WorkspaceSummary)
def create_upload(
    request: Request,
    actor: ActorDep,
    session: SessionDep,
    blobs: BlobsDep,
    settings: SettingsDep,
    form: UploadDep,
    organisation_id: OrganisationField = None,
) -> Response:
    """Create a workspace and process a file or archive (.tar, .tar.gz, .tar.bz2, .tar.xz,
    .zip, .gz) into it: unpacked, sanitized and checked. Answers 201 with the summary."""
    workspace = service.create_workspace(
        session, actor, organisation_id=organisation_id, archive=form.archive
    )
    workspace = _receive(session, actor, blobs, settings, workspace, form)
    location = str(request.url_for("get_upload", upload_id=workspace.id))
    return _answer(session, workspace, status=201, headers={"Location": location})


@router.get("/{upload_id}", response_model=WorkspaceSummary)
def get_upload(upload_id: UploadIdPath, actor: ActorDep, session: SessionDep) -> Response:
    """The workspace summary: files, warnings and errors, states and checksum."""
    return _answer(session, service.get_workspace(session, actor, upload_id))


@router.post("/{upload_id}", status_code=201, response_model=WorkspaceSummary)
def add_upload(
    upload_id: UploadIdPath,
    actor: ActorDep,
    session: SessionDep,
    blobs: BlobsDep,
    settings: SettingsDep,
    form: UploadDep,
) -> Response:
    """Add a file or archive to an existing, active and unlocked workspace; files with the same
    path are replaced. A fatal problem leaves the workspace's files unchanged."""
    workspace = service.check_writable(session, actor, upload_id)
    workspace = _receive(session, actor, blobs, settings, workspace, form)
    return _answer(session, workspace, status=201)


@router.get("/{upload_id}/content")
@router.head("/{upload_id}/content", include_in_schema=False)
def get_content(
    upload_id: UploadIdPath,
    request: Request,
    actor: ActorDep,
    session: SessionDep,
    blobs: BlobsDep,
    settings: SettingsDep,
) -> Response:
    """The whole workspace as one gzipped tar, built on demand and cached until the content
    changes. `ETag` is the workspace checksum; `If-None-Match` answers 304."""
    workspace = service.get_workspace(session, actor, upload_id)
    headers = {"ARXIV-OWNER": workspace.owner_id, "X-Cairn-Owner": workspace.owner_id}
    checksum = workspace.checksum or ""
    modified = workspace.modified_at
    if etag_matches(request, checksum) and workspace.file_count:
        return Response(status_code=304, headers={**headers, "ETag": f'"{checksum}"'})
    package = service.cached_package(workspace)
    if package is None:
        checksum, files = service.package_plan(session, actor, upload_id)
        session.commit()  # building may take a while: hold no database lock meanwhile
        package = service.build_package(blobs, files, work_dir=_work_dir(settings))
        service.record_package(session, actor, upload_id, checksum, *package)
    sha256, size = package
    if request.method == "GET":
        service.record_download(session, workspace, actor, f"package ({size} bytes)")
    return blob_response(
        request,
        blobs,
        sha256=sha256,
        size=size,
        etag=checksum,
        modified=modified,
        filename=f"{upload_id}.tar.gz",
        media_type="application/gzip",
        headers=headers,
    )


@router.get("/{upload_id}/log")
@router.head("/{upload_id}/log", include_in_schema=False)
def get_log(
    upload_id: UploadIdPath, request: Request, actor: ActorDep, session: SessionDep
) -> Response:
    """The workspace's source log: every action, request, warning and error, oldest first.
    Plain text; send `Accept: application/json` for structured entries."""
    entries = [LogEntryRead.model_validate(e) for e in service.read_log(session, actor, upload_id)]
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse([e.model_dump(mode="json") for e in entries])
    text = "".join(e.as_text() for e in entries)
    if request.method == "HEAD":
        return Response(
            headers={"Content-Length": str(len(text.encode()))}, media_type="text/plain"
        )
    return PlainTextResponse(text)


@router.delete("/{upload_id}/delete_all", response_model=WorkspaceSummary)
@router.post("/{upload_id}/delete_all", include_in_schema=False)  # the arXiv service's form
def delete_all(upload_id: UploadIdPath, actor: ActorDep, session: SessionDep) -> Response:
    """Delete every file in the workspace (POST, as the arXiv service, or DELETE)."""
    workspace = service.delete_all_files(session, actor, upload_id)
    return _answer(session, workspace, reason="deleted all files")


@router.post("/{upload_id}/{action}")
def change_state(
    upload_id: UploadIdPath, action: service.StateAction, actor: ActorDep, session: SessionDep
) -> Response:
    """`lock`: no uploads or deletions until `unlock`. `release`: you are done with the
    workspace and it can no longer change, until `unrelease`. Repeating one is harmless."""
    workspace, done = service.change_state(session, actor, upload_id, action)
    return _answer(session, workspace, reason=done)


@router.delete("/{upload_id}")
def delete_workspace(upload_id: UploadIdPath, actor: ActorDep, session: SessionDep) -> Response:
    """Delete the workspace's files and keep its record (state DELETED). A second delete is 404."""
    workspace = service.delete_workspace(session, actor, upload_id)
    return _answer(session, workspace, reason="deleted workspace")


@router.get("/{upload_id}/{public_file_path:path}/content")
@router.head("/{upload_id}/{public_file_path:path}/content", include_in_schema=False)
def get_file_content(
    upload_id: UploadIdPath,
    public_file_path: str,
    request: Request,
    actor: ActorDep,
    session: SessionDep,
    blobs: BlobsDep,
) -> Response:
    """One file of the workspace; its `ETag` is the file's SHA-256."""
    workspace = service.get_workspace(session, actor, upload_id)
    item = service.find_file(session, workspace, public_file_path)
    owner = workspace.owner_id
    if request.method == "GET" and not etag_matches(request, item.sha256):
        service.record_download(session, workspace, actor, f"file '{item.public_path}'")
    return blob_response(
        request,
        blobs,
        sha256=item.sha256,
        size=item.size,
        etag=item.sha256,
        modified=item.modified_at,
        filename=public_file_path.rsplit("/", 1)[-1],
        headers={"ARXIV-OWNER": owner, "X-Cairn-Owner": owner},
    )


@router.delete("/{upload_id}/{public_file_path:path}", response_model=WorkspaceSummary)
def delete_file(
    upload_id: UploadIdPath, public_file_path: str, actor: ActorDep, session: SessionDep
) -> Response:
    """Delete one file."""
    workspace = service.delete_file(session, actor, upload_id, public_file_path)
    return _answer(session, workspace, reason="deleted file")
