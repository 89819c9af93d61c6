"""The Fusion Platform API (``/fusion``) on top of cairn's processing area.

Paths, envelopes and field names follow what the published ``fusion-platform-python-sdk``
needs (docs/processing.md), so that SDK works against cairn unchanged with
``api_url="http://HOST:PORT/fusion"``. Single objects travel as ``{"model", "extras"}``, lists
as ``{"list", "last", "extras"}``, errors as ``{"error_message"}``; every 2xx answer is JSON.
Each handler calls ``cairn.processing.service`` (or the runtime, for work on the engine) and
only translates.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import anyio
import anyio.to_thread
from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.requests import ClientDisconnect

from cairn.accounts import service as accounts
from cairn.accounts.models import Membership, Organisation, User
from cairn.accounts.service import Actor, Privilege
from cairn.api.deps import ActorDep, BlobsDep, SessionDep, SettingsDep
from cairn.api.downloads import blob_response
from cairn.api.errors import ProblemRoute, problem_responses
from cairn.api.uploads import UPLOAD_MARK
from cairn.db import UnitOfWork
from cairn.errors import BadRequest, Conflict, Forbidden, Invalid, NotFound, Unauthorized
from cairn.processing import service
from cairn.processing._listing import find, parse_filters
from cairn.processing._runtime import Runtime
from cairn.processing._ssd import Service
from cairn.processing.models import Component, ComponentLog, DataFile, DataItem, Execution, Process
from cairn.tempfiles import scratch_file

__all__ = ["router"]

NIL = "00000000-0000-0000-0000-000000000000"


class FusionError(BaseModel):
    """An error, as the Fusion Platform answers it."""

    error_message: str


class FusionRoute(ProblemRoute):
    """Errors on these routes are ``{"error_message": ...}``, as the Fusion SDK reads them."""

    @staticmethod
    def render_problem(body: dict[str, Any], headers: Mapping[str, str] | None) -> Response:
        return JSONResponse(
            {"error_message": body["detail"]}, status_code=body["status"], headers=headers
        )


_ERRORS = problem_responses(FusionError)
for _answer in _ERRORS.values():
    _answer["content"] = {"application/json": _answer["content"].popitem()[1]}
_ERRORS[402] = {**_ERRORS[403], "description": "Not enough credits"}

router = APIRouter(prefix="/fusion", tags=["fusion"], route_class=FusionRoute, responses=_ERRORS)

ORG = "/organisations/{organisation_id}"
JsonBody = Annotated[dict[str, Any] | None, Body()]


def get_runtime(request: Request) -> Runtime:
    return Runtime.for_app(request.app.state)


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


# --- envelopes and bodies ----------------------------------------------------------------------


def _model(model: dict[str, Any] | None, **extras: Any) -> dict[str, Any]:
    return {"model": model, "extras": extras}


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _fields(body: Mapping[str, Any] | None, model: str) -> dict[str, Any]:
    """The ``Model[field]`` keys of a create/update body, as {field: value}."""
    prefix = f"{model}["
    found = {}
    for key, value in (body or {}).items():
        if isinstance(key, str) and key.startswith(prefix) and key.endswith("]"):
            found[key[len(prefix) : -1]] = value
    return found


def _nested(body: Mapping[str, Any] | None, model: str) -> dict[str, Any]:
    """The ``{"Model": {...}}`` object of an action body."""
    inner = (body or {}).get(model)
    if not isinstance(inner, dict):
        raise BadRequest(f"The body needs a '{model}' object.")
    return inner


class ListQuery:
    """``limit``, ``reverse``, ``search``, ``filter[...]`` and ``last[...]`` of a list call."""

    def __init__(
        self,
        request: Request,
        limit: Annotated[int, Query(ge=1, le=1000, description="Items per page.")] = 24,
        reverse: Annotated[str, Query(max_length=5, description="'True' for newest first.")] = (
            "False"
        ),
        search: Annotated[
            str | None, Query(max_length=200, description="Case-insensitive text to find.")
        ] = None,
    ) -> None:
        self.limit = limit
        self.reverse = reverse.strip().lower() in ("true", "1")
        self.search = search
        query = dict(request.query_params)
        self.filters = parse_filters(query)
        self.last = {
            k[5:-1]: v for k, v in query.items() if k.startswith("last[") and k.endswith("]")
        }

    def page(
        self, records: Sequence[dict[str, Any]], *, search_fields: Sequence[str] = ("name",)
    ) -> dict[str, Any]:
        found = find(
            records,
            filters=self.filters,
            search=self.search,
            search_fields=search_fields,
            limit=self.limit,
            reverse=self.reverse,
            last=self.last,
        )
        return {"list": found.items, "last": found.last, "extras": {}}


ListDep = Annotated[ListQuery, Depends()]


# --- resource shapes ---------------------------------------------------------------------------


def _user(session: Session, user: User) -> dict[str, Any]:
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


def _organisation(session: Session, organisation: Organisation) -> dict[str, Any]:
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


def _file(file: DataFile) -> dict[str, Any]:
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


def _data(item: DataItem, files: Sequence[DataFile]) -> dict[str, Any]:
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


def _option_shape(service_def: Service, name: str, value: Any) -> dict[str, Any]:
    spec = service_def.option(name)
    assert spec is not None
    shown: dict[str, Any] = {
        "ssd_id": service_def.ssd_id,
        "name": spec.name,
        "value": value,
        "required": spec.required,
        "data_type": spec.data_type,
        "validation": spec.validation,
        "advanced": spec.advanced,
        "title": spec.title or spec.name,
        "description": spec.description,
    }
    if spec.data_type == "constrained":
        rules = spec.constraints()
        shown["constrained_values"] = rules.get("values", "").split(",")
        shown["constrained_names"] = rules.get("names", rules.get("values", "")).split(",")
    return shown


def _service(svc: Service) -> dict[str, Any]:
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


def _process(
    session: Session, process: Process, executions: Sequence[Execution] = ()
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
        "options": [_option_shape(svc, o.name, process.options.get(o.name)) for o in svc.options],
        "run_type": process.run_type,
        "repeat_count": process.repeat_count,
        "repeat_start": _iso(process.repeat_start),
        "repeat_end": _iso(process.repeat_end),
        "process_status": process.process_status,
        "process_status_at": _iso(process.process_status_at),
        "output_storage_period": process.output_storage_period,
        "test_run": False,
        "dispatchers": [],
        "price": process.price,
        "deletable": "True",
        # Strings, as the SDK's schema has them; it tests their truthiness.
        "has_executions": "True" if executed else "",
        "has_executions_organisation_id": process.organisation_id if executed else "",
        "executions": [_status(e) for e in executions],
    }


def _status(execution: Execution) -> dict[str, Any]:
    return {
        "process_execution_id": execution.id,
        "job_status": "running" if execution.ended_at is None else "completed",
        "abort_reason": execution.abort_reason,
        "started_at": _iso(execution.started_at),
        "ended_at": _iso(execution.ended_at),
        "delete_warning_status": "none",
        "delete_expiry": _iso(execution.delete_expiry),
    }


def _execution(execution: Execution) -> dict[str, Any]:
    svc = service.get_service(execution.service_id)
    return {
        "id": execution.id,
        "created_at": _iso(execution.created_at),
        "updated_at": _iso(execution.updated_at),
        "organisation_id": execution.organisation_id,
        "process_id": execution.process_id,
        "options": [_option_shape(svc, o.name, execution.options.get(o.name)) for o in svc.options],
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
    }


def _component(component: Component) -> dict[str, Any]:
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


def _log(log: ComponentLog) -> dict[str, Any]:
    return {
        "id": log.id,
        "created_at": _iso(log.created_at),
        "updated_at": _iso(log.created_at),
        "process_service_execution_id": log.component_id,
        "logged_at": _iso(log.logged_at),
        "message": log.message,
    }


# --- users, organisations, credits -------------------------------------------------------------


@router.post("/users/login")
def login(
    session: SessionDep, settings: SettingsDep, runtime: RuntimeDep, body: JsonBody = None
) -> dict[str, Any]:
    """Log in with `{"User": {"email" | "user_id", "password"}}`. Answers `id_token` (a JWT
    whose `sub` is the user id) and `access_token` (a cairn bearer token for every API)."""
    user = (body or {}).get("User")
    if not isinstance(user, dict) or not isinstance(user.get("password"), str):
        raise Unauthorized(accounts.BAD_CREDENTIALS)
    email, user_id = user.get("email"), user.get("user_id")
    secret, _, found = accounts.login(
        session,
        password=user["password"],
        email=email if isinstance(email, str) else None,
        user_id=user_id if isinstance(user_id, str) else None,
        lifetime=settings.token_lifetime,
    )
    id_token = runtime.signer.id_token(
        {"sub": found.id, "email": found.email}, settings.token_lifetime
    )
    return {"id_token": id_token, "access_token": secret, "refresh_token": None}


def _me(actor: Actor, user_id: str) -> None:
    if user_id != actor.id:
        raise NotFound("User not found.")


@router.get("/users/{user_id}")
def get_user(user_id: str, actor: ActorDep, session: SessionDep) -> dict[str, Any]:
    """Yourself, with the organisations you belong to."""
    _me(actor, user_id)
    return _model(_user(session, actor.user))


_USER_FIELDS = {"given_name": "given_name", "family_name": "family_name", "telephone": "phone"}


@router.patch("/users/{user_id}")
def update_user(
    user_id: str, actor: ActorDep, session: SessionDep, body: JsonBody = None
) -> dict[str, Any]:
    """Change your name or telephone; other fields are read-only here."""
    _me(actor, user_id)
    given = _fields(body, "User")
    current = _user(session, actor.user)
    changes = {
        ours: given[theirs]
        for theirs, ours in _USER_FIELDS.items()
        if theirs in given and given[theirs] != current.get(theirs)
    }
    for value in changes.values():
        if value is not None and not isinstance(value, str):
            raise Invalid("User names and telephone are text.")
    user = accounts.update_user(session, actor.user, **changes) if changes else actor.user
    return _model(_user(session, user))


@router.post("/users/{user_id}/change_password")
def change_password(
    user_id: str, actor: ActorDep, session: SessionDep, body: JsonBody = None
) -> dict[str, Any]:
    """Change your password: `{"User": {"old_password", "new_password"}}`."""
    _me(actor, user_id)
    given = _nested(body, "User")
    old, new = given.get("old_password"), given.get("new_password")
    if not isinstance(old, str) or not isinstance(new, str):
        raise Invalid("Give old_password and new_password.")
    accounts.change_password(session, actor.user, old=old, new=new)
    return _model(_user(session, actor.user))


@router.get(ORG)
def get_organisation(organisation_id: str, actor: ActorDep, session: SessionDep) -> dict[str, Any]:
    """An organisation you belong to, with its members and their privileges."""
    organisation = accounts.get_organisation(session, actor, organisation_id)
    return _model(_organisation(session, organisation))


@router.patch(ORG)
def update_organisation(
    organisation_id: str, actor: ActorDep, session: SessionDep, body: JsonBody = None
) -> dict[str, Any]:
    """Rename the organisation (needs `manage`)."""
    given = _fields(body, "Organisation")
    organisation = accounts.get_organisation(session, actor, organisation_id)
    if "name" in given and given["name"] != organisation.name:
        if not isinstance(given["name"], str):
            raise Invalid("An organisation name is text.")
        organisation = accounts.update_organisation(
            session, actor, organisation_id, name=given["name"]
        )
    else:
        actor.require(organisation_id, Privilege.manage)
    return _model(_organisation(session, organisation))


@router.get(ORG + "/credits/{credit_id}")
def get_credits(
    organisation_id: str, credit_id: str, actor: ActorDep, session: SessionDep
) -> dict[str, Any]:
    """The organisation's credits (the credit id is the organisation id)."""
    organisation = accounts.get_organisation(session, actor, organisation_id)
    if credit_id != organisation_id:
        raise NotFound("Credit not found.")
    balance = accounts.credit_balance(session, organisation_id)
    return _model(
        {
            "id": organisation.id,
            "created_at": _iso(organisation.created_at),
            "updated_at": _iso(organisation.updated_at),
            "organisation_id": organisation.id,
            "any_credits": balance,
            "cloud_storage_credits": 0,
            "registry_storage_credits": 0,
            "runtime_any_credits": 0,
        }
    )


# --- data items --------------------------------------------------------------------------------


def _data_model(
    session: Session, actor: Actor, organisation_id: str, item: DataItem
) -> dict[str, Any]:
    return _data(item, service.list_files(session, actor, organisation_id, item.id))


@router.get(ORG + "/data/new")
def new_data(organisation_id: str, actor: ActorDep) -> dict[str, Any]:
    """A template for a new data item (nothing is stored)."""
    actor.require(organisation_id, Privilege.view)
    return _model({"organisation_id": organisation_id, "name": None})


@router.post(ORG + "/data")
def create_data(
    organisation_id: str, actor: ActorDep, session: SessionDep, body: JsonBody = None
) -> dict[str, Any]:
    """Create an empty data item from `{"Data[name]": ...}`; add its files with `add_file`."""
    given = _fields(body, "Data")
    data_id = given.get("id")
    if data_id is not None:
        try:
            data_id = str(uuid.UUID(str(data_id)))
        except ValueError:
            raise Invalid("A data item id is a UUID.") from None
    item = service.create_data(
        session, actor, organisation_id, name=given.get("name"), data_id=data_id
    )
    return _model(_data(item, []))


@router.get(ORG + "/data/uploaded")
def list_uploaded(
    organisation_id: str, actor: ActorDep, session: SessionDep, query: ListDep
) -> dict[str, Any]:
    """Your organisation's uploaded data items (filter by `id`, `name`, or `search`)."""
    items = service.list_data(session, actor, organisation_id)
    return query.page([_data_model(session, actor, organisation_id, i) for i in items])


@router.post(ORG + "/data/{data_id}/add_file")
def add_file(
    organisation_id: str,
    data_id: str,
    actor: ActorDep,
    session: SessionDep,
    settings: SettingsDep,
    runtime: RuntimeDep,
    body: JsonBody = None,
) -> dict[str, Any]:
    """Add a file `{"Data": {"name", "file_type"}}`. `extras.url` is a signed URL valid for an
    hour and once, taking the raw bytes by `PUT` with no authorisation header."""
    actor.require(organisation_id)  # a stranger learns nothing, not even about the body
    given = _nested(body, "Data")
    file = service.add_file(
        session,
        actor,
        organisation_id,
        data_id,
        file_name=given.get("name"),
        file_type=given.get("file_type"),
    )
    signed = runtime.sign("upload", file.id)
    url = f"{settings.base_url}{router.prefix}/transfers/{file.id}/upload?{signed.query()}"
    item = service.get_data(session, actor, organisation_id, data_id)
    return _model(_data_model(session, actor, organisation_id, item), file=file.id, url=url)


@router.get(ORG + "/data/{data_id}/files")
def list_files(
    organisation_id: str, data_id: str, actor: ActorDep, session: SessionDep, query: ListDep
) -> dict[str, Any]:
    """The item's files; `size` and `publishable` (or `error`) appear once analysed."""
    files = service.list_files(session, actor, organisation_id, data_id)
    return query.page([_file(f) for f in files], search_fields=("file_name",))


@router.get(ORG + "/data/{data_id}")
def get_data(
    organisation_id: str, data_id: str, actor: ActorDep, session: SessionDep
) -> dict[str, Any]:
    """One data item (uploaded, or a component's output)."""
    item = service.get_data(session, actor, organisation_id, data_id)
    return _model(_data_model(session, actor, organisation_id, item))


@router.patch(ORG + "/data/{data_id}")
def update_data(
    organisation_id: str, data_id: str, actor: ActorDep, session: SessionDep, body: JsonBody = None
) -> dict[str, Any]:
    """Rename a data item (`{"Data[name]": ...}`)."""
    given = _fields(body, "Data")
    item = service.get_data(session, actor, organisation_id, data_id)
    if "name" in given and given["name"] != item.name:
        item = service.update_data(session, actor, organisation_id, data_id, name=given["name"])
    else:
        actor.require(organisation_id, Privilege.execute)
    return _model(_data_model(session, actor, organisation_id, item))


@router.delete(ORG + "/data/{data_id}")
def delete_data(
    organisation_id: str, data_id: str, actor: ActorDep, session: SessionDep
) -> dict[str, Any]:
    """Delete a data item and its files; refused (409) while a process uses it."""
    service.delete_data(session, actor, organisation_id, data_id)
    return {}


@router.post(ORG + "/data/{data_id}/copy")
def copy_data(
    organisation_id: str, data_id: str, actor: ActorDep, session: SessionDep, body: JsonBody = None
) -> dict[str, Any]:
    """Copy a data item under a new name (`{"Data": {"name"}}`); an output's copy outlives
    its execution."""
    actor.require(organisation_id)  # a stranger learns nothing, not even about the body
    given = _nested(body, "Data")
    item = service.copy_data(session, actor, organisation_id, data_id, name=given.get("name"))
    return _model(_data_model(session, actor, organisation_id, item))


@router.get(ORG + "/data/{data_id}/download_file/{file_id}")
def download_file(
    organisation_id: str,
    data_id: str,
    file_id: str,
    actor: ActorDep,
    session: SessionDep,
    settings: SettingsDep,
    runtime: RuntimeDep,
    preview: Annotated[str | None, Query(max_length=5)] = None,
) -> dict[str, Any]:
    """`extras.url`: a signed URL, valid for an hour and once, serving the file by plain GET."""
    file = service.get_file(session, actor, organisation_id, data_id, file_id)
    if file.sha256 is None:
        raise Conflict("The file has not been uploaded.")
    signed = runtime.sign("download", file.id, file.sha256)
    url = f"{settings.base_url}{router.prefix}/transfers/{file.id}/download?{signed.query()}"
    return _model(_file(file), url=url)


# --- signed transfers --------------------------------------------------------------------------


class _Signed:
    """The signature of a transfer URL; without one, the caller's bearer token is needed."""

    def __init__(
        self,
        expires: Annotated[int | None, Query(ge=0, le=2**62)] = None,
        nonce: Annotated[str | None, Query(max_length=64)] = None,
        signature: Annotated[str | None, Query(max_length=128)] = None,
        blob: Annotated[str | None, Query(max_length=64)] = None,
    ) -> None:
        given = [expires is not None, nonce is not None, signature is not None]
        self.signed: dict[str, Any] | None = (
            {"expires": expires, "nonce": nonce, "signature": signature} if all(given) else None
        )
        if self.signed is not None and blob is not None:
            self.signed["blob"] = blob
        if any(given) and not all(given):
            raise Forbidden("This signed URL is not valid.")


def _transfer_actor(request: Request, signed: _Signed) -> Actor | None:
    if signed.signed is not None:
        return None
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("This URL needs its signature, or send 'Authorization: Bearer'.")
    with UnitOfWork(request.app.state.sessionmaker).transaction() as session:
        return accounts.authenticate(session, token.strip())


@router.put("/transfers/{file_id}/upload", openapi_extra={UPLOAD_MARK: True})
async def upload(
    file_id: str,
    request: Request,
    settings: SettingsDep,
    runtime: RuntimeDep,
    signed: Annotated[_Signed, Depends()],
) -> dict[str, Any]:
    """Receive a file's raw bytes (the URL `add_file` answered). A URL works once; a body cut
    off half-way leaves the file incomplete."""
    actor = await anyio.to_thread.run_sync(_transfer_actor, request, signed)
    await anyio.to_thread.run_sync(
        lambda: runtime.begin_upload(file_id, signed=signed.signed, actor=actor)
    )
    path: Path | None = None
    try:
        fd, path = scratch_file(settings.work_dir, prefix="fusion-")
        with os.fdopen(fd, "wb") as out:
            async for chunk in request.stream():
                await anyio.to_thread.run_sync(out.write, chunk)
        await anyio.to_thread.run_sync(runtime.finish_upload, file_id, path)
    except ClientDisconnect:
        reason = "The upload was cut off before it completed."
        await anyio.to_thread.run_sync(runtime.abort_upload, file_id, reason)
        raise BadRequest(reason) from None
    except BaseException:
        reason = "The upload failed before it completed."
        await anyio.to_thread.run_sync(runtime.abort_upload, file_id, reason)
        raise
    finally:
        if path is not None:
            path.unlink(missing_ok=True)
    return {}


@router.get("/transfers/{file_id}/download")
@router.head("/transfers/{file_id}/download", include_in_schema=False)
def download(
    file_id: str,
    request: Request,
    blobs: BlobsDep,
    runtime: RuntimeDep,
    signed: Annotated[_Signed, Depends()],
) -> Response:
    """A file's bytes, by the signed URL `download_file` answered (once, within the hour)."""
    actor = _transfer_actor(request, signed)
    file = runtime.check_download(file_id, signed=signed.signed, actor=actor)
    return blob_response(
        request,
        blobs,
        sha256=file.sha256,
        size=file.size,
        etag=file.sha256,
        modified=file.modified,
        filename=file.file_name,
    )


# --- services ----------------------------------------------------------------------------------


@router.get(ORG + "/services/latest")
def list_latest_services(organisation_id: str, actor: ActorDep, query: ListDep) -> dict[str, Any]:
    """The newest version of every service (filter by `name`, `keywords`, `ssd_id`, `id`)."""
    services = service.list_services(actor, organisation_id)
    return query.page([_service(s) for s in services], search_fields=("name", "keywords"))


@router.get(ORG + "/services")
def list_all_services(organisation_id: str, actor: ActorDep, query: ListDep) -> dict[str, Any]:
    """Every version of every service."""
    services = service.list_services(actor, organisation_id, latest=False)
    return query.page([_service(s) for s in services], search_fields=("name", "keywords"))


@router.get(ORG + "/services/dispatchers")
def list_dispatchers(organisation_id: str, actor: ActorDep, query: ListDep) -> dict[str, Any]:
    """Dispatcher services (none yet: dispatchers come in part 2)."""
    actor.require(organisation_id, Privilege.view)
    return query.page([])


@router.get(ORG + "/services/{service_id}")
def get_service(organisation_id: str, service_id: str, actor: ActorDep) -> dict[str, Any]:
    """One service version."""
    return _model(_service(service.show_service(actor, organisation_id, service_id)))


# --- processes ---------------------------------------------------------------------------------


def _changes(given: Mapping[str, Any]) -> service.ProcessChanges:
    """A create/update body's process fields; ``repeat_gap``/``repeat_offset`` are ignored
    (the SDK sends them back as Python text)."""
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
        name=given.get("name"),
        options=options,
        inputs=inputs,
        run_type=given.get("run_type"),
        output_storage_period=given.get("output_storage_period"),
        repeat_count=given.get("repeat_count"),
    )


def _process_model(session: Session, actor: Actor, process: Process) -> dict[str, Any]:
    executions = service.list_executions(session, actor, process.organisation_id, process.id)
    return _model(_process(session, process, executions), dispatchers=[])


@router.get(ORG + "/processes/new")
def new_process(
    organisation_id: str,
    actor: ActorDep,
    session: SessionDep,
    service_id: Annotated[str, Query(max_length=64)],
) -> dict[str, Any]:
    """A template process for a service (nothing is stored): its options and inputs."""
    template = service.new_process(actor, organisation_id, service_id)
    return _model(_process(session, template), dispatchers=[])


@router.get(ORG + "/processes")
def list_processes(
    organisation_id: str, actor: ActorDep, session: SessionDep, query: ListDep
) -> dict[str, Any]:
    """Your organisation's processes."""
    processes = service.list_processes(session, actor, organisation_id)
    records = [
        _process(session, p, service.list_executions(session, actor, organisation_id, p.id))
        for p in processes
    ]
    return query.page(records)


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
    template = service.copy_process(session, actor, organisation_id, process_id)
    return _model(_process(session, template), dispatchers=[])


@router.post(ORG + "/processes/{process_id}/execute")
def execute_process(
    organisation_id: str, process_id: str, actor: ActorDep, runtime: RuntimeDep, session: SessionDep
) -> dict[str, Any]:
    """Execute the process now: the price is charged (402 if the credits do not cover it)."""
    runtime.execute(actor, organisation_id, process_id)
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
    organisation_id: str, process_id: str, actor: ActorDep, session: SessionDep, query: ListDep
) -> dict[str, Any]:
    """The process's executions (`reverse=True`: newest first)."""
    executions = service.list_executions(session, actor, organisation_id, process_id)
    return query.page([_execution(e) for e in executions])


# --- executions and components ------------------------------------------------------------------


@router.get(ORG + "/process_executions/{process_execution_id}")
def get_execution(
    organisation_id: str, process_execution_id: str, actor: ActorDep, session: SessionDep
) -> dict[str, Any]:
    """An execution: progress 0-100, success, abort reason, times, delete expiry."""
    return _model(
        _execution(service.get_execution(session, actor, organisation_id, process_execution_id))
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
    return _model(_execution(execution))


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
    return _model(_execution(execution))


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
    found = query.page([_component(c) for c in components])
    return found


@router.get(ORG + "/process_service_executions/{process_service_execution_id}")
def get_component(
    organisation_id: str, process_service_execution_id: str, actor: ActorDep, session: SessionDep
) -> dict[str, Any]:
    """One component: times, CPU and memory figures, inputs and outputs (data ids)."""
    component = service.get_component(session, actor, organisation_id, process_service_execution_id)
    return _model(_component(component))


@router.get(ORG + "/process_service_executions/{process_service_execution_id}/logs")
def list_component_logs(
    organisation_id: str,
    process_service_execution_id: str,
    actor: ActorDep,
    session: SessionDep,
    query: ListDep,
) -> dict[str, Any]:
    """The component's log lines (`logged_at`, `message`)."""
    logs = service.list_component_logs(
        session, actor, organisation_id, process_service_execution_id
    )
    return query.page([_log(entry) for entry in logs], search_fields=("message",))
