"""arXiv's UnMacify (rule 23): line endings normalised to LF, trailing ^Z / ^D / 0xFF stripped.

A staged text file is read once to see whether it needs either (a memchr per chunk), and is
rewritten, streamed, only when it does; the caller then takes the new size and hash. Whether it
ends with a newline is reported either way, since arXiv warns about text that may be truncated.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["TERMINATORS", "TextRepair", "repair_bytes", "repair_text", "write_over"]

CHUNK = 1024 * 1024
# Bytes that DOS, old Macs and some editors leave at the end of a text file.
TERMINATORS: dict[int, str] = {0x1A: "^Z", 0x04: "^D", 0xFF: "0xFF"}
_HOLD = b"\r\x1a\x04\xff"  # held back at a chunk's end: a CR may meet its LF, a run may end it


@dataclass(frozen=True)
class TextRepair:
    """What ``repair_text`` did to one file."""

    line_endings: bool  # CR LF or lone CR became LF
    stripped: tuple[str, ...]  # names of the trailing bytes removed, in the order first seen
    final_newline: bool  # the (repaired) file ends with "\n"
    size: int
    sha256: str | None  # None when the file was not rewritten
    skipped: bool = False  # ``need_cr`` and no CR: not looked at further

    @property
    def rewritten(self) -> bool:
        return self.sha256 is not None


def _needs_repair(path: Path, whole: bytes | None) -> tuple[bool, bytes]:
    """Whether the file holds a CR, and its last byte."""
    if whole is not None:
        return b"\r" in whole, whole[-1:]
    has_cr, last = False, b""
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            has_cr = has_cr or b"\r" in chunk
            last = chunk[-1:]
    return has_cr, last


def repair_text(
    path: Path,
    size: int,
    *,
    whole: bytes | None = None,
    need_cr: bool = False,
    keep: Path | None = None,
) -> TextRepair:
    """Normalise ``path`` in place if it needs it; ``whole`` is its content when already read.

    With ``need_cr`` a file without any CR is left alone and ``skipped`` (arXiv's PC and MAC
    types are text with CR line ends; other plain text is not checked at all). A file repaired
    by rewriting (not ``whole``) leaves its original bytes at ``keep``, if given (the
    quarantine keeps them).
    """
    has_cr, last = _needs_repair(path, whole)
    if need_cr and not has_cr:
        return TextRepair(False, (), last == b"\n", size, None, skipped=True)
    if not has_cr and (not last or last[0] not in TERMINATORS):
        return TextRepair(False, (), last == b"\n", size, None)
    if whole is not None:
        return _repair_in_memory(path, whole)
    temp = path.with_name(f".{path.name}.repair")
    digest = hashlib.sha256()
    written = 0
    last_out = b""
    seen: list[str] = []
    pending = b""
    try:
        with path.open("rb") as src, temp.open("xb") as dst:

            def emit(out: bytes) -> None:
                nonlocal written, last_out
                if out:
                    dst.write(out)
                    digest.update(out)
                    written += len(out)
                    last_out = out[-1:]

            while chunk := src.read(CHUNK):
                data = pending + chunk
                cut = len(data.rstrip(_HOLD))
                body, pending = data[:cut], data[cut:]
                emit(body.replace(b"\r\n", b"\n").replace(b"\r", b"\n"))
            kept = bytearray()
            for byte in pending:
                if byte in TERMINATORS:
                    if TERMINATORS[byte] not in seen:
                        seen.append(TERMINATORS[byte])
                else:
                    kept.append(byte)
            emit(bytes(kept).replace(b"\r", b"\n"))
        if keep is not None:
            os.rename(path, keep)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return TextRepair(has_cr, tuple(seen), last_out == b"\n", written, digest.hexdigest())


def repair_bytes(data: bytes, *, need_cr: bool = False) -> tuple[TextRepair, bytes | None]:
    """``repair_text`` of content held in memory: the repair and the new bytes (None: as is)."""
    has_cr, last = b"\r" in data, data[-1:]
    if need_cr and not has_cr:
        return TextRepair(False, (), last == b"\n", len(data), None, skipped=True), None
    if not has_cr and (not last or last[0] not in TERMINATORS):
        return TextRepair(False, (), last == b"\n", len(data), None), None
    return _repaired(data)


def _repair_in_memory(path: Path, data: bytes) -> TextRepair:
    """The small-file case: repaired in memory and written over the file in place (creating a
    file costs far more than writing one on these disks, see issue #13 section 8)."""
    repair, out = _repaired(data)
    write_over(path, out)
    return repair


def _repaired(data: bytes) -> tuple[TextRepair, bytes]:
    body = data.rstrip(_HOLD)  # as the streamed case treats the file's end
    seen: list[str] = []
    kept = bytearray()
    for byte in data[len(body) :]:
        if byte not in TERMINATORS:
            kept.append(byte)
        elif TERMINATORS[byte] not in seen:
            seen.append(TERMINATORS[byte])
    text = body + bytes(kept)
    has_cr = b"\r" in text
    out = text.replace(b"\r\n", b"\n").replace(b"\r", b"\n") if has_cr else text
    sha256 = hashlib.sha256(out).hexdigest()
    return TextRepair(has_cr, tuple(seen), out.endswith(b"\n"), len(out), sha256), out


def write_over(path: Path, data: bytes) -> None:
    """Replace the content of ``path`` (ours, in staging) without creating a new file."""
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
