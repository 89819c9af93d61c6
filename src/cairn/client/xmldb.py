"""The XML database's navigational client: the Sedna API (Rekouts 2004) in Python names.

>>> from cairn.client.xmldb import connect
>>> with connect("http://127.0.0.1:8000", "My Lab", "me@example.org", "...") as con:
...     con.begin()
...     seq = con.create_statement().execute_query('doc("persons")/*/person')
...     for item in seq:
...         print(item.as_node().node_name())
...     con.commit()

A ``Node`` holds only its OID and reads its record through the connection's cache object
table (:class:`NodeCache`), fetching from the server on a miss; it behaves the same whether
its record is cached or was evicted. The cache is least-recently-used with a limit in objects
(and optionally bytes) and is flushed at commit and rollback: intra-transaction caching, as
the paper describes.
"""

from __future__ import annotations

import functools
import math
import sys
import weakref
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from cairn import errors
from cairn.client._client import DEFAULT_TIMEOUT, Client
from cairn.xmldb import errors as xml_errors

__all__ = [
    "Atom",
    "AtomType",
    "Connection",
    "DatabaseManager",
    "Item",
    "ItemType",
    "Node",
    "NodeCache",
    "NodeType",
    "QName",
    "Sequence",
    "Statement",
    "XmlDatabases",
    "connect",
    "xml_errors",
]

DEFAULT_CACHE_OBJECTS = 10_000
DEFAULT_PORTION = 64 * 1024
DEFAULT_BATCH = 100
_INTEGERS = {
    "xs:integer",
    "xs:long",
    "xs:int",
    "xs:short",
    "xs:byte",
    "xs:nonNegativeInteger",
    "xs:positiveInteger",
    "xs:nonPositiveInteger",
    "xs:negativeInteger",
    "xs:unsignedLong",
    "xs:unsignedInt",
    "xs:unsignedShort",
    "xs:unsignedByte",
}


# --- types, atoms, names ---------------------------------------------------------------------


@dataclass(frozen=True)
class ItemType:
    """What an item is: an :class:`AtomType` or a :class:`NodeType`."""


@dataclass(frozen=True)
class AtomType(ItemType):
    name: str  # the XML Schema type, e.g. "xs:integer"

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class NodeType(ItemType):
    kind: str  # one of the seven node kinds

    def __str__(self) -> str:
        return self.kind


@dataclass(frozen=True, eq=False)
class QName:
    """A namespace URI and a local name; equal to another QName with both the same, and to a
    plain string naming a local name in no namespace (``"nick"``) or in Clark form
    (``"{uri}local"``)."""

    namespace_uri: str
    local_name: str
    prefix: str = ""

    def __eq__(self, other: object) -> bool:
        if isinstance(other, QName):
            return (self.namespace_uri, self.local_name) == (other.namespace_uri, other.local_name)
        if isinstance(other, str):
            return other in (self.local_name if not self.namespace_uri else None, self.clark)
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.namespace_uri, self.local_name))

    @property
    def clark(self) -> str:
        return (
            f"{{{self.namespace_uri}}}{self.local_name}" if self.namespace_uri else self.local_name
        )

    def __str__(self) -> str:
        return f"{self.prefix}:{self.local_name}" if self.prefix else self.local_name


def _python_value(type_name: str, lexical: str) -> Any:
    if type_name in _INTEGERS:
        return int(lexical)
    if type_name == "xs:decimal":
        return Decimal(lexical)
    if type_name in ("xs:double", "xs:float"):
        return {"INF": math.inf, "-INF": -math.inf, "NaN": math.nan}.get(lexical) or float(lexical)
    if type_name == "xs:boolean":
        return lexical in ("true", "1")
    return lexical


class Item:
    """One item of a sequence: a node or an atomic value."""

    item_type: ItemType

    def is_node(self) -> bool:
        return isinstance(self, Node)

    def as_node(self) -> Node:
        if not isinstance(self, Node):
            raise errors.Invalid("This item is an atomic value, not a node.")
        return self

    def as_atom(self) -> Atom:
        raise NotImplementedError


class Atom(Item):
    """An atomic value: ``value`` in Python terms, ``atom_type``, and ``str()`` = the cast to
    xs:string."""

    def __init__(self, type_name: str, lexical: str) -> None:
        self.atom_type = AtomType(type_name)
        self.item_type = self.atom_type
        self._lexical = lexical
        self.value = _python_value(type_name, lexical)

    def as_atom(self) -> Atom:
        return self

    def __str__(self) -> str:
        return self._lexical

    def __repr__(self) -> str:
        return f"Atom({self.atom_type.name}, {self._lexical!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Atom):
            return (self.atom_type, self._lexical) == (other.atom_type, other._lexical)
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.atom_type, self._lexical))


# --- the cache object table ------------------------------------------------------------------


class NodeCache:
    """OID → node record, least recently used first out, at most ``max_objects`` records (and
    ``max_bytes`` of them, when set). Counters: ``hits``, ``misses``, ``evictions``,
    ``bytes_fetched``. Chosen over the paper's usage counter because an LRU list needs no scan
    to find its victim and keeps what navigation is about to revisit."""

    def __init__(self, max_objects: int = DEFAULT_CACHE_OBJECTS, max_bytes: int | None = None):
        if max_objects < 1:
            raise errors.Invalid("The cache holds at least one object.")
        self.max_objects = max_objects
        self.max_bytes = max_bytes
        self._records: OrderedDict[str, tuple[_Record, int]] = OrderedDict()
        self._bytes = 0
        self.hits = self.misses = self.evictions = self.bytes_fetched = 0

    def __len__(self) -> int:
        return len(self._records)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def lookup(self, oid: str) -> _Record | None:
        found = self._records.get(oid)
        if found is None:
            self.misses += 1
            return None
        self.hits += 1
        self._records.move_to_end(oid)
        return found[0]

    def put(self, record: dict[str, Any]) -> _Record:
        """Keep a record as the server sent it (compacted); the kept form."""
        oid = record["oid"]
        size = _record_size(record)
        old = self._records.pop(oid, None)
        if old is not None:
            self._bytes -= old[1]
        kept = _Record(record)
        self._records[oid] = (kept, size)
        self._bytes += size
        while len(self._records) > self.max_objects or (
            self.max_bytes is not None and self._bytes > self.max_bytes and len(self._records) > 1
        ):
            _, (_, gone) = self._records.popitem(last=False)
            self._bytes -= gone
            self.evictions += 1
        return kept

    def flush(self) -> None:
        self._records.clear()
        self._bytes = 0


def _record_size(record: dict[str, Any]) -> int:
    return 120 + sum(len(v) for v in record.values() if isinstance(v, str))


@functools.lru_cache(maxsize=4096)
def _qname(namespace_uri: str, local_name: str, prefix: str) -> QName:
    return QName(namespace_uri, local_name, prefix)


class _Record:
    """A node record as the cache keeps it: slots instead of a dict, names as shared QNames,
    kinds, types and base URIs as interned strings (a tenth of the dict's memory)."""

    __slots__ = (
        "base_uri",
        "first_attribute",
        "first_child",
        "first_namespace",
        "kind",
        "name",
        "next_sibling",
        "oid",
        "parent",
        "string_length",
        "string_value",
        "type",
    )

    def __init__(self, raw: dict[str, Any]) -> None:
        name = raw["name"]
        base = raw["base_uri"]
        self.oid: str = raw["oid"]
        self.kind: str = sys.intern(raw["kind"])
        self.name: QName | None = (
            _qname(name["ns"], name["local"], name.get("prefix") or "") if name else None
        )
        self.base_uri: str | None = sys.intern(base) if base is not None else None
        self.type: str = sys.intern(raw["type"])
        self.string_value: str | None = raw["string_value"]
        self.string_length: int = raw["string_length"]
        self.parent: str | None = raw["parent"]
        self.first_child: str | None = raw["first_child"]
        self.next_sibling: str | None = raw["next_sibling"]
        self.first_attribute: str | None = raw["first_attribute"]
        self.first_namespace: str | None = raw["first_namespace"]


# --- nodes -----------------------------------------------------------------------------------


class Node(Item):
    """A node: its OID and nothing else; every accessor reads the record through the cache."""

    def __init__(self, connection: Connection, oid: str) -> None:
        self._con = connection
        self.oid = oid

    def __repr__(self) -> str:
        return f"Node({self.oid!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Node) and other.oid == self.oid and other._con is self._con

    def __hash__(self) -> int:
        return hash(self.oid)

    def _record(self) -> _Record:
        return self._con._record(self.oid)

    @property
    def item_type(self) -> NodeType:  # type: ignore[override]
        return NodeType(self.node_kind())

    def as_atom(self) -> Atom:
        """The node's atomized value (``fn:data``): its typed value as one atom."""
        kind = self.node_kind()
        type_name = "xs:untypedAtomic" if kind in _UNTYPED else "xs:string"
        return Atom(type_name, self.string_value())

    def base_uri(self) -> str | None:
        """base-uri: the value, or None for the empty sequence."""
        return self._record().base_uri

    def node_kind(self) -> str:
        return self._record().kind

    def node_name(self) -> QName | None:
        """node-name: element and attribute names, a processing instruction's target; None
        (the empty sequence) for the other kinds."""
        return self._record().name

    def parent(self) -> Node | None:
        oid = self._record().parent
        return Node(self._con, oid) if oid else None

    def string_value(self) -> str:
        record = self._record()
        if record.string_value is not None:
            return record.string_value
        return self._con._long_string(self.oid, record.string_length)

    def typed_value(self) -> Sequence:
        """typed-value: a sequence of atomic values (one, since cairn stores documents
        untyped)."""
        return Sequence.of(self._con, [self.as_atom()])

    def type(self) -> str:
        """The type name as the Sedna API defines it: "no-type" for elements and attributes
        (stored untyped), "untypedAtomic" for text, "" for the other kinds."""
        return self._record().type

    def children(self) -> Sequence:
        return _LinkSequence(self._con, self._record().first_child, "siblings")

    def attributes(self) -> Sequence:
        return _LinkSequence(self._con, self._record().first_attribute)

    def namespaces(self) -> Sequence:
        return _LinkSequence(self._con, self._record().first_namespace)


_UNTYPED = {"document", "element", "attribute", "text"}


# --- sequences -------------------------------------------------------------------------------


class Sequence:
    """A cursor over items, positioned before the first: ``next()`` moves on and says whether
    there is an item, ``get_item()`` gives it. Iterating yields the remaining items."""

    def __init__(self, connection: Connection) -> None:
        self._con = connection
        self._current: Item | None = None
        self._closed = False
        connection._sequences.add(self)

    @staticmethod
    def of(connection: Connection, items: list[Item]) -> Sequence:
        return _ListSequence(connection, items)

    def next(self) -> bool:
        if self._closed:
            raise errors.Invalid("This sequence is closed (its connection or transaction ended).")
        self._current = self._advance()
        return self._current is not None

    def get_item(self) -> Item:
        if self._current is None:
            raise errors.Invalid("No current item: call next() first, and check it said True.")
        return self._current

    def __iter__(self) -> Iterator[Item]:
        while self.next():
            yield self.get_item()

    def close(self) -> None:
        self._closed = True

    def _advance(self) -> Item | None:
        raise NotImplementedError


class _ListSequence(Sequence):
    def __init__(self, connection: Connection, items: list[Item]) -> None:
        super().__init__(connection)
        self._items = iter(items)

    def _advance(self) -> Item | None:
        return next(self._items, None)


class _LinkSequence(Sequence):
    """Children, attributes or namespaces: a chain of next-sibling links, walked lazily.
    For children, a miss fetches that child and the siblings after it in one request."""

    def __init__(self, connection: Connection, first: str | None, scope: str = "following"):
        super().__init__(connection)
        self._next = first
        self._scope = scope

    def _advance(self) -> Item | None:
        if self._next is None:
            return None
        node = Node(self._con, self._next)
        self._next = self._con._record(node.oid, self._scope).next_sibling
        return node


class _ResultSequence(Sequence):
    """A query's result: items fetched from the server cursor in batches."""

    def __init__(self, connection: Connection, answer: dict[str, Any]) -> None:
        super().__init__(connection)
        self.result_id: str = answer["result_id"]
        self.size: int = answer["size"]
        self._buffer: list[Item] = []
        self._next_offset = 0
        self._take(answer)

    def __len__(self) -> int:
        return self.size

    def _take(self, portion: dict[str, Any]) -> None:
        for record in portion["records"]:
            self._con.cache.put(record)
        self._buffer = [self._con._item(raw) for raw in portion["items"]]
        self._buffer.reverse()
        self._next_offset = portion["next"]

    def _advance(self) -> Item | None:
        if not self._buffer and self._next_offset < self.size:
            self._take(
                self._con._get(
                    f"/results/{self.result_id}/items",
                    params={
                        "offset": self._next_offset,
                        "count": self._con.batch,
                        "portion": self._con.portion,
                    },
                )
            )
        return self._buffer.pop() if self._buffer else None


# --- statements and connections --------------------------------------------------------------


class Statement:
    """Runs queries in its connection's session (and transaction, when one is open)."""

    def __init__(self, connection: Connection) -> None:
        self._con = connection

    def execute(self, statement: str, **variables: Any) -> dict[str, Any]:
        """Run any statement (a query, an ``UPDATE``, DDL such as ``LOAD "file" "doc"``) and
        answer the server's reply; for ``LOAD`` the file (or standard input) is sent."""
        return self._send(statement, variables, {"portion": self._con.portion})

    def execute_query_lite(self, query: str, **variables: Any) -> str:
        """The whole result serialised: nodes as XML, atoms as their string, one a line
        (empty for updates and DDL)."""
        return self._send(query, variables, {"lite": True}).get("text") or ""

    def execute_query(self, query: str, **variables: Any) -> Sequence:
        """The result as a :class:`Sequence` over a server-side cursor (empty for updates
        and DDL)."""
        return _ResultSequence(self._con, self.execute(query, **variables))

    def _send(self, text: str, variables: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
        answer = self._con._post("/statements", {"query": text, "variables": variables, **extra})
        load = answer.get("load")
        if answer.get("kind") == "load" and load:
            # Sedna's bulk load: the server asks for the bytes. Only a file this statement
            # named is read, so a server cannot ask for any other file of this machine.
            name = load["file"]
            if name is not None and name not in text:
                raise ValueError(f"The server asked for {name!r}, not named by the statement.")
            source = Path(name).expanduser() if name is not None else sys.stdin.buffer.read()
            self._con.load_document(load["document"], source, load["collection"])
        return answer

    execute_query_heavy = execute_query  # the paper's name for it


class Connection:
    """A session on one database: transactions one after another, statements, documents."""

    def __init__(
        self,
        client: Client,
        database: str,
        *,
        cache: NodeCache | None = None,
        portion: int = DEFAULT_PORTION,
        batch: int = DEFAULT_BATCH,
        owns_client: bool = False,
    ) -> None:
        self.client = client
        self.cache = cache if cache is not None else NodeCache()
        self.portion = portion
        self.batch = batch
        self._owns_client = owns_client
        self._sequences: weakref.WeakSet[Sequence] = weakref.WeakSet()
        opened = client.send_json("POST", "/api/v1/xml/sessions", {"database": database})
        self.session_id: str = opened["id"]
        self.database_id: str = opened["database_id"]
        self._base = f"/api/v1/xml/sessions/{self.session_id}"
        self.closed = False

    # plumbing
    def _get(self, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self.client.request("GET", self._base + path, **kwargs)
        self.cache.bytes_fetched += len(response.content)
        body: dict[str, Any] = response.json()
        return body

    def _post(self, path: str, body: Any = None) -> dict[str, Any]:
        response = self.client.request("POST", self._base + path, json=body)
        self.cache.bytes_fetched += len(response.content)
        return response.json() if response.content else {}

    def _record(self, oid: str, scope: str = "following") -> _Record:
        """The node's record from the cache; on a miss one request fetches it with the
        records a walk reads next: the nodes after it in document order (``following``), or
        its next siblings first (``siblings``, for ``children()``)."""
        found = self.cache.lookup(oid)
        if found is not None:
            return found
        params = {"portion": self.portion, "scope": scope}
        records: list[dict[str, Any]] = self._get(f"/nodes/{quote(oid, safe='')}", params=params)[
            "records"
        ]
        wanted = records[0]
        # The portion is in the order a walk reads it: put it in reverse, so that when it
        # holds more than the cache, what is read soonest stays (the wanted record last).
        for record in reversed(records[: self.cache.max_objects]):
            if record is not wanted:
                self.cache.put(record)
        return self.cache.put(wanted)

    def _long_string(self, oid: str, length: int) -> str:
        parts: list[str] = []
        got = 0
        while got < length:
            text = self._get(
                f"/nodes/{quote(oid, safe='')}/string",
                params={"offset": got, "length": min(self.portion, length - got)},
            )["text"]
            if not text:
                break
            parts.append(text)
            got += len(text)
        return "".join(parts)

    def _item(self, raw: dict[str, Any]) -> Item:
        if raw.get("atom") is not None:
            return Atom(raw["atom"]["type"], raw["atom"]["value"])
        return Node(self, raw["oid"])

    def _end_transaction(self) -> None:
        self.cache.flush()
        for seq in list(self._sequences):
            if isinstance(seq, _ResultSequence):
                seq.close()

    # the paper's API
    def begin(self) -> None:
        self._end_transaction()
        self._post("/begin")

    def commit(self) -> None:
        try:
            self._post("/commit")
        finally:
            self._end_transaction()

    def rollback(self) -> None:
        try:
            self._post("/rollback")
        finally:
            self._end_transaction()

    def create_statement(self) -> Statement:
        return Statement(self)

    def close(self) -> None:
        """Close the session: an open transaction rolls back; open sequences close."""
        if self.closed:
            return
        self.closed = True
        for seq in list(self._sequences):
            seq.close()
        self.cache.flush()
        try:
            self.client.request("DELETE", self._base)
        except errors.NotFound:
            pass
        finally:
            if self._owns_client:
                self.client.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # documents
    def load_document(
        self, name: str, source: str | bytes | Path, collection: str | None = None
    ) -> dict[str, Any]:
        """Load a document from a path, bytes or an XML string; its name must be new."""
        return self._post(
            "/documents", {"name": name, "content": _text(source), "collection": collection}
        )

    def load_workspace_file(
        self, name: str, workspace_id: int, path: str, collection: str | None = None
    ) -> dict[str, Any]:
        """Load a file of one of your workspaces as a new document (read on the server)."""
        body = {"name": name, "workspace_id": workspace_id, "path": path, "collection": collection}
        return self._post("/documents", body)

    def replace_document(
        self, name: str, source: str | bytes | Path, collection: str | None = None
    ) -> dict[str, Any]:
        response = self.client.request(
            "PUT",
            f"{self._base}/documents/{quote(name, safe='')}",
            json={"content": _text(source), "collection": collection},
        )
        body: dict[str, Any] = response.json()
        return body

    def delete_document(self, name: str) -> None:
        self.client.request("DELETE", f"{self._base}/documents/{quote(name, safe='')}")

    def get_document(self, name: str) -> str:
        return self.client.request("GET", f"{self._base}/documents/{quote(name, safe='')}").text

    def list_documents(self, collection: str | None = None) -> list[dict[str, Any]]:
        params = {"collection": collection} if collection else {}
        return list(self.client.paginate(f"{self._base}/documents", params, page_size=500))


def _text(source: str | bytes | Path) -> str:
    if isinstance(source, Path):
        source = source.read_bytes()
    if isinstance(source, bytes):
        # The API carries text; bytes in another encoding are decoded here.
        for encoding in ("utf-8", "utf-16"):
            try:
                return source.decode(encoding)
            except UnicodeDecodeError:
                continue
        return source.decode("latin-1")
    return source


def connect(
    url: str,
    database: str,
    user: str,
    password: str,
    *,
    http_client: httpx.Client | None = None,
    cache: NodeCache | None = None,
    portion: int = DEFAULT_PORTION,
) -> Connection:
    """Log in as ``user`` (an email or a user id) and open a session on ``database`` (one of
    the user's organisations, by id or name). A wrong password raises ``Unauthorized``."""
    client = Client(url, timeout=DEFAULT_TIMEOUT, http_client=http_client)
    key = "email" if "@" in user else "user_id"
    try:
        token = client.send_json("POST", "/api/v1/auth/login", {key: user, "password": password})
    except BaseException:
        if http_client is None:
            client.close()
        raise
    client.token = token["token"]
    return Connection(
        client, database, cache=cache, portion=portion, owns_client=http_client is None
    )


class XmlDatabases:
    """``client.xml``: sessions on the XML databases of the logged-in user's organisations."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def connect(self, database: str, *, cache: NodeCache | None = None) -> Connection:
        return Connection(self._client, database, cache=cache)


class DatabaseManager:
    """The paper's entry point: ``DatabaseManager.get_connection(url, db, user, password)``."""

    @staticmethod
    def get_connection(
        url: str, database: str, user: str, password: str, **options: Any
    ) -> Connection:
        return connect(url, database, user, password, **options)
