"""Processing, cairn's own API: data items and their files, services, processes, executions
and their components, under ``/api/v1/processing/organisations/{organisation_id}``.

Thin over the same ``cairn.processing.service`` functions (and the runtime, for uploads and
the engine) as the Fusion contract (api/compat/fusion/); objects are the same records, lists
are cairn's ``Page`` (``items``, ``total``, ``page``, ``page_size``), errors problem+json.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Annotated, Any, TypeVar

import anyio.to_thread
from fastapi import APIRouter, FastAPI, Query, Request, Response
from sqlalchemy.orm import Session

from cairn.accounts.service import Actor, Privilege
from cairn.api.compat.fusion._common import RuntimeDep
from cairn.api.compat.fusion.records import (
    available_dispatchers,
    component_record,
    data_record,
    execution_record,
    file_record,
    log_record,
    process_record,
    service_record,
)
from cairn.api.compat.fusion.transfers import receive_upload, send_download
from cairn.api.deps import (
    ActorDep,
    BlobsDep,
    ReadSessionDep,
    SessionDep,
    SettingsDep,
    UnitOfWorkDep,
)
from cairn.api.paging import Page, PageDep, PageParams
from cairn.api.uploads import UPLOAD_MARK
from cairn.db import UnitOfWork
from cairn.errors import Conflict, NotFound
from cairn.processing import service
from cairn.processing._listing import matching
from cairn.processing._runtime import Download, Runtime
from cairn.processing._scheduler import Scheduler, execute_or_arm
from cairn.processing.models import DataItem, Execution, Process
from cairn.processing.schemas import (
    DataCreate,
    ExpiryChange,
    FileCreate,
    NameChange,
    ProcessCreate,
    ProcessUpdate,
)

__all__ = ["router"]


@asynccontextmanager
async def _stop_runtime(app: FastAPI) -> AsyncIterator[None]:
    """When the app stops, so do its engine's workers (running ones and warm idle ones). In
    `cairn serve` (``app.state.background_workers``) the scheduler runs meanwhile."""
    scheduler: Scheduler | None = None
    if getattr(app.state, "background_workers", False):
        scheduler = Scheduler(
            uow=UnitOfWork(app.state.sessionmaker),
            settings=app.state.settings,
            runtime=lambda: Runtime.for_app(app.state),
        )
        scheduler.start()
    try:
        yield
    finally:
        if scheduler is not None:
            scheduler.stop()
        runtime: Runtime | None = getattr(app.state, "processing_runtime", None)
        if runtime is not None:
            runtime.shutdown()


router = APIRouter(
    prefix="/api/v1/processing/organisations/{organisation_id}",
    tags=["processing"],
    lifespan=_stop_runtime,
)

Record = dict[str, Any]
_Row = TypeVar("_Row")
NameQuery = Annotated[
    str | None, Query(max_length=500, description="Names beginning with this (case-sensitive).")
]
SearchQuery = Annotated[
    str | None, Query(max_length=200, description="Text anywhere in the name (any case).")
]


def _page(
    rows: Iterable[_Row],
    shape: Callable[[_Row], Record],
    params: PageParams,
    *,
    name: str | None = None,
    search: str | None = None,
    search_fields: tuple[str, ...] = ("name",),
) -> Page[Record]:
    """One page of ``rows`` as records, oldest first, matching ``name`` and ``search``
    (without them, only the page's rows are shaped)."""
    start, end = (params.page - 1) * params.page_size, params.page * params.page_size
    if name is None and not search:
        ordered = sorted(rows, key=lambda row: (row.created_at, row.id))  # type: ignore[attr-defined]
        items = [shape(row) for row in ordered[start:end]]
        total = len(ordered)
    else:
        found = matching(
            [shape(row) for row in rows], name=name, search=search, search_fields=search_fields
        )
        items, total = found[start:end], len(found)
    return Page(items=items, total=total, page=params.page, page_size=params.page_size)


def _data(session: Session, actor: Actor, organisation_id: str, item: DataItem) -> Record:
    return data_record(item, service.list_files(session, actor, organisation_id, item.id))


def _process(session: Session, actor: Actor, process: Process) -> Record:
    executions = service.list_execution_statuses(
        session, actor, process.organisation_id, process.id
    )
    return _shown(session, process, executions)


def _shown(
    session: Session,
    process: Process,
    executions: Sequence[Execution | service.ExecutionStatus] = (),
) -> Record:
    """A process (or template) with the dispatchers it may add."""
    return {
        **process_record(session, process, executions),
        "available_dispatchers": available_dispatchers(),
    }


# --- services ----------------------------------------------------------------------------------


@router.get("/services", response_model=Page[Record])
def list_services(
    organisation_id: str,
    actor: ActorDep,
    paging: PageDep,
    name: NameQuery = None,
    search: SearchQuery = None,
    keyword: Annotated[str | None, Query(max_length=200, description="Has this keyword.")] = None,
    ssd_id: Annotated[str | None, Query(max_length=64, description="Versions of one SSD.")] = None,
    all_versions: Annotated[bool, Query(description="Every version, not only the newest.")] = False,
) -> Page[Record]:
    """The services you can run: the newest version of each, unless `all_versions`."""
    services = [
        s
        for s in service.list_services(actor, organisation_id, latest=not all_versions)
        if (keyword is None or keyword in s.keywords) and (ssd_id is None or s.ssd_id == ssd_id)
    ]
    return _page(
        services,
        service_record,
        paging,
        name=name,
        search=search,
        search_fields=("name", "keywords"),
    )


@router.get("/services/{service_id}", response_model=Record)
def get_service(organisation_id: str, service_id: str, actor: ActorDep) -> Record:
    """One service version: its options, inputs, price expression and documentation."""
    return service_record(service.show_service(actor, organisation_id, service_id))


# --- data items and files ----------------------------------------------------------------------


@router.get("/data", response_model=Page[Record])
def list_data(
    organisation_id: str,
    actor: ActorDep,
    session: SessionDep,
    paging: PageDep,
    name: NameQuery = None,
    search: SearchQuery = None,
    outputs: Annotated[bool, Query(description="Include components' outputs too.")] = False,
) -> Page[Record]:
    """Your organisation's data items, oldest first (uploaded ones unless `outputs`)."""
    items = service.list_data(session, actor, organisation_id, uploaded_only=not outputs)
    return _page(
        items, lambda i: _data(session, actor, organisation_id, i), paging, name=name, search=search
    )


@router.post("/data", status_code=201, response_model=Record)
def create_data(
    organisation_id: str, body: DataCreate, actor: ActorDep, session: SessionDep
) -> Record:
    """Create an empty data item; add files with `POST .../files`, then upload each."""
    item = service.create_data(session, actor, organisation_id, name=body.name)
    return data_record(item, [])


@router.get("/data/{data_id}", response_model=Record)
def get_data(organisation_id: str, data_id: str, actor: ActorDep, session: SessionDep) -> Record:
    """One data item; `unfulfilled` is true while a file uploads or is analysed."""
    item = service.get_data(session, actor, organisation_id, data_id)
    return _data(session, actor, organisation_id, item)


@router.patch("/data/{data_id}", response_model=Record)
def rename_data(
    organisation_id: str, data_id: str, body: NameChange, actor: ActorDep, session: SessionDep
) -> Record:
    """Rename a data item."""
    item = service.update_data(session, actor, organisation_id, data_id, name=body.name)
    return _data(session, actor, organisation_id, item)


@router.delete("/data/{data_id}", status_code=204)
def delete_data(organisation_id: str, data_id: str, actor: ActorDep, session: SessionDep) -> None:
    """Delete a data item and its files; refused (409) while a process uses it."""
    service.delete_data(session, actor, organisation_id, data_id)


@router.post("/data/{data_id}/copy", status_code=201, response_model=Record)
def copy_data(
    organisation_id: str, data_id: str, body: NameChange, actor: ActorDep, session: SessionDep
) -> Record:
    """Copy a data item under a new name; an output's copy outlives its execution."""
    item = service.copy_data(session, actor, organisation_id, data_id, name=body.name)
    return _data(session, actor, organisation_id, item)


@router.get("/data/{data_id}/files", response_model=Page[Record])
def list_files(
    organisation_id: str, data_id: str, actor: ActorDep, session: SessionDep, paging: PageDep
) -> Page[Record]:
    """The item's files: `state` pending, uploading, analysing, analysed, failed or incomplete;
    size, bounds, CRS, selectors and STAC item once analysed."""
    files = service.list_files(session, actor, organisation_id, data_id)
    return _page(files, file_record, paging)


@router.post("/data/{data_id}/files", status_code=201, response_model=Record)
def add_file(
    organisation_id: str, data_id: str, body: FileCreate, actor: ActorDep, session: SessionDep
) -> Record:
    """Add a file awaiting its bytes: `PUT` them to `.../files/{file_id}/content` within the
    hour."""
    file = service.add_file(
        session, actor, organisation_id, data_id, file_name=body.name, file_type=body.file_type
    )
    return file_record(file)


@router.get("/data/{data_id}/files/{file_id}", response_model=Record)
def get_file(
    organisation_id: str, data_id: str, file_id: str, actor: ActorDep, session: SessionDep
) -> Record:
    """One file, with what its analysis found."""
    return file_record(service.get_file(session, actor, organisation_id, data_id, file_id))


@router.put(
    "/data/{data_id}/files/{file_id}/content",
    response_model=Record,
    openapi_extra={UPLOAD_MARK: True},
)
async def upload_file(
    organisation_id: str,
    data_id: str,
    file_id: str,
    request: Request,
    actor: ActorDep,
    uow: UnitOfWorkDep,
    settings: SettingsDep,
    runtime: RuntimeDep,
) -> Record:
    """The file's raw bytes (once). Analysis then runs in the background; a body cut off
    half-way leaves the file `incomplete`."""

    def check() -> None:
        with uow.transaction() as session:
            service.get_file(session, actor, organisation_id, data_id, file_id)
            actor.require(organisation_id, Privilege.execute)

    await anyio.to_thread.run_sync(check)
    await receive_upload(request, settings, runtime, file_id, signed=None, actor=actor)

    def answer() -> Record:
        with uow.transaction() as session:
            return file_record(service.get_file(session, actor, organisation_id, data_id, file_id))

    return await anyio.to_thread.run_sync(answer)


@router.get("/data/{data_id}/files/{file_id}/content", response_class=Response)
@router.head("/data/{data_id}/files/{file_id}/content", include_in_schema=False)
def download_file(
    organisation_id: str,
    data_id: str,
    file_id: str,
    request: Request,
    actor: ActorDep,
    session: SessionDep,
    blobs: BlobsDep,
    preview: Annotated[
        bool, Query(description="Its PNG preview instead (rasters and vectors; else 404).")
    ] = False,
) -> Response:
    """The file's bytes (ETag, Last-Modified, ranges), or with `preview=true` its PNG preview."""
    file = service.get_file(session, actor, organisation_id, data_id, file_id)
    if file.sha256 is None:
        raise Conflict("The file has not been uploaded.")
    shown = Download(file.sha256, file.size, file.file_name, file.updated_at)
    if preview:
        blob = service.preview_of(file)
        if blob is None:
            raise NotFound(f"There is no preview of '{file.file_name}' ({file.file_type}).")
        shown = Download(blob, None, f"{file.file_name}.png", file.updated_at, "image/png")
    return send_download(request, blobs, shown)


# --- processes ---------------------------------------------------------------------------------


@router.get("/processes/new", response_model=Record)
def new_process(
    organisation_id: str,
    actor: ActorDep,
    session: SessionDep,
    service_id: Annotated[str, Query(max_length=64, description="The service to configure.")],
) -> Record:
    """A template (nothing is stored): the service's options with defaults, empty inputs."""
    return _shown(session, service.new_process(actor, organisation_id, service_id))


@router.get("/processes", response_model=Page[Record])
def list_processes(
    organisation_id: str,
    actor: ActorDep,
    session: SessionDep,
    paging: PageDep,
    name: NameQuery = None,
    search: SearchQuery = None,
) -> Page[Record]:
    """Your organisation's processes, oldest first."""
    processes = service.list_processes(session, actor, organisation_id)
    return _page(processes, lambda p: _process(session, actor, p), paging, name=name, search=search)


@router.post("/processes", status_code=201, response_model=Record)
def create_process(
    organisation_id: str, body: ProcessCreate, actor: ActorDep, session: SessionDep
) -> Record:
    """Create a process: options and inputs are checked (inputs analysed, of the right file
    type) and the price in credits is set."""
    process = service.create_process(
        session, actor, organisation_id, service_id=body.service_id, changes=body.changes()
    )
    return _process(session, actor, process)


@router.get("/processes/{process_id}", response_model=Record)
def get_process(
    organisation_id: str, process_id: str, actor: ActorDep, session: SessionDep
) -> Record:
    """A process with its options, inputs, price and the status of its executions."""
    return _process(
        session, actor, service.get_process(session, actor, organisation_id, process_id)
    )


@router.patch("/processes/{process_id}", response_model=Record)
def update_process(
    organisation_id: str, process_id: str, body: ProcessUpdate, actor: ActorDep, session: SessionDep
) -> Record:
    """Change a process: anything before its first execution, only name and schedule after
    (copy it instead)."""
    process = service.update_process(session, actor, organisation_id, process_id, body.changes())
    return _process(session, actor, process)


@router.delete("/processes/{process_id}", status_code=204)
def delete_process(
    organisation_id: str, process_id: str, actor: ActorDep, runtime: RuntimeDep
) -> None:
    """Stop the process, then delete it with its executions and their outputs."""
    runtime.delete_process(actor, organisation_id, process_id)


@router.get("/processes/{process_id}/copy", response_model=Record)
def copy_process(
    organisation_id: str, process_id: str, actor: ActorDep, session: SessionDep
) -> Record:
    """A template holding the process's options and inputs, to create as a new process."""
    return _shown(session, service.copy_process(session, actor, organisation_id, process_id))


@router.post("/processes/{process_id}/execute", status_code=201, response_model=Record)
def execute_process(
    organisation_id: str, process_id: str, actor: ActorDep, runtime: RuntimeDep, session: SessionDep
) -> Record:
    """Execute: a run-once process starts now, its price charged (402 and nothing charged if
    the credits do not cover it), and the answer is the new execution (poll it until
    `progress` is 100). A scheduled process (`run_type` `run_schedule`, or a `repeat_start`
    still to come) is armed instead: the answer is the process, `next_due_at` its first run,
    each run charged when it starts."""
    execution_id = execute_or_arm(runtime, actor, organisation_id, process_id)
    if execution_id is None:
        return _process(
            session, actor, service.get_process(session, actor, organisation_id, process_id)
        )
    return execution_record(service.get_execution(session, actor, organisation_id, execution_id))


@router.post("/processes/{process_id}/stop", response_model=Record)
def stop_process(
    organisation_id: str, process_id: str, actor: ActorDep, runtime: RuntimeDep, session: SessionDep
) -> Record:
    """Stop the process: running executions are aborted."""
    runtime.stop(actor, organisation_id, process_id)
    return _process(
        session, actor, service.get_process(session, actor, organisation_id, process_id)
    )


@router.get("/processes/{process_id}/executions", response_model=Page[Record])
def list_executions(
    organisation_id: str,
    process_id: str,
    actor: ActorDep,
    session: ReadSessionDep,
    paging: PageDep,
    group_id: str | None = None,
) -> Page[Record]:
    """The process's executions, oldest first. A region larger than its service takes runs
    as a group (one execution per slice, then the aggregator): `group_id` lists one group."""
    executions = service.list_executions(
        session, actor, organisation_id, process_id, group_id=group_id
    )
    return _page(executions, execution_record, paging)


# --- executions and components ------------------------------------------------------------------


@router.get("/executions/{execution_id}", response_model=Record)
def get_execution(
    organisation_id: str, execution_id: str, actor: ActorDep, session: ReadSessionDep
) -> Record:
    """An execution: progress 0-100, success, abort reason, times, delete expiry."""
    return execution_record(service.get_execution(session, actor, organisation_id, execution_id))


@router.delete("/executions/{execution_id}", status_code=204)
def delete_execution(
    organisation_id: str, execution_id: str, actor: ActorDep, session: SessionDep
) -> None:
    """Delete an ended execution with its outputs (copies stay)."""
    service.delete_execution(session, actor, organisation_id, execution_id)


@router.post("/executions/{execution_id}/delete_expiry", response_model=Record)
def change_delete_expiry(
    organisation_id: str,
    execution_id: str,
    body: ExpiryChange,
    actor: ActorDep,
    session: SessionDep,
) -> Record:
    """Keep the execution and its outputs until `delete_expiry`."""
    execution = service.change_delete_expiry(
        session, actor, organisation_id, execution_id, expiry=body.delete_expiry
    )
    return execution_record(execution)


@router.get("/executions/{execution_id}/components", response_model=Page[Record])
def list_components(
    organisation_id: str, execution_id: str, actor: ActorDep, session: SessionDep, paging: PageDep
) -> Page[Record]:
    """The execution's components, in chain order, with their input and output data ids."""
    components = service.list_components(session, actor, organisation_id, execution_id)
    return _page(components, component_record, paging)


@router.get("/components/{component_id}", response_model=Record)
def get_component(
    organisation_id: str, component_id: str, actor: ActorDep, session: SessionDep
) -> Record:
    """One component: times, runtime, CPU and memory, inputs and outputs (data ids)."""
    return component_record(service.get_component(session, actor, organisation_id, component_id))


@router.get("/components/{component_id}/logs", response_model=Page[Record])
def list_component_logs(
    organisation_id: str, component_id: str, actor: ActorDep, session: SessionDep, paging: PageDep
) -> Page[Record]:
    """The component's log lines (`logged_at`, `message`), oldest first."""
    logs = service.list_component_logs(session, actor, organisation_id, component_id)
    return _page(logs, log_record, paging, search_fields=("message",))
