"""cairn: a self-hosted research data platform.

Upload, process, archive and trace every file. See docs/architecture.md for the map.
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__: str


def __getattr__(name: str) -> str:
    # The version comes from the installed package's metadata (pyproject.toml is the one place
    # it is written), read on first use: importing cairn stays cheap for CLI start-up.
    if name != "__version__":
        raise AttributeError(f"module 'cairn' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("cairn")
    except PackageNotFoundError:  # a source tree on sys.path, not installed
        found = "0+unknown"
    globals()["__version__"] = found
    return found
