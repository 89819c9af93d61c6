"""Sedna's data definition statements, sent through ``execute`` like queries.

``LOAD "file" "doc" ["coll"]`` and ``LOAD STDIN "doc" ["coll"]`` (the client sends the bytes,
as Sedna's BulkLoadFileName / BulkLoadFromStream answers ask it to; a ``workspace:ID/PATH``
file is read on the server from one of your workspaces), ``CREATE DOCUMENT "doc" [IN
COLLECTION "coll"]`` (an empty document, filled by ``UPDATE insert … into doc("doc")``),
``DROP DOCUMENT "doc" [IN COLLECTION "coll"]``, ``CREATE COLLECTION "coll"`` and
``DROP COLLECTION "coll"`` (with its documents), ``CREATE INDEX "name" ON PATH BY RELPATH
AS xs:TYPE [USING "btree"]`` and ``DROP INDEX "name"`` (``_indexes``). Names are string
literals, as in Sedna's examples. Each runs in the session's transaction like any other change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cairn.errors import Invalid

__all__ = ["WORKSPACE_SCHEME", "Definition", "parse_definition", "workspace_source"]

WORKSPACE_SCHEME = "workspace:"
_STR = r"(\"(?:[^\"]|\"\")*\"|'(?:[^']|'')*')"
_END = r"\s*;?\s*\Z"
_HEAD = re.compile(
    r"\s*(LOAD\s+(?:STDIN\b|[\"'])|(CREATE|DROP)\s+(DOCUMENT|COLLECTION|INDEX)\b)", re.I | re.S
)
_FORMS: dict[str, tuple[re.Pattern[str], str]] = {
    "load": (
        re.compile(rf"\s*LOAD\s+(STDIN|{_STR})\s+{_STR}(?:\s+{_STR})?{_END}", re.I | re.S),
        'LOAD "file" "document" ["collection"]  or  LOAD STDIN "document" ["collection"]',
    ),
    "create document": (
        re.compile(rf"\s*CREATE\s+DOCUMENT\s+{_STR}(?:\s+IN\s+COLLECTION\s+{_STR})?{_END}", re.I),
        'CREATE DOCUMENT "document" [IN COLLECTION "collection"]',
    ),
    "drop document": (
        re.compile(rf"\s*DROP\s+DOCUMENT\s+{_STR}(?:\s+IN\s+COLLECTION\s+{_STR})?{_END}", re.I),
        'DROP DOCUMENT "document" [IN COLLECTION "collection"]',
    ),
    "create collection": (
        re.compile(rf"\s*CREATE\s+COLLECTION\s+{_STR}{_END}", re.I),
        'CREATE COLLECTION "collection"',
    ),
    "drop collection": (
        re.compile(rf"\s*DROP\s+COLLECTION\s+{_STR}{_END}", re.I),
        'DROP COLLECTION "collection"',
    ),
    "create index": (
        re.compile(
            rf"\s*CREATE\s+INDEX\s+{_STR}\s+ON\s+(.+)\s+BY\s+(.+?)\s+AS\s+(\S+?)"
            rf"(?:\s+USING\s+{_STR})?{_END}",
            re.I | re.S,
        ),
        'CREATE INDEX "name" ON path BY relative-path AS xs:type',
    ),
    "drop index": (re.compile(rf"\s*DROP\s+INDEX\s+{_STR}{_END}", re.I), 'DROP INDEX "name"'),
}


@dataclass(frozen=True)
class Definition:
    """One parsed statement: ``action`` is a key of ``_FORMS``; ``file`` is set for LOAD of
    a file (None for STDIN)."""

    action: str
    document: str | None = None
    collection: str | None = None
    file: str | None = None
    index: str | None = None  # CREATE / DROP INDEX: the index's name, and its definition
    on: str | None = None
    by: str | None = None
    type: str | None = None


def _literal(text: str | None) -> str | None:
    if text is None:
        return None
    quote = text[0]
    return text[1:-1].replace(quote * 2, quote)


def parse_definition(text: str) -> Definition | None:
    """The DDL statement ``text`` holds, or None when it is something else (a query)."""
    head = _HEAD.match(text)
    if head is None:
        return None
    action = "load" if head.group(2) is None else f"{head.group(2)} {head.group(3)}".lower()
    pattern, syntax = _FORMS[action]
    found = pattern.match(text)
    if found is None:
        raise Invalid(f"Statement syntax: {syntax}; names are quoted strings.")
    if action == "load":
        source, _, document, collection = found.groups()
        file = None if source.upper() == "STDIN" else _literal(source)
        if file == "":
            raise Invalid("LOAD needs a file name.")
        return Definition(action, _literal(document), _literal(collection), file)
    if action == "create index":
        name, on, by, type_, _ = found.groups()
        return Definition(action, index=_literal(name), on=on.strip(), by=by.strip(), type=type_)
    if action == "drop index":
        return Definition(action, index=_literal(found.group(1)))
    if action.endswith("document"):
        return Definition(action, _literal(found.group(1)), _literal(found.group(2)))
    return Definition(action, collection=_literal(found.group(1)))


def workspace_source(file: str) -> tuple[int, str] | None:
    """``workspace:ID/PATH`` as (workspace id, path in it); None for any other file name."""
    if not file.startswith(WORKSPACE_SCHEME):
        return None
    wid, _, path = file[len(WORKSPACE_SCHEME) :].partition("/")
    if not wid.isdigit() or not path:
        raise Invalid(f"A workspace file is {WORKSPACE_SCHEME}ID/PATH, not {file!r}.")
    return int(wid), path
