"""Preparing a query for Saxon: ``doc``/``document``/``collection`` go to the stored documents.

The calls are renamed to cairn's own functions, declared in the prolog and answered from
external maps of parsed documents, so a query reaches this database's documents and nothing
else (Saxon's own URI access is switched off too, see ``_engine``). The scanner knows strings
and comments, enough to find calls and the end of the prolog without a full XQuery parser.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from cairn.xmldb import _joins
from cairn.xmldb._joins import Join

__all__ = [
    "COLLS_VAR",
    "DOCS_VAR",
    "DOC_VAR_PREFIX",
    "INDEX_KEYS_VAR",
    "INDEX_TYPES_VAR",
    "Prepared",
    "prepare",
]

DOCS_VAR = "cairn_stored_documents"
COLLS_VAR = "cairn_stored_collections"
DOC_VAR_PREFIX = "cairn_doc_"
INDEX_KEYS_VAR = "cairn_index_keys"
INDEX_TYPES_VAR = "cairn_index_types"
_NS = "urn:cairn:xmldb"
_ERR = "QName('http://www.w3.org/2005/xqt-errors', 'err:FODC0002')"
_MAP = "Q{http://www.w3.org/2005/xpath-functions/map}"

# One line each, so the engine's line numbers stay the user's. A query gets only the
# functions it calls: Saxon compiles the whole prolog on every statement, and the unused
# ones cost 0.4 ms of a 1 ms Q1 (issue #18, fixed cost per statement).
_DOCS_PROLOG = f"declare variable ${DOCS_VAR} as map(*) external; "
_DOC_PROLOG = (
    f"declare function Q{{{_NS}}}doc($n as xs:string?) as document-node()? {{ "
    f"if (empty($n)) then () else if ({_MAP}contains(${DOCS_VAR}, $n)) then ${DOCS_VAR}($n) "
    f"else error({_ERR}, 'FODC0002: Document not found: ' || $n) }}; "
    f"declare function Q{{{_NS}}}doc($n as xs:string?, $c as xs:string?) as document-node()? "
    f"{{ Q{{{_NS}}}doc($n) }}; "
)
_COLLECTION_PROLOG = (
    f"declare variable ${COLLS_VAR} as map(*) external; "
    f"declare function Q{{{_NS}}}collection($n as xs:string?) as document-node()* {{ "
    f"if (empty($n) or not({_MAP}contains(${COLLS_VAR}, $n))) "
    f"then error({_ERR}, 'FODC0002: Collection not found: ' || string($n)) "
    f"else for $k in tokenize(${COLLS_VAR}($n), '&#10;')[.] return ${DOCS_VAR}($k) }}; "
    f"declare function Q{{{_NS}}}collection() as document-node()* {{ "
    f"error({_ERR}, 'FODC0002: There is no default collection; name one.') }}; "
)
PROLOG = _DOCS_PROLOG + _DOC_PROLOG + _COLLECTION_PROLOG

_XS = "Q{http://www.w3.org/2001/XMLSchema}"
_CASTS = " else ".join(
    f"if ($t = 'xs:{t}') then {_XS}{t}($v)"
    for t in ("integer", "decimal", "double", "float", "date", "dateTime", "time", "boolean")
)
_KEY = f"Q{{{_NS}}}index-key"
_RANGE = f"Q{{{_NS}}}index-range"
_SCAN_ERR = "QName('urn:cairn:xmldb', 'cairn:{0}'), '{0}: {1}'"
_CONDITIONS = {"LT": "$x lt $k", "LE": "$x le $k", "GT": "$x gt $k", "GE": "$x ge $k"}
_RANGES = {  # Sedna's: INT open, SEG closed, HINTL closed on the left, HINTR on the right
    "INT": "$x gt $a and $x lt $b",
    "SEG": "$x ge $a and $x le $b",
    "HINTL": "$x ge $a and $x lt $b",
    "HINTR": "$x gt $a and $x le $b",
}


def _choose(tests: dict[str, str]) -> str:
    return "".join(
        f"else if ($c = '{c}') then {_RANGE}($n, function($x) {{ {test} }}) "
        for c, test in tests.items()
    )


# index-scan and index-scan-between (Sedna's), over the maps ``_indexes`` builds; one line.
INDEX_PROLOG = (
    f"declare variable ${INDEX_KEYS_VAR} as map(*) external; "
    f"declare variable ${INDEX_TYPES_VAR} as map(*) external; "
    f"declare function {_KEY}($n as xs:string, $v as xs:anyAtomicType?) as xs:anyAtomicType? {{ "
    f"let $t := ${INDEX_TYPES_VAR}($n) return "
    f"if (empty($t)) then error({_SCAN_ERR.format('XMLI0001', 'Index not found: ')} || $n) "
    f"else if (empty($v)) then () else {_CASTS} else {_XS}string($v) }}; "
    f"declare function {_RANGE}($n as xs:string, $ok as function(*)) as node()* {{ "
    f"let $m := ${INDEX_KEYS_VAR}($n) return "
    f"(for $k in {_MAP}keys($m) where $ok($k) return $m($k)) | () }}; "
    f"declare function Q{{{_NS}}}index-scan($n as xs:string, $v as xs:anyAtomicType?, "
    f"$c as xs:string) as node()* {{ let $k := {_KEY}($n, $v) return "
    f"if (empty($k)) then () else if ($c = 'EQ') then ${INDEX_KEYS_VAR}($n)($k) "
    f"{_choose(_CONDITIONS)}"
    f"else error({_SCAN_ERR.format('SE5050', 'index scan condition must be GT, LT, GE, LE or EQ')})"
    f" }}; "
    f"declare function Q{{{_NS}}}index-scan-between($n as xs:string, $lo as xs:anyAtomicType?, "
    f"$hi as xs:anyAtomicType?, $c as xs:string) as node()* {{ "
    f"let $a := {_KEY}($n, $lo), $b := {_KEY}($n, $hi) return "
    f"if (empty($a) or empty($b)) then () {_choose(_RANGES)}"
    f"else error({_SCAN_ERR.format('SE5051', 'index scan range must be INT, SEG, HINTL or HINTR')})"
    f" }}; "
)
_SCAN = re.compile(
    r"(?<![\w\-.:$@}])(?:fn:|Q\{http://www\.w3\.org/2005/xpath-functions\})?"
    r"(index-scan-between|index-scan)(\s*\()"
)

_CALL = re.compile(
    r"(?<![\w\-.:$@}])(?:fn:|Q\{http://www\.w3\.org/2005/xpath-functions\})?"
    r"(doc|document|collection)(\s*\()"
)
_LITERAL_ARG = re.compile(r"\s*(?:\"((?:[^\"]|\"\")*)\"|'((?:[^']|'')*)')\s*[,)]")
_DECLARE = re.compile(r"(declare|import)\s+(%|[\w-]+)")
_VERSION = re.compile(r"xquery\s+(version|encoding)\b")
_SETTERS = {
    "boundary-space",
    "default",
    "base-uri",
    "construction",
    "ordering",
    "copy-namespaces",
    "decimal-format",
    "namespace",
    "schema",
    "module",
}
_LATER = {"variable", "function", "option", "context", "updating", "%"}


@dataclass(frozen=True)
class Prepared:
    text: str
    documents: frozenset[str]  # names given literally to doc()/document()
    collections: frozenset[str]
    dynamic: bool  # some call names its document at run time: bind them all
    prolog_line: int = 1  # where cairn's one-line prolog went, to report the user's columns
    prolog_column: int = 1
    joins: tuple[Join, ...] = ()  # hash indexes the text's rewritten joins look up (_joins)
    original: str | None = None  # the text without the join rewrite, when there is one
    scans: bool = False  # calls index-scan or index-scan-between
    indexes: frozenset[str] = frozenset()  # index names given to them literally
    all_indexes: bool = False  # some scan names its index at run time
    prolog_size: int = len(PROLOG)
    bound: tuple[str, ...] = ()  # documents bound as variables, the n-th as DOC_VAR_PREFIX + n

    def user_position(self, line: int | None, column: int | None) -> tuple[int | None, int | None]:
        if line == self.prolog_line and column is not None and column > self.prolog_column:
            column = max(self.prolog_column, column - self.prolog_size)
        return line, column


# Words after which ``<`` starts a direct constructor rather than comparing (with the
# punctuation in ``_EXPR_PUNCT``): where the grammar expects an expression.
_EXPR_WORDS = frozenset(
    {"return", "then", "else", "in", "satisfies", "and", "or", "to", "union", "intersect"}
    | {"except", "div", "idiv", "mod", "eq", "ne", "lt", "le", "gt", "ge", "is"}
)
_EXPR_PUNCT = "(,{[;=:!|+-*"
_TAG_NAME = re.compile(r"[A-Za-z_][\w.\-:]*")


def _quoted_end(query: str, i: int) -> int:
    """Past the string literal opening at ``i`` (a doubled quote stays inside it)."""
    quote, j = query[i], i + 1
    while j < len(query):
        if query[j] == quote:
            if query.startswith(quote * 2, j):
                j += 2
                continue
            return j + 1
        j += 1
    return j


def _comment_end(query: str, i: int) -> int:
    depth, j = 1, i + 2
    while j < len(query) and depth:
        if query.startswith("(:", j):
            depth, j = depth + 1, j + 2
        elif query.startswith(":)", j):
            depth, j = depth - 1, j + 2
        else:
            j += 1
    return j


def _starts_constructor(query: str, i: int) -> bool:
    """Whether the ``<`` at ``i`` opens a direct constructor (not a comparison)."""
    after = query[i + 1 : i + 2]
    if not (after.isalpha() or after == "_" or query.startswith(("<!--", "<?"), i)):
        return False
    j = i - 1
    while j >= 0 and query[j].isspace():
        j -= 1
    if j < 0 or query[j] in _EXPR_PUNCT:
        return True
    k = j
    while k >= 0 and (query[k].isalnum() or query[k] in "-_"):
        k -= 1
    word = query[k + 1 : j + 1]
    return word in _EXPR_WORDS and (k < 0 or query[k] not in "$@/:.")


def _code_spans(query: str) -> list[tuple[int, int]]:
    """(start, end) of the parts that are XQuery code: outside string literals, comments and
    the literal parts of direct constructors (their text and attribute values, where only
    ``{…}`` is code again)."""
    spans: list[tuple[int, int]] = []
    n = len(query)

    def code(i: int, enclosed: bool) -> int:
        start, depth = i, 0
        while i < n:
            ch = query[i]
            if ch in "\"'":
                spans.append((start, i))
                i = start = _quoted_end(query, i)
            elif query.startswith("(:", i):
                spans.append((start, i))
                i = start = _comment_end(query, i)
            elif ch == "<" and _starts_constructor(query, i):
                spans.append((start, i))
                i = start = constructor(i)
            elif ch == "{":
                depth, i = depth + 1, i + 1
            elif ch == "}" and enclosed and depth == 0:
                spans.append((start, i))
                return i + 1
            else:
                depth -= ch == "}"
                i += 1
        spans.append((start, n))
        return n

    def literal(i: int, stop: str) -> int:
        """Text of a constructor up to ``stop`` (a quote, or ``<`` for element content)."""
        while i < n and not query.startswith(stop, i):
            if query.startswith(("{{", "}}"), i):
                i += 2
            elif query[i] == "{":
                i = code(i + 1, enclosed=True)
            elif stop == "<" and query[i] == "<":
                break
            else:
                i += 1
        return i

    def constructor(i: int) -> int:
        for opening, closing in (("<!--", "-->"), ("<?", "?>"), ("<![CDATA[", "]]>")):
            if query.startswith(opening, i):
                end = query.find(closing, i + len(opening))
                return n if end < 0 else end + len(closing)
        name = _TAG_NAME.match(query, i + 1)
        if name is None:
            return i + 1
        i = name.end()
        while i < n:
            if query[i].isspace():
                i += 1
            elif query.startswith("/>", i):
                return i + 2
            elif query[i] == ">":
                return content(i + 1)
            elif query[i] in "\"'":
                quote = query[i]
                i = literal(i + 1, quote)
                i += query.startswith(quote, i)
                while query.startswith(quote * 2, i - 1) and i < n:  # a doubled quote: go on
                    i = literal(i + 1, quote) + 1
            else:
                i += 1  # attribute names and '='
        return n

    def content(i: int) -> int:
        while i < n:
            i = literal(i, "<")
            if query.startswith("</", i):
                end = query.find(">", i)
                return n if end < 0 else end + 1
            if i < n:
                i = constructor(i)
        return n

    code(0, enclosed=False)
    return [(a, b) for a, b in spans if b > a]


def _in_code(spans: list[tuple[int, int]], index: int) -> bool:
    return any(a <= index < b for a, b in spans)


def _skip_blank(query: str, spans: list[tuple[int, int]], i: int) -> int:
    """Past whitespace and comments (not strings: a string starts the query body)."""
    while i < len(query):
        if query[i].isspace():
            i += 1
        elif query.startswith("(:", i):
            while i < len(query) and not _in_code(spans, i):
                i += 1
        else:
            break
    return i


def _statement_end(query: str, spans: list[tuple[int, int]], i: int) -> int:
    depth = 0
    while i < len(query):
        if _in_code(spans, i):
            ch = query[i]
            if ch in "({[":
                depth += 1
            elif ch in ")}]":
                depth -= 1
            elif ch == ";" and depth <= 0:
                return i
        i += 1
    return len(query)


def _body_start(query: str, spans: list[tuple[int, int]], i: int) -> int:
    """Past the prolog's declarations, from ``i``: where the query body begins."""
    while _DECLARE.match(query, i):
        i = _skip_blank(query, spans, _statement_end(query, spans, i) + 1)
    return i


def _insert_point(query: str, spans: list[tuple[int, int]]) -> int:
    i = _skip_blank(query, spans, 0)
    if _VERSION.match(query, i):
        i = _skip_blank(query, spans, _statement_end(query, spans, i) + 1)
    while True:
        m = _DECLARE.match(query, i)
        if not m:
            return i
        kind = m.group(2)
        if kind in _LATER and m.group(1) == "declare":
            return i
        if kind not in _SETTERS:
            return i
        i = _skip_blank(query, spans, _statement_end(query, spans, i) + 1)


@functools.lru_cache(maxsize=512)
def prepare(query: str) -> Prepared:
    """Rename the document functions, note which names they take, add cairn's prolog.
    Cached by text: the join scanner costs up to 11 ms on XMark's Q2 and Q20 (a fifth of
    their run), and a client repeats its statements."""
    spans = _code_spans(query)
    docs: set[str] = set()
    colls: set[str] = set()
    dynamic = False
    out: list[str] = []
    last = 0
    for m in _CALL.finditer(query):
        if not _in_code(spans, m.start()):
            continue
        name = m.group(1)
        arg = _LITERAL_ARG.match(query, m.end())
        if arg:
            raw = arg.group(1) if arg.group(1) is not None else arg.group(2)
            literal = raw.replace('""', '"').replace("''", "'")
            (colls if name == "collection" else docs).add(literal)
        elif not re.match(r"\s*\)", query[m.end() :]):
            dynamic = True
        target = "collection" if name == "collection" else "doc"
        out.append(query[last : m.start()])
        out.append(f"Q{{{_NS}}}{target}{m.group(2)}")
        last = m.end()
    out.append(query[last:])
    body, indexes, all_indexes, scans = _rename_scans("".join(out))
    spans = _code_spans(body)
    at = _insert_point(body, spans)
    line = body.count("\n", 0, at) + 1
    column = at - (body.rfind("\n", 0, at) + 1) + 1
    joined = None
    if _NS not in query and _joins.JOIN_VAR_PREFIX not in query:
        joined = _joins.rewrite(body, _body_start(body, spans, at))
    bound: dict[str, str] = {}  # literal document name -> its variable
    if _NS not in query:
        body = _bind_documents(body, at, bound)
    tail = ""
    if joined is not None:
        tail = "".join(f"declare variable ${j.variable} as map(*) external; " for j in joined.joins)
        rewritten = _bind_documents(joined.text, at, bound)
        rewritten = rewritten[:at] + _prolog(rewritten[at:], scans, bound) + tail + rewritten[at:]
    prolog = _prolog(body[at:], scans, bound)
    text = body[:at] + prolog + body[at:]
    return Prepared(
        text=rewritten if joined is not None else text,
        documents=frozenset(docs),
        collections=frozenset(colls),
        dynamic=dynamic,
        prolog_line=line,
        prolog_column=column,
        joins=joined.joins if joined is not None else (),
        original=text if joined is not None else None,
        scans=scans,
        indexes=frozenset(indexes),
        all_indexes=all_indexes,
        prolog_size=len(prolog),
        bound=tuple(bound),
    )


_LITERAL_DOC = re.compile(
    rf"Q\{{{re.escape(_NS)}\}}doc\s*\(\s*(\"(?:[^\"]|\"\")*\"|'(?:[^']|'')*')\s*\)"
)


def _bind_documents(body: str, at: int, bound: dict[str, str]) -> str:
    """Each ``doc("name")`` with a literal name after ``at`` as an external variable bound to
    the document: Saxon then compiles no lookup function (0.15 ms a statement, issue #18).
    Only renamed calls match, and cairn checked on renaming that they are code."""

    def variable(m: re.Match[str]) -> str:
        raw = m.group(1)
        name = raw[1:-1].replace(raw[0] * 2, raw[0])
        return "$" + bound.setdefault(name, f"{DOC_VAR_PREFIX}{len(bound)}")

    return body[:at] + _LITERAL_DOC.sub(variable, body[at:])


def _prolog(body: str, scans: bool, bound: dict[str, str]) -> str:
    """cairn's prolog for ``body``: only the functions it still calls."""
    return (
        _DOCS_PROLOG
        + "".join(f"declare variable ${v} as document-node() external; " for v in bound.values())
        + (_DOC_PROLOG if f"Q{{{_NS}}}doc" in body else "")
        + (_COLLECTION_PROLOG if f"Q{{{_NS}}}collection" in body else "")
        + (INDEX_PROLOG if scans else "")
    )


def _rename_scans(body: str) -> tuple[str, set[str], bool, bool]:
    """index-scan(-between) calls renamed to cairn's; the names they take literally, whether
    one names its index at run time, whether there is any."""
    spans = _code_spans(body)
    names: set[str] = set()
    dynamic = found = False
    out: list[str] = []
    last = 0
    for m in _SCAN.finditer(body):
        if not _in_code(spans, m.start()):
            continue
        found = True
        arg = _LITERAL_ARG.match(body, m.end())
        if arg:
            raw = arg.group(1) if arg.group(1) is not None else arg.group(2)
            names.add(raw.replace('""', '"').replace("''", "'"))
        else:
            dynamic = True
        out.append(body[last : m.start()])
        out.append(f"Q{{{_NS}}}{m.group(1)}{m.group(2)}")
        last = m.end()
    out.append(body[last:])
    return "".join(out), names, dynamic, found
