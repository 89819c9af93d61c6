"""CryptoPro Archive REST API (``/api/document/...``) on top of cairn's signed archive.

Paths, form fields, camelCase names and the ``{data, errorCode, errorDescription}`` envelope
follow CryptoPro Archive, so its integration clients work unchanged; they authenticate with a
source system's ``X-Api-Key`` (or a user's bearer token). Each handler parses the request and
makes one ``cairn.archive.service`` call.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import date, datetime, time
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Body, Depends, Request, Response
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.datastructures import UploadFile

from cairn.accounts import service as accounts
from cairn.api.deps import BlobsDep, SessionDep, SettingsDep, UnitOfWorkDep
from cairn.api.errors import ProblemRoute
from cairn.api.uploads import UPLOAD_MARK
from cairn.archive import service
from cairn.archive.errors import UnusableInput
from cairn.archive.schemas import (
    ContainerDetails,
    Envelope,
    EnvelopeError,
    IdName,
    SearchBody,
    SearchResult,
    StatusRead,
    container_brief,
    container_details,
    statuses,
    storage_read,
)
from cairn.archive.settings import ArchiveSettings
from cairn.archive.statuses import SaveType
from cairn.blobs import BlobStore
from cairn.config import Settings
from cairn.db import UnitOfWork
from cairn.errors import BadRequest, Unauthorized
from cairn.tempfiles import scratch_file

__all__ = ["UPLOAD_OPENAPI", "put_received", "router"]

ENVELOPE_JSON = "application/json"


class CryptoProRoute(ProblemRoute):
    """Errors on these routes are CryptoPro's envelope with a fitting HTTP status."""

    @staticmethod
    def render_problem(body: dict[str, Any], headers: Mapping[str, str] | None) -> Response:
        envelope = {"data": None, "errorCode": body["code"], "errorDescription": body["detail"]}
        return JSONResponse(envelope, status_code=body["status"], headers=headers)


def _error(description: str) -> dict[str, Any]:
    schema = {"$ref": f"#/components/schemas/{EnvelopeError.__name__}"}
    return {
        "model": EnvelopeError,
        "description": description,
        "content": {ENVELOPE_JSON: {"schema": schema}},
    }


ERRORS: dict[int | str, dict[str, Any]] = {
    400: _error("Bad request (missing field, not CMS, base64 signature)"),
    401: _error("Missing or wrong X-Api-Key / bearer token"),
    403: _error("Not allowed"),
    404: _error("Not found, or another organisation's"),
    409: _error("Conflicts with the current state"),
    413: _error("Request body over the limit"),
    422: _error("Invalid input"),
}

router = APIRouter(tags=["cryptopro"], route_class=CryptoProRoute, responses=ERRORS)

_api_key = APIKeyHeader(
    name="X-Api-Key",
    auto_error=False,
    description="A source system's key (cairn admin create-source-system).",
)
_bearer = HTTPBearer(auto_error=False, description="Or a user's token (POST /api/v1/auth/login).")


def get_caller(
    uow: UnitOfWorkDep,
    api_key: Annotated[str | None, Depends(_api_key)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> service.Caller:
    """The source system behind ``X-Api-Key``, or the user behind a bearer token."""
    with uow.transaction() as session:
        if api_key:
            return service.authenticate_api_key(session, api_key)
        if bearer is not None and bearer.credentials:
            return service.caller_for_actor(accounts.authenticate(session, bearer.credentials))
    raise Unauthorized("Not authenticated: send 'X-Api-Key: <key>' or 'Authorization: Bearer'.")


CallerDep = Annotated[service.Caller, Depends(get_caller)]
IdPath = Annotated[UUID, PathParam(description="The container's uuid.")]

# --- the upload form ---------------------------------------------------------------------------

_FIELDS: dict[str, Any] = {
    "Content": {
        "type": "string",
        "format": "binary",
        "description": "The signed file; for an attached signature, the signature itself.",
    },
    "Signs": {
        "type": "array",
        "items": {"type": "string", "format": "binary"},
        "description": "Detached signatures, binary DER (base64 is refused). Leave empty for "
        "an attached signature.",
    },
    "StorageId": {
        "type": "integer",
        "format": "int32",
        "description": "Storage to create the container in (GET /api/user/storages).",
    },
    "SaveType": {
        "type": "string",
        "enum": ["Temporary", "Permanent", "1", "2"],
        "description": "Temporary (needs ArchiveDate) or Permanent.",
    },
    "ContainerName": {"type": "string", "maxLength": 500, "description": "Container name."},
    "StructureName": {"type": "string", "maxLength": 500, "description": "Department name."},
    "ArchiveDate": {
        "type": "string",
        "description": "End of storage: dd.MM.yyyy or ISO 8601; a date alone is midnight in "
        "the server's time zone.",
    },
    "IsNeedArchivatorSign": {"type": "boolean", "description": "Accepted and ignored."},
    "UseArchiveCa": {
        "type": "boolean",
        "description": "true: the archive keeps the document; false: only the signatures and "
        "the document's hashes (you keep the document).",
    },
    "ArchiveCaPluginName": {
        "type": "string",
        "maxLength": 200,
        "description": "Storage plugin for the document (UseArchiveCa); default: cairn's blobs.",
    },
}
UPLOAD_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": _FIELDS,
                    "required": ["Content", "StorageId", "SaveType", "ContainerName"],
                }
            }
        },
    },
    UPLOAD_MARK: True,  # the upload body limit applies, not the small request limit
}
_DDMMYYYY = re.compile(r"^(\d{2})\.(\d{2})\.(\d{4})$")
_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}


def _text(form: Mapping[str, Any], name: str) -> str | None:
    """A text field; present but empty counts as absent (Swagger's "Send empty value")."""
    value = form.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest(f"The form field {name} must be text, not a file.")
    return value.strip() or None


def _flag(form: Mapping[str, Any], name: str) -> bool:
    value = _text(form, name)
    if value is None:
        return False
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise UnusableInput(f"{name} must be true or false, not {value[:40]!r}.")


def _save_type(value: str | None) -> SaveType:
    if value is None:
        raise UnusableInput("SaveType is required: Temporary or Permanent (or 1 / 2).")
    for save_type in SaveType:
        if value.lower() in (save_type.name.lower(), str(int(save_type))):
            return save_type
    raise UnusableInput(f"SaveType must be Temporary or Permanent (or 1 / 2), not {value[:40]!r}.")


def _zone(settings: ArchiveSettings) -> ZoneInfo:
    try:
        return ZoneInfo(settings.archive_time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _archive_date(value: str | None, settings: ArchiveSettings) -> datetime | None:
    """dd.MM.yyyy or ISO 8601; a date without a time is midnight in the configured zone."""
    if value is None:
        return None
    try:
        if match := _DDMMYYYY.match(value):
            day, month, year = (int(g) for g in match.groups())
            return datetime.combine(date(year, month, day), time(), _zone(settings))
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time(), _zone(settings))
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise UnusableInput(
            f"ArchiveDate {value[:40]!r} is not a date: use dd.MM.yyyy or ISO 8601."
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=_zone(settings))


def _storage_id(value: str | None) -> int:
    if value is None:
        raise UnusableInput("StorageId is required (see GET /api/user/storages).")
    try:
        number = int(value)
    except ValueError:
        raise UnusableInput(f"StorageId must be an integer, not {value[:40]!r}.") from None
    if not 1 <= number <= 2**31 - 1:
        raise UnusableInput("StorageId must be a positive 32-bit integer.")
    return number


async def _signatures(form: Any, settings: ArchiveSettings) -> list[bytes]:
    found: list[bytes] = []
    for part in form.getlist("Signs"):
        raw = await part.read() if isinstance(part, UploadFile) else str(part).encode()
        if raw.strip():  # an empty Signs part counts as absent
            if len(raw) > settings.archive_max_signature_bytes:
                raise UnusableInput(
                    f"A signature is over {settings.archive_max_signature_bytes} bytes."
                )
            found.append(raw)
    return found


async def _save_content(part: UploadFile, work_dir: Path) -> Path:
    fd, path = scratch_file(work_dir, "archive-")
    with os.fdopen(fd, "wb") as handle:
        while chunk := await part.read(1024 * 1024):
            handle.write(chunk)
    return path


@asynccontextmanager
async def received_put(
    request: Request, work_dir: Path
) -> AsyncIterator[tuple[service.PutRequest, ArchiveSettings]]:
    """The upload form read into a ``PutRequest`` (the document in a scratch file, removed
    afterwards); shared by this router and cairn's own ``POST /api/v1/archive/containers``."""
    archive = ArchiveSettings()
    form = await request.form(max_files=archive.archive_max_signatures + 2, max_fields=100)
    path: Path | None = None
    try:
        content = form.get("Content")
        if not isinstance(content, UploadFile):
            raise BadRequest("Content is required: the signed file (or the attached signature).")
        put = service.PutRequest(
            name=_text(form, "ContainerName") or "",
            storage_id=_storage_id(_text(form, "StorageId")),
            save_type=_save_type(_text(form, "SaveType")),
            archive_until=_archive_date(_text(form, "ArchiveDate"), archive),
            structure_name=_text(form, "StructureName"),
            use_archive_ca=_flag(form, "UseArchiveCa"),
            plugin_name=_text(form, "ArchiveCaPluginName"),
            declared_type=content.content_type,
            signatures=await _signatures(form, archive),
            document=Path(),
        )
        _flag(form, "IsNeedArchivatorSign")  # accepted (and checked), then ignored
        if not put.name:
            raise BadRequest("ContainerName is required.")
        put.document = path = await _save_content(content, work_dir)
        yield put, archive
    finally:
        await form.close()
        if path is not None:
            path.unlink(missing_ok=True)


async def put_received(
    request: Request,
    uow: UnitOfWork,
    blobs: BlobStore,
    caller: service.Caller,
    settings: Settings,
) -> str:
    """The upload form stored as a container (``service.put_container``); its id. Shared by
    this router and cairn's own ``POST /api/v1/archive/containers``."""
    async with received_put(request, settings.work_dir) as (put, archive):
        container_id: str = await run_in_threadpool(
            service.put_container,
            uow,
            blobs,
            caller,
            put,
            settings=archive,
            data_dir=settings.data_dir,
        )
    return container_id


@router.post(
    "/api/document/content",
    response_model=Envelope[str],
    openapi_extra=UPLOAD_OPENAPI,
    summary="Store a document with its signatures (creates a container)",
)
async def post_content(
    request: Request,
    caller: CallerDep,
    uow: UnitOfWorkDep,
    blobs: BlobsDep,
    settings: SettingsDep,
) -> Envelope[str]:
    """Create a container: the signed file as `Content` and its detached signatures as
    `Signs` (or an attached signature as `Content` and no `Signs`). The answer's `data` is the
    container's uuid. Signatures are verified at once; a failed verification shows as status
    error with the reason in `GET /api/document/{id}`."""
    container_id = await put_received(request, uow, blobs, caller, settings)
    return Envelope[str](data=container_id)


@router.post("/api/document/search", response_model=Envelope[SearchResult])
def search(
    caller: CallerDep,
    session: SessionDep,
    body: Annotated[SearchBody | None, Body()] = None,
) -> Envelope[SearchResult]:
    """Containers you can see, newest first; every filter optional. An empty body returns
    the last 10 added."""
    body = body or SearchBody()
    filters = body.filters
    items, total = service.search_containers(
        session,
        caller,
        service.SearchFilters(
            storage_ids=filters.storageIds if filters else None,
            name=filters.name if filters else None,
            source_system_id=filters.sourceSystemId if filters else None,
            status=filters.status if filters else None,
            is_archived=filters.isArchived if filters else None,
        ),
        page=body.page,
        page_size=body.pageSize,
    )
    result = SearchResult(documents=[container_brief(c) for c in items], totalRecords=total)
    return Envelope[SearchResult](data=result)


@router.get("/api/document/{id}", response_model=Envelope[ContainerDetails])
def get_document(
    id: IdPath, caller: CallerDep, session: SessionDep, blobs: BlobsDep
) -> Envelope[ContainerDetails]:
    """Everything about a container: storage, source system, hashes, signatures (base64),
    dates and status. 404 when it does not exist."""
    view = service.get_container(session, caller, str(id))
    raws = service.signature_bytes(blobs, view)
    return Envelope[ContainerDetails](data=container_details(view, raws))


@router.get("/api/document/{id}/status", response_model=Envelope[int])
def get_status(id: IdPath, caller: CallerDep, session: SessionDep) -> Envelope[int]:
    """The container's status number (names in `GET /api/dictionary/statuses`)."""
    view = service.get_container(session, caller, str(id))
    return Envelope[int](data=view.container.status)


_ZIP: dict[int | str, dict[str, Any]] = {
    200: {"description": "signatures.zip", "content": {"application/zip": {}}}
}


@router.get("/api/document/{id}/sign", responses=_ZIP, response_class=Response)
def get_signatures(id: IdPath, caller: CallerDep, session: SessionDep, blobs: BlobsDep) -> Response:
    """A zip of the container's signatures as `signature-{i}.sig`: CAdES-A once the status is
    archival storage (4), otherwise as uploaded."""
    data = service.signatures_zip(session, blobs, caller, str(id))
    disposition = "attachment; filename=signatures.zip; filename*=UTF-8''signatures.zip"
    return Response(
        data, media_type="application/zip", headers={"Content-Disposition": disposition}
    )


@router.get("/api/user/storages", response_model=Envelope[list[IdName]])
def get_storages(caller: CallerDep, session: SessionDep) -> Envelope[list[IdName]]:
    """The storages you may put containers in, `[{id, name}]`."""
    found = [storage_read(s) for s in service.list_storages(session, caller)]
    return Envelope[list[IdName]](data=found)


@router.get("/api/dictionary/statuses", response_model=Envelope[list[StatusRead]])
def get_statuses(caller: CallerDep) -> Envelope[list[StatusRead]]:
    """Every container status: its number, name and meaning. The numbers never change."""
    return Envelope[list[StatusRead]](data=statuses())


@router.get("/swagger", include_in_schema=False)
def swagger() -> RedirectResponse:
    """CryptoPro Archive's users open /swagger: cairn's Swagger UI is at /docs."""
    return RedirectResponse("/docs", status_code=307)
