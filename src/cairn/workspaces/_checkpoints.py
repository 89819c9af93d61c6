"""Workspace checkpoints (issue #13, section 4): save the current file set, list, download,
restore, delete. Re-exported by ``cairn.workspaces.service``; import it from there.

A checkpoint is rows, not bytes: its files reference the same blobs as the workspace did when
it was saved (``BlobHash`` columns, so ``cairn admin gc`` keeps them). It is named by the
manifest checksum of its files, which is also the ETag of its package, and a workspace holds
one checkpoint per distinct content, at most ``MAX_CHECKPOINTS`` (the arXiv service's limit;
where arXiv silently answers '' to an eleventh, cairn refuses it with a Conflict).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from sqlalchemy import String, delete, func, insert, literal, or_, select
from sqlalchemy.orm import Session

from cairn.accounts.service import Actor, Privilege
from cairn.blobs import BlobStore
from cairn.db import UnitOfWork, paginate
from cairn.errors import BadRequest, Conflict, NotFound
from cairn.workspaces._core import (
    DELETED,
    MSG_NOT_FOUND,
    FileRecord,
    Package,
    WorkspaceView,
    _delete_all_rows,
    _refresh_summary,
    _require_writable,
    describe,
    get_workspace,
    list_files,
    log,
    manifest_checksum,
)
from cairn.workspaces._package import PackageFile, build_package
from cairn.workspaces.models import (
    Workspace,
    WorkspaceCheckpoint,
    WorkspaceCheckpointFile,
    WorkspaceFile,
)

__all__ = [
    "MAX_CHECKPOINTS",
    "CheckpointLimit",
    "SavedCheckpoint",
    "checkpoint_files",
    "checkpoint_package",
    "delete_all_checkpoints",
    "delete_checkpoint",
    "find_checkpoint",
    "list_checkpoints",
    "page_checkpoints",
    "restore_checkpoint",
    "save_checkpoint",
]

MAX_CHECKPOINTS = 10
# The columns a checkpoint copies from the workspace's files, and back on restore.
_COPIED = ["checkpoint_id", "public_path", "sha256", "size", "file_type", "modified_at"]
MSG_CHECKPOINT_NOT_FOUND = "checkpoint not found"
MSG_EMPTY = "workspace is empty"  # the arXiv service's 400


class CheckpointLimit(Conflict):
    """The workspace already keeps ``MAX_CHECKPOINTS`` checkpoints."""

    code = "checkpoint-limit"
    title = "Too many checkpoints"


@dataclass(frozen=True)
class SavedCheckpoint:
    """The checkpoint a save answers with; ``created`` is false when this content had one."""

    checkpoint: WorkspaceCheckpoint
    created: bool


def _live(session: Session, actor: Actor, workspace_id: int, *, need: Privilege) -> Workspace:
    """The workspace under its row lock when changing, refusing a deleted one."""
    workspace = get_workspace(
        session, actor, workspace_id, need=need, for_update=need >= Privilege.execute
    )
    if workspace.state == DELETED:
        raise NotFound(MSG_NOT_FOUND)
    return workspace


def _count(session: Session, workspace: Workspace) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(WorkspaceCheckpoint)
            .where(WorkspaceCheckpoint.workspace_id == workspace.id)
        )
        or 0
    )


def _lookup(session: Session, workspace: Workspace, key: str) -> WorkspaceCheckpoint:
    found = session.scalar(
        select(WorkspaceCheckpoint).where(
            WorkspaceCheckpoint.workspace_id == workspace.id,
            or_(WorkspaceCheckpoint.id == key, WorkspaceCheckpoint.checksum == key),
        )
    )
    if found is None:
        raise NotFound(MSG_CHECKPOINT_NOT_FOUND)
    return found


def save_checkpoint(session: Session, actor: Actor, workspace_id: int) -> SavedCheckpoint:
    """Save the workspace's current files as a checkpoint (no bytes are copied).

    Allowed while locked or released (it changes no file). Saving content that already has a
    checkpoint returns that one. Raises ``BadRequest`` for an empty workspace and
    ``CheckpointLimit`` (a Conflict) when ``MAX_CHECKPOINTS`` are kept already; the count is
    taken under the workspace's row lock, so two saves racing cannot pass it together.
    """
    workspace = _live(session, actor, workspace_id, need=Privilege.execute)
    if not workspace.file_count:
        raise BadRequest(MSG_EMPTY)
    # Every change of the files refreshes the checksum, count and size in the same transaction
    # (service._refresh_summary), so the row names the files without reading them.
    checksum = workspace.checksum or manifest_checksum(list_files(session, workspace.id))
    existing = session.scalar(
        select(WorkspaceCheckpoint).where(
            WorkspaceCheckpoint.workspace_id == workspace.id,
            WorkspaceCheckpoint.checksum == checksum,
        )
    )
    if existing is not None:
        log(session, workspace, actor, "info", f"checkpoint {checksum} already saved")
        return SavedCheckpoint(existing, created=False)
    if _count(session, workspace) >= MAX_CHECKPOINTS:
        raise CheckpointLimit(
            f"This workspace keeps {MAX_CHECKPOINTS} checkpoints, the most it may: delete one "
            "before saving another."
        )
    cached = workspace.package_checksum == checksum and workspace.package_sha256
    checkpoint = WorkspaceCheckpoint(
        workspace_id=workspace.id,
        checksum=checksum,
        file_count=workspace.file_count,
        total_size=workspace.total_size,
        created_by=actor.id,
        # Same manifest, same deterministic package: a built workspace package serves both.
        package_sha256=workspace.package_sha256 if cached else None,
        package_size=workspace.package_size if cached else None,
    )
    session.add(checkpoint)
    session.flush()
    # One INSERT … SELECT: the rows are copied inside the database, never through Python.
    session.execute(
        insert(WorkspaceCheckpointFile).from_select(
            _COPIED,
            select(
                literal(checkpoint.id, String), *(getattr(WorkspaceFile, c) for c in _COPIED[1:])
            ).where(WorkspaceFile.workspace_id == workspace.id),
        )
    )
    count = workspace.file_count
    log(session, workspace, actor, "info", f"saved checkpoint {checksum} ({count} files)")
    session.flush()
    return SavedCheckpoint(checkpoint, created=True)


def page_checkpoints(
    session: Session, actor: Actor, workspace_id: int, *, page: int = 1, page_size: int = 50
) -> tuple[Sequence[WorkspaceCheckpoint], int]:
    """One page of the workspace's checkpoints, newest first."""
    workspace = _live(session, actor, workspace_id, need=Privilege.view)
    query = (
        select(WorkspaceCheckpoint)
        .where(WorkspaceCheckpoint.workspace_id == workspace.id)
        .order_by(WorkspaceCheckpoint.created_at.desc(), WorkspaceCheckpoint.id)
    )
    return paginate(session, query, page=page, page_size=page_size)


def list_checkpoints(
    session: Session, actor: Actor, workspace_id: int
) -> Sequence[WorkspaceCheckpoint]:
    """Every checkpoint of the workspace (at most ``MAX_CHECKPOINTS``), newest first."""
    items, _ = page_checkpoints(session, actor, workspace_id, page_size=MAX_CHECKPOINTS)
    return items


def find_checkpoint(
    session: Session, actor: Actor, workspace_id: int, key: str
) -> WorkspaceCheckpoint:
    """One checkpoint, by its id or its checksum (arXiv names checkpoints by checksum)."""
    return _lookup(session, _live(session, actor, workspace_id, need=Privilege.view), key)


def checkpoint_files(session: Session, checkpoint: WorkspaceCheckpoint) -> list[FileRecord]:
    rows = session.execute(
        select(
            WorkspaceCheckpointFile.id,
            WorkspaceCheckpointFile.public_path,
            WorkspaceCheckpointFile.sha256,
            WorkspaceCheckpointFile.size,
            WorkspaceCheckpointFile.file_type,
            WorkspaceCheckpointFile.modified_at,
        )
        .where(WorkspaceCheckpointFile.checkpoint_id == checkpoint.id)
        .order_by(WorkspaceCheckpointFile.public_path)
    )
    return [FileRecord(*row) for row in rows]


def restore_checkpoint(
    session: Session, actor: Actor, workspace_id: int, key: str
) -> WorkspaceView:
    """Make the workspace's files exactly the checkpoint's, in one transaction, and log it.

    Refused (``Forbidden``) while the workspace is locked or released, like an upload. The
    workspace's row lock orders a restore and an upload racing on one workspace: the upload
    lands on the restored files, or the restore replaces the uploaded ones, never a mix.
    """
    workspace = _live(session, actor, workspace_id, need=Privilege.execute)
    _require_writable(workspace)
    checkpoint = _lookup(session, workspace, key)
    before = _delete_all_rows(session, workspace)
    session.execute(
        insert(WorkspaceFile).from_select(
            ["workspace_id", *_COPIED[1:]],
            select(
                literal(workspace.id),
                *(getattr(WorkspaceCheckpointFile, c) for c in _COPIED[1:]),
            ).where(WorkspaceCheckpointFile.checkpoint_id == checkpoint.id),
        )
    )
    log(
        session,
        workspace,
        actor,
        "info",
        f"restored checkpoint {checkpoint.checksum} ({checkpoint.file_count} files; "
        f"{before} replaced)",
    )
    files = _refresh_summary(session, workspace, actor, [], changed=True)
    if checkpoint.package_sha256 and workspace.checksum == checkpoint.checksum:
        workspace.package_sha256, workspace.package_size = (
            checkpoint.package_sha256,
            checkpoint.package_size,
        )
        workspace.package_checksum = checkpoint.checksum
    session.flush()
    return describe(session, workspace, files)


def delete_checkpoint(session: Session, actor: Actor, workspace_id: int, key: str) -> WorkspaceView:
    """Delete one checkpoint; the workspace's files are untouched."""
    workspace = _live(session, actor, workspace_id, need=Privilege.execute)
    checkpoint = _lookup(session, workspace, key)
    session.delete(checkpoint)
    log(session, workspace, actor, "info", f"deleted checkpoint {checkpoint.checksum}")
    session.flush()
    return describe(session, workspace)


def delete_all_checkpoints(
    session: Session, actor: Actor, workspace_id: int
) -> tuple[WorkspaceView, int]:
    """Delete every checkpoint of the workspace; returns the workspace and how many went."""
    workspace = _live(session, actor, workspace_id, need=Privilege.execute)
    gone = session.execute(
        delete(WorkspaceCheckpoint).where(WorkspaceCheckpoint.workspace_id == workspace.id)
    )
    count = int(gone.rowcount)  # type: ignore[attr-defined]
    log(session, workspace, actor, "info", f"deleted all checkpoints ({count})")
    session.flush()
    return describe(session, workspace), count


def checkpoint_package(
    uow: UnitOfWork,
    blobs: BlobStore,
    actor: Actor,
    workspace_id: int,
    key: str,
    *,
    work_dir: Path,
    build: bool = True,
    client_has: Callable[[str], bool] = lambda checksum: False,
) -> Package:
    """A checkpoint's files as one deterministic .tar.gz (the same bytes the workspace's
    package had when it held them), built once with no transaction open and cached.

    ``build`` and ``client_has`` behave as in ``get_package``: a HEAD builds nothing, and a
    client holding the checksum already gets ``not_modified``.
    """
    with uow.transaction() as session:
        workspace = _live(session, actor, workspace_id, need=Privilege.view)
        checkpoint = _lookup(session, workspace, key)
        package = Package(
            workspace.id, workspace.owner_id, checkpoint.checksum, checkpoint.created_at
        )
        if client_has(package.checksum):
            return replace(package, not_modified=True)
        if checkpoint.package_sha256 is not None or not build:
            if build:
                log(session, workspace, actor, "info", _downloaded(checkpoint))
            return replace(package, sha256=checkpoint.package_sha256, size=checkpoint.package_size)
        files = [
            PackageFile(f.public_path, f.sha256, f.size, int(f.modified_at.timestamp()))
            for f in checkpoint_files(session, checkpoint)
        ]
        checkpoint_id = checkpoint.id
    work_dir.mkdir(parents=True, exist_ok=True)
    sha256, size = build_package(blobs, files, work_dir=work_dir)
    with uow.transaction() as session:
        workspace = _live(session, actor, workspace_id, need=Privilege.view)
        still = session.get(WorkspaceCheckpoint, checkpoint_id, populate_existing=True)
        if still is None:
            raise NotFound(MSG_CHECKPOINT_NOT_FOUND)
        still.package_sha256, still.package_size = sha256, size
        log(session, workspace, actor, "info", _downloaded(still))
    return replace(package, sha256=sha256, size=size)


def _downloaded(checkpoint: WorkspaceCheckpoint) -> str:
    return f"downloaded checkpoint {checkpoint.checksum} ({checkpoint.package_size} bytes)"
