"""XML database: collections, documents, XQuery in multi-statement transactions, node OIDs.

``XmlServer`` (the process's sessions) and ``XmlSession`` load Saxon, so they are imported on
first use: importing ``cairn.xmldb.models`` (as migrations do) starts no engine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cairn.xmldb._session import XmlServer, XmlSession

__all__ = ["XmlServer", "XmlSession"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from cairn.xmldb import _session

        return getattr(_session, name)
    raise AttributeError(f"module 'cairn.xmldb' has no attribute {name!r}")
