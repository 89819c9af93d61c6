"""File type detection from content (arXiv file manager type names) and archive sniffing.

Detection follows arXiv's three stages: a few name rules, then magic bytes in the head of the
file, then line heuristics for text (LaTeX, plain TeX, BibTeX, HTML, PostScript). It never reads
more than the head it is given, except for zip files, whose central directory is listed (after a
size check) to tell DOCX/ODT/XLSX/JAR from a plain zip.
"""

from __future__ import annotations

import bz2
import codecs
import lzma
import re
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

__all__ = [
    "ARCHIVE_TYPES",
    "BIBTEX",
    "BINARY",
    "BZIP2",
    "COMPRESSED",
    "DOCX",
    "DOS_EPS",
    "DVI",
    "GZIPPED",
    "HEAD_BYTES",
    "HTML",
    "IMAGE",
    "JAR",
    "LATEX",
    "LATEX2E",
    "ODF",
    "ODT",
    "PDF",
    "PDFLATEX",
    "POSTSCRIPT",
    "PPTX",
    "PS_FONT",
    "RAR",
    "README",
    "SEVENZIP",
    "TAR",
    "TEX",
    "TEXAUX",
    "TEXT",
    "TEX_TYPES",
    "XLSX",
    "XZ",
    "ZIP",
    "ArchiveKind",
    "ZipDirectory",
    "archive_kind",
    "compressed_tar",
    "detect_type",
    "is_tar_header",
    "read_zip_directory",
    "unpackable_kind",
    "zip_subtype",
]

# --- type names (arXiv FileType names without the TYPE_ prefix) --------------------------------
TEX = "TEX"  # plain TeX (or a TeX fragment named *.tex)
LATEX = "LATEX"  # LaTeX 2.09 (\documentstyle)
LATEX2E = "LATEX2e"
PDFLATEX = "PDFLATEX"
TEXAUX = "TEXAUX"
BIBTEX = "BIBTEX"
README = "README"
PDF = "PDF"
POSTSCRIPT = "POSTSCRIPT"  # includes EPS, as in arXiv
PS_FONT = "PS_FONT"
DOS_EPS = "DOS_EPS"
DVI = "DVI"
IMAGE = "IMAGE"  # PNG, JPEG, GIF, TIFF, BMP, WebP, SVG
HTML = "HTML"
DOCX = "DOCX"
ODT = "ODT"
ODF = "ODF"  # other OpenDocument (spreadsheet, presentation ...)
XLSX = "XLSX"
PPTX = "PPTX"
JAR = "JAR"
TAR = "TAR"
GZIPPED = "GZIPPED"
BZIP2 = "BZIP2"
XZ = "XZ"
ZIP = "ZIP"
RAR = "RAR"
SEVENZIP = "SEVENZIP"
COMPRESSED = "COMPRESSED"  # Unix compress (.Z); detected, never unpacked
TEXT = "TEXT"
BINARY = "BINARY"

TEX_TYPES: frozenset[str] = frozenset({TEX, LATEX, LATEX2E, PDFLATEX})
ARCHIVE_TYPES: frozenset[str] = frozenset({TAR, GZIPPED, BZIP2, XZ, ZIP, RAR, SEVENZIP, COMPRESSED})

# How much of each file is kept for detection. \documentclass normally sits in the first lines,
# but long licence headers exist; 64 KiB is read anyway while the file is copied.
HEAD_BYTES = 64 * 1024

ArchiveKind = Literal["tar", "gzip", "bzip2", "xz", "zip"]

_TEXAUX_SUFFIXES = frozenset(
    {
        *(".sty", ".cls", ".bbl", ".bst", ".tfm", ".def", ".cfg", ".clo", ".fd", ".ist"),
        *(".bbx", ".cbx", ".lbx", ".dbx", ".ldf", ".dtx", ".ins"),
        *(".mf", ".pfb", ".afm", ".vf", ".enc", ".map"),
    }
)
_TEX_SUFFIXES = frozenset({".tex", ".ltx", ".latex", ".ctx"})
_README = re.compile(r"^00readme(\.[a-z]+)?$", re.IGNORECASE)


# --- archives ----------------------------------------------------------------------------------
# Bytes that ``tarfile.nti`` may accept in an octal field (``int(s, 8)`` takes signs, spaces,
# underscores and a ``0o`` prefix). A checksum field with any other byte before its first NUL
# cannot parse, so most heads are rejected without building a TarInfo (and raising).
_OCTAL_FIELD_BYTES = b"01234567oO+-_ \t\n\x0b\x0c\r\x1c\x1d\x1e\x1f"


def is_tar_header(block: bytes) -> bool:
    """Whether ``block`` starts with a valid tar header (checksum verified, any tar flavour)."""
    if len(block) < tarfile.BLOCKSIZE:
        return False
    if block[148] not in (0o200, 0o377):  # else a base-256 number, not checked here
        checksum = block[148:156].split(b"\0", 1)[0]
        if checksum.translate(None, _OCTAL_FIELD_BYTES):
            return False
    try:
        tarfile.TarInfo.frombuf(block[: tarfile.BLOCKSIZE], "utf-8", "surrogateescape")
    except tarfile.HeaderError:
        return False
    return True


def archive_kind(head: bytes) -> ArchiveKind | None:
    """The container format announced by the first bytes, if any (content, never the name)."""
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith(b"BZh") and len(head) > 3 and head[3:4] in b"123456789":
        return "bzip2"
    if head.startswith(b"\xfd7zXZ\x00"):
        return "xz"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    if is_tar_header(head):
        return "tar"
    return None


def compressed_tar(head: bytes, kind: ArchiveKind) -> bool | None:
    """For a compressed head, whether the decompressed data starts with a tar header.

    Decompresses at most one tar block from ``head`` (bounded, so bombs cost nothing). Returns
    ``None`` when the head does not even decompress (corrupt data).
    """
    decompressor: zlib._Decompress | bz2.BZ2Decompressor | lzma.LZMADecompressor
    if kind == "gzip":
        decompressor = zlib.decompressobj(wbits=31)
    elif kind == "bzip2":
        decompressor = bz2.BZ2Decompressor()
    elif kind == "xz":
        decompressor = lzma.LZMADecompressor()
    else:
        return False
    try:
        out = decompressor.decompress(head, tarfile.BLOCKSIZE)
    except (zlib.error, OSError, EOFError, lzma.LZMAError, ValueError):
        return None
    if not out and not decompressor.eof:
        return None  # not even one byte from the whole head: truncated or garbage
    return is_tar_header(out)


def unpackable_kind(head: bytes, file_type: str) -> ArchiveKind | None:
    """The kind to unpack a staged file with, or ``None`` if it is data to keep as it is.

    Tar and zip archives are unpacked (not DOCX/ODT/JAR, which are zips with a meaning); a
    compressed file is unpacked only when it holds a tar: a lone ``data.csv.gz`` stays as it is.
    """
    if file_type == TAR:
        return "tar"
    if file_type == ZIP:
        return "zip"
    if file_type in (GZIPPED, BZIP2, XZ):
        kind = archive_kind(head)
        if kind is not None and compressed_tar(head, kind):
            return kind
    return None


class ZipDirectory:
    """What the end-of-central-directory record of a zip declares."""

    __slots__ = ("entries", "size")

    def __init__(self, entries: int, size: int) -> None:
        self.entries = entries
        self.size = size


_EOCD = struct.Struct("<4s4H2LH")
_EOCD64_LOCATOR = struct.Struct("<4sLQL")
_EOCD64 = struct.Struct("<4sQ2H2L4Q")


def read_zip_directory(path: Path) -> ZipDirectory | None:
    """Parse the (zip64) end-of-central-directory record of ``path`` without trusting it.

    ``zipfile`` reads the whole central directory into memory, so callers check the declared
    size and entry count first. Returns ``None`` when there is no such record (not a complete zip).
    """
    with path.open("rb") as f:
        f.seek(0, 2)
        size = f.tell()
        tail_len = min(size, _EOCD.size + 0xFFFF + _EOCD64_LOCATOR.size)
        f.seek(size - tail_len)
        tail = f.read(tail_len)
        pos = tail.rfind(b"PK\x05\x06")
        if pos < 0 or len(tail) - pos < _EOCD.size:
            return None
        _, _, _, _, entries, cd_size, _, _ = _EOCD.unpack_from(tail, pos)
        loc = pos - _EOCD64_LOCATOR.size
        if loc >= 0 and tail[loc : loc + 4] == b"PK\x06\x07":
            _, _, eocd64_offset, _ = _EOCD64_LOCATOR.unpack_from(tail, loc)
            if 0 <= eocd64_offset <= size - _EOCD64.size:
                f.seek(eocd64_offset)
                rec = f.read(_EOCD64.size)
                if rec[:4] == b"PK\x06\x06":
                    fields = _EOCD64.unpack(rec)
                    entries, cd_size = fields[6], fields[7]
        return ZipDirectory(entries, cd_size)


# Limits for merely *classifying* a zip (listing its names); unpacking applies the real limits.
_ZIP_SNIFF_MAX_DIRECTORY = 16 * 1024 * 1024


def zip_subtype(path: Path | None, head: bytes) -> str:
    """DOCX, ODT, ODF, XLSX, PPTX, JAR or ZIP, from the member names (and ``mimetype``).

    Without ``path`` only the head is used, which recognises OpenDocument files.
    """
    mimetype = _odf_mimetype(head)
    if mimetype is not None:
        return _odf_type(mimetype)
    if path is None:
        return ZIP
    try:
        directory = read_zip_directory(path)
        if directory is None or directory.size > _ZIP_SNIFF_MAX_DIRECTORY:
            return ZIP
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            if "mimetype" in names:
                info = zf.getinfo("mimetype")
                if info.file_size <= 200:
                    with zf.open(info) as member:
                        return _odf_type(member.read(200))
    except (
        zipfile.BadZipFile,
        OSError,
        EOFError,
        ValueError,
        RuntimeError,
        NotImplementedError,
        zlib.error,
    ):
        return ZIP
    return _office_type(names)


def _odf_mimetype(head: bytes) -> bytes | None:
    # ODF puts an uncompressed "mimetype" member first, so the head usually suffices.
    if len(head) < 30 or not head.startswith(b"PK\x03\x04"):
        return None
    method, csize = struct.unpack_from("<H", head, 8)[0], struct.unpack_from("<L", head, 18)[0]
    nlen, elen = struct.unpack_from("<HH", head, 26)
    if head[30 : 30 + nlen] != b"mimetype" or method != 0 or csize > 200:
        return None
    start = 30 + nlen + elen
    return head[start : start + csize]


def _odf_type(mimetype: bytes) -> str:
    if mimetype.startswith(b"application/vnd.oasis.opendocument.text"):
        return ODT
    if mimetype.startswith(b"application/vnd.oasis.opendocument."):
        return ODF
    return ZIP


def _office_type(names: Iterable[str]) -> str:
    found = set(names)
    if "[Content_Types].xml" in found:
        if "word/document.xml" in found:
            return DOCX
        if "xl/workbook.xml" in found:
            return XLSX
        if "ppt/presentation.xml" in found:
            return PPTX
    if "META-INF/MANIFEST.MF" in found:
        return JAR
    return ZIP


# --- detection ---------------------------------------------------------------------------------
def detect_type(name: str, head: bytes, size: int, path: Path | None = None) -> str:
    """The type of one file from its name, its first bytes and (for zips) its central directory.

    Args:
        name: the file name (only the suffix and a few arXiv names matter).
        head: the first ``HEAD_BYTES`` of the content (or all of it when shorter).
        size: the full size in bytes.
        path: where the file is, to list a zip's members; without it a zip is just ``ZIP``.
    """
    lower = name.rsplit("/", 1)[-1].lower()
    suffix = lower[lower.rfind(".") :] if "." in lower else ""
    if _README.match(lower):
        return README
    if suffix in _TEXAUX_SUFFIXES:
        return TEXAUX
    by_magic = _type_by_magic(head, size)
    if by_magic == ZIP:
        return zip_subtype(path, head)
    if by_magic is not None:
        return by_magic
    if suffix in (".htm", ".html"):
        return HTML
    text = _as_text(head)
    if text is None:
        return BINARY
    return _type_of_text(text, suffix)


def _type_by_magic(head: bytes, size: int) -> str | None:
    kind = archive_kind(head)
    if kind is not None:
        return {"gzip": GZIPPED, "bzip2": BZIP2, "xz": XZ, "zip": ZIP, "tar": TAR}[kind]
    if head.startswith(b"\x1f\x9d"):
        return COMPRESSED
    if head.startswith(b"Rar!\x1a\x07"):
        return RAR
    if head.startswith(b"7z\xbc\xaf\x27\x1c"):
        return SEVENZIP
    if head.startswith(b"\xf7\x02"):
        return DVI
    if head.startswith((b"GIF87a", b"GIF89a", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")):
        return IMAGE
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return IMAGE
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return IMAGE
    if head[:2] == b"BM" and len(head) >= 26 and int.from_bytes(head[2:6], "little") == size:
        return IMAGE
    if head.startswith(b"\xc5\xd0\xd3\xc6"):
        return DOS_EPS
    pdf_at = head.find(b"%PDF-", 0, 1024)
    if pdf_at == 0 or (pdf_at > 0 and b"\n" not in head[:pdf_at]):
        return PDF
    if head.startswith((b"%!PS-AdobeFont", b"%!FontType1")):
        return PS_FONT
    if head.startswith(b"%!"):
        return POSTSCRIPT
    return None


_CONTROL = bytes(sorted(set(range(32)) - {9, 10, 12, 13, 27}))


def _as_text(head: bytes) -> str | None:
    """The head decoded as text, or ``None`` if it looks binary (NUL or many control bytes)."""
    if b"\x00" in head:
        return None
    controls = len(head) - len(head.translate(None, _CONTROL))
    if controls * 100 > len(head):
        return None
    try:
        return codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        # Legacy 8-bit text: latin-1 TeX sources are common.
        return head.decode("latin-1")


_BIB_ENTRY = re.compile(
    r"^\s*@(article|book|booklet|conference|inbook|incollection|inproceedings|manual|"
    r"mastersthesis|misc|phdthesis|proceedings|techreport|unpublished|online|string|"
    r"preamble|comment)\s*[{(]",
    re.IGNORECASE | re.MULTILINE,
)
_HTML_START = re.compile(r"<!doctype\s+html|<html[\s>]|<head[\s>]|<body[\s>]", re.IGNORECASE)
_SVG = re.compile(r"<svg[\s>]", re.IGNORECASE)
# A plain TeX command at the start of a line (after blanks). Found by its backslash, then the
# line start is checked: ``^\s*\\(...)`` under MULTILINE took ~40 ns per character (0.8 ms for
# a 20 KB section, the largest part of an upload of TeX sources, issue #13 section 8).
_PLAIN_TEX_COMMAND = re.compile(
    r"\\(magnification|bye|nopagenumbers|hsize|vsize|parindent|baselineskip|font\\|"
    r"input\s|def\\|centerline|line\{|settabs)"
)


def _plain_tex(text: str) -> bool:
    """Whether a line of ``text`` starts (after whitespace) with a plain TeX command."""
    for match in _PLAIN_TEX_COMMAND.finditer(text):
        start = match.start()
        line = text.rfind("\n", 0, start) + 1
        if line == start or text[line:start].isspace():
            return True
    return False


_INCLUDE_RASTER = re.compile(r"\\includegraphics[^{]*\{[^}]*\.(pdf|png|gif|jpe?g)\}", re.I)


def _type_of_text(text: str, suffix: str) -> str:
    # Cheap substring tests first: every TeX rule needs a backslash, every BibTeX entry an "@".
    stripped = text.lstrip("\ufeff \t\r\n")
    if stripped.startswith("<"):
        start = stripped[:2048]
        if _HTML_START.search(start):
            return HTML
        if _SVG.search(start):
            return IMAGE
    backslash = "\\" in text
    tex = _tex_type(text) if backslash else None
    if tex is not None:
        return tex
    if suffix == ".bib":
        return BIBTEX
    bib_head = text[:16384]
    if "@" in bib_head and _BIB_ENTRY.search(bib_head):
        return BIBTEX
    if suffix in _TEX_SUFFIXES and backslash:
        return TEX
    return TEXT


def _tex_type(text: str) -> str | None:
    if "\\document" not in text:  # neither \documentclass nor \documentstyle: skip the lines
        return TEX if _plain_tex(text) else None
    lines = text.splitlines()
    for number, line in enumerate(lines):
        code = line.split("%", 1)[0] if not line.lstrip().startswith("%") else ""
        if not code:
            continue
        if "\\documentclass" in code:
            window = "\n".join(lines[max(0, number - 5) : number + 6])
            if "\\pdfoutput" in window or _INCLUDE_RASTER.search(text):
                return PDFLATEX
            return LATEX2E
        if "\\documentstyle" in code:
            return LATEX
    if _plain_tex(text):
        return TEX
    return None
