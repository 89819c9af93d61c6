"""Value indexes: XDM maps from key to nodes, built per document version and cached.

A declared index (``CREATE INDEX "name" ON PATH BY RELPATH AS xs:TYPE``) and a join's
on-the-fly index (``_joins``, keyed by string) are the same thing: for every node of PATH,
each value of ``RELPATH`` that casts to the type is a key; a key maps to its nodes in
document order. The map is built by one Saxon query the first time a statement needs it and
kept in :class:`IndexCache`, keyed by the definition and the parsed trees it was built from:
a load, replace, delete or UPDATE gives the document a new tree (committed: a new version;
inside a transaction: the transaction's own tree), so a stale map is never used, and nothing
has to be maintained on writes. Definitions are committed data (``xml_indexes``) and follow
the transaction rules of every change.

``index-scan("name", $v, "EQ"|"LT"|"LE"|"GT"|"GE")`` and ``index-scan-between("name", $lo,
$hi, "INT"|"SEG"|"HINTL"|"HINTR")`` (Sedna's: INT is lo < k < hi, SEG lo <= k <= hi, HINTL
lo <= k < hi, HINTR lo < k <= hi) give PATH's nodes whose key compares so with the value cast
to the index's type, in document order without duplicates: ``index-scan("n", $v, "EQ")``
is ``PATH[RELPATH[. castable as T] ! T(.) = T($v)]`` answered by one map lookup.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

__all__ = ["INDEX_TYPES", "IndexCache", "IndexDef", "build_query"]

_MAP = "Q{http://www.w3.org/2005/xpath-functions/map}"
_FN = "Q{http://www.w3.org/2005/xpath-functions}"

INDEX_TYPES = (
    "xs:string",
    "xs:integer",
    "xs:decimal",
    "xs:double",
    "xs:float",
    "xs:date",
    "xs:dateTime",
    "xs:time",
    "xs:boolean",
)
_XS = {t: "Q{http://www.w3.org/2001/XMLSchema}" + t[3:] for t in INDEX_TYPES}


@dataclass(frozen=True)
class IndexDef:
    """A declared index: its nodes (``path``), their keys (``key``, relative) and type."""

    name: str
    path: str
    key: str
    type: str


def build_query(path: str, key: str, type_: str) -> str:
    """The query building an index's map (``path`` as the user wrote it, doc() and all)."""
    xs = _XS[type_]
    values = (
        f"{_FN}data($n/({key})) ! {_FN}string(.)"
        if type_ == "xs:string"
        else f"{_FN}data($n/({key}))[. castable as {xs}] ! {xs}(.)"
    )
    return (
        f"{_MAP}merge(for $n in ({path}), $v in {_FN}distinct-values({values}) "
        f"group by $v return map {{ $v: $n }})"
    )


class IndexCache:
    """Built index maps by (definition, trees), least recently used first out.

    An entry holds its trees alive; the bound (``max_entries``) keeps that in check."""

    def __init__(self, max_entries: int = 32) -> None:
        self._max = max_entries
        self._entries: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.builds = 0

    def get(self, key: Hashable, build: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
        value = build()
        evicted: list[Any] = []
        with self._lock:
            self.builds += 1
            self._entries[key] = value
            while len(self._entries) > self._max:
                evicted.append(self._entries.popitem(last=False)[1])
        if evicted:
            from cairn.xmldb import _engine  # Saxon objects die on Saxon's thread

            _engine.release(evicted)
        return value
