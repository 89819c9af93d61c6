"""Parsing documents safely with lxml and normalising them to the bytes cairn stores.

Every document is parsed once by lxml (no network, no external entities, no DTD loading) and
stored as lxml's serialisation without a DOCTYPE, so Saxon later parses bytes with nothing to
fetch, and both parsers see the same nodes in the same order: the node ids rest on that.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree  # type: ignore[import-untyped]

from cairn.xmldb.errors import MalformedXml

__all__ = [
    "EMPTY_DOCUMENT",
    "Normalised",
    "canonical_count",
    "normalise",
    "parse_tree",
    "serialise",
]

_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'


def _parser() -> etree.XMLParser:
    # A parser per call: lxml parsers are not safe to share between threads.
    return etree.XMLParser(
        resolve_entities="internal", no_network=True, load_dtd=False, huge_tree=True
    )


@dataclass(frozen=True)
class Normalised:
    content: bytes
    node_count: int


# CREATE DOCUMENT's document with no children yet: stored as no bytes, one node (itself).
EMPTY_DOCUMENT = Normalised(b"", 1)


def parse_tree(data: bytes | str) -> etree._ElementTree:
    """Parse or raise :class:`MalformedXml` naming the parser's line and column."""
    raw = data.encode() if isinstance(data, str) else data
    if isinstance(data, str) and raw.lstrip().startswith(b"<?xml"):
        # A str already decoded: drop an encoding declaration that no longer holds.
        end = raw.find(b"?>")
        raw = raw[end + 2 :] if end >= 0 else raw
    try:
        root = etree.fromstring(raw, _parser())
    except etree.XMLSyntaxError as exc:
        line, column = exc.position
        raise MalformedXml(
            f"Malformed XML at line {line}, column {column}: {exc.msg}",
            detail={"line": line, "column": column},
        ) from None
    if next(root.iter(etree.Entity), None) is not None:
        raise MalformedXml("External entities are not allowed.", detail={"line": 0, "column": 0})
    return root.getroottree()


def _top_level(tree: etree._ElementTree) -> list[etree._Element]:
    root = tree.getroot()
    before = list(root.itersiblings(preceding=True))
    before.reverse()
    return [*before, root, *root.itersiblings()]


def serialise(tree: etree._ElementTree) -> bytes:
    """The stored form: a declaration, then the top-level nodes, without the DOCTYPE."""
    parts = [_DECLARATION]
    for node in _top_level(tree):
        parts.append(etree.tostring(node, encoding="UTF-8", with_tail=False))
        parts.append(b"\n")
    return b"".join(parts)


def canonical_count(tree: etree._ElementTree) -> int:
    """How many nodes cairn numbers: the document, every non-attribute node, every attribute
    (namespace nodes are derived from their element and need no id)."""
    count = 1
    for top in _top_level(tree):
        for node in top.iter():
            count += 1
            if isinstance(node.tag, str):
                count += len(node.attrib)
                if node.text:
                    count += 1
            if node.tail and node is not top:
                count += 1
    return count


def normalise(data: bytes | str) -> Normalised:
    """Parse, check and normalise a document for storage."""
    tree = parse_tree(data)
    return Normalised(serialise(tree), canonical_count(tree))
