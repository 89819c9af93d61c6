"""Processing tables: data items and their files, processes, executions, components and logs.

Services are code (see ``cairn.processing.ssd``), so no table holds them: a process keeps the
``service_id`` (one version) and ``ssd_id`` (all versions) it was created from.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from cairn.db.base import Base, BlobHash, UtcDateTime, new_id, utcnow

__all__ = [
    "Component",
    "ComponentLog",
    "CreditState",
    "DailyRun",
    "DataFile",
    "DataItem",
    "DemSource",
    "Execution",
    "Lease",
    "Process",
    "UsedUrl",
]


class DataItem(Base):
    """Files of one type an organisation uploaded, or a component's output."""

    __tablename__ = "processing_data"

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    organisation_id: Mapped[str] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(500))
    file_type: Mapped[str | None] = mapped_column(String(40))
    # Set for a component's output: the execution it belongs to (deleted with it unless copied).
    execution_id: Mapped[str | None] = mapped_column(String(64), index=True)
    created_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


class DataFile(Base):
    """One file of a data item: its blob once uploaded, and what analysis found in it."""

    __tablename__ = "processing_data_files"

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    organisation_id: Mapped[str] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    data_id: Mapped[str] = mapped_column(
        ForeignKey("processing_data.id", ondelete="CASCADE"), index=True
    )
    file_name: Mapped[str] = mapped_column(String(500))
    file_type: Mapped[str] = mapped_column(String(40))
    # pending (waiting for its PUT) -> uploading -> analysing -> analysed | failed;
    # incomplete: the PUT was cut off or never came before the upload expired.
    state: Mapped[str] = mapped_column(String(16), default="pending")
    sha256: Mapped[str | None] = mapped_column(BlobHash)
    size: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(Text)
    analysis: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    upload_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


class UsedUrl(Base):
    """The nonce of a signed URL that has been used once: a second use is refused."""

    __tablename__ = "processing_used_urls"

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    used_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Process(Base):
    """A service configured with options and inputs, priced, and executable."""

    __tablename__ = "processing_processes"

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    organisation_id: Mapped[str] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    service_id: Mapped[str] = mapped_column(String(64))
    ssd_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(500))
    options: Mapped[dict[str, Any]] = mapped_column(JSON)  # option name -> value text or None
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON)  # input number (text) -> data id
    # [{"ssd_id", "dispatch_intermediate", "options": {name: value text or None}}], in order.
    dispatchers: Mapped[list[Any] | None] = mapped_column(JSON)
    run_type: Mapped[str] = mapped_column(String(20), default="run_once")
    repeat_count: Mapped[int] = mapped_column(Integer, default=0)
    repeat_start: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    repeat_end: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # The schedule (``cairn.processing._schedule``): a relativedelta's fields between runs, a
    # first-run offset in seconds, or a cron expression instead of the gap.
    repeat_gap: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    repeat_offset: Mapped[int | None] = mapped_column(Integer)
    cron: Mapped[str | None] = mapped_column(String(200))
    # Armed schedules: when the next run is due (None: not armed) and how many have started;
    # the scheduler claims a run by moving ``next_due_at`` on from the value it read.
    next_due_at: Mapped[datetime | None] = mapped_column(UtcDateTime, index=True)
    runs_done: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    output_storage_period: Mapped[int] = mapped_column(Integer, default=14)
    price: Mapped[int] = mapped_column(Integer, default=0)
    process_status: Mapped[str] = mapped_column(String(16), default="stop")
    process_status_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    has_executed: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


class Execution(Base):
    """One run of a process: progress 0-100, outcome, and when its outputs expire."""

    __tablename__ = "processing_executions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    organisation_id: Mapped[str] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    process_id: Mapped[str] = mapped_column(
        ForeignKey("processing_processes.id", ondelete="CASCADE"), index=True
    )
    service_id: Mapped[str] = mapped_column(String(64))
    options: Mapped[dict[str, Any]] = mapped_column(JSON)
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON)
    price: Mapped[int] = mapped_column(Integer, default=0)
    progress: Mapped[int] = mapped_column(Integer, default=0)
    success: Mapped[bool] = mapped_column(Boolean, default=False)
    stopped: Mapped[bool] = mapped_column(Boolean, default=False)
    abort: Mapped[bool] = mapped_column(Boolean, default=False)
    abort_reason: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    delete_expiry: Mapped[datetime] = mapped_column(UtcDateTime)
    expiry_warned_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # A region larger than its service's maximum runs as a group: one execution per slice
    # (group_index 0..n-1) and, if the service has one, its aggregator last (index n), which
    # waits until every slice has ended. An execution of an unsplit region has no group.
    group_id: Mapped[str | None] = mapped_column(String(64), index=True)
    group_index: Mapped[int | None] = mapped_column(Integer)
    group_count: Mapped[int | None] = mapped_column(Integer)
    aggregator: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    waiting: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Set on the member whose end was announced as the group's end (``groups.group_ended``).
    group_notified: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


class Component(Base):
    """One component of an execution's chain, as it ran: times, figures, inputs, outputs."""

    __tablename__ = "processing_components"

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    organisation_id: Mapped[str] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    execution_id: Mapped[str] = mapped_column(
        ForeignKey("processing_executions.id", ondelete="CASCADE"), index=True
    )
    process_id: Mapped[str] = mapped_column(String(64))
    service_id: Mapped[str] = mapped_column(String(64))
    chain_index: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    runtime: Mapped[int | None] = mapped_column(Integer)  # seconds
    cpu: Mapped[float] = mapped_column(Float, default=0.0)  # CPU seconds used
    memory: Mapped[int] = mapped_column(BigInteger, default=0)  # peak resident bytes
    inputs: Mapped[list[Any]] = mapped_column(JSON)  # data ids
    outputs: Mapped[list[Any]] = mapped_column(JSON)  # data ids
    success: Mapped[bool | None] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


class ComponentLog(Base):
    """One line a component logged while it ran."""

    __tablename__ = "processing_component_logs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    component_id: Mapped[str] = mapped_column(
        ForeignKey("processing_components.id", ondelete="CASCADE"), index=True
    )
    logged_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class DemSource(Base):
    """A terrain model (a local GeoTIFF or COG) an administrator registered for ``Elevation``:
    its path on the server and its bounds in WGS84, to find the one covering a region."""

    __tablename__ = "processing_dem_sources"

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    path: Mapped[str] = mapped_column(Text)
    crs: Mapped[str] = mapped_column(Text)
    west: Mapped[float] = mapped_column(Float)
    south: Mapped[float] = mapped_column(Float)
    east: Mapped[float] = mapped_column(Float)
    north: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Lease(Base):
    """Who leads a job across server processes (the scheduler), until when."""

    __tablename__ = "processing_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)


class DailyRun(Base):
    """One daily job done for one organisation on one day (a storage charge, an expiry sweep):
    its key makes a second run the same day a no-op."""

    __tablename__ = "processing_daily_runs"

    job: Mapped[str] = mapped_column(String(40), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    organisation_id: Mapped[str] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True
    )
    amount: Mapped[int] = mapped_column(Integer, default=0)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class CreditState(Base):
    """Since when an organisation's balance has been negative, and when it was warned."""

    __tablename__ = "processing_credit_states"

    organisation_id: Mapped[str] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True
    )
    negative_since: Mapped[datetime | None] = mapped_column(UtcDateTime)
    warned_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
