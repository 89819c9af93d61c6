"""Processes: templates, create, change, copy, execute, stop, delete, their executions."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from fastapi import Query
from sqlalchemy.orm import Session

from cairn.accounts.service import Actor
from cairn.api.compat.fusion._common import (
    ORG,
    JsonBody,
    ListDep,
    RuntimeDep,
    _fields,
    _model,
    router,
)
from cairn.api.compat.fusion.records import (
    EXECUTION_COLUMNS,
    PROCESS_COLUMNS,
    available_dispatchers,
    execution_record,
    process_record,
)
from cairn.api.deps import ActorDep, ReadSessionDep, SessionDep
from cairn.db.base import utcnow
from cairn.errors import Invalid
from cairn.processing import service
from cairn.processing._schedule import parse_time
from cairn.processing._scheduler import execute_or_arm
from cairn.processing.models import Execution, Process

# --- processes ---------------------------------------------------------------------------------


def _changes(given: Mapping[str, Any]) -> service.ProcessChanges:
    """A create/update body's process fields. The SDK sends every field of the record it
    holds: ``repeat_gap``/``repeat_offset`` come back as Python text (parsed leniently), and a
    run-once process's ``repeat_start`` in the past is the template's time, meaning "now"."""
    options = None
    if isinstance(given.get("options"), list):
        options = {}
        for option in given["options"]:
            if not isinstance(option, dict) or not isinstance(option.get("name"), str):
                raise Invalid("Each option needs a name.")
            options[option["name"]] = option.get("value")
    inputs = None
    if isinstance(given.get("inputs"), list):
        inputs = {}
        for index, entry in enumerate(given["inputs"], start=1):
            if not isinstance(entry, dict):
                raise Invalid("Each input is an object.")
            number = entry.get("input", index)
            data_id = entry.get("id")
            if data_id is not None and not isinstance(data_id, str):
                raise Invalid("An input's id is a data item id.")
            if not isinstance(number, int):
                raise Invalid("An input's number is a whole number.")
            inputs[number] = data_id
    elif given.get("inputs") is not None:
        raise Invalid("inputs is a list.")
    return service.ProcessChanges(
        dispatchers=_dispatchers(given.get("dispatchers")),
        name=given.get("name"),
        options=options,
        inputs=inputs,
        run_type=given.get("run_type"),
        output_storage_period=given.get("output_storage_period"),
        repeat_count=given.get("repeat_count"),
        repeat_start=_start(given),
        repeat_end=given.get("repeat_end"),
        repeat_gap=given.get("repeat_gap", None) or None,
        repeat_offset=given.get("repeat_offset", None) or None,
    )


def _start(given: Mapping[str, Any]) -> Any:
    start = given.get("repeat_start")
    if given.get("run_type", "run_once") != "run_once" or not start:
        return start
    try:
        when = parse_time(start, "repeat_start")
    except Invalid:
        return start  # the service says what is wrong with it
    return start if when is not None and when > utcnow() else None


def _dispatchers(given: Any) -> list[dict[str, Any]] | None:
    """The SDK's dispatcher records (``options`` a list of ``{name, value}``) as the service
    takes them (``options`` a mapping)."""
    if given is None:
        return None
    if not isinstance(given, list):
        raise Invalid("dispatchers is a list.")
    chosen = []
    for entry in given:
        if isinstance(entry, dict) and isinstance(entry.get("options"), list):
            options = {}
            for option in entry["options"]:
                if not isinstance(option, dict) or not isinstance(option.get("name"), str):
                    raise Invalid("Each dispatcher option needs a name.")
                options[option["name"]] = option.get("value")
            entry = {**entry, "options": options}
        chosen.append(entry)
    return chosen


def _template(
    session: Session,
    process: Process,
    executions: Sequence[Execution | service.ExecutionStatus] = (),
) -> dict[str, Any]:
    """A process (or template) as the SDK loads it: the dispatchers it may add in extras."""
    return _model(process_record(session, process, executions), dispatchers=available_dispatchers())


def _process_model(session: Session, actor: Actor, process: Process) -> dict[str, Any]:
    executions = service.list_execution_statuses(
        session, actor, process.organisation_id, process.id
    )
    return _template(session, process, executions)


@router.get(ORG + "/processes/new")
def new_process(
    organisation_id: str,
    actor: ActorDep,
    session: SessionDep,
    service_id: Annotated[str, Query(max_length=64)],
) -> dict[str, Any]:
    """A template process for a service (nothing is stored): its options and inputs."""
    return _template(session, service.new_process(actor, organisation_id, service_id))


@router.get(ORG + "/processes")
def list_processes(
    organisation_id: str, actor: ActorDep, session: SessionDep, query: ListDep
) -> dict[str, Any]:
    """Your organisation's processes."""
    processes = service.processes_query(actor, organisation_id)
    return query.select(
        session,
        processes,
        PROCESS_COLUMNS,
        lambda p: process_record(
            session, p, service.list_execution_statuses(session, actor, organisation_id, p.id)
        ),
    )


@router.post(ORG + "/processes")
def create_process(
    organisation_id: str, actor: ActorDep, session: SessionDep, body: JsonBody = None
) -> dict[str, Any]:
    """Create a process from a template's fields (`{"Process[name]": ..., ...}`): options and
    inputs are validated and the price is set."""
    actor.require(organisation_id)  # a stranger learns nothing, not even about the body
    given = _fields(body, "Process")
    service_id = given.get("service_id")
    if not isinstance(service_id, str):
        raise Invalid("A process needs its service_id.")
    process_id = given.get("id")
    if process_id is not None:
        try:
            process_id = str(uuid.UUID(str(process_id)))
        except ValueError:
            raise Invalid("A process id is a UUID.") from None
    process = service.create_process(
        session,
        actor,
        organisation_id,
        service_id=service_id,
        changes=_changes(given),
        process_id=process_id,
    )
    return _process_model(session, actor, process)


@router.get(ORG + "/processes/{process_id}")
def get_process(
    organisation_id: str, process_id: str, actor: ActorDep, session: SessionDep
) -> dict[str, Any]:
    """A process with the status of its executions."""
    process = service.get_process(session, actor, organisation_id, process_id)
    return _process_model(session, actor, process)


@router.patch(ORG + "/processes/{process_id}")
def update_process(
    organisation_id: str,
    process_id: str,
    actor: ActorDep,
    session: SessionDep,
    body: JsonBody = None,
) -> dict[str, Any]:
    """Change a process: anything before its first execution, only name and schedule after."""
    process = service.update_process(
        session, actor, organisation_id, process_id, _changes(_fields(body, "Process"))
    )
    return _process_model(session, actor, process)


@router.delete(ORG + "/processes/{process_id}")
def delete_process(
    organisation_id: str, process_id: str, runtime: RuntimeDep, actor: ActorDep
) -> dict[str, Any]:
    """Stop the process, then delete it with its executions and their outputs."""
    runtime.delete_process(actor, organisation_id, process_id)
    return {}


@router.get(ORG + "/processes/{process_id}/copy")
def copy_process(
    organisation_id: str, process_id: str, actor: ActorDep, session: SessionDep
) -> dict[str, Any]:
    """A template holding the process's options and inputs, to create as a new process."""
    return _template(session, service.copy_process(session, actor, organisation_id, process_id))


@router.post(ORG + "/processes/{process_id}/execute")
def execute_process(
    organisation_id: str, process_id: str, actor: ActorDep, runtime: RuntimeDep, session: SessionDep
) -> dict[str, Any]:
    """Execute the process: now (the price is charged; 402 if the credits do not cover it),
    or, for a scheduled process, at each time its schedule names (each run charged as it
    starts)."""
    execute_or_arm(runtime, actor, organisation_id, process_id)
    process = service.get_process(session, actor, organisation_id, process_id)
    return _process_model(session, actor, process)


@router.post(ORG + "/processes/{process_id}/stop")
def stop_process(
    organisation_id: str, process_id: str, actor: ActorDep, runtime: RuntimeDep, session: SessionDep
) -> dict[str, Any]:
    """Stop the process: running executions are aborted."""
    runtime.stop(actor, organisation_id, process_id)
    process = service.get_process(session, actor, organisation_id, process_id)
    return _process_model(session, actor, process)


@router.get(ORG + "/processes/{process_id}/executions")
def list_executions(
    organisation_id: str, process_id: str, actor: ActorDep, session: ReadSessionDep, query: ListDep
) -> dict[str, Any]:
    """The process's executions (`reverse=True`: newest first)."""
    executions = service.executions_query(session, actor, organisation_id, process_id)
    return query.select(session, executions, EXECUTION_COLUMNS, execution_record)
