"""Node tables: what a node record needs, for every node of one stored document, read once.

A table is built with expat from the stored (normalised) bytes, without Saxon, and numbers the
nodes in cairn's canonical order (the document, its other nodes in document order, then the
attributes in document order: the order node OIDs rest on, see ``_engine.Tree``). Per node it
keeps the kind, the name, the parent, the end of the subtree, the node's own text and its base
URI; an element's in-scope namespaces are shared between elements. Children and siblings follow
from document order (a first child is the next position, a next sibling is where the subtree
ends), so the records a walk reads next are a slice. An element's string value is a slice of
the document's text nodes joined in order.

A table is saved as a blob (``xml_documents.records_sha256``) so that a restarted server reads
it back instead of parsing the document again; a blob that does not decode to the table of
that document (damaged, or of other bytes) is ignored and the table built again.
"""

from __future__ import annotations

import json
import struct
import sys
import zlib
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin
from xml.parsers import expat

__all__ = ["NodeTable", "build", "decode", "encode"]

DOCUMENT, ELEMENT, ATTRIBUTE, TEXT, COMMENT, PI = range(6)
KIND_NAMES = ("document", "element", "attribute", "text", "comment", "processing-instruction")
_XML_NS = "http://www.w3.org/XML/1998/namespace"
_SEP = "\x01"
_MAGIC = b"CAIRN-XML-NODES/1\n"
# The columns, in their order in a saved table: (attribute, typecode).
_COLUMNS = (
    ("kind", "B"),
    ("parent", "i"),
    ("name", "i"),
    ("base", "i"),
    ("start", "i"),
    ("stop", "i"),
    ("end", "i"),
    ("attrs", "i"),
    ("nss", "i"),
)


@dataclass
class NodeTable:
    """Columns by canonical position (``end``, ``attrs`` and ``nss`` for the non-attribute
    positions only). ``start``/``stop`` slice ``text`` (the text nodes joined in document
    order) for text nodes, elements and the document, and ``other`` for the own text of
    comments, processing instructions and attributes."""

    size: int  # every node
    tree_size: int  # the non-attribute nodes: positions 0 .. tree_size - 1
    kind: array[int]
    parent: array[int]
    name: array[int]  # into names, -1 without one
    base: array[int]  # into bases
    start: array[int]
    stop: array[int]
    end: array[int]  # a non-attribute node's subtree ends before this position
    attrs: array[int]  # a non-attribute node's first attribute, as an attribute number
    nss: array[int]  # an element's in-scope namespaces, into namespace_sets, else -1
    names: list[tuple[str, str, str]]  # (namespace URI, local name, prefix)
    bases: list[str]
    namespace_sets: list[tuple[tuple[str, str], ...]]  # (prefix, URI) in Saxon's order
    text: str
    other: str

    @property
    def nbytes(self) -> int:
        columns = sum(len(getattr(self, c)) * getattr(self, c).itemsize for c, _ in _COLUMNS)
        return int(columns + 2 * (len(self.text) + len(self.other)))

    def string_value(self, pos: int) -> str:
        source = self.other if self.kind[pos] in (ATTRIBUTE, COMMENT, PI) else self.text
        return source[self.start[pos] : self.stop[pos]]

    def string_length(self, pos: int) -> int:
        return int(self.stop[pos] - self.start[pos])

    def string_part(self, pos: int, offset: int, length: int) -> str:
        source = self.other if self.kind[pos] in (ATTRIBUTE, COMMENT, PI) else self.text
        begin = self.start[pos] + max(0, offset)
        return source[begin : min(self.stop[pos], begin + max(0, length))]

    def first_child(self, pos: int) -> int | None:
        if pos < self.tree_size and pos + 1 < self.end[pos]:
            return pos + 1
        return None

    def next_sibling(self, pos: int) -> int | None:
        """The next sibling; for an attribute the next attribute of its element."""
        if pos >= self.tree_size:
            nxt = pos + 1
            return nxt if nxt < self.size and self.parent[nxt] == self.parent[pos] else None
        if pos == 0:
            return None
        nxt = self.end[pos]
        return nxt if nxt < self.tree_size and self.parent[nxt] == self.parent[pos] else None

    def first_attribute(self, pos: int) -> int | None:
        if pos < self.tree_size and self.attrs[pos] < self.attrs[pos + 1]:
            return self.tree_size + self.attrs[pos]
        return None

    def with_attributes(self, pos: int) -> Iterator[int]:
        """``pos``, then (for an element) its attributes."""
        yield pos
        if pos < self.tree_size:
            first = self.tree_size
            yield from range(first + self.attrs[pos], first + self.attrs[pos + 1])

    def namespaces(self, pos: int) -> tuple[tuple[str, str], ...]:
        if pos >= self.tree_size or self.nss[pos] < 0:
            return ()
        return self.namespace_sets[self.nss[pos]]


def _qname(raw: str) -> tuple[str, str, str]:
    """expat's ``uri SEP local [SEP prefix]`` (or a bare local name) as (uri, local, prefix)."""
    parts = raw.split(_SEP)
    if len(parts) == 1:
        return ("", raw, "")
    return (parts[0], parts[1], parts[2] if len(parts) > 2 else "")


def build(content: bytes, base_uri: str) -> NodeTable:
    """The table of a stored document (its normalised bytes; ``b""`` is an empty document).

    One pass of expat; the handlers are closures over the columns' ``append`` methods, since
    a 59 MB document has 3.4 million nodes and each attribute look-up there costs seconds."""
    kind, parent, name, base = array("B"), array("i"), array("i"), array("i")
    start, stop, end, attrs, nss = array("i"), array("i"), array("i"), array("i"), array("i")
    a_parent, a_name, a_base, a_start, a_stop = (array("i") for _ in range(5))
    k_add, p_add, n_add, b_add = kind.append, parent.append, name.append, base.append
    s_add, t_add, e_add, at_add, ns_add = (
        start.append,
        stop.append,
        end.append,
        attrs.append,
        nss.append,
    )
    names: dict[str, int] = {}  # expat's raw name → number
    qnames: list[tuple[str, str, str]] = []
    bases: dict[str, int] = {base_uri: 0}
    nsets: dict[tuple[tuple[str, str], ...], int] = {}
    text: list[str] = []
    other: list[str] = []
    pending: list[str] = []
    stack: list[int] = [0]  # open positions, the document first
    base_stack: list[tuple[str, int]] = [(base_uri, 0)]
    ns_stack: list[tuple[dict[str, str], int]] = [({}, -1)]
    declared: list[tuple[str, str]] = []
    lengths = [0, 0]  # of text, of other
    xml_base = f"{_XML_NS}{_SEP}base{_SEP}xml"

    def number(raw: str) -> int:
        found = names.get(raw)
        if found is None:
            found = names[raw] = len(qnames)
            qnames.append(_qname(raw))
        return found

    def add(k: int, n: int, ns: int, s: int, t: int) -> int:
        pos = len(kind)
        k_add(k)
        p_add(stack[-1])
        n_add(n)
        b_add(base_stack[-1][1])
        s_add(s)
        t_add(t)
        e_add(pos + 1)
        at_add(len(a_parent))
        ns_add(ns)
        return pos

    def flush() -> None:
        value = "".join(pending)
        pending.clear()
        begin = lengths[0]
        text.append(value)
        lengths[0] = begin + len(value)
        add(TEXT, -1, -1, begin, lengths[0])

    def own(value: str) -> tuple[int, int]:
        begin = lengths[1]
        other.append(value)
        lengths[1] = begin + len(value)
        return begin, lengths[1]

    def characters(data: str) -> None:
        if len(stack) > 1:  # text outside the document element is not a node
            pending.append(data)

    def namespace(prefix: str | None, uri: str | None) -> None:
        declared.append((prefix or "", uri or ""))

    def start_element(raw: str, attributes: list[str]) -> None:
        if pending:
            flush()
        if declared:
            scope = dict(ns_stack[-1][0])
            for prefix, uri in declared:
                if uri:
                    scope[prefix] = uri
                else:
                    scope.pop(prefix, None)
            declared.clear()
            key = (*sorted(i for i in scope.items() if i[0] != "xml"), ("xml", _XML_NS))
            found = nsets.get(key)
            if found is None:
                found = nsets[key] = len(nsets)
            ns_stack.append((scope, found))
        elif len(ns_stack) == 1:  # the first element, no declarations: only xml
            found = nsets.setdefault((("xml", _XML_NS),), len(nsets))
            ns_stack.append(({}, found))
        else:
            ns_stack.append(ns_stack[-1])
        in_base = base_stack[-1]
        if attributes and xml_base in attributes:
            uri = in_base[0]
            for i in range(0, len(attributes), 2):
                if attributes[i] == xml_base:
                    uri = urljoin(uri, attributes[i + 1]) if uri else attributes[i + 1]
            if uri != in_base[0]:
                in_base = (uri, bases.setdefault(uri, len(bases)))
        base_stack.append(in_base)
        pos = add(ELEMENT, number(raw), ns_stack[-1][1], lengths[0], 0)
        for i in range(0, len(attributes), 2):
            begin, finish = own(attributes[i + 1])
            a_parent.append(pos)
            a_name.append(number(attributes[i]))
            a_base.append(in_base[1])
            a_start.append(begin)
            a_stop.append(finish)
        stack.append(pos)

    def end_element(raw: str) -> None:
        if pending:
            flush()
        pos = stack.pop()
        stop[pos] = lengths[0]
        end[pos] = len(kind)
        base_stack.pop()
        ns_stack.pop()

    def comment(data: str) -> None:
        if pending:
            flush()
        add(COMMENT, -1, -1, *own(data))

    def instruction(target: str, data: str) -> None:
        if pending:
            flush()
        add(PI, number(target), -1, *own(data))

    stack.clear()
    stack.append(-1)
    add(DOCUMENT, -1, -1, 0, 0)
    stack[0] = 0
    if content:
        parser = expat.ParserCreate(namespace_separator=_SEP)
        parser.namespace_prefixes = True
        parser.ordered_attributes = True
        parser.buffer_text = True
        parser.buffer_size = 1 << 20
        parser.StartElementHandler = start_element
        parser.EndElementHandler = end_element
        parser.CharacterDataHandler = characters
        parser.StartNamespaceDeclHandler = namespace
        parser.CommentHandler = comment
        parser.ProcessingInstructionHandler = instruction
        parser.Parse(content, True)
    tree_size = len(kind)
    stop[0] = lengths[0]
    end[0] = tree_size
    attrs.append(len(a_parent))  # the end of the last node's attributes
    kind.extend(array("B", bytes([ATTRIBUTE])) * len(a_parent))
    for column, values in (
        (parent, a_parent),
        (name, a_name),
        (base, a_base),
        (start, a_start),
        (stop, a_stop),
    ):
        column.extend(values)
    return NodeTable(
        size=len(kind),
        tree_size=tree_size,
        kind=kind,
        parent=parent,
        name=name,
        base=base,
        start=start,
        stop=stop,
        end=end,
        attrs=attrs,
        nss=nss,
        names=qnames,
        bases=list(bases),
        namespace_sets=list(nsets),
        text="".join(text),
        other="".join(other),
    )


def encode(table: NodeTable, content_sha256: str, base_uri: str) -> bytes:
    """The saved form: a header naming the document's bytes and base URI, the columns, the
    two texts, and a CRC of all of it."""
    text = table.text.encode("utf-8", "surrogatepass")
    other = table.other.encode("utf-8", "surrogatepass")
    header = json.dumps(
        {
            "sha256": content_sha256,
            "base_uri": base_uri,
            "size": table.size,
            "tree_size": table.tree_size,
            "names": table.names,
            "bases": table.bases,
            "namespace_sets": table.namespace_sets,
            "columns": [[c, t, len(getattr(table, c))] for c, t in _COLUMNS],
            "text": len(text),
            "other": len(other),
            "byteorder": sys.byteorder,
        }
    ).encode()
    parts = [struct.pack("<I", len(header)), header]
    parts += [getattr(table, c).tobytes() for c, _ in _COLUMNS]
    parts += [text, other]
    body = b"".join(parts)
    return _MAGIC + struct.pack("<I", zlib.crc32(body)) + body


def decode(data: bytes, content_sha256: str, base_uri: str) -> NodeTable | None:
    """The table saved by :func:`encode` for these bytes and base URI, or None when ``data``
    is not that (damaged, truncated, of another document or another format)."""
    try:
        return _decode(data, content_sha256, base_uri)
    except (ValueError, KeyError, TypeError, IndexError, struct.error, UnicodeDecodeError):
        return None


def _decode(data: bytes, content_sha256: str, base_uri: str) -> NodeTable | None:
    if not data.startswith(_MAGIC):
        return None
    view = memoryview(data)[len(_MAGIC) :]
    (crc,) = struct.unpack_from("<I", view, 0)
    body = view[4:]
    if zlib.crc32(body) != crc:
        return None
    (length,) = struct.unpack_from("<I", body, 0)
    header: dict[str, Any] = json.loads(bytes(body[4 : 4 + length]))
    if (
        header["sha256"] != content_sha256
        or header["base_uri"] != base_uri
        or header["byteorder"] != sys.byteorder
    ):
        return None
    at = 4 + length
    columns: dict[str, array[int]] = {}
    for (name, typecode, count), (want, want_type) in zip(header["columns"], _COLUMNS, strict=True):
        if name != want or typecode != want_type:
            return None
        column = array(typecode)
        nbytes = count * column.itemsize
        column.frombytes(body[at : at + nbytes])
        if len(column) != count:
            return None
        columns[name] = column
        at += nbytes
    text = bytes(body[at : at + header["text"]]).decode("utf-8", "surrogatepass")
    at += header["text"]
    other = bytes(body[at : at + header["other"]]).decode("utf-8", "surrogatepass")
    at += header["other"]
    size, tree_size = int(header["size"]), int(header["tree_size"])
    if at != len(body) or len(columns["kind"]) != size or len(columns["attrs"]) != tree_size + 1:
        return None
    return NodeTable(
        size=size,
        tree_size=tree_size,
        names=[tuple(n) for n in header["names"]],
        bases=list(header["bases"]),
        namespace_sets=[tuple(tuple(p) for p in s) for s in header["namespace_sets"]],
        text=text,
        other=other,
        **columns,
    )
