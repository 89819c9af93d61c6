"""Executions and their components (process service executions) with logs."""

from __future__ import annotations

from typing import Any

from cairn.accounts.service import Privilege
from cairn.api.compat.fusion._common import (
    ORG,
    JsonBody,
    ListDep,
    _model,
    _nested,
    one,
    router,
)
from cairn.api.compat.fusion.records import (
    LOG_COLUMNS,
    component_record,
    execution_record,
    log_record,
)
from cairn.api.deps import ActorDep, ReadSessionDep, SessionDep
from cairn.processing import service

# --- executions and components ------------------------------------------------------------------


@router.get(ORG + "/process_executions/{process_execution_id}")
def get_execution(
    organisation_id: str, process_execution_id: str, actor: ActorDep, session: ReadSessionDep
) -> dict[str, Any]:
    """An execution: progress 0-100, success, abort reason, times, delete expiry."""
    return _model(
        execution_record(
            service.get_execution(session, actor, organisation_id, process_execution_id)
        )
    )


@router.patch(ORG + "/process_executions/{process_execution_id}")
def update_execution(
    organisation_id: str,
    process_execution_id: str,
    actor: ActorDep,
    session: SessionDep,
    body: JsonBody = None,
) -> dict[str, Any]:
    """Executions have no fields to change here; use `change_delete_expiry`."""
    actor.require(organisation_id, Privilege.execute)
    execution = service.get_execution(session, actor, organisation_id, process_execution_id)
    return one(execution_record, execution)


@router.delete(ORG + "/process_executions/{process_execution_id}")
def delete_execution(
    organisation_id: str, process_execution_id: str, actor: ActorDep, session: SessionDep
) -> dict[str, Any]:
    """Delete an ended execution with its outputs (copies stay)."""
    service.delete_execution(session, actor, organisation_id, process_execution_id)
    return {}


@router.post(ORG + "/process_executions/{process_execution_id}/change_delete_expiry")
def change_delete_expiry(
    organisation_id: str,
    process_execution_id: str,
    actor: ActorDep,
    session: SessionDep,
    body: JsonBody = None,
) -> dict[str, Any]:
    """Keep the outputs until `{"ProcessExecution": {"delete_expiry": ISO 8601}}`."""
    actor.require(organisation_id)  # a stranger learns nothing, not even about the body
    given = _nested(body, "ProcessExecution")
    execution = service.change_delete_expiry(
        session, actor, organisation_id, process_execution_id, expiry=given.get("delete_expiry")
    )
    return one(execution_record, execution)


@router.get(ORG + "/process_executions/{process_execution_id}/process_service_executions")
def list_components(
    organisation_id: str,
    process_execution_id: str,
    actor: ActorDep,
    session: SessionDep,
    query: ListDep,
) -> dict[str, Any]:
    """The execution's components, in chain order."""
    components = service.list_components(session, actor, organisation_id, process_execution_id)
    return query.page(components, component_record)


@router.get(ORG + "/process_service_executions/{process_service_execution_id}")
def get_component(
    organisation_id: str, process_service_execution_id: str, actor: ActorDep, session: SessionDep
) -> dict[str, Any]:
    """One component: times, CPU and memory figures, inputs and outputs (data ids)."""
    component = service.get_component(session, actor, organisation_id, process_service_execution_id)
    return one(component_record, component)


@router.get(ORG + "/process_service_executions/{process_service_execution_id}/logs")
def list_component_logs(
    organisation_id: str,
    process_service_execution_id: str,
    actor: ActorDep,
    session: SessionDep,
    query: ListDep,
) -> dict[str, Any]:
    """The component's log lines (`logged_at`, `message`)."""
    logs = service.component_logs_query(
        session, actor, organisation_id, process_service_execution_id
    )
    return query.select(session, logs, LOG_COLUMNS, log_record, search_fields=("message",))
