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


def _name_version(dist: metadata.Distribution) -> tuple[str, str] | None:
    """``Name`` and ``Version`` from the distribution's metadata headers.

    ``dist.metadata`` runs the e-mail parser over the whole file (descriptions included) and
    ``dist.version`` runs it again: for the ~400 distributions of a typical environment that
    was a quarter of `cairn record`'s start-up (#14). The two headers come first, before the
    blank line that ends the headers, so reading up to there is enough.
    """
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO")
    if not text:
        return None
    name = version = None
    for line in text.splitlines():
        if not line.strip():
            break
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key == "name" and name is None:
            name = value.strip()
        elif key == "version" and version is None:
            version = value.strip()
        if name is not None and version is not None:
            break
    return (name, version or "") if name else None


def installed_packages() -> list[str]:
    """Every installed distribution as ``name==version``, sorted without regard to case."""
    found = {f"{nv[0]}=={nv[1]}" for nv in map(_name_version, metadata.distributions()) if nv}
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
