"""Search's ``totalRecords`` from the delta rows the database triggers append.

Triggers (migration ``archive_0005``) insert ``+1`` for a container's new group and ``-1`` for
its old one on every insert, delete and change of organisation, storage, source system or
status, whoever writes the row (the ORM, bulk updates, cascades). Only inserts, so no writer
ever waits on a shared counter row; the worker folds the rows per group to keep the sum short.
"""

from __future__ import annotations

from collections import Counter

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from cairn.archive.models import ArchiveContainerCount
from cairn.db import UnitOfWork

__all__ = ["compact_counts", "count_containers"]

_GROUP = (
    ArchiveContainerCount.organisation_id,
    ArchiveContainerCount.storage_id,
    ArchiveContainerCount.source_system_id,
    ArchiveContainerCount.status,
)


def count_containers(
    session: Session,
    organisations: list[str],
    *,
    storage_ids: list[int] | None = None,
    source_system_id: int | None = None,
    statuses: list[int] | None = None,
) -> int:
    """How many containers match these equality filters (what ``count(*)`` would say)."""
    query = select(func.coalesce(func.sum(ArchiveContainerCount.delta), 0)).where(
        ArchiveContainerCount.organisation_id.in_(organisations)
    )
    if storage_ids is not None:
        query = query.where(ArchiveContainerCount.storage_id.in_(storage_ids))
    if source_system_id is not None:
        query = query.where(ArchiveContainerCount.source_system_id == source_system_id)
    if statuses is not None:
        query = query.where(ArchiveContainerCount.status.in_(statuses))
    return int(session.scalar(query) or 0)


def compact_counts(uow: UnitOfWork, *, threshold: int = 1000, batch: int = 50_000) -> int:
    """Fold the delta rows into one row per group once there are more than ``threshold``;
    returns how many rows were folded.

    ``DELETE ... RETURNING`` (in batches, to bound memory) and the insert of the sums of
    exactly the rows deleted, in one transaction: rows a concurrent writer adds meanwhile are
    not touched, and two compactions never fold the same row (the second one's delete skips
    rows already gone), so the sum stays exact throughout.
    """
    with uow.read() as session:
        rows_now, last = session.execute(
            select(func.count(), func.max(ArchiveContainerCount.id))
        ).one()
    if rows_now <= threshold:
        return 0
    folded = 0
    sums: Counter[tuple[str, int, int, int]] = Counter()
    with uow.transaction() as session:
        while True:  # only rows older than the call: not the sums it writes
            oldest = (
                select(ArchiveContainerCount.id)
                .where(ArchiveContainerCount.id <= last)
                .order_by(ArchiveContainerCount.id)
                .limit(batch)
            )
            rows = session.execute(
                delete(ArchiveContainerCount)
                .where(ArchiveContainerCount.id.in_(oldest.scalar_subquery()))
                .returning(*_GROUP, ArchiveContainerCount.delta)
            ).all()
            for organisation, storage, system, status, delta in rows:
                sums[(organisation, storage, system, status)] += delta
            folded += len(rows)
            if len(rows) < batch:
                break
        kept = [
            {
                "organisation_id": organisation,
                "storage_id": storage,
                "source_system_id": system,
                "status": status,
                "delta": total,
            }
            for (organisation, storage, system, status), total in sums.items()
            if total != 0
        ]
        if kept:
            session.execute(insert(ArchiveContainerCount), kept)
    return folded
