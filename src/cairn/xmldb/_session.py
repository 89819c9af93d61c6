"""Sessions, transactions, result cursors and node OIDs: the server side of the Sedna API.

A session runs transactions one after another. Each transaction reads the snapshot taken at
its begin plus its own pending changes; its results stay open together until it ends. Without
``begin`` each statement is its own transaction, whose results stay readable (up to
``AUTOCOMMIT_RESULTS`` of them) until the session begins a transaction or closes.

OIDs: a stored node's is ``<document id>.<node id>``, the same for the node's whole life; a
namespace node's is its element's OID, ``~`` and the prefix; a node a query constructed has
``t<transaction>.<saxon id>``, valid only inside that transaction.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import logging
import threading
import time
import uuid
from array import array
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from saxonche import PyXdmItem, PyXdmNode, PyXdmValue  # type: ignore[import-not-found]
from sqlalchemy.exc import SQLAlchemyError

from cairn.accounts.service import Actor, Privilege
from cairn.blobs import BlobStore
from cairn.db import UnitOfWork
from cairn.db.base import new_id
from cairn.errors import Conflict, Invalid, NotFound, TooLarge
from cairn.workspaces import service as workspaces
from cairn.xmldb import _engine as engine
from cairn.xmldb import _indexes, _nodes, _update, service
from cairn.xmldb._ddl import Definition, parse_definition, workspace_source
from cairn.xmldb._indexes import IndexDef
from cairn.xmldb._joins import JOIN_VAR_PREFIX
from cairn.xmldb._rewrite import (
    COLLS_VAR,
    DOC_VAR_PREFIX,
    DOCS_VAR,
    INDEX_KEYS_VAR,
    INDEX_TYPES_VAR,
    Prepared,
    prepare,
)
from cairn.xmldb._update import Statement, handles, parse_statement
from cairn.xmldb._xml import EMPTY_DOCUMENT, Normalised, normalise, parse_tree
from cairn.xmldb.errors import (
    DocumentNotFound,
    IndexNotFound,
    NodeDeleted,
    SessionGone,
    XQueryError,
)
from cairn.xmldb.service import Change, DocRef, Snapshot

logger = logging.getLogger(__name__)

__all__ = ["XmlServer", "XmlSession"]

DEFAULT_PORTION = 64 * 1024
MAX_PORTION = 1024 * 1024
MAX_STRING = 512  # longer string values ship in parts (node_string)
MAX_LITE = 16 * 1024 * 1024
MAX_DOCUMENT = 512 * 1024 * 1024  # a document loaded from a workspace file
AUTOCOMMIT_RESULTS = 16
_FEW_ITEMS = 8  # result nodes placed without indexing their tree (one Saxon query for all)
MAX_SESSIONS_PER_USER = 64
_RECORD_GUESS = 320  # bytes per record (five OIDs and a name), to size a portion's query
_serials = itertools.count(1)


def base_uri(name: str) -> str:
    return f"urn:cairn:doc:{quote(name, safe='')}"


class TreeCache:
    """Parsed documents keyed by (document id, version), bounded by their source bytes."""

    def __init__(self, blobs: BlobStore, max_bytes: int) -> None:
        self._blobs = blobs
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple[str, int], tuple[engine.Tree, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.parses = 0

    def get(self, doc: DocRef) -> engine.Tree:
        key = (doc.id, doc.version)
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key][0]
        tree = engine.Tree(
            engine.parse_document(self._blobs.read_bytes(doc.sha256), base_uri(doc.name))
        )
        with self._lock:
            self.parses += 1
            if key not in self._entries:
                self._entries[key] = (tree, doc.size)
                self._bytes += doc.size
            while self._bytes > self.max_bytes and len(self._entries) > 1:
                _, (_, size) = self._entries.popitem(last=False)
                self._bytes -= size
            return self._entries[key][0] if key in self._entries else tree


# Node tables are built (or read back) on this thread, never on Saxon's: a 59 MB document's
# table takes seconds to build, and Saxon's thread serves every session's queries.
_builder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cairn-xml-nodes")


def wait_for_node_tables() -> None:
    """Block until the node tables queued so far are built and saved (the one builder thread
    takes them in order): for a command that must see every blob it made, e.g. before gc."""
    _builder.submit(lambda: None).result()


class NodeTables:
    """Node tables (``_nodes``) keyed by document bytes and base URI, bounded by node count.
    A committed version's table is saved as a blob, and its hash put on the document's row,
    so a restarted server reads it back (``reads``) instead of building it (``builds``).

    The builder thread touches blobs only, never the database (a build can outlive the
    request, and the app, that asked for it): the rows are noted by the next thread that asks
    for a table or starts a statement (:meth:`note`)."""

    def __init__(self, uow: UnitOfWork, blobs: BlobStore, max_nodes: int = 32_000_000) -> None:
        self._uow = uow
        self._blobs = blobs
        self._max = max_nodes
        self._entries: OrderedDict[tuple[str, str], _nodes.NodeTable] = OrderedDict()
        self._building: dict[tuple[str, str], Future[_nodes.NodeTable]] = {}
        self._unnoted: list[tuple[str, str, str]] = []  # (document id, content, table blob)
        self._lock = threading.Lock()
        self.builds = 0
        self.reads = 0

    def get(
        self, doc: DocRef, content: Callable[[], bytes], *, saved: bool, wait: bool
    ) -> _nodes.NodeTable | None:
        """The table of ``doc``; when it is not ready and ``wait`` is false, None (its build
        has started). ``saved``: ``doc`` is a committed version (its table is kept)."""
        key = (doc.sha256, base_uri(doc.name))
        future: Future[_nodes.NodeTable] | None = None
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            else:
                future = self._building.get(key)
                if future is None:
                    future = _builder.submit(
                        self._make,
                        key,
                        doc.id,
                        doc.records_sha256 if saved else None,
                        content,
                        saved,
                    )
                    self._building[key] = future
        if found is None:
            assert future is not None
            if not (wait or future.done()):
                return None
            found = future.result()
        self.note()
        return found

    def note(self) -> None:
        """Put each table saved since on its document's row (unless the content changed).
        Only a saving for later: when the database refuses it now, it is tried again by the
        next call, and the statement that called goes on."""
        with self._lock:
            if not self._unnoted:
                return
            notes, self._unnoted = self._unnoted, []
        try:
            with self._uow.transaction() as session:
                for doc_id, content_sha, table_sha in notes:
                    service.save_node_table(session, doc_id, content_sha, table_sha)
        except SQLAlchemyError:
            with self._lock:
                self._unnoted[:0] = notes

    def _make(
        self,
        key: tuple[str, str],
        doc_id: str,
        saved_sha: str | None,
        content: Callable[[], bytes],
        saved: bool,
    ) -> _nodes.NodeTable:
        try:
            table = None
            if saved_sha is not None and self._blobs.exists(saved_sha):
                table = _nodes.decode(self._blobs.read_bytes(saved_sha), key[0], key[1])
            if table is None:
                table = _nodes.build(content(), key[1])
                self.builds += 1
                if saved:
                    sha = self._blobs.put(_nodes.encode(table, key[0], key[1])).sha256
                    with self._lock:
                        self._unnoted.append((doc_id, key[0], sha))
            else:
                self.reads += 1
            with self._lock:
                self._entries[key] = table
                total = sum(t.size for t in self._entries.values())
                while total > self._max and len(self._entries) > 1:
                    _, gone = self._entries.popitem(last=False)
                    total -= gone.size
            return table
        finally:
            with self._lock:
                self._building.pop(key, None)


@dataclass
class Entry:
    """A tree a transaction has touched: a document version, or nodes a query constructed."""

    tree: engine.Tree
    doc: DocRef | None  # None: constructed, OIDs scoped to the transaction
    ids: tuple[int, ...] | None = None  # the document's node ids, when not first + position

    def oid(self, gid: str, serial: int) -> str:
        if self.doc is None:
            return f"t{serial}.{gid}"
        return self.oid_at(self.tree.position(gid))

    def oid_at(self, pos: int) -> str:
        """A stored node's OID from its canonical position."""
        assert self.doc is not None
        node_id = self.ids[pos] if self.ids is not None else self.doc.first_node_id + pos
        return f"{self.doc.id}.{node_id}"


@dataclass
class Pending:
    """A document written inside a transaction, not yet committed."""

    doc: DocRef | None  # None: deleted
    content: bytes | None = None
    tree: engine.Tree | None = None


@dataclass
class Result:
    id: str
    value: PyXdmValue
    size: int


@dataclass
class Transaction:
    serial: int
    snapshot: Snapshot
    explicit: bool
    writes: dict[str, Pending] = field(default_factory=dict)
    new_collections: set[str] = field(default_factory=set)
    dropped_collections: set[str] = field(default_factory=set)
    entries: dict[str, Entry] = field(default_factory=dict)  # by Saxon tree number
    results: dict[str, Result] = field(default_factory=dict)
    new_indexes: dict[str, IndexDef] = field(default_factory=dict)
    dropped_indexes: set[str] = field(default_factory=set)

    def document(self, name: str) -> DocRef | None:
        if name in self.writes:
            return self.writes[name].doc
        return self.snapshot.documents.get(name)

    def names(self) -> list[str]:
        live = {n for n, d in self.snapshot.documents.items() if d} | set(self.writes)
        return sorted(n for n in live if self.document(n) is not None)

    def collections(self) -> set[str]:
        return (self.snapshot.collections - self.dropped_collections) | self.new_collections

    def index(self, name: str) -> IndexDef | None:
        if name in self.new_indexes:
            return self.new_indexes[name]
        return None if name in self.dropped_indexes else self.snapshot.indexes.get(name)

    def index_names(self) -> list[str]:
        return sorted(n for n in {*self.snapshot.indexes, *self.new_indexes} if self.index(n))


class XmlSession:
    """One client session (Sedna's Connection) on one organisation's database."""

    def __init__(self, server: XmlServer, actor: Actor, database_id: str, org_id: str) -> None:
        self.id = str(uuid.uuid4())
        self.server = server
        self.actor = actor
        self.user_id = actor.id
        self.database_id = database_id
        self.organisation_id = org_id
        self.lock = threading.RLock()
        self.last_used = server.clock()
        self.txn: Transaction | None = None  # the explicit transaction, when one is open
        self.recent: OrderedDict[int, Transaction] = OrderedDict()  # autocommitted, results open

    # --- transactions ---------------------------------------------------------------------

    def _snapshot(self) -> Snapshot:
        """The committed state now: the server's last snapshot of the database while its
        generation is unchanged (snapshots are never modified), else read afresh."""
        self.server.tables.note()
        with self.server.uow.read() as session:  # no write lock: a statement only reads here
            from cairn.xmldb.models import XmlDatabase

            generation = service.generation_of(session, self.database_id)
            if generation is None:
                raise SessionGone("This session's database no longer exists.")
            cached = self.server.snapshots.get(self.database_id)
            if cached is not None and cached.generation == generation:
                return cached
            database = session.get(XmlDatabase, self.database_id)
            if database is None:
                raise SessionGone("This session's database no longer exists.")
            snapshot = service.read_snapshot(session, database)
        self.server.snapshot_reads += 1
        self.server.snapshots[self.database_id] = snapshot
        return snapshot

    @engine.saxon_bound
    def begin(self) -> XmlSession:
        if self.txn is not None:
            raise Invalid("A transaction is already open; commit or roll it back first.")
        self.recent.clear()
        self.txn = Transaction(next(_serials), self._snapshot(), explicit=True)
        return self

    def commit(self) -> XmlSession:
        """Apply the transaction; on a conflict nothing is applied and it is still over.
        The commit itself touches no Saxon object, so commits race in the database."""
        txn = self._explicit()
        try:
            self._apply(txn)
        finally:
            self.txn = None
            engine.release(txn)
        return self

    @engine.saxon_bound
    def rollback(self) -> XmlSession:
        self._explicit()
        self.txn = None
        return self

    def _explicit(self) -> Transaction:
        if self.txn is None:
            raise Invalid("No transaction is open; call begin first.")
        return self.txn

    def _apply(self, txn: Transaction) -> None:
        changes = [
            Change(name, txn.snapshot.documents.get(name), pending.doc)
            for name, pending in sorted(txn.writes.items())
            if not (txn.snapshot.documents.get(name) is None and pending.doc is None)
        ]
        if not (
            changes
            or txn.new_collections
            or txn.dropped_collections
            or txn.new_indexes
            or txn.dropped_indexes
        ):
            return
        self.actor.require(self.organisation_id, Privilege.execute)
        # Blobs first: content-addressed, so one left by a failed commit is only an orphan.
        for change_index, change in enumerate(changes):
            pending = txn.writes[change.name]
            if pending.doc is not None and pending.content is not None:
                self.server.blobs.put(pending.content)
            if change.new is not None and change.new.node_ids is not None:
                ids = array("q", change.new.node_ids).tobytes()
                sha = self.server.blobs.put(ids).sha256
                changes[change_index] = Change(
                    change.name,
                    change.base,
                    dataclasses.replace(change.new, node_ids_sha256=sha, node_ids=None),
                )
        with self.server.uow.transaction() as session:
            service.commit_changes(
                session,
                database_id=self.database_id,
                changes=changes,
                collections=txn.new_collections,
                dropped=txn.dropped_collections,
                indexes=list(txn.new_indexes.values()),
                dropped_indexes=txn.dropped_indexes,
            )
        for change in changes:  # each new version's node table, built now on its own thread
            pending = txn.writes[change.name]
            if change.new is not None and pending.content is not None:
                self.server.tables.get(
                    change.new, _constant(pending.content), saved=True, wait=False
                )

    def _statement_txn(self) -> Transaction:
        """The transaction a statement runs in: the open one, or a new autocommit one."""
        if self.txn is not None:
            return self.txn
        txn = Transaction(next(_serials), self._snapshot(), explicit=False)
        self.recent[txn.serial] = txn
        while len(self.recent) > AUTOCOMMIT_RESULTS:
            self.recent.popitem(last=False)
        return txn

    def _view(self, serial: int | None = None) -> Transaction:
        """Where OIDs resolve: a named transaction, else the open one, else the latest."""
        if serial is not None:
            if self.txn is not None and self.txn.serial == serial:
                return self.txn
            if serial in self.recent:
                return self.recent[serial]
            raise SessionGone("This node belongs to a transaction that has ended.")
        if self.txn is not None:
            return self.txn
        if self.recent:
            return next(reversed(self.recent.values()))
        return self._statement_txn()

    def _autocommit(self, txn: Transaction) -> None:
        if not txn.explicit:
            try:
                self._apply(txn)
            except Exception:
                self.recent.pop(txn.serial, None)
                raise

    # --- documents ------------------------------------------------------------------------

    @engine.saxon_bound
    def load_document(
        self, name: str, content: bytes | str, collection: str | None = None, *, replace: bool
    ) -> DocRef:
        txn = self._statement_txn()
        doc = self._load(txn, name, normalise(content), collection, replace=replace)
        self._autocommit(txn)
        return doc

    @engine.saxon_bound
    def load_workspace_file(
        self, name: str, workspace_id: int, path: str, collection: str | None = None
    ) -> DocRef:
        """Load a file of one of the caller's workspaces as a new document."""
        content = self.server.workspace_file(self.actor, workspace_id, path)
        txn = self._statement_txn()
        doc = self._load(txn, name, normalise(content), collection, replace=False)
        self._autocommit(txn)
        return doc

    def _load(
        self,
        txn: Transaction,
        name: str,
        normal: Normalised,
        collection: str | None,
        *,
        replace: bool,
    ) -> DocRef:
        service.validate_name(name)
        if collection is not None:
            service.validate_name(collection, "collection")
        self.actor.require(self.organisation_id, Privilege.execute)
        old = txn.document(name)
        if replace and old is None:
            raise DocumentNotFound(f"No document {name!r} to replace.")
        if not replace and old is not None:
            raise service_conflict(name)
        first = old.next_node_id if old else 1
        doc = DocRef(
            id=old.id if old else new_id(),
            name=name,
            collection=collection if collection is not None else (old.collection if old else None),
            sha256=_sha256(normal.content),
            size=len(normal.content),
            version=(old.version if old else 0),
            node_count=normal.node_count,
            first_node_id=first,
            next_node_id=first + normal.node_count,
        )
        if doc.collection is not None and doc.collection not in txn.collections():
            txn.new_collections.add(doc.collection)
            txn.dropped_collections.discard(doc.collection)
        txn.writes[name] = Pending(doc, normal.content)
        return doc

    @engine.saxon_bound
    def delete_document(self, name: str) -> None:
        self.actor.require(self.organisation_id, Privilege.execute)
        txn = self._statement_txn()
        if txn.document(name) is None:
            raise DocumentNotFound(f"No document {name!r}.")
        txn.writes[name] = Pending(None)
        self._autocommit(txn)

    @engine.saxon_bound
    def list_documents(self, collection: str | None = None) -> list[DocRef]:
        txn = self._statement_txn() if self.txn is None else self.txn
        docs = [d for n in txn.names() if (d := txn.document(n)) is not None]
        if collection is not None:
            docs = [d for d in docs if d.collection == collection]
        return docs

    @engine.saxon_bound
    def document_text(self, name: str) -> bytes:
        return self._content(self._statement_txn() if self.txn is None else self.txn, name)

    def _content(self, txn: Transaction, name: str) -> bytes:
        doc = txn.document(name)
        if doc is None:
            raise DocumentNotFound(f"No document {name!r}.")
        pending = txn.writes.get(name)
        if pending is not None and pending.content is not None:
            return pending.content
        return self.server.blobs.read_bytes(doc.sha256)

    def _tree(self, txn: Transaction, name: str) -> engine.Tree:
        doc = txn.document(name)
        if doc is None:
            raise DocumentNotFound(f"Document {name!r} not found in this database.")
        pending = txn.writes.get(name)
        if pending is not None and pending.content is not None:
            if pending.tree is None:
                pending.tree = engine.Tree(engine.parse_document(pending.content, base_uri(name)))
            tree = pending.tree
        else:
            tree = self.server.trees.get(doc)
        if tree.docnum not in txn.entries:
            txn.entries[tree.docnum] = Entry(tree, doc, self.server.node_ids(doc))
        return tree

    # --- statements -----------------------------------------------------------------------

    @engine.saxon_bound
    def execute(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        lite: bool = False,
        portion: int = DEFAULT_PORTION,
    ) -> dict[str, Any]:
        txn = self._statement_txn()
        definition = parse_definition(query)
        if definition is not None:
            self.actor.require(self.organisation_id, Privilege.execute)
            answer = self._define(txn, definition)
            self._autocommit(txn)
            return answer
        statement = parse_statement(query)
        if statement is not None:
            self.actor.require(self.organisation_id, Privilege.execute)
            changed = self._update(txn, statement, variables or {})
            self._autocommit(txn)
            return {"kind": "update", "size": changed}
        value = self._run(txn, query, variables)
        for i in range(value.size):
            item = value.item_at(i)
            if not (item.is_atomic or item.is_node):
                raise Invalid("Maps, arrays and functions cannot be result items; serialize them.")
        if lite:
            text = engine.serialize_sequence(value)
            if len(text) > MAX_LITE:
                raise TooLarge("The serialised result is over 16 MiB; use execute_query.")
            self._autocommit(txn)
            return {"kind": "query", "text": text, "size": value.size}
        result = Result(str(uuid.uuid4()), value, value.size)
        txn.results[result.id] = result
        self._autocommit(txn)
        first = self._items(txn, result, 0, 1, portion)
        return {
            "kind": "query",
            "result_id": result.id,
            "transaction": txn.serial,
            "size": result.size,
            **first,
        }

    def _define(self, txn: Transaction, stmt: Definition) -> dict[str, Any]:
        """Apply one DDL statement to the transaction (see ``_ddl``)."""
        if stmt.action == "load":
            assert stmt.document is not None
            source = workspace_source(stmt.file) if stmt.file is not None else None
            if source is None:  # the client sends the bytes (Sedna's bulk load answer)
                service.validate_name(stmt.document)
                if txn.document(stmt.document) is not None:
                    raise service_conflict(stmt.document)
                load = {"document": stmt.document, "collection": stmt.collection}
                return {"kind": "load", "size": 0, "load": {**load, "file": stmt.file}}
            content = self.server.workspace_file(self.actor, *source)
            self._load(txn, stmt.document, normalise(content), stmt.collection, replace=False)
        elif stmt.action == "create document":
            assert stmt.document is not None
            self._load(txn, stmt.document, EMPTY_DOCUMENT, stmt.collection, replace=False)
        elif stmt.action == "drop document":
            assert stmt.document is not None
            doc = txn.document(stmt.document)
            if doc is None or (stmt.collection is not None and doc.collection != stmt.collection):
                where = f" in collection {stmt.collection!r}" if stmt.collection else ""
                raise DocumentNotFound(f"No document {stmt.document!r}{where}.")
            txn.writes[stmt.document] = Pending(None)
        elif stmt.action == "create collection":
            assert stmt.collection is not None
            service.validate_name(stmt.collection, "collection")
            if stmt.collection in txn.collections():
                raise Conflict(f"Collection {stmt.collection!r} exists already.")
            txn.new_collections.add(stmt.collection)
            txn.dropped_collections.discard(stmt.collection)
        elif stmt.action.endswith("index"):
            self._define_index(txn, stmt)
        else:
            assert stmt.action == "drop collection" and stmt.collection is not None
            if stmt.collection not in txn.collections():
                raise DocumentNotFound(f"Collection {stmt.collection!r} not found.")
            for name in txn.names():
                doc = txn.document(name)
                if doc is not None and doc.collection == stmt.collection:
                    txn.writes[name] = Pending(None)
            if stmt.collection in txn.new_collections:
                txn.new_collections.discard(stmt.collection)
            if stmt.collection in txn.snapshot.collections:
                txn.dropped_collections.add(stmt.collection)
        return {"kind": "ddl", "size": 0}

    def _define_index(self, txn: Transaction, stmt: Definition) -> None:
        """CREATE INDEX (built once now: a bad path fails here, not in a later scan) and
        DROP INDEX, in the transaction."""
        assert stmt.index is not None
        service.validate_name(stmt.index, "index")
        if stmt.action == "drop index":
            if txn.index(stmt.index) is None:
                raise IndexNotFound(f"No index {stmt.index!r} in this database.")
            txn.new_indexes.pop(stmt.index, None)
            if stmt.index in txn.snapshot.indexes:
                txn.dropped_indexes.add(stmt.index)
            return
        assert stmt.on and stmt.by and stmt.type
        if stmt.type not in _indexes.INDEX_TYPES:
            raise Invalid(f"An index's type is one of {', '.join(_indexes.INDEX_TYPES)}.")
        if txn.index(stmt.index) is not None:
            raise Conflict(f"Index {stmt.index!r} exists already; drop it first.")
        self._index_map(txn, stmt.on, stmt.by, stmt.type)
        txn.new_indexes[stmt.index] = IndexDef(stmt.index, stmt.on, stmt.by, stmt.type)

    def _scan_bindings(self, txn: Transaction, prepared: Prepared) -> dict[str, Any]:
        """The declared indexes an ``index-scan`` of the query may read, built as needed."""
        names = txn.index_names() if prepared.all_indexes else sorted(prepared.indexes)
        keys: dict[str, Any] = {}
        types: dict[str, Any] = {}
        for name in names:
            index = txn.index(name)
            if index is None:
                raise IndexNotFound(f"No index {name!r} in this database.")
            keys[name] = self._index_map(txn, index.path, index.key, index.type)
            types[name] = engine.processor().make_string_value(index.type)
        proc = engine.processor()
        return {
            INDEX_KEYS_VAR: proc.make_map2(keys) if keys else _empty_map(),
            INDEX_TYPES_VAR: proc.make_map2(types) if types else _empty_map(),
        }

    def _run(
        self,
        txn: Transaction,
        query: str,
        variables: dict[str, Any] | None,
        bound: dict[str, Any] | None = None,
    ) -> PyXdmValue:
        """Evaluate ``query`` in ``txn``: its documents bound, its variables set; a query
        whose joins were rewritten (``_joins``) gets their index maps, and runs as written
        when the rewritten text fails, so its errors are the user's."""
        prepared = prepare(query)
        names, colls = self._sources(txn, prepared)
        proc = engine.processor()
        docs = {name: self._tree(txn, name).root for name in sorted(names)}
        params: dict[str, Any] = {
            DOCS_VAR: proc.make_map2(docs) if docs else _empty_map(),
            # A collection's member names as one string, a line each (names hold no control
            # characters): a map whose values are sequences built in Python aborts saxonche
            # (ClassCastException in MapData.j_addMapPair, seen with two members).
            COLLS_VAR: proc.make_map2(
                {k: proc.make_string_value("\n".join(vs)) for k, vs in colls.items()}
            )
            if colls
            else _empty_map(),
        }
        for i, name in enumerate(prepared.bound):
            params[f"{DOC_VAR_PREFIX}{i}"] = docs[name]
        for name, value in (variables or {}).items():
            params[_variable_name(name)] = _atomic(value)
        params.update(bound or {})
        if prepared.scans:
            params.update(self._scan_bindings(txn, prepared))
        try:
            if prepared.original is not None:
                joins = {j.variable: self._index_map(txn, j.source, j.key) for j in prepared.joins}
                try:
                    return engine.evaluate(prepared.text, {**params, **joins})
                except XQueryError:
                    return engine.evaluate(prepared.original, params)
            return engine.evaluate(prepared.text, params)
        except XQueryError as exc:
            where = exc.detail or {}
            where["line"], where["column"] = prepared.user_position(
                where.get("line"), where.get("column")
            )
            raise

    def _sources(
        self, txn: Transaction, prepared: Prepared
    ) -> tuple[set[str], dict[str, list[str]]]:
        """The documents a query reads (by name) and its collections' members."""
        names = set(txn.names()) if prepared.dynamic else set(prepared.documents)
        colls: dict[str, list[str]] = {}
        for coll in txn.collections() if prepared.dynamic else prepared.collections:
            members = [n for n in txn.names() if (d := txn.document(n)) and d.collection == coll]
            if coll in txn.collections():
                colls[coll] = members
                names.update(members)
        if not prepared.dynamic:
            for name in prepared.documents:
                if txn.document(name) is None:
                    raise DocumentNotFound(f"Document {name!r} not found in this database.")
            for coll in prepared.collections:
                if coll not in colls:
                    raise DocumentNotFound(f"Collection {coll!r} not found in this database.")
        return names, colls

    def _index_map(self, txn: Transaction, path: str, key: str, type_: str = "xs:string") -> Any:
        """The index of ``path``'s nodes by ``key`` over the trees this transaction sees,
        built once per set of document versions (``_indexes``)."""
        names, _ = self._sources(txn, prepare(path))
        trees = tuple(sorted((n, self._tree(txn, n).docnum) for n in names))
        return self.server.indexes.get(
            (path, key, type_, trees),
            lambda: self._run(txn, _indexes.build_query(path, key, type_), None).item_at(0),
        )

    def _targets(self, txn: Transaction, value: PyXdmValue) -> list[tuple[str, int]]:
        """(document name, canonical position) of each node: stored nodes only."""
        items = [value.item_at(i) for i in range(value.size)]
        if any(not it.is_node for it in items):
            raise Invalid("An update's target must be nodes, not atomic values.")
        out: list[tuple[str, int]] = []
        for gid in engine.generate_ids(items):
            entry = txn.entries.get(engine.tree_of(gid))
            if entry is None or entry.doc is None:
                raise Invalid("Constructed (temporary) nodes cannot be update targets.")
            out.append((entry.doc.name, entry.tree.position(gid)))
        return out

    def _pieces(self, value: PyXdmValue) -> list[tuple[str, str]]:
        """What an insert or replace puts in, as serialised parts."""
        out: list[tuple[str, str]] = []
        last_atom = False
        for i in range(value.size):
            item = value.item_at(i)
            if item.is_atomic:
                text = str(item.string_value)
                out.append(("text", (" " if last_atom else "") + text))
                last_atom = True
                continue
            last_atom = False
            node = item.get_node_value()
            kind = node.node_kind
            if kind == 2:
                name = str(node.name)  # Clark form Q{uri}local, or local
                clark = name[1:] if name.startswith("Q{") else name
                clark = clark[2:] if clark.startswith("{}") else clark
                out.append(("attr", f"{clark}={node.string_value}"))
            elif kind == 3:
                out.append(("text", str(node.string_value)))
            else:
                out.append(("node", engine.serialize_sequence(engine.as_value([item]))))
        return out

    def _update(self, txn: Transaction, stmt: Statement, variables: dict[str, Any]) -> int:
        """Apply one update statement to the transaction's documents; the count of targets."""
        targets = self._targets(txn, self._run(txn, stmt.target, variables))
        sources: list[list[tuple[str, str]]] = []
        if stmt.action == "insert":
            assert stmt.source is not None
            sources = [self._pieces(self._run(txn, stmt.source, variables))]
        elif stmt.action == "replace":
            assert stmt.source is not None and stmt.variable is not None
            declared = f"declare variable ${stmt.variable} external; {stmt.source}"
            value = self._run(txn, stmt.target, variables)
            for i in range(value.size):
                got = self._run(txn, declared, variables, {stmt.variable: value.item_at(i)})
                sources.append(self._pieces(got))
        by_doc: dict[str, list[int]] = {}
        for name, pos in targets:
            by_doc.setdefault(name, []).append(pos)
        for name, positions in by_doc.items():
            doc = txn.document(name)
            assert doc is not None
            ids = list(
                self.server.node_ids(doc)
                or range(doc.first_node_id, doc.first_node_id + doc.node_count)
            )
            content = self._content(txn, name)
            if not content:  # CREATE DOCUMENT's empty document: only insert into it
                filled = _update.fill_empty(stmt, sources)
                content, fresh, next_id = _update.apply(filled, [("doc",)], ids, doc.next_node_id)
                txn.writes[name] = Pending(_updated(doc, content, fresh, next_id), content)
                continue
            tree = parse_tree(content)
            before = handles(tree)
            aliases: dict[Any, Any] = {}
            for pos in positions:
                handle = before[pos]
                if stmt.action in ("delete", "delete_undeep"):
                    _update.delete(handle, undeep=stmt.action == "delete_undeep")
                elif stmt.action == "insert":
                    assert stmt.where is not None
                    _update.insert(_update.fragment(sources[0]), handle, stmt.where)
                elif stmt.action == "replace":
                    pieces = _update.fragment(sources[targets.index((name, pos))])
                    if handle[0] != "node":
                        raise Invalid("UPDATE replace works on elements, comments and PIs.")
                    _update.insert(pieces, handle, "following")
                    _update.delete(handle)
                else:
                    assert stmt.name is not None
                    el = handle[1] if handle[0] != "doc" else None
                    nsmap = dict(el.nsmap) if el is not None and hasattr(el, "nsmap") else {}
                    old_key = handle
                    _update.rename(handle, stmt.name, nsmap)
                    if handle[0] == "attr":
                        prefix, _, local = stmt.name.rpartition(":")
                        clark = f"{{{nsmap[prefix]}}}{local}" if prefix else local
                        aliases[("attr", handle[1], clark)] = old_key
            content, fresh, next_id = _update.apply(tree, before, ids, doc.next_node_id, aliases)
            txn.writes[name] = Pending(_updated(doc, content, fresh, next_id), content)
        return len(targets)

    def _result(self, result_id: str) -> tuple[Transaction, Result]:
        for txn in [*([self.txn] if self.txn else []), *reversed(self.recent.values())]:
            if result_id in txn.results:
                return txn, txn.results[result_id]
        raise SessionGone("Result not found: it ended with its transaction, or was closed.")

    @engine.saxon_bound
    def items(self, result_id: str, offset: int, count: int, portion: int) -> dict[str, Any]:
        txn, result = self._result(result_id)
        return self._items(txn, result, offset, count, portion)

    @engine.saxon_bound
    def close_result(self, result_id: str) -> None:
        txn, result = self._result(result_id)
        del txn.results[result.id]

    def _items(
        self, txn: Transaction, result: Result, offset: int, count: int, portion: int
    ) -> dict[str, Any]:
        portion = max(256, min(portion, MAX_PORTION))
        end = min(result.size, offset + max(1, count))
        picked = [result.value.item_at(i) for i in range(offset, end)]
        nodes = [(i, it) for i, it in enumerate(picked) if it.is_node]
        oids: dict[int, str] = {}
        if nodes:
            gids = engine.generate_ids([it for _, it in nodes])
            few: list[tuple[int, PyXdmItem, Entry]] = []  # stored, their trees not indexed
            for (i, it), gid in zip(nodes, gids, strict=True):
                entry = self._entry_for(txn, gid, it)
                if (
                    len(nodes) <= _FEW_ITEMS
                    and entry.doc is not None
                    and not entry.tree.indexed
                    and it.get_node_value().node_kind != 2  # attributes: the index
                ):
                    few.append((i, it, entry))
                else:
                    oids[i] = entry.oid(gid, txn.serial)
            if few:
                positions = engine.document_positions([it for _, it, _ in few])
                for (i, _, entry), pos in zip(few, positions, strict=True):
                    oids[i] = entry.oid_at(pos)
        out: list[dict[str, Any]] = []
        records: list[dict[str, Any]] = []
        budget = portion
        for i, item in enumerate(picked):
            if item.is_atomic:
                atom = _atom(item)
                out.append({"atom": atom})
                budget -= len(atom["value"]) + 40
            else:
                node = item.get_node_value()
                out.append({"oid": oids[i], "kind": _KINDS.get(node.node_kind, "element")})
                if not records:
                    records = self._first_portion(txn, oids[i], node, budget)
                    budget -= sum(len(str(r)) for r in records)
            if budget <= 0:
                break
        return {"offset": offset, "items": out, "records": records, "next": offset + len(out)}

    def _entry_for(self, txn: Transaction, gid: str, item: PyXdmItem) -> Entry:
        docnum = engine.tree_of(gid)
        entry = txn.entries.get(docnum)
        if entry is None:
            root = (
                engine.evaluate("declare variable $n external; root($n)", {"n": item})
                .item_at(0)
                .get_node_value()
            )
            entry = Entry(engine.Tree(root), None)
            txn.entries[entry.tree.docnum] = entry
            txn.entries[docnum] = entry
        return entry

    # --- node records ---------------------------------------------------------------------

    def _portion(
        self, txn: Transaction, node: PyXdmNode, budget: int, scope: str = "following"
    ) -> list[dict[str, Any]]:
        """Records while ``budget`` bytes allow: the node's, then (``following``) the nodes
        after it in document order, its subtree first, or (``siblings``) the siblings after
        it first, as a walk through ``children()`` reads them."""
        limit = max(1, budget // _RECORD_GUESS)
        if scope == "siblings":
            raw = engine.records(engine.siblings(node, max(1, limit // 2)), MAX_STRING)
            if len(raw) < limit:
                seen = {r["id"] for r in raw}
                after = engine.records(engine.following(node, limit - len(raw)), MAX_STRING)
                raw += [r for r in after if r["id"] not in seen]
        else:
            raw = engine.records(engine.following(node, limit), MAX_STRING)
        out: list[dict[str, Any]] = []
        used = 0
        for rec in raw:
            wire = self._wire(txn, rec)
            used += _size(wire)
            if out and used > budget:
                break
            out.append(wire)
        return out

    def _wire(self, txn: Transaction, raw: dict[str, Any]) -> dict[str, Any]:
        entry = txn.entries[engine.tree_of(raw["id"])]

        def oid(gid: str | None) -> str | None:
            return entry.oid(gid, txn.serial) if gid else None

        me = oid(raw["id"])
        assert me is not None
        kind = raw["k"]
        name = None
        if kind in ("element", "attribute"):
            name = {"ns": raw["ns"], "local": raw["ln"], "prefix": raw["px"]}
        elif kind == "processing-instruction":
            name = {"ns": "", "local": raw["ln"], "prefix": ""}
        prefixes = raw.get("nsp") or []
        return {
            "oid": me,
            "kind": kind,
            "name": name,
            "base_uri": raw["bu"] or None,
            "type": _TYPES.get(kind, ""),
            "string_value": raw["sv"],
            "string_length": raw["sl"],
            "parent": oid(raw["p"]),
            "first_child": oid(raw["fc"]),
            "next_sibling": oid(raw["nx"]),
            "first_attribute": oid(raw["fa"]),
            "first_namespace": f"{me}~{prefixes[0]}" if prefixes else None,
        }

    def _first_portion(
        self, txn: Transaction, oid: str, node: PyXdmNode, budget: int
    ) -> list[dict[str, Any]]:
        """The portion a query answer ships (on Saxon's thread): from the document's node
        table; while the table is still being built (on its own thread) through Saxon if the
        tree is indexed already, else after waiting for the table (indexing the tree for
        Saxon's records would take longer than the build)."""
        stored = None if oid.startswith("t") else self._stored_node(oid)
        if stored is not None:
            _, doc, pos, _ = stored
            table = self._table(txn, doc, wait=not self._tree(txn, doc.name).indexed)
            if table is not None:
                return self._table_portion(doc, table, pos, budget, "following")
        return self._portion(txn, node, budget)

    def node(
        self, oid: str, portion: int = DEFAULT_PORTION, scope: str = "following"
    ) -> list[dict[str, Any]]:
        """Records as ``portion`` bytes hold: the node's, then those after it in document
        order (``following``, its subtree first) or its next siblings first (``siblings``).
        A stored document's nodes come from its node table, off Saxon's thread."""
        portion = max(256, min(portion, MAX_PORTION))
        stored = self._stored_node(oid)
        if stored is None:
            return engine.on_saxon_thread(lambda: self._saxon_node(oid, portion, scope))
        txn, doc, pos, prefix = stored
        table = self._table(txn, doc, wait=True)
        assert table is not None
        if prefix is not None:
            return [self._table_namespace(doc, table, pos, prefix)]
        return self._table_portion(doc, table, pos, portion, scope)

    def _saxon_node(self, oid: str, portion: int, scope: str) -> list[dict[str, Any]]:
        txn, base, prefix = self._resolve(oid)
        if prefix is not None:
            return [self._namespace_record(txn, oid, base, prefix)]
        return self._portion(txn, base, portion, scope)

    def node_string(self, oid: str, offset: int, length: int) -> str:
        length = min(length, MAX_PORTION)
        stored = self._stored_node(oid)
        if stored is None:
            return engine.on_saxon_thread(lambda: self._saxon_string(oid, offset, length))
        txn, doc, pos, prefix = stored
        table = self._table(txn, doc, wait=True)
        assert table is not None
        if prefix is not None:
            value: str = self._table_namespace(doc, table, pos, prefix)["string_value"]
            return value[offset : offset + length]
        return table.string_part(pos, offset, length)

    def _saxon_string(self, oid: str, offset: int, length: int) -> str:
        txn, node, prefix = self._resolve(oid)
        if prefix is not None:
            value: str = self._namespace_record(txn, oid, node, prefix)["string_value"]
            return value[offset : offset + length]
        return engine.string_part(node, offset, length)

    # --- node records from a node table (no Saxon) ----------------------------------------

    def _table(self, txn: Transaction, doc: DocRef, *, wait: bool) -> _nodes.NodeTable | None:
        """The node table of the document version ``txn`` sees (None: being built)."""
        pending = txn.writes.get(doc.name)
        if pending is not None and pending.content is not None:
            content = pending.content
            return self.server.tables.get(doc, lambda: content, saved=False, wait=wait)
        return self.server.tables.get(
            doc, lambda: self.server.blobs.read_bytes(doc.sha256), saved=True, wait=wait
        )

    def _table_portion(
        self, doc: DocRef, table: _nodes.NodeTable, pos: int, budget: int, scope: str
    ) -> list[dict[str, Any]]:
        """As :meth:`_portion`, read from the table: the order is a slice of positions."""
        ids = self.server.node_ids(doc)
        first = doc.first_node_id

        def oid(p: int) -> str:
            return f"{doc.id}.{ids[p] if ids is not None else first + p}"

        def order() -> Any:
            if pos >= table.tree_size:  # an attribute: the rest of its element's, then on
                owner = table.parent[pos]
                yield from range(pos, table.tree_size + table.attrs[owner + 1])
                start = owner + 1
            else:
                start = pos
                if scope == "siblings":
                    sib: int | None = pos
                    for _ in range(max(1, budget // _RECORD_GUESS) // 2):
                        if sib is None:
                            break
                        yield from table.with_attributes(sib)
                        sib = table.next_sibling(sib)
            for p in range(start, table.tree_size):
                yield from table.with_attributes(p)

        out: list[dict[str, Any]] = []
        seen: set[int] = set()
        used = 0
        for p in order():
            if p in seen:
                continue
            seen.add(p)
            wire = _table_record(table, p, oid)
            used += _size(wire)
            if out and used > budget:
                break
            out.append(wire)
        return out

    def _table_namespace(
        self, doc: DocRef, table: _nodes.NodeTable, pos: int, prefix: str
    ) -> dict[str, Any]:
        ids = self.server.node_ids(doc)
        parent = f"{doc.id}.{ids[pos] if ids is not None else doc.first_node_id + pos}"
        pairs = table.namespaces(pos)
        order = [p for p, _ in pairs]
        if prefix not in order:
            raise SessionGone("Namespace node not found.")
        nxt = order.index(prefix) + 1
        after = order[nxt] if nxt < len(order) else None
        return _namespace_wire(f"{parent}~{prefix}", parent, pairs[nxt - 1][1], after)

    def _namespace_record(
        self, txn: Transaction, oid: str, element: PyXdmNode, prefix: str
    ) -> dict[str, Any]:
        parent = oid.rsplit("~", 1)[0]
        pairs = engine.evaluate_string(
            "declare variable $e external; string-join(for $p in in-scope-prefixes($e) return "
            "($p || '=' || namespace-uri-for-prefix($p, $e)), ' ')",
            {"e": element},
        ).split(" ")
        found = dict(p.split("=", 1) for p in pairs if "=" in p)
        if prefix not in found:
            raise SessionGone("Namespace node not found.")
        order = list(found)
        nxt = order.index(prefix) + 1
        after = order[nxt] if nxt < len(order) else None
        return _namespace_wire(oid, parent, found[prefix], after)

    def _resolve(self, oid: str) -> tuple[Transaction, PyXdmNode, str | None]:
        base, sep, prefix = oid.partition("~")
        if base.startswith("t"):
            serial_text, _, gid = base[1:].partition(".")
            if not serial_text.isdigit():
                raise SessionGone("Not a node OID.")
            txn = self._view(int(serial_text))
            entry = txn.entries.get(engine.tree_of(gid))
            if entry is None or entry.doc is not None:
                raise SessionGone("Node not found in this transaction.")
            try:
                pos = entry.tree.position(gid)
            except KeyError:
                raise SessionGone("Node not found in this transaction.") from None
            return txn, entry.tree.node_at(pos), (prefix if sep else None)
        found = self._stored_node(oid)
        assert found is not None
        txn, doc, at, prefix_or_none = found
        tree = self._tree(txn, doc.name)
        return txn, tree.node_at(at), prefix_or_none

    def _stored_node(self, oid: str) -> tuple[Transaction, DocRef, int, str | None] | None:
        """A stored node's transaction, document version and canonical position (and a
        namespace node's prefix), touching no Saxon object; None for a constructed node."""
        base, sep, prefix = oid.partition("~")
        if base.startswith("t"):
            return None
        doc_id, _, node_text = base.rpartition(".")
        if not node_text.isdigit() or not doc_id:
            raise SessionGone("Not a node OID.")
        node_id = int(node_text)
        txn = self._view()
        doc = next((d for n in txn.names() if (d := txn.document(n)) and d.id == doc_id), None)
        if doc is None:
            known = txn.snapshot.documents.values()
            if any(d.id == doc_id for d in known):
                raise NodeDeleted("Node deleted: its document was deleted in this transaction.")
            raise SessionGone("Node not found.")
        at = self.server.position(doc, node_id)
        if at is None:
            if 0 < node_id < doc.next_node_id:
                raise NodeDeleted(f"Node deleted: node {node_id} of {doc.name!r} no longer exists.")
            raise SessionGone("Node not found.")
        return txn, doc, at, (prefix if sep else None)

    @engine.saxon_bound
    def close(self) -> None:
        self.txn = None
        self.recent.clear()


def service_conflict(name: str) -> Exception:
    from cairn.errors import Conflict

    return Conflict(f"A document named {name!r} already exists; replace it instead.")


def _updated(doc: DocRef, content: bytes, ids: list[int], next_id: int) -> DocRef:
    """``doc`` after an update: its new bytes and node ids (kept beside it once moved)."""
    return dataclasses.replace(
        doc,
        sha256=_sha256(content),
        size=len(content),
        node_count=len(ids),
        first_node_id=ids[0],
        next_node_id=next_id,
        node_ids=tuple(ids),
        node_ids_sha256=None,
        records_sha256=None,
    )


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _constant(content: bytes) -> Callable[[], bytes]:
    return lambda: content


def _namespace_wire(oid: str, parent: str, uri: str, next_prefix: str | None) -> dict[str, Any]:
    return {
        "oid": oid,
        "kind": "namespace",
        "name": None,
        "base_uri": None,
        "type": "",
        "string_value": uri,
        "string_length": len(uri),
        "parent": parent,
        "first_child": None,
        "next_sibling": f"{parent}~{next_prefix}" if next_prefix is not None else None,
        "first_attribute": None,
        "first_namespace": None,
    }


def _table_record(table: _nodes.NodeTable, pos: int, oid: Callable[[int], str]) -> dict[str, Any]:
    """The record of the node at ``pos``, as :meth:`XmlSession._wire` makes it from Saxon."""
    kind = _nodes.KIND_NAMES[table.kind[pos]]
    name = None
    if table.name[pos] >= 0:
        ns, local, prefix = table.names[table.name[pos]]
        name = {"ns": ns, "local": local, "prefix": prefix}
    length = table.string_length(pos)
    parent = table.parent[pos]
    child = table.first_child(pos)
    sibling = table.next_sibling(pos)
    attribute = table.first_attribute(pos)
    me = oid(pos)
    namespaces = table.namespaces(pos)
    return {
        "oid": me,
        "kind": kind,
        "name": name,
        "base_uri": table.bases[table.base[pos]] or None,
        "type": _TYPES.get(kind, ""),
        "string_value": table.string_value(pos) if length <= MAX_STRING else None,
        "string_length": length,
        "parent": oid(parent) if parent >= 0 else None,
        "first_child": oid(child) if child is not None else None,
        "next_sibling": oid(sibling) if sibling is not None else None,
        "first_attribute": oid(attribute) if attribute is not None else None,
        "first_namespace": f"{me}~{namespaces[0][0]}" if namespaces else None,
    }


def _size(record: dict[str, Any]) -> int:
    return 120 + sum(len(v) for v in record.values() if isinstance(v, str))


@functools.cache
def _empty_map() -> Any:
    """One empty map for every statement (made once: a query compile each time cost as much
    as a simple XMark query). Only ever used on Saxon's thread, where it was made."""
    return engine.evaluate("map{}").item_at(0)


_KINDS = {
    1: "element",
    2: "attribute",
    3: "text",
    7: "processing-instruction",
    8: "comment",
    9: "document",
    13: "namespace",
}
_TYPES = {"element": "no-type", "attribute": "no-type", "text": "untypedAtomic"}
_XS = "Q{http://www.w3.org/2001/XMLSchema}"


def _atom(item: PyXdmItem) -> dict[str, str]:
    atomic = item.get_atomic_value()
    type_name = str(atomic.primitive_type_name)
    if type_name.startswith(_XS):
        type_name = "xs:" + type_name[len(_XS) :]
    return {"type": type_name, "value": str(atomic.string_value)}


def _variable_name(name: str) -> str:
    if not name or not all(c.isalnum() or c in "_-." for c in name) or name[0].isdigit():
        raise Invalid(f"Not an external variable name: {name!r}.")
    if name in (DOCS_VAR, COLLS_VAR, INDEX_KEYS_VAR, INDEX_TYPES_VAR) or name.startswith(
        (JOIN_VAR_PREFIX, DOC_VAR_PREFIX)
    ):
        raise Invalid(f"{name!r} is reserved.")
    return name


def _atomic(value: Any) -> Any:
    proc = engine.processor()
    if isinstance(value, bool):
        return proc.make_boolean_value(value)
    if isinstance(value, int):
        return proc.make_integer_value(value)
    if isinstance(value, float):
        return proc.make_double_value(value)
    if isinstance(value, str):
        return proc.make_string_value(value)
    raise Invalid("External variables take a string, number or boolean.")


class XmlServer:
    """The process's sessions over one database and blob store."""

    def __init__(
        self,
        uow: UnitOfWork,
        blobs: BlobStore,
        cache_bytes: int = 512 << 20,
        *,
        idle_timeout: float = 1800.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.uow = uow
        self.blobs = blobs
        self.trees = TreeCache(blobs, cache_bytes)
        self.tables = NodeTables(uow, blobs)
        self.snapshots: dict[str, Snapshot] = {}  # the last read, by database id
        self.snapshot_reads = 0
        self.indexes = _indexes.IndexCache()
        self.idle_timeout = idle_timeout
        self.clock = clock
        self._sessions: dict[str, XmlSession] = {}
        self._expired: OrderedDict[str, None] = OrderedDict()  # ids closed for idling, recent
        self._lock = threading.Lock()
        self._ids: dict[str, tuple[tuple[int, ...], dict[int, int]]] = {}
        self._positions: dict[int, tuple[tuple[int, ...], dict[int, int]]] = {}

    def preload(self) -> None:
        """Parse the stored documents while they fit the tree cache, and read their node
        tables back: after a restart the first query needs no parse. One document per job on
        Saxon's thread, so that statements run between them."""
        with self.uow.read() as session:
            snapshots = service.read_snapshots(session)
        docs = [doc for snap in snapshots for doc in snap.documents.values()]
        room = self.trees.max_bytes
        for snap in snapshots:
            self.snapshots.setdefault(snap.database_id, snap)
        for doc in docs:
            if doc.size > room:
                continue
            room -= doc.size
            content = functools.partial(self.blobs.read_bytes, doc.sha256)
            self.tables.get(doc, content, saved=True, wait=False)
            try:
                engine.on_saxon_thread(functools.partial(self.trees.get, doc))
            except Exception:  # a document that fails here fails again, clearly, in its query
                logger.warning("Preloading XML document %s failed.", doc.id, exc_info=True)

    def node_ids(self, doc: DocRef) -> tuple[int, ...] | None:
        """The document's node ids in canonical order, or None for first + position."""
        if doc.node_ids is not None:
            return doc.node_ids
        if doc.node_ids_sha256 is None:
            return None
        with self._lock:
            found = self._ids.get(doc.node_ids_sha256)
        if found is None:
            packed = array("q")
            packed.frombytes(self.blobs.read_bytes(doc.node_ids_sha256))
            found = (tuple(packed), {})
            with self._lock:
                self._ids[doc.node_ids_sha256] = found
                while len(self._ids) > 64:
                    self._ids.pop(next(iter(self._ids)))
        return found[0]

    def position(self, doc: DocRef, node_id: int) -> int | None:
        """Where node ``node_id`` is in the document, or None when it is not there."""
        ids = self.node_ids(doc)
        if ids is None:
            pos = node_id - doc.first_node_id
            return pos if 0 <= pos < doc.node_count else None
        # Keyed by the id of the tuple, which the cache holds (so the id cannot be reused).
        key = id(ids)
        with self._lock:
            cached = self._positions.get(key)
        if cached is None or cached[0] is not ids:
            cached = (ids, {node: pos for pos, node in enumerate(ids)})
            with self._lock:
                self._positions[key] = cached
                while len(self._positions) > 64:
                    self._positions.pop(next(iter(self._positions)))
        index = cached[1]
        return index.get(node_id)

    def workspace_file(self, actor: Actor, workspace_id: int, path: str) -> bytes:
        """A file of a workspace the actor may read (another's answers 404), as bytes; its
        download is noted in the workspace's log, as any download is."""
        with self.uow.transaction() as session:
            found = workspaces.file_download(session, actor, workspace_id, path).file
        if found.size > MAX_DOCUMENT:
            raise TooLarge(f"{path!r} is over {MAX_DOCUMENT >> 20} MiB, the largest document.")
        return self.blobs.read_bytes(found.sha256)

    def open_session(self, actor: Actor, database: str) -> XmlSession:
        with self.uow.transaction() as session:
            db = service.ensure_database(session, actor, database)
            db_id, org_id = db.id, db.organisation_id
        self.close_idle()
        with self._lock:
            mine = [s for s in self._sessions.values() if s.user_id == actor.id]
            if len(mine) >= MAX_SESSIONS_PER_USER:
                raise TooLarge(f"At most {MAX_SESSIONS_PER_USER} open sessions; close one.")
            xs = XmlSession(self, actor, db_id, org_id)
            self._sessions[xs.id] = xs
        return xs

    def session(self, actor: Actor, session_id: str) -> XmlSession:
        """The caller's own session; anyone else's, or one lost in a restart, is not found."""
        self.close_idle()
        found = self._sessions.get(session_id)
        if found is None and session_id in self._expired:
            minutes = self.idle_timeout / 60
            raise SessionGone(
                f"Session closed after {minutes:g} minutes without a request; its open "
                "transaction was rolled back, nothing of it applied. Open a new session."
            )
        if found is None or found.user_id != actor.id:
            raise SessionGone(
                "Session not found: it was closed, or the server restarted (an open "
                "transaction was then rolled back, nothing of it applied)."
            )
        if found.organisation_id not in actor.privileges:
            raise NotFound("Organisation not found.")
        found.actor = actor
        found.last_used = self.clock()
        return found

    def close_idle(self) -> int:
        """Close the sessions idle longer than ``idle_timeout`` (rolling back their open
        transactions, as a close does); how many were closed."""
        now = self.clock()
        with self._lock:
            idle = [s for s in self._sessions.values() if now - s.last_used > self.idle_timeout]
            for xs in idle:
                self._sessions.pop(xs.id, None)
                self._expired[xs.id] = None
            while len(self._expired) > 4096:
                self._expired.popitem(last=False)
        for xs in idle:
            with xs.lock:
                xs.close()
            engine.release(xs)
        return len(idle)

    def close_session(self, actor: Actor, session_id: str) -> None:
        xs = self.session(actor, session_id)
        with self._lock:
            self._sessions.pop(xs.id, None)
        xs.close()
        engine.release(xs)
