"""End of storage and deletion: the document goes, a tombstone stays.

A Temporary container whose ArchiveDate has passed ends its storage (status 6); a container
its organisation deletes becomes status 8. Either way the row stays with its name, hashes,
signatures, validation reports and history (the evidence: no document content), and the
document is removed: the blob store's reference is dropped at once (``cairn admin gc``
collects the bytes unless another container shares them), and a copy in a storage plugin is
deleted through the plugin after the transaction. A plugin delete that fails is recorded
and tried again by the next sweep, which picks up every tombstone still holding a path.
Pending saves to a storage plugin are given up: there is nothing left to save.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cairn.archive._callers import Caller
from cairn.archive._plugin_tasks import STORE
from cairn.archive.errors import ContainerNotFound
from cairn.archive.log import record_event
from cairn.archive.models import ArchiveContainer, ArchivePluginTask
from cairn.archive.plugins import ArchivePlugins, Result
from cairn.archive.statuses import ContainerStatus, SaveType
from cairn.db import UnitOfWork, utcnow

__all__ = ["TOMBSTONES", "delete_container", "end_storage"]

TOMBSTONES = (ContainerStatus.STORAGE_ENDED, ContainerStatus.DELETED)


def _tombstone(
    session: Session,
    container: ArchiveContainer,
    status: ContainerStatus,
    reason: str,
    now: datetime,
) -> None:
    container.status, container.status_reason = int(status), reason
    container.document_sha256 = None
    container.lease_owner = container.lease_until = None
    container.modified_at = now
    session.execute(
        update(ArchivePluginTask)
        .where(
            ArchivePluginTask.container_id == container.id,
            ArchivePluginTask.kind == STORE,
            ArchivePluginTask.done_at.is_(None),
        )
        .values(gave_up=True, last_error=reason)
        .execution_options(synchronize_session=False)
    )
    kind = "storage-ended" if status is ContainerStatus.STORAGE_ENDED else "deleted"
    record_event(session, container, kind, reason, at=now)


def _remove_from_plugin(
    uow: UnitOfWork, plugins: ArchivePlugins, container_id: str, now: datetime
) -> None:
    """Delete a tombstone's document from the storage plugin holding it; record the outcome."""
    with uow.read() as session:
        container = session.get(ArchiveContainer, container_id)
        if container is None or container.document_path is None:
            return
        path, name = container.document_path, container.plugin_name or ""
    entry = plugins.storage_for_reading(name)
    answer: Any
    if entry is None:
        answer = Result.failure(f"storage plugin {name!r} is not configured")
    elif entry.read_only:
        answer = Result.failure(f"storage plugin {name!r} is read-only")
    else:
        try:
            answer = entry.plugin.delete(path)
        except Exception as exc:  # a plugin should not raise; if it does, say so and retry
            answer = Result.failure(f"raised {type(exc).__name__}: {exc}")
        if not isinstance(answer, Result):
            answer = Result.failure("returned no Result")
    with uow.transaction() as session:
        container = session.scalars(
            select(ArchiveContainer).where(ArchiveContainer.id == container_id).with_for_update()
        ).one_or_none()
        if container is None or container.document_path != path:
            return
        if answer.is_success:
            container.document_path = None
            record_event(session, container, "document-removed", name, at=now)
        else:
            record_event(session, container, "removal-failed", f"{name}: {answer.error}", at=now)


def end_storage(
    uow: UnitOfWork, plugins: ArchivePlugins, *, now: datetime | None = None, limit: int = 100
) -> list[str]:
    """End the storage of Temporary containers past their ArchiveDate (status 6), and retry
    removing tombstones' documents from storage plugins; the ids whose storage ended."""
    now = now or utcnow()
    ended: list[str] = []
    with uow.transaction() as session:
        due = session.scalars(
            select(ArchiveContainer)
            .where(
                ArchiveContainer.save_type == int(SaveType.TEMPORARY),
                ArchiveContainer.archive_until <= now,
                ArchiveContainer.status.not_in([int(s) for s in TOMBSTONES]),
            )
            .order_by(ArchiveContainer.archive_until)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        for container in due:
            until = container.archive_until.isoformat() if container.archive_until else "?"
            reason = f"Temporary storage ended on {until}: the document was removed."
            _tombstone(session, container, ContainerStatus.STORAGE_ENDED, reason, now)
            ended.append(container.id)
    with uow.read() as session:
        holding: Sequence[str] = session.scalars(
            select(ArchiveContainer.id)
            .where(
                ArchiveContainer.status.in_([int(s) for s in TOMBSTONES]),
                ArchiveContainer.document_path.is_not(None),
            )
            .limit(limit)
        ).all()
    for container_id in holding:
        _remove_from_plugin(uow, plugins, container_id, now)
    return ended


def delete_container(
    uow: UnitOfWork,
    plugins: ArchivePlugins,
    caller: Caller,
    container_id: str,
    *,
    now: datetime | None = None,
) -> None:
    """Delete a container (status 8, a tombstone kept); 404 when absent or another
    organisation's, 403 without the write privilege; deleting a tombstone again is a no-op."""
    now = now or utcnow()
    with uow.transaction() as session:
        container = session.scalars(
            select(ArchiveContainer).where(ArchiveContainer.id == container_id).with_for_update()
        ).one_or_none()
        if container is None or container.organisation_id not in caller.readable:
            raise ContainerNotFound(f"Container {container_id} not found.")
        caller.require_write(container.organisation_id)
        if container.status == int(ContainerStatus.DELETED):
            return
        reason = "Deleted by its organisation: the document was removed."
        _tombstone(session, container, ContainerStatus.DELETED, reason, now)
    _remove_from_plugin(uow, plugins, container_id, now)
