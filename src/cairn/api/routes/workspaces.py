"""cairn's own workspace endpoints (the arXiv-style ones live in api/compat/filemanager.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from cairn.api.deps import ActorDep, SessionDep, UploadIdPath
from cairn.api.paging import Page, PageDep, page_of
from cairn.workspaces import service
from cairn.workspaces.schemas import (
    LogEntryRead,
    WorkspaceListItem,
    WorkspaceSummary,
    list_item,
    summarise,
)

router = APIRouter(prefix="/api/v1/workspaces", tags=["workspaces"])


@router.get("", response_model=Page[WorkspaceListItem])
def list_workspaces(
    actor: ActorDep,
    session: SessionDep,
    paging: PageDep,
    organisation_id: Annotated[str | None, Query(description="Only this organisation's.")] = None,
    mine: Annotated[bool, Query(description="Only workspaces you created.")] = False,
) -> Page[WorkspaceListItem]:
    """Workspaces of your organisations, newest first."""
    items, total = service.list_workspaces(
        session,
        actor,
        organisation_id=organisation_id,
        mine=mine,
        page=paging.page,
        page_size=paging.page_size,
    )
    return page_of(items, total, paging, list_item)


@router.get("/{upload_id}", response_model=WorkspaceSummary)
def get_workspace(
    upload_id: UploadIdPath, actor: ActorDep, session: SessionDep
) -> WorkspaceSummary:
    """The same summary as `GET /filemanager/api/{upload_id}`."""
    return summarise(service.describe(session, service.get_workspace(session, actor, upload_id)))


@router.get("/{upload_id}/log")
def get_log(upload_id: UploadIdPath, actor: ActorDep, session: SessionDep) -> list[LogEntryRead]:
    """The workspace's source log as structured entries, oldest first."""
    return [LogEntryRead.model_validate(e) for e in service.read_log(session, actor, upload_id)]
