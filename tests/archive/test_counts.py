"""Search's ``totalRecords`` from the trigger-kept counts, on both databases: every filter's
total equals a plain ``COUNT(*)``, through inserts, ORM and bulk status changes, deletes,
compaction, and concurrent status changes (the shape that deadlocked a counter-row design)."""

from __future__ import annotations

import itertools
import random
from datetime import timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from cairn.archive import service
from cairn.archive.counts import compact_counts
from cairn.archive.log import record_event
from cairn.archive.models import ArchiveContainer, ArchiveContainerCount
from cairn.archive.plugins import ArchivePlugins
from cairn.archive.retention import delete_container, end_storage
from cairn.archive.statuses import ContainerStatus
from cairn.db import UnitOfWork, utcnow
from tests.archive.helpers import make_containers
from tests.concurrency import race


def _organisation(session: Session, containers: int, seed: int) -> tuple[service.Caller, list[int]]:
    """An organisation with two storages, two source systems and ``containers`` containers
    of mixed status, save type and date."""
    names = [f"Report {i}" for i in range(containers)]
    found = make_containers(session, names, storages=2, systems=2, rng=random.Random(seed))
    return found.caller, found.storages + found.systems


def _filters(ids: list[int]) -> list[service.SearchFilters]:
    storage_a, storage_b, system_a, _ = ids
    found = [service.SearchFilters()]
    for storages, system, status, archived in itertools.product(
        [None, [storage_a], [storage_a, storage_b], []],
        [None, system_a],
        [None, 2, 4, 5, 99],
        [None, True, False],
    ):
        found.append(
            service.SearchFilters(
                storage_ids=storages, source_system_id=system, status=status, is_archived=archived
            )
        )
    found += [service.SearchFilters(name="Report 1"), service.SearchFilters(name="port", status=4)]
    return found


def _plain_count(session: Session, caller: service.Caller, filters: service.SearchFilters) -> int:
    """The same filters as a plain ``COUNT(*)`` over the containers, written out by hand."""
    (org,) = caller.readable
    query = select(func.count()).select_from(ArchiveContainer)
    query = query.where(ArchiveContainer.organisation_id == org)
    if filters.storage_ids is not None:
        query = query.where(ArchiveContainer.storage_id.in_(filters.storage_ids))
    if filters.source_system_id is not None:
        query = query.where(ArchiveContainer.source_system_id == filters.source_system_id)
    if filters.status is not None:
        query = query.where(ArchiveContainer.status == filters.status)
    if filters.is_archived is True:
        query = query.where(ArchiveContainer.status.in_([4, 5]))
    if filters.is_archived is False:
        query = query.where(
            ArchiveContainer.save_type == 1,
            (ArchiveContainer.archive_until <= utcnow()) | (ArchiveContainer.status == 6),
        )
    if filters.name:
        query = query.where(func.lower(ArchiveContainer.name).contains(filters.name.lower()))
    return int(session.scalar(query) or 0)


def _check_every_filter(session: Session, caller: service.Caller, ids: list[int]) -> None:
    for filters in _filters(ids):
        _, total = service.search_containers(session, caller, filters)
        assert total == _plain_count(session, caller, filters), filters


def test_every_filter_counts_as_count_star(session: Session) -> None:
    caller, ids = _organisation(session, 300, seed=1)
    other, _ = _organisation(session, 100, seed=2)  # never counted for ``caller``
    _check_every_filter(session, caller, ids)
    assert service.search_containers(session, caller, service.SearchFilters())[1] == 300
    assert service.search_containers(session, other, service.SearchFilters())[1] == 100


def test_counts_follow_updates_deletes_and_compaction(session: Session, uow: UnitOfWork) -> None:
    caller, ids = _organisation(session, 200, seed=3)
    (org,) = caller.readable
    containers = session.scalars(
        select(ArchiveContainer).where(ArchiveContainer.organisation_id == org)
    ).all()
    for container in containers[:40]:  # ORM updates: status, storage and source system
        container.status = int(ContainerStatus.ARCHIVED)
    containers[40].storage_id, containers[41].source_system_id = ids[1], ids[2]
    containers[42].name = "Renamed"  # not a counted column: no delta rows
    session.flush()
    session.execute(  # a bulk update, as the worker's mark_due does
        update(ArchiveContainer)
        .where(ArchiveContainer.organisation_id == org, ArchiveContainer.status == 2)
        .values(status=int(ContainerStatus.ENHANCING))
        .execution_options(synchronize_session=False)
    )
    session.execute(delete(ArchiveContainer).where(ArchiveContainer.id == containers[50].id))
    session.commit()
    _check_every_filter(session, caller, ids)
    before = session.scalar(select(func.count()).select_from(ArchiveContainerCount))
    session.commit()
    assert compact_counts(uow, threshold=0, batch=7) >= before  # small batches: several rounds
    groups = session.execute(
        select(
            ArchiveContainer.storage_id,
            ArchiveContainer.source_system_id,
            ArchiveContainer.status,
        )
        .where(ArchiveContainer.organisation_id == org)
        .distinct()
    ).all()
    rows = session.scalar(
        select(func.count())
        .select_from(ArchiveContainerCount)
        .where(ArchiveContainerCount.organisation_id == org)
    )
    assert rows == len(groups)  # one row per group left
    _check_every_filter(session, caller, ids)
    assert compact_counts(uow, threshold=10_000) == 0  # few rows: nothing to fold


def test_counts_stay_exact_under_concurrent_status_changes(
    session: Session, uow: UnitOfWork
) -> None:
    """Writers change the same containers' statuses (each locking its container, then the
    log head, as the worker does), end storage, delete, and compact, all at once; no deadlock,
    and every total is still exact."""
    caller, ids = _organisation(session, 60, seed=4)
    (org,) = caller.readable
    session.execute(  # some Temporary containers past their date, for end_storage
        update(ArchiveContainer)
        .where(ArchiveContainer.organisation_id == org, ArchiveContainer.save_type == 1)
        .values(archive_until=utcnow() - timedelta(days=1), status=4)
        .execution_options(synchronize_session=False)
    )
    container_ids = list(
        session.scalars(select(ArchiveContainer.id).where(ArchiveContainer.organisation_id == org))
    )
    session.commit()

    def change_statuses(seed: int) -> None:
        rng = random.Random(seed)
        for container_id in rng.sample(container_ids, 40):
            with uow.transaction() as tx:
                container = tx.scalars(
                    select(ArchiveContainer)
                    .where(ArchiveContainer.id == container_id)
                    .with_for_update()
                ).one()
                container.status = rng.choice([2, 3, 4, 5, 7])
                record_event(tx, container, "verified", f"writer {seed}")

    def delete_some() -> None:
        for container_id in container_ids[:5]:
            delete_container(uow, ArchivePlugins(), caller, container_id)

    def compact() -> None:
        for _ in range(10):
            compact_counts(uow, threshold=0, batch=25)

    errors = race(
        *(lambda seed=seed: change_statuses(seed) for seed in range(3)),
        lambda: end_storage(uow, ArchivePlugins()),
        delete_some,
        compact,
    )
    assert errors == []
    _check_every_filter(session, caller, ids)
    session.commit()  # the fixture's session writes: SQLite lets one writer at a time
    compact_counts(uow, threshold=0)
    _check_every_filter(session, caller, ids)
