"""Upload workspaces, cairn's own API: create, upload, inspect, download, lock, release, delete.

Every operation of the arXiv-style ``/filemanager/api`` (api/compat/filemanager.py) is here in
cairn's names; both call the same ``cairn.workspaces.service`` functions.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from cairn.api import workspace_calls as calls
from cairn.api.deps import (
    ActorDep,
    BlobsDep,
    SessionDep,
    SettingsDep,
    UploadIdPath,
    WorkflowDep,
)
from cairn.api.downloads import (
    FILE_RESPONSES,
    PACKAGE_RESPONSES,
)
from cairn.api.paging import Page, PageDep, page_of
from cairn.api.uploads import UPLOAD_FIELDS, upload_openapi
from cairn.workspaces import service
from cairn.workspaces.schemas import (
    CheckpointRead,
    FileRead,
    LogEntryRead,
    RemovedFileRead,
    WorkspaceBrief,
    WorkspaceCreate,
    WorkspaceRead,
    brief,
    checkpoint_read,
    file_read,
    removed_read,
    workspace_read,
)

router = APIRouter(prefix="/api/v1/workspaces", tags=["workspaces"])


@router.get("", response_model=Page[WorkspaceBrief])
def list_workspaces(
    actor: ActorDep,
    session: SessionDep,
    paging: PageDep,
    organisation_id: Annotated[
        str | None, Query(max_length=64, description="Only this organisation's.")
    ] = None,
    mine: Annotated[bool, Query(description="Only workspaces you created.")] = False,
) -> Page[WorkspaceBrief]:
    """Workspaces of your organisations, newest first."""
    items, total = service.list_workspaces(
        session,
        actor,
        organisation_id=organisation_id,
        mine=mine,
        page=paging.page,
        page_size=paging.page_size,
    )
    return page_of(items, total, paging, brief)


@router.post("", status_code=201, response_model=WorkspaceRead)
def create_workspace(
    body: WorkspaceCreate, actor: ActorDep, session: SessionDep, settings: SettingsDep
) -> Response:
    """An empty workspace. To create one with content in one step, use `POST …/upload`."""
    view = service.create_workspace(
        session, actor, organisation_id=body.organisation_id, archive=body.archive
    )
    return _created(settings.base_url, workspace_read(view))


@router.post(
    "/upload", status_code=201, response_model=WorkspaceRead, openapi_extra=upload_openapi()
)
def upload_new(
    request: Request,
    work: WorkflowDep,
    settings: SettingsDep,
    rebuild: calls.RebuildDep,
) -> Response:
    """Create a workspace from a file or archive (.tar, .tar.gz, .tar.bz2, .tar.xz, .zip, .gz):
    unpacked, sanitized and checked. A fatal finding still creates the workspace, with status
    ERRORS and no files, so you can read why; a refused request creates nothing."""
    view = calls.upload(request, work)
    rebuild.after(view)
    return _created(settings.base_url, workspace_read(view))


def _created(public_url: str, read: WorkspaceRead) -> Response:
    return Response(
        read.model_dump_json(),
        status_code=201,
        media_type="application/json",
        headers={"Location": f"{public_url}{router.prefix}/{read.id}"},
    )


@router.get("/{upload_id}", response_model=WorkspaceRead)
def get_workspace(
    upload_id: UploadIdPath, actor: ActorDep, session: SessionDep, rebuild: calls.RebuildDep
) -> WorkspaceRead:
    """The workspace: states, status, checksum and the findings of its latest operation.
    `package_size` is null only while the package is being built, after each change."""
    view = service.view_workspace(session, actor, upload_id, files=False)
    rebuild.if_missing(view)
    return workspace_read(view)


@router.delete("/{upload_id}", response_model=WorkspaceRead)
def delete_workspace(
    upload_id: UploadIdPath, actor: ActorDep, session: SessionDep
) -> WorkspaceRead:
    """Delete the workspace's files and keep its record (state DELETED). A second delete is 404.
    Needs the `manage` privilege unless you created it."""
    return workspace_read(service.delete_workspace(session, actor, upload_id))


@router.post(
    "/{upload_id}/files",
    status_code=201,
    response_model=WorkspaceRead,
    openapi_extra=upload_openapi(
        {k: v for k, v in UPLOAD_FIELDS.items() if k != "organisation_id"}
    ),
)
def upload_files(
    upload_id: UploadIdPath,
    request: Request,
    work: WorkflowDep,
    rebuild: calls.RebuildDep,
) -> WorkspaceRead:
    """Add a file or archive to an active, unlocked workspace; files with the same path are
    replaced. A fatal finding leaves the workspace's files unchanged."""
    view = calls.upload(request, work, upload_id)
    rebuild.after(view)
    return workspace_read(view)


@router.get("/{upload_id}/files", response_model=Page[FileRead])
def list_files(
    upload_id: UploadIdPath, actor: ActorDep, session: SessionDep, paging: PageDep
) -> Page[FileRead]:
    """The workspace's current files, by path."""
    items, total = service.page_files(
        session, actor, upload_id, page=paging.page, page_size=paging.page_size
    )
    return page_of(items, total, paging, file_read)


@router.delete("/{upload_id}/files", response_model=WorkspaceRead)
def delete_all_files(
    upload_id: UploadIdPath, actor: ActorDep, session: SessionDep, rebuild: calls.RebuildDep
) -> WorkspaceRead:
    """Delete every file of the workspace."""
    view = service.delete_all_files(session, actor, upload_id)
    rebuild.after(view)
    return workspace_read(view)


@router.get("/{upload_id}/files/{path:filepath}", response_model=FileRead)
def get_file(upload_id: UploadIdPath, path: str, actor: ActorDep, session: SessionDep) -> FileRead:
    """One file's path, size, detected type, SHA-256 and modification time."""
    return file_read(service.file_download(session, actor, upload_id, path, read=False).file)


@router.delete("/{upload_id}/files/{path:filepath}", response_model=WorkspaceRead)
def delete_file(
    upload_id: UploadIdPath,
    path: str,
    actor: ActorDep,
    session: SessionDep,
    rebuild: calls.RebuildDep,
) -> WorkspaceRead:
    """Delete one file."""
    view = service.delete_file(session, actor, upload_id, path)
    rebuild.after(view)
    return workspace_read(view)


@router.get("/{upload_id}/content/{path:filepath}", responses=FILE_RESPONSES)
@router.head("/{upload_id}/content/{path:filepath}", include_in_schema=False)
def get_file_content(
    upload_id: UploadIdPath,
    path: str,
    request: Request,
    actor: ActorDep,
    session: SessionDep,
    blobs: BlobsDep,
) -> Response:
    """One file's bytes. Its `ETag` is the file's SHA-256; `If-None-Match` answers 304, and
    HEAD the headers alone."""
    found = calls.file_download(request, session, actor, upload_id, path)
    return calls.file_response(request, blobs, found)


@router.get("/{upload_id}/package", responses=PACKAGE_RESPONSES)
@router.head("/{upload_id}/package", include_in_schema=False)
def get_package(
    upload_id: UploadIdPath,
    request: Request,
    work: WorkflowDep,
) -> Response:
    """The whole workspace as one deterministic .tar.gz, built on demand and cached until the
    content changes. `ETag` is the workspace checksum; `If-None-Match` answers 304. HEAD has
    no side effect: it builds nothing, and gives `Content-Length` once a package is built."""
    package = calls.package(request, work, upload_id)
    return calls.package_response(request, work.blobs, package)


@router.get("/{upload_id}/log", response_model=list[LogEntryRead])
def get_log(upload_id: UploadIdPath, actor: ActorDep, session: SessionDep) -> list[LogEntryRead]:
    """The workspace's source log: every action, request, warning and error, oldest first."""
    return [LogEntryRead.model_validate(e) for e in service.read_log(session, actor, upload_id)]


# --- checkpoints (issue #13, section 4) ---------------------------------------------------------
# Declared before `POST /{upload_id}/{action}`: routes match in order, and that one would take
# `POST …/checkpoints` for an unknown action.

CheckpointIdPath = Annotated[
    str,
    Path(
        min_length=1,
        max_length=64,
        description="The checkpoint's id, or its checksum (as the file manager API names it).",
    ),
]


@router.post(
    "/{upload_id}/checkpoints",
    status_code=201,
    response_model=CheckpointRead,
    responses={200: {"description": "This content had a checkpoint already: that one."}},
)
def save_checkpoint(
    upload_id: UploadIdPath, actor: ActorDep, session: SessionDep, settings: SettingsDep
) -> Response:
    """Save the workspace's current files as a checkpoint, to restore later. It shares the
    files' stored bytes (nothing is copied). Saving content that already has a checkpoint
    answers that one (200). A workspace keeps at most 10 checkpoints: an eleventh is 409."""
    saved = service.save_checkpoint(session, actor, upload_id)
    read = checkpoint_read(saved.checkpoint)
    return Response(
        read.model_dump_json(),
        status_code=201 if saved.created else 200,
        media_type="application/json",
        headers={
            "Location": f"{settings.base_url}{router.prefix}/{upload_id}/checkpoints/{read.id}"
        },
    )


@router.get("/{upload_id}/checkpoints", response_model=Page[CheckpointRead])
def list_checkpoints(
    upload_id: UploadIdPath, actor: ActorDep, session: SessionDep, paging: PageDep
) -> Page[CheckpointRead]:
    """The workspace's checkpoints, newest first."""
    items, total = service.page_checkpoints(
        session, actor, upload_id, page=paging.page, page_size=paging.page_size
    )
    return page_of(items, total, paging, checkpoint_read)


@router.delete("/{upload_id}/checkpoints", status_code=204)
def delete_all_checkpoints(upload_id: UploadIdPath, actor: ActorDep, session: SessionDep) -> None:
    """Delete every checkpoint of the workspace; its current files stay as they are."""
    service.delete_all_checkpoints(session, actor, upload_id)


@router.get("/{upload_id}/checkpoints/{checkpoint_id}", response_model=CheckpointRead)
def get_checkpoint(
    upload_id: UploadIdPath, checkpoint_id: CheckpointIdPath, actor: ActorDep, session: SessionDep
) -> CheckpointRead:
    """One checkpoint: when it was saved, by whom, its files' count and size."""
    return checkpoint_read(service.find_checkpoint(session, actor, upload_id, checkpoint_id))


@router.delete("/{upload_id}/checkpoints/{checkpoint_id}", status_code=204)
def delete_checkpoint(
    upload_id: UploadIdPath, checkpoint_id: CheckpointIdPath, actor: ActorDep, session: SessionDep
) -> None:
    """Delete one checkpoint; the workspace's current files stay as they are."""
    service.delete_checkpoint(session, actor, upload_id, checkpoint_id)


@router.post("/{upload_id}/checkpoints/{checkpoint_id}/restore", response_model=WorkspaceRead)
def restore_checkpoint(
    upload_id: UploadIdPath,
    checkpoint_id: CheckpointIdPath,
    actor: ActorDep,
    session: SessionDep,
    rebuild: calls.RebuildDep,
) -> WorkspaceRead:
    """Make the workspace's files exactly the checkpoint's (files added since are removed),
    recorded in the log. A locked or released workspace refuses (403)."""
    view = service.restore_checkpoint(session, actor, upload_id, checkpoint_id)
    rebuild.after(view)
    return workspace_read(view)


@router.get("/{upload_id}/checkpoints/{checkpoint_id}/package", responses=PACKAGE_RESPONSES)
@router.head("/{upload_id}/checkpoints/{checkpoint_id}/package", include_in_schema=False)
def get_checkpoint_package(
    upload_id: UploadIdPath,
    checkpoint_id: CheckpointIdPath,
    request: Request,
    work: WorkflowDep,
) -> Response:
    """The checkpoint's files as one deterministic .tar.gz (the workspace's package as it was),
    built on first download. `ETag` is the checkpoint's checksum; `If-None-Match` answers
    304; HEAD builds nothing."""
    package = calls.checkpoint_package(request, work, upload_id, checkpoint_id)
    return calls.checkpoint_package_response(request, work.blobs, package)


# --- removed files: the quarantine (issue #13, section 3) ----------------------------------------

RemovedIdPath = Annotated[
    str, Path(min_length=1, max_length=64, description="The removed file's id (from the list).")
]


@router.get("/{upload_id}/removed", response_model=Page[RemovedFileRead])
def list_removed(
    upload_id: UploadIdPath, actor: ActorDep, session: SessionDep, paging: PageDep
) -> Page[RemovedFileRead]:
    """The files the checks removed from your uploads, or that a later upload replaced, newest
    first: nothing removed is lost. Only the workspace's owner (or a manager) sees them."""
    items, total = service.page_removed(
        session, actor, upload_id, page=paging.page, page_size=paging.page_size
    )
    return page_of(items, total, paging, removed_read)


@router.get("/{upload_id}/removed/{entry_id}", response_model=RemovedFileRead)
def get_removed(
    upload_id: UploadIdPath, entry_id: RemovedIdPath, actor: ActorDep, session: SessionDep
) -> RemovedFileRead:
    """One removed file: where it was, which check removed it and why."""
    entry, _ = service.find_removed(session, actor, upload_id, entry_id)
    return removed_read(entry)


@router.get("/{upload_id}/removed/{entry_id}/content", responses=FILE_RESPONSES)
@router.head("/{upload_id}/removed/{entry_id}/content", include_in_schema=False)
def get_removed_content(
    upload_id: UploadIdPath,
    entry_id: RemovedIdPath,
    request: Request,
    actor: ActorDep,
    session: SessionDep,
    blobs: BlobsDep,
) -> Response:
    """A removed file's bytes, as they were when it was removed. `ETag` is its SHA-256."""
    found = calls.removed_download(request, session, actor, upload_id, entry_id)
    return calls.file_response(request, blobs, found)


@router.post("/{upload_id}/removed/{entry_id}/restore", response_model=WorkspaceRead)
def restore_removed(
    upload_id: UploadIdPath,
    entry_id: RemovedIdPath,
    work: WorkflowDep,
    rebuild: calls.RebuildDep,
    path: Annotated[
        str | None,
        Query(min_length=1, max_length=1024, description="Restore under this path instead."),
    ] = None,
    overwrite: Annotated[
        bool, Query(description="Replace a current file of that name (it is kept as removed).")
    ] = False,
) -> WorkspaceRead:
    """Put a removed file back, through the same checks as an upload. A current file of the
    same name is a 409 unless `overwrite=true` (the replaced file is then kept as removed);
    a check that would remove or refuse it again is a 422 naming it (restore it under another
    `path`, or download it). A locked or released workspace refuses (403)."""
    view = service.restore_removed(
        work.uow,
        work.blobs,
        work.actor,
        upload_id,
        entry_id,
        work_dir=work.work_dir,
        path=path,
        overwrite=overwrite,
    )
    rebuild.after(view)
    return workspace_read(view)


@router.post("/{upload_id}/{action}", response_model=WorkspaceRead)
def change_state(
    upload_id: UploadIdPath, action: service.StateAction, actor: ActorDep, session: SessionDep
) -> WorkspaceRead:
    """`lock`: no uploads or deletions until `unlock`. `release`: you are done with the
    workspace and it can no longer change, until `unrelease`. Repeating one is harmless."""
    view, _ = service.change_state(session, actor, upload_id, action)
    return workspace_read(view)
