"""The saved login: the CLI keeps its token here (0600), and scripts reuse it.

>>> from cairn import client
>>> me = client.from_saved_login()      # after `cairn login`
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from platformdirs import user_config_dir

from cairn.errors import Unauthorized

__all__ = ["SavedLogin", "credentials_path", "forget_login", "load_login", "save_login"]


@dataclass(frozen=True)
class SavedLogin:
    api_url: str
    token: str
    expires_at: str
    email: str


def credentials_path() -> Path:
    """``credentials.json`` in the user's config folder (``XDG_CONFIG_HOME`` on Linux)."""
    return Path(user_config_dir("cairn")) / "credentials.json"


def save_login(login: SavedLogin) -> Path:
    """Keep the token where only this user can read it (0600, in a 0700 folder)."""
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(asdict(login), handle)
    os.chmod(path, 0o600)
    return path


def load_login() -> SavedLogin:
    """The saved login; ``Unauthorized`` when there is none (or it is unreadable)."""
    try:
        data = json.loads(credentials_path().read_text())
        return SavedLogin(
            api_url=str(data["api_url"]),
            token=str(data["token"]),
            expires_at=str(data.get("expires_at", "")),
            email=str(data.get("email", "")),
        )
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        raise Unauthorized("Not logged in: run 'cairn login' first.") from None


def forget_login() -> None:
    credentials_path().unlink(missing_ok=True)
