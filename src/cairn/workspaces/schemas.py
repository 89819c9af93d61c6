"""Wire shapes of upload workspaces: cairn's own (``WorkspaceRead`` …) and the arXiv file
manager's summary (``WorkspaceSummary``), both built from the same service views."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from cairn.workspaces.models import Workspace, WorkspaceCheckpoint, WorkspaceRemovedFile
from cairn.workspaces.service import FileRecord, WorkspaceView

__all__ = [
    "ArxivCheckpoint",
    "CheckpointRead",
    "FileRead",
    "FindingRead",
    "LogEntryRead",
    "RemovedFileRead",
    "WorkspaceBrief",
    "WorkspaceCreate",
    "WorkspaceFileRead",
    "WorkspaceRead",
    "WorkspaceSummary",
    "arxiv_checkpoint",
    "brief",
    "checkpoint_filename",
    "checkpoint_read",
    "file_read",
    "removed_read",
    "summarise",
    "workspace_read",
]


# --- cairn's own shapes ---------------------------------------------------------------------


class WorkspaceCreate(BaseModel):
    """An empty workspace; upload into it with ``POST /api/v1/workspaces/{id}/files``."""

    model_config = ConfigDict(extra="forbid")

    organisation_id: str | None = Field(
        default=None, max_length=64, description="Where to create it (if you have several)."
    )
    archive: str | None = Field(
        default=None,
        max_length=100,
        description="Target archive whose size and type limits apply (e.g. math, data).",
    )


class FindingRead(BaseModel):
    level: str = Field(description="info, warn or fatal.")
    path: str | None = Field(description="The file it is about; null for the whole upload.")
    message: str


class FileRead(BaseModel):
    path: str = Field(description="Path inside the workspace; ancillary files under anc/.")
    size: int
    type: str = Field(description="Type detected from the content, e.g. LATEX2e, PDF, IMAGE.")
    sha256: str = Field(description="SHA-256 of the content; the file's ETag.")
    modified_at: datetime


class WorkspaceBrief(BaseModel):
    """A workspace in a listing."""

    id: int
    organisation_id: str
    owner_id: str
    archive: str | None = Field(description="Target archive; null for the default limits.")
    state: str = Field(description="ACTIVE, RELEASED or DELETED.")
    lock_state: str = Field(description="LOCKED or UNLOCKED.")
    status: str = Field(description="READY, READY_WITH_WARNINGS or ERRORS (latest operation).")
    source_format: str = Field(description="tex, pdf, html, … or unknown.")
    checksum: str | None = Field(description="Identifies the content; the package's ETag.")
    total_size: int = Field(description="Bytes of all current files.")
    file_count: int
    created_at: datetime
    modified_at: datetime


class WorkspaceRead(WorkspaceBrief):
    """A workspace and the findings of its latest operation; files are at ``…/files``."""

    package_size: int | None = Field(
        description="Size of the content package; null until it has been built."
    )
    upload_started_at: datetime | None
    upload_completed_at: datetime | None
    findings: list[FindingRead]
    removed_count: int = Field(
        0, description="Files rules removed or changes replaced, kept at `…/removed`."
    )
    removed_size: int = Field(0, description="Their bytes, stored as well.")
    stored_size: int = Field(
        0, description="Bytes the workspace keeps: its current files and its removed files."
    )


def _brief_fields(workspace: Workspace) -> dict[str, Any]:
    return {
        "id": workspace.id,
        "organisation_id": workspace.organisation_id,
        "owner_id": workspace.owner_id,
        "archive": workspace.archive,
        "state": workspace.state,
        "lock_state": workspace.lock_state,
        "status": workspace.upload_status,
        "source_format": workspace.source_format,
        "checksum": workspace.checksum,
        "total_size": workspace.total_size,
        "file_count": workspace.file_count,
        "created_at": workspace.created_at,
        "modified_at": workspace.modified_at,
    }


def brief(workspace: Workspace) -> WorkspaceBrief:
    return WorkspaceBrief(**_brief_fields(workspace))


def workspace_read(view: WorkspaceView) -> WorkspaceRead:
    workspace = view.workspace
    return WorkspaceRead(
        **_brief_fields(workspace),
        package_size=_package_size(workspace),
        upload_started_at=workspace.upload_started_at,
        upload_completed_at=workspace.upload_completed_at,
        findings=[
            FindingRead(level=f.level, path=f.public_path, message=f.message) for f in view.findings
        ],
        removed_count=view.removed_count,
        removed_size=view.removed_size,
        stored_size=workspace.total_size + view.removed_size,
    )


def file_read(record: FileRecord) -> FileRead:
    return FileRead(
        path=record.public_path,
        size=record.size,
        type=record.file_type,
        sha256=record.sha256,
        modified_at=record.modified_at,
    )


def _package_size(workspace: Workspace) -> int | None:
    return workspace.package_size if workspace.package_checksum == workspace.checksum else None


# --- the arXiv file manager's shapes ----------------------------------------------------------


class WorkspaceFileRead(BaseModel):
    name: str = Field(description="The file's name without folders.")
    public_filepath: str = Field(
        description="Path inside the workspace; ancillary files under anc/."
    )
    size: int
    type: str = Field(description="Type detected from the content, e.g. LATEX2e, PDF, IMAGE.")
    modified_datetime: datetime
    errors: list[list[Any]] = Field(default_factory=list)


class WorkspaceSummary(BaseModel):
    """The workspace summary every file manager call answers with."""

    upload_id: int
    organisation_id: str
    owner_user_id: str
    upload_total_size: int
    upload_compressed_size: int | None = Field(
        description="Size of the content package; null until the package has been built."
    )
    created_datetime: datetime
    modified_datetime: datetime
    start_datetime: datetime | None
    completion_datetime: datetime | None
    files: list[WorkspaceFileRead]
    errors: list[list[Any]] = Field(description="[level, public_filepath, message] triples.")
    upload_status: str = Field(description="READY, READY_WITH_WARNINGS or ERRORS.")
    readiness: str = Field(description="Same as upload_status (newer file manager name).")
    workspace_state: str = Field(description="ACTIVE, RELEASED or DELETED.")
    lock_state: str = Field(description="LOCKED or UNLOCKED.")
    source_format: str
    checksum: str | None = Field(description="Identifies the content; the package's ETag.")
    reason: str | None = None


class LogEntryRead(BaseModel):
    """One line of a workspace's source log."""

    model_config = ConfigDict(from_attributes=True)

    at: datetime
    level: str = Field(description="info, warn, fatal or error.")
    actor_id: str | None = Field(description="Who did it (a user id).")
    message: str

    def as_text(self) -> str:
        return (
            f"{self.at.isoformat()} {self.level.upper():5} {self.actor_id or '-'} {self.message}\n"
        )


def summarise(view: WorkspaceView, *, reason: str | None = None) -> WorkspaceSummary:
    workspace = view.workspace
    errors = [[f.level, f.public_path, f.message] for f in view.findings]
    by_path: dict[str | None, list[list[Any]]] = {}
    for triple in errors:
        by_path.setdefault(triple[1], []).append(triple)
    return WorkspaceSummary(
        upload_id=workspace.id,
        organisation_id=workspace.organisation_id,
        owner_user_id=workspace.owner_id,
        upload_total_size=workspace.total_size,
        upload_compressed_size=_package_size(workspace),
        created_datetime=workspace.created_at,
        modified_datetime=workspace.modified_at,
        start_datetime=workspace.upload_started_at,
        completion_datetime=workspace.upload_completed_at,
        files=[
            WorkspaceFileRead(
                name=f.public_path.rsplit("/", 1)[-1],
                public_filepath=f.public_path,
                size=f.size,
                type=f.file_type,
                modified_datetime=f.modified_at,
                errors=by_path.get(f.public_path, []),
            )
            for f in view.files
        ],
        errors=errors,
        upload_status=workspace.upload_status,
        readiness=workspace.upload_status,
        workspace_state=workspace.state,
        lock_state=workspace.lock_state,
        source_format=workspace.source_format,
        checksum=workspace.checksum,
        reason=reason,
    )


# --- checkpoints (issue #13, section 4) ---------------------------------------------------------


class CheckpointRead(BaseModel):
    """A saved file set of a workspace: restore it, or download it as a package."""

    id: str
    workspace_id: int
    checksum: str = Field(
        description="Identifies the saved content (the workspace's checksum when it was saved); "
        "the ETag of the checkpoint's package. The file manager API names checkpoints by it."
    )
    file_count: int
    total_size: int = Field(description="Bytes of all its files.")
    package_size: int | None = Field(
        description="Size of its package; null until the package has been built."
    )
    created_at: datetime
    created_by: str | None = Field(description="Who saved it (a user id).")


def checkpoint_read(checkpoint: WorkspaceCheckpoint) -> CheckpointRead:
    return CheckpointRead(
        id=checkpoint.id,
        workspace_id=checkpoint.workspace_id,
        checksum=checkpoint.checksum,
        file_count=checkpoint.file_count,
        total_size=checkpoint.total_size,
        package_size=checkpoint.package_size,
        created_at=checkpoint.created_at,
        created_by=checkpoint.created_by,
    )


class ArxivCheckpoint(BaseModel):
    """A checkpoint as the file manager API lists it, named by its checksum."""

    checksum: str = Field(description="The checkpoint's name in the checkpoint routes.")
    name: str = Field(description="The file name its package downloads as.")
    upload_total_size: int = Field(description="Bytes of all its files.")
    upload_compressed_size: int | None = Field(
        description="Size of its package; null until the package has been built."
    )
    file_count: int
    created_datetime: datetime
    owner_user_id: str | None = Field(description="Who saved it.")


def arxiv_checkpoint(checkpoint: WorkspaceCheckpoint) -> ArxivCheckpoint:
    return ArxivCheckpoint(
        checksum=checkpoint.checksum,
        name=checkpoint_filename(checkpoint.workspace_id, checkpoint.checksum),
        upload_total_size=checkpoint.total_size,
        upload_compressed_size=checkpoint.package_size,
        file_count=checkpoint.file_count,
        created_datetime=checkpoint.created_at,
        owner_user_id=checkpoint.created_by,
    )


def checkpoint_filename(workspace_id: int, checksum: str) -> str:
    return f"{workspace_id}-checkpoint-{checksum[:12]}.tar.gz"


# --- the quarantine (issue #13, section 3) ------------------------------------------------------


class RemovedFileRead(BaseModel):
    """A file a rule removed (or a change replaced), kept: download it, or restore it."""

    id: str
    workspace_id: int
    path: str = Field(description="Where it was (or would have been) in the workspace.")
    rule: str = Field(description="The check that removed it, e.g. RemoveFilesWithLeadingDot.")
    reason: str = Field(description="What the check said.")
    removed_at: datetime
    removed_by: str | None = Field(description="Whose upload or restore removed it (a user id).")
    size: int
    type: str = Field(description="Type detected from the content.")
    sha256: str = Field(description="SHA-256 of the content; its download's ETag.")
    modified_at: datetime


def removed_read(entry: WorkspaceRemovedFile) -> RemovedFileRead:
    return RemovedFileRead(
        id=entry.id,
        workspace_id=entry.workspace_id,
        path=entry.public_path,
        rule=entry.rule,
        reason=entry.reason,
        removed_at=entry.removed_at,
        removed_by=entry.removed_by,
        size=entry.size,
        type=entry.file_type,
        sha256=entry.sha256,
        modified_at=entry.modified_at,
    )
