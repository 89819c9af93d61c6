"""Split groups: a region larger than its service's maximum runs as one execution per slice,
plus the service's aggregator, all sharing one ``group_id`` (issue #16).

The region is cut by ``cairn.processing.slicing`` (the geometry). Slice ``k`` of ``n`` is
execution ``group_index`` ``k`` (0-based) with its own region input (a data item of that
execution); the aggregator, if the service declares one, is the last member (``group_index``
``n``): it waits until every slice has ended and then runs its one component over all slices'
outputs.

Charges: the process's price is charged once when the group starts and split into shares,
one per member, that sum exactly to the price (``price_shares``). A member that does not
succeed is refunded the part of its share its unfinished components stand for, as any
execution is (``service.refund_unrun``): an aggregator that never ran because a slice failed
gets its whole share back; a succeeded member keeps its share.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cairn.accounts.service import Actor
from cairn.db.base import new_id, utcnow
from cairn.errors import Conflict
from cairn.processing import service
from cairn.processing.models import DataFile, DataItem, Execution, Process
from cairn.processing.ssd import Service

if TYPE_CHECKING:
    from cairn.blobs import BlobStore
    from cairn.processing.slicing import SliceFile

__all__ = [
    "GroupSummary",
    "Next",
    "Region",
    "after_member_done",
    "group_ended",
    "group_members",
    "group_running",
    "prepare_group",
    "price_shares",
    "region_of",
    "split_process_region",
]


def price_shares(price: int, members: int) -> list[int]:
    """Each member's share of ``price``: whole credits that sum exactly to it, the first
    ``price % members`` members carrying one more."""
    if members < 1:
        raise ValueError("a group has at least one member")
    base, extra = divmod(price, members)
    return [base + (1 if index < extra else 0) for index in range(members)]


# --- preparing a group -------------------------------------------------------------------------


@dataclass(frozen=True)
class Region:
    """A process's region input as it was split: which input, the data item and its files'
    blobs (to notice a change before the group starts), and the slices."""

    input_number: int
    data_id: str
    data_name: str
    source: tuple[str, ...]
    slices: Sequence[SliceFile] = field(default_factory=tuple)


def region_of(
    session: Session, actor: Actor, organisation_id: str, process_id: str
) -> tuple[Service, int, DataItem, list[DataFile]] | None:
    """The service and the region input (number, data item, its files) of a process whose
    service has a maximum region size, or None when nothing can be split (no maximum, or a
    region that is not GeoJSON)."""
    process = service.get_process(session, actor, organisation_id, process_id)
    svc = service.get_service(process.service_id)
    if svc.maximum_area_km2 is None:
        return None
    spec = next((i for i in svc.inputs if i.file_type == "GeoJSON"), None)
    data_id = process.inputs.get(str(spec.number)) if spec is not None else None
    if spec is None or not data_id:
        return None
    item = session.get(DataItem, data_id)
    if item is None or item.organisation_id != organisation_id:
        return None  # prepare_execution says why
    files = list(
        session.scalars(select(DataFile).where(DataFile.data_id == item.id).order_by(DataFile.id))
    )
    if not files or any(f.file_type != "GeoJSON" or f.sha256 is None for f in files):
        return None  # KML, KMZ or shapefile regions run whole
    return svc, spec.number, item, files


def prepare_group(
    session: Session,
    actor: Actor,
    organisation_id: str,
    process_id: str,
    *,
    region: Region,
    charge: service.Charge | None = None,
) -> tuple[Process, list[tuple[Execution, list[Any]]]]:
    """Charge the price once (``charge``, as ``service.prepare_execution`` takes it) and
    record the group: one execution per slice of ``region`` (each with its slice as its
    region input) and the aggregator last, waiting.

    Raises:
        Conflict: the region input changed since it was split (try again), or the process
            is executing already.
        PaymentRequired: as ``service.prepare_execution``; nothing is charged or recorded.
    """
    process, svc = (charge or service.charge_process)(session, actor, organisation_id, process_id)
    now_files = session.scalars(
        select(DataFile.sha256).where(DataFile.data_id == region.data_id).order_by(DataFile.id)
    ).all()
    if process.inputs.get(str(region.input_number)) != region.data_id or tuple(now_files) != tuple(
        region.source
    ):
        raise Conflict("The process's region changed while it was being split; execute again.")
    slice_specs = [c for c in svc.components if c.name != svc.aggregator]
    aggregator = next((c for c in svc.components if c.name == svc.aggregator), None)
    count = len(region.slices) + (1 if aggregator is not None else 0)
    shares = price_shares(process.price, count)
    group_id = new_id()
    members: list[tuple[Execution, list[Any]]] = []
    for index, part in enumerate(region.slices):
        item = DataItem(
            organisation_id=organisation_id,
            name=f"{region.data_name} (slice {index + 1} of {len(region.slices)})",
            file_type="GeoJSON",
            created_by=actor.id,
        )
        session.add(item)
        session.flush()
        session.add(
            DataFile(
                organisation_id=organisation_id,
                data_id=item.id,
                file_name=f"slice_{index + 1}.geojson",
                file_type="GeoJSON",
                state="analysed",
                sha256=part.sha256,
                size=part.size,
                analysis=part.analysis,
            )
        )
        inputs = {**process.inputs, str(region.input_number): item.id}
        execution, components = service.add_execution(
            session,
            process,
            svc,
            price=shares[index],
            specs=slice_specs,
            inputs=inputs,
            group_id=group_id,
            group_index=index,
            group_count=count,
        )
        item.execution_id = execution.id  # the slice's region goes with its execution
        members.append((execution, components))
    if aggregator is not None:
        execution, components = service.add_execution(
            session,
            process,
            svc,
            price=shares[-1],
            specs=[aggregator],
            first_chain_index=list(svc.components).index(aggregator),
            group_id=group_id,
            group_index=count - 1,
            group_count=count,
            aggregator=True,
            waiting=True,
        )
        members.append((execution, components))
    service.mark_executing(process, members[0][0].started_at)
    session.flush()
    return process, members


# --- while a group runs ------------------------------------------------------------------------


def group_members(session: Session, group_id: str) -> list[Execution]:
    """The group's executions by ``group_index``, as committed now (read afresh)."""
    query = select(Execution).where(Execution.group_id == group_id)
    query = query.order_by(Execution.group_index, Execution.id)
    return list(session.scalars(query.execution_options(populate_existing=True)))


def _lock_group(session: Session, execution_id: str) -> Execution | None:
    """Lock the member, then its process: the order recording an execution's end takes
    them in, so deciding for a group never deadlocks with a member ending. The process row
    is the group's mutex (a process runs one group at a time); members are read afresh
    after it, so the last member to end sees every other end."""
    execution = session.get(Execution, execution_id, with_for_update=True, populate_existing=True)
    if execution is None:
        return None
    session.get(Process, execution.process_id, with_for_update=True, populate_existing=True)
    return execution


def group_running(session: Session, execution: Execution) -> bool:
    """Whether another member of ``execution``'s group has not ended yet (the process keeps
    executing until the whole group has ended)."""
    if execution.group_id is None:
        return False
    members = group_members(session, execution.group_id)
    return any(m.id != execution.id and m.ended_at is None for m in members)


@dataclass(frozen=True)
class Next:
    """What to start now that a slice has ended: the group's aggregator, with the slices'
    outputs as its extra inputs (output ``k`` of every slice, in slice order)."""

    execution: Execution
    components: list[Any]
    extra_inputs: list[list[tuple[str, str]]]


def after_member_done(session: Session, execution_id: str) -> Next | None:
    """Called once a group member's end is recorded: refund it if it did not succeed; once
    every slice has ended, either hand back the waiting aggregator to start (every slice
    succeeded) or end it unrun and refunded (a slice failed or the group was stopped).
    Nothing for an execution outside a group, or when slices are still running."""
    execution = _lock_group(session, execution_id)
    if execution is None or execution.group_id is None:
        return None
    members = group_members(session, execution.group_id)
    # A member that did not succeed was refunded what it did not run when its end was
    # recorded (``service.refund_unrun``), as any execution is.
    slices = [m for m in members if not m.aggregator]
    waiting = [m for m in members if m.aggregator and m.waiting]
    if not waiting or any(m.ended_at is None for m in slices):
        return None
    aggregator = waiting[0]
    aggregator.waiting = False
    failed = [m for m in slices if not m.success]
    if failed or aggregator.stopped:
        now = utcnow()
        if aggregator.stopped or any(m.stopped for m in failed):
            reason = "Stopped by a user."
        else:
            reason = f"Not run: slice {(failed[0].group_index or 0) + 1} of {len(slices)} failed."
        aggregator.ended_at, aggregator.progress = now, 100
        aggregator.success, aggregator.abort, aggregator.abort_reason = False, True, reason
        for component in service.list_components_of(session, aggregator.id):
            component.ended_at, component.success, component.runtime = now, False, 0
        service.refund_unrun(session, aggregator)
        process = session.get(Process, aggregator.process_id, with_for_update=True)
        if process is not None and process.process_status == "execute":
            process.process_status, process.process_status_at = "stop", now
        service.record_execution(session, aggregator)
        return None
    aggregator.started_at = utcnow()
    outputs: list[list[tuple[str, str]]] = []
    for member in slices:
        last = service.list_components_of(session, member.id)[-1]
        for k, data_id in enumerate(last.outputs):
            files = session.scalars(
                select(DataFile).where(DataFile.data_id == data_id).order_by(DataFile.id)
            ).all()
            while len(outputs) <= k:
                outputs.append([])
            # Slices name their outputs alike: the aggregator sees them apart by slice.
            prefix = f"slice_{(member.group_index or 0) + 1}_"
            outputs[k].extend((prefix + f.file_name, f.sha256 or "") for f in files)
    components = service.list_components_of(session, aggregator.id)
    for component in components:
        component.started_at = aggregator.started_at
        component.inputs = [*component.inputs, *(d for m in slices for d in _outputs(session, m))]
    session.flush()
    return Next(aggregator, list(components), outputs)


def _outputs(session: Session, member: Execution) -> list[str]:
    components = service.list_components_of(session, member.id)
    return list(components[-1].outputs) if components else []


@dataclass(frozen=True)
class GroupSummary:
    """A group (or an execution outside any group) that has ended, to announce once."""

    process_id: str
    organisation_id: str
    group_id: str | None
    execution_ids: list[str]
    succeeded: int
    failed: int
    success: bool
    abort_reasons: list[str]


def group_ended(session: Session, execution_id: str) -> GroupSummary | None:
    """The summary of ``execution_id``'s group if every member has ended and nobody has
    announced it yet; the first caller claims it (``group_notified`` on the member it was
    asked about, decided under the process's row lock), so one completion notice goes per
    group however many members end at once. An execution outside any group has its own
    summary once it has ended (and the same claim). None while a member still runs, or once
    claimed."""
    execution = _lock_group(session, execution_id)
    if execution is None:
        return None
    members = [execution]
    if execution.group_id is not None:
        members = group_members(session, execution.group_id)
    if any(m.ended_at is None for m in members) or any(m.group_notified for m in members):
        return None
    execution.group_notified = True
    session.flush()
    return GroupSummary(
        process_id=execution.process_id,
        organisation_id=execution.organisation_id,
        group_id=execution.group_id,
        execution_ids=[m.id for m in members],
        succeeded=sum(1 for m in members if m.success),
        failed=sum(1 for m in members if not m.success),
        success=all(m.success for m in members),
        abort_reasons=[m.abort_reason for m in members if m.abort_reason],
    )


def split_process_region(
    session_read: Any, blobs: BlobStore, actor: Actor, organisation_id: str, process_id: str
) -> Region | None:
    """Read and split a process's region with no transaction held (``session_read`` is a
    context manager giving a read session): None when it runs whole."""
    with session_read() as session:
        found = region_of(session, actor, organisation_id, process_id)
        if found is None:
            return None
        svc, number, item, files = found
        source = tuple(f.sha256 or "" for f in files)
        data_id, data_name = item.id, item.name
    assert svc.maximum_area_km2 is not None
    from cairn.processing.slicing import cut_region  # pyproj and shapely, only to cut

    stored = cut_region(blobs, source, svc.maximum_area_km2)
    return Region(number, data_id, data_name, source, stored) if stored else None
