"""arXiv file manager API (``/filemanager/api``) on top of cairn's upload workspaces.

Paths, field names, status codes and messages follow the arXiv file manager, so its clients
work unchanged; errors also carry arXiv's ``reason``. Each handler makes one
``cairn.workspaces.service`` call (the same as cairn's own API, api/routes/workspaces.py) and
only translates: the request into its arguments, the answer into arXiv's summary.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse

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
    http_date,
)
from cairn.api.errors import Problem, ProblemRoute, problem_responses
from cairn.api.uploads import UPLOAD_FIELDS, upload_openapi
from cairn.workspaces import service
from cairn.workspaces.schemas import (
    ArxivCheckpoint,
    LogEntryRead,
    WorkspaceSummary,
    arxiv_checkpoint,
    summarise,
)


class ArxivProblem(Problem):
    """A problem document with arXiv's ``reason`` (the same text as ``detail``)."""

    reason: str


class ArxivRoute(ProblemRoute):
    """Errors on these routes carry ``reason``, as the arXiv file manager's clients expect."""

    @staticmethod
    def render_problem(body: dict[str, Any], headers: Mapping[str, str] | None) -> Response:
        return ProblemRoute.render_problem({**body, "reason": body["detail"]}, headers)


router = APIRouter(
    prefix="/filemanager/api",
    tags=["filemanager"],
    route_class=ArxivRoute,
    responses=problem_responses(ArxivProblem),
)

_LOG_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The log as text, or as JSON entries with `Accept: application/json`.",
        "content": {
            "text/plain": {"schema": {"type": "string"}},
            "application/json": {
                "schema": {"type": "array", "items": {"$ref": "#/components/schemas/LogEntryRead"}}
            },
        },
    }
}


def _owner(owner_id: str) -> dict[str, str]:
    return {"ARXIV-OWNER": owner_id, "X-Cairn-Owner": owner_id}


def _answer(
    view: service.WorkspaceView,
    *,
    status: int = 200,
    reason: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    workspace = view.workspace
    summary = summarise(view, reason=reason)
    # Serialised by pydantic's own encoder: a summary can list tens of thousands of files.
    return Response(
        summary.model_dump_json(exclude={"reason"} if reason is None else None),
        status_code=status,
        media_type="application/json",
        headers={
            **_owner(workspace.owner_id),
            "ETag": f'"{workspace.checksum}"',
            "Last-Modified": http_date(workspace.modified_at),
            **(headers or {}),
        },
    )


@router.post("", status_code=201, response_model=WorkspaceSummary, openapi_extra=upload_openapi())
def create_upload(
    request: Request,
    work: WorkflowDep,
    settings: SettingsDep,
    rebuild: calls.RebuildDep,
) -> Response:
    """Create a workspace and process a file or archive (.tar, .tar.gz, .tar.bz2, .tar.xz,
    .zip, .gz) into it: unpacked, sanitized and checked. Answers 201 with the summary.

    With no `archive` field the workspace gets arXiv's whole rule set and paper limits (target
    `arxiv`), as the arXiv service checks every submission; `archive` picks another target."""
    # The arXiv service applies its rules to every upload (issue #13, section 1).
    view = calls.upload(request, work, default_archive=service.ARXIV_TARGET)
    rebuild.after(view)
    location = f"{settings.base_url}{router.prefix}/{view.workspace.id}"
    return _answer(view, status=201, headers={"Location": location})


@router.get("/{upload_id}", response_model=WorkspaceSummary)
def get_upload(
    upload_id: UploadIdPath, actor: ActorDep, session: SessionDep, rebuild: calls.RebuildDep
) -> Response:
    """The workspace summary: files, warnings and errors, states and checksum.
    `upload_compressed_size` is null only while the package is being built, after each
    change."""
    view = service.view_workspace(session, actor, upload_id)
    rebuild.if_missing(view)
    return _answer(view)


@router.post(
    "/{upload_id}",
    status_code=201,
    response_model=WorkspaceSummary,
    openapi_extra=upload_openapi(
        {k: v for k, v in UPLOAD_FIELDS.items() if k != "organisation_id"}
    ),
)
def add_upload(
    upload_id: UploadIdPath,
    request: Request,
    work: WorkflowDep,
    rebuild: calls.RebuildDep,
) -> Response:
    """Add a file or archive to an existing, active and unlocked workspace; files with the same
    path are replaced. A fatal problem leaves the workspace's files unchanged."""
    view = calls.upload(request, work, upload_id)
    rebuild.after(view)
    return _answer(view, status=201)


@router.get("/{upload_id}/content", responses=PACKAGE_RESPONSES)
@router.head("/{upload_id}/content", include_in_schema=False)
def get_content(
    upload_id: UploadIdPath,
    request: Request,
    work: WorkflowDep,
) -> Response:
    """The whole workspace as one gzipped tar, built on demand and cached until the content
    changes. `ETag` is the workspace checksum; `If-None-Match` answers 304."""
    package = calls.package(request, work, upload_id)
    return calls.package_response(request, work.blobs, package, headers=_owner(package.owner_id))


@router.get("/{upload_id}/log", responses=_LOG_RESPONSES)
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


@router.post("/{upload_id}/delete_all", response_model=WorkspaceSummary)
def delete_all(
    upload_id: UploadIdPath, actor: ActorDep, session: SessionDep, rebuild: calls.RebuildDep
) -> Response:
    """Delete every file in the workspace (the arXiv service's form)."""
    view = service.delete_all_files(session, actor, upload_id)
    rebuild.after(view)
    return _answer(view, reason="deleted all files")


@router.delete("/{upload_id}/delete_all", response_model=WorkspaceSummary)
def delete_all_or_file(
    upload_id: UploadIdPath, actor: ActorDep, session: SessionDep, rebuild: calls.RebuildDep
) -> Response:
    """Delete every file in the workspace; if it holds a file named `delete_all`, only that
    file (the arXiv service reads this path as that file's)."""
    view, done = service.delete_named_or_all(session, actor, upload_id, "delete_all")
    rebuild.after(view)
    return _answer(view, reason=done)


# --- checkpoints (issue #13, section 4), under the later arXiv service's route names ------------
# Declared before `POST /{upload_id}/{action}` and `DELETE /{upload_id}/{public_file_path}`,
# which would otherwise take these paths.

ChecksumPath = Annotated[
    str,
    Path(
        min_length=1,
        max_length=64,
        description="The checkpoint's checksum (as list_checkpoints names it), or its id.",
    ),
]


@router.post("/{upload_id}/checkpoint", response_model=ArxivCheckpoint)
def create_checkpoint(upload_id: UploadIdPath, actor: ActorDep, session: SessionDep) -> Response:
    """Save the current files as a checkpoint and answer it with its `checksum` (also the
    `ETag`). 400 "workspace is empty"; an eleventh checkpoint is 409 (arXiv answers '')."""
    checkpoint = service.save_checkpoint(session, actor, upload_id).checkpoint
    return Response(
        arxiv_checkpoint(checkpoint).model_dump_json(),
        media_type="application/json",
        headers={"ETag": f'"{checkpoint.checksum}"'},
    )


@router.post(
    "/{upload_id}/checkpoint_with_upload",
    status_code=201,
    response_model=WorkspaceSummary,
    openapi_extra=upload_openapi(
        {k: v for k, v in UPLOAD_FIELDS.items() if k != "organisation_id"}
    ),
)
def checkpoint_with_upload(
    upload_id: UploadIdPath,
    request: Request,
    work: WorkflowDep,
    rebuild: calls.RebuildDep,
) -> Response:
    """Save a checkpoint of the current files, then add the file or archive as `POST
    /{upload_id}` does."""
    view = calls.upload_after_checkpoint(request, work, upload_id)
    rebuild.after(view)
    return _answer(view, status=201)


@router.get("/{upload_id}/list_checkpoints", response_model=list[ArxivCheckpoint])
def list_checkpoints(
    upload_id: UploadIdPath, actor: ActorDep, session: SessionDep
) -> list[ArxivCheckpoint]:
    """The workspace's checkpoints (at most 10), newest first."""
    return [arxiv_checkpoint(c) for c in service.list_checkpoints(session, actor, upload_id)]


@router.get(
    "/{upload_id}/restore_checkpoint/{checkpoint_checksum}", response_model=WorkspaceSummary
)
@router.post(
    "/{upload_id}/restore_checkpoint/{checkpoint_checksum}",
    response_model=WorkspaceSummary,
    include_in_schema=False,
)
def restore_checkpoint(
    upload_id: UploadIdPath,
    checkpoint_checksum: ChecksumPath,
    actor: ActorDep,
    session: SessionDep,
    rebuild: calls.RebuildDep,
) -> Response:
    """Make the workspace's files exactly the checkpoint's, recorded in the log. A GET, as the
    arXiv service has it (POST works too). A locked or released workspace refuses (403)."""
    view = service.restore_checkpoint(session, actor, upload_id, checkpoint_checksum)
    rebuild.after(view)
    return _answer(view, reason="restored checkpoint")


@router.delete(
    "/{upload_id}/delete_checkpoint/{checkpoint_checksum}", response_model=WorkspaceSummary
)
def delete_checkpoint(
    upload_id: UploadIdPath,
    checkpoint_checksum: ChecksumPath,
    actor: ActorDep,
    session: SessionDep,
) -> Response:
    """Delete one checkpoint; the workspace's files stay as they are."""
    view = service.delete_checkpoint(session, actor, upload_id, checkpoint_checksum)
    return _answer(view, reason="deleted checkpoint")


@router.post("/{upload_id}/delete_all_checkpoints", response_model=WorkspaceSummary)
def delete_all_checkpoints(
    upload_id: UploadIdPath, actor: ActorDep, session: SessionDep
) -> Response:
    """Delete every checkpoint of the workspace; its files stay as they are."""
    view, _ = service.delete_all_checkpoints(session, actor, upload_id)
    return _answer(view, reason="deleted all checkpoints")


@router.get("/{upload_id}/checkpoint/{checkpoint_checksum}", responses=PACKAGE_RESPONSES)
@router.head("/{upload_id}/checkpoint/{checkpoint_checksum}", include_in_schema=False)
def get_checkpoint_content(
    upload_id: UploadIdPath,
    checkpoint_checksum: ChecksumPath,
    request: Request,
    work: WorkflowDep,
) -> Response:
    """The checkpoint's files as one gzipped tar. `ETag` is the checkpoint's checksum;
    `If-None-Match` answers 304."""
    package = calls.checkpoint_package(request, work, upload_id, checkpoint_checksum)
    return calls.checkpoint_package_response(
        request, work.blobs, package, headers=_owner(package.owner_id)
    )


@router.post("/{upload_id}/{action}", response_model=WorkspaceSummary)
def change_state(
    upload_id: UploadIdPath, action: service.StateAction, actor: ActorDep, session: SessionDep
) -> Response:
    """`lock`: no uploads or deletions until `unlock`. `release`: you are done with the
    workspace and it can no longer change, until `unrelease`. Repeating one is harmless."""
    view, done = service.change_state(session, actor, upload_id, action)
    return _answer(view, reason=done)


@router.delete("/{upload_id}", response_model=WorkspaceSummary)
def delete_workspace(upload_id: UploadIdPath, actor: ActorDep, session: SessionDep) -> Response:
    """Delete the workspace's files and keep its record (state DELETED). A second delete is 404."""
    return _answer(service.delete_workspace(session, actor, upload_id), reason="deleted workspace")


@router.get("/{upload_id}/{public_file_path:filepath}/content", responses=FILE_RESPONSES)
@router.head("/{upload_id}/{public_file_path:filepath}/content", include_in_schema=False)
def get_file_content(
    upload_id: UploadIdPath,
    public_file_path: str,
    request: Request,
    actor: ActorDep,
    session: SessionDep,
    blobs: BlobsDep,
) -> Response:
    """One file of the workspace; its `ETag` is the file's SHA-256."""
    found = calls.file_download(request, session, actor, upload_id, public_file_path)
    return calls.file_response(request, blobs, found, headers=_owner(found.owner_id))


@router.delete("/{upload_id}/{public_file_path:filepath}", response_model=WorkspaceSummary)
def delete_file(
    upload_id: UploadIdPath,
    public_file_path: str,
    actor: ActorDep,
    session: SessionDep,
    rebuild: calls.RebuildDep,
) -> Response:
    """Delete one file."""
    view = service.delete_file(session, actor, upload_id, public_file_path)
    rebuild.after(view)
    return _answer(view, reason="deleted file")
