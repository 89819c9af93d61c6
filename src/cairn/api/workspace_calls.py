"""The workspace calls both workspace routers make, the native one and the arXiv file
manager's: each turns the request into one service call, or a service answer into a download.

Here rather than in ``api/downloads.py`` and ``api/uploads.py``, which stay generic for every
area that serves blobs or receives uploads.
"""

from __future__ import annotations

from fastapi import Request, Response
from sqlalchemy.orm import Session

from cairn.accounts.service import Actor
from cairn.api.deps import Workflow
from cairn.api.downloads import blob_response, client_has
from cairn.api.uploads import receive_upload
from cairn.blobs import BlobStore
from cairn.workspaces import service
from cairn.workspaces.service import FileDownload, Package

__all__ = ["file_download", "file_response", "package", "package_response", "upload"]


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
    headers: dict[str, str] | None = None,
) -> Response:
    return blob_response(
        request,
        blobs,
        sha256=package.sha256,
        size=package.size,
        etag=package.checksum,
        modified=package.modified_at,
        filename=f"{package.workspace_id}.tar.gz",
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
