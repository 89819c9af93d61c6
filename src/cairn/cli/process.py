"""`cairn process`: list, display, define, start and download processes, as the Fusion
Platform's CLI does, on cairn's native API (and any server, by `--api-url`).

A process file (YAML) holds what `define` writes and `start` reads::

    service_name: Elevation
    process_name: Elevation of Glasgow
    inputs: [glasgow.json]        # local files to upload, or names of existing data items
    options: {}                   # option name: value
    output_storage_period: 14
    dispatchers:                  # optional: where outputs go after a successful execution
      - name: Local folder
        dispatch_intermediate: false
        options: {folder: glasgow}
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from cairn.cli._common import CairnTyper, JsonOption, emit, remote_client

if TYPE_CHECKING:
    from cairn.client import Execution, Organisation, Process, Service

app = CairnTyper(help="Processing: list, display, define, start and download processes.")
err = Console(stderr=True)
ApiUrl = typer.Option(None, "--api-url", envvar="CAIRN_API_URL", help="Server URL.")
OrgOption = typer.Option(
    None, "--organisation", "-g", help="Organisation name or id (default: your first one)."
)


@contextmanager
def _organisation(api_url: str | None, wanted: str | None) -> Iterator[Organisation]:
    """The chosen organisation (by name or id; default your first) on the server."""
    from cairn.client import Organisation

    with remote_client(api_url) as client:
        found = [
            Organisation.bind(client, item) for item in client.paginate("/api/v1/organisations")
        ]
        chosen = [o for o in found if wanted in (None, o.id, o.name)]
        if not chosen:
            raise typer.BadParameter(f"You belong to no organisation {wanted!r}.")
        yield chosen[0]


def _find_process(org: Organisation, name_or_id: str) -> Process | None:
    found, _ = org.find_processes(id=name_or_id)
    if found is None:
        matches = [p for p in org.find_processes(name=name_or_id)[1] if p.name == name_or_id]
        found = matches[0] if matches else None
    return found


def _process(org: Organisation, name_or_id: str) -> Process:
    found = _find_process(org, name_or_id)
    if found is None:
        raise typer.BadParameter(f"No process named {name_or_id!r}.")
    return found


def _service(org: Organisation, name_or_id: str) -> Service | None:
    found, _ = org.find_services(id=name_or_id)
    if found is None:
        matches = [s for s in org.find_services(name=name_or_id)[1] if s.name == name_or_id]
        found = matches[0] if matches else None
    return found


def _summary(process: Process) -> dict[str, Any]:
    executions = list(process.executions)
    return {
        "id": process.id,
        "name": process.name,
        "service_id": process.service_id,
        "price": process.price,
        "status": process.process_status,
        "executions": len(executions),
        "progress": executions[0].progress if executions else None,
        "success": executions[0].success if executions else None,
    }


@app.command("list")
def list_processes(
    organisation: str | None = OrgOption, api_url: str | None = ApiUrl, as_json: bool = JsonOption
) -> None:
    """Every process with its number of executions and the newest one's progress."""
    with _organisation(api_url, organisation) as org:
        found = [_summary(p) for p in org.processes]
    emit(found, as_json=as_json, title="Processes")


@app.command()
def display(
    name: str = typer.Argument(..., help="A process or service (name or id)."),
    organisation: str | None = OrgOption,
    api_url: str | None = ApiUrl,
    as_json: bool = JsonOption,
) -> None:
    """A process's configuration and executions, or else a service's documentation."""
    with _organisation(api_url, organisation) as org:
        process = _find_process(org, name)
        if process is not None:
            shown: dict[str, Any] = {
                **_summary(process),
                "options": {o.name: o.value for o in process.options},
                "inputs": {i.input: i.id for i in process.inputs},
                "output_storage_period": process.output_storage_period,
                "run_type": process.run_type,
                "cron": process.cron,
                "repeat_gap": process.repeat_gap,
                "repeat_count": process.repeat_count,
                "runs_done": process.runs_done,
                "next_due_at": str(process.next_due_at) if process.next_due_at else None,
                "dispatchers": _dispatchers(process),
                "execution_ids": [e.id for e in process.executions],
            }
            emit(shown, as_json=as_json, title=f"Process {process.name}")
            return
        service = _service(org, name)
        if service is None:
            raise typer.BadParameter(f"No process or service named {name!r}.")
        emit(service.to_dict(), as_json=as_json, title=f"Service {service.name}")


def _dispatchers(process: Process) -> list[dict[str, Any]]:
    """The process's dispatchers as a process file holds them."""
    return [
        {
            "name": d.name,
            "dispatch_intermediate": d.dispatch_intermediate,
            "options": {o.name: o.value for o in d.options if o.value is not None},
        }
        for d in process.dispatchers
    ]


def _add_dispatchers(process: Process, wanted: Any) -> None:
    """Add a process file's ``dispatchers`` to the template, each with its options."""
    if not isinstance(wanted, list):
        raise typer.BadParameter(
            "'dispatchers' is a list of {name, dispatch_intermediate, options}."
        )
    for number, entry in enumerate(wanted, start=1):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise typer.BadParameter(f"Dispatcher {number} of the process file needs a 'name'.")
        process.add_dispatcher(name=entry["name"])
        process.update(
            dispatcher_number=len(process.dispatchers),
            dispatch_intermediate=bool(entry.get("dispatch_intermediate", False)),
            **{str(k): v for k, v in (entry.get("options") or {}).items()},
        )


def _safe(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name).strip("_") or "process"


@app.command()
def define(
    name: str = typer.Argument(..., help="The process (name or id) to write as a file."),
    output: Path | None = typer.Option(None, "--output", "-o", help="YAML file to write."),
    organisation: str | None = OrgOption,
    api_url: str | None = ApiUrl,
) -> None:
    """Write a process file (YAML) reproducing an existing process, for `cairn process start`."""
    import yaml

    with _organisation(api_url, organisation) as org:
        process = _process(org, name)
        service = _service(org, process.service_id)
        inputs = [org.find_data(id=i.id)[0] for i in process.inputs if i.id]
        document = {
            "service_name": service.name if service else process.service_id,
            "process_name": process.name,
            "inputs": [item.name for item in inputs if item is not None],
            "options": {o.name: o.value for o in process.options if o.value is not None},
            "output_storage_period": process.output_storage_period,
            "dispatchers": _dispatchers(process),
        }
    target = output or Path(f"{_safe(process.name)}.yml")
    target.write_text(yaml.safe_dump(document, sort_keys=False))
    err.print(f"wrote {target}", highlight=False)


def _read_file(path: Path) -> dict[str, Any]:
    import yaml

    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise typer.BadParameter(f"{path}: not a readable YAML process file ({exc}).") from None
    if not isinstance(document, dict) or not isinstance(document.get("service_name"), str):
        raise typer.BadParameter(f"{path}: a process file needs a 'service_name'.")
    return document


def _wait(execution: Execution, *, quiet: bool) -> None:
    from rich.progress import BarColumn, Progress, TextColumn

    with Progress(
        TextColumn("executing"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
        console=err, disable=quiet,
    ) as bar:  # fmt: skip
        task = bar.add_task("executing", total=100)

        def done() -> bool:
            execution.refresh()
            bar.update(task, completed=execution.progress)
            return execution.ended_at is not None

        import time

        while not done():
            time.sleep(0.2)
    execution.check_complete()


@app.command()
def start(
    what: str = typer.Argument(..., help="A service name or id, or a YAML process file."),
    inputs: list[str] = typer.Option(
        [], "--input", "-l", help="A local file to upload, or a data item's name (repeat)."
    ),
    options: list[str] = typer.Option([], "--option", "-p", help="option=value (repeat)."),
    name: str | None = typer.Option(None, "--name", "-n", help="The process's name."),
    wait: bool = typer.Option(False, "--wait", "-w", help="Wait until the execution ends."),
    download_to: Path | None = typer.Option(
        None, "--download", "-d", help="After waiting, download the outputs into this folder."
    ),
    cron: str | None = typer.Option(
        None, "--cron", help="Run on a schedule: a cron expression ('30 4 * * *', UTC)."
    ),
    every: str | None = typer.Option(
        None, "--every", help="Run on a schedule: a gap such as '{\"days\": 1}'."
    ),
    repeat_count: int | None = typer.Option(
        None, "--repeat-count", help="Stop a schedule after this many runs (0: no limit)."
    ),
    at: datetime | None = typer.Option(
        None, "--at", help="The first (or only) run at this time (ISO 8601) instead of now."
    ),
    until: datetime | None = typer.Option(
        None, "--until", help="No scheduled run after this time (ISO 8601)."
    ),
    organisation: str | None = OrgOption,
    api_url: str | None = ApiUrl,
    as_json: bool = JsonOption,
) -> None:
    """Create a process from a service or process file, upload its inputs, and execute it:
    now, or at `--at`, or on a schedule (`--cron` or `--every`, see docs/processing.md)."""
    document: dict[str, Any] = {}
    if what.endswith((".yml", ".yaml")):
        document = _read_file(Path(what))
    service_name = document.get("service_name", what)
    given = [str(i) for i in document.get("inputs") or []] + list(inputs)
    chosen = {str(k): v for k, v in (document.get("options") or {}).items()}
    for pair in options:
        key, sep, value = pair.partition("=")
        if not sep:
            raise typer.BadParameter(f"Options are option=value, not {pair!r}.")
        chosen[key] = value
    with _organisation(api_url, organisation) as org:
        service = _service(org, service_name)
        if service is None:
            raise typer.BadParameter(f"No service named {service_name!r}.")
        title = name or document.get("process_name") or service.name
        process = org.new_process(name=title, service=service)
        for number, entry in enumerate(given, start=1):
            local = Path(entry)
            if local.is_file():
                err.print(f"uploading {local.name}", highlight=False)
                item = org.create_data(name=f"{title} {number}", files=[local], wait=True)
            else:
                found, _ = org.find_data(name=entry)
                if found is None or found.name != entry:
                    raise typer.BadParameter(f"{entry!r} is neither a file nor a data item.")
                item = found
            process.update(input_number=number, data=item)
        period = chosen.pop("output_storage_period", document.get("output_storage_period"))
        process.update(output_storage_period=None if period is None else int(period), **chosen)
        _add_dispatchers(process, document.get("dispatchers") or [])
        if cron or every or at or until:
            try:
                gap = json.loads(every) if every else None
            except ValueError:
                raise typer.BadParameter(
                    f'--every takes a gap such as {{"days": 1}}, not {every!r}.'
                ) from None
            process.schedule(
                cron=cron,
                repeat_gap=gap,
                repeat_count=repeat_count,
                start=at,
                end=until,
            )
        process.create()
        execution = process.execute()
        if execution is None:
            armed = {**_summary(process), "next_due_at": str(process.next_due_at)}
            emit(armed, as_json=as_json, title="Scheduled")
            return
        if wait or download_to is not None:
            _wait(execution, quiet=as_json)
        shown = {**_summary(process), "execution_id": execution.id}
        if download_to is not None:
            shown["files"] = [str(p) for p in _download(process, execution, download_to, as_json)]
    emit(shown, as_json=as_json, title="Started")


def _download(process: Process, execution: Execution, folder: Path, quiet: bool) -> Iterator[Path]:
    """Every output file, into ``folder/<process>/<n>_<component>/<data name>/<file>``."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

    files = [
        (folder / _safe(process.name) / f"{c.chain_index + 1}_{_safe(c.name)}" / _safe(o.name), f)
        for c in execution.components
        for o in c.outputs
        for f in o.files
    ]
    total = sum(f.size or 0 for _, f in files)
    with Progress(
        TextColumn("downloading"), BarColumn(), DownloadColumn(), console=err, disable=quiet
    ) as bar:
        task = bar.add_task("downloading", total=total)
        for where, file in files:
            where.mkdir(parents=True, exist_ok=True)
            file.download(path=where / file.file_name, wait=True)
            bar.advance(task, file.size or 0)
            yield where / file.file_name


@app.command()
def download(
    name: str = typer.Argument(..., help="A process (name or id): its newest execution."),
    output: Path = typer.Option(Path("."), "--output", "-o", help="Folder to write into."),
    organisation: str | None = OrgOption,
    api_url: str | None = ApiUrl,
    as_json: bool = JsonOption,
) -> None:
    """Download the outputs of a process's newest execution."""
    with _organisation(api_url, organisation) as org:
        process = _process(org, name)
        newest, _ = process.find_executions()
        if newest is None:
            raise typer.BadParameter(f"Process {process.name!r} has not executed yet.")
        written = [str(p) for p in _download(process, newest, output, as_json)]
    emit(written, as_json=as_json, title="Downloaded")
