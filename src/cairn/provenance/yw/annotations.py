"""The tag parser: YesWorkflow annotations in comment lines, with qualifiers linked.

Rules (docs/yesworkflow.md says them for users):

* A keyword is ``@`` + one of :data:`KEYWORDS` at the start of a word, in any case; a comment
  line holding several keywords is split where each starts.
* The value of ``@desc`` and ``@log`` is the rest of its segment; every other keyword takes one
  whitespace-free token (further tokens are ignored, as YesWorkflow does).
* Continuation: a comment line holding no keyword, directly after the line of an annotation
  that is still *open*, continues it. Open means: a keyword still without its value (its value
  is then the next line's first token, or text for ``@desc``/``@log``); an ``@uri``/``@file``
  value ending in ``/`` (a path broken at a separator: the next line's first token is glued on
  with no space); an ``@desc`` (prose: each following line is appended after a newline). A
  blank comment line or a line of code ends it. This reads the seed paper's wrapped listings
  exactly as their one-line originals.
* Qualifiers (``@as @uri @file @desc @log``) attach to the latest primary annotation.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cairn.errors import Invalid
from cairn.provenance.yw.comments import CommentLine, language_for, scan_comments

__all__ = [
    "KEYWORDS",
    "PORT_TAGS",
    "Annotation",
    "AnnotationError",
    "Extraction",
    "Source",
    "extract_files",
    "extract_text",
]

KEYWORDS = (
    "begin",
    "end",
    "in",
    "out",
    "param",
    "return",
    "as",
    "uri",
    "file",
    "desc",
    "call",
    "log",
)
PRIMARY = frozenset({"begin", "end", "in", "out", "param", "return", "call"})
PORT_TAGS = frozenset({"in", "out", "param", "return"})
TEXT_VALUED = frozenset({"desc", "log"})
# which primary annotations each qualifier may follow
QUALIFIES: dict[str, frozenset[str]] = {
    "as": PORT_TAGS,
    "uri": PORT_TAGS,
    "file": PORT_TAGS,
    "log": frozenset({"out", "return"}),
    "desc": PORT_TAGS | {"begin"},
}

_KEYWORD = re.compile(r"(?<!\S)@(" + "|".join(KEYWORDS) + r")(?=\s|$)", re.IGNORECASE)


class AnnotationError(Invalid):
    """Malformed or misplaced YesWorkflow markup; the message names the file and line."""

    code = "yw-annotation"
    title = "Malformed YesWorkflow annotation"


@dataclass(frozen=True)
class Source:
    """One scanned file (``extract_source/2``)."""

    id: int
    path: str


@dataclass
class Annotation:
    """One annotation (``annotation/6``); ``qualifies`` is its primary's id, if a qualifier."""

    id: int
    source_id: int
    line: int
    tag: str
    keyword: str
    value: str | None
    qualifies: int | None = None

    @property
    def is_primary(self) -> bool:
        return self.tag in PRIMARY


@dataclass
class Extraction:
    """What the scanner found in a set of sources."""

    sources: list[Source] = field(default_factory=list)
    annotations: list[Annotation] = field(default_factory=list)

    def where(self, annotation: Annotation) -> str:
        """``path:line`` of an annotation, for error messages."""
        return f"{self.sources[annotation.source_id - 1].path}:{annotation.line}"


def extract_files(paths: Sequence[str | Path], *, language: str | None = None) -> Extraction:
    """Scan files for annotations, in order; source ids follow the order of ``paths``.

    Raises:
        AnnotationError: malformed markup (every problem listed in ``detail``).
        UnknownLanguage: a file's language cannot be told.
        Invalid: a file cannot be read.
    """
    extraction = Extraction()
    errors: list[str] = []
    for path in paths:
        lang = language_for(path, language)
        try:
            text = Path(path).read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise Invalid(f"{path}: cannot read: {exc.strerror or exc}") from exc
        source = Source(len(extraction.sources) + 1, str(path))
        extraction.sources.append(source)
        _parse(scan_comments(text, lang), source, extraction, errors)
    _raise(errors)
    return extraction


def extract_text(text: str, *, path: str, language: str | None = None) -> Extraction:
    """Scan one source held in memory (``path`` names it and picks the language)."""
    extraction = Extraction(sources=[Source(1, path)])
    errors: list[str] = []
    _parse(
        scan_comments(text, language_for(path, language)), extraction.sources[0], extraction, errors
    )
    _raise(errors)
    return extraction


def _raise(errors: list[str]) -> None:
    if len(errors) == 1:
        raise AnnotationError(errors[0])
    if errors:
        raise AnnotationError(f"{len(errors)} YesWorkflow annotation errors", detail=errors)


def _is_open(annotation: Annotation) -> bool:
    if annotation.value is None:
        return annotation.tag != "end"
    if annotation.tag in ("uri", "file"):
        return annotation.value.endswith("/")
    return annotation.tag == "desc"


def _continue(annotation: Annotation, text: str) -> None:
    if annotation.tag in TEXT_VALUED:
        annotation.value = text if annotation.value is None else f"{annotation.value}\n{text}"
    else:
        annotation.value = (annotation.value or "") + text.split()[0]


def _parse(
    comments: list[CommentLine], source: Source, extraction: Extraction, errors: list[str]
) -> None:
    last: Annotation | None = None  # the last annotation of the previous comment line
    last_line = -1
    primary: Annotation | None = None
    raw: list[Annotation] = []
    for comment in comments:
        matches = list(_KEYWORD.finditer(comment.text))
        if not matches:
            continues = last is not None and comment.line == last_line + 1 and _is_open(last)
            if continues and last is not None and comment.text.strip():
                _continue(last, comment.text.strip())
                last_line = comment.line
                continue
            last = None
            continue
        for index, match in enumerate(matches):
            end = matches[index + 1].start() if index + 1 < len(matches) else len(comment.text)
            tag = match.group(1).lower()
            rest = comment.text[match.end() : end].strip()
            value = (rest or None) if tag in TEXT_VALUED else (rest.split()[0] if rest else None)
            annotation = Annotation(
                id=len(extraction.annotations) + len(raw) + 1,
                source_id=source.id,
                line=comment.line,
                tag=tag,
                keyword=match.group(0),
                value=value,
            )
            raw.append(annotation)
            last = annotation
        last_line = comment.line
    for annotation in raw:
        where = f"{source.path}:{annotation.line}"
        if annotation.value is None and annotation.tag != "end":
            errors.append(f"{where}: {annotation.keyword} needs a value")
        if annotation.is_primary:
            primary = annotation
            continue
        allowed = QUALIFIES[annotation.tag]
        if primary is None or primary.tag not in allowed:
            after = "nothing" if primary is None else primary.keyword
            targets = "/".join(f"@{t}" for t in sorted(allowed))
            errors.append(f"{where}: {annotation.keyword} must follow {targets}, not {after}")
            continue
        annotation.qualifies = primary.id
    extraction.annotations.extend(raw)
