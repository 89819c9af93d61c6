"""Recorded runs on a server: list an organisation's runs, read one, trace its lineage, and
receive a published run.

Runs reach a server as the platform's own activity (package builds, processing executions and
archive seals) and when a researcher uploads a locally recorded run's published
package (``cairn runs publish --to URL``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response

from cairn.api.deps import ActorDep, SessionDep, SettingsDep, WorkflowDep
from cairn.api.paging import Page, PageDep, page_of
from cairn.api.uploads import UPLOAD_FIELDS, receive_upload, upload_openapi
from cairn.provenance import service
from cairn.provenance.received import receive_published
from cairn.provenance.schemas import (
    LineageRead,
    PathVersionRead,
    PublishedRunRead,
    RunBrief,
    RunRead,
    lineage_read,
    published_run_read,
    run_brief,
    run_read,
)

router = APIRouter(prefix="/api/v1/runs", tags=["runs"])

RunIdPath = Annotated[
    str, Path(min_length=1, max_length=64, description="The run's UUID or sequence number.")
]


def _text(description: str) -> object:
    return Query(max_length=200, description=description)


@router.get("", response_model=Page[RunBrief])
def list_runs(
    actor: ActorDep,
    session: SessionDep,
    paging: PageDep,
    organisation_id: Annotated[
        str | None, Query(max_length=64, description="Only this organisation's.")
    ] = None,
    script: Annotated[str | None, _text("Substring of the script or activity.")] = None,
    tag: Annotated[list[str] | None, Query(description="Tag substrings, OR-ed.")] = None,
    start: Annotated[str | None, _text("Started at or after (2026, 2026-11, …).")] = None,
    end: Annotated[str | None, _text("Started at or before (2026, 2026-11, …).")] = None,
    error: Annotated[str | None, _text("Substring of the error message.")] = None,
    seq: Annotated[str | None, _text("Run number or range (3 or 1:10).")] = None,
    order_by: Annotated[str, _text("Column, '-' for descending.")] = "-start_time",
) -> Page[RunBrief]:
    """Runs of your organisations, newest first, selected as RunManager's `listRuns` does."""
    selector = service.RunSelector(
        script=script,
        tag=tuple(t[:200] for t in tag or ()),
        start=start,
        end=end,
        error=error,
        seq=seq,
        order_by=order_by,
    )
    rows, total = service.page_runs(
        session,
        selector,
        scope=service.scope_for(actor, organisation_id),
        page=paging.page,
        page_size=paging.page_size,
    )
    return page_of(rows, total, paging, run_brief)


PUBLISHED_FIELDS = {"organisation_id": UPLOAD_FIELDS["organisation_id"]}


@router.post(
    "/published",
    status_code=201,
    response_model=PublishedRunRead,
    openapi_extra=upload_openapi(PUBLISHED_FIELDS),
)
def upload_published(request: Request, work: WorkflowDep, settings: SettingsDep) -> Response:
    """Upload a published run (the RO-Crate-in-BagIt zip `cairn runs publish` writes): it
    becomes a read-only run of your organisation (kind `published`), listed and traced with
    the others. An unsafe zip (paths climbing out, links, a zip bomb) or an invalid bag is
    refused and nothing is kept; the same package twice answers 409."""
    received = receive_published(
        work.uow,
        work.blobs,
        work.actor,
        receive_upload(request, work.work_dir, PUBLISHED_FIELDS),
        work_dir=work.work_dir,
    )
    read = published_run_read(received)
    return Response(
        read.model_dump_json(),
        status_code=201,
        media_type="application/json",
        headers={"Location": f"{settings.base_url}{router.prefix}/{read.run.run_id}"},
    )


@router.get("/versions", response_model=list[PathVersionRead])
def path_versions(
    actor: ActorDep,
    session: SessionDep,
    path: Annotated[
        str,
        Query(
            min_length=1,
            max_length=4096,
            description="The path exactly as runs recorded it (e.g. published:outputs/fig.png).",
        ),
    ],
) -> list[PathVersionRead]:
    """The different versions of one file recorded at a path in your organisations' runs,
    oldest first, each with the runs that generated and used it."""
    found = service.path_versions(session, path, scope=service.scope_for(actor), resolve=False)
    return [PathVersionRead.model_validate(v.as_dict()) for v in found]


@router.get("/{run_id}", response_model=RunRead)
def get_run(run_id: RunIdPath, actor: ActorDep, session: SessionDep) -> RunRead:
    """One run in full: what ran, where, and every file version it used and generated."""
    return run_read(service.view_run(session, run_id, scope=service.scope_for(actor)))


@router.get("/{run_id}/trace", response_model=LineageRead)
def trace_run(
    run_id: RunIdPath,
    actor: ActorDep,
    session: SessionDep,
    direction: Annotated[
        Literal["upstream", "downstream", "both"], Query(description="Which way to follow.")
    ] = "upstream",
    join: Annotated[
        Literal["hash", "path", "strict"],
        Query(description="Join runs by content, by path, or by content and creation time."),
    ] = "hash",
) -> LineageRead:
    """Every run and file version upstream (or downstream) of this run, across all runs of
    your organisations."""
    scope = service.scope_for(actor)
    service.get_run(session, run_id, scope=scope)  # not found before anything is walked
    found = service.trace_runs(session, run_id, direction=direction, join=join, scope=scope)
    return lineage_read(found)
