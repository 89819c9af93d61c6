"""Workspace tables: the workspace, its current files, its findings, its source log, its
checkpoints, the files rules removed (its quarantine) and its unfinished resumable uploads."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cairn.db.base import Base, BlobHash, UtcDateTime, new_id, utcnow

__all__ = [
    "Workspace",
    "WorkspaceCheckpoint",
    "WorkspaceCheckpointFile",
    "WorkspaceFile",
    "WorkspaceFinding",
    "WorkspaceLogEntry",
    "WorkspaceRemovedFile",
    "WorkspaceUpload",
]


class Workspace(Base):
    """An upload workspace; ids are integers because arXiv's ``upload_id`` is one."""

    __tablename__ = "workspaces"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    organisation_id: Mapped[str] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    archive: Mapped[str | None] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(16), default="ACTIVE")
    lock_state: Mapped[str] = mapped_column(String(16), default="UNLOCKED")
    upload_status: Mapped[str] = mapped_column(String(32), default="READY")
    source_format: Mapped[str] = mapped_column(String(16), default="unknown")
    checksum: Mapped[str | None] = mapped_column(String(64))
    total_size: Mapped[int] = mapped_column(BigInteger, default=0)
    file_count: Mapped[int] = mapped_column(Integer, default=0)
    package_sha256: Mapped[str | None] = mapped_column(BlobHash)
    package_size: Mapped[int | None] = mapped_column(BigInteger)
    package_checksum: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    modified_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    upload_started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    upload_completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class WorkspaceFile(Base):
    """A current file; rows are read and written in bulk (service.list_files, _merge_files)."""

    __tablename__ = "workspace_files"
    __table_args__ = (UniqueConstraint("workspace_id", "public_path"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    public_path: Mapped[str] = mapped_column(String(1024))
    sha256: Mapped[str] = mapped_column(BlobHash)
    size: Mapped[int] = mapped_column(BigInteger)
    file_type: Mapped[str] = mapped_column(String(32))
    modified_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class WorkspaceFinding(Base):
    """A warning or error of the latest operation, ``[level, public_path, message]`` on the wire."""

    __tablename__ = "workspace_findings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    level: Mapped[str] = mapped_column(String(8))
    public_path: Mapped[str | None] = mapped_column(String(1024))
    message: Mapped[str] = mapped_column(Text)


class WorkspaceLogEntry(Base):
    """One line of the workspace's source log: every action, request, warning and error."""

    __tablename__ = "workspace_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    level: Mapped[str] = mapped_column(String(8))
    actor_id: Mapped[str | None] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text)


class WorkspaceCheckpoint(Base):
    """A saved file set of a workspace (issue #13, section 4), named by its manifest checksum.

    One checkpoint per distinct content: saving the same files again returns the one there is.
    Its files reference the workspace's blobs, so a checkpoint costs rows, never bytes.
    """

    __tablename__ = "workspace_checkpoints"
    __table_args__ = (UniqueConstraint("workspace_id", "checksum"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    checksum: Mapped[str] = mapped_column(String(64))
    file_count: Mapped[int] = mapped_column(Integer)
    total_size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(64))
    package_sha256: Mapped[str | None] = mapped_column(BlobHash)
    package_size: Mapped[int | None] = mapped_column(BigInteger)


class WorkspaceCheckpointFile(Base):
    """One file of a checkpoint, as it was in the workspace when the checkpoint was saved."""

    __tablename__ = "workspace_checkpoint_files"
    __table_args__ = (UniqueConstraint("checkpoint_id", "public_path"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    checkpoint_id: Mapped[str] = mapped_column(
        ForeignKey("workspace_checkpoints.id", ondelete="CASCADE"), index=True
    )
    public_path: Mapped[str] = mapped_column(String(1024))
    sha256: Mapped[str] = mapped_column(BlobHash)
    size: Mapped[int] = mapped_column(BigInteger)
    file_type: Mapped[str] = mapped_column(String(32))
    modified_at: Mapped[datetime] = mapped_column(UtcDateTime)


class WorkspaceRemovedFile(Base):
    """A file a rule removed or a change replaced, kept in the quarantine (issue #13, section 3):
    its bytes stay in the blob store until the workspace is deleted, and its owner may download
    or restore it. Several entries may share a path (each removal is one entry)."""

    __tablename__ = "workspace_removed_files"

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    public_path: Mapped[str] = mapped_column(String(1024))
    rule: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    removed_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    removed_by: Mapped[str | None] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(BlobHash)
    size: Mapped[int] = mapped_column(BigInteger)
    file_type: Mapped[str] = mapped_column(String(32))
    modified_at: Mapped[datetime] = mapped_column(UtcDateTime)


class WorkspaceUpload(Base):
    """An unfinished resumable (tus 1.0) upload into a workspace (issue #13, section 7).

    Its bytes so far are one file in the blob store's partial folder, named by ``id``;
    ``upload_offset`` counts only bytes that were made durable (fsynced) before it was raised,
    so a server killed mid-PATCH resumes from it. The row goes when the last byte has been
    processed like any upload, when the client terminates it, or (once expired) in gc.
    """

    __tablename__ = "workspace_uploads"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    organisation_id: Mapped[str] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    created_by: Mapped[str | None] = mapped_column(String(64))
    upload_length: Mapped[int] = mapped_column(BigInteger)
    upload_offset: Mapped[int] = mapped_column(BigInteger, default=0)
    upload_metadata: Mapped[str] = mapped_column(Text, default="")
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
