"""The signed archive, cairn's own API: put, list and read containers, their signatures,
validation reports and event history, storages, statuses, and the RFC 3161 endpoint of cairn's
own TSA. The CryptoPro Archive contract (api/compat/cryptopro.py) calls the same
``cairn.archive.service`` functions."""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID

from fastapi import APIRouter, FastAPI, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from cairn.api.compat.cryptopro import UPLOAD_OPENAPI, put_received
from cairn.api.deps import ActorDep, BlobsDep, SessionDep, SettingsDep, UnitOfWorkDep
from cairn.api.downloads import content_disposition
from cairn.api.paging import Page, PageDep, page_of
from cairn.archive import export, retention, seal, service
from cairn.archive import log as transparency
from cairn.archive._worker import EnhanceContext, Worker
from cairn.archive.plugins import load_plugins
from cairn.archive.schemas import (
    ContainerRead,
    EventRead,
    IdName,
    ProofRead,
    ReportRead,
    SealCreate,
    StatusRead,
    TreeHeadRead,
    container_read,
    event_read,
    proof_read,
    report_read,
    statuses,
    storage_read,
)
from cairn.archive.settings import ArchiveSettings
from cairn.db import UnitOfWork

if TYPE_CHECKING:
    from cairn.archive.tsa import Tsa


@asynccontextmanager
async def _background_worker(app: FastAPI) -> AsyncIterator[None]:
    """The enhancement worker runs inside `cairn serve` (which sets
    ``app.state.background_workers``), not in every app a test or a tool builds."""
    worker = None
    archive = ArchiveSettings()
    load_plugins(archive.archive_plugins)  # a bad plugin-config.json stops start-up here
    if getattr(app.state, "background_workers", False) and archive.archive_worker:
        context = EnhanceContext(app.state.blobs, archive, app.state.settings.data_dir)
        worker = Worker(UnitOfWork(app.state.sessionmaker), context)
        worker.start()
    try:
        yield
    finally:
        if worker is not None:
            worker.stop()


router = APIRouter(prefix="/api/v1", tags=["archive"], lifespan=_background_worker)


def _open_tsa(data_dir: pathlib.Path) -> Tsa:
    """cairn's own TSA, its module imported on first use: it pulls in pyHanko, which an
    idle server should not carry (issue #13, RSS goal)."""
    from cairn.archive.tsa import open_tsa

    return open_tsa(data_dir)


ContainerIdPath = Annotated[UUID, Path(description="The container's uuid.")]
_TSR: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "An RFC 3161 TimeStampResp (DER); a bad query is a rejection inside it.",
        "content": {"application/timestamp-reply": {}},
    }
}


@router.post(
    "/archive/containers",
    status_code=201,
    response_model=ContainerRead,
    openapi_extra=UPLOAD_OPENAPI,
)
async def put_container(
    request: Request, actor: ActorDep, uow: UnitOfWorkDep, blobs: BlobsDep, settings: SettingsDep
) -> ContainerRead:
    """Archive a document with its signatures: the same form as CryptoPro Archive's
    `POST /api/document/content`. Signatures are verified at once; the answer shows the
    verdicts (status 2 verified, or 7 error with the reason)."""
    caller = service.caller_for_actor(actor)
    container_id = await put_received(request, uow, blobs, caller, settings)
    with uow.transaction() as session:
        return container_read(service.get_container(session, caller, container_id))


@router.post("/archive/seals", status_code=201, response_model=ContainerRead)
async def seal_workspace(
    body: SealCreate, actor: ActorDep, uow: UnitOfWorkDep, blobs: BlobsDep, settings: SettingsDep
) -> ContainerRead:
    """Seal a workspace (its content package) or a published run (the package uploaded for
    it): archived as a new container signed by cairn's seal key, recorded in the provenance
    store. Each call makes a new container. A run that was never published is refused (422)."""
    sealing = (
        partial(seal.seal_workspace, uow, blobs, actor, body.workspace_id)
        if body.workspace_id is not None
        else partial(seal.seal_run, uow, blobs, actor, body.published_run_id or "")
    )
    container_id = await run_in_threadpool(
        sealing,
        storage_id=body.storage_id,
        settings=ArchiveSettings(),
        data_dir=settings.data_dir,
        work_dir=settings.work_dir,
    )
    with uow.transaction() as session:
        caller = service.caller_for_actor(actor)
        return container_read(service.get_container(session, caller, container_id))


@router.get("/archive/containers", response_model=Page[ContainerRead])
def list_containers(
    actor: ActorDep,
    session: SessionDep,
    paging: PageDep,
    name: Annotated[str | None, Query(max_length=500, description="Name substring.")] = None,
    status: Annotated[int | None, Query(ge=0, le=100, description="Status number.")] = None,
    storage_id: Annotated[
        int | None, Query(ge=1, le=2**31 - 1, description="Only this storage's.")
    ] = None,
) -> Page[ContainerRead]:
    """Containers of your organisations, newest first."""
    caller = service.caller_for_actor(actor)
    filters = service.SearchFilters(
        name=name, status=status, storage_ids=[storage_id] if storage_id else None
    )
    items, total = service.search_containers(
        session, caller, filters, page=paging.page, page_size=paging.page_size
    )
    views = [service.get_container(session, caller, c.id) for c in items]
    return page_of(views, total, paging, container_read)


@router.get("/archive/containers/{container_id}", response_model=ContainerRead)
def get_container(
    container_id: ContainerIdPath, actor: ActorDep, session: SessionDep
) -> ContainerRead:
    """One container with its signatures' levels, verdicts and stamp dates."""
    caller = service.caller_for_actor(actor)
    return container_read(service.get_container(session, caller, str(container_id)))


@router.delete("/archive/containers/{container_id}", status_code=204, response_class=Response)
def delete_container(
    container_id: ContainerIdPath, actor: ActorDep, uow: UnitOfWorkDep
) -> Response:
    """Delete a container: status 8, the document removed (from a storage plugin too), a
    tombstone kept with its signatures, reports and history. Needs the execute privilege."""
    caller = service.caller_for_actor(actor)
    plugins = load_plugins(ArchiveSettings().archive_plugins)
    retention.delete_container(uow, plugins, caller, str(container_id))
    return Response(status_code=204)


@router.get(
    "/archive/containers/{container_id}/signatures",
    response_class=Response,
    responses={200: {"description": "signatures.zip", "content": {"application/zip": {}}}},
)
def get_signatures(
    container_id: ContainerIdPath, actor: ActorDep, session: SessionDep, blobs: BlobsDep
) -> Response:
    """The signatures as a zip of `signature-{i}.sig` (CAdES-A once archived)."""
    caller = service.caller_for_actor(actor)
    data = service.signatures_zip(session, blobs, caller, str(container_id))
    return Response(
        data,
        media_type="application/zip",
        headers={"Content-Disposition": content_disposition("signatures.zip")},
    )


@router.get(
    "/archive/containers/{container_id}/export",
    response_class=Response,
    responses={200: {"description": "A BagIt bag (zip)", "content": {"application/zip": {}}}},
)
def export_container(
    container_id: ContainerIdPath,
    actor: ActorDep,
    session: SessionDep,
    blobs: BlobsDep,
    settings: SettingsDep,
) -> Response:
    """The container as a BagIt bag in a zip: document, signatures, validation reports, event
    history, the log's signed tree head with an inclusion proof per event, with SHA-256 and
    SHA-512 manifests. `cairn archive verify` checks it offline."""
    caller = service.caller_for_actor(actor)
    archive = ArchiveSettings()
    plugins = load_plugins(archive.archive_plugins)
    data = export.export_container(
        session,
        blobs,
        plugins,
        caller,
        str(container_id),
        tsa=_open_tsa(settings.data_dir),
        tsa_url=archive.tsa_url,
    )
    return Response(
        data,
        media_type="application/zip",
        headers={"Content-Disposition": content_disposition(f"container-{container_id}.zip")},
    )


@router.get("/archive/storages", response_model=list[IdName])
def list_storages(actor: ActorDep, session: SessionDep) -> list[IdName]:
    """The storages of your organisations."""
    caller = service.caller_for_actor(actor)
    return [storage_read(s) for s in service.list_storages(session, caller)]


@router.get("/archive/statuses", response_model=list[StatusRead])
def list_statuses(actor: ActorDep) -> list[StatusRead]:
    """Every container status: number, name and meaning (numbers never change)."""
    return statuses()


@router.get("/archive/containers/{container_id}/reports", response_model=list[ReportRead])
def list_reports(
    container_id: ContainerIdPath, actor: ActorDep, session: SessionDep
) -> list[ReportRead]:
    """Every validation report of the container's signatures, oldest first: the verdict and
    the full evidence (certificate path, timestamps, algorithms)."""
    caller = service.caller_for_actor(actor)
    return [report_read(r) for r in service.list_reports(session, caller, str(container_id))]


@router.get("/archive/containers/{container_id}/events", response_model=list[EventRead])
def list_events(
    container_id: ContainerIdPath, actor: ActorDep, session: SessionDep
) -> list[EventRead]:
    """The container's history (created, verified, enhanced, ...), oldest first."""
    caller = service.caller_for_actor(actor)
    return [event_read(e) for e in service.list_events(session, caller, str(container_id))]


OrganisationPath = Annotated[str, Path(max_length=64, description="The organisation's id.")]
_SIZE = Query(ge=1, le=2**62, description="A tree size (default: the log's size now).")


@router.get("/archive/log/{organisation_id}/tree-head", response_model=TreeHeadRead)
def get_tree_head(
    organisation_id: OrganisationPath, actor: ActorDep, session: SessionDep, settings: SettingsDep
) -> TreeHeadRead:
    """The organisation's transparency log now: size and root hash, signed by cairn's key and
    timestamped (RFC 9162 style; every container event is a leaf)."""
    service.caller_for_actor(actor).require_read(organisation_id)
    tsa = _open_tsa(settings.data_dir)
    head = transparency.signed_tree_head(
        session, organisation_id, tsa=tsa, tsa_url=ArchiveSettings().tsa_url
    )
    return TreeHeadRead(**head)


@router.get("/archive/log/{organisation_id}/inclusion", response_model=ProofRead)
def get_inclusion_proof(
    organisation_id: OrganisationPath,
    actor: ActorDep,
    session: SessionDep,
    leaf_index: Annotated[int, Query(ge=0, le=2**62, description="The event's log_index.")],
    tree_size: Annotated[int | None, _SIZE] = None,
) -> ProofRead:
    """The audit path of one leaf (an event's `log_index`) up to the root of `tree_size`."""
    service.caller_for_actor(actor).require_read(organisation_id)
    proof = transparency.inclusion_proof(session, organisation_id, leaf_index, tree_size)
    return proof_read(proof, leaf_index=leaf_index)


@router.get("/archive/log/{organisation_id}/consistency", response_model=ProofRead)
def get_consistency_proof(
    organisation_id: OrganisationPath,
    actor: ActorDep,
    session: SessionDep,
    first_size: Annotated[int, Query(ge=1, le=2**62, description="The older tree's size.")],
    tree_size: Annotated[int | None, _SIZE] = None,
) -> ProofRead:
    """The proof that the tree of `tree_size` extends the tree of `first_size` (only appended)."""
    service.caller_for_actor(actor).require_read(organisation_id)
    proof = transparency.consistency_proof(session, organisation_id, first_size, tree_size)
    return proof_read(proof, first_size=first_size)


@router.post("/tsa", response_class=Response, responses=_TSR)
async def timestamp(request: Request, actor: ActorDep, settings: SettingsDep) -> Response:
    """cairn's own RFC 3161 timestamp authority: send a DER `TimeStampReq` with
    `Content-Type: application/timestamp-query` (e.g. made by `openssl ts -query`); the answer
    is the `TimeStampResp`. Its certificates are in the data folder's `archive-tsa/`."""
    body = await request.body()
    tsa = await run_in_threadpool(_open_tsa, settings.data_dir)  # the first call makes a key
    answer = await run_in_threadpool(tsa.respond, body)
    return Response(answer, media_type="application/timestamp-reply")
