"""Sedna's update statements applied to a document's lxml tree, keeping node ids.

``UPDATE insert SRC (into|preceding|following) TARGET``, ``UPDATE delete EXPR``,
``UPDATE delete_undeep EXPR``, ``UPDATE replace $v in SRC with EXPR`` and
``UPDATE rename TARGET on QNAME``: Saxon evaluates the expressions (against the state before
the statement), cairn applies the changes to the tree. Every node that survives keeps its id:
the tree's nodes are listed in canonical order before and after, and a node is the same if its
lxml handle is (an element or comment object, an attribute by element and name, a text by the
element whose ``text`` or ``tail`` it is); new nodes take ids from the document's counter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from lxml import etree  # type: ignore[import-untyped]

from cairn.errors import Invalid
from cairn.xmldb._rewrite import _code_spans, _in_code
from cairn.xmldb._xml import _top_level, canonical_count, parse_tree, serialise

__all__ = ["Statement", "apply", "fill_empty", "handles", "parse_statement"]

_HEAD = re.compile(r"\s*UPDATE\s+(insert|delete_undeep|delete|replace|rename)\b", re.I)
_REPLACE = re.compile(r"\s*\$([\w.-]+)\s+in\s+", re.S)

Handle = tuple[Any, ...]


@dataclass(frozen=True)
class Statement:
    action: str  # insert, delete, delete_undeep, replace, rename
    target: str  # the XQuery naming the nodes acted on
    source: str | None = None  # insert: what to insert; replace: the replacement expression
    where: str | None = None  # insert: into, preceding or following
    variable: str | None = None  # replace: the variable bound to each target
    name: str | None = None  # rename: the new QName


def _split(text: str, words: tuple[str, ...]) -> tuple[str, str, str] | None:
    """Split at the last top-level keyword of ``words`` outside strings and comments."""
    spans = _code_spans(text)
    depth = 0
    found: tuple[int, str] | None = None
    i = 0
    while i < len(text):
        if _in_code(spans, i):
            ch = text[i]
            if ch in "({[":
                depth += 1
            elif ch in ")}]":
                depth -= 1
            elif depth == 0 and (i == 0 or text[i - 1].isspace()):
                for word in words:
                    end = i + len(word)
                    if text.startswith(word, i) and end < len(text) and text[end].isspace():
                        found = (i, word)
        i += 1
    if found is None:
        return None
    at, word = found
    return text[:at].strip(), word, text[at + len(word) :].strip()


def parse_statement(text: str) -> Statement | None:
    """The update statement ``text`` holds, or None when it is a query."""
    head = _HEAD.match(text)
    if not head:
        return None
    action = head.group(1).lower()
    rest = text[head.end() :].strip()
    if not rest:
        raise Invalid(f"UPDATE {action} needs an expression.")
    if action in ("delete", "delete_undeep"):
        return Statement(action, rest)
    if action == "insert":
        parts = _split(rest, ("into", "preceding", "following"))
        if parts is None or not parts[0] or not parts[2]:
            raise Invalid("UPDATE insert SRC (into|preceding|following) TARGET")
        return Statement("insert", parts[2], source=parts[0], where=parts[1])
    if action == "rename":
        parts = _split(rest, ("on",))
        if parts is None or not parts[0] or not parts[2]:
            raise Invalid("UPDATE rename TARGET on QNAME")
        return Statement("rename", parts[0], name=parts[2])
    var = _REPLACE.match(rest)
    parts = _split(rest[var.end() :], ("with",)) if var else None
    if var is None or parts is None or not parts[0] or not parts[2]:
        raise Invalid("UPDATE replace $v in SRC with EXPR")
    return Statement("replace", parts[0], source=parts[2], variable=var.group(1))


def handles(tree: etree._ElementTree) -> list[Handle]:
    """The tree's nodes in canonical order (as ``canonical_count`` counts them)."""
    out: list[Handle] = [("doc",)]
    attrs: list[Handle] = []

    def visit(el: Any, top: bool) -> None:
        out.append(("node", el))
        if isinstance(el.tag, str):
            attrs.extend(("attr", el, name) for name in el.attrib)
            if el.text:
                out.append(("text", el))
            for child in el:
                visit(child, False)
        if not top and el.tail:
            out.append(("tail", el))

    for top in _top_level(tree):
        visit(top, True)
    return out + attrs


# --- edits ------------------------------------------------------------------------------------


def _append_text(el: Any, text: str, *, as_tail: bool) -> None:
    if as_tail:
        el.tail = (el.tail or "") + text
    else:
        el.text = (el.text or "") + text


def _remove(el: Any, *, keep_children: bool = False) -> None:
    parent = el.getparent()
    if parent is None:
        raise Invalid("The document element cannot be deleted; the document must stay well-formed.")
    index = parent.index(el)
    pieces: list[Any] = []
    if keep_children:
        if el.text:
            pieces.append(el.text)
        for child in list(el):
            pieces.append(child)
    if el.tail:
        pieces.append(el.tail)
    parent.remove(el)
    prev = parent[index - 1] if index > 0 else None
    for piece in pieces:
        if isinstance(piece, str):
            if prev is None:
                _append_text(parent, piece, as_tail=False)
            else:
                _append_text(prev, piece, as_tail=True)
        else:
            tail = piece.tail
            piece.tail = None
            parent.insert(index, piece)
            index += 1
            prev = piece
            if tail:
                _append_text(piece, tail, as_tail=True)


def delete(handle: Handle, *, undeep: bool = False) -> None:
    kind = handle[0]
    if kind == "doc":
        raise Invalid("A document node cannot be deleted; use DROP DOCUMENT.")
    if kind == "attr":
        del handle[1].attrib[handle[2]]
    elif kind == "text":
        handle[1].text = None
    elif kind == "tail":
        handle[1].tail = None
    else:
        _remove(handle[1], keep_children=undeep and isinstance(handle[1].tag, str))


def fragment(xml_items: list[tuple[str, str]]) -> list[Any]:
    """Items to insert (``("node", xml)``, ``("text", s)`` or ``("attr", "name=value")``) as
    lxml nodes and strings."""
    out: list[Any] = []
    for kind, value in xml_items:
        if kind == "text":
            out.append(value)
        elif kind == "attr":
            out.append(("attr", value))
        else:
            try:
                wrapper = etree.fromstring(f"<cairn-wrap>{value}</cairn-wrap>")
            except etree.XMLSyntaxError as exc:
                raise Invalid(f"Cannot insert {value[:60]!r}: {exc.msg}") from None
            if wrapper.text:
                out.append(wrapper.text)
            for child in list(wrapper):
                tail = child.tail
                child.tail = None
                out.append(child)
                if tail:
                    out.append(tail)
    return out


def insert(pieces: list[Any], target: Handle, where: str) -> None:
    kind = target[0]
    if where == "into":
        if kind != "node" or not isinstance(target[1].tag, str):
            raise Invalid("UPDATE insert … into needs an element target.")
        el = target[1]
        for piece in pieces:
            if isinstance(piece, tuple):
                name, _, value = piece[1].partition("=")
                el.set(name, value)
            elif isinstance(piece, str):
                if len(el):
                    _append_text(el[-1], piece, as_tail=True)
                else:
                    _append_text(el, piece, as_tail=False)
            else:
                el.append(piece)
        return
    if kind not in ("node",):
        raise Invalid("UPDATE insert preceding/following needs an element, comment or PI target.")
    el = target[1]
    parent = el.getparent()
    if parent is None:
        raise Invalid("Nothing can be inserted beside the document element.")
    if any(isinstance(p, tuple) for p in pieces):
        raise Invalid("Attributes can only be inserted into an element.")
    if where == "following":
        anchor = el
        for piece in pieces:
            if isinstance(piece, str):
                _append_text(anchor, piece, as_tail=True)
            else:
                tail = anchor.tail
                anchor.tail = None
                anchor.addnext(piece)
                piece.tail = tail
                anchor = piece
    else:
        for piece in pieces:
            if isinstance(piece, str):
                prev = el.getprevious()
                if prev is None:
                    _append_text(parent, piece, as_tail=False)
                else:
                    _append_text(prev, piece, as_tail=True)
            else:
                el.addprevious(piece)


def fill_empty(stmt: Statement, sources: list[list[tuple[str, str]]]) -> etree._ElementTree:
    """The tree an empty document (CREATE DOCUMENT) becomes by ``UPDATE insert … into`` it:
    one element, with comments and processing instructions around it."""
    if stmt.action != "insert" or stmt.where != "into":
        raise Invalid("An empty document can only take UPDATE insert … into it.")
    pieces = fragment(sources[0])
    if any(isinstance(p, tuple) for p in pieces) or any(
        isinstance(p, str) and p.strip() for p in pieces
    ):
        raise Invalid("A document holds nodes, not attributes or text, at its top level.")
    nodes = [p for p in pieces if not isinstance(p, str)]
    if sum(isinstance(n.tag, str) for n in nodes) != 1:
        raise Invalid("A document needs exactly one element at its top level.")
    return parse_tree(b"".join(etree.tostring(n) for n in nodes))


def rename(target: Handle, qname: str, namespaces: dict[str | None, str]) -> None:
    prefix, _, local = qname.rpartition(":")
    if not re.fullmatch(r"[A-Za-z_][\w.-]*", local) or (prefix and prefix not in namespaces):
        raise Invalid(f"Not a QName in scope: {qname!r}.")
    clark = f"{{{namespaces[prefix]}}}{local}" if prefix else local
    if target[0] == "node" and isinstance(target[1].tag, str):
        target[1].tag = clark
    elif target[0] == "attr":
        el, old = target[1], target[2]
        value = el.attrib.pop(old)
        el.set(clark, value)
    else:
        raise Invalid("Only elements and attributes can be renamed.")


# --- ids --------------------------------------------------------------------------------------


def _key(handle: Handle) -> Handle:
    return handle


def apply(
    tree: etree._ElementTree,
    before: list[Handle],
    ids: list[int],
    next_id: int,
    aliases: dict[Handle, Handle] | None = None,
) -> tuple[bytes, list[int], int]:
    """After the edits on ``tree``: its stored bytes, the node ids in canonical order (old
    nodes keep theirs, new ones are numbered from ``next_id``) and the next free id.
    ``aliases`` maps a handle that changed (a renamed attribute) to the one it was."""
    old = {_key(h): node_id for h, node_id in zip(before, ids, strict=True)}
    for new, was in (aliases or {}).items():
        if was in old:
            old[new] = old[was]
    content = serialise(tree)
    after = handles(tree)
    fresh: list[int] = []
    for handle in after:
        known = old.get(_key(handle))
        if known is None:
            known = next_id
            next_id += 1
        fresh.append(known)
    if len(after) != canonical_count(parse_tree(content)):
        raise Invalid("The update would leave text nodes cairn cannot number; not applied.")
    return content, fresh, next_id
