"""Processing services: data items, services, processes, executions and their components.

Every function takes the session (or, for workflows that run on the engine, the ``Runtime``)
first and keyword arguments after; none commits. Another organisation's object is not found;
privileges are view < execute < manage (``Actor.require``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from cairn.accounts import service as accounts
from cairn.accounts.models import Organisation
from cairn.accounts.service import Actor, Privilege
from cairn.db.base import new_id, utcnow
from cairn.errors import Conflict, Invalid, NotFound, PaymentRequired
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
from cairn.processing.ssd import FILE_TYPES, Dispatcher, Service, evaluate_price, parse_option
from cairn.provenance import service as provenance

__all__ = [
    "UPLOAD_LIFETIME",
    "ExecutionStatus",
    "ProcessChanges",
    "add_dem_source",
    "add_file",
    "change_delete_expiry",
    "component_logs_query",
    "copy_data",
    "copy_process",
    "create_data",
    "create_process",
    "data_query",
    "delete_data",
    "delete_execution",
    "dem_sources",
    "executions_query",
    "get_component",
    "get_data",
    "get_execution",
    "get_file",
    "get_process",
    "get_service",
    "list_component_logs",
    "list_components",
    "list_data",
    "list_dispatchers",
    "list_execution_statuses",
    "list_executions",
    "list_files",
    "list_processes",
    "list_services",
    "new_process",
    "prepare_execution",
    "preview_of",
    "processes_query",
    "record_execution",
    "show_service",
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


SCHEDULE_FIELDS = ("name", "run_type", "repeat_count")


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
    if changes.run_type is not None:
        if changes.run_type != "run_once":
            raise Invalid("Only run_type 'run_once' is supported yet; schedules come later.")
        process.run_type = changes.run_type
    if changes.output_storage_period is not None:
        process.output_storage_period = _storage_days(changes.output_storage_period)
    if changes.repeat_count is not None:
        try:
            process.repeat_count = max(0, int(changes.repeat_count))
        except (TypeError, ValueError):
            raise Invalid("repeat_count is a whole number.") from None
    typed: dict[str, float] = {}
    for spec in service.options:
        value = parse_option(spec, process.options.get(spec.name, spec.default))
        if isinstance(value, bool | int | float):
            typed[spec.name] = float(value)
    _check_inputs(session, service, process.organisation_id, process.inputs)
    typed["inputs"] = float(len(service.inputs))
    process.price = evaluate_price(service.price, typed)


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
        changes = ProcessChanges(
            name=changes.name, run_type=changes.run_type, repeat_count=changes.repeat_count
        )
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
    session: Session, actor: Actor, organisation_id: str, process_id: str
) -> tuple[Process, Execution, list[Component]]:
    """Charge the price and record an execution with its components, ready for the engine.

    Raises:
        PaymentRequired: the organisation holds fewer credits than the price; nothing is
            charged or recorded.
        Conflict: the process is executing already.
    """
    actor.require(organisation_id, Privilege.execute)
    # Lock the organisation row: two executes at once must not both spend the same credits.
    session.get(Organisation, organisation_id, with_for_update=True, populate_existing=True)
    process = _owned(session, actor, Process, process_id, organisation_id=organisation_id)
    session.refresh(process, with_for_update=True)
    if process.process_status == "execute":
        raise Conflict("The process is executing already.")
    service = get_service(process.service_id)
    _check_inputs(session, service, organisation_id, process.inputs)
    balance = accounts.credit_balance(session, organisation_id)
    if balance < process.price:
        raise PaymentRequired(
            f"Executing costs {process.price} credits and the organisation holds {balance}."
        )
    organisation = session.get(Organisation, organisation_id)
    assert organisation is not None
    if process.price:
        accounts.grant_credits(
            session,
            organisation=organisation,
            amount=-process.price,
            reason=f"Execution of process '{process.name}' ({process.id})",
            by=actor.user,
        )
    now = utcnow()
    execution = Execution(
        organisation_id=organisation_id,
        process_id=process.id,
        service_id=service.id,
        options=dict(process.options),
        inputs=dict(process.inputs),
        price=process.price,
        started_at=now,
        delete_expiry=now + timedelta(days=process.output_storage_period),
    )
    session.add(execution)
    session.flush()
    components = []
    for index, spec in enumerate(service.components):
        component = Component(
            organisation_id=organisation_id,
            execution_id=execution.id,
            process_id=process.id,
            service_id=service.id,
            chain_index=index,
            name=spec.name,
            started_at=now,
            cpu=float(spec.cpu),
            memory=spec.memory,
            inputs=[process.inputs[str(i.number)] for i in service.inputs] if index == 0 else [],
            outputs=[],
        )
        session.add(component)
        components.append(component)
    process.repeat_start = now
    process.process_status = "execute"
    process.process_status_at = now
    process.has_executed = True
    session.flush()
    return process, execution, components


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
    session: Session, actor: Actor, organisation_id: str, process_id: str
) -> Select[Execution]:
    _owned(session, actor, Process, process_id, organisation_id=organisation_id)
    return (
        select(Execution)
        .where(Execution.process_id == process_id)
        .order_by(Execution.started_at, Execution.id)
    )


def list_executions(
    session: Session, actor: Actor, organisation_id: str, process_id: str
) -> Sequence[Execution]:
    return session.scalars(executions_query(session, actor, organisation_id, process_id)).all()


@dataclass(frozen=True)
class ExecutionStatus:
    """The five columns a process answer shows of each of its executions."""

    id: str
    started_at: datetime
    ended_at: datetime | None
    abort_reason: str | None
    delete_expiry: datetime


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
    execution.delete_expiry = expiry
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
