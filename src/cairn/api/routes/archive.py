"""The signed archive, cairn's own API: validation reports, event history, and the RFC 3161
timestamp endpoint of cairn's own TSA. The CryptoPro Archive contract (api/compat/cryptopro.py)
calls the same ``cairn.archive.service`` functions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, FastAPI, Path, Request, Response
from fastapi.concurrency import run_in_threadpool

from cairn.api.deps import ActorDep, SessionDep, SettingsDep
from cairn.archive import service
from cairn.archive._worker import EnhanceContext, Worker
from cairn.archive.schemas import EventRead, ReportRead, event_read, report_read
from cairn.archive.settings import ArchiveSettings
from cairn.archive.tsa import open_tsa
from cairn.db import UnitOfWork


@asynccontextmanager
async def _background_worker(app: FastAPI) -> AsyncIterator[None]:
    """The enhancement worker runs inside `cairn serve` (which sets
    ``app.state.background_workers``), not in every app a test or a tool builds."""
    worker = None
    archive = ArchiveSettings()
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

ContainerIdPath = Annotated[UUID, Path(description="The container's uuid.")]
_TSR: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "An RFC 3161 TimeStampResp (DER); a bad query is a rejection inside it.",
        "content": {"application/timestamp-reply": {}},
    }
}


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


@router.post("/tsa", response_class=Response, responses=_TSR)
async def timestamp(request: Request, actor: ActorDep, settings: SettingsDep) -> Response:
    """cairn's own RFC 3161 timestamp authority: send a DER `TimeStampReq` with
    `Content-Type: application/timestamp-query` (e.g. made by `openssl ts -query`); the answer
    is the `TimeStampResp`. Its certificates are in the data folder's `archive-tsa/`."""
    body = await request.body()
    tsa = await run_in_threadpool(open_tsa, settings.data_dir)  # the first call makes a key
    answer = await run_in_threadpool(tsa.respond, body)
    return Response(answer, media_type="application/timestamp-reply")
