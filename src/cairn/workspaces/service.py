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
from typing import Literal

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from cairn.accounts.service import Actor, Privilege
from cairn.blobs import BlobStore
from cairn.db import UnitOfWork, paginate, utcnow
from cairn.errors import BadRequest, Forbidden, Invalid, NotFound
from cairn.provenance import service as provenance
from cairn.tempfiles import scratch_dir
from cairn.workspaces import _filetypes as ft
from cairn.workspaces._arxiv_rules import Removal, bib_rules, generated_files, msg_dvi
from cairn.workspaces._checks import (
    Finding,
    case_duplicates,
    display_name,
    infer_source_format,
)
from cairn.workspaces._limits import (
    ARXIV_TARGET,
    DEFAULT_LIMITS,
    Limits,
    RuleSet,
    find_limits,
    known_targets,
)
from cairn.workspaces._package import PackageFile, build_package
from cairn.workspaces._unpack import process_upload
from cairn.workspaces.models import (
    Workspace,
    WorkspaceCheckpoint,
    WorkspaceFile,
    WorkspaceFinding,
    WorkspaceLogEntry,
)

__all__ = [
    "ACTIVE",
    "ARXIV_TARGET",
    "DELETED",
    "LOCKED",
    "RELEASED",
    "UNLOCKED",
    "FileDownload",
    "FileRecord",
    "Package",
    "PreparedUpload",
    "Receive",
    "UploadRequest",
    "WorkspaceView",
    "apply_upload",
    "change_state",
    "create_workspace",
    "delete_all_files",
    "delete_file",
    "delete_named_or_all",
    "delete_workspace",
    "describe",
    "file_download",
    "find_file",
    "get_package",
    "get_workspace",
    "list_files",
    "list_workspaces",
    "log",
    "log_many",
    "page_files",
    "prepare_upload",
    "read_log",
    "target_limits",
    "upload",
    "uploaded_file",
    "view_workspace",
]

ACTIVE, RELEASED, DELETED = "ACTIVE", "RELEASED", "DELETED"
LOCKED, UNLOCKED = "LOCKED", "UNLOCKED"

MSG_NOT_FOUND = "workspace not found"
MSG_FILE_NOT_FOUND = "file not found"
MSG_NOT_ACTIVE = "upload workspace is not active."
MSG_LOCKED = "upload workspace is locked."
MSG_DELETED = "Request failed. Workspace has been deleted."


# --- access -----------------------------------------------------------------------------------


def _load(session: Session, workspace_id: int, *, for_update: bool = False) -> Workspace:
    query = select(Workspace).where(Workspace.id == workspace_id)
    if for_update:
        # PostgreSQL: a row lock serialises concurrent uploads to one workspace. SQLite: every
        # write transaction already holds the database lock (BEGIN IMMEDIATE, see cairn.db).
        # populate_existing: decide on the row as the database holds it now, never on a copy
        # the session read before (an upload racing a delete once landed after it).
        query = query.with_for_update().execution_options(populate_existing=True)
    workspace = session.scalar(query)
    if workspace is None:
        raise NotFound(MSG_NOT_FOUND)
    return workspace


def get_workspace(
    session: Session,
    actor: Actor,
    workspace_id: int,
    *,
    need: Privilege = Privilege.view,
    for_update: bool = False,
) -> Workspace:
    """The workspace if the actor's organisation owns it; another organisation's is not found."""
    workspace = _load(session, workspace_id, for_update=for_update)
    if workspace.organisation_id not in actor.privileges:
        raise NotFound(MSG_NOT_FOUND)
    actor.require(workspace.organisation_id, need)
    return workspace


def _require_writable(workspace: Workspace) -> None:
    if workspace.state == DELETED:
        raise NotFound(MSG_NOT_FOUND)
    if workspace.state != ACTIVE:
        raise Forbidden(MSG_NOT_ACTIVE)
    if workspace.lock_state == LOCKED:
        raise Forbidden(MSG_LOCKED)


def view_workspace(session: Session, actor: Actor, workspace_id: int) -> WorkspaceView:
    """The workspace with its files and findings, if the actor may see it."""
    return describe(session, get_workspace(session, actor, workspace_id))


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


def log(
    session: Session, workspace: Workspace, actor: Actor | None, level: str, message: str
) -> None:
    session.add(
        WorkspaceLogEntry(
            workspace_id=workspace.id,
            level=level,
            actor_id=actor.id if actor else None,
            message=message,
        )
    )


def log_many(
    session: Session,
    workspace: Workspace,
    actor: Actor | None,
    entries: Sequence[tuple[str, str]],
) -> None:
    """Append many ``(level, message)`` lines in one statement."""
    if entries:
        session.execute(
            insert(WorkspaceLogEntry),
            [
                {
                    "workspace_id": workspace.id,
                    "level": level,
                    "actor_id": actor.id if actor else None,
                    "message": message,
                    "at": utcnow(),
                }
                for level, message in entries
            ],
        )


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
    started_at: datetime = field(default_factory=utcnow)

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
) -> PreparedUpload:
    """Unpack, sanitize and check ``source`` and put every resulting file in the blob store.

    Touches no database. Nothing is stored when a finding is fatal.
    """
    limits = target_limits(archive)
    upload_size = source.stat().st_size
    prepared = PreparedUpload(
        filename=display_name(filename), upload_size=upload_size, limits=limits
    )
    if upload_size == 0:
        raise Invalid("file payload is zero length")
    staging = scratch_dir(work_dir, "stage-")
    try:
        result = process_upload(
            source,
            filename,
            staging=staging,
            limits=limits,
            ancillary=ancillary,
            existing_total=existing_total,
            existing_count=existing_count,
        )
        prepared.findings = list(result.findings)
        if result.fatal:
            return prepared
        refs = blobs.ingest([staged.blob for staged in result.files])
        prepared.files = [
            StoredFile(staged.public_path, ref.sha256, ref.size, staged.file_type, staged.mtime)
            for staged, ref in zip(result.files, refs, strict=True)
        ]
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return prepared


def apply_upload(
    session: Session, actor: Actor, workspace_id: int, prepared: PreparedUpload
) -> Workspace:
    """Merge a prepared upload into the workspace in one transaction, or change no file at all.

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
    if not prepared.fatal:
        findings.extend(_merged_limit_findings(current, prepared))
        findings.extend(_file_folder_clashes(current, prepared))
        if prepared.limits.rules == "arxiv":
            files, dropped, merged = _arxiv_merge(current, prepared.files)
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
        _delete_rows(session, workspace.id, [r.public_path for r in dropped])
        _merge_files(session, workspace.id, current, files, now)
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
    _refresh_summary(session, workspace, actor, findings, changed=changed)
    return workspace


@dataclass(frozen=True)
class UploadRequest:
    """One upload as received: the bytes (a file in the work folder) and the client's options."""

    path: Path
    filename: str
    archive: str | None = None
    ancillary: bool = False
    organisation_id: str | None = None


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
        )
    with uow.transaction() as session:
        if workspace_id is None:
            created = _new_workspace(
                session, actor, organisation_id=organisation_id, archive=request.archive
            )
            workspace_id = created.id
        return describe(session, apply_upload(session, actor, workspace_id, prepared))


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
) -> tuple[list[StoredFile], list[Removal], list[Finding]]:
    """arXiv's rules over the merged file set: TeX-generated files next to their ``.tex`` go
    (rule 17, also when the ``.tex`` came earlier or comes later), then a DVI file left is fatal
    (rule 21). Returns the new files to keep, the existing files to remove, and the findings."""
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
    return kept, [r for r in removals if r.public_path in current], findings


def _delete_rows(session: Session, workspace_id: int, paths: Sequence[str]) -> None:
    if paths:
        session.execute(
            delete(WorkspaceFile).where(
                WorkspaceFile.workspace_id == workspace_id, WorkspaceFile.public_path.in_(paths)
            )
        )


def _rules(workspace: Workspace) -> RuleSet:
    return (find_limits(workspace.archive) or DEFAULT_LIMITS).rules


def _folders(paths: Iterable[str]) -> set[str]:
    return {path[:i] for path in paths for i, ch in enumerate(path) if ch == "/"}


def _file_folder_clashes(current: dict[str, FileRecord], prepared: PreparedUpload) -> list[Finding]:
    """A path may not be a file and a folder at once: the package could not be unpacked."""
    new = {f.public_path for f in prepared.files}
    kept = current.keys() - new
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
    upload's time.
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
        for f in files
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
    if fresh:
        session.execute(insert(WorkspaceFile), fresh)
    if replaced:
        session.execute(update(WorkspaceFile), replaced)


def _refresh_summary(
    session: Session,
    workspace: Workspace,
    actor: Actor,
    findings: list[Finding],
    *,
    changed: bool,
) -> None:
    """Re-run the workspace-wide checks and store findings, status and checksum.

    On the arXiv targets the source type's findings are fatal (ERRORS, the files stay) and
    CheckForMissingReferences runs over the whole workspace (rule 28): a ``.bib`` goes once its
    ``.bbl`` is there, whichever upload brought which.
    """
    files = list_files(session, workspace.id)
    arxiv = _rules(workspace) == "arxiv"
    bib_findings: list[Finding] = []
    if arxiv and files:
        removals, bib_findings = bib_rules(f.public_path for f in files)
        if removals:
            gone = {r.public_path for r in removals}
            _delete_rows(session, workspace.id, sorted(gone))
            files = [f for f in files if f.public_path not in gone]
            bib_findings = [r.finding for r in removals] + bib_findings
            changed = True
    if files:
        source_format, format_findings = infer_source_format(
            ((f.public_path, f.file_type) for f in files), level="fatal" if arxiv else "warn"
        )
    else:
        source_format, format_findings = "unknown", []
    findings = (
        findings + format_findings + bib_findings + case_duplicates(f.public_path for f in files)
    )
    session.execute(delete(WorkspaceFinding).where(WorkspaceFinding.workspace_id == workspace.id))
    if findings:
        session.execute(
            insert(WorkspaceFinding),
            [
                {
                    "workspace_id": workspace.id,
                    "level": f.level,
                    "public_path": f.public_path,
                    "message": f.message,
                }
                for f in findings
            ],
        )
    log_many(
        session,
        workspace,
        actor,
        [(f.level, f"{f.public_path or '-'}: {f.message}") for f in findings if f.level != "info"],
    )
    levels = {f.level for f in findings}
    workspace.upload_status = (
        "ERRORS" if "fatal" in levels else "READY_WITH_WARNINGS" if "warn" in levels else "READY"
    )
    workspace.source_format = source_format
    workspace.total_size = sum(f.size for f in files)
    workspace.file_count = len(files)
    if changed:
        workspace.checksum = manifest_checksum(files)
        workspace.modified_at = utcnow()
    session.flush()


def manifest_checksum(files: Iterable[FileRecord]) -> str:
    """SHA-256 over the sorted (path, content hash, mtime) list: it names the package exactly,
    since the package is built deterministically from these alone."""
    digest = hashlib.sha256()
    for f in sorted(files, key=lambda f: f.public_path):
        digest.update(f"{f.public_path}\0{f.sha256}\0{int(f.modified_at.timestamp())}\n".encode())
    return digest.hexdigest()


# --- reading files and findings ------------------------------------------------------------------


@dataclass(frozen=True)
class FileRecord:
    """One current file of a workspace (read as plain rows: workspaces hold many files)."""

    id: int
    public_path: str
    sha256: str
    size: int
    file_type: str
    modified_at: datetime


_FILE_COLUMNS = (
    WorkspaceFile.id,
    WorkspaceFile.public_path,
    WorkspaceFile.sha256,
    WorkspaceFile.size,
    WorkspaceFile.file_type,
    WorkspaceFile.modified_at,
)


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


def list_files(session: Session, workspace_id: int) -> list[FileRecord]:
    rows = session.execute(
        select(*_FILE_COLUMNS)
        .where(WorkspaceFile.workspace_id == workspace_id)
        .order_by(WorkspaceFile.public_path)
    )
    return [FileRecord(*row) for row in rows]


@dataclass(frozen=True)
class WorkspaceView:
    """Everything a summary shows: the workspace, its files and its current findings."""

    workspace: Workspace
    files: list[FileRecord]
    findings: list[Finding]


def describe(session: Session, workspace: Workspace) -> WorkspaceView:
    findings = session.execute(
        select(WorkspaceFinding.level, WorkspaceFinding.public_path, WorkspaceFinding.message)
        .where(WorkspaceFinding.workspace_id == workspace.id)
        .order_by(WorkspaceFinding.id)
    )
    return WorkspaceView(
        workspace,
        list_files(session, workspace.id),
        [Finding(level, path, message) for level, path, message in findings],  # type: ignore[arg-type]
    )


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
    _refresh_summary(session, workspace, actor, [], changed=True)
    return describe(session, workspace)


def _delete_all_rows(session: Session, workspace: Workspace) -> int:
    gone = session.execute(delete(WorkspaceFile).where(WorkspaceFile.workspace_id == workspace.id))
    return int(gone.rowcount)  # type: ignore[attr-defined]


def delete_all_files(session: Session, actor: Actor, workspace_id: int) -> WorkspaceView:
    workspace = get_workspace(session, actor, workspace_id, need=Privilege.execute, for_update=True)
    _require_writable(workspace)
    count = _delete_all_rows(session, workspace)
    log(session, workspace, actor, "info", f"deleted all files ({count})")
    _refresh_summary(session, workspace, actor, [], changed=True)
    return describe(session, workspace)


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
    # Checkpoints go with the workspace's files: a deleted workspace keeps no content.
    session.execute(
        delete(WorkspaceCheckpoint).where(WorkspaceCheckpoint.workspace_id == workspace.id)
    )
    workspace.state = DELETED
    workspace.package_sha256 = workspace.package_size = workspace.package_checksum = None
    log(session, workspace, actor, "info", f"deleted workspace ({count} files removed)")
    _refresh_summary(session, workspace, actor, [], changed=True)
    return describe(session, workspace)


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


@dataclass(frozen=True)
class Package:
    """The workspace content package: its checksum (the ETag) and, once built, its blob."""

    workspace_id: int
    owner_id: str
    checksum: str
    modified_at: datetime
    sha256: str | None = None
    size: int | None = None
    not_modified: bool = False


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


def store_package(
    session: Session,
    workspace: Workspace,
    actor: Actor | None,
    files: list[PackageFile],
    sha256: str,
    size: int,
) -> None:
    """Record a package built from ``files`` as the workspace's current one, logged, and as a
    platform activity in the provenance store, so lineage runs from the files to the package.
    The caller has checked, under the row lock, that the content is still what was built."""
    workspace.package_sha256, workspace.package_size = sha256, size
    workspace.package_checksum = workspace.checksum
    log(session, workspace, actor, "info", f"package built ({size} bytes)")
    provenance.record_activity(
        session,
        organisation_id=workspace.organisation_id,
        kind="workspace.package",
        used=[provenance.ActivityFile(f.sha256, f.public_path, f.size) for f in files],
        generated=[provenance.ActivityFile(sha256, f"workspace-{workspace.id}.tar.gz")],
        user=actor.id if actor else None,
    )


def _cached_package(workspace: Workspace) -> tuple[str, int] | None:
    if workspace.package_sha256 and workspace.package_checksum == workspace.checksum:
        return workspace.package_sha256, workspace.package_size or 0
    return None


# Checkpoints (_checkpoints.py) and background package builds (_builds.py) live in their own
# modules, which build on the functions above; imported last so that ``service`` stays the one
# place callers import the area's functions from.
from cairn.workspaces._builds import (  # noqa: E402
    PackageBuilder,
    package_builder,
    refresh_package,
)
from cairn.workspaces._checkpoints import (  # noqa: E402
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
    upload_after_checkpoint,
)

__all__ += [
    "MAX_CHECKPOINTS",
    "CheckpointLimit",
    "PackageBuilder",
    "SavedCheckpoint",
    "checkpoint_files",
    "checkpoint_package",
    "delete_all_checkpoints",
    "delete_checkpoint",
    "find_checkpoint",
    "list_checkpoints",
    "package_builder",
    "page_checkpoints",
    "refresh_package",
    "restore_checkpoint",
    "save_checkpoint",
    "upload_after_checkpoint",
]
