"""cairn's Python SDK: ``login(...)`` returns a ``User`` through which everything else is reached.

>>> from cairn import client
>>> me = client.login(email="demo@cairn.example", password="...", api_url="http://127.0.0.1:8000")
>>> [o.name for o in me.organisations]
>>> me = client.from_saved_login()          # or reuse the login of `cairn login`
"""

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
from cairn.client.workspaces import Finding, Workspace, WorkspaceFile, Workspaces

__all__ = [
    "DEFAULT_API_URL",
    "Client",
    "CreditEntry",
    "Credits",
    "Finding",
    "Organisation",
    "User",
    "Workspace",
    "WorkspaceFile",
    "Workspaces",
    "connect",
    "from_saved_login",
    "login",
]
