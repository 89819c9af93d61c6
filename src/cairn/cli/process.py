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
        # A split region's executions (slices and aggregator) share a group_id.
        "groups": len({e.group_id or e.id for e in executions}),
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
                "groups": _groups(list(process.executions)),
            }
            emit(shown, as_json=as_json, title=f"Process {process.name}")
            return
        service = _service(org, name)
        if service is None:
            raise typer.BadParameter(f"No process or service named {name!r}.")
        emit(service.to_dict(), as_json=as_json, title=f"Service {service.name}")


def _groups(executions: list[Execution]) -> list[dict[str, Any]]:
    """The executions by group (newest group first), each group's by ``group_index``, as
    the Fusion CLI's `display` shows them; an unsplit execution is a group of its own."""
    found: dict[str, list[Execution]] = {}
    for execution in executions:  # newest first
        found.setdefault(execution.group_id or execution.id, []).append(execution)
    return [
        {
            "group_id": members[0].group_id,
            "executions": [
                {
                    "id": m.id,
                    "group_index": m.group_index,
                    "aggregator": m.aggregator,
                    "progress": m.progress,
                    "success": m.success,
                    "abort_reason": m.abort_reason,
                }
                for m in sorted(members, key=lambda m: m.group_index or 0)
            ],
        }
        for members in found.values()
    ]


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


def _members(process: Process, execution: Execution) -> list[Execution]:
    """The execution's group by ``group_index`` (the slices, then the aggregator), or just
    the execution when its region was not split."""
    if not execution.group_id:
        return [execution]
    _, found = process.find_executions(group_id=execution.group_id)
    return sorted(found, key=lambda e: (e.group_index or 0, e.id))


def _label(execution: Execution, slices: int) -> str:
    if execution.group_id is None:
        return "executing"
    if execution.aggregator:
        return "aggregator"
    return f"slice {(execution.group_index or 0) + 1} of {slices}"


def _wait(process: Process, execution: Execution, *, quiet: bool) -> list[Execution]:
    """Wait for the execution (every execution of its group), one progress bar each; a
    failed one raises with every failed member's reason."""
    import time

    from rich.progress import BarColumn, Progress, TextColumn

    from cairn import errors

    members = _members(process, execution)
    slices = sum(1 for m in members if not m.aggregator)
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
        console=err, disable=quiet,
    ) as bar:  # fmt: skip
        tasks = {m.id: bar.add_task(_label(m, slices), total=100) for m in members}
        while True:
            for member in members:
                if member.ended_at is None:
                    member.refresh()
                bar.update(tasks[member.id], completed=member.progress)
            if all(m.ended_at is not None for m in members):
                break
            time.sleep(0.2)
    failed = [m for m in members if m.success is False]
    if failed:
        reasons = "; ".join(f"{_label(m, slices)}: {m.abort_reason}" for m in failed)
        raise errors.CairnError(
            f"{len(failed)} of {len(members)} execution(s) failed: {reasons}"
            if len(members) > 1
            else f"The execution failed: {failed[0].abort_reason}"
        )
    return members


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
        members = [execution]
        if wait or download_to is not None:
            members = _wait(process, execution, quiet=as_json)
        shown = {
            **_summary(process),
            "execution_id": execution.id,
            "group_id": execution.group_id,
            "execution_ids": [m.id for m in members],
        }
        if download_to is not None:
            shown["files"] = [str(p) for p in _download(process, members, download_to, as_json)]
    emit(shown, as_json=as_json, title="Started")


def _download(
    process: Process,
    executions: list[Execution],
    folder: Path,
    quiet: bool,
    *,
    inputs: bool = False,
    metrics: bool = False,
    stac: bool = False,
) -> Iterator[Path]:
    """Every output file (inputs too with ``inputs``) in the Fusion CLI's layout (see
    ``cairn.cli._downloads``); ``metrics`` adds ``<process>/metrics.csv``, ``stac`` a STAC
    collection per data item."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

    from cairn.cli._downloads import plan_downloads, safe_name, write_metrics, write_stac

    planned = list(plan_downloads(process, executions, folder, inputs=inputs))
    total = sum(f.size or 0 for entry in planned for f in entry.files)
    with Progress(
        TextColumn("downloading"), BarColumn(), DownloadColumn(), console=err, disable=quiet
    ) as bar:
        task = bar.add_task("downloading", total=total)
        for entry in planned:
            entry.folder.mkdir(parents=True, exist_ok=True)
            for file in entry.files:
                target = entry.folder / safe_name(file.file_name)
                file.download(path=target, wait=True)
                bar.advance(task, file.size or 0)
                yield target
            if stac:
                yield from write_stac(entry)
    if metrics:
        yield write_metrics(
            folder / safe_name(process.name) / "metrics.csv", process, executions, planned
        )


@app.command()
def download(
    name: str = typer.Argument(
        ..., help="A process (name or id): its newest execution, with the rest of its group."
    ),
    output: Path = typer.Option(Path("."), "--output", "-o", help="Folder to write into."),
    inputs: bool = typer.Option(False, "--inputs", "-i", help="Download the inputs too."),
    metrics: bool = typer.Option(
        False, "--metrics", "-t", help="Write <process>/metrics.csv (one row per component)."
    ),
    stac: bool = typer.Option(
        False, "--stac", "-a", help="Write a STAC collection of each data item's files."
    ),
    organisation: str | None = OrgOption,
    api_url: str | None = ApiUrl,
    as_json: bool = JsonOption,
) -> None:
    """Download the outputs of a process's newest execution (all executions of its group,
    for a region split into a group) as `<process>/<group index>/<n>_<component>/
    <Input|Output>_<k>_<data name>/<file>`."""
    with _organisation(api_url, organisation) as org:
        process = _process(org, name)
        newest, _ = process.find_executions()
        if newest is None:
            raise typer.BadParameter(f"Process {process.name!r} has not executed yet.")
        members = _members(process, newest)
        written = [
            str(p)
            for p in _download(
                process, members, output, as_json, inputs=inputs, metrics=metrics, stac=stac
            )
        ]
    emit(written, as_json=as_json, title="Downloaded")
