"""The tar header parser: a ``TarInfo`` fast on ordinary headers and strict on hostile ones."""

from __future__ import annotations

import tarfile
from typing import Self

__all__ = ["MAX_TAR_META_BYTES", "BadHeader", "SafeTarInfo"]

# GNU long names and pax headers are read whole by tarfile; real ones are a few hundred bytes.
MAX_TAR_META_BYTES = 1024 * 1024


class BadHeader(Exception):
    """A tar header in the middle of an archive is invalid, or an extended header is huge."""


_TAR_META_TYPES = (
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
)


# The number fields of a tar header besides the checksum: mode, uid, gid, size, mtime, devmajor
# and devminor.
_TAR_NUMBERS = ((100, 108), (108, 116), (116, 124), (124, 136), (136, 148), (329, 337), (337, 345))
_HIGH_BYTES = bytes(range(128, 256))


def _octal(field: bytes | bytearray) -> int:
    """``tarfile.nti`` of a field in plain octal; ``ValueError`` for anything else (base-256)."""
    return int(field.split(b"\0", 1)[0].strip() or b"0", 8)


def _text(field: bytes | bytearray, encoding: str, errors: str) -> str:
    """``tarfile.nts``: the field up to its first NUL, decoded."""
    return field.split(b"\0", 1)[0].decode(encoding, errors)


class SafeTarInfo(tarfile.TarInfo):
    """TarInfo that refuses huge extended headers and reports mid-archive header damage.

    ``tarfile`` reads a GNU long name or pax header whole, trusting its declared size, and it
    ends an archive silently at an invalid header. Both would hide hostile input.
    """

    @classmethod
    def frombuf(cls, buf: bytes | bytearray, encoding: str, errors: str) -> Self:
        info = cls.ordinary_frombuf(buf, encoding, errors)
        if info is None:
            info = super().frombuf(buf, encoding, errors)
        if info.type in _TAR_META_TYPES and info.size > MAX_TAR_META_BYTES:
            raise BadHeader(f"extended header of {info.size} bytes")
        return info

    @classmethod
    def ordinary_frombuf(cls, buf: bytes | bytearray, encoding: str, errors: str) -> Self | None:
        """What ``tarfile.TarInfo.frombuf`` makes of an ordinary header, in half the time.

        Ordinary: a 512-byte block with a valid checksum and every number in plain octal, not
        an old GNU sparse header. For anything else (an end block, base-256 numbers, damage) it
        returns ``None``, and tarfile decides. A test compares both on many headers.
        """
        if len(buf) != tarfile.BLOCKSIZE or buf[156:157] == tarfile.GNUTYPE_SPARSE:
            return None
        try:
            checksum = _octal(buf[148:156])
            mode, uid, gid, size, mtime, devmajor, devminor = [
                _octal(buf[start:end]) for start, end in _TAR_NUMBERS
            ]
        except ValueError:
            return None
        # tarfile accepts the unsigned sum of the bytes or the signed one (Sun and NeXT tars),
        # the checksum field counting as spaces.
        unsigned = 256 + sum(buf) - sum(buf[148:156])
        if checksum != unsigned:
            field = buf[148:156]
            high = len(buf) - len(buf.translate(None, _HIGH_BYTES))
            high -= len(field) - len(field.translate(None, _HIGH_BYTES))
            if checksum != unsigned - 256 * high:
                return None
        info = cls()
        info.name = _text(buf[0:100], encoding, errors)
        info.mode, info.uid, info.gid, info.size, info.mtime = mode, uid, gid, size, mtime
        info.chksum = checksum
        info.type = bytes(buf[156:157])
        info.linkname = _text(buf[157:257], encoding, errors)
        info.uname = _text(buf[265:297], encoding, errors)
        info.gname = _text(buf[297:329], encoding, errors)
        info.devmajor, info.devminor = devmajor, devminor
        prefix = _text(buf[345:500], encoding, errors)
        if info.type == tarfile.AREGTYPE and info.name.endswith("/"):
            info.type = tarfile.DIRTYPE  # the old V7 way to store a directory
        if info.isdir():
            info.name = info.name.rstrip("/")
        if prefix and info.type not in tarfile.GNU_TYPES:
            info.name = prefix + "/" + info.name  # a ustar long name
        return info

    @classmethod
    def fromtarfile(cls, tarfile_: tarfile.TarFile) -> Self:
        try:
            return super().fromtarfile(tarfile_)
        except tarfile.HeaderError as exc:
            # A zero block or the end of data is the normal end of an archive.
            if type(exc).__name__ in ("EOFHeaderError", "EmptyHeaderError"):
                raise
            raise BadHeader(f"invalid tar header ({exc})") from exc
