"""SDK for processing: the Fusion Platform manual's object model on cairn's native API.

>>> org = next(me.organisations)
>>> region = org.create_data(name="Glasgow", file_type="GeoJSON", files=["glasgow.json"],
...                          wait=True)
>>> elevation, _ = org.find_services(keyword="Elevation")
>>> process = org.new_process(name="Elevation of Glasgow", service=elevation)
>>> process.update(input_number=1, data=region)
>>> process.create()
>>> process.price
>>> execution = process.execute(wait=True)
>>> for component in execution.components:
...     for output in component.outputs:
...         for file in output.files:
...             file.download(path=file.file_name, wait=True)
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field

from cairn import errors
from cairn.client._model import Resource

if TYPE_CHECKING:
    from cairn.client._client import Client

__all__ = [
    "Component",
    "DataFile",
    "DataItem",
    "Dispatcher",
    "Execution",
    "LogEntry",
    "Process",
    "Processing",
    "Service",
]

API = "/api/v1/processing/organisations"
DEFAULT_WAIT = 600.0  # seconds ``wait=True`` waits before giving up
POLL = 0.1  # seconds between polls while waiting
# Local file types by extension, as the Fusion CLI guesses them.
FILE_TYPES_BY_SUFFIX = {
    ".tif": "GeoTIFF",
    ".tiff": "GeoTIFF",
    ".jp2": "JPEG2000",
    ".dem": "DEM",
    ".json": "GeoJSON",
    ".geojson": "GeoJSON",
    ".kml": "KML",
    ".kmz": "KMZ",
    ".csv": "CSV",
    ".zip": "ESRI Shapefile",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".png": "PNG",
    ".pdf": "PDF",
    ".gz": "GZIP",
}


def guess_file_type(path: str | Path) -> str:
    """The file type a local file's extension suggests (``Other`` when none fits)."""
    return FILE_TYPES_BY_SUFFIX.get(Path(path).suffix.lower(), "Other")


def _wait(done: Any, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise errors.CairnError(f"Timed out after {timeout:g} s waiting for {what}.")
        time.sleep(POLL)


def _first(found: list[Any]) -> tuple[Any, Iterator[Any]]:
    return (found[0] if found else None), iter(found)


class _Org(Resource):
    """A processing object: it knows its organisation, so it can find its own path."""

    organisation_id: str

    @property
    def _base(self) -> str:
        return f"{API}/{self.organisation_id}"


class DataFile(_Org):
    """One file of a data item, with what its analysis found (``size``, ``crs``, ``bounds``,
    ``selectors``, ``stac_item``) once ``state`` is ``analysed``."""

    id: str
    data_id: str
    file_name: str
    file_type: str
    state: str
    size: int | None = None
    error_message: str | None = None
    crs: str | None = None
    bounds: list[float] | None = None
    resolution: Any = None
    area: float | None = None
    length: float | None = None
    points: int | None = None
    lines: int | None = None
    polygons: int | None = None
    selectors: Any = None
    stac_item: dict[str, Any] | None = None
    created_at: datetime

    _transfer: threading.Thread | None = None
    _received: int = 0
    _target: Path | None = None
    _failure: BaseException | None = None

    @property
    def path(self) -> str:
        return f"{self._base}/data/{self.data_id}/files/{self.id}"

    def refresh(self) -> DataFile:
        self._update(self._client.get_json(self.path))
        return self

    def download(self, path: str | Path, *, wait: bool = False, preview: bool = False) -> None:
        """Save the file to ``path``: in the background unless ``wait`` (then follow it with
        ``download_progress`` and ``download_complete``); ``preview`` saves its PNG preview
        instead (rasters and vectors)."""
        target = Path(path)
        url = f"{self.path}/content" + ("?preview=true" if preview else "")
        self._target, self._received, self._failure = target, 0, None

        def run() -> None:
            def count(size: int) -> None:
                self._received += size

            try:
                self._client.download(url, target, progress=count)
            except BaseException as exc:  # re-raised by download_complete
                self._failure = exc

        self._transfer = threading.Thread(target=run, name=f"download-{self.id}", daemon=True)
        self._transfer.start()
        if wait:
            self.download_complete(wait=True)

    def download_progress(self) -> tuple[Path | None, int, int | None]:
        """``(target, bytes received, file size)`` of the running or last download."""
        return self._target, self._received, self.size

    def download_complete(self, *, wait: bool = False, timeout: float = DEFAULT_WAIT) -> bool:
        """Whether the download has finished (``wait``: wait for it); a failed one raises."""
        if self._transfer is None:
            raise errors.Conflict("No download has been started for this file.")
        if wait:
            self._transfer.join(timeout)
        if self._failure is not None:
            raise self._failure
        return not self._transfer.is_alive()

    def get_stac_item(self) -> dict[str, Any] | None:
        """The file's STAC item (a dict), once analysed."""
        return self.stac_item


class DataItem(_Org):
    """Files of one type: uploaded, or a component's output (``process_execution_id``)."""

    id: str
    name: str
    file_type: str | None = None
    unfulfilled: bool = False
    bounds: list[float] | None = None
    process_execution_id: str | None = None
    created_at: datetime

    @property
    def path(self) -> str:
        return f"{self._base}/data/{self.id}"

    def refresh(self) -> DataItem:
        self._update(self._client.get_json(self.path))
        return self

    @property
    def files(self) -> Iterator[DataFile]:
        for item in self._client.paginate(f"{self.path}/files"):
            yield DataFile.bind(self._client, item)

    def update(self, *, name: str) -> None:
        """Rename the item; it refreshes in place."""
        self._update(self._client.send_json("PATCH", self.path, {"name": name}))

    # ``copy`` is the manual's name; it hides pydantic's deprecated ``BaseModel.copy``.
    def copy(self, name: str) -> DataItem:  # type: ignore[override]
        """A copy under ``name`` (same content) that outlives the execution of an output."""
        return DataItem.bind(
            self._client, self._client.send_json("POST", f"{self.path}/copy", {"name": name})
        )

    def delete(self) -> None:
        """Delete the item and its files (refused while a process uses it)."""
        self._client.request("DELETE", self.path)

    def add_file(self, path: str | Path, *, file_type: str | None = None) -> DataFile:
        """Upload a local file into the item (its analysis then runs on the server)."""
        local = Path(path)
        kind = file_type or self.file_type or guess_file_type(local)
        created = self._client.send_json(
            "POST", f"{self.path}/files", {"name": local.name, "file_type": kind}
        )
        file = DataFile.bind(self._client, created)
        with local.open("rb") as body:
            answer = self._client.request("PUT", f"{file.path}/content", content=body)
        file._update(answer.json())
        return file

    def create_complete(self, *, wait: bool = False, timeout: float = DEFAULT_WAIT) -> bool:
        """Whether every file is uploaded and analysed (``wait``: wait for it). A failed
        analysis raises ``cairn.errors.Invalid`` with its reason."""

        def finished() -> bool:
            files = list(self.files)
            failed = [f for f in files if f.state in ("failed", "incomplete")]
            if failed:
                raise errors.Invalid(
                    f"'{failed[0].file_name}' of data item '{self.name}': {failed[0].error_message}"
                )
            return bool(files) and all(f.state == "analysed" for f in files)

        if wait:
            _wait(finished, f"data item '{self.name}' to be analysed", timeout)
            self.refresh()
            return True
        return finished()

    def get_stac_collection(self) -> dict[str, Any]:
        """A STAC 1.0.0 Collection of the item's files (each file's item as a link)."""
        items = [f for f in self.files if f.stac_item]
        box = self.bounds or [-180.0, -90.0, 180.0, 90.0]
        return {
            "type": "Collection",
            "stac_version": "1.0.0",
            "id": self.id,
            "description": self.name,
            "license": "proprietary",
            "extent": {
                "spatial": {"bbox": [box]},
                "temporal": {"interval": [[self.created_at.isoformat(), None]]},
            },
            "links": [
                {"rel": "item", "href": f".{f.file_name}.stac", "type": "application/json"}
                for f in items
            ],
        }


class Service(_Org):
    """One version of a service: what it takes, what it costs, what it does."""

    id: str
    ssd_id: str
    version: int
    name: str
    keywords: list[str] = []
    categories: list[str] = []
    charge_expression_platform: str | None = None
    documentation_summary: str | None = None
    documentation_description: str | None = None
    documentation_inputs: list[str] = []
    documentation_outputs: list[str] = []
    documentation_options: list[str] = []


class ProcessOption(Resource):
    name: str
    value: Any = None
    required: bool = False
    data_type: str
    validation: str | None = None
    title: str | None = None
    description: str | None = None
    constrained_values: list[str] | None = None
    constrained_names: list[str] | None = None


class ProcessInput(Resource):
    input: int
    file_type: str
    title: str | None = None
    description: str | None = None
    id: str | None = None


class Dispatcher(Resource):
    """A dispatcher a process adds: after an execution succeeds it sends the outputs on (the
    last component's, or every component's with ``dispatch_intermediate``)."""

    ssd_id: str
    name: str
    dispatch_intermediate: bool = False
    documentation_summary: str | None = None
    documentation_description: str | None = None
    options: list[ProcessOption] = []


class Process(_Org):
    """A configured service. A template (``id`` None, from ``new_process`` or ``copy``) is
    changed locally by ``update`` until ``create`` stores it."""

    id: str | None = None
    name: str
    service_id: str
    ssd_id: str
    inputs: list[ProcessInput] = []
    options: list[ProcessOption] = []
    run_type: str = "run_once"
    repeat_count: int = 0
    repeat_start: datetime | None = None
    repeat_end: datetime | None = None
    repeat_gap: str | None = None  # JSON text of a relativedelta's fields, '{"days": 1}'
    cron: str | None = None
    next_due_at: datetime | None = None  # armed: when the next scheduled run starts
    runs_done: int = 0
    output_storage_period: int = 14
    price: int = 0
    process_status: str = "stop"
    has_executions: str = ""
    dispatchers: list[Dispatcher] = []
    available_dispatchers: list[Dispatcher] = []

    @property
    def path(self) -> str:
        if self.id is None:
            raise errors.Conflict("This process is a template: create() it first.")
        return f"{self._base}/processes/{self.id}"

    def refresh(self) -> Process:
        self._update(self._client.get_json(self.path))
        return self

    def _body(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "options": {o.name: o.value for o in self.options},
            "inputs": {i.input: i.id for i in self.inputs},
            "output_storage_period": self.output_storage_period,
            **self._schedule(),
            "dispatchers": [
                {
                    "ssd_id": d.ssd_id,
                    "dispatch_intermediate": d.dispatch_intermediate,
                    "options": {o.name: o.value for o in d.options},
                }
                for d in self.dispatchers
            ],
        }

    def _schedule(self) -> dict[str, Any]:
        shown: dict[str, Any] = {"run_type": self.run_type, "repeat_count": self.repeat_count}
        if self.repeat_start is not None:
            shown["repeat_start"] = self.repeat_start.isoformat()
        if self.repeat_end is not None:
            shown["repeat_end"] = self.repeat_end.isoformat()
        if self.repeat_gap:
            shown["repeat_gap"] = self.repeat_gap
        if self.cron:
            shown["cron"] = self.cron
        return shown

    def schedule(
        self,
        *,
        cron: str | None = None,
        repeat_gap: Mapping[str, int] | None = None,
        repeat_count: int | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> None:
        """Run on a schedule (``cron`` or ``repeat_gap``, e.g. ``{"days": 1}``), or, with
        only ``start``, once at that time; ``execute`` then arms it."""
        if cron is not None or repeat_gap is not None:
            self.run_type = "run_schedule"
        self.cron = cron
        self.repeat_gap = json.dumps(dict(repeat_gap)) if repeat_gap is not None else None
        if repeat_count is not None:
            self.repeat_count = repeat_count
        self.repeat_start = start
        self.repeat_end = end
        self._save()

    def _save(self) -> None:
        """Send the changes of a stored process (a template keeps them until ``create``)."""
        if self.id is not None:
            self._update(self._client.send_json("PATCH", self.path, self._body()))

    def update(
        self,
        *,
        input_number: int | None = None,
        data: DataItem | str | None = None,
        option_name: str | None = None,
        value: Any = None,
        name: str | None = None,
        output_storage_period: int | None = None,
        dispatcher_number: int | None = None,
        dispatch_intermediate: bool | None = None,
        **options: Any,
    ) -> None:
        """Set an input (``input_number``, ``data``), an option (``option_name``, ``value``,
        or ``option=value`` keywords), the name or the storage period; with
        ``dispatcher_number`` (from 1), the options and ``dispatch_intermediate`` of that
        dispatcher instead. A stored process is changed on the server (only name and schedule
        once it has executed)."""
        chosen = dict(options)
        if option_name is not None:
            chosen[option_name] = value
        owner: Process | Dispatcher = self
        if dispatcher_number is not None:
            owner = self._dispatcher(dispatcher_number)
            if dispatch_intermediate is not None:
                owner.dispatch_intermediate = dispatch_intermediate
        unknown = set(chosen) - {o.name for o in owner.options}
        if unknown:
            raise errors.Invalid(f"Unknown option(s): {', '.join(sorted(unknown))}.")
        for option in owner.options:
            if option.name in chosen:
                option.value = chosen[option.name]
        if input_number is not None:
            wanted = [i for i in self.inputs if i.input == input_number]
            if not wanted:
                raise errors.Invalid(f"The service has no input {input_number}.")
            wanted[0].id = data.id if isinstance(data, DataItem) else data
        if name is not None:
            self.name = name
        if output_storage_period is not None:
            self.output_storage_period = output_storage_period
        self._save()

    def _dispatcher(self, number: int) -> Dispatcher:
        if not 1 <= number <= len(self.dispatchers):
            raise errors.Invalid(f"The process has no dispatcher {number}.")
        return self.dispatchers[number - 1]

    def add_dispatcher(self, number: int | None = None, *, name: str | None = None) -> None:
        """Add one of ``available_dispatchers`` (its ``number`` from 1, or its ``name``) with
        its default options; set them with ``update(dispatcher_number=...)``."""
        found = [
            d
            for n, d in enumerate(self.available_dispatchers, start=1)
            if n == number or (number is None and d.name == name)
        ]
        if not found:
            raise errors.Invalid(f"No dispatcher {name if number is None else number!r}.")
        self.dispatchers.append(found[0].model_copy(deep=True))
        self._save()

    def remove_dispatcher(self, number: int) -> None:
        """Remove the process's dispatcher ``number`` (from 1)."""
        self.dispatchers.remove(self._dispatcher(number))
        self._save()

    def create(self) -> None:
        """Store the template as a process: options and inputs are checked, the price set."""
        if self.id is not None:
            raise errors.Conflict("The process exists already.")
        body = {**self._body(), "service_id": self.service_id}
        self._update(self._client.send_json("POST", f"{self._base}/processes", body))

    def execute(self, *, wait: bool = False, timeout: float = DEFAULT_WAIT) -> Execution | None:
        """Execute now (the price is charged; ``wait``: until the execution ends, every
        execution of its group for a region split into a group; a failed one raises), or,
        for a scheduled process, arm its schedule (None; ``wait_for_next_execution`` waits
        for the first run)."""
        answer = self._client.send_json("POST", f"{self.path}/execute")
        if "process_status" in answer:  # armed: the answer is the process
            self._update(answer)
            return None
        execution = Execution.bind(self._client, answer)
        if wait:
            deadline = time.monotonic() + timeout
            _, members = self.find_executions(group_id=execution.group_id)
            for member in members if execution.group_id else [execution]:
                member.check_complete(wait=True, timeout=max(0.0, deadline - time.monotonic()))
            execution.refresh()
        self.refresh()
        return execution

    @property
    def executions(self) -> Iterator[Execution]:
        """The executions, newest first."""
        found = [
            Execution.bind(self._client, item)
            for item in self._client.paginate(f"{self.path}/executions")
        ]
        return iter(sorted(found, key=lambda e: (e.started_at, e.id), reverse=True))

    def find_executions(
        self, *, group_id: str | None = None
    ) -> tuple[Execution | None, Iterator[Execution]]:
        """``(newest or None, all)``, newest first; ``group_id``: one group's executions
        (the slices of a split region and its aggregator)."""
        if group_id is None:
            return _first(list(self.executions))
        found = [
            Execution.bind(self._client, item)
            for item in self._client.paginate(f"{self.path}/executions", {"group_id": group_id})
        ]
        return _first(sorted(found, key=lambda e: (e.started_at, e.id), reverse=True))

    def wait_for_next_execution(self, *, timeout: float = DEFAULT_WAIT) -> Execution:
        """Wait until an execution newer than the newest one now has started."""
        before = {e.id for e in self.executions}
        found: list[Execution] = []

        def started() -> bool:
            found[:] = [e for e in self.executions if e.id not in before]
            return bool(found)

        _wait(started, f"the next execution of '{self.name}'", timeout)
        return found[0]

    def stop(self) -> None:
        """Stop the process: running executions are aborted."""
        self._update(self._client.send_json("POST", f"{self.path}/stop"))

    def copy(self) -> Process:  # type: ignore[override]  # the manual's name, as DataItem's
        """A template with this process's options and inputs: ``update`` it, then ``create``."""
        return Process.bind(self._client, self._client.get_json(f"{self.path}/copy"))

    def delete(self) -> None:
        """Stop, then delete the process with its executions and their outputs."""
        self._client.request("DELETE", self.path)


class Execution(_Org):
    """One run of a process: progress 0-100, then success or the abort reason."""

    id: str
    process_id: str
    progress: int = 0
    success: bool | None = None
    stopped: bool = False
    abort: bool = False
    abort_reason: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    delete_expiry: datetime | None = None
    price: int = 0
    # A region larger than its service takes runs as a group: slices 0..n-1, then the
    # aggregator (``aggregator`` true); an unsplit execution has no group.
    group_id: str | None = None
    group_index: int | None = None
    group_count: int | None = None
    aggregator: bool = False
    options: list[ProcessOption] = []

    @property
    def path(self) -> str:
        return f"{self._base}/executions/{self.id}"

    def refresh(self) -> Execution:
        self._update(self._client.get_json(self.path))
        return self

    def check_complete(self, *, wait: bool = False, timeout: float = DEFAULT_WAIT) -> bool:
        """Whether the execution has ended (``wait``: wait for it); a failed one raises
        ``cairn.errors.CairnError`` with the abort reason."""

        def ended() -> bool:
            self.refresh()
            return self.progress >= 100 and self.ended_at is not None

        if wait:
            _wait(ended, "the execution to end", timeout)
        elif not ended():
            return False
        if self.success is False:
            raise errors.CairnError(f"The execution failed: {self.abort_reason}")
        return True

    @property
    def components(self) -> Iterator[Component]:
        for item in self._client.paginate(f"{self.path}/components"):
            yield Component.bind(self._client, item)

    def change_delete_expiry(self, delete_expiry: datetime) -> None:
        self._update(
            self._client.send_json(
                "POST", f"{self.path}/delete_expiry", {"delete_expiry": delete_expiry.isoformat()}
            )
        )

    def delete(self) -> None:
        self._client.request("DELETE", self.path)


class LogEntry(Resource):
    logged_at: datetime
    message: str


class Component(_Org):
    """One component of an execution: times, CPU and memory, inputs and outputs."""

    id: str
    name: str
    chain_index: int = 0
    runtime: float | None = None
    cpu: float | None = None
    memory: int | None = None
    success: bool | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    input_ids: list[str] = Field(default=[], validation_alias="inputs")
    output_ids: list[str] = Field(default=[], validation_alias="outputs")

    @property
    def path(self) -> str:
        return f"{self._base}/components/{self.id}"

    def _items(self, ids: Sequence[str]) -> Iterator[DataItem]:
        for data_id in ids:
            yield DataItem.bind(self._client, self._client.get_json(f"{self._base}/data/{data_id}"))

    @property
    def inputs(self) -> Iterator[DataItem]:
        return self._items(self.input_ids)

    @property
    def outputs(self) -> Iterator[DataItem]:
        return self._items(self.output_ids)

    @property
    def logs(self) -> list[LogEntry]:
        return [LogEntry.model_validate(e) for e in self._client.paginate(f"{self.path}/logs")]

    def download_log_file(self, path: str | Path) -> None:
        """Save the log as a CSV of ``logged_at,message``, oldest first, as the manual's
        ``download_log_file`` does."""
        import csv

        with Path(path).open("w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["logged_at", "message"])
            writer.writerows([entry.logged_at.isoformat(), entry.message] for entry in self.logs)


class Processing:
    """``client.processing``: data, services and processes of one of your organisations.

    ``Organisation`` objects (``me.organisations``) offer the same calls without the id.
    """

    def __init__(self, client: Client) -> None:
        self._client = client

    def _list(self, organisation_id: str, what: str, **params: Any) -> list[Any]:
        given = {k: v for k, v in params.items() if v is not None}
        return list(self._client.paginate(f"{API}/{organisation_id}/{what}", given))

    # --- data --------------------------------------------------------------------------------

    def data(self, organisation_id: str) -> Iterator[DataItem]:
        """The organisation's uploaded data items, oldest first."""
        for item in self._list(organisation_id, "data"):
            yield DataItem.bind(self._client, item)

    def find_data(
        self,
        organisation_id: str,
        *,
        name: str | None = None,
        id: str | None = None,
        search: str | None = None,
    ) -> tuple[DataItem | None, Iterator[DataItem]]:
        """``(first or None, all)`` by ``id``, name prefix (case-sensitive) or ``search``."""
        if id is not None:
            try:
                return _first([self.get_data(organisation_id, id)])
            except errors.NotFound:
                return _first([])
        found = self._list(organisation_id, "data", name=name, search=search)
        return _first([DataItem.bind(self._client, item) for item in found])

    def get_data(self, organisation_id: str, data_id: str) -> DataItem:
        return DataItem.bind(
            self._client, self._client.get_json(f"{API}/{organisation_id}/data/{data_id}")
        )

    def create_data(
        self,
        organisation_id: str,
        *,
        name: str,
        file_type: str | None = None,
        files: Sequence[str | Path] = (),
        wait: bool = False,
        timeout: float = DEFAULT_WAIT,
    ) -> DataItem:
        """A data item holding ``files`` (of ``file_type``, else guessed from the first
        file's extension); ``wait``: until they are analysed."""
        item = DataItem.bind(
            self._client,
            self._client.send_json("POST", f"{API}/{organisation_id}/data", {"name": name}),
        )
        kind = file_type or (guess_file_type(files[0]) if files else None)
        for path in files:
            item.add_file(path, file_type=kind)
        if wait and files:
            item.create_complete(wait=True, timeout=timeout)
        return item.refresh()

    # --- services ----------------------------------------------------------------------------

    def services(self, organisation_id: str) -> Iterator[Service]:
        """The newest version of every service."""
        for item in self._list(organisation_id, "services"):
            yield Service.bind(self._client, {**item, "organisation_id": organisation_id})

    def find_services(
        self,
        organisation_id: str,
        *,
        name: str | None = None,
        keyword: str | None = None,
        id: str | None = None,
        ssd_id: str | None = None,
        search: str | None = None,
    ) -> tuple[Service | None, Iterator[Service]]:
        """``(first or None, all)`` by name prefix, keyword, version ``id``, ``ssd_id`` or
        ``search``."""
        if id is not None:
            try:
                answer = self._client.get_json(f"{API}/{organisation_id}/services/{id}")
            except errors.NotFound:
                return _first([])
            return _first(
                [Service.bind(self._client, {**answer, "organisation_id": organisation_id})]
            )
        found = self._list(
            organisation_id, "services", name=name, keyword=keyword, ssd_id=ssd_id, search=search
        )
        return _first(
            [Service.bind(self._client, {**s, "organisation_id": organisation_id}) for s in found]
        )

    # --- processes ---------------------------------------------------------------------------

    def new_process(self, organisation_id: str, *, name: str, service: Service | str) -> Process:
        """A template for ``service`` named ``name``: ``update`` it, then ``create``."""
        service_id = service.id if isinstance(service, Service) else service
        answer = self._client.get_json(
            f"{API}/{organisation_id}/processes/new", params={"service_id": service_id}
        )
        return Process.bind(self._client, {**answer, "name": name})

    def processes(self, organisation_id: str) -> Iterator[Process]:
        for item in self._list(organisation_id, "processes"):
            yield Process.bind(self._client, item)

    def find_processes(
        self,
        organisation_id: str,
        *,
        name: str | None = None,
        id: str | None = None,
        search: str | None = None,
    ) -> tuple[Process | None, Iterator[Process]]:
        """``(first or None, all)`` by ``id``, name prefix (case-sensitive) or ``search``."""
        if id is not None:
            try:
                answer = self._client.get_json(f"{API}/{organisation_id}/processes/{id}")
            except errors.NotFound:
                return _first([])
            return _first([Process.bind(self._client, answer)])
        found = self._list(organisation_id, "processes", name=name, search=search)
        return _first([Process.bind(self._client, item) for item in found])

    def get_execution(self, organisation_id: str, execution_id: str) -> Execution:
        return Execution.bind(
            self._client,
            self._client.get_json(f"{API}/{organisation_id}/executions/{execution_id}"),
        )
