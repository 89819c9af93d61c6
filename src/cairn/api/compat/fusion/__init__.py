"""The Fusion Platform API (``/fusion``) on top of cairn's processing area.

Paths, envelopes and field names follow what the published ``fusion-platform-python-sdk``
needs (docs/processing.md), so that SDK works against cairn unchanged with
``api_url="http://HOST:PORT/fusion"``. Single objects travel as ``{"model", "extras"}``, lists
as ``{"list", "last", "extras"}``, errors as ``{"error_message"}``; every 2xx answer is JSON.
Each handler calls ``cairn.processing.service`` (or the runtime, for work on the engine) and
only translates. One module per resource group registers on the one ``router``; ``records``
holds the resource shapes.
"""

from __future__ import annotations

# Importing a module registers its routes. Paths that overlap live in one module, in order
# (``data/new`` before ``data/{id}``, ``services/latest`` before ``services/{id}``).
from cairn.api.compat.fusion import data, executions, processes, services, transfers, users
from cairn.api.compat.fusion._common import router

__all__ = ["data", "executions", "processes", "router", "services", "transfers", "users"]
