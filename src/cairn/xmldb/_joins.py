"""Equality joins answered through a hash index instead of Saxon's nested loops.

Saxon HE evaluates ``for $p in P1 let $a := for $t in P2 where $t/K = $p/X return $t`` (XMark
Q8) by scanning P2 once per ``$p``: quadratic. Before the query goes to Saxon, :func:`rewrite`
finds such joins and replaces the scan by a lookup in a map from key to P2's nodes, an XDM map
built once per document version and bound as an external variable (``_indexes``).

Two shapes are recognised, wherever they occur (a ``let`` binding, a ``return``, a nested
FLWOR, an enclosed expression of a constructor):

- a FLWOR ``for $b in P2`` … ``where A = B`` (only ``for`` and ``let`` clauses between, no
  positional variable, no type declaration) where one side is ``$b`` or ``$b/K`` and the other
  side ``E`` is a variable's path not using ``$b`` or anything bound after it: the ``where``
  goes, ``P2`` becomes the lookup of ``E``'s values;
- a predicate ``P2[K = E]`` (or ``[E = K]``) on the last step of P2: the lookup itself.

P2 is ``doc("name")`` or ``collection("name")`` followed by child or descendant steps with
name tests; K a relative path of child, attribute and ``text()`` steps (or ``.``); E a
variable followed by such steps, or a stored document's path. Everything else is left alone.

Why it is exact. P2 is a path, so its nodes come in document order without duplicates; the
lookup's nodes are put in document order and de-duplicated by a union, so the order and the
multiplicity are P2's. Stored documents are untyped, so the key side atomizes to
``xs:untypedAtomic``; ``=`` is existential, so a node matches when one of its key values
equals one of E's values. When all of E's values are strings or untypedAtomic, equality is
the codepoint comparison of their strings (queries declaring a default collation are not
rewritten), exactly a map lookup by string. Otherwise (a number, a date, …: other casting
rules apply) the rewritten query filters ``P2[K = data(E)]``, the original comparison. E is
evaluated once instead of once per node of P2; if that raises an error where the original
would not have (P2 empty), or anything in the rewritten query fails, the session runs the
query as written and reports its answer or its error (:attr:`Joined.original`), so error
codes and positions are always the user's.

The parser below reads the XQuery grammar as far as it must to find clause and expression
boundaries (strings, comments, direct and computed constructors, FLWOR, quantified and
conditional expressions, operators, paths, predicates); on anything it does not know
(``switch``, ``typeswitch``, ``try``, inline functions, pragmas, …) it gives up and the query
runs as written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["JOIN_VAR_PREFIX", "Join", "Joined", "rewrite"]

JOIN_VAR_PREFIX = "cairn_join_"
_NS = "urn:cairn:xmldb"
_FN = "Q{http://www.w3.org/2005/xpath-functions}"
_XS = "Q{http://www.w3.org/2001/XMLSchema}"


class Unsupported(Exception):
    """The query uses syntax this parser does not follow: leave it as it is."""


@dataclass(frozen=True)
class Join:
    """One hash index a rewritten query needs: ``source`` (``doc("name")/…``, as the user
    wrote it) keyed by the string values of ``key`` (relative to each node)."""

    variable: str
    source: str
    key: str


@dataclass(frozen=True)
class Joined:
    text: str
    joins: tuple[Join, ...]
    original: str  # the query before the rewrite, run when the rewritten one fails


# --- lexer ---------------------------------------------------------------------------------

_NAME_START = r"[A-Za-z_\u00C0-\uFFFF]"
_NAME_CHAR = r"[\w.\-\u00B7-\uFFFF]"
_NCNAME = rf"{_NAME_START}{_NAME_CHAR}*"
_TOKEN = re.compile(
    rf"""
    (?P<str>"(?:[^"]|"")*"|'(?:[^']|'')*')
  | (?P<num>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<var>\$\s*(?:Q\{{[^{{}}]*\}}{_NCNAME}|{_NCNAME}(?::{_NCNAME})?))
  | (?P<name>Q\{{[^{{}}]*\}}(?:{_NCNAME}|\*)|\*:{_NCNAME}|{_NCNAME}:\*|{_NCNAME}(?::{_NCNAME})?)
  | (?P<sym>:=|::|!=|<=|>=|<<|>>|=>|\|\||//|\.\.|\(\#|[()\[\]{{}},;/@*+\-=<>|!?\#:.%])
    """,
    re.X,
)


@dataclass
class Tok:
    kind: str  # str, num, var, name, sym, end
    text: str
    start: int
    end: int


@dataclass
class Node:
    kind: str
    start: int
    end: int
    kids: list[Node] = field(default_factory=list)
    ops: list[str] = field(default_factory=list)  # "op": the binary operators
    clauses: list[Clause] = field(default_factory=list)  # "flwor"
    steps: list[Step] = field(default_factory=list)  # "path"


@dataclass
class Clause:
    kind: str  # for, let, where, return, other
    start: int
    end: int
    var: str | None = None
    expr: Node | None = None
    plain: bool = True  # no "at $i", no "as type", no "allowing empty"


@dataclass
class Step:
    start: int
    primary_end: int
    end: int
    predicates: list[Node] = field(default_factory=list)
    kids: list[Node] = field(default_factory=list)


_BINARY_NAMES = {
    "and", "or", "eq", "ne", "lt", "le", "gt", "ge", "is", "div", "idiv", "mod",
    "union", "intersect", "except", "to", "otherwise",
}  # fmt: skip
_BINARY_SYMS = {"=", "!=", "<", "<=", ">", ">=", "<<", ">>", "||", "+", "-", "*", "|", "!", "=>"}
_TYPE_OPS = {("instance", "of"), ("treat", "as"), ("castable", "as"), ("cast", "as")}
_ENCLOSED = {"text", "document", "comment", "ordered", "unordered", "map", "array"}
_NAMED_CONSTRUCTORS = {"element", "attribute", "processing-instruction", "namespace"}
_UNSUPPORTED = {"switch", "typeswitch", "try", "function", "validate"}
_CLAUSE_WORDS = {"for", "let", "where", "order", "group", "count", "stable", "return"}


class Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    # tokens
    def _skip(self, i: int) -> int:
        t = self.text
        while i < len(t):
            if t[i].isspace():
                i += 1
            elif t.startswith("(:", i):
                depth, i = 1, i + 2
                while i < len(t) and depth:
                    if t.startswith("(:", i):
                        depth, i = depth + 1, i + 2
                    elif t.startswith(":)", i):
                        depth, i = depth - 1, i + 2
                    else:
                        i += 1
                if depth:
                    raise Unsupported("unclosed comment")
            else:
                break
        return i

    def peek(self, ahead: int = 0) -> Tok:
        i = self._skip(self.pos)
        tok = self._at(i)
        for _ in range(ahead):
            tok = self._at(self._skip(tok.end))
        return tok

    def _at(self, i: int) -> Tok:
        if i >= len(self.text):
            return Tok("end", "", i, i)
        m = _TOKEN.match(self.text, i)
        if m is None or m.lastgroup is None:
            raise Unsupported(f"unexpected character {self.text[i]!r}")
        return Tok(m.lastgroup, m.group(), i, m.end())

    def take(self, text: str | None = None) -> Tok:
        tok = self.peek()
        if tok.kind == "end" or (text is not None and tok.text != text):
            raise Unsupported(f"expected {text!r}")
        self.pos = tok.end
        return tok

    def is_word(self, tok: Tok, *words: str) -> bool:
        return tok.kind == "name" and tok.text in words

    # expressions
    def expr(self) -> Node:
        first = self.single()
        node = Node("seq", first.start, first.end, [first])
        while self.peek().text == ",":
            self.take(",")
            node.kids.append(self.single())
        node.end = node.kids[-1].end
        return node if len(node.kids) > 1 else first

    def single(self) -> Node:
        tok, nxt = self.peek(), self.peek(1)
        if self.is_word(tok, "for", "let") and nxt.kind == "var":
            return self.flwor()
        if self.is_word(tok, "for") and self.is_word(nxt, "tumbling", "sliding"):
            raise Unsupported("window clause")
        if self.is_word(tok, "some", "every") and nxt.kind == "var":
            return self.quantified()
        if self.is_word(tok, "if") and nxt.text == "(":
            return self.conditional()
        if tok.kind == "name" and tok.text in _UNSUPPORTED and nxt.text in ("(", "{"):
            raise Unsupported(tok.text)
        return self.binary()

    def flwor(self) -> Node:
        node = Node("flwor", self.peek().start, 0)
        while True:
            tok = self.peek()
            if self.is_word(tok, "for", "let") and self.peek(1).kind == "var":
                self.take()
                kind = tok.text
                clause_start = tok.start
                while True:
                    var = self.take()
                    if var.kind != "var":
                        raise Unsupported("binding without a variable")
                    plain = True
                    if self.is_word(self.peek(), "as"):
                        self.take()
                        self.sequence_type()
                        plain = False
                    if kind == "for" and self.is_word(self.peek(), "allowing"):
                        self.take()
                        self.take("empty")
                        plain = False
                    if kind == "for" and self.is_word(self.peek(), "at"):
                        self.take()
                        if self.take().kind != "var":
                            raise Unsupported("positional variable")
                        plain = False
                    self.take("in" if kind == "for" else ":=")
                    value = self.single()
                    node.clauses.append(
                        Clause(kind, clause_start, value.end, _var(var.text), value, plain)
                    )
                    node.kids.append(value)
                    if self.peek().text != ",":
                        break
                    clause_start = self.take(",").start
            elif self.is_word(tok, "where"):
                self.take()
                value = self.single()
                node.clauses.append(Clause("where", tok.start, value.end, expr=value))
                node.kids.append(value)
            elif self.is_word(tok, "return"):
                self.take()
                value = self.single()
                node.clauses.append(Clause("return", tok.start, value.end, expr=value))
                node.kids.append(value)
                node.end = value.end
                return node
            elif self.is_word(tok, "order", "stable") or self.is_word(tok, "group", "count"):
                self.other_clause(node)
            else:
                raise Unsupported(f"FLWOR clause {tok.text!r}")

    def other_clause(self, node: Node) -> None:
        """order by / group by / count: parsed for their extent, marked as not plain."""
        tok = self.take()
        if tok.text == "count":
            self.take()
        else:
            if tok.text == "stable":
                self.take("order")
            self.take("by")
            while True:
                node.kids.append(self.single())
                if tok.text == "group" and self.peek().text == ":=":
                    self.take()
                    node.kids.append(self.single())
                for word in ("ascending", "descending", "empty", "greatest", "least"):
                    if tok.text != "group" and self.is_word(self.peek(), word):
                        self.take()
                if self.is_word(self.peek(), "collation"):
                    self.take()
                    self.take()
                if self.peek().text != ",":
                    break
                self.take(",")
        node.clauses.append(Clause("other", tok.start, self.pos, plain=False))

    def quantified(self) -> Node:
        start = self.take().start
        node = Node("quantified", start, 0)
        while True:
            self.take()
            if self.is_word(self.peek(), "as"):
                self.take()
                self.sequence_type()
            self.take("in")
            node.kids.append(self.single())
            if self.peek().text != ",":
                break
            self.take(",")
        self.take("satisfies")
        node.kids.append(self.single())
        node.end = node.kids[-1].end
        return node

    def conditional(self) -> Node:
        start = self.take().start
        self.take("(")
        test = self.expr()
        self.take(")")
        self.take("then")
        yes = self.single()
        self.take("else")
        no = self.single()
        return Node("if", start, no.end, [test, yes, no])

    def sequence_type(self) -> None:
        tok = self.take()
        if tok.text == "(":  # a parenthesised item type
            self.sequence_type()
            self.take(")")
        elif self.peek().text == "(" and self.peek().start == tok.end:
            self.balanced("(", ")")
        if self.peek().text in ("?", "*", "+") and self.peek().start == self.pos:
            self.take()

    def balanced(self, open_: str, close: str) -> None:
        self.take(open_)
        depth = 1
        while depth:
            tok = self.take()
            if tok.text == open_:
                depth += 1
            elif tok.text == close:
                depth -= 1

    def binary(self) -> Node:
        first = self.unary()
        node = Node("op", first.start, first.end, [first])
        while True:
            tok = self.peek()
            if tok.text in (_BINARY_SYMS if tok.kind == "sym" else _BINARY_NAMES):
                op = self.take().text
            elif tok.kind == "name" and (tok.text, self.peek(1).text) in _TYPE_OPS:
                self.take()
                self.take()
                self.sequence_type()
                node.ops.append("type")
                node.end = self.pos
                continue
            else:
                break
            node.ops.append(op)
            node.kids.append(self.unary())
            node.end = node.kids[-1].end
        return node if node.ops else first

    def unary(self) -> Node:
        start = self.peek().start
        while self.peek().text in ("+", "-"):
            self.take()
        node = self.path()
        node.start = start
        return node

    def path(self) -> Node:
        tok = self.peek()
        node = Node("path", tok.start, tok.end)
        if tok.text in ("/", "//"):
            self.take()
            node.end = tok.end
            if not self._starts_step(self.peek()):
                return node
        node.steps.append(self.step())
        while self.peek().text in ("/", "//"):
            self.take()
            node.steps.append(self.step())
        node.end = node.steps[-1].end
        node.kids = [k for s in node.steps for k in s.kids]
        return node

    def _starts_step(self, tok: Tok) -> bool:
        if tok.kind in ("str", "num", "var", "name"):
            return not (tok.kind == "name" and tok.text in _BINARY_NAMES | {"return", "else"})
        return tok.text in ("(", ".", "..", "@", "*", "<", "[")

    def step(self) -> Step:
        """A primary and its postfixes; ``predicates`` holds the ``[…]`` ones only when
        they are all there is (else it is empty and the nested nodes go to ``kids``)."""
        start = self.peek().start
        primary = self.primary()
        step = Step(start, primary.end, primary.end, kids=list(primary.kids))
        only_predicates = True
        while True:
            tok = self.peek()
            if tok.text == "[":
                self.take()
                pred = self.expr()
                self.take("]")
                step.predicates.append(pred)
            elif tok.text == "(":
                self.take()
                if self.peek().text != ")":
                    step.kids.append(self.expr())
                self.take(")")
                only_predicates = False
            elif tok.text == "?":
                self.take()
                if self.peek().text == "(":
                    self.take()
                    step.kids.append(self.expr())
                    self.take(")")
                else:
                    self.take()
                only_predicates = False
            else:
                break
        step.end = self.pos
        step.kids.extend(step.predicates)
        if not only_predicates:
            step.predicates = []
        return step

    def primary(self) -> Node:
        tok = self.peek()
        start = tok.start
        if tok.kind in ("str", "num", "var"):
            self.take()
            return Node(tok.kind, start, tok.end)
        if tok.text == "(":
            self.take()
            if self.peek().text == ")":
                self.take()
                return Node("empty", start, self.pos)
            inner = self.expr()
            self.take(")")
            return Node("paren", start, self.pos, [inner])
        if tok.text in (".", "..", "*"):
            self.take()
            return Node("test", start, tok.end)
        if tok.text == "@":
            self.take()
            name = self.take()
            if name.kind != "name" and name.text != "*":
                raise Unsupported("attribute test")
            if self.peek().text == "(" and name.kind == "name":
                self.balanced("(", ")")
            return Node("test", start, self.pos)
        if tok.text == "<":
            return self.direct(start)
        if tok.text == "[":
            self.take()
            kids = [] if self.peek().text == "]" else [self.expr()]
            self.take("]")
            return Node("array", start, self.pos, kids)
        if tok.kind != "name":
            raise Unsupported(f"unexpected {tok.text!r}")
        self.take()
        nxt = self.peek()
        if nxt.text == "::":
            self.take()
            return self.primary_test(start)
        if nxt.text == "#":
            self.take()
            self.take()
            return Node("ref", start, self.pos)
        if tok.text in _ENCLOSED and nxt.text == "{":
            return self.enclosed(start)
        if tok.text in _NAMED_CONSTRUCTORS and (nxt.kind == "name" or nxt.text == "{"):
            kids = []
            if nxt.text == "{":
                kids.append(self.enclosed(nxt.start))
            else:
                self.take()
            if self.peek().text != "{":
                raise Unsupported("computed constructor")
            kids.append(self.enclosed(self.peek().start))
            return Node("constructor", start, self.pos, kids)
        if nxt.text == "(":
            self.take("(")
            kids = []
            if self.peek().text != ")":
                kids.append(self.expr())
            self.take(")")
            return Node("call", start, self.pos, kids, ops=[tok.text])
        return Node("test", start, tok.end)

    def primary_test(self, start: int) -> Node:
        name = self.take()
        if name.kind != "name" and name.text != "*":
            raise Unsupported("axis step")
        if self.peek().text == "(" and name.kind == "name":
            self.balanced("(", ")")
        return Node("test", start, self.pos)

    def enclosed(self, start: int) -> Node:
        self.take("{")
        kids = [] if self.peek().text == "}" else [self.expr()]
        self.take("}")
        return Node("enclosed", start, self.pos, kids)

    # direct constructors, read character by character
    def direct(self, start: int) -> Node:
        t = self.text
        node = Node("direct", start, 0)
        if t.startswith("<!--", start):
            end = t.find("-->", start + 4)
            if end < 0:
                raise Unsupported("direct comment")
            self.pos = node.end = end + 3
            return node
        if t.startswith("<?", start):
            end = t.find("?>", start + 2)
            if end < 0:
                raise Unsupported("direct PI")
            self.pos = node.end = end + 2
            return node
        self.pos = self._element(start, node)
        node.end = self.pos
        return node

    def _element(self, i: int, node: Node) -> int:
        t = self.text
        m = re.compile(rf"<({_NCNAME}(?::{_NCNAME})?)").match(t, i)
        if m is None:
            raise Unsupported("direct constructor")
        name, i = m.group(1), m.end()
        while True:
            while i < len(t) and t[i].isspace():
                i += 1
            if t.startswith("/>", i):
                return i + 2
            if t.startswith(">", i):
                i += 1
                break
            m = re.compile(rf"{_NCNAME}(?::{_NCNAME})?\s*=\s*").match(t, i)
            if m is None or m.end() >= len(t) or t[m.end()] not in "\"'":
                raise Unsupported("direct attribute")
            i = self._attribute_value(m.end(), node)
        while True:  # content
            if i >= len(t):
                raise Unsupported("unclosed element")
            if t.startswith("</", i):
                m = re.compile(rf"</{re.escape(name)}\s*>").match(t, i)
                if m is None:
                    raise Unsupported("mismatched end tag")
                return m.end()
            if t.startswith("<![CDATA[", i):
                end = t.find("]]>", i)
                if end < 0:
                    raise Unsupported("CDATA")
                i = end + 3
            elif t.startswith("<!--", i):
                end = t.find("-->", i)
                if end < 0:
                    raise Unsupported("comment")
                i = end + 3
            elif t.startswith("<?", i):
                end = t.find("?>", i)
                if end < 0:
                    raise Unsupported("PI")
                i = end + 2
            elif t[i] == "<":
                i = self._element(i, node)
            elif t.startswith("{{", i) or t.startswith("}}", i):
                i += 2
            elif t[i] == "{":
                i = self._enclosed_at(i, node)
            elif t[i] == "}":
                raise Unsupported("lone } in element content")
            else:
                i += 1

    def _attribute_value(self, i: int, node: Node) -> int:
        t = self.text
        quote = t[i]
        i += 1
        while True:
            if i >= len(t):
                raise Unsupported("unclosed attribute")
            if t[i] == quote:
                if t.startswith(quote * 2, i):
                    i += 2
                    continue
                return i + 1
            if t.startswith("{{", i) or t.startswith("}}", i):
                i += 2
            elif t[i] == "{":
                i = self._enclosed_at(i, node)
            elif t[i] in "}<":
                raise Unsupported("bad attribute value")
            else:
                i += 1

    def _enclosed_at(self, i: int, node: Node) -> int:
        self.pos = i
        node.kids.append(self.enclosed(i))
        return self.pos


def _var(text: str) -> str:
    return "".join(text[1:].split())


# --- the rewrite ---------------------------------------------------------------------------

_STRING = r"(?:\"(?:[^\"]|\"\")*\"|'(?:[^']|'')*')"
_QNAME = rf"{_NCNAME}(?::{_NCNAME})?"
_SOURCE = re.compile(
    rf"Q\{{{re.escape(_NS)}\}}(doc|collection)\s*\(\s*({_STRING})\s*\)"
    rf"((?:\s*//?\s*(?:{_QNAME}|\*))+)"
)
_REL_STEP = rf"(?:@?{_QNAME}|text\(\))"
_KEY = re.compile(rf"(?:\.|{_REL_STEP}(?:/{_REL_STEP})*)")
_VAR_PATH = re.compile(rf"\$((?:Q\{{[^{{}}]*\}})?{_QNAME})((?:/{_REL_STEP})*)")
# the other side of the comparison: a variable's path, or a stored document's
_VALUES = re.compile(
    rf"{_VAR_PATH.pattern}|Q\{{{re.escape(_NS)}\}}(?:doc|collection)\({_STRING}\)"
    rf"(?://?(?:{_QNAME}|\*))*(?:/{_REL_STEP})*"
)
_COLLATION = re.compile(r"declare\s+default\s+collation\b")


def _squash(text: str) -> str:
    """The text without whitespace outside its string literals, or "" when it holds a
    comment (never a simple path then)."""
    parts = re.split(f"({_STRING})", text)
    if any("(:" in p for p in parts[::2]):
        return ""
    return "".join(p if i % 2 else "".join(p.split()) for i, p in enumerate(parts))


class _Rewriter:
    def __init__(self, text: str) -> None:
        self.text = text
        self.edits: list[tuple[int, int, str]] = []
        self.joins: list[Join] = []

    def source(self, node: Node) -> str | None:
        """The user's spelling of a stable node source (doc/collection path), or None."""
        m = _SOURCE.fullmatch(self.text[node.start : node.end].strip())
        if m is None:
            return None
        return f"{m.group(1)}({m.group(2)}){''.join(m.group(3).split())}"

    def lookup(self, source: str, key: str, values: str, fallback: str) -> str:
        """The expression replacing a scan: P2's nodes whose key equals one of ``values``."""
        var = f"{JOIN_VAR_PREFIX}{len(self.joins) + 1}"
        self.joins.append(Join(var, source, key))
        k, x = f"$Q{{{_NS}}}k", f"$Q{{{_NS}}}x"
        return (
            f"(let {k} := {_FN}data({values}) return if (every {x} in {k} satisfies "
            f"({x} instance of {_XS}string or {x} instance of {_XS}untypedAtomic)) "
            f"then ((for {x} in {k} return ${var}({_FN}string({x}))) | ()) "
            f"else {fallback}[{key} = {k}])"
        )

    def walk(self, node: Node) -> None:
        if node.kind == "flwor":
            self.flwor(node)
        elif node.kind == "path":
            self.predicates(node)
        for kid in node.kids:
            self.walk(kid)

    def flwor(self, node: Node) -> None:
        clauses = node.clauses
        for wi, where in enumerate(clauses):
            if where.kind != "where" or where.expr is None:
                continue
            sides = self.comparison(where.expr)
            if sides is None:
                continue
            for bi in range(wi - 1, -1, -1):
                binding = clauses[bi]
                if binding.kind not in ("for", "let") or not binding.plain:
                    break
                if binding.kind != "for" or binding.expr is None:
                    continue
                later = {c.var for c in clauses[bi:wi] if c.var}
                for mine, other in (sides, sides[::-1]):
                    key = self.key_of(mine, binding.var)
                    values = _VALUES.fullmatch(other)
                    if key is None or values is None or values.group(1) in later:
                        continue
                    src = self.source(binding.expr)
                    if src is None:
                        continue
                    scan = self.text[binding.expr.start : binding.expr.end]
                    self.edits.append(
                        (binding.expr.start, binding.expr.end, self.lookup(src, key, other, scan))
                    )
                    self.edits.append((where.start, where.end, _blank(self.text, where)))
                    return  # one join per FLWOR

    def comparison(self, node: Node) -> tuple[str, str] | None:
        if node.kind != "op" or node.ops != ["="] or len(node.kids) != 2:
            return None
        left, right = (_squash(self.text[k.start : k.end]) for k in node.kids)
        return (left, right) if left and right else None

    def key_of(self, side: str, var: str | None) -> str | None:
        m = _VAR_PATH.fullmatch(side)
        if m is None or var is None or m.group(1) != var:
            return None
        return m.group(2)[1:] if m.group(2) else "."

    def predicates(self, node: Node) -> None:
        for step in node.steps:
            if len(step.predicates) != 1 or step.primary_end == step.end:
                continue
            pred = step.predicates[0]
            sides = self.comparison(pred)
            prefix = Node("path", node.start, step.primary_end)
            src = self.source(prefix) if sides else None
            if sides is None or src is None:
                continue
            for mine, other in (sides, sides[::-1]):
                if _KEY.fullmatch(mine) and _VALUES.fullmatch(other):
                    scan = self.text[node.start : step.primary_end]
                    self.edits.append((node.start, step.end, self.lookup(src, mine, other, scan)))
                    return

    def result(self) -> str:
        out = self.text
        for start, end, new in sorted(self.edits, reverse=True):
            out = out[:start] + new + out[end:]
        return out


def _blank(text: str, clause: Clause) -> str:
    return "".join("\n" if c == "\n" else " " for c in text[clause.start : clause.end])


def rewrite(query: str, body_start: int) -> Joined | None:
    """``query`` (doc and collection calls already renamed) with its equality joins answered
    through hash indexes, or None when there is nothing to rewrite. ``body_start`` is where
    the prolog ends."""
    if "where" not in query and "[" not in query:
        return None
    if _COLLATION.search(query[:body_start]):
        return None
    parser = Parser(query)
    parser.pos = body_start
    try:
        tree = parser.expr()
        if parser.peek().kind != "end":
            return None
    except (Unsupported, IndexError):
        return None
    rewriter = _Rewriter(query)
    rewriter.walk(tree)
    if not rewriter.edits:
        return None
    return Joined(rewriter.result(), tuple(rewriter.joins), query)
