"""What a run records about where it ran: user, host, OS, interpreter, installed packages."""

from __future__ import annotations

import getpass
import json
import platform
import sys
from dataclasses import dataclass
from importlib import metadata

__all__ = ["Environment", "environment"]


@dataclass(frozen=True)
class Environment:
    user: str | None
    host: str
    os: str
    interpreter: str
    interpreter_version: str
    packages: str  # JSON list of "name==version", sorted


def _user() -> str | None:
    try:
        return getpass.getuser()
    except Exception:  # no login name (a container without /etc/passwd entry)
        return None


def installed_packages() -> list[str]:
    found = {
        f"{dist.metadata['Name']}=={dist.version}"
        for dist in metadata.distributions()
        if dist.metadata["Name"]
    }
    return sorted(found, key=str.lower)


def environment(*, interpreter: str | None = None, version: str | None = None) -> Environment:
    """This process's environment; ``interpreter`` / ``version`` override for a traced program."""
    return Environment(
        user=_user(),
        host=platform.node(),
        os=platform.platform(),
        interpreter=interpreter or sys.executable,
        interpreter_version=version or f"Python {platform.python_version()}",
        packages=json.dumps(installed_packages() if interpreter is None else []),
    )
