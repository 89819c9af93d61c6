"""Upload workspaces: receive uploads, keep files and findings, package, log, lock and release.

Most operations are one short transaction on the caller's session. Two are workflows that do
slow work and so are given a ``UnitOfWork`` instead and own their transactions: ``upload``
(check the workspace, receive and unpack the body with no transaction open, then apply the
files under the workspace's row lock after re-reading its state) and ``get_package`` (build the
content package with no transaction open, then record it unless the content changed).
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, cast

from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy.orm import Session

from cairn.accounts.service import Actor, Privilege
from cairn.blobs import BlobStore
from cairn.db import UnitOfWork, paginate, utcnow
from cairn.errors import BadRequest, Forbidden, Invalid, NotFound
from cairn.provenance import service as provenance
from cairn.tempfiles import scratch_dir
from cairn.workspaces import _filetypes as ft
from cairn.workspaces._arxiv_rules import Removal, generated_files, msg_dvi
from cairn.workspaces._builds import PackageBuilder, package_builder, refresh_package
from cairn.workspaces._checkpoints import (
    MAX_CHECKPOINTS,
    CheckpointLimit,
    SavedCheckpoint,
    checkpoint_files,
    checkpoint_package,
    delete_all_checkpoints,
    delete_checkpoint,
    find_checkpoint,
    list_checkpoints,
    page_checkpoints,
    restore_checkpoint,
    save_checkpoint,
)
from cairn.workspaces._checks import (
    Finding,
    display_name,
)
from cairn.workspaces._core import (
    _FILE_COLUMNS,
    ACTIVE,
    DELETED,
    LOCKED,
    MSG_DELETED,
    MSG_FILE_NOT_FOUND,
    MSG_NOT_FOUND,
    RELEASED,
    UNLOCKED,
    FileRecord,
    Package,
    RemovedFile,
    WorkspaceView,
    _cached_package,
    _delete_all_rows,
    _delete_rows,
    _refresh_summary,
    _require_writable,
    describe,
    get_workspace,
    keep_removed,
    list_files,
    log,
    log_many,
    manifest_checksum,
    removed_file,
    store_package,
)
from cairn.workspaces._limits import (
    ARXIV_TARGET,
    Limits,
    find_limits,
    known_targets,
)
from cairn.workspaces._package import PackageFile, build_package
from cairn.workspaces._quarantine import (
    RULE_REPLACED,
    NameTaken,
    dropped_new,
    find_removed,
    lookup_removed,
    owned_for_restore,
    page_removed,
    replaced_files,
    staged_removed,
)
from cairn.workspaces._unpack import process_upload
from cairn.workspaces.models import (
    Workspace,
    WorkspaceCheckpoint,
    WorkspaceFile,
    WorkspaceLogEntry,
    WorkspaceRemovedFile,
)

__all__ = [
    "ACTIVE",
    "ARXIV_TARGET",
    "DELETED",
    "LOCKED",
    "MAX_CHECKPOINTS",
    "RELEASED",
    "RULE_REPLACED",
    "UNLOCKED",
    "CheckpointLimit",
    "FileDownload",
    "FileRecord",
    "NameTaken",
    "Package",
    "PackageBuilder",
    "PreparedUpload",
    "Receive",
    "SavedCheckpoint",
    "UploadRequest",
    "WorkspaceView",
    "apply_upload",
    "change_state",
    "checkpoint_files",
    "checkpoint_package",
    "create_workspace",
    "delete_all_checkpoints",
    "delete_all_files",
    "delete_checkpoint",
    "delete_file",
    "delete_named_or_all",
    "delete_workspace",
    "describe",
    "file_download",
    "find_checkpoint",
    "find_file",
    "find_removed",
    "get_package",
    "get_workspace",
    "list_checkpoints",
    "list_files",
    "list_workspaces",
    "log",
    "log_many",
    "package_builder",
    "page_checkpoints",
    "page_files",
    "page_removed",
    "prepare_upload",
    "read_log",
    "refresh_package",
    "restore_checkpoint",
    "restore_removed",
    "save_checkpoint",
    "store_package",
    "target_limits",
    "upload",
    "upload_after_checkpoint",
    "uploaded_file",
    "view_workspace",
]


# --- access -----------------------------------------------------------------------------------


def view_workspace(
    session: Session, actor: Actor, workspace_id: int, *, files: bool = True
) -> WorkspaceView:
    """The workspace with its files and findings, if the actor may see it; without ``files``
    its file rows are not read (``files`` is empty): the native summary pages them apart."""
    return describe(session, get_workspace(session, actor, workspace_id), None if files else [])


def _require_uploader(actor: Actor) -> None:
    if not any(held >= Privilege.execute for held in actor.privileges.values()):
        raise Forbidden("You need the 'execute' privilege in an organisation to upload.")


def _choose_organisation(actor: Actor, organisation_id: str | None) -> str:
    if organisation_id is not None:
        actor.require(organisation_id, Privilege.execute)
        return organisation_id
    _require_uploader(actor)
    able = [org for org, held in actor.privileges.items() if held >= Privilege.execute]
    if len(able) > 1:
        raise Invalid("You belong to several organisations: say which with organisation_id.")
    return able[0]


def _target(archive: str | None) -> str:
    return (archive or "default").strip().lower()


def target_limits(archive: str | None) -> Limits:
    """The limits of a target archive (the defaults for none); an unknown one is refused."""
    limits = find_limits(archive)
    if limits is None:
        raise BadRequest(
            f"Unknown target archive {archive!r}. Known: {', '.join(known_targets())}."
        )
    return limits


def _new_workspace(
    session: Session, actor: Actor, *, organisation_id: str | None, archive: str | None
) -> Workspace:
    target_limits(archive)
    workspace = Workspace(
        organisation_id=_choose_organisation(actor, organisation_id),
        owner_id=actor.id,
        archive=archive,
        checksum=manifest_checksum([]),
    )
    session.add(workspace)
    session.flush()
    log(session, workspace, actor, "info", f"workspace created for archive {archive or 'default'}")
    return workspace


def create_workspace(
    session: Session,
    actor: Actor,
    *,
    organisation_id: str | None = None,
    archive: str | None = None,
) -> WorkspaceView:
    """An empty workspace in the actor's organisation (or the one named), for ``archive``."""
    return describe(
        session, _new_workspace(session, actor, organisation_id=organisation_id, archive=archive)
    )


def list_workspaces(
    session: Session,
    actor: Actor,
    *,
    organisation_id: str | None = None,
    mine: bool = False,
    page: int = 1,
    page_size: int = 50,
) -> tuple[Sequence[Workspace], int]:
    """Workspaces of the actor's organisations (or one of them, or only the actor's own)."""
    if organisation_id is not None:
        actor.require(organisation_id)
        organisations = [organisation_id]
    else:
        organisations = list(actor.privileges)
    query = select(Workspace).where(Workspace.organisation_id.in_(organisations))
    if mine:
        query = query.where(Workspace.owner_id == actor.id)
    return paginate(session, query.order_by(Workspace.id.desc()), page=page, page_size=page_size)


# --- the source log -----------------------------------------------------------------------------


def read_log(session: Session, actor: Actor, workspace_id: int) -> list[WorkspaceLogEntry]:
    get_workspace(session, actor, workspace_id)
    return list(
        session.scalars(
            select(WorkspaceLogEntry)
            .where(WorkspaceLogEntry.workspace_id == workspace_id)
            .order_by(WorkspaceLogEntry.id)
        )
    )


# --- uploads -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredFile:
    public_path: str
    sha256: str
    size: int
    file_type: str
    mtime: int | None = None  # the archive member's own time; None takes the upload's


@dataclass
class PreparedUpload:
    """An upload unpacked, checked and stored in the blob store, not yet in any workspace."""

    filename: str
    upload_size: int
    limits: Limits
    files: list[StoredFile] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    removed: list[RemovedFile] = field(default_factory=list)  # stored too, for the quarantine
    started_at: datetime = field(default_factory=utcnow)
    sha256: str = ""  # of the uploaded file or archive, which the upload's activity used

    @property
    def fatal(self) -> bool:
        return any(f.level == "fatal" for f in self.findings)


def prepare_upload(
    blobs: BlobStore,
    source: Path,
    filename: str,
    *,
    work_dir: Path,
    archive: str | None = None,
    ancillary: bool = False,
    existing_total: int = 0,
    existing_count: int = 0,
    folder: tuple[str, ...] = (),
    sha256: str | None = None,
) -> PreparedUpload:
    """Unpack, sanitize and check ``source`` and put every resulting file in the blob store.

    Touches no database. Nothing is stored when a finding is fatal. The files rules removed
    are stored as well, for the workspace's quarantine. ``folder`` is where a lone file goes.
    ``sha256`` is the source's, when whoever wrote it hashed it on the way (the HTTP form
    reader does); a file that came some other way is hashed here.
    """
    limits = target_limits(archive)
    upload_size = source.stat().st_size
    if upload_size == 0:
        raise Invalid("file payload is zero length")
    prepared = PreparedUpload(
        filename=display_name(filename),
        upload_size=upload_size,
        limits=limits,
        sha256=sha256 or _file_sha256(source),
    )
    staging = scratch_dir(work_dir, "stage-")
    spool = blobs.spool()  # small members go straight into what the store keeps
    try:
        result = process_upload(
            source,
            filename,
            staging=staging,
            limits=limits,
            ancillary=ancillary,
            existing_total=existing_total,
            existing_count=existing_count,
            folder=folder,
            spool=spool,
        )
        prepared.findings = list(result.findings)
        if result.fatal:
            return prepared
        staged_all = [*result.files, *result.quarantined]
        refs = blobs.ingest([staged.blob for staged in staged_all])
        kept = len(result.files)
        prepared.files = [
            StoredFile(staged.public_path, ref.sha256, ref.size, staged.file_type, staged.mtime)
            for staged, ref in zip(result.files, refs[:kept], strict=True)
        ]
        prepared.removed = [
            staged_removed(staged, ref.sha256)
            for staged, ref in zip(result.quarantined, refs[kept:], strict=True)
        ]
    finally:
        if spool is not None:
            spool.discard()  # a fatal upload's (an ingested one is the store's now)
        shutil.rmtree(staging, ignore_errors=True)
    return prepared


def _file_sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def apply_upload(
    session: Session, actor: Actor, workspace_id: int, prepared: PreparedUpload
) -> WorkspaceView:
    """Merge a prepared upload into the workspace in one transaction, or change no file at all;
    returns the summary.

    The workspace row is locked first, so concurrent uploads apply one after another and each
    sees the other's files.
    """
    workspace = get_workspace(session, actor, workspace_id, need=Privilege.execute, for_update=True)
    _require_writable(workspace)
    now = utcnow()
    log(
        session,
        workspace,
        actor,
        "info",
        f"upload of '{prepared.filename}' ({prepared.upload_size} bytes) started "
        f"{prepared.started_at.isoformat()}",
    )
    findings = list(prepared.findings)
    current = {f.public_path: f for f in list_files(session, workspace.id)}
    files, dropped = prepared.files, list[Removal]()
    dropped_reasons: dict[str, Removal] = {}
    if not prepared.fatal:
        findings.extend(_merged_limit_findings(current, prepared))
        findings.extend(_file_folder_clashes(current, prepared))
        if prepared.limits.rules == "arxiv":
            files, dropped, merged, dropped_reasons = _arxiv_merge(current, prepared.files)
            findings.extend(merged)
    if any(f.level == "fatal" for f in findings):
        log(
            session,
            workspace,
            actor,
            "error",
            f"upload of '{prepared.filename}' refused; workspace unchanged",
        )
        changed = False
    else:
        keep_removed(
            session,
            workspace,
            actor,
            [
                *prepared.removed,
                *dropped_new(prepared.files, files, dropped_reasons),
                *(removed_file(current[r.public_path], r.rule, r.finding.message) for r in dropped),
                *replaced_files(current, files, prepared.filename),
            ],
        )
        _delete_rows(session, workspace.id, [r.public_path for r in dropped])
        _merge_files(session, workspace.id, current, files, now)
        _record_upload(session, workspace, actor, prepared, current, files)
        findings.extend(
            Finding("info", f.public_path, "replaced existing file")
            for f in files
            if f.public_path in current
        )
        log(
            session,
            workspace,
            actor,
            "info",
            f"added {len(files)} file(s) from '{prepared.filename}'",
        )
        changed = True
    workspace.upload_started_at = prepared.started_at
    workspace.upload_completed_at = now
    summary_files = _refresh_summary(session, workspace, actor, findings, changed=changed)
    return describe(session, workspace, summary_files)


def _record_upload(
    session: Session,
    workspace: Workspace,
    actor: Actor,
    prepared: PreparedUpload,
    current: dict[str, FileRecord],
    files: Sequence[StoredFile],
) -> None:
    """The upload as a platform activity (#14): it used the uploaded file and generated the
    files it added or changed, so lineage runs from a workspace file back to the archive and
    to whatever run made it. Only applied uploads get here: a refused one records nothing."""
    changed = [
        provenance.ActivityFile(f.sha256, f.public_path, f.size)
        for f in files
        if f.public_path not in current or current[f.public_path].sha256 != f.sha256
    ]
    provenance.record_activity(
        session,
        organisation_id=workspace.organisation_id,
        kind="workspace.upload",
        used=[
            provenance.ActivityFile(
                prepared.sha256, prepared.filename, prepared.upload_size, stored=False
            )
        ],
        generated=changed,
        user=actor.id,
        description=f"upload of '{prepared.filename}' into workspace {workspace.id}",
    )


@dataclass(frozen=True)
class UploadRequest:
    """One upload as received: the bytes (a file in the work folder) and the client's options."""

    path: Path
    filename: str
    archive: str | None = None
    ancillary: bool = False
    organisation_id: str | None = None
    sha256: str | None = None  # of the bytes at ``path``, when the receiver hashed them


Receive = Callable[[], AbstractContextManager[UploadRequest]]
"""Receives the upload when called; the context removes the received file on exit."""


def uploaded_file(
    path: Path,
    filename: str | None = None,
    *,
    archive: str | None = None,
    ancillary: bool = False,
    organisation_id: str | None = None,
) -> Receive:
    """A ``Receive`` for a file already on disk (which stays): the CLI and tests use it."""
    request = UploadRequest(path, filename or path.name, archive, ancillary, organisation_id)
    return lambda: nullcontext(request)


def upload(
    uow: UnitOfWork,
    blobs: BlobStore,
    actor: Actor,
    receive: Receive,
    *,
    work_dir: Path,
    workspace_id: int | None = None,
    default_archive: str | None = None,
) -> WorkspaceView:
    """Upload a file or archive into a new workspace, or into ``workspace_id``.

    A new workspace's target is the upload's ``archive``, else ``default_archive`` (the arXiv
    file manager's routes give ``arxiv``: arXiv's rules); an existing one keeps its own.

    The caller's rights and the workspace's state are checked before the body is received, so
    a refused upload costs no transfer. Unpacking holds no transaction. The files are then
    applied in one transaction under the workspace's row lock, after re-reading its state: an
    upload that a delete, lock or release overtook is refused, not applied after it. A new
    workspace is created in that same transaction, so a failed upload leaves none behind.
    """
    with uow.transaction() as session:
        if workspace_id is None:
            _require_uploader(actor)
            existing_total = existing_count = 0
            existing_archive = None
        else:
            workspace = get_workspace(session, actor, workspace_id, need=Privilege.execute)
            _require_writable(workspace)
            existing_total, existing_count = workspace.total_size, workspace.file_count
            existing_archive = workspace.archive
    work_dir.mkdir(parents=True, exist_ok=True)
    with receive() as request:
        if workspace_id is None:
            organisation_id = _choose_organisation(actor, request.organisation_id)
            if not request.archive and default_archive:
                request = replace(request, archive=default_archive)
        elif request.archive and _target(request.archive) != _target(existing_archive):
            raise BadRequest(
                f"This workspace's target archive is '{existing_archive or 'default'}'; an "
                f"upload into it cannot name another ('{request.archive}')."
            )
        prepared = prepare_upload(
            blobs,
            request.path,
            request.filename,
            work_dir=work_dir,
            archive=request.archive or existing_archive,
            ancillary=request.ancillary,
            existing_total=existing_total,
            existing_count=existing_count,
            sha256=request.sha256,
        )
    with uow.transaction() as session:
        if workspace_id is None:
            created = _new_workspace(
                session, actor, organisation_id=organisation_id, archive=request.archive
            )
            workspace_id = created.id
        return apply_upload(session, actor, workspace_id, prepared)


def _merged_limit_findings(
    current: dict[str, FileRecord], prepared: PreparedUpload
) -> list[Finding]:
    """Limits over the merged workspace, re-checked under the lock (a concurrent upload may
    have added files since the upload was unpacked)."""
    new_paths = {f.public_path for f in prepared.files}
    total = sum(f.size for p, f in current.items() if p not in new_paths)
    total += sum(f.size for f in prepared.files)
    limits = prepared.limits
    if total > limits.max_total_bytes:
        return [
            Finding(
                "fatal",
                None,
                f"Workspace would exceed the size limit of {limits.max_total_bytes} bytes "
                f"for archive '{limits.name}'.",
            )
        ]
    if len(current.keys() | new_paths) > limits.max_files:
        return [
            Finding(
                "fatal",
                None,
                f"Workspace would exceed the limit of {limits.max_files} files "
                f"for archive '{limits.name}'.",
            )
        ]
    return []


def _arxiv_merge(
    current: dict[str, FileRecord], files: list[StoredFile]
) -> tuple[list[StoredFile], list[Removal], list[Finding], dict[str, Removal]]:
    """arXiv's rules over the merged file set: TeX-generated files next to their ``.tex`` go
    (rule 17, also when the ``.tex`` came earlier or comes later), then a DVI file left is fatal
    (rule 21). Returns the new files to keep, the existing files to remove, the findings, and
    every removal by path (the new files dropped go to the quarantine too)."""
    new_paths = {f.public_path for f in files}
    removals = generated_files(current.keys() | new_paths)
    gone = {r.public_path for r in removals}
    kept = [f for f in files if f.public_path not in gone]
    findings = [r.finding for r in removals]
    findings.extend(
        Finding("fatal", f.public_path, msg_dvi(f.public_path))
        for f in kept
        if f.file_type == ft.DVI and not f.public_path.startswith("anc/")
    )
    by_path = {r.public_path: r for r in removals}
    return kept, [r for r in removals if r.public_path in current], findings, by_path


def _folders(paths: Iterable[str]) -> set[str]:
    return {path[:i] for path in paths for i, ch in enumerate(path) if ch == "/"}


def _file_folder_clashes(current: dict[str, FileRecord], prepared: PreparedUpload) -> list[Finding]:
    """A path may not be a file and a folder at once: the package could not be unpacked."""
    new = {f.public_path for f in prepared.files}
    kept = current.keys() - new
    if not kept:  # a new workspace, or every file replaced: nothing to clash with
        return []
    clashes = sorted((new & _folders(kept)) | (kept & _folders(new)))
    return [
        Finding(
            "fatal",
            path,
            f"'{path}' would be both a file and a folder of the workspace; delete or rename "
            "one of them first.",
        )
        for path in clashes
    ]


def _path_of(f: StoredFile) -> str:
    return f.public_path


def _merge_files(
    session: Session,
    workspace_id: int,
    current: dict[str, FileRecord],
    files: Sequence[StoredFile],
    now: datetime,
) -> None:
    """Insert new paths and overwrite existing ones, as two bulk statements.

    A file keeps its archive member's modification time (as tar does), so the same archive
    gives the same checksum and package in any workspace, at any time; a lone file takes the
    upload's time. New rows go in path order, the order of the unique index and of every read
    (``list_files``): index pages fill one after another, and reads scan the table in order.
    """

    def modified(f: StoredFile) -> datetime:
        return now if f.mtime is None else datetime.fromtimestamp(f.mtime, UTC)

    fresh = [
        {
            "workspace_id": workspace_id,
            "public_path": f.public_path,
            "sha256": f.sha256,
            "size": f.size,
            "file_type": f.file_type,
            "modified_at": modified(f),
        }
        for f in sorted(files, key=_path_of)
        if f.public_path not in current
    ]
    replaced = [
        {
            "id": current[f.public_path].id,
            "sha256": f.sha256,
            "size": f.size,
            "file_type": f.file_type,
            "modified_at": modified(f),
        }
        for f in files
        if f.public_path in current
    ]
    if fresh:  # a Core insert: the ORM's bulk insert spent as long again per row in Python
        session.execute(insert(cast(Table, WorkspaceFile.__table__)), fresh)
    if replaced:
        session.execute(update(WorkspaceFile), replaced)


# --- reading files and findings ------------------------------------------------------------------


def page_files(
    session: Session, actor: Actor, workspace_id: int, *, page: int = 1, page_size: int = 50
) -> tuple[list[FileRecord], int]:
    """One page of a workspace's current files, by path."""
    get_workspace(session, actor, workspace_id)
    query = (
        select(WorkspaceFile)
        .where(WorkspaceFile.workspace_id == workspace_id)
        .order_by(WorkspaceFile.public_path)
    )
    rows, total = paginate(session, query, page=page, page_size=page_size)
    return [FileRecord(*(getattr(f, c.key) for c in _FILE_COLUMNS)) for f in rows], total


def find_file(session: Session, workspace: Workspace, public_path: str) -> FileRecord:
    """One current file of a workspace the caller has already loaded (``get_workspace``)."""
    row = session.execute(
        select(*_FILE_COLUMNS).where(
            WorkspaceFile.workspace_id == workspace.id, WorkspaceFile.public_path == public_path
        )
    ).first()
    if row is None:
        raise NotFound(MSG_FILE_NOT_FOUND)
    return FileRecord(*row)


def delete_file(
    session: Session, actor: Actor, workspace_id: int, public_path: str
) -> WorkspaceView:
    workspace = get_workspace(session, actor, workspace_id, need=Privilege.execute, for_update=True)
    _require_writable(workspace)
    gone = session.execute(
        delete(WorkspaceFile).where(
            WorkspaceFile.workspace_id == workspace.id, WorkspaceFile.public_path == public_path
        )
    )
    if not gone.rowcount:  # type: ignore[attr-defined]
        raise NotFound(MSG_FILE_NOT_FOUND)
    log(session, workspace, actor, "info", f"deleted file '{public_path}'")
    files = _refresh_summary(session, workspace, actor, [], changed=True)
    return describe(session, workspace, files)


def delete_all_files(session: Session, actor: Actor, workspace_id: int) -> WorkspaceView:
    workspace = get_workspace(session, actor, workspace_id, need=Privilege.execute, for_update=True)
    _require_writable(workspace)
    count = _delete_all_rows(session, workspace)
    log(session, workspace, actor, "info", f"deleted all files ({count})")
    files = _refresh_summary(session, workspace, actor, [], changed=True)
    return describe(session, workspace, files)


def delete_named_or_all(
    session: Session, actor: Actor, workspace_id: int, name: str
) -> tuple[WorkspaceView, str]:
    """Delete the file ``name`` if the workspace has one, else every file; returns what was done.

    For ``DELETE /filemanager/api/{id}/delete_all``: cairn's contract reads it as "delete every
    file", the arXiv service as "delete the file named delete_all". Where such a file exists,
    the narrower reading wins, so nobody loses a workspace by deleting one file.
    """
    workspace = get_workspace(session, actor, workspace_id)
    try:
        find_file(session, workspace, name)
    except NotFound:
        return delete_all_files(session, actor, workspace_id), "deleted all files"
    return delete_file(session, actor, workspace_id, name), "deleted file"


# --- states ------------------------------------------------------------------------------------


StateAction = Literal["lock", "unlock", "release", "unrelease"]
STATE_ACTIONS: dict[str, tuple[str, str, str]] = {
    # action: (attribute, new value, what it did: the log line and arXiv's "reason")
    "lock": ("lock_state", LOCKED, "locked workspace"),
    "unlock": ("lock_state", UNLOCKED, "unlocked workspace"),
    "release": ("state", RELEASED, "released workspace"),
    "unrelease": ("state", ACTIVE, "unreleased workspace"),
}


def change_state(
    session: Session, actor: Actor, workspace_id: int, action: StateAction
) -> tuple[WorkspaceView, str]:
    """Lock, unlock, release or unrelease (each idempotent); returns what was done."""
    attribute, value, done = STATE_ACTIONS[action]
    workspace = get_workspace(session, actor, workspace_id, need=Privilege.execute, for_update=True)
    if workspace.state == DELETED:
        raise NotFound(MSG_DELETED)
    setattr(workspace, attribute, value)
    log(session, workspace, actor, "info", done)
    session.flush()
    return describe(session, workspace), done


def delete_workspace(session: Session, actor: Actor, workspace_id: int) -> WorkspaceView:
    """Remove every file but keep the record (state DELETED); a second delete is not found."""
    workspace = get_workspace(session, actor, workspace_id, need=Privilege.execute, for_update=True)
    if workspace.state == DELETED:
        raise NotFound(MSG_NOT_FOUND)
    if workspace.owner_id != actor.id:
        actor.require(workspace.organisation_id, Privilege.manage)
    count = _delete_all_rows(session, workspace)
    # Checkpoints and the quarantine go with the workspace's files: a deleted workspace keeps
    # no content (gc then releases the blobs no other row holds).
    session.execute(
        delete(WorkspaceCheckpoint).where(WorkspaceCheckpoint.workspace_id == workspace.id)
    )
    session.execute(
        delete(WorkspaceRemovedFile).where(WorkspaceRemovedFile.workspace_id == workspace.id)
    )
    workspace.state = DELETED
    workspace.package_sha256 = workspace.package_size = workspace.package_checksum = None
    log(session, workspace, actor, "info", f"deleted workspace ({count} files removed)")
    files = _refresh_summary(session, workspace, actor, [], changed=True)
    return describe(session, workspace, files)


# --- downloads ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileDownload:
    """What a file download needs: the file, and who owns its workspace (arXiv's header)."""

    file: FileRecord
    owner_id: str


def file_download(
    session: Session,
    actor: Actor,
    workspace_id: int,
    public_path: str,
    *,
    read: bool = True,
    client_has: Callable[[str], bool] = lambda sha256: False,
) -> FileDownload:
    """One file of a workspace, for download. The download is noted in the source log when
    the bytes are sent: ``read`` (not a HEAD) and the client does not hold them already
    (``client_has(sha256)``, its ``If-None-Match``)."""
    workspace = get_workspace(session, actor, workspace_id)
    item = find_file(session, workspace, public_path)
    if read and not client_has(item.sha256):
        log(session, workspace, actor, "info", f"downloaded file '{item.public_path}'")
    return FileDownload(item, workspace.owner_id)


def get_package(
    uow: UnitOfWork,
    blobs: BlobStore,
    actor: Actor,
    workspace_id: int,
    *,
    work_dir: Path,
    build: bool = True,
    client_has: Callable[[str], bool] = lambda checksum: False,
) -> Package:
    """The whole workspace as one deterministic .tar.gz, built on demand and cached.

    ``client_has(checksum)`` true means the client holds this content already (its
    ``If-None-Match``): nothing is built or logged and ``not_modified`` is set. With ``build``
    false (a HEAD) nothing is built or logged either; ``sha256`` and ``size`` are those of a
    cached package, if there is one. Otherwise the package is built with no transaction open
    and recorded, unless the content changed meanwhile, and the download is logged. Two
    builds racing for one workspace produce the same bytes, stored once.
    """
    with uow.transaction() as session:
        workspace = get_workspace(session, actor, workspace_id)
        package = Package(
            workspace.id, workspace.owner_id, workspace.checksum or "", workspace.modified_at
        )
        if not workspace.file_count:
            raise NotFound("No content in workspace")
        if client_has(package.checksum):
            return replace(package, not_modified=True)
        cached = _cached_package(workspace)
        if cached is not None or not build:
            sha256, size = cached or (None, None)
            if build:
                log(session, workspace, actor, "info", f"downloaded package ({size} bytes)")
            return replace(package, sha256=sha256, size=size)
        files = [
            PackageFile(f.public_path, f.sha256, f.size, int(f.modified_at.timestamp()))
            for f in list_files(session, workspace.id)
        ]
    work_dir.mkdir(parents=True, exist_ok=True)
    sha256, size = build_package(blobs, files, work_dir=work_dir)
    with uow.transaction() as session:
        workspace = get_workspace(session, actor, workspace_id, for_update=True)
        if workspace.state == DELETED:
            raise NotFound(MSG_NOT_FOUND)
        if workspace.checksum == package.checksum and _cached_package(workspace) is None:
            store_package(session, workspace, actor, files, sha256, size)  # not raced by another
        log(session, workspace, actor, "info", f"downloaded package ({size} bytes)")
    return replace(package, sha256=sha256, size=size)


# --- checkpoints (the rest is in _checkpoints.py) ------------------------------------------


def upload_after_checkpoint(
    uow: UnitOfWork,
    blobs: BlobStore,
    actor: Actor,
    receive: Receive,
    *,
    work_dir: Path,
    workspace_id: int,
) -> WorkspaceView:
    """Save a checkpoint of the current files, then upload as ``upload`` does (arXiv's
    ``checkpoint_with_upload``). A workspace the upload would be refused on (locked, released)
    is refused before anything is saved; an empty one has nothing to save and just uploads.
    The checkpoint stays if the upload then fails: it is what the workspace held before.
    """
    with uow.transaction() as session:
        workspace = get_workspace(
            session, actor, workspace_id, need=Privilege.execute, for_update=True
        )
        _require_writable(workspace)
        if workspace.file_count:
            save_checkpoint(session, actor, workspace_id)
    return upload(uow, blobs, actor, receive, work_dir=work_dir, workspace_id=workspace_id)


# --- the quarantine (the rest is in _quarantine.py) ------------------------------------------


def restore_removed(
    uow: UnitOfWork,
    blobs: BlobStore,
    actor: Actor,
    workspace_id: int,
    entry_id: str,
    *,
    work_dir: Path,
    path: str | None = None,
    overwrite: bool = False,
) -> WorkspaceView:
    """Put a quarantined file back into the workspace, through the checks of an upload.

    It goes back to its own path unless ``path`` names another. A current file there is a
    ``NameTaken`` (409) unless ``overwrite``: then that file is replaced and goes to the
    quarantine itself, so a restore loses nothing either. The checks must let the file through
    at that path: a rule that would remove, rename or refuse it again refuses the restore
    (``Invalid``, naming the findings), and the entry stays; restore it under another ``path``,
    or download it. Refused (403) while the workspace is locked or released, like an upload.

    The file is checked with no transaction open, then applied under the workspace's row lock,
    where the entry leaves the quarantine: of two restores racing on one entry, one restores it
    and the other finds no entry (404).
    """
    with uow.transaction() as session:
        workspace = owned_for_restore(session, actor, workspace_id)
        _require_writable(workspace)
        entry = lookup_removed(session, workspace, entry_id)
        target = path.strip("/") if path else entry.public_path
        _check_name_free(session, workspace, target, overwrite=overwrite)
        sha256, modified = entry.sha256, entry.modified_at
        archive = workspace.archive
        existing_total, existing_count = workspace.total_size, workspace.file_count
    folder, _, name = target.rpartition("/")
    scratch = scratch_dir(work_dir, "restore-")
    try:
        source = scratch / "restored"
        with blobs.open(sha256) as stored, source.open("xb") as copy:
            shutil.copyfileobj(stored, copy, 1024 * 1024)
        prepared = prepare_upload(
            blobs,
            source,
            name,
            work_dir=work_dir,
            archive=archive,
            existing_total=existing_total,
            existing_count=existing_count,
            folder=tuple(folder.split("/")) if folder else (),
            sha256=sha256,
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    _require_restorable(prepared, target)
    prepared.filename = f"removed file {target}"
    prepared.files = [replace(f, mtime=int(modified.timestamp())) for f in prepared.files]
    with uow.transaction() as session:
        workspace = owned_for_restore(session, actor, workspace_id)
        _require_writable(workspace)
        entry = lookup_removed(session, workspace, entry_id, for_update=True)
        _check_name_free(session, workspace, target, overwrite=overwrite)
        view = apply_upload(session, actor, workspace_id, prepared)
        if not any(f.public_path == target for f in view.files):
            # A merge rule refused it (limits, a file/folder clash): the transaction rolls back.
            raise Invalid(_refusal(target, [f for f in view.findings if f.level == "fatal"]))
        log(
            session,
            workspace,
            actor,
            "info",
            f"restored removed file '{entry.public_path}' as '{target}' (removed by {entry.rule})",
        )
        session.delete(entry)
        session.flush()
        return describe(session, workspace)


def _check_name_free(
    session: Session, workspace: Workspace, target: str, *, overwrite: bool
) -> None:
    if overwrite:
        return
    try:
        find_file(session, workspace, target)
    except NotFound:
        return
    raise NameTaken(
        f"The workspace has a file '{target}' already: restore with overwrite=true to replace "
        "it (it then goes to the removed files), or give another path."
    )


def _require_restorable(prepared: PreparedUpload, target: str) -> None:
    """The checks must give back exactly the file, at ``target``."""
    if not prepared.fatal and [f.public_path for f in prepared.files] == [target]:
        return
    raise Invalid(_refusal(target, [f for f in prepared.findings if f.level != "info"]))


def _refusal(target: str, findings: Sequence[Finding]) -> str:
    said = " ".join(f.message for f in findings) or "it would not be kept as it is."
    return (
        f"'{target}' cannot be restored there: the checks of an upload say: {said} Restore it "
        "under another path, or download it."
    )
