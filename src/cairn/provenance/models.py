"""Provenance tables: recorded runs, their tags, the file versions they saw, and the edges.

The layout follows RunManager's ``execmeta`` / ``tags`` / ``filemeta`` (issue #14) with one
change: a file version (path + content + times) is a row of its own that several runs may
share, and ``prov_edges`` says which run used (read, execute) or generated (write) it. Lineage
queries then walk edges and file versions only, with indexes on hash and path.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cairn.db.base import Base, BlobHash, UtcDateTime, new_id, utcnow

__all__ = ["ACCESS_KINDS", "FileVersion", "Publication", "Run", "RunEdge", "RunTag"]

ACCESS_KINDS = ("read", "write", "execute")
"""``read`` and ``execute`` edges are *used*, ``write`` edges are *generated*."""


class Run(Base):
    """One recorded run (RunManager's execmeta row): a script, a program or a platform action.

    ``seq`` is the store's run number (RunManager's ``seq``); ``id`` is the UUID users see.
    ``organisation_id`` is null in a local store (the data folder's database) and set on a
    server, where every query is limited to the caller's organisations.
    """

    __tablename__ = "prov_runs"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True, default=new_id)
    organisation_id: Mapped[str | None] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(64), default="script")
    script: Mapped[str | None] = mapped_column(Text)
    script_sha256: Mapped[str | None] = mapped_column(String(64))
    arguments: Mapped[str] = mapped_column(Text, default="[]")
    cwd: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(16), default="running")
    exit_code: Mapped[int | None] = mapped_column(Integer)
    error_message: Mapped[str | None] = mapped_column(Text)
    traceback: Mapped[str | None] = mapped_column(Text)
    username: Mapped[str | None] = mapped_column(String(256))
    host: Mapped[str | None] = mapped_column(String(256))
    os: Mapped[str | None] = mapped_column(String(256))
    interpreter: Mapped[str | None] = mapped_column(Text)
    interpreter_version: Mapped[str | None] = mapped_column(String(256))
    packages: Mapped[str] = mapped_column(Text, default="[]")
    console_log: Mapped[str | None] = mapped_column(Text)
    science_metadata: Mapped[str | None] = mapped_column(Text)
    """The run's editable metadata template (JSON: title, creators, ...), RunManager's
    ``putMetadata``; null until someone edits it."""


class RunTag(Base):
    """A tag of a run (several per run; RunManager's ``tags`` table)."""

    __tablename__ = "prov_run_tags"

    run_seq: Mapped[int] = mapped_column(
        ForeignKey("prov_runs.seq", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(256), primary_key=True)


class FileVersion(Base):
    """One version of one file: where it was, its content hash, size and times.

    ``archived_sha256`` is the blob holding this exact content, or null when it was not kept
    (``flagged`` then says why: too large, excluded, unreadable, vanished). ``path_key`` is the
    SHA-256 of ``path``, so joins by path use a short index whatever the path's length.
    """

    __tablename__ = "prov_file_versions"
    __table_args__ = (
        Index("ix_prov_file_versions_sha256_ctime", "sha256", "created_at"),
        # Versions are looked up by organisation and path together (``service._versions``):
        # with one index per column SQLite read the organisation's whole history.
        Index("ix_prov_file_versions_organisation_path", "organisation_id", "path_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    organisation_id: Mapped[str | None] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE")
    )
    path: Mapped[str] = mapped_column(Text)
    path_key: Mapped[str] = mapped_column(String(64), index=True)
    sha256: Mapped[str | None] = mapped_column(String(64))
    size: Mapped[int | None] = mapped_column(BigInteger)
    modified_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    archived_sha256: Mapped[str | None] = mapped_column(BlobHash)
    flagged: Mapped[str | None] = mapped_column(String(256))


class RunEdge(Base):
    """A run used (read / execute) or generated (write) a file version."""

    __tablename__ = "prov_edges"
    __table_args__ = (Index("ix_prov_edges_file_id_access", "file_id", "access"),)

    run_seq: Mapped[int] = mapped_column(
        ForeignKey("prov_runs.seq", ondelete="CASCADE"), primary_key=True
    )
    file_id: Mapped[int] = mapped_column(
        ForeignKey("prov_file_versions.id", ondelete="CASCADE"), primary_key=True
    )
    access: Mapped[str] = mapped_column(String(8), primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Publication(Base):
    """One published version of a run: its stable identifier (``id``, a UUID), the metadata it
    was published with and the SHA-256 of the package written. Publishing the run again makes
    version + 1, linked to this one by ``previous_id``."""

    __tablename__ = "prov_publications"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    run_seq: Mapped[int] = mapped_column(
        ForeignKey("prov_runs.seq", ondelete="CASCADE"), index=True
    )
    version: Mapped[int] = mapped_column(Integer, default=1)
    previous_id: Mapped[str | None] = mapped_column(
        ForeignKey("prov_publications.id", ondelete="SET NULL")
    )
    science_metadata: Mapped[str] = mapped_column(Text)
    package_sha256: Mapped[str] = mapped_column(String(64))
    doi: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
