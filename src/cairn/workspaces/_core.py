"""What every workspace module builds on: loading a workspace with its access checks, the source
log, the file rows, the summary refresh and the package record.

Private to the area: ``service`` re-exports the public names, and ``_builds``, ``_checkpoints``
and ``_quarantine`` import from here, so none of them imports ``service`` (which imports them).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from cairn.accounts.service import Actor, Privilege
from cairn.db import new_id, utcnow
from cairn.errors import Forbidden, NotFound
from cairn.provenance import service as provenance
from cairn.workspaces._arxiv_rules import bib_rules
from cairn.workspaces._checks import Finding, case_duplicates, infer_source_format
from cairn.workspaces._limits import DEFAULT_LIMITS, RuleSet, find_limits
from cairn.workspaces._package import PackageFile
from cairn.workspaces.models import (
    Workspace,
    WorkspaceFile,
    WorkspaceFinding,
    WorkspaceLogEntry,
    WorkspaceRemovedFile,
)

__all__ = [
    "ACTIVE",
    "DELETED",
    "LOCKED",
    "MSG_DELETED",
    "MSG_FILE_NOT_FOUND",
    "MSG_LOCKED",
    "MSG_NOT_ACTIVE",
    "MSG_NOT_FOUND",
    "RELEASED",
    "UNLOCKED",
    "FileRecord",
    "Package",
    "RemovedFile",
    "WorkspaceView",
    "describe",
    "get_workspace",
    "keep_removed",
    "list_files",
    "log",
    "log_many",
    "manifest_checksum",
    "removed_file",
    "store_package",
]

ACTIVE, RELEASED, DELETED = "ACTIVE", "RELEASED", "DELETED"
LOCKED, UNLOCKED = "LOCKED", "UNLOCKED"

MSG_NOT_FOUND = "workspace not found"
MSG_FILE_NOT_FOUND = "file not found"
MSG_NOT_ACTIVE = "upload workspace is not active."
MSG_LOCKED = "upload workspace is locked."
MSG_DELETED = "Request failed. Workspace has been deleted."


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


def _delete_rows(session: Session, workspace_id: int, paths: Sequence[str]) -> None:
    if paths:
        session.execute(
            delete(WorkspaceFile).where(
                WorkspaceFile.workspace_id == workspace_id, WorkspaceFile.public_path.in_(paths)
            )
        )


def _rules(workspace: Workspace) -> RuleSet:
    return (find_limits(workspace.archive) or DEFAULT_LIMITS).rules


def _refresh_summary(
    session: Session,
    workspace: Workspace,
    actor: Actor,
    findings: list[Finding],
    *,
    changed: bool,
) -> list[FileRecord]:
    """Re-run the workspace-wide checks and store findings, status and checksum; returns the
    files, so that the summary after a change reads the file rows once (``describe``).

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
            reasons = {r.public_path: (r.rule, r.finding.message) for r in removals}
            keep_removed(
                session,
                workspace,
                actor,
                [removed_file(f, *reasons[f.public_path]) for f in files if f.public_path in gone],
            )
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
    return files


def manifest_checksum(files: Iterable[FileRecord]) -> str:
    """SHA-256 over the sorted (path, content hash, mtime) list: it names the package exactly,
    since the package is built deterministically from these alone."""
    digest = hashlib.sha256()
    for f in sorted(files, key=lambda f: f.public_path):
        digest.update(f"{f.public_path}\0{f.sha256}\0{int(f.modified_at.timestamp())}\n".encode())
    return digest.hexdigest()


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
    removed_count: int = 0  # entries in its quarantine
    removed_size: int = 0  # their bytes, kept in the blob store too


def describe(
    session: Session, workspace: Workspace, files: list[FileRecord] | None = None
) -> WorkspaceView:
    """The summary; ``files`` when the caller has just read them (``_refresh_summary``)."""
    findings = session.execute(
        select(WorkspaceFinding.level, WorkspaceFinding.public_path, WorkspaceFinding.message)
        .where(WorkspaceFinding.workspace_id == workspace.id)
        .order_by(WorkspaceFinding.id)
    )
    removed_count, removed_size = session.execute(
        select(func.count(), func.coalesce(func.sum(WorkspaceRemovedFile.size), 0)).where(
            WorkspaceRemovedFile.workspace_id == workspace.id
        )
    ).one()
    return WorkspaceView(
        workspace,
        list_files(session, workspace.id) if files is None else files,
        [Finding(level, path, message) for level, path, message in findings],  # type: ignore[arg-type]
        int(removed_count),
        int(removed_size),
    )


# --- the quarantine's rows (the rest is in _quarantine.py) ---------------------------------------


@dataclass(frozen=True)
class RemovedFile:
    """A file leaving the workspace (or an upload) that the quarantine keeps, and why."""

    public_path: str
    sha256: str
    size: int
    file_type: str
    rule: str  # the check that removed it (arXiv's checker name where it is arXiv's rule)
    reason: str  # what the finding said
    modified_at: datetime | None = None  # None: the time it was removed


def removed_file(record: FileRecord, rule: str, reason: str) -> RemovedFile:
    """A current file of the workspace, about to be removed or replaced."""
    return RemovedFile(
        record.public_path,
        record.sha256,
        record.size,
        record.file_type,
        rule,
        reason,
        record.modified_at,
    )


def keep_removed(
    session: Session, workspace: Workspace, actor: Actor | None, removed: Sequence[RemovedFile]
) -> None:
    """Put files in the workspace's quarantine, in one statement; their blobs are stored."""
    if not removed:
        return
    now = utcnow()
    session.execute(
        insert(WorkspaceRemovedFile),
        [
            {
                "id": new_id(),
                "workspace_id": workspace.id,
                "public_path": r.public_path,
                "rule": r.rule,
                "reason": r.reason,
                "removed_at": now,
                "removed_by": actor.id if actor else None,
                "sha256": r.sha256,
                "size": r.size,
                "file_type": r.file_type,
                "modified_at": r.modified_at or now,
            }
            for r in removed
        ],
    )


def _delete_all_rows(session: Session, workspace: Workspace) -> int:
    gone = session.execute(delete(WorkspaceFile).where(WorkspaceFile.workspace_id == workspace.id))
    return int(gone.rowcount)  # type: ignore[attr-defined]


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
