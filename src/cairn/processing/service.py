"""Processing services: data items, services, processes, executions and their components.

Every function takes the session (or, for workflows that run on the engine, the ``Runtime``)
first and keyword arguments after; none commits. Another organisation's object is not found;
privileges are view < execute < manage (``Actor.require``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from cairn.accounts import service as accounts
from cairn.accounts.models import CreditEntry, Organisation
from cairn.accounts.service import Actor, Privilege
from cairn.db.base import new_id, utcnow
from cairn.errors import Conflict, Invalid, NotFound, PaymentRequired
from cairn.processing import _schedule as schedules
from cairn.processing._conditions import check_condition
from cairn.processing._registry import (
    all_dispatchers,
    all_services,
    get_dispatcher,
    get_service,
    latest_services,
)
from cairn.processing.models import (
    Component,
    ComponentLog,
    DataFile,
    DataItem,
    DemSource,
    Execution,
    Process,
)
from cairn.processing.ssd import (
    CONDITION,
    FILE_TYPES,
    ComponentSpec,
    Dispatcher,
    Service,
    evaluate_price,
    parse_option,
)
from cairn.provenance import service as provenance

__all__ = [
    "UPLOAD_LIFETIME",
    "Charge",
    "ExecutionStatus",
    "ProcessChanges",
    "RunTaken",
    "add_dem_source",
    "add_execution",
    "add_file",
    "arm_schedule",
    "change_delete_expiry",
    "charge_process",
    "charge_scheduled",
    "component_logs_query",
    "copy_data",
    "copy_process",
    "create_data",
    "create_process",
    "data_query",
    "delete_data",
    "delete_execution",
    "dem_sources",
    "due_processes",
    "executions_query",
    "get_component",
    "get_data",
    "get_execution",
    "get_file",
    "get_process",
    "get_service",
    "is_scheduled",
    "list_component_logs",
    "list_components",
    "list_components_of",
    "list_data",
    "list_dispatchers",
    "list_execution_statuses",
    "list_executions",
    "list_files",
    "list_processes",
    "list_services",
    "mark_executing",
    "new_process",
    "prepare_execution",
    "preview_of",
    "processes_query",
    "record_execution",
    "refund_unrun",
    "show_service",
    "skip_scheduled",
    "update_data",
    "update_process",
]

UPLOAD_LIFETIME = timedelta(hours=1)
MAX_NAME = 500


class _Owned(Protocol):
    organisation_id: str


_Row = TypeVar("_Row", bound=_Owned)

_NOT_FOUND: dict[type, str] = {
    DataItem: "Data item not found.",
    Process: "Process not found.",
    Execution: "Process execution not found.",
    Component: "Process service execution not found.",
}


def _owned(
    session: Session,
    actor: Actor,
    model: type[_Row],
    object_id: str,
    *,
    organisation_id: str,
    need: Privilege = Privilege.view,
) -> _Row:
    """The row if ``organisation_id`` owns it and the actor holds ``need`` there.

    The one ownership check of the area (as ``workspaces.get_workspace``): an organisation the
    actor is not in, or another organisation's id, is not found.
    """
    actor.require(organisation_id, need)
    found = session.get(model, object_id)
    if found is None or found.organisation_id != organisation_id:
        raise NotFound(_NOT_FOUND[model])
    return found


def _name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Invalid(f"A {what} needs a name.")
    if len(value) > MAX_NAME:
        raise Invalid(f"A {what} name may have at most {MAX_NAME} characters.")
    return value.strip()


# --- data items --------------------------------------------------------------------------------


def get_data(session: Session, actor: Actor, organisation_id: str, data_id: str) -> DataItem:
    return _owned(session, actor, DataItem, data_id, organisation_id=organisation_id)


def data_query(
    actor: Actor, organisation_id: str, *, uploaded_only: bool = True
) -> Select[DataItem]:
    """The organisation's data items, oldest first, as a query a list may narrow further;
    ``uploaded_only`` leaves out components' outputs."""
    actor.require(organisation_id, Privilege.view)
    query = select(DataItem).where(DataItem.organisation_id == organisation_id)
    if uploaded_only:
        query = query.where(DataItem.execution_id.is_(None))
    return query.order_by(DataItem.created_at, DataItem.id)


def list_data(
    session: Session, actor: Actor, organisation_id: str, *, uploaded_only: bool = True
) -> Sequence[DataItem]:
    return session.scalars(data_query(actor, organisation_id, uploaded_only=uploaded_only)).all()


def create_data(
    session: Session,
    actor: Actor,
    organisation_id: str,
    *,
    name: Any,
    data_id: str | None = None,
) -> DataItem:
    """A new, empty data item; files are added with ``add_file``."""
    actor.require(organisation_id, Privilege.execute)
    item = DataItem(organisation_id=organisation_id, name=_name(name, "data item"))
    item.created_by = actor.id
    if data_id is not None:
        if session.get(DataItem, data_id) is not None:
            raise Conflict("A data item with this id already exists.")
        item.id = data_id
    session.add(item)
    session.flush()
    return item


def add_file(
    session: Session,
    actor: Actor,
    organisation_id: str,
    data_id: str,
    *,
    file_name: Any,
    file_type: Any,
) -> DataFile:
    """A file awaiting its upload (through a signed URL, for ``UPLOAD_LIFETIME``)."""
    item = _owned(
        session, actor, DataItem, data_id, organisation_id=organisation_id, need=Privilege.execute
    )
    if item.execution_id is not None:
        raise Conflict("An output data item cannot take more files.")
    balance = accounts.credit_balance(session, organisation_id)
    if balance < 0:  # storage is charged daily: an organisation in debt cannot pay for more
        raise PaymentRequired(
            f"The organisation's balance is {balance} credits, so it cannot pay to store "
            "more files; top it up first."
        )
    if file_type not in FILE_TYPES:
        raise Invalid(f"Unknown file type {file_type!r}; choose one of {', '.join(FILE_TYPES)}.")
    name = _name(file_name, "file")
    if "/" in name or "\\" in name or name in (".", ".."):
        raise Invalid("A file name may not contain a path.")
    existing = list_files(session, actor, organisation_id, data_id)
    if existing and existing[0].file_type != file_type:
        raise Invalid(
            f"A data item holds files of one type: this one holds {existing[0].file_type}."
        )
    item.file_type = file_type
    file = DataFile(
        organisation_id=organisation_id,
        data_id=data_id,
        file_name=name,
        file_type=file_type,
        state="pending",
        upload_expires_at=utcnow() + UPLOAD_LIFETIME,
    )
    session.add(file)
    session.flush()
    return file


def _expire_pending(files: Sequence[DataFile]) -> None:
    now = utcnow()
    for file in files:
        if file.state == "pending" and file.upload_expires_at and file.upload_expires_at < now:
            file.state = "incomplete"
            file.error = "The upload never arrived before its URL expired."


def list_files(
    session: Session, actor: Actor, organisation_id: str, data_id: str
) -> Sequence[DataFile]:
    _owned(session, actor, DataItem, data_id, organisation_id=organisation_id)
    files = session.scalars(
        select(DataFile)
        .where(DataFile.data_id == data_id)
        .order_by(DataFile.created_at, DataFile.id)
    ).all()
    _expire_pending(files)
    return files


def get_file(
    session: Session, actor: Actor, organisation_id: str, data_id: str, file_id: str
) -> DataFile:
    _owned(session, actor, DataItem, data_id, organisation_id=organisation_id)
    file = session.get(DataFile, file_id)
    if file is None or file.data_id != data_id:
        raise NotFound("File not found.")
    return file


def preview_of(file: DataFile) -> str | None:
    """The blob of the file's PNG preview, made by its analysis (rasters and vectors)."""
    preview = (file.analysis or {}).get("preview_sha256")
    return preview if isinstance(preview, str) else None


def update_data(
    session: Session, actor: Actor, organisation_id: str, data_id: str, *, name: Any
) -> DataItem:
    item = _owned(
        session, actor, DataItem, data_id, organisation_id=organisation_id, need=Privilege.execute
    )
    item.name = _name(name, "data item")
    session.flush()
    return item


def _used_by(session: Session, organisation_id: str, data_id: str) -> Process | None:
    processes = session.scalars(
        select(Process).where(Process.organisation_id == organisation_id)
    ).all()
    return next((p for p in processes if data_id in (p.inputs or {}).values()), None)


def delete_data(session: Session, actor: Actor, organisation_id: str, data_id: str) -> None:
    """Delete an item and its files; refused while a process uses it as an input."""
    item = _owned(
        session, actor, DataItem, data_id, organisation_id=organisation_id, need=Privilege.execute
    )
    user = _used_by(session, organisation_id, data_id)
    if user is not None:
        raise Conflict(f"The data item is an input of process '{user.name}'; delete that first.")
    _delete_item(session, item)


def _delete_item(session: Session, item: DataItem) -> None:
    """The item and its file rows (their blobs go when ``cairn admin gc`` finds them unused)."""
    for file in session.scalars(select(DataFile).where(DataFile.data_id == item.id)):
        session.delete(file)
    session.delete(item)
    session.flush()


def copy_data(
    session: Session, actor: Actor, organisation_id: str, data_id: str, *, name: Any
) -> DataItem:
    """A copy (same blobs) that outlives the execution an output came from."""
    source = _owned(
        session, actor, DataItem, data_id, organisation_id=organisation_id, need=Privilege.execute
    )
    copy = DataItem(
        organisation_id=organisation_id,
        name=_name(name, "data item"),
        file_type=source.file_type,
        created_by=actor.id,
    )
    session.add(copy)
    session.flush()
    for file in list_files(session, actor, organisation_id, data_id):
        if file.state not in ("analysed", "failed"):
            raise Conflict("Only a data item whose files are all uploaded can be copied.")
        session.add(
            DataFile(
                organisation_id=organisation_id,
                data_id=copy.id,
                file_name=file.file_name,
                file_type=file.file_type,
                state=file.state,
                sha256=file.sha256,
                size=file.size,
                error=file.error,
                analysis=file.analysis,
            )
        )
    session.flush()
    return copy


# --- services ----------------------------------------------------------------------------------


def list_services(actor: Actor, organisation_id: str, *, latest: bool = True) -> list[Service]:
    actor.require(organisation_id, Privilege.view)
    return latest_services() if latest else all_services()


def show_service(actor: Actor, organisation_id: str, service_id: str) -> Service:
    actor.require(organisation_id, Privilege.view)
    return get_service(service_id)


def list_dispatchers(actor: Actor, organisation_id: str) -> list[Dispatcher]:
    """The dispatcher services a process may add (``register_dispatchers``)."""
    actor.require(organisation_id, Privilege.view)
    return all_dispatchers()


# --- DEM sources (an administrator's, for Elevation) -------------------------------------------


def add_dem_source(session: Session, *, path: Path, name: str | None = None) -> DemSource:
    """Register a local GeoTIFF/COG as a terrain model for ``Elevation`` (an administrator's
    act: ``cairn admin add-dem``). The file must open as a raster with a CRS; its bounds are
    kept in WGS84 so the source covering a region is found without opening every file."""
    import rasterio
    from rasterio.errors import RasterioIOError
    from rasterio.warp import transform_bounds

    where = Path(path).expanduser().resolve()
    if not where.is_file():
        raise Invalid(f"{where}: no such file.")
    chosen = _name(name if name is not None else where.stem, "DEM source")
    if session.scalar(select(DemSource).where(DemSource.name == chosen)) is not None:
        raise Conflict(f"A DEM source named '{chosen}' is registered already.")
    try:
        with rasterio.open(where) as dataset:
            if dataset.crs is None:
                raise Invalid(f"{where.name}: the raster has no CRS.")
            west, south, east, north = transform_bounds(dataset.crs, "EPSG:4326", *dataset.bounds)
            crs = dataset.crs.to_string()
    except RasterioIOError as exc:
        raise Invalid(f"{where.name} is not a raster GDAL can read: {exc}") from None
    source = DemSource(
        name=chosen, path=str(where), crs=crs, west=west, south=south, east=east, north=north
    )
    session.add(source)
    session.flush()
    return source


def dem_sources(session: Session) -> list[dict[str, Any]]:
    """The registered DEM sources as ``Elevation``'s component reads them (oldest first)."""
    found = session.scalars(select(DemSource).order_by(DemSource.created_at, DemSource.id))
    return [
        {"name": s.name, "path": s.path, "bounds": [s.west, s.south, s.east, s.north]}
        for s in found
    ]


# --- processes ---------------------------------------------------------------------------------


def get_process(session: Session, actor: Actor, organisation_id: str, process_id: str) -> Process:
    return _owned(session, actor, Process, process_id, organisation_id=organisation_id)


def processes_query(actor: Actor, organisation_id: str) -> Select[Process]:
    actor.require(organisation_id, Privilege.view)
    return (
        select(Process)
        .where(Process.organisation_id == organisation_id)
        .order_by(Process.created_at, Process.id)
    )


def list_processes(session: Session, actor: Actor, organisation_id: str) -> Sequence[Process]:
    return session.scalars(processes_query(actor, organisation_id)).all()


def new_process(actor: Actor, organisation_id: str, service_id: str) -> Process:
    """A template (never persisted): the service's options with their defaults, empty inputs."""
    actor.require(organisation_id, Privilege.view)
    service = get_service(service_id)
    now = utcnow()
    return Process(
        id=None,
        organisation_id=organisation_id,
        service_id=service.id,
        ssd_id=service.ssd_id,
        name="",
        options={o.name: o.default for o in service.options},
        inputs={str(i.number): None for i in service.inputs},
        dispatchers=[],
        run_type="run_once",
        repeat_count=0,
        repeat_start=now,
        output_storage_period=14,
        price=0,
        process_status="stop",
        process_status_at=now,
        has_executed=False,
        created_at=now,
        updated_at=now,
    )


@dataclass
class ProcessChanges:
    """What a create or update may set; None leaves a field as it is."""

    name: Any = None
    options: Mapping[str, Any] | None = None
    inputs: Mapping[int, str | None] | None = None
    run_type: Any = None
    output_storage_period: Any = None
    repeat_count: Any = None
    # [{"ssd_id" (or "name"), "dispatch_intermediate", "options": {name: value}}]
    dispatchers: Sequence[Any] | None = None
    repeat_start: Any = None
    repeat_end: Any = None
    repeat_gap: Any = None
    repeat_offset: Any = None
    cron: Any = None

    def schedule_only(self) -> ProcessChanges:
        """Only what may change after the first execution: the name and the schedule."""
        return ProcessChanges(
            name=self.name,
            run_type=self.run_type,
            repeat_count=self.repeat_count,
            repeat_start=self.repeat_start,
            repeat_end=self.repeat_end,
            repeat_gap=self.repeat_gap,
            repeat_offset=self.repeat_offset,
            cron=self.cron,
        )


SCHEDULE_FIELDS = (
    "name",
    "run_type",
    "repeat_count",
    "repeat_start",
    "repeat_end",
    "repeat_gap",
    "repeat_offset",
    "cron",
)


def _check_inputs(
    session: Session, service: Service, organisation_id: str, inputs: Mapping[str, Any]
) -> None:
    for spec in service.inputs:
        data_id = inputs.get(str(spec.number))
        if not data_id:
            raise Invalid(f"Input {spec.number} ({spec.title}) needs a data item.")
        item = session.get(DataItem, str(data_id))
        if item is None or item.organisation_id != organisation_id:
            raise Invalid(f"Input {spec.number}: data item {data_id} not found.")
        files = session.scalars(select(DataFile).where(DataFile.data_id == item.id)).all()
        if not files:
            raise Invalid(f"Input {spec.number}: data item '{item.name}' has no files.")
        for file in files:
            if file.state == "failed":
                raise Invalid(
                    f"Input {spec.number}: '{file.file_name}' failed its analysis: {file.error}"
                )
            if file.state != "analysed":
                raise Invalid(
                    f"Input {spec.number}: '{file.file_name}' is not analysed yet (state "
                    f"{file.state})."
                )
            if not spec.accepts(file.file_type):
                raise Invalid(
                    f"Input {spec.number} takes {spec.file_type}, not {file.file_type} "
                    f"('{item.name}')."
                )


def _option_text(name: str, value: Any) -> str | None:
    """An option's value as stored: text (or None); a list or an object is no option value."""
    if value is None:
        return None
    if isinstance(value, list | dict | tuple):
        raise Invalid(f"Option '{name}' takes a single value, not {type(value).__name__}.")
    return str(value)


def _check_dispatchers(given: Sequence[Any]) -> list[dict[str, Any]]:
    """The dispatchers as stored, each option parsed (as a process's are) and checked by
    its dispatcher; ``Invalid`` naming the dispatcher otherwise."""
    if not isinstance(given, list | tuple):
        raise Invalid("dispatchers is a list.")
    chosen = []
    for number, entry in enumerate(given, start=1):
        if not isinstance(entry, Mapping):
            raise Invalid(f"Dispatcher {number} is an object with its ssd_id and options.")
        ssd_id, name = entry.get("ssd_id"), entry.get("name")
        if not isinstance(ssd_id, str | None) or not isinstance(name, str | None):
            raise Invalid(f"Dispatcher {number}: ssd_id and name are text.")
        if ssd_id is None and name is None:
            raise Invalid(f"Dispatcher {number} needs its ssd_id (or name).")
        dispatcher = get_dispatcher(ssd_id, name=name)
        intermediate = entry.get("dispatch_intermediate") or False
        if not isinstance(intermediate, bool):
            raise Invalid(
                f"Dispatcher '{dispatcher.name}': dispatch_intermediate is true or false."
            )
        options = entry.get("options") or {}
        if not isinstance(options, Mapping):
            raise Invalid(f"Dispatcher '{dispatcher.name}': options map names to values.")
        unknown = set(options) - {o.name for o in dispatcher.options}
        if unknown:
            raise Invalid(
                f"Dispatcher '{dispatcher.name}' has no option(s) {', '.join(sorted(unknown))}."
            )
        values = {
            o.name: _option_text(o.name, options.get(o.name, o.default)) for o in dispatcher.options
        }
        try:
            typed = {o.name: parse_option(o, values[o.name]) for o in dispatcher.options}
            check_condition(typed.get(CONDITION.name))
            if dispatcher.check is not None:
                dispatcher.check(typed)
        except Invalid as exc:
            raise Invalid(f"Dispatcher '{dispatcher.name}': {exc.message}") from None
        chosen.append(
            {"ssd_id": dispatcher.ssd_id, "dispatch_intermediate": intermediate, "options": values}
        )
    return chosen


def _storage_days(value: Any) -> int:
    try:
        days = int(value)
    except (TypeError, ValueError):
        raise Invalid("output_storage_period is a number of days.") from None
    if not 1 <= days <= 3650:
        raise Invalid("output_storage_period must be between 1 and 3650 days.")
    return days


def _apply(session: Session, process: Process, service: Service, changes: ProcessChanges) -> None:
    if changes.name is not None:
        process.name = _name(changes.name, "process")
    if changes.options is not None:
        unknown = set(changes.options) - {o.name for o in service.options}
        if unknown:
            raise Invalid(f"Unknown option(s): {', '.join(sorted(unknown))}.")
        merged = dict(process.options)
        merged.update({k: _option_text(k, v) for k, v in changes.options.items()})
        process.options = merged
    if changes.dispatchers is not None:
        process.dispatchers = _check_dispatchers(changes.dispatchers)
    if changes.inputs is not None:
        numbers = {str(i.number) for i in service.inputs}
        wanted = {str(k): v for k, v in changes.inputs.items()}
        if set(wanted) - numbers:
            raise Invalid(f"The service has inputs {', '.join(sorted(numbers))} only.")
        process.inputs = {**process.inputs, **wanted}
    _apply_schedule(process, changes)
    if changes.output_storage_period is not None:
        process.output_storage_period = _storage_days(changes.output_storage_period)
    typed: dict[str, float] = {}
    for spec in service.options:
        value = parse_option(spec, process.options.get(spec.name, spec.default))
        if isinstance(value, bool | int | float):
            typed[spec.name] = float(value)
    _check_inputs(session, service, process.organisation_id, process.inputs)
    typed["inputs"] = float(len(service.inputs))
    process.price = evaluate_price(service.price, typed)


def _apply_schedule(process: Process, changes: ProcessChanges) -> None:
    """Set the schedule fields given, then check the whole schedule (``_schedule``)."""
    now = utcnow()
    before = (process.run_type, process.repeat_end, process.repeat_gap, process.cron)
    if changes.run_type is not None:
        if changes.run_type not in schedules.RUN_TYPES:
            raise Invalid(f"run_type is one of {', '.join(schedules.RUN_TYPES)}.")
        process.run_type = changes.run_type
    if changes.repeat_count is not None:
        try:
            count = int(changes.repeat_count)
        except (TypeError, ValueError):
            raise Invalid("repeat_count is a whole number.") from None
        if count < 0:
            raise Invalid("repeat_count must not be negative (0: no limit).")
        process.repeat_count = count
    start = schedules.parse_time(changes.repeat_start, "repeat_start")
    if start is not None and start != process.repeat_start:
        # An unchanged start is the record echoed back (the SDK sends every field it holds).
        if start < now - schedules.TOLERANCE:
            raise Invalid(f"repeat_start {start.isoformat()} is in the past.")
        process.repeat_start = start
    if changes.repeat_end is not None:
        process.repeat_end = schedules.parse_time(changes.repeat_end, "repeat_end")
    if changes.repeat_gap is not None:
        process.repeat_gap = schedules.parse_gap(changes.repeat_gap)
    if changes.repeat_offset is not None:
        process.repeat_offset = schedules.parse_offset(changes.repeat_offset)
    if changes.cron is not None:
        process.cron = schedules.parse_cron(changes.cron)
    end = process.repeat_end
    if end is not None:
        changed = before != (process.run_type, end, process.repeat_gap, process.cron)
        if end <= now and changed:
            raise Invalid(f"The schedule ends in the past (repeat_end {end.isoformat()}).")
        if end <= process.repeat_start:
            raise Invalid(
                f"repeat_end {end.isoformat()} is before repeat_start "
                f"{process.repeat_start.isoformat()}."
            )
    if process.run_type == "run_schedule":
        if process.cron and process.repeat_gap:
            raise Invalid("A schedule takes a repeat_gap or a cron expression, not both.")
        if not process.cron and not process.repeat_gap:
            raise Invalid(
                'run_schedule needs a repeat_gap (e.g. {"days": 1}) or a cron expression.'
            )


def create_process(
    session: Session,
    actor: Actor,
    organisation_id: str,
    *,
    service_id: str,
    changes: ProcessChanges,
    process_id: str | None = None,
) -> Process:
    """Validate (options, inputs analysed and of the right type) and persist, with a price."""
    actor.require(organisation_id, Privilege.execute)
    process = new_process(actor, organisation_id, service_id)
    service = get_service(service_id)
    if process_id is not None and session.get(Process, process_id) is not None:
        raise Conflict("A process with this id already exists.")
    process.id = process_id or new_id()
    process.created_by = actor.id
    if changes.name is None:
        raise Invalid("A process needs a name.")
    _apply(session, process, service, changes)
    session.add(process)
    session.flush()
    return process


def update_process(
    session: Session,
    actor: Actor,
    organisation_id: str,
    process_id: str,
    changes: ProcessChanges,
) -> Process:
    """Before its first execution anything may change; after it, only name and schedule."""
    process = _owned(
        session, actor, Process, process_id, organisation_id=organisation_id, need=Privilege.execute
    )
    # Lock the row as execute does: a change racing the first execution either lands before
    # it (and runs) or sees that it has executed, never overwrites what an execution uses.
    session.refresh(process, with_for_update=True)
    if process.process_status == "execute":
        raise Conflict("The process is executing; stop it before changing it.")
    if process.has_executed:
        frozen = {
            "options": changes.options is not None
            and dict(changes.options) != _set_options(process),
            "inputs": changes.inputs is not None
            and {str(k): v for k, v in changes.inputs.items()} != process.inputs,
            "output_storage_period": changes.output_storage_period is not None
            and _storage_days(changes.output_storage_period) != process.output_storage_period,
            "dispatchers": changes.dispatchers is not None
            and _check_dispatchers(changes.dispatchers) != (process.dispatchers or []),
        }
        changed = [name for name, differs in frozen.items() if differs]
        if changed:
            raise Conflict(
                f"The process has executed, so its {', '.join(changed)} cannot change; "
                "copy it instead."
            )
        changes = changes.schedule_only()
    _apply(session, process, get_service(process.service_id), changes)
    session.flush()
    return process


def _set_options(process: Process) -> dict[str, Any]:
    return {k: v for k, v in process.options.items()}


def copy_process(session: Session, actor: Actor, organisation_id: str, process_id: str) -> Process:
    """A template (not persisted) with the process's options and inputs, to create anew."""
    source = get_process(session, actor, organisation_id, process_id)
    template = new_process(actor, organisation_id, source.service_id)
    template.name = f"{source.name} (copy)"
    template.options = dict(source.options)
    template.inputs = dict(source.inputs)
    template.dispatchers = list(source.dispatchers or [])
    template.output_storage_period = source.output_storage_period
    template.price = source.price
    return template


# --- executions --------------------------------------------------------------------------------


def prepare_execution(
    session: Session,
    actor: Actor,
    organisation_id: str,
    process_id: str,
    *,
    charge: Charge | None = None,
) -> tuple[Process, Execution, list[Component]]:
    """Charge the price and record an execution with its components, ready for the engine.
    ``charge`` locks, checks and charges the process (``charge_process`` for an execute by
    hand, ``charge_scheduled`` for a scheduler's due run).

    Raises:
        PaymentRequired: the organisation holds fewer credits than the price; nothing is
            charged or recorded.
        Conflict: the process is executing already.
    """
    process, svc = (charge or charge_process)(session, actor, organisation_id, process_id)
    execution, components = add_execution(
        session, process, svc, price=process.price, specs=list(svc.components)
    )
    mark_executing(process, execution.started_at)
    session.flush()
    return process, execution, components


Charge = Callable[[Session, Actor, str, str], tuple[Process, Service]]
"""Locks the organisation and the process, checks both and charges the price (one ledger
entry): the first half of every execute (``prepare_execution``, ``groups.prepare_group``)."""


def charge_process(
    session: Session, actor: Actor, organisation_id: str, process_id: str
) -> tuple[Process, Service]:
    """The ``Charge`` of an execute by hand: refused while the process is executing."""
    process = _lock_for_start(session, actor, organisation_id, process_id)
    if process.process_status == "execute":
        raise Conflict("The process is executing already.")
    return process, _charge(session, actor, process, reason="Execution")


def charge_scheduled(
    session: Session,
    actor: Actor,
    organisation_id: str,
    process_id: str,
    *,
    due: datetime,
    now: datetime,
) -> tuple[Process, Service]:
    """The ``Charge`` of a scheduled run: claim the run due at ``due`` (``_claim``), then
    charge it as an execute does.

    Raises:
        RunTaken: claimed already (nothing done).
        PaymentRequired, Invalid, Forbidden: the run cannot start; nothing is charged and the
            caller skips it (``skip_scheduled``).
    """
    process = _lock_for_start(session, actor, organisation_id, process_id)
    _claim(session, process, due, now)
    return process, _charge(session, actor, process, reason="Scheduled execution")


def _lock_for_start(
    session: Session, actor: Actor, organisation_id: str, process_id: str
) -> Process:
    actor.require(organisation_id, Privilege.execute)
    # Lock the organisation row: two executes at once must not both spend the same credits.
    session.get(Organisation, organisation_id, with_for_update=True, populate_existing=True)
    process = _owned(session, actor, Process, process_id, organisation_id=organisation_id)
    session.refresh(process, with_for_update=True)
    return process


def _check_payable(session: Session, organisation_id: str, price: int, what: str) -> None:
    balance = accounts.credit_balance(session, organisation_id)
    if balance < price:
        raise PaymentRequired(f"{what} costs {price} credits and the organisation holds {balance}.")


def _charge(session: Session, actor: Actor, process: Process, *, reason: str) -> Service:
    organisation_id = process.organisation_id
    svc = get_service(process.service_id)
    _check_inputs(session, svc, organisation_id, process.inputs)
    _check_payable(session, organisation_id, process.price, "Executing")
    organisation = session.get(Organisation, organisation_id)
    assert organisation is not None
    if process.price:
        accounts.grant_credits(
            session,
            organisation=organisation,
            amount=-process.price,
            reason=f"{reason} of process '{process.name}' ({process.id})",
            by=actor.user,
        )
    return svc


def add_execution(
    session: Session,
    process: Process,
    svc: Service,
    *,
    price: int,
    specs: Sequence[ComponentSpec],
    inputs: Mapping[str, Any] | None = None,
    first_chain_index: int = 0,
    **fields: Any,
) -> tuple[Execution, list[Component]]:
    """Record one execution of ``process`` running the components ``specs`` on ``inputs``
    (the process's by default); ``fields`` set further execution columns (a group's)."""
    now = utcnow()
    chosen = dict(process.inputs if inputs is None else inputs)
    execution = Execution(
        organisation_id=process.organisation_id,
        process_id=process.id,
        service_id=svc.id,
        options=dict(process.options),
        inputs=chosen,
        price=price,
        started_at=now,
        delete_expiry=now + timedelta(days=process.output_storage_period),
        **fields,
    )
    session.add(execution)
    session.flush()
    components = []
    for offset, spec in enumerate(specs):
        index = first_chain_index + offset
        component = Component(
            organisation_id=process.organisation_id,
            execution_id=execution.id,
            process_id=process.id,
            service_id=svc.id,
            chain_index=index,
            name=spec.name,
            started_at=now,
            cpu=float(spec.cpu),
            memory=spec.memory,
            inputs=[chosen[str(i.number)] for i in svc.inputs] if offset == 0 else [],
            outputs=[],
        )
        session.add(component)
        components.append(component)
    return execution, components


def mark_executing(process: Process, now: datetime) -> None:
    process.repeat_start = now
    process.process_status = "execute"
    process.process_status_at = now
    process.has_executed = True


# --- schedules ---------------------------------------------------------------------------------


def is_scheduled(process: Process, *, now: datetime | None = None) -> bool:
    """Whether executing the process arms a schedule (a repeat, or one run at a later time)
    rather than starting it now."""
    moment = now or utcnow()
    offset = timedelta(seconds=process.repeat_offset or 0)
    return process.run_type == "run_schedule" or process.repeat_start + offset > moment


def arm_schedule(
    session: Session, actor: Actor, organisation_id: str, process_id: str, *, now: datetime
) -> Process:
    """Execute a scheduled process: its first run falls due (``next_due_at``) and the process
    is ``execute`` until its schedule ends or it is stopped. Nothing is charged yet: each run
    is charged when it starts.

    Raises:
        PaymentRequired: the credits do not cover one run now.
        Conflict: the process is executing (or armed) already.
        Invalid: the schedule has ended already.
    """
    process = _lock_for_start(session, actor, organisation_id, process_id)
    if process.process_status == "execute":
        raise Conflict("The process is executing already.")
    _check_inputs(session, get_service(process.service_id), organisation_id, process.inputs)
    _check_payable(session, organisation_id, process.price, "Executing")
    due = schedules.first_due(
        run_type=process.run_type,
        start=process.repeat_start,
        offset=process.repeat_offset,
        gap=process.repeat_gap,
        cron=process.cron,
        now=now,
    )
    if process.repeat_end is not None and due > process.repeat_end:
        ended = process.repeat_end.isoformat()
        raise Invalid(f"The schedule ends in the past (repeat_end {ended}).")
    process.next_due_at = due
    process.runs_done = 0
    # The SDK's wait_for_next_execution waits for an execution started at or after this.
    process.repeat_start = due
    process.process_status = "execute"
    process.process_status_at = utcnow()
    session.flush()
    return process


def due_processes(session: Session, *, now: datetime) -> list[tuple[str, str, datetime]]:
    """The armed processes whose next run is due: (organisation, process, due), oldest due
    first."""
    rows = session.execute(
        select(Process.organisation_id, Process.id, Process.next_due_at)
        .where(Process.next_due_at.is_not(None), Process.next_due_at <= now)
        .where(Process.process_status == "execute")
        .order_by(Process.next_due_at, Process.id)
    ).all()
    return [(org, pid, due) for org, pid, due in rows if due is not None]


class RunTaken(Conflict):
    """Another scheduler started (or skipped) this run first, or the process was stopped."""


def _claim(
    session: Session, process: Process, due: datetime, now: datetime, *, counts: bool = True
) -> None:
    """Move the schedule past the run due at ``due``; the row lock taken before makes the
    read and the move one step, so of two schedulers only one claims each run."""
    if process.process_status != "execute" or process.next_due_at != due:
        raise RunTaken("This run was started or skipped already.")
    if counts:
        process.runs_done += 1
    process.next_due_at = schedules.next_due(
        run_type=process.run_type,
        due=due,
        gap=process.repeat_gap,
        cron=process.cron,
        end=process.repeat_end,
        count=process.repeat_count,
        runs_done=process.runs_done,
        now=now,
    )


def skip_scheduled(
    session: Session, organisation_id: str, process_id: str, *, due: datetime, now: datetime
) -> Process | None:
    """Move past a run that could not start (it does not count towards ``repeat_count``);
    None if another scheduler dealt with it first. A process whose schedule has ended stops."""
    session.get(Organisation, organisation_id, with_for_update=True, populate_existing=True)
    process = session.get(Process, process_id, with_for_update=True, populate_existing=True)
    if process is None:
        return None
    try:
        _claim(session, process, due, now, counts=False)
    except RunTaken:
        return None
    if process.next_due_at is None:
        running = session.scalar(
            select(Execution.id).where(
                Execution.process_id == process.id, Execution.ended_at.is_(None)
            )
        )
        if running is None:
            process.process_status = "stop"
            process.process_status_at = utcnow()
    session.flush()
    return process


def refund_unrun(session: Session, execution: Execution) -> int:
    """An execution that failed or was stopped pays only for the components that finished:
    the share of its price for the rest is credited back (answers the refund), and its
    ``price`` becomes what it paid."""
    if execution.success or not execution.price:
        return 0
    reason_end = f"of execution {execution.id} did not run"
    refunded = session.scalar(
        select(CreditEntry.id).where(
            CreditEntry.organisation_id == execution.organisation_id,
            CreditEntry.reason.endswith(reason_end),
        )
    )
    if refunded is not None:
        return 0  # refunded already
    components = session.scalars(
        select(Component).where(Component.execution_id == execution.id)
    ).all()
    done = sum(1 for c in components if c.success)
    kept = -(-execution.price * done // max(1, len(components)))  # rounded up
    refund = execution.price - kept
    if refund <= 0:
        return 0
    # No lock on the organisation: a refund only adds credits, so it cannot overspend, and
    # the recorder holds the process row here while execute takes the organisation first.
    organisation = session.get(Organisation, execution.organisation_id)
    assert organisation is not None
    accounts.grant_credits(
        session,
        organisation=organisation,
        amount=refund,
        reason=f"Refund: {len(components) - done} of {len(components)} component(s) {reason_end}",
    )
    execution.price = kept
    session.flush()
    return refund


def record_execution(session: Session, execution: Execution) -> None:
    """Record an ended execution in the provenance store: the input files it used and the
    output files its components generated, so lineage runs from the inputs to the outputs."""
    process = session.get(Process, execution.process_id)
    svc = get_service(execution.service_id)
    input_ids = [i for i in execution.inputs.values() if i]
    used = session.scalars(
        select(DataFile)
        .where(DataFile.data_id.in_(input_ids), DataFile.sha256.is_not(None))
        .order_by(DataFile.data_id, DataFile.id)
    ).all()
    generated = session.scalars(
        select(DataFile)
        .join(DataItem, DataItem.id == DataFile.data_id)
        .where(DataItem.execution_id == execution.id, DataFile.sha256.is_not(None))
        .order_by(DataFile.created_at, DataFile.id)
    ).all()
    outcome = "succeeded" if execution.success else f"failed: {execution.abort_reason}"
    name = process.name if process is not None else execution.process_id
    provenance.record_activity(
        session,
        organisation_id=execution.organisation_id,
        kind="processing.execution",
        used=[_activity_file(f) for f in used],
        generated=[_activity_file(f) for f in generated],
        tags=[
            f"execution:{execution.id}",
            f"process:{execution.process_id}",
            f"service:{svc.ssd_id}",
            "succeeded" if execution.success else "failed",
        ],
        user=process.created_by if process is not None else None,
        description=f"Execution of process '{name}' ({svc.name} v{svc.version}) {outcome}"[:2000],
    )


def _activity_file(file: DataFile) -> provenance.ActivityFile:
    assert file.sha256 is not None
    return provenance.ActivityFile(file.sha256, f"{file.data_id}/{file.file_name}", file.size)


def get_execution(
    session: Session, actor: Actor, organisation_id: str, execution_id: str
) -> Execution:
    return _owned(session, actor, Execution, execution_id, organisation_id=organisation_id)


def executions_query(
    session: Session,
    actor: Actor,
    organisation_id: str,
    process_id: str,
    *,
    group_id: str | None = None,
) -> Select[Execution]:
    """The process's executions, oldest first (a group's by ``group_index``); ``group_id``
    keeps one group's."""
    _owned(session, actor, Process, process_id, organisation_id=organisation_id)
    query = select(Execution).where(Execution.process_id == process_id)
    if group_id is not None:
        query = query.where(Execution.group_id == group_id)
    return query.order_by(Execution.started_at, Execution.group_index, Execution.id)


def list_executions(
    session: Session,
    actor: Actor,
    organisation_id: str,
    process_id: str,
    *,
    group_id: str | None = None,
) -> Sequence[Execution]:
    return session.scalars(
        executions_query(session, actor, organisation_id, process_id, group_id=group_id)
    ).all()


@dataclass(frozen=True)
class ExecutionStatus:
    """The columns a process answer shows of each of its executions."""

    id: str
    started_at: datetime
    ended_at: datetime | None
    abort_reason: str | None
    delete_expiry: datetime
    group_id: str | None
    group_index: int | None
    group_count: int | None
    aggregator: bool


def list_execution_statuses(
    session: Session, actor: Actor, organisation_id: str, process_id: str
) -> list[ExecutionStatus]:
    """The process's executions, oldest first, reading only what a process answer shows: a
    process with a long history answers in a few milliseconds, not tens (issue #15)."""
    query = executions_query(session, actor, organisation_id, process_id).with_only_columns(
        Execution.id,
        Execution.started_at,
        Execution.ended_at,
        Execution.abort_reason,
        Execution.delete_expiry,
        Execution.group_id,
        Execution.group_index,
        Execution.group_count,
        Execution.aggregator,
    )
    return [ExecutionStatus(*row) for row in session.execute(query)]


def running(execution: Execution) -> bool:
    return execution.ended_at is None


def delete_execution(
    session: Session, actor: Actor, organisation_id: str, execution_id: str
) -> None:
    """Delete an ended execution with its components, logs and outputs (copies stay)."""
    execution = _owned(
        session,
        actor,
        Execution,
        execution_id,
        organisation_id=organisation_id,
        need=Privilege.execute,
    )
    if running(execution):
        raise Conflict("The execution is still running; stop its process first.")
    _delete_execution(session, execution)


def _delete_execution(session: Session, execution: Execution) -> None:
    for item in session.scalars(select(DataItem).where(DataItem.execution_id == execution.id)):
        _delete_item(session, item)
    session.delete(execution)
    session.flush()


def change_delete_expiry(
    session: Session, actor: Actor, organisation_id: str, execution_id: str, *, expiry: Any
) -> Execution:
    """Keep the execution, and every other member of its group, until ``expiry``."""
    execution = _owned(
        session,
        actor,
        Execution,
        execution_id,
        organisation_id=organisation_id,
        need=Privilege.execute,
    )
    if isinstance(expiry, str):
        try:
            expiry = datetime.fromisoformat(expiry.replace("Z", "+00:00"))
        except ValueError:
            raise Invalid("delete_expiry must be an ISO 8601 date and time.") from None
    if not isinstance(expiry, datetime):
        raise Invalid("delete_expiry must be an ISO 8601 date and time.")
    if expiry.tzinfo is None:
        expiry = expiry.astimezone()
    if expiry <= utcnow():
        raise Invalid("delete_expiry must be in the future.")
    # A group's outputs only make sense together (slices and their aggregate): all move.
    members = [execution]
    if execution.group_id is not None:
        members = list(
            session.scalars(
                select(Execution)
                .where(Execution.group_id == execution.group_id)
                .order_by(Execution.group_index, Execution.id)
                .with_for_update()
            )
        )
    for member in members:
        member.delete_expiry = expiry
    session.flush()
    return execution


def list_components(
    session: Session, actor: Actor, organisation_id: str, execution_id: str
) -> Sequence[Component]:
    _owned(session, actor, Execution, execution_id, organisation_id=organisation_id)
    return session.scalars(
        select(Component)
        .where(Component.execution_id == execution_id)
        .order_by(Component.chain_index)
    ).all()


def list_components_of(session: Session, execution_id: str) -> list[Component]:
    """An execution's components in chain order, for the engine's side (no actor)."""
    return list(
        session.scalars(
            select(Component)
            .where(Component.execution_id == execution_id)
            .order_by(Component.chain_index)
        )
    )


def get_component(
    session: Session, actor: Actor, organisation_id: str, component_id: str
) -> Component:
    return _owned(session, actor, Component, component_id, organisation_id=organisation_id)


def component_logs_query(
    session: Session, actor: Actor, organisation_id: str, component_id: str
) -> Select[ComponentLog]:
    get_component(session, actor, organisation_id, component_id)
    return (
        select(ComponentLog)
        .where(ComponentLog.component_id == component_id)
        .order_by(ComponentLog.logged_at, ComponentLog.id)
    )


def list_component_logs(
    session: Session, actor: Actor, organisation_id: str, component_id: str
) -> Sequence[ComponentLog]:
    return session.scalars(
        component_logs_query(session, actor, organisation_id, component_id)
    ).all()
