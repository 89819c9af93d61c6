"""The comment scanner: which lines of a source file are comments, per language.

YesWorkflow reads its annotations from comments only, so the scanner must know each language's
comment markers and skip string literals (a ``#`` inside ``"a # b"`` starts no comment).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from cairn.errors import Invalid

__all__ = [
    "EXTENSIONS",
    "LANGUAGES",
    "CommentLine",
    "Language",
    "UnknownLanguage",
    "language_for",
    "scan_comments",
]


class UnknownLanguage(Invalid):
    code = "yw-unknown-language"
    title = "Unknown source language"


@dataclass(frozen=True)
class Language:
    """How one language writes comments and strings."""

    name: str
    line_markers: tuple[str, ...]
    blocks: tuple[tuple[str, str], ...] = ()
    quotes: tuple[str, ...] = ("'", '"')
    # shell: '#' starts a comment only at the start of a word ($# and a#b are not comments)
    word_start_only: bool = False
    # MATLAB: '%{' opens a block only alone on its line; ' after a value is the transpose
    block_alone_on_line: bool = False
    transpose_quote: bool = False
    # R: roxygen lines (#') hold roxygen's own @param/@return, not YesWorkflow's
    skip_prefixes: tuple[str, ...] = ()


LANGUAGES: dict[str, Language] = {
    "python": Language("python", ("#",), (('"""', '"""'), ("'''", "'''"))),
    "r": Language("r", ("#",), skip_prefixes=("#'",)),
    "shell": Language("shell", ("#",), word_start_only=True),
    "matlab": Language(
        "matlab", ("%",), (("%{", "%}"),), block_alone_on_line=True, transpose_quote=True
    ),
    "sql": Language("sql", ("--",), (("/*", "*/"),), quotes=("'",)),
    "c": Language("c", ("//",), (("/*", "*/"),)),
}

ALIASES = {
    "py": "python",
    "bash": "shell",
    "sh": "shell",
    "zsh": "shell",
    "octave": "matlab",
    "m": "matlab",
    "cpp": "c",
    "c++": "c",
    "java": "c",
    "javascript": "c",
    "js": "c",
    "typescript": "c",
    "go": "c",
    "rust": "c",
}

EXTENSIONS: dict[str, str] = {
    ".py": "python",
    ".r": "r",
    ".sh": "shell",
    ".bash": "shell",
    ".zsh": "shell",
    ".m": "matlab",
    ".sql": "sql",
    **{
        ext: "c" for ext in (".c", ".h", ".cc", ".cpp", ".hpp", ".java", ".js", ".ts", ".go", ".rs")
    },
}


def language_for(path: str | Path, language: str | None = None) -> Language:
    """The language named by ``language`` (or an alias), else the one of the file extension.

    Raises:
        UnknownLanguage: neither names a language cairn knows.
    """
    known = ", ".join(sorted(LANGUAGES))
    if language:
        key = language.lower()
        key = ALIASES.get(key, key)
        if key not in LANGUAGES:
            raise UnknownLanguage(f"unknown language {language!r}; known: {known}")
        return LANGUAGES[key]
    suffix = Path(path).suffix.lower()
    if suffix not in EXTENSIONS:
        raise UnknownLanguage(
            f"{path}: cannot tell the language from the extension {suffix or '(none)'!r}; "
            f"pass --language ({known})"
        )
    return LANGUAGES[EXTENSIONS[suffix]]


@dataclass(frozen=True)
class CommentLine:
    """The text of one comment on one source line (markers stripped)."""

    line: int
    text: str


def scan_comments(text: str, language: Language) -> list[CommentLine]:
    """Every comment line of ``text``, in order; a block comment gives one entry per line."""
    found: list[CommentLine] = []
    closer: str | None = None  # set while inside a block comment
    for number, raw in enumerate(text.splitlines(), start=1):
        if closer is not None:
            end = raw.find(closer)
            if end < 0:
                found.append(CommentLine(number, _strip_block_line(raw, language)))
                continue
            found.append(CommentLine(number, _strip_block_line(raw[:end], language)))
            rest_start = end + len(closer)
            closer = None
            closer = _scan_code(raw, rest_start, number, language, found)
            continue
        closer = _scan_code(raw, 0, number, language, found)
    return found


def _strip_block_line(text: str, language: Language) -> str:
    stripped = text.strip()
    if language.name == "c" or language.name == "sql":
        stripped = stripped.lstrip("*").strip()  # the ' * ' gutter of /* ... */ blocks
    return stripped


def _scan_code(
    raw: str, start: int, number: int, language: Language, found: list[CommentLine]
) -> str | None:
    """Scan ``raw[start:]`` as code; record comments; return a block closer left open."""
    if language.block_alone_on_line and start == 0:
        for opener, closer in language.blocks:
            if raw.strip() == opener:
                return closer
    i = start
    special = _special(language)
    escapes = language.name not in ("matlab", "sql")
    while True:
        hit = special.search(raw, i)
        if hit is None:
            return None
        i = hit.start()
        if not language.block_alone_on_line:
            opened = _open_block(raw, i, number, language, found)
            if isinstance(opened, str):
                return opened
            if opened is not None:
                i = opened
                continue
        marker = next((m for m in language.line_markers if raw.startswith(m, i)), None)
        if marker is not None and _starts_comment(raw, i, language):
            if any(raw.startswith(p, i) for p in language.skip_prefixes):
                return None
            found.append(CommentLine(number, raw[i + len(marker) :].strip()))
            return None
        ch = raw[i]
        i += 1
        if ch in language.quotes and _opens_string(raw, i - 1, language):
            i = _string_end(raw, i, ch, escapes)


_SPECIAL: dict[str, re.Pattern[str]] = {}


def _special(language: Language) -> re.Pattern[str]:
    """What can start a comment or a string in ``language`` (the scanner jumps between them)."""
    if language.name not in _SPECIAL:
        tokens = [o for o, _ in language.blocks] + list(language.line_markers)
        tokens += list(language.quotes)
        tokens.sort(key=len, reverse=True)
        _SPECIAL[language.name] = re.compile("|".join(re.escape(t) for t in tokens))
    return _SPECIAL[language.name]


def _string_end(raw: str, i: int, quote: str, escapes: bool) -> int:
    """The index after the string starting before ``i`` (the line's end if it stays open)."""
    while i < len(raw):
        ch = raw[i]
        if escapes and ch == "\\":
            i += 2
        elif ch == quote:
            return i + 1
        else:
            i += 1
    return i


def _open_block(
    raw: str, i: int, number: int, language: Language, found: list[CommentLine]
) -> int | str | None:
    """A block comment opening at ``i``: the index after its closer on this line, or the
    closer still awaited (str), or None when no block opens here."""
    for opener, closer in language.blocks:
        if not raw.startswith(opener, i):
            continue
        end = raw.find(closer, i + len(opener))
        body = raw[i + len(opener) : end if end >= 0 else len(raw)]
        if body.strip():
            found.append(CommentLine(number, _strip_block_line(body, language)))
        return closer if end < 0 else end + len(closer)
    return None


def _starts_comment(raw: str, i: int, language: Language) -> bool:
    if not language.word_start_only:
        return True
    return i == 0 or raw[i - 1] in " \t;|&("


def _opens_string(raw: str, i: int, language: Language) -> bool:
    if not language.transpose_quote or raw[i] != "'":
        return True
    before = raw[:i].rstrip()
    return not before or not (before[-1].isalnum() or before[-1] in ")]}'._")
