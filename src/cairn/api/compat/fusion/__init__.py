"""The Fusion Platform API (``/fusion``) on top of cairn's processing area.

Paths, envelopes and field names follow what the published ``fusion-platform-python-sdk``
needs (docs/processing.md), so that SDK works against cairn unchanged with
``api_url="http://HOST:PORT/fusion"``. Single objects travel as ``{"model", "extras"}``, lists
as ``{"list", "last", "extras"}``, errors as ``{"error_message"}``; every 2xx answer is JSON.
Each handler calls ``cairn.processing.service`` (or the runtime, for work on the engine) and
only translates. One module per resource group; ``records`` holds the resource shapes.
"""

from __future__ import annotations

from fastapi import APIRouter

from cairn.api.compat.fusion import data, executions, processes, services, transfers, users
from cairn.api.compat.fusion._common import _ERRORS, PREFIX, FusionRoute

__all__ = ["router"]

router = APIRouter(prefix=PREFIX, tags=["fusion"], route_class=FusionRoute, responses=_ERRORS)
# Order matters where paths overlap: ``data/new`` and ``data/uploaded`` before ``data/{id}``,
# ``services/latest`` before ``services/{id}``, ``processes/new`` before ``processes/{id}``.
for _module in (users, data, transfers, services, processes, executions):
    router.include_router(_module.router)
