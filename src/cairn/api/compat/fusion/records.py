"""The Fusion Platform's resource records: the fields the SDK's models require, read from
cairn's processing rows. The native processing API (api/routes/processing.py) shows the same
records, so cairn's SDK offers the manual's object model too."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cairn.accounts.models import Membership, Organisation, User
from cairn.api.compat.fusion._common import NIL, _iso
from cairn.processing import service
from cairn.processing._registry import all_dispatchers
from cairn.processing.models import Component, ComponentLog, DataFile, DataItem, Execution, Process
from cairn.processing.ssd import DEFAULT_DATETIME_FORMAT, Dispatcher, OptionSpec, Service

# --- resource shapes ---------------------------------------------------------------------------


def user_record(session: Session, user: User) -> dict[str, Any]:
    memberships = session.scalars(select(Membership).where(Membership.user_id == user.id)).all()
    return {
        "id": user.id,
        "created_at": _iso(user.created_at),
        "updated_at": _iso(user.updated_at),
        "email": user.email,
        "given_name": user.given_name or "",
        "family_name": user.family_name or "",
        "telephone": user.phone,
        "default_output_storage_period": 14,
        "time_zone": "UTC",
        "locale": "en",
        "units": "metric",
        "organisations": [
            {"id": m.organisation_id, "last": i == len(memberships) - 1}
            for i, m in enumerate(memberships)
        ],
    }


def organisation_record(session: Session, organisation: Organisation) -> dict[str, Any]:
    members = session.scalars(
        select(Membership).where(Membership.organisation_id == organisation.id)
    ).all()
    users = {
        u.id: u
        for u in session.scalars(select(User).where(User.id.in_([m.user_id for m in members])))
    }
    return {
        "id": organisation.id,
        "created_at": _iso(organisation.created_at),
        "updated_at": _iso(organisation.updated_at),
        "name": organisation.name,
        "address_line_1": "",
        "address_town_city": "",
        "address_post_zip_code": "",
        "address_country": "",
        "currency": "credits",
        "users": [
            {"id": m.user_id, "email": users[m.user_id].email, "roles": [m.privilege]}
            for m in members
            if m.user_id in users
        ],
    }


def file_record(file: DataFile) -> dict[str, Any]:
    analysis = file.analysis or {}
    shown: dict[str, Any] = {
        "id": file.id,
        "created_at": _iso(file.created_at),
        "updated_at": _iso(file.updated_at),
        "organisation_id": file.organisation_id,
        "data_id": file.data_id,
        "file_id": file.id,
        "file_type": file.file_type,
        "file_name": file.file_name,
        "state": file.state,
    }
    for key in ("resolution", "crs", "bounds", "area", "length", "points", "lines", "polygons"):
        shown[key] = analysis.get(key)
    shown["selectors"] = analysis.get("selectors")
    # The SDK waits until ``size`` and ``publishable`` (or ``error``) are present: only once
    # the upload and its analysis are over.
    if file.state == "analysed":
        shown.update(size=file.size, publishable=True, error=False)
        shown["stac_item"] = analysis.get("stac_item")
        shown["stac_item_file"] = file.file_name
    elif file.state in ("failed", "incomplete"):
        shown.update(size=file.size, error=True, error_message=file.error)
    return shown


def data_record(item: DataItem, files: Sequence[DataFile]) -> dict[str, Any]:
    boxes = [f.analysis["bounds"] for f in files if f.analysis and f.analysis.get("bounds")]
    bounds = (
        [
            min(b[0] for b in boxes),
            min(b[1] for b in boxes),
            max(b[2] for b in boxes),
            max(b[3] for b in boxes),
        ]
        if boxes
        else None
    )
    return {
        "id": item.id,
        "created_at": _iso(item.created_at),
        "updated_at": _iso(item.updated_at),
        "organisation_id": item.organisation_id,
        "name": item.name,
        "unfulfilled": any(f.state in ("pending", "uploading", "analysing") for f in files),
        "bounds": bounds,
        "uploaded_organisation_id": item.organisation_id if item.execution_id is None else None,
        "deletable": "True",
        "file_type": item.file_type,
        "process_execution_id": item.execution_id,
    }


def _validation(spec: OptionSpec) -> str | None:
    """The option's validation; a datetime's always names its ``format=`` (setting a
    datetime option without one crashes the SDK), the one ``parse_option`` reads by default."""
    if spec.data_type != "datetime" or "format" in spec.constraints():
        return spec.validation
    return ";".join(filter(None, [spec.validation, f"format={DEFAULT_DATETIME_FORMAT}"]))


def option_record(service_def: Service, name: str, value: Any) -> dict[str, Any]:
    spec = service_def.option(name)
    assert spec is not None
    shown: dict[str, Any] = {
        "ssd_id": service_def.ssd_id,
        "name": spec.name,
        "value": value,
        "required": spec.required,
        "data_type": spec.data_type,
        "validation": _validation(spec),
        "advanced": spec.advanced,
        "title": spec.title or spec.name,
        "description": spec.description,
    }
    if spec.data_type == "constrained":
        rules = spec.constraints()
        shown["constrained_values"] = rules.get("values", "").split(",")
        shown["constrained_names"] = rules.get("names", rules.get("values", "")).split(",")
    return shown


def service_record(svc: Service) -> dict[str, Any]:
    created = _iso(svc.created_at)
    return {
        "id": svc.id,
        "created_at": created,
        "updated_at": created,
        "organisation_id": NIL,
        "ssd_id": svc.ssd_id,
        "version": svc.version,
        "approval_status": "approved",
        "show_in_latest": svc.show_in_latest,
        "name": svc.name,
        "categories": list(svc.categories),
        "keywords": list(svc.keywords),
        "image_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"cairn:{svc.id}")),
        "license_id": NIL,
        "charge_expression_platform": svc.price,
        "documentation_summary": svc.summary,
        "documentation_description": svc.description,
        "documentation_assumptions": svc.assumptions,
        "documentation_performance": svc.performance,
        "documentation_actions": "",
        "documentation_inputs": [f"{i.title} ({i.file_type}): {i.description}" for i in svc.inputs],
        "documentation_outputs": list(svc.outputs),
        "documentation_options": [f"{o.title or o.name}: {o.description}" for o in svc.options],
    }


def dispatcher_record(
    dispatcher: Dispatcher, chosen: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A dispatcher as a process shows it: ``chosen`` (one of the process's dispatchers) gives
    its option values; without it, the defaults (the template's available dispatchers)."""
    values = (chosen or {}).get("options") or {o.name: o.default for o in dispatcher.options}
    return {
        "ssd_id": dispatcher.ssd_id,
        "name": dispatcher.name,
        "dispatch_intermediate": bool((chosen or {}).get("dispatch_intermediate")),
        "documentation_summary": dispatcher.summary,
        "documentation_description": dispatcher.description,
        "options": [
            option_record(dispatcher, o.name, values.get(o.name)) for o in dispatcher.options
        ],
    }


def available_dispatchers() -> list[dict[str, Any]]:
    """Every dispatcher a process may add, with its default options."""
    return [dispatcher_record(d) for d in all_dispatchers()]


def _chosen_dispatchers(process: Process) -> list[dict[str, Any]]:
    """The process's dispatchers, in order (one whose plugin has gone is left out)."""
    known = {d.ssd_id: d for d in all_dispatchers()}
    return [
        dispatcher_record(known[d["ssd_id"]], d)
        for d in process.dispatchers or []
        if d.get("ssd_id") in known
    ]


def _schedule_fields(process: Process) -> dict[str, Any]:
    """The gap and offset as the SDK reads them (JSON text of a relativedelta's and a
    timedelta's fields, left out when unset), plus cairn's own cron and armed state."""
    shown: dict[str, Any] = {
        "cron": process.cron,
        "next_due_at": _iso(process.next_due_at),
        "runs_done": process.runs_done or 0,
    }
    if process.repeat_gap:
        shown["repeat_gap"] = json.dumps(process.repeat_gap)
    if process.repeat_offset:
        shown["repeat_offset"] = json.dumps({"seconds": process.repeat_offset})
    return shown


def process_record(
    session: Session,
    process: Process,
    executions: Sequence[Execution | service.ExecutionStatus] = (),
) -> dict[str, Any]:
    svc = service.get_service(process.service_id)
    inputs = []
    for spec in svc.inputs:
        shown: dict[str, Any] = {
            "ssd_id": svc.ssd_id,
            "input": spec.number,
            "file_type": spec.file_type,
            "model": "Data",
            "change_trigger": False,
            "title": spec.title,
            "description": spec.description,
        }
        data_id = process.inputs.get(str(spec.number))
        if data_id:  # a template's empty input omits ``id`` (the SDK loads it partially)
            shown["id"] = data_id
        inputs.append(shown)
    executed = bool(executions) or process.has_executed
    return {
        "id": process.id,
        "created_at": _iso(process.created_at),
        "updated_at": _iso(process.updated_at),
        "organisation_id": process.organisation_id,
        "ssd_id": process.ssd_id,
        "service_id": process.service_id,
        "name": process.name,
        "inputs": inputs,
        "options": [option_record(svc, o.name, process.options.get(o.name)) for o in svc.options],
        "run_type": process.run_type,
        "repeat_count": process.repeat_count,
        "repeat_start": _iso(process.repeat_start),
        "repeat_end": _iso(process.repeat_end),
        **_schedule_fields(process),
        "process_status": process.process_status,
        "process_status_at": _iso(process.process_status_at),
        "output_storage_period": process.output_storage_period,
        "test_run": False,
        "dispatchers": _chosen_dispatchers(process),
        "price": process.price,
        "deletable": "True",
        # Strings, as the SDK's schema has them; it tests their truthiness.
        "has_executions": "True" if executed else "",
        "has_executions_organisation_id": process.organisation_id if executed else "",
        "executions": [status_record(e) for e in executions],
        **_group_counts(executions),
    }


def _group_counts(executions: Sequence[Execution | service.ExecutionStatus]) -> dict[str, Any]:
    """The newest execution's group: how many slices and aggregators it has (1 and 0 for an
    unsplit execution; absent before the first execution)."""
    if not executions:
        return {}
    newest = max(executions, key=lambda e: (e.started_at, e.group_index or 0))
    group = [e for e in executions if newest.group_id and e.group_id == newest.group_id]
    members = group or [newest]
    aggregators = sum(1 for e in members if e.aggregator)
    return {"non_aggregator_count": len(members) - aggregators, "aggregator_count": aggregators}


def status_record(execution: Execution | service.ExecutionStatus) -> dict[str, Any]:
    return {
        "process_execution_id": execution.id,
        **{k: v for k, v in _group_fields(execution).items() if k != "aggregator"},
        "job_status": "running" if execution.ended_at is None else "completed",
        "abort_reason": execution.abort_reason,
        "started_at": _iso(execution.started_at),
        "ended_at": _iso(execution.ended_at),
        "delete_warning_status": "none",
        "delete_expiry": _iso(execution.delete_expiry),
    }


def execution_record(execution: Execution) -> dict[str, Any]:
    svc = service.get_service(execution.service_id)
    return {
        "id": execution.id,
        "created_at": _iso(execution.created_at),
        "updated_at": _iso(execution.updated_at),
        "organisation_id": execution.organisation_id,
        "process_id": execution.process_id,
        "options": [option_record(svc, o.name, execution.options.get(o.name)) for o in svc.options],
        "started_at": _iso(execution.started_at),
        "ended_at": _iso(execution.ended_at),
        "stopped": execution.stopped,
        "abort": execution.abort,
        "abort_reason": execution.abort_reason,
        "success": execution.success,
        "progress": execution.progress,
        "delete_expiry": _iso(execution.delete_expiry),
        "delete_warning_status": "none",
        "deletable": "True",
        "delete_protection": False,
        "price": execution.price,
        # A region larger than the service takes runs as a group (cairn.processing.groups);
        # an unsplit execution has no group.
        **_group_fields(execution),
    }


def _group_fields(execution: Execution | service.ExecutionStatus) -> dict[str, Any]:
    return {
        "group_id": execution.group_id,
        "group_index": execution.group_index,
        "group_count": execution.group_count,
        "aggregator": execution.aggregator,
    }


def component_record(component: Component) -> dict[str, Any]:
    svc = service.get_service(component.service_id)
    return {
        "id": component.id,
        "created_at": _iso(component.created_at),
        "updated_at": _iso(component.updated_at),
        "organisation_id": component.organisation_id,
        "process_execution_id": component.execution_id,
        "process_id": component.process_id,
        "service_id": component.service_id,
        "image_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"cairn:{svc.id}")),
        "chain_index": component.chain_index,
        "name": component.name,
        "started_at": _iso(component.started_at),
        "ended_at": _iso(component.ended_at),
        "runtime": component.runtime,
        "cpu": component.cpu,
        "memory": component.memory,
        "inputs": list(component.inputs),
        "outputs": list(component.outputs),
        "intermediate": False,
        "success": component.success,
    }


def log_record(log: ComponentLog) -> dict[str, Any]:
    return {
        "id": log.id,
        "created_at": _iso(log.created_at),
        "updated_at": _iso(log.created_at),
        "process_service_execution_id": log.component_id,
        "logged_at": _iso(log.logged_at),
        "message": log.message,
    }


# --- the record fields a list filters on in SQL (see processing._listing) -----------------------


def _same(model: Any, *names: str) -> dict[str, Any]:
    return {name: getattr(model, name) for name in names}


DATA_COLUMNS = {
    **_same(DataItem, "id", "created_at", "updated_at", "organisation_id", "name", "file_type"),
    "process_execution_id": DataItem.execution_id,
}
PROCESS_COLUMNS = _same(
    Process,
    "id",
    "created_at",
    "updated_at",
    "organisation_id",
    "ssd_id",
    "service_id",
    "name",
    "run_type",
    "repeat_count",
    "repeat_start",
    "repeat_end",
    "process_status",
    "process_status_at",
    "output_storage_period",
    "price",
)
EXECUTION_COLUMNS = _same(
    Execution,
    "id",
    "created_at",
    "updated_at",
    "organisation_id",
    "process_id",
    "started_at",
    "ended_at",
    "stopped",
    "abort",
    "abort_reason",
    "success",
    "progress",
    "delete_expiry",
    "price",
    "group_id",
    "group_index",
    "group_count",
    "aggregator",
)
LOG_COLUMNS = {
    **_same(ComponentLog, "id", "created_at", "logged_at", "message"),
    "updated_at": ComponentLog.created_at,
    "process_service_execution_id": ComponentLog.component_id,
}
