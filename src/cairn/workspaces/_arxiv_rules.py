"""arXiv's ordered checks that cairn had not built: names, types and the workspace-wide rules.

The numbers are those of the 31 ordered checks in shared/reference/arxiv-filemanager-notes.md §2
(arXiv's ``process/check/__init__.py``); ``docs/arxiv-rules.md`` lists them all, with the choices
made where the notes leave a detail open. Pure functions: they look at names and types only.
The pipeline (``_pipeline``) runs the per-file rules member by member, the service runs the
merge and workspace rules over the whole workspace, so a ``.bbl`` or a ``.tex`` that arrives in
a later upload counts as well.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from cairn.workspaces import _filetypes as ft
from cairn.workspaces._checks import Finding, JunkKind, Level, MemberPath

__all__ = [
    "HELP_SIZES",
    "MSG_BIB_NO_BBL",
    "NameRule",
    "Removal",
    "bib_rules",
    "fixed_extension",
    "fixed_tgz_name",
    "generated_files",
    "is_backup",
    "junk_kind",
    "msg_bbl_missing",
    "msg_dvi",
    "name_rule",
    "type_findings",
]

HELP_SIZES = "(see http://arxiv.org/help/sizes)"


@dataclass(frozen=True)
class NameRule:
    """What a name-only rule (10-15) does to a file: remove it, or only warn."""

    rule: str  # arXiv's checker name, kept with the finding (and the quarantine entry)
    level: Level
    message: str
    remove: bool


@dataclass(frozen=True)
class Removal:
    """A workspace file a merge or workspace rule removes, and why."""

    public_path: str
    rule: str
    finding: Finding


# --- rules 1 and 2: __MACOSX and hidden files ----------------------------------------------------
def junk_kind(member: MemberPath) -> tuple[JunkKind, int] | None:
    """RemoveMacOSXHiddenFiles and RemoveFilesWithLeadingDot, and the component that says so.

    Only these two: cairn's own junk list (Thumbs.db, editor backups ...) is not arXiv's, and
    arXiv renames ``main.tex~`` to ``main.tex_`` rather than removing it.
    """
    for index, part in enumerate(member.parts):
        if part == "__MACOSX":
            return "macosx", index
        if part.startswith("."):
            return "hidden", index
    return None


# --- rule 7: TeX backup files --------------------------------------------------------------------
def is_backup(name: str) -> bool:
    """arXiv's WarnAboutTeXBackupFiles: ``.tex_``, ``.tex.bak`` and ``.tex~`` (any case)."""
    return name.lower().endswith((".tex_", ".tex.bak", ".tex~"))


# --- rules 10-15: files removed (or warned) by name ----------------------------------------------
_HYPERLINK_STY = frozenset({"espcrc2.sty", "lamuphys.sty"})
_HYPERLINK_TEX = frozenset({"espcrc2.tex", "lamuphys.tex"})
_DISALLOWED = frozenset({"uufiles", "core", "splread.1st"})
_META = re.compile(r"^xxx\.(?:rsrc|finfo|cshrc|nfs)|\.[346]00gf$|\.desc$")
_REVTEX = frozenset(
    {"10pt.rtx", "11pt.rtx", "12pt.rtx", "aps.rtx", "revsymb.sty", "revtex4.cls", "rmp.rtx"}
)
_DIAGRAMS = frozenset({"diagrams.sty", "diagrams.tex"})
# SyncTeX writes name.synctex, or name.synctex.gz by default since TeX Live 2010: both go.
_SYNCTEX = re.compile(r"\.synctex(?:\.gz)?$")


def msg_not_allowed(name: str) -> str:
    return f"Removed file '{name}' [File not allowed]."


def name_rule(name: str) -> NameRule | None:
    """The first of rules 10-15 that applies to the file name ``name`` (its last component).

    Names are compared as arXiv does: exactly, except the patterns of rules 12 and 15.
    """
    if name in _HYPERLINK_STY:
        return NameRule(
            "RemoveHyperlinkStyleFiles",
            "info",
            f"Found hyperlink-compatible package '{name}'. Removed it: arXiv uses its own "
            "hypertex-compatible version.",
            True,
        )
    if name in _HYPERLINK_TEX:
        return NameRule(
            "RemoveHyperlinkStyleFiles",
            "warn",
            f"Possible submitter error. Unwanted '{name}'",
            False,
        )
    if name in _DISALLOWED:
        return NameRule("RemoveDisallowedFiles", "info", msg_not_allowed(name), True)
    if _META.search(name):
        return NameRule("RemoveMetaFiles", "info", msg_not_allowed(name), True)
    if name in _REVTEX:
        return NameRule(
            "RemoveExtraneousRevTeXFiles",
            "info",
            f"WILL REMOVE standard revtex4 style files from this submission: removed '{name}' "
            "(arXiv has its own copy).",
            True,
        )
    if name in _DIAGRAMS:
        return NameRule(
            "RemoveDiagramsPackage",
            "info",
            f"Removed file '{name}': the diagrams package stops working after a set date "
            "(a time bomb); arXiv uses its own copy.",
            True,
        )
    if name == "aa.dem":
        return NameRule(
            "RemoveAADemoFile",
            "info",
            f"Removed file '{name}' on the assumption that it is the example file of the "
            "Astronomy and Astrophysics macro package aa.cls.",
            True,
        )
    if name == "missfont.log":
        return NameRule(
            "RemoveMissingFontFile",
            "info",
            f"Removed file '{name}': it is a log of fonts missing on your machine.",
            True,
        )
    if _SYNCTEX.search(name):
        return NameRule(
            "RemoveSyncTeXFiles",
            "info",
            f"Removed file '{name}': SyncTeX files are written by TeX and not needed.",
            True,
        )
    return None


# --- rule 18: FixTGZFileName ---------------------------------------------------------------------
_TGZ = re.compile(r"[.-]t?[ga]?z$", re.IGNORECASE)


def fixed_tgz_name(name: str) -> str:
    """``x.tar.gz`` -> ``x.tar``, ``x.tgz`` -> ``x``, ``x.gz`` -> ``x`` (arXiv's silent rename)."""
    fixed = _TGZ.sub("", name)
    return fixed if fixed.strip(".") else name


# --- rules 20, 21, 25, 26: findings by file type -------------------------------------------------
MSG_DOC = (
    "Your submission has been rejected because it contains one or more files with extension "
    ".doc, assumed to be MSWord files. Please save your MSWord documents in PDF format and "
    "submit the PDF."
)
MSG_RAR = "We do not support 'rar' files. Please use 'zip' or 'tar' instead."
MSG_7Z = "We do not support '7z' files. Please use 'zip' or 'tar' instead."
_BAD_IMAGES = (".pcx", ".bmp", ".wmf", ".opj", ".pct", ".tif", ".tiff")


def msg_dvi(path: str) -> str:
    return (
        f"DVI file '{path}' is not allowed: it is made by TeX from your source. Please submit "
        "the TeX source (and its figures) instead."
    )


def type_findings(public: str, file_type: str) -> list[Finding]:
    """Rules 20 (``.doc``), 25 (unacceptable images) and 26 (RAR) for one non-ancillary file.

    A ``.doc`` is fatal only when detection found no type, as in arXiv (cairn's BINARY, or TEXT:
    arXiv has no plain-text type, so a Word or RTF ``.doc`` reads as FAILED there).
    """
    lower = public.lower()
    if lower.endswith(".doc") and file_type in (ft.BINARY, ft.TEXT):
        return [Finding("fatal", public, MSG_DOC)]
    if file_type == ft.RAR:
        return [Finding("fatal", public, MSG_RAR)]
    if file_type == ft.SEVENZIP:
        return [Finding("fatal", public, MSG_7Z)]
    if lower.endswith(_BAD_IMAGES):
        ext = lower[lower.rfind(".") :]
        return [
            Finding(
                "warn",
                public,
                f"Image '{public}' is in a format arXiv does not accept ({ext}). Please "
                "convert it to PNG, JPEG or PDF (pdfLaTeX), or to PostScript (LaTeX).",
            )
        ]
    return []


# --- rule 22: FixFileExtensions ------------------------------------------------------------------
# EPS is PostScript too, and \includegraphics{fig.eps} names the file: renaming it to .ps would
# break the paper (the notes say arXiv does; see docs/arxiv-rules.md).
_GOOD_EXTENSIONS: Mapping[str, tuple[str, tuple[str, ...]]] = {
    ft.POSTSCRIPT: (".ps", (".ps", ".eps", ".epsf", ".epsi")),
    ft.PDF: (".pdf", (".pdf",)),
    ft.HTML: (".html", (".html", ".htm")),
}


def fixed_extension(public: str, file_type: str) -> str | None:
    """The path with the extension of its detected type, or ``None`` when it has one already."""
    wanted = _GOOD_EXTENSIONS.get(file_type)
    if wanted is None:
        return None
    extension, accepted = wanted
    folder, slash, name = public.rpartition("/")
    if name.lower().endswith(accepted):
        return None
    stem, dot, _ = name.rpartition(".")
    base = stem if dot and stem else name
    return f"{folder}{slash}{base}{extension}"


# --- rule 17: RemoveTeXGeneratedFiles ------------------------------------------------------------
_GENERATED = re.compile(r"^(?P<stem>.+)\.(?:log|aux|out|blg|dvi|ps|pdf)$", re.IGNORECASE)


def generated_files(paths: Iterable[str]) -> list[Removal]:
    """Files TeX made next to a ``.tex`` (or ``.TEX``) of the same stem, in path order.

    Ancillary files (``anc/``) are the author's data and stay.
    """
    present = set(paths)
    removals: list[Removal] = []
    for path in sorted(present):
        if path.startswith("anc/"):
            continue
        match = _GENERATED.match(path)
        if match is None:
            continue
        stem = match["stem"]
        if f"{stem}.tex" in present or f"{stem}.TEX" in present:
            finding = Finding("info", path, f"Removed file '{path}' due to name conflict.")
            removals.append(Removal(path, "RemoveTeXGeneratedFiles", finding))
    return removals


# --- rule 28: CheckForMissingReferences ----------------------------------------------------------
MSG_BIB_NO_BBL = (
    "We do not run bibtex in the auto-TeXing procedure. If you use it, include in your "
    "submission the .bbl file which bibtex produces on your home machine; otherwise your "
    "references will not come out correctly."
)


def msg_bbl_missing(stem: str) -> str:
    return (
        f"Your submission contained {stem}.bib file, but no {stem}.bbl file (include "
        f"{stem}.bbl, or submit without {stem}.bib; and remember to verify references)."
    )


def bib_rules(paths: Iterable[str]) -> tuple[list[Removal], list[Finding]]:
    """For each ``X.bib`` outside ``anc/``: removed (warned) when ``X.bbl`` is beside it, else
    warning ``bib_no_bbl`` and fatal ``bbl_missing`` (arXiv's codes; the file stays)."""
    present = set(paths)
    removals: list[Removal] = []
    findings: list[Finding] = []
    for path in sorted(present):
        if path.startswith("anc/") or not path.endswith(".bib"):
            continue
        stem = path[: -len(".bib")]
        bbl = f"{stem}.bbl"
        if bbl in present:
            message = f"Removed file '{path}': the references come from '{bbl}'."
            finding = Finding("warn", path, message)
            removals.append(Removal(path, "CheckForMissingReferences", finding))
        else:
            shown = stem.rsplit("/", 1)[-1]
            findings.append(Finding("warn", path, MSG_BIB_NO_BBL))
            findings.append(Finding("fatal", path, msg_bbl_missing(shown)))
    return removals, findings
