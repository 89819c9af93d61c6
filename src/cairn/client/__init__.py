"""cairn's Python SDK: ``login(...)`` returns a ``User`` through which everything else is reached.

>>> from cairn import client
>>> me = client.login(email="demo@cairn.example", password="...", api_url="http://127.0.0.1:8000")
>>> [o.name for o in me.organisations]
"""

from cairn.client._client import DEFAULT_API_URL, Client
from cairn.client.accounts import Credits, Organisation, User, connect, login
from cairn.client.workspaces import Workspace, Workspaces

__all__ = [
    "DEFAULT_API_URL",
    "Client",
    "Credits",
    "Organisation",
    "User",
    "Workspace",
    "Workspaces",
    "connect",
    "login",
]
