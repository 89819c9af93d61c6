"""The XML database's errors, each a kind of ``cairn.errors`` so the API and SDK map them.

BadRequest
 ├── XQueryError          the engine refused the query (W3C code in ``detail``)
 └── MalformedXml         a document does not parse (line and column in ``detail``)
NotFound
 ├── DocumentNotFound
 ├── IndexNotFound        CREATE INDEX's name unknown to DROP INDEX or index-scan
 ├── NodeDeleted          an OID whose node an update removed
 └── SessionGone          unknown or closed session, result or OID (or the server restarted)
Conflict
 └── TransactionConflict  first committer won; nothing of this transaction was applied
"""

from __future__ import annotations

from cairn.errors import BadRequest, Conflict, NotFound

__all__ = [
    "DocumentNotFound",
    "IndexNotFound",
    "MalformedXml",
    "NodeDeleted",
    "SessionGone",
    "TransactionConflict",
    "XQueryError",
]


class XQueryError(BadRequest):
    code = "xquery-error"
    title = "XQuery error"


class MalformedXml(BadRequest):
    code = "malformed-xml"
    title = "Malformed XML"


class DocumentNotFound(NotFound):
    code = "document-not-found"
    title = "Document not found"


class IndexNotFound(NotFound):
    code = "index-not-found"
    title = "Index not found"


class NodeDeleted(NotFound):
    code = "node-deleted"
    title = "Node deleted"


class SessionGone(NotFound):
    code = "session-not-found"
    title = "Session, result or node not found"


class TransactionConflict(Conflict):
    code = "transaction-conflict"
    title = "Transaction conflict"
