"""The workspace calls both workspace routers make, the native one and the arXiv file
manager's: each turns the request into one service call, or a service answer into a download.

Here rather than in ``api/downloads.py`` and ``api/uploads.py``, which stay generic for every
area that serves blobs or receives uploads.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import BackgroundTasks, Depends, Request, Response
from sqlalchemy.orm import Session

from cairn.accounts.service import Actor
from cairn.api.deps import Workflow
from cairn.api.downloads import blob_response, client_has
from cairn.api.uploads import receive_upload
from cairn.blobs import BlobStore
from cairn.workspaces import service
from cairn.workspaces.schemas import checkpoint_filename
from cairn.workspaces.service import FileDownload, Package

__all__ = [
    "Rebuild",
    "RebuildDep",
    "checkpoint_package",
    "checkpoint_package_response",
    "file_download",
    "file_response",
    "package",
    "package_response",
    "removed_download",
    "upload",
    "upload_after_checkpoint",
]


def upload(
    request: Request,
    work: Workflow,
    workspace_id: int | None = None,
    *,
    default_archive: str | None = None,
) -> service.WorkspaceView:
    """The upload route's one service call, with the body received from ``request``;
    ``default_archive`` is a new workspace's target when the upload names none."""
    return service.upload(
        work.uow,
        work.blobs,
        work.actor,
        receive_upload(request, work.work_dir),
        work_dir=work.work_dir,
        workspace_id=workspace_id,
        default_archive=default_archive,
    )


def file_response(
    request: Request,
    blobs: BlobStore,
    download: FileDownload,
    *,
    headers: dict[str, str] | None = None,
) -> Response:
    item = download.file
    return blob_response(
        request,
        blobs,
        sha256=item.sha256,
        size=item.size,
        etag=item.sha256,
        modified=item.modified_at,
        filename=item.public_path.rsplit("/", 1)[-1],
        headers=headers,
    )


def package_response(
    request: Request,
    blobs: BlobStore,
    package: Package,
    *,
    filename: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """A package as a download, named ``<workspace id>.tar.gz`` unless ``filename`` says."""
    return blob_response(
        request,
        blobs,
        sha256=package.sha256,
        size=package.size,
        etag=package.checksum,
        modified=package.modified_at,
        filename=filename or f"{package.workspace_id}.tar.gz",
        media_type="application/gzip",
        headers=headers,
    )


def package(request: Request, work: Workflow, workspace_id: int) -> Package:
    """The package route's one service call: a GET builds, a HEAD never does."""
    return service.get_package(
        work.uow,
        work.blobs,
        work.actor,
        workspace_id,
        work_dir=work.work_dir,
        build=request.method == "GET",
        client_has=client_has(request),
    )


def file_download(
    request: Request, session: Session, actor: Actor, workspace_id: int, path: str
) -> FileDownload:
    """The file content route's one service call: a GET without a matching ETag is logged."""
    return service.file_download(
        session,
        actor,
        workspace_id,
        path,
        read=request.method == "GET",
        client_has=client_has(request),
    )


# --- checkpoints (issue #13, section 4) ---------------------------------------------------------


def upload_after_checkpoint(
    request: Request, work: Workflow, workspace_id: int
) -> service.WorkspaceView:
    """arXiv's ``checkpoint_with_upload``: one service call, the body received from ``request``."""
    return service.upload_after_checkpoint(
        work.uow,
        work.blobs,
        work.actor,
        receive_upload(request, work.work_dir),
        work_dir=work.work_dir,
        workspace_id=workspace_id,
    )


def checkpoint_package(request: Request, work: Workflow, workspace_id: int, key: str) -> Package:
    """The checkpoint package route's one service call: a GET builds, a HEAD never does."""
    return service.checkpoint_package(
        work.uow,
        work.blobs,
        work.actor,
        workspace_id,
        key,
        work_dir=work.work_dir,
        build=request.method == "GET",
        client_has=client_has(request),
    )


def checkpoint_package_response(
    request: Request,
    blobs: BlobStore,
    package: Package,
    *,
    headers: dict[str, str] | None = None,
) -> Response:
    """A checkpoint's package, named after the workspace and the checkpoint's checksum."""
    filename = checkpoint_filename(package.workspace_id, package.checksum)
    return package_response(request, blobs, package, filename=filename, headers=headers)


# --- removed files (issue #13, section 3) -------------------------------------------------------


def removed_download(
    request: Request, session: Session, actor: Actor, workspace_id: int, entry_id: str
) -> FileDownload:
    """The removed file route's one service call, as a file download (a GET sending the
    bytes is logged)."""
    entry, workspace = service.find_removed(
        session,
        actor,
        workspace_id,
        entry_id,
        read=request.method == "GET",
        client_has=client_has(request),
    )
    record = service.FileRecord(
        0, entry.public_path, entry.sha256, entry.size, entry.file_type, entry.modified_at
    )
    return FileDownload(record, workspace.owner_id)


# --- background package builds (issue #13, section 6) -------------------------------------------


class Rebuild:
    """Queues the workspace's package build for after the response is sent, which is after the
    request's transaction has committed, so the build reads the change it follows."""

    def __init__(self, request: Request, background: BackgroundTasks) -> None:
        self._builder: service.PackageBuilder = request.app.state.package_builder
        self._background = background

    def after(self, view: service.WorkspaceView) -> None:
        """The content may have changed: build its package in the background."""
        self._background.add_task(self._builder.submit, view.workspace.id)

    def if_missing(self, view: service.WorkspaceView) -> None:
        """A summary is shown without a package size and no build runs (a server restarted
        mid-build, say): start one, so the size shows null only while a build runs."""
        workspace = view.workspace
        cached = workspace.package_sha256 and workspace.package_checksum == workspace.checksum
        if (
            workspace.file_count
            and workspace.state != service.DELETED
            and not cached
            and not self._builder.building(workspace.id)
        ):
            self.after(view)


RebuildDep = Annotated[Rebuild, Depends(Rebuild)]
