"""arXiv's CleanupPostScript and RepairDOSEPSFiles (rule 24): PostScript without its previews.

A DOS EPS file is a 30-byte binary header pointing at a PostScript section and an optional WMF
or TIFF preview; only the PostScript is kept. Inside PostScript, preview, Photoshop and
thumbnail sections are bitmaps for programs that cannot render PostScript (TeX never uses them)
and can be most of the file, so they are cut out, each with arXiv's message naming the lines
and the sizes before and after.
"""

from __future__ import annotations

import re
import struct

__all__ = ["MAX_CLEAN_BYTES", "clean_postscript", "has_sections"]

HELP_SIZES = "(see http://arxiv.org/help/sizes)"
# Files are read whole to be cleaned; above this they are kept as they are (the arXiv targets
# limit one file to 50 MiB).
MAX_CLEAN_BYTES = 64 * 1024 * 1024

_DOS_EPS = struct.Struct("<4s6L")
_DOS_EPS_MAGIC = b"\xc5\xd0\xd3\xc6"
# (kind in the message, start of the opening line, pattern of the closing line)
_SECTIONS = (
    ("Preview", re.compile(rb"%%BeginPreview\b"), re.compile(rb"%%EndPreview\b")),
    ("Photoshop", re.compile(rb"%BeginPhotoshop\b"), re.compile(rb"%EndPhotoshop\b")),
    ("Thumbnail", re.compile(rb"%%BeginThumbnail\b"), re.compile(rb"%%EndThumbnail\b")),
    ("Thumbnail", re.compile(rb"%AI\d*_Thumbnail\b"), re.compile(rb"%AI\d*_EndThumbnail\b")),
)
_MARKERS = (b"Preview", b"Photoshop", b"Thumbnail")


def has_sections(data: bytes) -> bool:
    """Whether ``data`` may hold a section to remove (a cheap substring test)."""
    return data.startswith(_DOS_EPS_MAGIC) or any(marker in data for marker in _MARKERS)


def _repair_dos_eps(data: bytes, name: str) -> tuple[bytes, list[str]]:
    if not data.startswith(_DOS_EPS_MAGIC) or len(data) < _DOS_EPS.size:
        return data, []
    _, ps_at, ps_len, wmf_at, wmf_len, tiff_at, tiff_len = _DOS_EPS.unpack_from(data)
    if ps_at < _DOS_EPS.size or ps_len == 0 or ps_at + ps_len > len(data):
        return data, [f"'{name}' has a DOS EPS header that points outside the file; kept as is."]
    del wmf_at, tiff_at
    kept = data[ps_at : ps_at + ps_len]
    what = "TIFF preview" if tiff_len else "WMF preview" if wmf_len else "DOS EPS binary header"
    return kept, [
        f"Unnecessary {what} removed from '{name}', reduced from {len(data)} bytes to "
        f"{len(kept)} bytes {HELP_SIZES}"
    ]


def _strip_sections(data: bytes, name: str) -> tuple[bytes, list[str]]:
    """One pass over the lines: each section from its opening to its closing line goes.

    Line numbers and sizes in the messages are those of the file as each cut leaves it, as if
    the sections were cut one after another from the top.
    """
    lines = data.splitlines(keepends=True)
    kept: list[bytes] = []
    messages: list[str] = []
    size = len(data)
    removed_lines = 0
    index = 0
    while index < len(lines):
        line = lines[index]
        section = None
        if line.startswith(b"%"):
            section = next((s for s in _SECTIONS if s[1].match(line)), None)
        if section is not None:
            kind, _, closing = section
            end = next((i for i in range(index + 1, len(lines)) if closing.match(lines[i])), None)
            if end is not None:
                cut = sum(len(x) for x in lines[index : end + 1])
                start_no = index + 1 - removed_lines
                messages.append(
                    f"Unnecessary {kind} removed from '{name}' from line {start_no} to line "
                    f"{start_no + end - index}, reduced from {size} bytes to {size - cut} bytes "
                    f"{HELP_SIZES}"
                )
                size -= cut
                removed_lines += end + 1 - index
                index = end + 1
                continue
        kept.append(line)
        index += 1
    return (b"".join(kept), messages) if messages else (data, [])


def clean_postscript(data: bytes, name: str) -> tuple[bytes, list[str]]:
    """``data`` without its DOS EPS header and preview sections, and a warning per removal."""
    data, messages = _repair_dos_eps(data, name)
    if any(marker in data for marker in _MARKERS):
        data, more = _strip_sections(data, name)
        messages += more
    return data, messages
