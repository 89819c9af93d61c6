"""The application factory: settings in, a FastAPI app with every area's router out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.routing import APIRoute

from cairn import __version__
from cairn.api.compat import cryptopro, filemanager, fusion
from cairn.api.errors import PROBLEM_RESPONSES, install_error_handlers
from cairn.api.limits import BodyLimitMiddleware
from cairn.api.methods import install_allow_header
from cairn.api.routes import (
    archive,
    auth,
    health,
    home,
    organisations,
    processing,
    runs,
    users,
    workspace_uploads,
    workspaces,
    xmldb,
)
from cairn.blobs import open_blob_store
from cairn.config import Settings
from cairn.db import make_engine, make_sessionmaker
from cairn.plugins import call_hook, load_plugins
from cairn.workspaces.service import package_builder

__all__ = ["create_app"]

ROUTERS = (
    home.router,
    health.router,
    auth.router,
    users.router,
    organisations.router,
    # Before workspaces: its `POST /{upload_id}/{action}` would take `POST …/uploads`.
    workspace_uploads.router,
    workspaces.router,
    archive.router,
    filemanager.router,
    runs.router,
    xmldb.router,
    fusion.router,
    processing.router,
    cryptopro.router,
)


def _operation_id(route: APIRoute) -> str:
    # Stable ids ("organisations-get_credits") for SDK generators and tests.
    return f"{route.tags[0]}-{route.name}" if route.tags else route.name


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    if app.state.settings.xml_preload:
        from cairn.xmldb import calls

        calls.preload(app.state)
    yield
    # Shutdown waits for the workspace package builds in flight (issue #13, section 6).
    app.state.package_builder.close()


def create_app(settings: Settings) -> FastAPI:
    """Build the server. The database must already be migrated (``cairn serve`` does it)."""
    app = FastAPI(
        title="cairn",
        version=__version__,
        description="Self-hosted research data platform: upload, process, archive and trace "
        "every file.",
        generate_unique_id_function=_operation_id,
        lifespan=_lifespan,
    )
    load_plugins(settings)  # first: a plugin named in settings may provide the blob store
    engine = make_engine(settings)
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessionmaker = make_sessionmaker(engine)
    app.state.blobs = open_blob_store(settings.blob_url)
    # Workspace packages are built in the background after each change (issue #13, section 6).
    app.state.package_builder = package_builder(
        app.state.sessionmaker, app.state.blobs, settings.work_dir
    )
    install_error_handlers(app)
    install_allow_header(app)
    app.add_middleware(
        BodyLimitMiddleware,
        routes=[route for router in ROUTERS for route in router.routes],
        limit=settings.max_request_bytes,
        upload_limit=settings.max_upload_bytes,
    )
    for router in ROUTERS:
        app.include_router(router, responses=PROBLEM_RESPONSES)
    call_hook("register_routes", app=app, settings=settings)
    return app
