"""Saxon (saxonche) as cairn's query engine: one processor per process, URI access off.

Saxon names every node of a tree with ``generate-id()``; :class:`Tree` maps those names to
a node's position in cairn's canonical order (the document, its other nodes in document
order, then its attributes in document order), which is what node OIDs rest on.
"""

from __future__ import annotations

import functools
import json
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from saxonche import (  # type: ignore[import-not-found]
    PySaxonApiError,
    PySaxonProcessor,
    PyXdmItem,
    PyXdmNode,
    PyXdmValue,
)

from cairn.xmldb.errors import XQueryError

__all__ = ["Tree", "evaluate", "parse_document", "processor", "records", "serialize_sequence"]

_lock = threading.Lock()
_processor: PySaxonProcessor | None = None
P = ParamSpec("P")
R = TypeVar("R")

# saxonche binds its GraalVM isolate to a thread: an accessor such as ``node_kind`` called
# from another thread than the one Saxon last ran on aborted the whole process (a fatal
# StackOverflowError in the route sweep). Every Saxon call and every release of a Saxon
# object therefore happens on this one thread.
_saxon = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cairn-saxon")
_saxon_ident: list[int] = []


def _remember_thread() -> None:
    _saxon_ident.append(threading.get_ident())


_saxon.submit(_remember_thread).result()


def on_saxon_thread(fn: Callable[[], R]) -> R:
    """Run ``fn`` on Saxon's thread (at once when already there) and return its result."""
    if threading.get_ident() == _saxon_ident[0]:
        return fn()
    return _saxon.submit(fn).result()


def saxon_bound(method: Callable[P, R]) -> Callable[P, R]:
    """Decorate a function that touches Saxon objects so that it runs on Saxon's thread."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        return on_saxon_thread(lambda: method(*args, **kwargs))

    return wrapper


def release(obj: object) -> None:
    """Let the last reference to Saxon objects die on Saxon's thread."""
    holder = [obj]
    del obj
    _saxon.submit(holder.clear)


_ERROR = re.compile(r"\b([A-Z]{4}\d{4}|[A-Z]{2,}\d{3,})\b:?\s+(.*)", re.S)
_WHERE = re.compile(r"line (\d+) column (\d+)|at char (\d+)")
QUERY_BASE_URI = "urn:cairn:query"


def processor() -> PySaxonProcessor:
    """The process's one Saxon processor; no query may open a file or a URL through it."""
    global _processor
    with _lock:
        if _processor is None:
            proc = PySaxonProcessor(license=False)
            proc.set_configuration_property("http://saxon.sf.net/feature/allowedProtocols", "")
            _processor = proc
        return _processor


def _without_warnings(text: str) -> str:
    """Saxon puts its warnings (SXWN…) before the error; keep the error only."""
    kept: list[str] = []
    skipping = False
    for line in text.splitlines():
        if line.lstrip().startswith("Warning"):
            skipping = True
            continue
        if skipping and line.startswith("  "):
            continue
        skipping = False
        kept.append(line)
    return "\n".join(kept) or text


def _error(exc: PySaxonApiError) -> XQueryError:
    text = _without_warnings(str(exc).strip())
    found = _ERROR.search(text)
    code = found.group(1) if found else "XQuery"
    message = " ".join((found.group(2) if found else text).split())
    if found and message.startswith(code + ":"):  # cairn's own errors repeat their code
        message = message[len(code) + 1 :].strip()
    where = _WHERE.search(text)
    line = int(where.group(1)) if where and where.group(1) else None
    column = int(where.group(2)) if where and where.group(2) else None
    return XQueryError(
        f"{code}: {message}",
        detail={"xquery_code": code, "message": message, "line": line, "column": column},
    )


def evaluate(text: str, params: dict[str, Any] | None = None) -> PyXdmValue:
    """Run an XQuery; engine errors become :class:`XQueryError` with the W3C code."""
    query = processor().new_xquery_processor()
    query.set_query_base_uri(QUERY_BASE_URI)
    for name, value in (params or {}).items():
        query.set_parameter(name, value)
    query.set_query_content(text)
    try:
        value = query.run_query_to_value()
    except PySaxonApiError as exc:
        raise _error(exc) from None
    return value if value is not None else processor().empty_sequence()


def evaluate_string(text: str, params: dict[str, Any] | None = None) -> str:
    value = evaluate(text, params)
    return "".join(item.string_value for item in value) if value.size else ""


def parse_document(content: bytes, base_uri: str) -> PyXdmNode:
    if not content:  # an empty document (CREATE DOCUMENT): a document node, no children
        node: PyXdmNode = evaluate("document { () }").item_at(0).get_node_value()
        return node
    builder = processor().new_document_builder()
    builder.set_base_uri(base_uri)
    try:
        return builder.parse_xml(xml_text=content.decode("utf-8"))
    except PySaxonApiError as exc:  # cairn normalised these bytes; this is not expected
        raise _error(exc) from None


def as_value(items: list[PyXdmItem]) -> PyXdmValue:
    seq = processor().empty_sequence()
    for item in items:
        seq.add_xdm_item(item)
    return seq


_SERIALIZE = (
    "declare variable $r external; "
    "serialize($r, map{'omit-xml-declaration': true(), 'item-separator': '&#10;'})"
)


def serialize_sequence(value: PyXdmValue) -> str:
    """A result as Sedna's lite answer shows it, one item a line: nodes serialised as XML,
    atoms cast to string (one engine call, one serializer for the whole sequence: 7 to 20
    times faster than serialising item by item, the same text)."""
    return evaluate_string(_SERIALIZE, {"r": value}) if value.size else ""


class Tree:
    """One parsed (or constructed) tree and the index from ``generate-id`` to position."""

    def __init__(self, root: PyXdmNode) -> None:
        self.root = root
        self.docnum = tree_of(generate_ids([root])[0])
        self._nodes: PyXdmValue | None = None
        self._positions: dict[str, int] | None = None

    def _index(self) -> None:
        nodes = evaluate("declare variable $r external; ($r, $r//node(), $r//@*)", {"r": self.root})
        ids = evaluate_string(
            "declare variable $s external; string-join($s ! generate-id(.), ' ')", {"s": nodes}
        ).split(" ")
        self._positions = {gid: i for i, gid in enumerate(ids)}
        self._nodes = nodes

    @property
    def size(self) -> int:
        if self._nodes is None:
            self._index()
        assert self._nodes is not None
        return int(self._nodes.size)

    @property
    def indexed(self) -> bool:
        return self._positions is not None

    def position(self, gid: str) -> int:
        if self._positions is None:
            self._index()
        assert self._positions is not None
        return self._positions[gid]

    def node_at(self, position: int) -> PyXdmNode:
        if self._nodes is None:
            self._index()
        assert self._nodes is not None
        node: PyXdmNode = self._nodes.item_at(position).get_node_value()
        return node


def document_positions(nodes: list[PyXdmItem]) -> list[int]:
    """Canonical positions of a few non-attribute nodes without indexing their whole tree
    (which took 3.4 times the tree's parse): the nodes before each in document order."""
    text = evaluate_string(
        "declare variable $s external; string-join(for $n in $s return "
        "string(count($n/ancestor::node()) + count($n/preceding::node())), ' ')",
        {"s": as_value(nodes)},
    )
    return [int(p) for p in text.split(" ")] if text else []


def tree_of(gid: str) -> str:
    """The tree part of a ``generate-id`` (``d12`` of ``d12e4a1025``)."""
    found = re.match(r"d\d+", gid)
    return found.group(0) if found else gid


def generate_ids(nodes: list[PyXdmItem] | PyXdmValue) -> list[str]:
    seq = nodes if isinstance(nodes, PyXdmValue) else as_value(nodes)
    text = evaluate_string(
        "declare variable $s external; string-join($s ! generate-id(.), ' ')", {"s": seq}
    )
    return text.split(" ") if text else []


# A link to no node is generate-id(()), the empty string (a function call per link cost
# a fifth of the query).
_RECORDS = """
declare variable $s as node()* external;
declare variable $maxlen as xs:integer external;
serialize(array { for $n in $s
  let $k := if ($n instance of document-node()) then 'document'
    else if ($n instance of element()) then 'element'
    else if ($n instance of attribute()) then 'attribute'
    else if ($n instance of text()) then 'text'
    else if ($n instance of comment()) then 'comment'
    else if ($n instance of processing-instruction()) then 'processing-instruction'
    else 'namespace'
  let $named := $k = ('element', 'attribute')
  let $sv := string($n)
  return map {
    'id': generate-id($n), 'k': $k,
    'ns': if ($named) then string(namespace-uri($n)) else (),
    'ln': if ($named or $k = 'processing-instruction') then local-name($n) else (),
    'px': if ($named) then string(prefix-from-QName(node-name($n))) else (),
    'bu': string(base-uri($n)),
    'sl': string-length($sv),
    'sv': if (string-length($sv) le $maxlen) then $sv else (),
    'p': generate-id($n/..),
    'fc': generate-id($n/node()[1]),
    'nx': if ($k = 'attribute') then generate-id(($n/../@*[. >> $n])[1])
          else generate-id($n/following-sibling::node()[1]),
    'fa': generate-id($n/@*[1]),
    'nsp': if ($k = 'element') then array { in-scope-prefixes($n) } else ()
  }
}, map { 'method': 'json' })
"""

# ``$n as node()``: typed as one node, Saxon streams the axes and stops after ``$k``
# (untyped, it sorted the whole following axis first: 470 ms against 0.2 ms on 3 MB).
_FOLLOWING = """
declare variable $n as node() external;
declare variable $k as xs:integer external;
subsequence(($n/descendant-or-self::node(), $n/following::node()), 1, $k) ! (., @*)
"""

_SIBLINGS = """
declare variable $n as node() external;
declare variable $k as xs:integer external;
subsequence(($n, $n/following-sibling::node()), 1, $k) ! (., @*)
"""


def records(nodes: PyXdmValue, max_string: int) -> list[dict[str, Any]]:
    """Raw node records (links as ``generate-id`` names) of ``nodes``, in their order."""
    text = evaluate_string(
        _RECORDS, {"s": nodes, "maxlen": processor().make_integer_value(max_string)}
    )
    found: list[dict[str, Any]] = json.loads(text)
    return found


def following(node: PyXdmNode, limit: int) -> PyXdmValue:
    """``node``, its subtree, then the nodes after it in document order: at most ``limit``
    non-attribute nodes, each with its attributes. A client walking a tree in document order
    (depth first) finds the next node it reads among these."""
    return evaluate(_FOLLOWING, {"n": node, "k": processor().make_integer_value(limit)})


def siblings(node: PyXdmNode, limit: int) -> PyXdmValue:
    """``node`` and the siblings after it, at most ``limit``, each with its attributes."""
    return evaluate(_SIBLINGS, {"n": node, "k": processor().make_integer_value(limit)})


def string_part(node: PyXdmNode, offset: int, length: int) -> str:
    return evaluate_string(
        "declare variable $n external; declare variable $o external; declare variable $l "
        "external; substring(string($n), $o + 1, $l)",
        {
            "n": node,
            "o": processor().make_integer_value(offset),
            "l": processor().make_integer_value(length),
        },
    )
