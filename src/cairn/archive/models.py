"""Archive tables: storages, source systems, containers, their signatures, reports and events.

Storages and source systems have integer ids because the CryptoPro Archive contract exposes
them as integers (``StorageId``, ``sourceSystemId``); containers are uuids, as there.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from cairn.db.base import Base, BlobHash, UtcDateTime, new_id, utcnow

__all__ = [
    "ArchiveContainer",
    "ArchiveContainerCount",
    "ArchiveEvent",
    "ArchiveLogHead",
    "ArchiveLogNode",
    "ArchivePluginTask",
    "ArchiveSignature",
    "ArchiveSourceSystem",
    "ArchiveStorage",
    "ArchiveValidationReport",
]


class ArchiveStorage(Base):
    """A named storage of an organisation, chosen by ``StorageId`` on upload."""

    __tablename__ = "archive_storages"
    __table_args__ = (UniqueConstraint("organisation_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    organisation_id: Mapped[str] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class ArchiveSourceSystem(Base):
    """An integration client. ``key_hash`` is the SHA-256 of its API key (a leak of the table
    reveals no keys); a user's own source system (bearer tokens) has ``user_id`` and no key."""

    __tablename__ = "archive_source_systems"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    organisation_id: Mapped[str] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    key_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    user_id: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


# Covering indexes for search's count(*): each leads with the organisation and the filter it
# serves, and carries the other filter columns, so no table row is read to count.
SEARCH_COUNT_INDEXES = {
    "ix_archive_containers_org_status": (
        "organisation_id",
        "status",
        "storage_id",
        "source_system_id",
    ),
    "ix_archive_containers_org_storage": (
        "organisation_id",
        "storage_id",
        "status",
        "source_system_id",
    ),
    "ix_archive_containers_org_ended": ("organisation_id", "save_type", "archive_until", "status"),
}


# The name filter's trigram index, built by migration archive_0002 and not by these models: on
# SQLite an FTS5 table (with its shadow tables) kept in step by triggers, on PostgreSQL a GIN
# index. Autogenerate and the models-vs-migrations test leave names in ``unmanaged`` alone.
NAME_INDEX_TABLE = "archive_container_names"
Base.metadata.info.setdefault("unmanaged", set()).update(
    ["ix_archive_containers_name_trgm", NAME_INDEX_TABLE]
    + [f"{NAME_INDEX_TABLE}_{shadow}" for shadow in ("data", "idx", "content", "docsize", "config")]
)


class ArchiveContainer(Base):
    """A document with its signatures. ``document_sha256`` points into the blob store only
    when the archive keeps the document (UseArchiveCa); ``document_hash`` is always kept.

    Search always filters by organisation and pages newest first (``org_created``); its total
    is counted from one of ``SEARCH_COUNT_INDEXES`` alone, as each holds every column the
    equality filters use. The name filter also has a trigram index built by the migration
    (``archive_0002``), which the models cannot declare on SQLite.
    """

    __tablename__ = "archive_containers"
    __table_args__ = (
        Index("ix_archive_containers_org_created", "organisation_id", "created_at", "id"),
        *(Index(name, *columns) for name, columns in SEARCH_COUNT_INDEXES.items()),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    organisation_id: Mapped[str] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    storage_id: Mapped[int] = mapped_column(
        ForeignKey("archive_storages.id", ondelete="CASCADE"), index=True
    )
    source_system_id: Mapped[int] = mapped_column(
        ForeignKey("archive_source_systems.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(500), index=True)
    structure_name: Mapped[str | None] = mapped_column(String(500))
    save_type: Mapped[int] = mapped_column(Integer)
    archive_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    status: Mapped[int] = mapped_column(Integer, index=True)
    status_reason: Mapped[str | None] = mapped_column(Text)
    use_archive_ca: Mapped[bool] = mapped_column(Boolean, default=False)
    plugin_name: Mapped[str | None] = mapped_column(String(200))
    document_sha256: Mapped[str | None] = mapped_column(BlobHash)
    document_path: Mapped[str | None] = mapped_column(String(2000))
    document_hash: Mapped[str] = mapped_column(String(64))
    document_size: Mapped[int] = mapped_column(BigInteger)
    document_type: Mapped[str] = mapped_column(String(200))
    signature_update_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    fixity_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    modified_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class ArchiveContainerCount(Base):
    """Search's ``totalRecords`` without counting rows: database triggers (migration
    ``archive_0005``) append ``+1`` / ``-1`` rows here whenever a container is added, deleted or
    changes organisation, storage, source system or status, and the worker folds them into one
    row per group (``compact_counts``). Append-only, so concurrent status changes never wait on
    a shared counter row (which deadlocked on PostgreSQL); the sum is exact at any moment."""

    __tablename__ = "archive_container_counts"
    __table_args__ = (
        Index(
            "ix_archive_container_counts_group",
            "organisation_id",
            "status",
            "storage_id",
            "source_system_id",
        ),
    )

    # No foreign keys: the triggers also write rows for containers whose organisation or
    # storage is being deleted (the -1 rows that bring the group to zero).
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    organisation_id: Mapped[str] = mapped_column(String(64))
    storage_id: Mapped[int] = mapped_column(Integer)
    source_system_id: Mapped[int] = mapped_column(Integer)
    status: Mapped[int] = mapped_column(Integer)
    delta: Mapped[int] = mapped_column(BigInteger)


class ArchiveSignature(Base):
    """One signature of a container: the bytes as uploaded, and the enhanced bytes once a
    complete enhanced signature is stored (never a half-written one)."""

    __tablename__ = "archive_signatures"
    __table_args__ = (UniqueConstraint("container_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    container_id: Mapped[str] = mapped_column(
        ForeignKey("archive_containers.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    raw_sha256: Mapped[str] = mapped_column(BlobHash)
    enhanced_sha256: Mapped[str | None] = mapped_column(BlobHash)
    attached: Mapped[bool] = mapped_column(Boolean, default=False)
    level: Mapped[str] = mapped_column(String(16))
    verdict: Mapped[str | None] = mapped_column(String(32))
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class ArchiveValidationReport(Base):
    """The JSON report of one verification of one signature, kept as evidence."""

    __tablename__ = "archive_validation_reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    container_id: Mapped[str] = mapped_column(
        ForeignKey("archive_containers.id", ondelete="CASCADE"), index=True
    )
    signature_id: Mapped[int] = mapped_column(
        ForeignKey("archive_signatures.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    verdict: Mapped[str] = mapped_column(String(32))
    report: Mapped[str] = mapped_column(Text)


class ArchiveEvent(Base):
    """One entry of a container's history (created, verified, enhanced, ...), and its leaf in
    the organisation's transparency log: ``log_entry`` is the exact leaf input (canonical
    JSON), ``log_index`` its position (both empty for events older than the log)."""

    __tablename__ = "archive_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    container_id: Mapped[str] = mapped_column(
        ForeignKey("archive_containers.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(Text)
    log_index: Mapped[int | None] = mapped_column(BigInteger)
    log_entry: Mapped[str | None] = mapped_column(Text)


class ArchiveLogHead(Base):
    """The size of an organisation's transparency log. Appending increments it with one
    ``UPDATE ... RETURNING`` in the event's transaction: the row lock orders concurrent
    appends (SQLite has one writer anyway), so indexes are dense and never shared."""

    __tablename__ = "archive_log_heads"

    organisation_id: Mapped[str] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True
    )
    size: Mapped[int] = mapped_column(BigInteger)


class ArchiveLogNode(Base):
    """A complete perfect subtree of an organisation's log, written once when complete and
    never changed (see ``cairn.archive.merkle``): ``node`` is ``level << 56 | position``
    (``node_key``), level 0 holding leaf hashes and level ``k`` the hash of leaves
    ``[position * 2**k, (position + 1) * 2**k)``. One integer key lets a proof fetch its
    nodes with one ``IN`` list on the primary key."""

    __tablename__ = "archive_log_nodes"

    organisation_id: Mapped[str] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True
    )
    node: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class ArchivePluginTask(Base):
    """A plugin call owed to a container: saving its document to the storage plugin it chose
    (``store``, retried until it succeeds) or a post-processor's run after enhancement
    (``post-process``, retried a bounded number of times). A lease, as on containers, lets
    one worker at a time run it."""

    __tablename__ = "archive_plugin_tasks"
    __table_args__ = (UniqueConstraint("container_id", "kind", "plugin_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    container_id: Mapped[str] = mapped_column(
        ForeignKey("archive_containers.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    plugin_name: Mapped[str] = mapped_column(String(200))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    done_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    gave_up: Mapped[bool] = mapped_column(Boolean, default=False)
    last_error: Mapped[str | None] = mapped_column(Text)
