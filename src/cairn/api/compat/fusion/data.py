"""Data items and their files: create, add a file (a signed upload URL), list, copy, download."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Query
from sqlalchemy.orm import Session

from cairn.accounts.service import Actor, Privilege
from cairn.api.compat.fusion._common import (
    ORG,
    PREFIX,
    JsonBody,
    ListDep,
    RuntimeDep,
    _fields,
    _model,
    _nested,
    one,
    router,
)
from cairn.api.compat.fusion.records import (
    DATA_COLUMNS,
    data_record,
    file_record,
)
from cairn.api.deps import ActorDep, SessionDep, SettingsDep
from cairn.errors import Conflict, Invalid, NotFound
from cairn.processing import service
from cairn.processing.models import DataItem

# --- data items --------------------------------------------------------------------------------


def _data_model(
    session: Session, actor: Actor, organisation_id: str, item: DataItem
) -> dict[str, Any]:
    return data_record(item, service.list_files(session, actor, organisation_id, item.id))


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
    return _model(data_record(item, []))


@router.get(ORG + "/data/uploaded")
def list_uploaded(
    organisation_id: str, actor: ActorDep, session: SessionDep, query: ListDep
) -> dict[str, Any]:
    """Your organisation's uploaded data items (filter by `id`, `name`, or `search`)."""
    items = service.data_query(actor, organisation_id)
    return query.select(
        session, items, DATA_COLUMNS, lambda i: _data_model(session, actor, organisation_id, i)
    )


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
    url = f"{settings.base_url}{PREFIX}/transfers/{file.id}/upload?{signed.query()}"
    item = service.get_data(session, actor, organisation_id, data_id)
    return _model(_data_model(session, actor, organisation_id, item), file=file.id, url=url)


@router.get(ORG + "/data/{data_id}/files")
def list_files(
    organisation_id: str, data_id: str, actor: ActorDep, session: SessionDep, query: ListDep
) -> dict[str, Any]:
    """The item's files; `size` and `publishable` (or `error`) appear once analysed."""
    files = service.list_files(session, actor, organisation_id, data_id)
    return query.page(files, file_record, search_fields=("file_name",))


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
    """`extras.url`: a signed URL, valid for an hour and once, serving the file by plain GET;
    with `preview=True` its PNG preview (rasters and vectors; 404 for a file without one)."""
    file = service.get_file(session, actor, organisation_id, data_id, file_id)
    if file.sha256 is None:
        raise Conflict("The file has not been uploaded.")
    blob = file.sha256
    if (preview or "").strip().lower() in ("true", "1"):
        blob = service.preview_of(file) or ""
        if not blob:
            raise NotFound(f"There is no preview of '{file.file_name}' ({file.file_type}).")
    signed = runtime.sign("download", file.id, blob)
    url = f"{settings.base_url}{PREFIX}/transfers/{file.id}/download?{signed.query()}"
    return one(file_record, file, url=url)
