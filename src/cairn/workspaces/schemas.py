"""Wire shapes of upload workspaces: the arXiv file manager's summary, and cairn's list item."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from cairn.workspaces.models import Workspace
from cairn.workspaces.service import WorkspaceView

__all__ = [
    "LogEntryRead",
    "WorkspaceFileRead",
    "WorkspaceListItem",
    "WorkspaceSummary",
    "summarise",
]


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


class WorkspaceListItem(BaseModel):
    upload_id: int
    organisation_id: str
    owner_user_id: str
    workspace_state: str
    lock_state: str
    upload_status: str
    file_count: int
    upload_total_size: int
    created_datetime: datetime
    modified_datetime: datetime


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
    package_size = (
        workspace.package_size if workspace.package_checksum == workspace.checksum else None
    )
    return WorkspaceSummary(
        upload_id=workspace.id,
        organisation_id=workspace.organisation_id,
        owner_user_id=workspace.owner_id,
        upload_total_size=workspace.total_size,
        upload_compressed_size=package_size,
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


def list_item(workspace: Workspace) -> WorkspaceListItem:
    return WorkspaceListItem(
        upload_id=workspace.id,
        organisation_id=workspace.organisation_id,
        owner_user_id=workspace.owner_id,
        workspace_state=workspace.state,
        lock_state=workspace.lock_state,
        upload_status=workspace.upload_status,
        file_count=workspace.file_count,
        upload_total_size=workspace.total_size,
        created_datetime=workspace.created_at,
        modified_datetime=workspace.modified_at,
    )
