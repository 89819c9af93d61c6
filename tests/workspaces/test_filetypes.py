"""Type detection from content, with arXiv's type names."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import re
import tarfile
import zipfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cairn.workspaces import _filetypes as ft
from cairn.workspaces._filetypes import detect_type, read_zip_directory, unpackable_kind

from .hostile import BIBTEX, LATEX_MAIN, PDF, png_bytes


def tar_bytes(compress: str = "") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=f"w:{compress}") as tf:  # type: ignore[call-overload]
        info = tarfile.TarInfo("a.txt")
        info.size = 2
        tf.addfile(info, io.BytesIO(b"a\n"))
    return buf.getvalue()


def zip_file(path: Path, members: dict[str, bytes], first: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        if first is not None:
            zf.writestr(first, members.pop(first), compress_type=zipfile.ZIP_STORED)
        for name, data in members.items():
            zf.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED)
    return path


# (name, content, expected type); ids name each case, never its bytes: gzip output holds a
# timestamp, and ids that differ between pytest-xdist workers break collection.
TYPE_CASES = [
    ("main.tex", LATEX_MAIN, ft.LATEX2E),
    ("main.tex", b"% comment\n\\pdfoutput=1\n\\documentclass{article}\n", ft.PDFLATEX),
    ("m.tex", b"\\documentclass{article}\n\\includegraphics{a.png}\n", ft.PDFLATEX),
    ("old.tex", b"\\documentstyle[12pt]{article}\n\\begin{document}\n", ft.LATEX),
    ("plain.tex", b"\\magnification=1200\nHello\n\\bye\n", ft.TEX),
    ("chapter.tex", b"\\section{Intro}\nText.\n", ft.TEX),
    ("commented.txt", b"% \\documentclass{article}\nplain words\n", ft.TEXT),
    ("inline.tex", b"text % \\documentclass{article}\n\\input macros\n", ft.TEX),
    ("late.tex", b"% licence\n" * 5000 + b"\\documentclass{article}\n", ft.LATEX2E),
    ("nobackslash.tex", b"no macros here\n", ft.TEXT),
    ("macro.txt", b"text with \\emph{x}\n", ft.TEXT),
    ("mail.txt", b"write to me@example.org\n", ft.TEXT),
    ("latin1.tex", "\\documentclass{article}\ncaf\u00e9\n".encode("latin-1"), ft.LATEX2E),
    ("refs.bib", BIBTEX, ft.BIBTEX),
    ("refs.txt", b"\n@Article{x,\n title={y}}\n", ft.BIBTEX),
    ("x.sty", b"\\ProvidesPackage{x}\n", ft.TEXAUX),
    ("main.bbl", b"\\begin{thebibliography}{1}\n", ft.TEXAUX),
    ("00README.XXX", b"main.tex toplevelfile\n", ft.README),
    ("paper.pdf", PDF, ft.PDF),
    ("paper.dat", b"\xef\xbb\xbf%PDF-1.5\n", ft.PDF),
    ("note.txt", b"line one\nsee %PDF-1.4 in text\n", ft.TEXT),
    ("fig.ps", b"%!PS-Adobe-3.0\n%%BoundingBox: 0 0 1 1\n", ft.POSTSCRIPT),
    ("fig.eps", b"%!PS-Adobe-3.0 EPSF-3.0\n", ft.POSTSCRIPT),
    ("font.pfa", b"%!PS-AdobeFont-1.0: CMR10\n", ft.PS_FONT),
    ("fig.eps", b"\xc5\xd0\xd3\xc6" + bytes(30), ft.DOS_EPS),
    ("fig.png", png_bytes(), ft.IMAGE),
    ("fig.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", ft.IMAGE),
    ("fig.gif", b"GIF89a\x01\x00\x01\x00", ft.IMAGE),
    ("fig.tif", b"II*\x00\x08\x00\x00\x00", ft.IMAGE),
    ("fig.svg", b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>', ft.IMAGE),
    ("page.html", b"<!DOCTYPE html>\n<html><body>x</body></html>", ft.HTML),
    ("page.txt", b"  <html>\n<head><title>x</title></head>", ft.HTML),
    ("page.htm", b"hello", ft.HTML),
    ("both.txt", b"<svg>\n<html>", ft.HTML),
    ("paper.dvi", b"\xf7\x02\x01\x83\x92\xc0\x1c;", ft.DVI),
    ("a.tar", tar_bytes(), ft.TAR),
    ("a.tgz", tar_bytes("gz"), ft.GZIPPED),
    ("a.tbz", tar_bytes("bz2"), ft.BZIP2),
    ("a.txz", tar_bytes("xz"), ft.XZ),
    ("a.rar", b"Rar!\x1a\x07\x01\x00", ft.RAR),
    ("a.7z", b"7z\xbc\xaf\x27\x1c\x00\x04", ft.SEVENZIP),
    ("a.Z", b"\x1f\x9d\x90", ft.COMPRESSED),
    ("notes", b"just some words\n", ft.TEXT),
    ("data.csv", b"a,b\n1,2\n", ft.TEXT),
    ("empty", b"", ft.TEXT),
    ("blob", bytes(range(256)), ft.BINARY),
]


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    TYPE_CASES,
    ids=[f"{i}-{name}" for i, (name, _, _) in enumerate(TYPE_CASES)],
)
def test_detect_type(name: str, data: bytes, expected: str) -> None:
    assert detect_type(name, data, len(data)) == expected


def test_office_documents_and_jars(tmp_path: Path) -> None:
    docx = zip_file(tmp_path / "a.docx", {"[Content_Types].xml": b"<T/>", "word/document.xml": b""})
    xlsx = zip_file(tmp_path / "a.xlsx", {"[Content_Types].xml": b"<T/>", "xl/workbook.xml": b""})
    pptx = zip_file(tmp_path / "a.bin", {"[Content_Types].xml": b"", "ppt/presentation.xml": b""})
    jar = zip_file(tmp_path / "a.jar", {"META-INF/MANIFEST.MF": b"Manifest-Version: 1.0\n"})
    odt = zip_file(
        tmp_path / "a.odt",
        {"mimetype": b"application/vnd.oasis.opendocument.text", "content.xml": b""},
        first="mimetype",
    )
    ods = zip_file(
        tmp_path / "a.ods",
        {"mimetype": b"application/vnd.oasis.opendocument.spreadsheet", "content.xml": b""},
        first="mimetype",
    )
    plain = zip_file(tmp_path / "a.zip", {"a.txt": b"a"})
    expected = {
        docx: ft.DOCX,
        xlsx: ft.XLSX,
        pptx: ft.PPTX,
        jar: ft.JAR,
        odt: ft.ODT,
        ods: ft.ODF,
        plain: ft.ZIP,
    }
    for path, kind in expected.items():
        data = path.read_bytes()
        assert detect_type(path.name, data, len(data), path) == kind, path
        assert ft.zip_subtype(path, data) == kind
    # ODF is recognised from its first bytes alone.
    assert detect_type("x", odt.read_bytes(), 0) == ft.ODT


def test_unpackable_kind() -> None:
    assert unpackable_kind(tar_bytes(), ft.TAR) == "tar"
    assert unpackable_kind(tar_bytes("gz"), ft.GZIPPED) == "gzip"
    assert unpackable_kind(tar_bytes("bz2"), ft.BZIP2) == "bzip2"
    assert unpackable_kind(tar_bytes("xz"), ft.XZ) == "xz"
    assert unpackable_kind(b"PK\x03\x04", ft.ZIP) == "zip"
    assert unpackable_kind(gzip.compress(b"a,b\n"), ft.GZIPPED) is None
    assert unpackable_kind(bz2.compress(b"a,b\n"), ft.BZIP2) is None
    assert unpackable_kind(lzma.compress(b"a,b\n"), ft.XZ) is None
    assert unpackable_kind(b"PK\x03\x04", ft.DOCX) is None


def test_compressed_tar_reads_one_block_at_most() -> None:
    bomb = gzip.compress(bytes(50 * 1024 * 1024), compresslevel=1)
    assert ft.compressed_tar(bomb[:65536], "gzip") is False
    assert ft.compressed_tar(b"\x1f\x8b\x08\x00garbage" * 10, "gzip") is None


def test_read_zip_directory(tmp_path: Path) -> None:
    path = zip_file(tmp_path / "a.zip", {f"f{i}": b"x" for i in range(7)})
    directory = read_zip_directory(path)
    assert directory is not None and directory.entries == 7 and directory.size > 0
    cut = tmp_path / "cut.zip"
    cut.write_bytes(path.read_bytes()[:-30])
    assert read_zip_directory(cut) is None


def test_zip64_directory(tmp_path: Path) -> None:
    path = tmp_path / "z64.zip"
    with zipfile.ZipFile(path, "w") as zf, zf.open("a", "w", force_zip64=True) as member:
        member.write(b"a")
    directory = read_zip_directory(path)
    assert directory is not None and directory.entries == 1


# The rule as the regular expression it was (too slow to run on every upload: issue #13 §8).
_PLAIN_TEX_REFERENCE = re.compile(
    r"^\s*\\(magnification|bye|nopagenumbers|hsize|vsize|parindent|baselineskip|font\\|"
    r"input\s|def\\|centerline|line\{|settabs)",
    re.MULTILINE,
)
_TEX_PIECES = [
    "\\bye",
    "\\hsize=1in",
    "\\def\\x",
    "\\input a",
    "\\inputa",
    "\\font\\f",
    "\\line{",
    "\\begin{x}",
    "%",
    "x",
    " ",
    "\t",
    "\n",
    "\r\n",
    "\u2003",
    "\x0b",
    "\\",
    "\\\\bye",
]


@given(st.lists(st.sampled_from(_TEX_PIECES), max_size=12))
def test_plain_tex_is_found_as_the_line_start_rule_says(pieces: list[str]) -> None:
    text = "".join(pieces)
    assert ft._plain_tex(text) == bool(_PLAIN_TEX_REFERENCE.search(text))


@given(st.text(alphabet="\\ \t\n\r\u2003abdefhilnoprstuyz{%", max_size=60))
def test_plain_tex_agrees_with_the_rule_on_any_text(text: str) -> None:
    assert ft._plain_tex(text) == bool(_PLAIN_TEX_REFERENCE.search(text))
