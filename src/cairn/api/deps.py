"""Request dependencies: settings, a database session per request, the blob store, the actor."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path as FilePath
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session
from starlette.convertors import PathConvertor, register_url_convertor

from cairn.accounts import service as accounts
from cairn.blobs import BlobStore
from cairn.config import Settings
from cairn.db import UnitOfWork, session_scope
from cairn.db.engine import read_scope
from cairn.errors import Unauthorized

__all__ = [
    "ActorDep",
    "BlobsDep",
    "ReadSessionDep",
    "SessionDep",
    "SettingsDep",
    "TokenDep",
    "UnitOfWorkDep",
    "UploadIdPath",
    "Workflow",
    "WorkflowDep",
]

# Workspace ids are 32-bit INTEGER columns on every database; a larger number is not an id.
UploadIdPath = Annotated[
    int, Path(ge=1, le=2**31 - 1, description="The workspace id (arXiv's upload_id).")
]


class _FilePathConvertor(PathConvertor):
    """A file path in a URL, newlines included: Starlette's ``path`` stops at one, and the
    request then falls through to another route (a 405 where 404 is meant)."""

    regex = "(?s:.*)"


# Route paths write ``{name:filepath}``; registered once, when the routers are imported.
register_url_convertor("filepath", _FilePathConvertor())

_bearer = HTTPBearer(auto_error=False, description="The token from POST /api/v1/auth/login.")


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_session(request: Request) -> Iterator[Session]:
    """One transaction per request: committed on success, rolled back on any error."""
    with session_scope(request.app.state.sessionmaker) as session:
        yield session


def get_read_session(request: Request) -> Iterator[Session]:
    """For routes that only read (polls): a transaction that takes no write lock on SQLite."""
    with read_scope(request.app.state.sessionmaker) as session:
        yield session


# ``async`` for the dependencies that only compute: FastAPI runs a plain ``def`` dependency
# in its thread pool, a hand-off per dependency on every authenticated request (issue #18).
async def get_unit_of_work(request: Request) -> UnitOfWork:
    """For workflow routes (uploads, packages): the service opens its own short transactions."""
    return UnitOfWork(request.app.state.sessionmaker)


def get_blobs(request: Request) -> BlobStore:
    blobs: BlobStore = request.app.state.blobs
    return blobs


async def get_token(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    if credentials is None or not credentials.credentials:
        raise Unauthorized("Not authenticated: send 'Authorization: Bearer <token>'.")
    return credentials.credentials


SettingsDep = Annotated[Settings, Depends(get_settings)]
# scope="function": commit when the handler returns, before the response goes out, so a
# success answer means committed and a streamed download holds no transaction open.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
ReadSessionDep = Annotated[Session, Depends(get_read_session, scope="function")]
UnitOfWorkDep = Annotated[UnitOfWork, Depends(get_unit_of_work)]
BlobsDep = Annotated[BlobStore, Depends(get_blobs)]
TokenDep = Annotated[str, Depends(get_token)]


def get_actor(uow: UnitOfWorkDep, token: TokenDep) -> accounts.Actor:
    """The caller, read in a transaction of its own: a workflow route must hold none while it
    receives and unpacks a body (SQLite has one writer at a time)."""
    with uow.read() as session:  # authenticating only reads: no write lock per request
        return accounts.authenticate(session, token)


ActorDep = Annotated[accounts.Actor, Depends(get_actor)]


@dataclass(frozen=True)
class Workflow:
    """What a workflow route (upload, package) hands its service: the caller, transactions on
    demand, the blob store and the scratch folder next to it."""

    actor: accounts.Actor
    uow: UnitOfWork
    blobs: BlobStore
    work_dir: FilePath


def get_workflow(
    actor: ActorDep, uow: UnitOfWorkDep, blobs: BlobsDep, settings: SettingsDep
) -> Workflow:
    return Workflow(actor, uow, blobs, settings.work_dir)


WorkflowDep = Annotated[Workflow, Depends(get_workflow)]
