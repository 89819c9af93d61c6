"""cairn: a self-hosted research data platform.

Upload, process, archive and trace every file. See docs/architecture.md for the map.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cairn.hookspecs import hookimpl

__all__ = ["__version__", "hookimpl"]

__version__: str


def __getattr__(name: str) -> Any:
    # Both names are looked up on first use, so importing cairn stays cheap for CLI start-up:
    # the version comes from the installed package's metadata (pyproject.toml is the one place
    # it is written), and ``hookimpl`` (for plugins) from pluggy.
    if name == "hookimpl":
        from cairn.hookspecs import hookimpl

        return hookimpl
    if name != "__version__":
        raise AttributeError(f"module 'cairn' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("cairn")
    except PackageNotFoundError:  # a source tree on sys.path, not installed
        found = "0+unknown"
    globals()["__version__"] = found
    return found
