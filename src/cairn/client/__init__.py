"""cairn's Python SDK: ``login(...)`` returns a ``User`` through which everything else is reached.

>>> from cairn import client
>>> me = client.login(email="demo@cairn.example", password="...", api_url="http://127.0.0.1:8000")
>>> [o.name for o in me.organisations]
>>> me = client.from_saved_login()          # or reuse the login of `cairn login`

Names load on first use (PEP 562), so ``cairn.client.credentials`` and the CLI's help start
without importing httpx and pydantic.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cairn.client._client import DEFAULT_API_URL, Client
    from cairn.client.accounts import (
        CreditEntry,
        Credits,
        Organisation,
        User,
        connect,
        from_saved_login,
        login,
    )
    from cairn.client.archive import Archive, Container
    from cairn.client.processing import (
        Component,
        DataFile,
        DataItem,
        Execution,
        Process,
        Processing,
        Service,
    )
    from cairn.client.runs import Run, RunFile, Runs
    from cairn.client.workspaces import (
        Checkpoint,
        Finding,
        RemovedFile,
        Workspace,
        WorkspaceFile,
        Workspaces,
    )
    from cairn.client.xmldb import XmlDatabases

_WHERE = {
    "Archive": "cairn.client.archive",
    "Container": "cairn.client.archive",
    "DEFAULT_API_URL": "cairn.client._client",
    "Client": "cairn.client._client",
    "CreditEntry": "cairn.client.accounts",
    "Credits": "cairn.client.accounts",
    "Organisation": "cairn.client.accounts",
    "User": "cairn.client.accounts",
    "connect": "cairn.client.accounts",
    "from_saved_login": "cairn.client.accounts",
    "login": "cairn.client.accounts",
    "Component": "cairn.client.processing",
    "DataFile": "cairn.client.processing",
    "DataItem": "cairn.client.processing",
    "Execution": "cairn.client.processing",
    "Process": "cairn.client.processing",
    "Processing": "cairn.client.processing",
    "Service": "cairn.client.processing",
    "Run": "cairn.client.runs",
    "RunFile": "cairn.client.runs",
    "Runs": "cairn.client.runs",
    "Checkpoint": "cairn.client.workspaces",
    "Finding": "cairn.client.workspaces",
    "RemovedFile": "cairn.client.workspaces",
    "Workspace": "cairn.client.workspaces",
    "WorkspaceFile": "cairn.client.workspaces",
    "Workspaces": "cairn.client.workspaces",
    "XmlDatabases": "cairn.client.xmldb",
}

__all__ = [
    "DEFAULT_API_URL",
    "Archive",
    "Checkpoint",
    "Client",
    "Component",
    "Container",
    "CreditEntry",
    "Credits",
    "DataFile",
    "DataItem",
    "Execution",
    "Finding",
    "Organisation",
    "Process",
    "Processing",
    "RemovedFile",
    "Run",
    "RunFile",
    "Runs",
    "Service",
    "User",
    "Workspace",
    "WorkspaceFile",
    "Workspaces",
    "XmlDatabases",
    "connect",
    "from_saved_login",
    "login",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'cairn.client' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_WHERE})
