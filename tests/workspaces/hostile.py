"""A corpus of hostile (and one normal) uploads, built at test time with tarfile/zipfile/gzip.

Each builder is ``build_x(dir) -> Path``: it writes one upload into ``dir`` and returns its path.
``CORPUS`` maps a short name to each builder, and ``OUTCOME`` says what ``process_upload`` must
report for it under the default limits: ``fatal`` (the upload is refused), ``warn`` (accepted with
warnings) or ``clean``. The API end-to-end tests reuse both.

No binary fixture is committed; the bombs are built from a deflate segment repeated, in well
under a second, so they cost ~1 MB on disk whatever they expand to.
"""

from __future__ import annotations

import gzip
import io
import stat
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Literal

MiB = 1024 * 1024
GiB = 1024 * MiB

LATEX_MAIN = rb"""\documentclass{article}
\usepackage{graphicx}
\begin{document}
\title{A small paper}
\maketitle
See \cite{knuth84} and Figure~\ref{fig}.
\begin{figure}\includegraphics{fig}\caption{A pixel.}\label{fig}\end{figure}
\bibliographystyle{plain}
\bibliography{refs}
\end{document}
"""
BIBTEX = b"""@book{knuth84,
  author = {Donald E. Knuth},
  title = {The {\\TeX}book},
  year = {1984},
}
"""
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def png_bytes(seed: int = 0) -> bytes:
    """A valid 1x1 PNG (the pixel colour depends on ``seed``)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    idat = zlib.compress(bytes([0, seed % 256, 0, 0]))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


# --- helpers -----------------------------------------------------------------------------------
def _tar(
    path: Path,
    members: list[tarfile.TarInfo | tuple[str, bytes]],
    mode: Literal["w", "w:gz", "w:bz2", "w:xz"] = "w:gz",
    fmt: int = tarfile.GNU_FORMAT,
) -> Path:
    with tarfile.open(path, mode, format=fmt, encoding="utf-8", errors="surrogateescape") as tf:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                tf.addfile(member)
            else:
                name, data = member
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mtime = 1_700_000_000
                tf.addfile(info, io.BytesIO(data))
    return path


def _special(
    name: str, kind: bytes, linkname: str = "", major: int = 0, minor: int = 0
) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.devmajor, info.devminor = major, minor
    return info


def _zip(path: Path, members: list[tuple[str | zipfile.ZipInfo, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return path


def _zeros_deflate(size: int) -> tuple[bytes, int]:
    """A raw deflate stream of ``size`` zero bytes (a multiple of 1 MiB) and its CRC-32.

    After a full flush the compressor starts afresh, so every further MiB of zeros compresses to
    the very same ~1 KB segment: the stream is one segment repeated, built without compressing
    gigabytes.
    """
    assert size % MiB == 0
    block = bytes(MiB)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    segment = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    end = compressor.flush(zlib.Z_FINISH)
    crc = 0
    for _ in range(size // MiB):
        crc = zlib.crc32(block, crc)
    return segment * (size // MiB) + end, crc


RawMember = tuple[bytes, bytes, int, int]  # name as stored, deflated data, its CRC-32, its size


def _raw_member(name: bytes, data: bytes) -> RawMember:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return name, compressor.compress(data) + compressor.flush(), zlib.crc32(data), len(data)


def _gzip(data: bytes, *, name: bytes | None = None, extra: bytes | None = None) -> bytes:
    """A gzip member with an optional name (FNAME, NUL added) and extra field in its header."""
    flags, header = 0, b""
    if extra is not None:
        flags |= 0x04
        header += struct.pack("<H", len(extra)) + extra
    if name is not None:
        flags |= 0x08
        header += name + b"\0"
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = compressor.compress(data) + compressor.flush()
    start = struct.pack("<2sBBLBB", b"\x1f\x8b", 8, flags, 0, 2, 255)
    return start + header + body + struct.pack("<LL", zlib.crc32(data), len(data))


def _raw_zip(path: Path, members: list[RawMember]) -> Path:
    """A zip of already-deflated members, names stored byte for byte (zip64 when needed).

    zipfile refuses to write some names (empty ones, say) and cuts others at a NUL on reading
    its own input; here nothing is checked, so any name can be tried.
    """
    body = central = b""
    for name, deflated, crc, size in members:
        big = size >= 0xFFFFFFFF or len(deflated) >= 0xFFFFFFFF
        extra = struct.pack("<HHQQ", 1, 16, size, len(deflated)) if big else b""
        usize, csize = (0xFFFFFFFF, 0xFFFFFFFF) if big else (size, len(deflated))
        version = 45 if big else 20
        common = (8, 0, 0x21, crc, csize, usize, len(name), len(extra))  # deflate, time, date ..
        local = struct.pack("<4s5H3L2H", b"PK\x03\x04", version, 0, *common) + name + extra
        mode = (stat.S_IFREG | 0o644) << 16
        fields = ((3 << 8) | version, version, 0, *common, 0, 0, 0, mode, len(body))
        central += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", *fields) + name + extra
        body += local + deflated
    count = len(members)
    eocd = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, count, count, len(central), len(body), 0)
    path.write_bytes(body + central + eocd)
    return path


# --- builders ----------------------------------------------------------------------------------
def build_empty_file(dir: Path) -> Path:
    """A 0-byte upload."""
    path = dir / "empty.tex"
    path.write_bytes(b"")
    return path


def build_not_an_archive(dir: Path) -> Path:
    """Plain text named like a gzipped tar."""
    path = dir / "paper.tar.gz"
    path.write_bytes(b"This is not an archive at all.\n" * 10)
    return path


def build_truncated_gzip(dir: Path) -> Path:
    """A .tar.gz cut in the middle of its compressed stream."""
    full = dir / "full.tar.gz"
    noise = bytes((i * 7919 + i // 251) % 256 for i in range(300_000))  # barely compressible
    _tar(full, [("main.tex", LATEX_MAIN), ("data.bin", noise)])
    data = full.read_bytes()
    full.unlink()
    path = dir / "truncated.tar.gz"
    path.write_bytes(data[: len(data) * 2 // 3])
    return path


def build_zip_traversal(dir: Path) -> Path:
    """A zip with ``../`` names (one hidden in the middle of a path) next to a good file."""
    return _zip(
        dir / "traversal.zip",
        [
            ("ok.txt", b"fine\n"),
            ("../evil.txt", b"escaped\n"),
            ("a/../../evil2.txt", b"escaped\n"),
            ("..\\evil3.txt", b"escaped\n"),
        ],
    )


def build_absolute_names(dir: Path) -> Path:
    """A tar with absolute member names."""
    return _tar(
        dir / "absolute.tar.gz",
        [("ok.txt", b"fine\n"), ("/tmp/cairn-evil-abs.txt", b"escaped\n"), ("//x.txt", b"x\n")],
    )


def build_drive_letters(dir: Path) -> Path:
    """A zip with Windows drive-letter and UNC names."""
    return _zip(
        dir / "drives.zip",
        [
            ("ok.txt", b"fine\n"),
            ("C:\\Windows\\evil.txt", b"escaped\n"),
            ("d:/evil.txt", b"escaped\n"),
            ("\\\\server\\share\\evil.txt", b"escaped\n"),
        ],
    )


def build_symlink_outside(dir: Path) -> Path:
    """Symlinks pointing outside, then files written "through" them (the classic escape)."""
    return _tar(
        dir / "symlink.tar.gz",
        [
            ("ok.txt", b"fine\n"),
            _special("passwd", tarfile.SYMTYPE, "../../../../../../etc/passwd"),
            _special("outside", tarfile.SYMTYPE, "/tmp"),
            ("outside/cairn-evil-link.txt", b"escaped?\n"),
        ],
    )


def build_zip_symlink(dir: Path) -> Path:
    """A zip whose member is a Unix symlink (zipfile stores the target as the data)."""
    info = zipfile.ZipInfo("passwd")
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return _zip(dir / "symlink.zip", [("ok.txt", b"fine\n"), (info, b"/etc/passwd")])


def build_hard_link(dir: Path) -> Path:
    """A hard link to a system file and one to a member."""
    return _tar(
        dir / "hardlink.tar.gz",
        [
            ("ok.txt", b"fine\n"),
            _special("shadow", tarfile.LNKTYPE, "/etc/shadow"),
            _special("ok-again.txt", tarfile.LNKTYPE, "ok.txt"),
        ],
    )


def build_device_file(dir: Path) -> Path:
    """Character and block devices and a FIFO."""
    return _tar(
        dir / "devices.tar",
        [
            ("ok.txt", b"fine\n"),
            _special("null", tarfile.CHRTYPE, major=1, minor=3),
            _special("sda", tarfile.BLKTYPE, major=8, minor=0),
            _special("pipe", tarfile.FIFOTYPE),
        ],
        mode="w",
    )


def build_tiny_files(dir: Path, count: int = 10_000) -> Path:
    """``count`` tiny files in 100 folders (no single top folder, so nothing is flattened)."""
    members: list[tarfile.TarInfo | tuple[str, bytes]] = [
        (f"d{i % 100:02d}/f{i:05d}.txt", f"{i}\n".encode()) for i in range(count)
    ]
    return _tar(dir / "tiny.tar.gz", members)


def build_flat_zip_bomb(dir: Path) -> Path:
    """One member of 1 GiB of zeros in ~1 MB."""
    deflated, crc = _zeros_deflate(GiB)
    return _raw_zip(dir / "flat-bomb.zip", [(b"zeros.bin", deflated, crc, GiB)])


def build_zip_bomb(dir: Path, layers: int = 10) -> Path:
    """42.zip style: ``layers`` zips, each 1 GiB of zeros, zipped again: ~10 GiB in ~40 KB.

    The inner zips are a 1 KB deflate segment repeated, so the outer deflate squeezes them again.
    """
    inner = _raw_zip(dir / "layer.zip", [(b"zeros.bin", *_zeros_deflate(GiB), GiB)])
    data = inner.read_bytes()
    inner.unlink()
    return _zip(dir / "bomb.zip", [(f"layer-{i}.zip", data) for i in range(layers)])


def build_gzip_bomb(dir: Path) -> Path:
    """A single-file ``.gz`` of 1 GiB of zeros in ~1 MB."""
    deflated, crc = _zeros_deflate(GiB)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    trailer = struct.pack("<LL", crc, GiB & 0xFFFFFFFF)
    path = dir / "zeros.csv.gz"
    path.write_bytes(header + deflated + trailer)
    return path


def build_tar_bomb(dir: Path, member: str = "zeros.bin") -> Path:
    """A ``.tar.gz`` holding one member of 1 GiB of zeros, in ~1 MB.

    With ``member=".hidden"`` the member is junk that is skipped, never written: its data is
    still decompressed, which the limits must bound too.
    """
    info = tarfile.TarInfo(member)
    info.size = GiB
    header = info.tobuf(tarfile.GNU_FORMAT)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = compressor.compress(header) + compressor.flush(zlib.Z_FULL_FLUSH)
    zeros, _ = _zeros_deflate(MiB)
    segment = zeros[:-2]  # without the final empty block
    tail = compressor.compress(bytes(2 * tarfile.BLOCKSIZE)) + compressor.flush(zlib.Z_FINISH)
    crc = zlib.crc32(header)
    block = bytes(MiB)
    for _ in range(GiB // MiB):
        crc = zlib.crc32(block, crc)
    crc = zlib.crc32(bytes(2 * tarfile.BLOCKSIZE), crc)
    length = len(header) + GiB + 2 * tarfile.BLOCKSIZE
    path = dir / ("tar-bomb.tar.gz" if member == "zeros.bin" else "hidden-bomb.tar.gz")
    with path.open("wb") as out:
        out.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + first)
        for _ in range(GiB // MiB):
            out.write(segment)
        out.write(tail + struct.pack("<LL", crc, length & 0xFFFFFFFF))
    return path


def build_hidden_bomb(dir: Path) -> Path:
    """A tar bomb whose only member is a hidden file, skipped but still decompressed."""
    return build_tar_bomb(dir, member=".hidden")


class Zeros(io.RawIOBase):
    """``size`` zero bytes, produced on demand."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self.left)
        buffer[:n] = bytes(n)
        self.left -= n
        return n


def build_compressed_tar_bomb(dir: Path, kind: Literal["bz2", "xz"], size: int) -> Path:
    """A ``.tar.bz2`` or ``.tar.xz`` of one member of ``size`` zero bytes.

    Not in ``CORPUS``: compressing takes seconds. bzip2 packs 256 MiB of zeros in ~200 bytes.
    """
    path = dir / f"bomb.tar.{kind}"
    mode: Literal["w:bz2", "w:xz"] = "w:bz2" if kind == "bz2" else "w:xz"
    with tarfile.open(path, mode) as tf:
        info = tarfile.TarInfo("zeros.bin")
        info.size = size
        tf.addfile(info, Zeros(size))
    return path


def build_nested_20(dir: Path, depth: int = 20) -> Path:
    """``depth`` tar.gz archives, each inside the next, each with one text file."""
    previous: Path | None = None
    for level in range(depth):
        members: list[tarfile.TarInfo | tuple[str, bytes]] = [
            (f"level-{level:02d}.txt", f"level {level}\n".encode())
        ]
        if previous is not None:
            members.append((previous.name, previous.read_bytes()))
        current = _tar(dir / f"nested-{level:02d}.tar.gz", members)
        if previous is not None:
            previous.unlink()
        previous = current
    assert previous is not None
    return previous


def build_non_utf8_names(dir: Path) -> Path:
    """Names with Latin-1 bytes, invalid UTF-8, control characters and Unicode tricks."""
    return _tar(
        dir / "names.tar.gz",
        [
            ("caf\udce9.tex", b"latin-1 name\n"),  # raw byte 0xE9
            ("\udcff\udcfe.txt", b"invalid utf-8\n"),
            ("new\nline.txt", b"newline in name\n"),
            ("r\u00e9sum\u00e9 final.txt", b"accents and a space\n"),
            ("evil\u202etxt.exe", b"right-to-left override\n"),
            ("-rf", b"leading hyphen\n"),
            ("\u2025", b"two-dot leader, becomes '..' under NFKD\n"),
        ],
    )


def build_long_names(dir: Path) -> Path:
    """A 300-byte component and a deep (but allowed) path."""
    deep = "/".join(["deep"] * 150) + "/leaf.txt"  # 750 + 9 bytes
    return _tar(
        dir / "long.tar.gz",
        [("a" * 300 + ".tex", b"long name\n"), (deep, b"deep\n"), ("short.txt", b"ok\n")],
    )


def build_too_long_path(dir: Path) -> Path:
    """A path longer than the 1024-byte limit."""
    return _tar(dir / "too-long.tar.gz", [("/".join(["x" * 200] * 6) + "/f.txt", b"x\n")])


def build_case_duplicates(dir: Path) -> Path:
    """Names differing only in case."""
    return _zip(
        dir / "case.zip",
        [
            ("Figure.png", png_bytes(1)),
            ("figure.png", png_bytes(2)),
            ("FIGURE.PNG", png_bytes(3)),
            ("other.txt", b"x\n"),
        ],
    )


def build_hidden_junk(dir: Path) -> Path:
    """macOS, Windows, editor and VCS junk around one real file."""
    return _zip(
        dir / "junk.zip",
        [
            ("main.tex", LATEX_MAIN),
            (".DS_Store", b"\0\0\0\1Bud1"),
            ("__MACOSX/._main.tex", b"\0\5\26\7"),
            ("__MACOSX/.DS_Store", b"x"),
            ("Thumbs.db", b"x"),
            ("desktop.ini", b"[.ShellClassInfo]\n"),
            ("main.tex~", b"old\n"),
            ("#main.tex#", b"autosave\n"),
            (".main.tex.swp", b"swap\n"),
            (".git/config", b"[core]\n"),
            (".git/HEAD", b"ref: refs/heads/main\n"),
        ],
    )


def build_zip_nameless(dir: Path) -> Path:
    """A zip with an empty member name and one starting with a NUL (read as empty)."""
    return _raw_zip(
        dir / "nameless.zip",
        [
            _raw_member(b"ok.txt", b"fine\n"),
            _raw_member(b"", b"no name\n"),
            _raw_member(b"\0evil.txt", b"cut at the NUL\n"),
        ],
    )


# Member names that are nothing once empty and "." components are dropped, or that are refused
# whatever follows (absolute, "..", a drive letter).
ODD_NAMES = (".", "./.", "..", "../", "/", "//", "/./", "C:", "C:\\")


def build_zip_dot_names(dir: Path) -> Path:
    """A zip of regular files named only with dots, slashes and drive letters."""
    members = [_raw_member(name.encode(), b"x\n") for name in ODD_NAMES]
    return _raw_zip(dir / "dots.zip", [_raw_member(b"ok.txt", b"fine\n"), *members])


def build_tar_nameless(dir: Path) -> Path:
    """A tar of regular files with empty names, names cut at a NUL, and the odd names above."""
    names = ["", "\0evil.txt", "./", *ODD_NAMES]
    return _tar(dir / "nameless.tar", [("ok.txt", b"fine\n"), *((n, b"x\n") for n in names)], "w")


def build_gzip_embedded_name(dir: Path) -> Path:
    """A gzipped file whose header names '../../etc/passwd'; only the upload's name counts."""
    path = dir / "notes.txt.gz"
    path.write_bytes(_gzip(b"notes\n", name=b"../../etc/passwd"))
    return path


def build_gzip_long_header(dir: Path) -> Path:
    """A .tar.gz whose header holds a 64 KiB extra field and a 100 KB name (both legal)."""
    tar = _tar(dir / "inner.tar", [("main.tex", LATEX_MAIN)], "w")
    path = dir / "long-header.tar.gz"
    path.write_bytes(_gzip(tar.read_bytes(), name=b"n" * 100_000, extra=bytes(0xFFFF)))
    tar.unlink()
    return path


def build_gzip_dots_name(dir: Path) -> Path:
    """A gzipped file uploaded as '..gz': without its '.gz' the name would be '.'."""
    path = dir / "..gz"
    path.write_bytes(gzip.compress(b"data\n", mtime=0))
    return path


def build_latex_paper(dir: Path) -> Path:
    """A normal paper: LaTeX source, BibTeX, a PNG and a PDF figure."""
    return _tar(
        dir / "paper.tar.gz",
        [
            ("main.tex", LATEX_MAIN),
            ("refs.bib", BIBTEX),
            ("fig.png", png_bytes()),
            ("figs/plot.pdf", PDF),
        ],
    )


def build_docx(dir: Path) -> Path:
    """A Word document: a zip that must be kept, not unpacked."""
    return _zip(
        dir / "paper.docx",
        [
            ("[Content_Types].xml", b"<Types/>"),
            ("_rels/.rels", b"<Relationships/>"),
            ("word/document.xml", b"<w:document/>"),
        ],
    )


def build_data_gz(dir: Path) -> Path:
    """A gzipped single CSV: decompressed to ``data.csv``."""
    path = dir / "data.csv.gz"
    path.write_bytes(gzip.compress(b"a,b\n1,2\n" * 100, mtime=0))
    return path


def build_fake_zip(dir: Path) -> Path:
    """Text named ``.zip``."""
    path = dir / "figures.zip"
    path.write_bytes(b"not a zip\n")
    return path


Builder = Callable[[Path], Path]
CORPUS: dict[str, Builder] = {
    "empty_file": build_empty_file,
    "not_an_archive": build_not_an_archive,
    "fake_zip": build_fake_zip,
    "truncated_gzip": build_truncated_gzip,
    "zip_traversal": build_zip_traversal,
    "absolute_names": build_absolute_names,
    "drive_letters": build_drive_letters,
    "symlink_outside": build_symlink_outside,
    "zip_symlink": build_zip_symlink,
    "hard_link": build_hard_link,
    "device_file": build_device_file,
    "tiny_files": build_tiny_files,
    "zip_bomb": build_zip_bomb,
    "flat_zip_bomb": build_flat_zip_bomb,
    "gzip_bomb": build_gzip_bomb,
    "tar_bomb": build_tar_bomb,
    "hidden_bomb": build_hidden_bomb,
    "nested_20": build_nested_20,
    "non_utf8_names": build_non_utf8_names,
    "long_names": build_long_names,
    "too_long_path": build_too_long_path,
    "case_duplicates": build_case_duplicates,
    "hidden_junk": build_hidden_junk,
    "zip_nameless": build_zip_nameless,
    "zip_dot_names": build_zip_dot_names,
    "tar_nameless": build_tar_nameless,
    "gzip_embedded_name": build_gzip_embedded_name,
    "gzip_long_header": build_gzip_long_header,
    "gzip_dots_name": build_gzip_dots_name,
    "latex_paper": build_latex_paper,
    "docx": build_docx,
    "data_gz": build_data_gz,
}

Outcome = Literal["fatal", "warn", "clean"]
# The worst finding level (info ignored) process_upload reports with the default limits.
OUTCOME: dict[str, Outcome] = {
    "empty_file": "warn",
    "not_an_archive": "fatal",
    "fake_zip": "fatal",
    "truncated_gzip": "fatal",
    "zip_traversal": "fatal",
    "absolute_names": "fatal",
    "drive_letters": "fatal",
    "symlink_outside": "warn",
    "zip_symlink": "warn",
    "hard_link": "warn",
    "device_file": "warn",
    "tiny_files": "clean",
    "zip_bomb": "fatal",
    "flat_zip_bomb": "fatal",
    "gzip_bomb": "fatal",
    "tar_bomb": "fatal",
    "hidden_bomb": "fatal",
    "nested_20": "fatal",
    "non_utf8_names": "warn",
    "long_names": "warn",
    "too_long_path": "fatal",
    "case_duplicates": "clean",  # the workspace-wide check warns, after the merge
    "hidden_junk": "warn",
    "zip_nameless": "fatal",
    "zip_dot_names": "fatal",
    "tar_nameless": "fatal",
    "gzip_embedded_name": "clean",
    "gzip_long_header": "clean",
    "gzip_dots_name": "warn",
    "latex_paper": "clean",
    "docx": "clean",
    "data_gz": "clean",
}
