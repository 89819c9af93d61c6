"""arXiv's per-file rules on the arXiv targets (issue #13, section 1), each with a case it must
catch and one it must leave alone, through ``process_upload`` with real archives. The rules over
the whole workspace (17, 21, 27, 28) are in test_rules_service.py."""

from __future__ import annotations

import gzip
import hashlib
import io
import struct
import tarfile
from pathlib import Path

import pytest

from cairn.workspaces import _filetypes as ft
from cairn.workspaces._checks import Finding
from cairn.workspaces._limits import DEFAULT_LIMITS, limits_for
from cairn.workspaces._unpack import ProcessedUpload
from tests.archives import tar_gz

from .conftest import Run

ARXIV = limits_for("arxiv")
TEX = b"\\documentclass{article}\n\\begin{document}Hi\\end{document}\n"
PS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nnewpath 0 0 moveto showpage\n%%EOF\n"


def upload(tmp_path: Path, run: Run, files: dict[str, bytes], **options: object) -> ProcessedUpload:
    """``files`` (with a main.tex, so the rest is never a lone file) as a .tar.gz upload."""
    source = tmp_path / "paper.tar.gz"
    source.write_bytes(tar_gz({"main.tex": TEX, **files}))
    options.setdefault("limits", ARXIV)
    return run(source, **options)


def triples(result: ProcessedUpload) -> list[tuple[str, str | None, str]]:
    return [(f.level, f.public_path, f.message) for f in result.findings]


def staged(result: ProcessedUpload) -> dict[str, bytes]:
    return {f.public_path: f.read_bytes() for f in result.files}


def ok_hash(result: ProcessedUpload) -> None:
    """Every staged file's recorded size and hash are those of its bytes (after any repair)."""
    for f in result.files:
        data = f.read_bytes()
        assert (f.size, f.sha256) == (len(data), hashlib.sha256(data).hexdigest()), f.public_path


# --- rules removing or warning by name (1-15) ----------------------------------------------------
NAME_RULES: list[tuple[str, list[tuple[str, str | None, str]], str | None]] = [
    # (member name, findings for it, the path it is kept at, or None when removed)
    ("__MACOSX/._main.tex", [("warn", "__MACOSX", "Removed '__MACOSX' directory.")], None),
    ("MACOSX/notes.txt", [], "MACOSX/notes.txt"),
    (".DS_Store", [("info", ".DS_Store", "Hidden file are not allowed.")], None),
    ("a.DS_Store", [], "a.DS_Store"),
    (
        "processed/fig.png",
        [("warn", "processed", "Detected 'processed' directory. Please check.")],
        "processed/fig.png",
    ),
    ("processed.txt", [], "processed.txt"),
    (
        "main.tex~",
        [
            (
                "warn",
                "main.tex_",
                "File 'main.tex~' may be a backup file. Please inspect and "
                "remove extraneous backup files.",
            ),
            (
                "warn",
                "main.tex_",
                "We only accept file names containing the characters: a-z A-Z "
                "0-9 _ + - . =. Renamed 'main.tex~' to 'main.tex_'",
            ),
        ],
        "main.tex_",
    ),
    (
        "old.tex.bak",
        [
            (
                "warn",
                "old.tex.bak",
                "File 'old.tex.bak' may be a backup file. Please "
                "inspect and remove extraneous backup files.",
            )
        ],
        "old.tex.bak",
    ),
    ("notes.bak.txt", [], "notes.bak.txt"),
    (
        "10-1-1(63).png",
        [
            (
                "warn",
                "10-1-1_63_.png",
                "We only accept file names containing the "
                "characters: a-z A-Z 0-9 _ + - . =. Renamed '10-1-1(63).png' to "
                "'10-1-1_63_.png'",
            )
        ],
        "10-1-1_63_.png",
    ),
    (
        "-x.txt",
        [
            (
                "warn",
                "_x.txt",
                "We do not accept files starting with a hyphen. Renamed '-x.txt' to '_x.txt'",
            )
        ],
        "_x.txt",
    ),
    (
        "espcrc2.sty",
        [
            (
                "info",
                "espcrc2.sty",
                "Found hyperlink-compatible package 'espcrc2.sty'. "
                "Removed it: arXiv uses its own hypertex-compatible version.",
            )
        ],
        None,
    ),
    (
        "espcrc2.tex",
        [("warn", "espcrc2.tex", "Possible submitter error. Unwanted 'espcrc2.tex'")],
        "espcrc2.tex",
    ),
    ("espcrc1.sty", [], "espcrc1.sty"),
    ("uufiles", [("info", "uufiles", "Removed file 'uufiles' [File not allowed].")], None),
    ("sub/core", [("info", "sub/core", "Removed file 'core' [File not allowed].")], None),
    (
        "splread.1st",
        [("info", "splread.1st", "Removed file 'splread.1st' [File not allowed].")],
        None,
    ),
    ("core.txt", [], "core.txt"),
    ("xxx.rsrc", [("info", "xxx.rsrc", "Removed file 'xxx.rsrc' [File not allowed].")], None),
    ("font.300gf", [("info", "font.300gf", "Removed file 'font.300gf' [File not allowed].")], None),
    ("a.desc", [("info", "a.desc", "Removed file 'a.desc' [File not allowed].")], None),
    ("a.descr", [], "a.descr"),
    (
        "revtex4.cls",
        [
            (
                "info",
                "revtex4.cls",
                "WILL REMOVE standard revtex4 style files from this "
                "submission: removed 'revtex4.cls' (arXiv has its own copy).",
            )
        ],
        None,
    ),
    ("revtex4-1.cls", [], "revtex4-1.cls"),
    (
        "diagrams.sty",
        [
            (
                "info",
                "diagrams.sty",
                "Removed file 'diagrams.sty': the diagrams package "
                "stops working after a set date (a time bomb); arXiv uses its own copy.",
            )
        ],
        None,
    ),
    ("mydiagrams.sty", [], "mydiagrams.sty"),
    (
        "aa.dem",
        [
            (
                "info",
                "aa.dem",
                "Removed file 'aa.dem' on the assumption that it is the "
                "example file of the Astronomy and Astrophysics macro package aa.cls.",
            )
        ],
        None,
    ),
    ("aa.demo", [], "aa.demo"),
    (
        "missfont.log",
        [
            (
                "info",
                "missfont.log",
                "Removed file 'missfont.log': it is a log of fonts missing on your machine.",
            )
        ],
        None,
    ),
    (
        "main.synctex.gz",
        [
            (
                "info",
                "main.synctex.gz",
                "Removed file 'main.synctex.gz': SyncTeX files are written by TeX and not needed.",
            )
        ],
        None,
    ),
    (
        "main.synctex",
        [
            (
                "info",
                "main.synctex",
                "Removed file 'main.synctex': SyncTeX files are written by TeX and not needed.",
            )
        ],
        None,
    ),
    ("synctex.txt", [], "synctex.txt"),
    ("Thumbs.db", [], "Thumbs.db"),  # cairn's own junk list is not arXiv's
]


@pytest.mark.parametrize(("name", "expected", "kept"), NAME_RULES, ids=[r[0] for r in NAME_RULES])
def test_name_rules(
    tmp_path: Path,
    run: Run,
    name: str,
    expected: list[tuple[str, str | None, str]],
    kept: str | None,
) -> None:
    result = upload(tmp_path, run, {name: b"data\n"})
    assert triples(result) == expected
    if kept is None:
        assert set(staged(result)) == {"main.tex"}
    else:
        assert set(staged(result)) == {"main.tex", kept}


def test_empty_file_is_info_on_arxiv_and_a_warning_elsewhere(tmp_path: Path, run: Run) -> None:
    arxiv = upload(tmp_path, run, {"empty.txt": b"", "full.txt": b"x\n"})
    assert triples(arxiv) == [("info", "empty.txt", "Removed file 'empty.txt' [file is empty].")]
    assert set(staged(arxiv)) == {"main.tex", "full.txt"}
    general = upload(tmp_path, run, {"empty.txt": b""}, limits=DEFAULT_LIMITS)
    assert [f.level for f in general.findings] == ["warn"]


def test_the_general_target_keeps_cairns_own_rules(tmp_path: Path, run: Run) -> None:
    result = upload(
        tmp_path, run, {"main.tex~": b"old\n", "Thumbs.db": b"x"}, limits=DEFAULT_LIMITS
    )
    assert set(staged(result)) == {"main.tex"}
    assert [f.message for f in result.findings] == [
        "Removed file 'main.tex~' [File not allowed].",
        "Removed file 'Thumbs.db' [File not allowed].",
    ]


# --- rules by type (20, 22, 25, 26, 29) ----------------------------------------------------------
OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(range(256)) * 4
BMP = b"BM" + struct.pack("<I", 60) + bytes(54)


def test_doc_that_is_no_known_type_is_fatal(tmp_path: Path, run: Run) -> None:
    result = upload(tmp_path, run, {"paper.doc": OLE})
    assert [(f.level, f.public_path) for f in result.findings] == [("fatal", "paper.doc")]
    assert result.findings[0].message.startswith(
        "Your submission has been rejected because it contains one or more files with "
        "extension .doc"
    )
    assert not upload(tmp_path, run, {"notes.doc": TEX}).fatal  # LaTeX named .doc: a type
    assert not upload(tmp_path, run, {"paper.doc": OLE}, limits=DEFAULT_LIMITS).fatal


def test_rar_inside_an_archive_is_fatal(tmp_path: Path, run: Run) -> None:
    result = upload(tmp_path, run, {"old.rar": b"Rar!\x1a\x07\x00" + bytes(64)})
    assert triples(result) == [
        ("fatal", "old.rar", "We do not support 'rar' files. Please use 'zip' or 'tar' instead.")
    ]
    assert not upload(tmp_path, run, {"old.rar": b"Rar!"}).fatal  # too short to be a RAR


@pytest.mark.parametrize(
    ("name", "data", "renamed"),
    [
        ("figure", PS, "figure.ps"),
        ("figure.txt", PS, "figure.ps"),
        ("fig.eps", PS, None),  # EPS is PostScript: \includegraphics{fig.eps} keeps working
        ("fig.ps", PS, None),
        ("scan.dat", b"%PDF-1.4\n%%EOF\n", "scan.pdf"),
        ("scan.PDF", b"%PDF-1.4\n%%EOF\n", None),
        ("page.txt", b"<!DOCTYPE html>\n<html><body>x</body></html>\n", "page.html"),
        ("page.htm", b"<html><body>x</body></html>\n", None),
        ("fig.png", b"\x89PNG\r\n\x1a\n" + bytes(16), None),
    ],
)
def test_extensions_fixed_to_the_detected_type(
    tmp_path: Path, run: Run, name: str, data: bytes, renamed: str | None
) -> None:
    result = upload(tmp_path, run, {name: data})
    renames = [f for f in result.findings if f.message.startswith("Renamed")]
    if renamed is None:
        assert renames == [] and name in staged(result)
    else:
        assert renames == [Finding("warn", renamed, f"Renamed '{name}' to '{renamed}'.")]
        assert staged(result)[renamed] == data and name not in staged(result)


def test_an_extension_fix_never_overwrites_a_file(tmp_path: Path, run: Run) -> None:
    result = upload(tmp_path, run, {"fig.pdf": b"%PDF-1.4\nA\n", "fig.dat": b"%PDF-1.4\nB\n"})
    files = staged(result)
    assert files["fig.pdf"] == b"%PDF-1.4\nA\n" and files["fig_1.pdf"] == b"%PDF-1.4\nB\n"
    assert ("warn", "fig_1.pdf", "Renamed 'fig.dat' to 'fig_1.pdf'.") in triples(result)


@pytest.mark.parametrize("name", ["fig.bmp", "scan.tif", "scan.TIFF", "a.pcx", "a.wmf", "a.pct"])
def test_unacceptable_image_formats_are_warned(tmp_path: Path, run: Run, name: str) -> None:
    result = upload(tmp_path, run, {name: BMP})
    (finding,) = result.findings
    assert finding.level == "warn" and finding.public_path == name
    assert finding.message.startswith(f"Image '{name}' is in a format arXiv does not accept")
    assert upload(tmp_path, run, {"fig.png": b"\x89PNG\r\n\x1a\n" + bytes(8)}).findings == []


def test_a_gzip_of_one_file_is_fatal_on_arxiv_only(tmp_path: Path, run: Run) -> None:
    source = tmp_path / "upload4.gz"
    source.write_bytes(gzip.compress(b"just some text\n"))
    arxiv = run(source, limits=ARXIV)
    assert triples(arxiv) == [
        ("fatal", "upload4.gz", "Unable to read tar 'upload4': not a tar file")
    ]
    general = run(source)
    assert not general.fatal and [f.public_path for f in general.files] == ["upload4"]
    # A gzip inside an upload is fatal too (a gzipped tar inside is unpacked: below).
    nested = upload(tmp_path, run, {"data.csv.gz": gzip.compress(b"a,b\n")})
    assert triples(nested) == [
        ("fatal", "data.csv.gz", "Unable to read tar 'data.csv': not a tar file")
    ]
    assert not upload(
        tmp_path, run, {"data.csv.gz": gzip.compress(b"a,b\n")}, limits=DEFAULT_LIMITS
    ).fatal


def test_a_gzipped_tar_inside_is_unpacked(tmp_path: Path, run: Run) -> None:
    result = upload(tmp_path, run, {"figs.tar.gz": tar_gz({"a.png": b"\x89PNG\r\n\x1a\n"})})
    assert not result.fatal and "a.png" in staged(result)


# --- rule 23: line endings and file ends ---------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "data", "fixed", "messages"),
    [
        ("a.tex", b"x\r\ny\r\n", b"x\ny\n", ["info:Line endings"]),
        ("a.tex", b"x\ry\r", b"x\ny\n", ["info:Line endings"]),
        ("a.tex", b"x\ny\n\x1a", b"x\ny\n", ["warn:Trailing ^Z stripped from a.tex."]),
        ("a.tex", b"x\ny\n\x04", b"x\ny\n", ["warn:Trailing ^D stripped from a.tex."]),
        ("a.tex", b"x\ny\n\xff", b"x\ny\n", ["warn:Trailing 0xFF stripped from a.tex."]),
        (
            "a.tex",
            b"x\r\ny",
            b"x\ny",
            ["info:Line endings", "warn:File 'a.tex' does not end with newline (\\n), TRUNCATED?"],
        ),
        (
            "a.tex",
            b"x\ny",
            b"x\ny",
            ["warn:File 'a.tex' does not end with newline (\\n), TRUNCATED?"],
        ),
        ("a.html", b"<html>\r\n</html>\r\n", b"<html>\n</html>\n", ["info:Line endings"]),
        ("notes.txt", b"a\r\nb\r\n", b"a\nb\n", ["info:Line endings"]),  # arXiv's PC type
        ("notes.txt", b"a\nb", b"a\nb", []),  # plain text without CR: not arXiv's PC or MAC
        ("a.tex", b"x\ny\n", b"x\ny\n", []),
        ("data.bin", b"\x00\r\n\x1a", b"\x00\r\n\x1a", []),  # binary: never touched
    ],
)
def test_line_endings_and_file_ends(
    tmp_path: Path, run: Run, name: str, data: bytes, fixed: bytes, messages: list[str]
) -> None:
    # A real TeX file is longer: a control byte in a few bytes of text reads as binary.
    prefix = b"\\input{x}\n%" + b" comment" * 40 + b"\n" if name.endswith(".tex") else b""
    body, want = prefix + data, prefix + fixed
    result = upload(tmp_path, run, {name: body})
    assert staged(result)[name] == want
    found = [f"{f.level}:{f.message}" for f in result.findings]
    assert len(found) == len(messages) and all(
        f.startswith(m) for f, m in zip(found, messages, strict=True)
    ), found
    ok_hash(result)


def test_line_endings_across_chunk_boundaries(tmp_path: Path, run: Run) -> None:
    # More than one read chunk (1 MiB), with a CR LF split at the boundary.
    line = b"\\relax " + b"x" * 1017 + b"\r\n"  # 1026 bytes
    body = b"\\input{x}\r\n" + line * 2100 + b"\x1a\x1a"
    result = upload(tmp_path, run, {"big.tex": body})
    out = staged(result)["big.tex"]
    assert b"\r" not in out and out == body.replace(b"\r\n", b"\n")[:-2]
    ok_hash(result)


# --- rule 24: PostScript clean-up ----------------------------------------------------------------
def test_preview_sections_are_removed_with_lines_and_sizes(tmp_path: Path, run: Run) -> None:
    head = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n"
    preview = b"%%BeginPreview: 1 1 1 1\n% FF\n%%EndPreview\n"
    photoshop = b"%BeginPhotoshop: 4\n% 00\n% 11\n%EndPhotoshop\n"
    tail = b"newpath showpage\n%%EOF\n"
    data = head + preview + b"gsave\n" + photoshop + tail
    result = upload(tmp_path, run, {"fig.eps": data})
    assert staged(result)["fig.eps"] == head + b"gsave\n" + tail
    after_preview = len(data) - len(preview)
    assert triples(result) == [
        (
            "warn",
            "fig.eps",
            f"Unnecessary Preview removed from 'fig.eps' from line 3 to line 5, "
            f"reduced from {len(data)} bytes to {after_preview} bytes (see http://arxiv.org/help/sizes)",
        ),
        (
            "warn",
            "fig.eps",
            f"Unnecessary Photoshop removed from 'fig.eps' from line 4 to line 7, "
            f"reduced from {after_preview} bytes to {after_preview - len(photoshop)} bytes "
            "(see http://arxiv.org/help/sizes)",
        ),
    ]
    ok_hash(result)


def test_thumbnail_and_unclosed_sections(tmp_path: Path, run: Run) -> None:
    thumb = b"%AI7_Thumbnail: 1 1 8\n%FF\n%AI7_EndThumbnail\n"
    result = upload(tmp_path, run, {"a.eps": PS + thumb, "b.eps": PS + b"%%BeginPreview\n% x\n"})
    assert staged(result)["a.eps"] == PS
    assert staged(result)["b.eps"] == PS + b"%%BeginPreview\n% x\n"  # no end: left as it is
    assert [f.public_path for f in result.findings] == ["a.eps"]


def test_dos_eps_keeps_its_postscript_section(tmp_path: Path, run: Run) -> None:
    tiff = b"II*\x00" + bytes(200)
    header = struct.pack(
        "<4s6LH", b"\xc5\xd0\xd3\xc6", 30, len(PS), 0, 0, 30 + len(PS), len(tiff), 0xFFFF
    )
    data = header + PS + tiff
    result = upload(tmp_path, run, {"fig.eps": data})
    assert staged(result)["fig.eps"] == PS
    assert triples(result) == [
        (
            "warn",
            "fig.eps",
            f"Unnecessary TIFF preview removed from 'fig.eps', reduced from "
            f"{len(data)} bytes to {len(PS)} bytes (see http://arxiv.org/help/sizes)",
        )
    ]
    assert next(f for f in result.files if f.public_path == "fig.eps").file_type == ft.DOS_EPS
    ok_hash(result)
    broken = header[:4] + struct.pack("<L", 10_000) + header[8:] + PS
    kept = upload(tmp_path, run, {"bad.eps": broken})
    assert staged(kept)["bad.eps"] == broken
    assert [f.level for f in kept.findings] == ["warn"]


def test_plain_postscript_is_untouched(tmp_path: Path, run: Run) -> None:
    result = upload(tmp_path, run, {"fig.eps": PS})
    assert result.findings == [] and staged(result)["fig.eps"] == PS


def test_ancillary_files_are_left_alone(tmp_path: Path, run: Run) -> None:
    source = tmp_path / "anc.tar"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in {"data.txt": b"a\r\nb", "old.doc": OLE, "x.dat": PS}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    source.write_bytes(buffer.getvalue())
    result = run(source, limits=ARXIV, ancillary=True)
    assert result.findings == []
    assert staged(result) == {"anc/data.txt": b"a\r\nb", "anc/old.doc": OLE, "anc/x.dat": PS}
