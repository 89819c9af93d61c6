"""Sanitizing rules for uploaded names, their findings and messages, and the source format.

Pure functions only: they look at names and types, never at the disk. Messages keep the wording
of arXiv's file manager where it has one (see shared/reference/arxiv-filemanager-notes.md §2).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from cairn.workspaces import _filetypes as ft

__all__ = [
    "MAX_NAME_BYTES",
    "MAX_PATH_BYTES",
    "SAFE_NAME",
    "SAFE_PATH",
    "Finding",
    "Level",
    "MemberPath",
    "case_duplicates",
    "clean_upload_filename",
    "display_name",
    "infer_source_format",
    "is_tex_backup",
    "junk_kind",
    "rename_message",
    "sanitize_name",
    "split_member_path",
]

Level = Literal["warn", "fatal", "info"]


@dataclass(frozen=True)
class Finding:
    """One thing the checks did or found, for one file (``public_path``) or the whole upload."""

    level: Level
    public_path: str | None
    message: str


# One path component may use only these characters; "/" separates components.
_SAFE_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_+-.,=")
SAFE_NAME = re.compile(r"[A-Za-z0-9_+\-.,=]+")
SAFE_PATH = re.compile(r"[A-Za-z0-9_+\-.,=/]+")
MAX_NAME_BYTES = 255  # one component, as on every common filesystem
MAX_PATH_BYTES = 1024  # a whole public path, well under PATH_MAX once joined to the store root
_DISPLAY_LIMIT = 200

# --- messages ----------------------------------------------------------------------------------
MSG_MACOSX = "Removed '__MACOSX' directory."
MSG_HIDDEN = "Hidden file are not allowed."
MSG_PROCESSED = "Detected 'processed' directory. Please check."
MSG_TOP_LEVEL = "Removed top level directory"


def msg_not_allowed(name: str) -> str:
    return f"Removed file '{name}' [File not allowed]."


def msg_empty(name: str) -> str:
    return f"Removed file '{name}' [file is empty]."


def msg_renamed_illegal(old: str, new: str) -> str:
    return (
        "We only accept file names containing the characters: a-z A-Z 0-9 _ + - . =. "
        f"Renamed '{old}' to '{new}'"
    )


def msg_renamed_hyphen(old: str, new: str) -> str:
    return f"We do not accept files starting with a hyphen. Renamed '{old}' to '{new}'"


def msg_renamed_long(old: str, new: str) -> str:
    return f"File name is longer than {MAX_NAME_BYTES} bytes. Renamed '{old}' to '{new}'"


def msg_renamed(old: str, new: str) -> str:
    return f"Renamed '{old}' to '{new}'."


def msg_backup(name: str) -> str:
    return f"File '{name}' may be a backup file. Please inspect and remove extraneous backup files."


def msg_link(kind: str, name: str) -> str:
    """``kind`` is e.g. "Symbolic links", "Hard links", "Character devices"."""
    return f"{kind} are not allowed. Removing '{name}'"


def msg_refused(name: str, reason: str) -> str:
    return f"Refused '{name}': {reason}."


REFUSE_ABSOLUTE = "absolute paths are not allowed"
REFUSE_DRIVE = "Windows drive letters are not allowed"
REFUSE_PARENT = "parent directory ('..') components are not allowed"
REFUSE_EMPTY = "the name is empty"
REFUSE_LONG = f"the path is longer than {MAX_PATH_BYTES} bytes"
MSG_BACKSLASH = "Backslashes in names were taken as folder separators"


# --- names -------------------------------------------------------------------------------------
def display_name(name: str, limit: int = _DISPLAY_LIMIT) -> str:
    """``name`` made safe to show in a message: printable, valid UTF-8, at most ``limit`` chars.

    Undecodable bytes (kept by tar as surrogate escapes) become ``\\xNN``, other control or
    surrogate characters ``\\uNNNN``; so a message never carries a newline or breaks JSON.
    """
    out: list[str] = []
    for ch in name:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:
            out.append(f"\\x{code - 0xDC00:02x}")
        elif 0xD800 <= code <= 0xDFFF or not ch.isprintable():
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
        if len(out) > limit:
            break
    shown = "".join(out)
    return shown if len(shown) <= limit else shown[: limit - 1] + "\u2026"


def _sanitize(name: str) -> tuple[str, str | None]:
    """The safe form of one component and why it changed (``None`` when unchanged)."""
    if (
        len(name) <= MAX_NAME_BYTES
        and SAFE_NAME.fullmatch(name)
        and name[0] != "-"
        and name not in (".", "..")
    ):
        return name, None  # already safe (the common case): the rules below keep it as it is
    reason: str | None = None
    out: list[str] = []
    for ch in unicodedata.normalize("NFKD", _undo_surrogate_escapes(name)):
        if ch in _SAFE_CHARS:
            out.append(ch)
        elif unicodedata.combining(ch):  # é -> e: drop the accent, keep the letter
            continue
        else:
            out.append("_")
    safe = "".join(out)
    if safe != name:
        reason = "illegal"
    if safe in ("", ".", ".."):
        safe = "_" * max(1, len(safe))
        reason = "illegal"
    if safe.startswith("-"):
        safe = "_" + safe[1:]
        reason = reason or "hyphen"
    if len(safe) > MAX_NAME_BYTES:
        dot = safe.rfind(".")
        ext = safe[dot:] if dot > 0 and len(safe) - dot <= 16 else ""
        digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        safe = f"{safe[: MAX_NAME_BYTES - len(ext) - 9]}_{digest}{ext}"
        reason = "long"
    return safe, reason


def _undo_surrogate_escapes(name: str) -> str:
    """Read bytes that were not UTF-8 (tar keeps them as surrogate escapes) as Windows-1252.

    Old archives store names in a legacy 8-bit encoding, so ``caf\xe9.tex`` becomes
    ``café.tex`` (and then ``cafe.tex``) rather than ``caf_.tex``.
    """
    if not any(0xDC80 <= ord(ch) <= 0xDCFF for ch in name):
        return name
    try:
        raw = name.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return name
    try:
        return raw.decode("cp1252")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def sanitize_name(name: str) -> str:
    """One path component reduced to the safe set ``[A-Za-z0-9_+-.,=]``.

    Accents are dropped (``é`` -> ``e``), other characters become ``_``, a leading ``-`` becomes
    ``_`` and names over 255 bytes are shortened keeping their extension plus a short hash of the
    original. The result is never empty, never ``.`` or ``..`` and never contains ``/``.
    """
    return _sanitize(name)[0]


@dataclass(frozen=True)
class MemberPath:
    """An archive member name split into original and sanitized components."""

    original: tuple[str, ...]
    parts: tuple[str, ...]
    reasons: tuple[str | None, ...]  # per component: None, "illegal", "hyphen" or "long"
    backslashes: bool
    windows_name: str | None = None  # the name as sent, when a drive prefix was stripped

    @property
    def public(self) -> str:
        return "/".join(self.parts)


_DRIVE = re.compile(r"^[A-Za-z]:")
_SEPARATORS = re.compile(r"[/\\]")


def split_member_path(name: str, prefix: Sequence[str] = ()) -> MemberPath | str:
    """Split and sanitize an archive member name, or say why it is refused.

    Absolute names and ``..`` components are refused whatever they would resolve to (a refusal
    is a reason string). A name with a Windows drive prefix (``c:\\data\\windows.txt``) keeps
    only its last component, as arXiv's ``FixWindowsFileNames`` does (and is refused when
    nothing is left). ``\\`` counts as a separator, as Windows tools mean it; empty and ``.``
    components are dropped. ``prefix`` (already safe, e.g. ``anc`` or
    the folder of a nested archive) is prepended and counts toward the length limit.
    """
    if name.startswith(("/", "\\")):
        return REFUSE_ABSOLUTE
    windows_name = None
    if _DRIVE.match(name):
        base = _SEPARATORS.split(name[2:])[-1]
        if base in ("", ".", ".."):
            return REFUSE_DRIVE
        windows_name, name = name, base
    raw = _SEPARATORS.split(name) if "\\" in name else name.split("/")
    if ".." in raw:
        return REFUSE_PARENT
    original = tuple(p for p in raw if p not in ("", "."))
    if not original:
        return REFUSE_EMPTY
    cleaned = [_sanitize(p) for p in original]
    parts = (*prefix, *(c[0] for c in cleaned))
    if len("/".join(parts)) > MAX_PATH_BYTES:
        return REFUSE_LONG
    return MemberPath(
        original=(*prefix, *original),
        parts=parts,
        reasons=(*(None for _ in prefix), *(c[1] for c in cleaned)),
        backslashes="\\" in name,
        windows_name=windows_name,
    )


def rename_message(old: str, new: str, reason: str | None) -> str:
    """The arXiv-style message for one rename, by its main reason."""
    if reason == "long":
        return msg_renamed_long(old, new)
    if reason == "hyphen":
        return msg_renamed_hyphen(old, new)
    if reason == "illegal":
        return msg_renamed_illegal(old, new)
    return msg_renamed(old, new)


def clean_upload_filename(filename: str) -> tuple[str, list[Finding]]:
    """The one-component name of an uploaded file (still to sanitize), and a finding if changed.

    Browsers on Windows used to send full paths (``c:\\data\\x.tex``); like arXiv, only the last
    component is kept. Any directory part is dropped the same way, so a client cannot place a
    file with ``../`` in its filename.
    """
    findings: list[Finding] = []
    base = re.split(r"[/\\]", filename)[-1]
    base = _DRIVE.sub("", base)
    if base in ("", ".", ".."):
        base = "upload"
    if base != filename:
        findings.append(
            Finding("warn", None, msg_renamed(display_name(filename), display_name(base)))
        )
    return base, findings


# --- junk --------------------------------------------------------------------------------------
_JUNK_NAMES = frozenset(
    {
        "thumbs.db",
        "ehthumbs.db",
        "desktop.ini",
        "icon\r",
        # arXiv RemoveDisallowedFiles and friends
        "uufiles",
        "core",
        "splread.1st",
        "missfont.log",
        "aa.dem",
    }
)
# One pattern (searched once per name) for all of these alternatives.
_JUNK_PATTERN = re.compile(
    "|".join(
        (
            r"~$",  # editor backups
            r"^#.*#$",  # emacs autosave
            r"^xxx\.(?:rsrc|finfo|cshrc|nfs)",  # arXiv RemoveMetaFiles
            r"\.[346]00gf$",
            r"\.desc$",
            r"\.synctex(?:\.gz)?$",
        )
    )
)
JunkKind = Literal["macosx", "hidden", "not_allowed"]


def junk_kind(member: MemberPath) -> tuple[JunkKind, int] | None:
    """Whether a file is OS/editor junk to remove, and the index of the component that says so.

    Checked on the sanitized components (so a name that only *becomes* hidden is caught too) and
    on the original file name (``#draft.tex#`` is junk before it becomes ``_draft.tex_``).
    """
    for index, part in enumerate(member.parts):
        if part == "__MACOSX":
            return "macosx", index
        if part.startswith("."):
            return "hidden", index
    last = len(member.parts) - 1
    original, sanitized = member.original[-1], member.parts[-1]
    for base in (original,) if original == sanitized else (original, sanitized):
        if base.lower() in _JUNK_NAMES or _JUNK_PATTERN.search(base):
            return "not_allowed", last
    return None


def is_tex_backup(name: str) -> bool:
    """arXiv's WarnAboutTeXBackupFiles: ``.tex_`` and ``.tex.bak`` (``.tex~`` is removed)."""
    lower = name.lower()
    return lower.endswith((".tex_", ".tex.bak"))


# --- workspace-wide checks ---------------------------------------------------------------------
def case_duplicates(paths: Iterable[str]) -> list[Finding]:
    """A warning for each path that differs from an earlier one only by letter case.

    Both files are kept (cairn stores paths case-sensitively); the warning says they would
    overwrite each other when unpacked on macOS or Windows. The order is that of ``sorted``.
    """
    first: dict[str, str] = {}
    findings: list[Finding] = []
    for path in sorted(paths):
        key = path.lower()
        if key in first:
            findings.append(
                Finding(
                    "warn",
                    path,
                    f"Files '{first[key]}' and '{path}' differ only in case; they would "
                    "overwrite each other on case-insensitive systems.",
                )
            )
        else:
            first[key] = path
    return findings


_TEX_LIKE = ft.TEX_TYPES
_HTML_COMPANIONS = frozenset({ft.HTML, ft.IMAGE, ft.POSTSCRIPT, ft.PDF})
_PS_COMPANIONS = frozenset({ft.POSTSCRIPT, ft.PDF, ft.IMAGE})


def infer_source_format(
    files: Iterable[tuple[str, str]], *, level: Level = "warn"
) -> tuple[str, list[Finding]]:
    """arXiv's source format of a set of ``(public_path, file_type)``: tex, pdf, ps, html, invalid.

    Run it on the whole workspace after a merge (an upload alone may be just one figure). The
    findings explain an ``invalid`` result, at ``level``: arXiv makes them fatal, which the arXiv
    targets follow (the workspace then shows ERRORS, and its files stay); cairn's own targets
    warn.
    """
    items = list(files)
    main = [(p, t) for p, t in items if not p.startswith("anc/")]
    if not items:
        return "invalid", []
    if not main:
        if len(items) == 1:
            return "invalid", [
                Finding(level, items[0][0], "Found single ancillary file. Invalid submission.")
            ]
        return "invalid", []
    if len(main) == 1:
        path, kind = main[0]
        single = {ft.PDF: "pdf", ft.POSTSCRIPT: "ps", ft.HTML: "html"}
        if kind in _TEX_LIKE:
            return "tex", []
        if kind in single:
            return single[kind], []
        if kind == ft.DOCX:
            message = "Submissions in docx are no longer supported. Please upload TeX or PDF."
        elif kind in (ft.ODT, ft.ODF):
            message = "Submissions in odf are no longer supported. Please upload TeX or PDF."
        elif kind == ft.TEXAUX:
            message = "Found single TeX auxiliary file (style, class, bbl). Invalid submission."
        elif kind == ft.DOS_EPS:
            message = "Found single DOS EPS file. Invalid submission."
        elif kind == ft.BINARY:
            message = "Could not determine file type."
        else:
            message = "Unsupported submission type"
        return "invalid", [Finding(level, path, message)]
    kinds = {t for _, t in main}
    if ft.HTML in kinds and kinds <= _HTML_COMPANIONS:
        return "html", []
    if ft.POSTSCRIPT in kinds and kinds <= _PS_COMPANIONS:
        return "ps", []
    return "tex", []
