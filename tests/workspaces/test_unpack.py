"""process_upload against the hostile corpus and the limits (issue 3, "Bad input")."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import json
import lzma
import os
import tarfile
import tempfile
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cairn.workspaces import _filetypes as ft
from cairn.workspaces._budget import Budget
from cairn.workspaces._checks import SAFE_PATH, Finding, case_duplicates
from cairn.workspaces._findings import Abort, FindingLog
from cairn.workspaces._limits import DEFAULT_LIMITS, PAPER_TYPES, Limits, limits_for
from cairn.workspaces._pipeline import Upload
from cairn.workspaces._staging import SMALL_MAX, StagingFolder
from cairn.workspaces._streams import BUFFER
from cairn.workspaces._unpack import ProcessedUpload, process_upload

from .conftest import Corpus, Run
from .hostile import CORPUS, LATEX_MAIN, OUTCOME, PDF, build_compressed_tar_bomb, png_bytes

MiB = 1024 * 1024


# --- helpers -----------------------------------------------------------------------------------
def find(result: ProcessedUpload, level: str, text: str) -> list[Finding]:
    return [f for f in result.findings if f.level == level and text in f.message]


def one(result: ProcessedUpload, level: str, text: str) -> Finding:
    found = find(result, level, text)
    assert len(found) == 1, (level, text, result.findings)
    return found[0]


def worst(result: ProcessedUpload) -> str:
    levels = {f.level for f in result.findings}
    return "fatal" if "fatal" in levels else "warn" if "warn" in levels else "clean"


def paths(result: ProcessedUpload) -> list[str]:
    return [f.public_path for f in result.files]


def types(result: ProcessedUpload) -> dict[str, str]:
    return {f.public_path: f.file_type for f in result.files}


def make_tar(path: Path, members: list[tuple[str, bytes]], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode, format=tarfile.GNU_FORMAT) as tf:  # type: ignore[call-overload]
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def make_zip(path: Path, members: list[tuple[str, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return path


# --- the whole corpus --------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_outcome_and_invariants(name: str, corpus: Corpus, run: Run) -> None:
    result = run(corpus(name))
    assert worst(result) == OUTCOME[name], result.findings
    assert result.fatal == (OUTCOME[name] == "fatal")
    assert paths(result) == sorted(paths(result))
    on_disk = [f for f in result.files if f.local_path is not None]
    roots = {str(f.local_path)[: -len(f.public_path) - 1] for f in on_disk}
    assert len(roots) <= 1 and all(root.endswith("/staging") for root in roots)
    for staged in result.files:
        assert SAFE_PATH.fullmatch(staged.public_path)
        assert not staged.public_path.startswith("/")
        assert ".." not in staged.public_path.split("/")
        assert all(len(part) <= 255 for part in staged.public_path.split("/"))
        # Small files are held in memory or the spool (but zip documents, which are read as
        # files); large ones always have a file of their own.
        if staged.size > SMALL_MAX or staged.file_type in (ft.DOCX, ft.ZIP):
            assert staged.local_path is not None
        if staged.local_path is not None:
            assert staged.local_path.as_posix().endswith("/" + staged.public_path)
        data = staged.read_bytes()
        assert len(data) == staged.size > 0
        assert hashlib.sha256(data).hexdigest() == staged.sha256
    assert result.total_size == sum(f.size for f in result.files)
    assert result.compressed_size == corpus(name).stat().st_size
    for finding in result.findings:
        assert finding.level in ("warn", "fatal", "info")
        # Messages and paths go to the database and JSON: printable, valid UTF-8.
        assert finding.message.isprintable()
        finding.message.encode("utf-8")
        json.dumps([finding.level, finding.public_path, finding.message])
        if finding.public_path is not None:
            assert finding.public_path.isprintable() and finding.public_path.isascii()


def test_nothing_lands_in_known_escape_targets(corpus: Corpus, run: Run) -> None:
    for name in ("zip_traversal", "absolute_names", "drive_letters", "symlink_outside"):
        run(corpus(name))
    assert not Path("/tmp/cairn-evil-abs.txt").exists()
    assert not Path("/tmp/cairn-evil-link.txt").exists()
    assert not Path("/x.txt").exists()


# --- one test per hostile input ----------------------------------------------------------------
def test_empty_file(corpus: Corpus, run: Run) -> None:
    result = run(corpus("empty_file"))
    assert one(result, "warn", "Removed file 'empty.tex' [file is empty].").public_path == (
        "empty.tex"
    )
    assert result.files == [] and result.removed == ["empty.tex"]


def test_not_an_archive_with_archive_extension(corpus: Corpus, run: Run) -> None:
    result = run(corpus("not_an_archive"))
    one(result, "fatal", "Unable to read tar 'paper.tar.gz': not a tar file")
    assert result.files == []


def test_text_named_zip(corpus: Corpus, run: Run) -> None:
    one(run(corpus("fake_zip")), "fatal", "Unable to read zip 'figures.zip': not a zip file")


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("x.gz", b"plain"),
        ("x.tgz", b"plain text"),
        ("x.tar.bz2", b"plain text"),
        ("x.tar", b"plain text"),
    ],
)
def test_other_fake_archives(tmp_path: Path, run: Run, name: str, data: bytes) -> None:
    source = tmp_path / name
    source.write_bytes(data)
    result = run(source)
    assert result.fatal
    assert find(result, "fatal", "Unable to read")


def test_truncated_gzip(corpus: Corpus, run: Run) -> None:
    result = run(corpus("truncated_gzip"))
    finding = one(result, "fatal", "There were problems unpacking 'truncated.tar.gz'.")
    assert "Please try again and confirm your files. Error: " in finding.message
    assert "end-of-stream" in finding.message


def test_truncated_zip(tmp_path: Path, run: Run) -> None:
    full = make_zip(tmp_path / "full.zip", [("a.txt", os.urandom(20_000))])
    cut = tmp_path / "cut.zip"
    cut.write_bytes(full.read_bytes()[:10_000])
    one(run(cut), "fatal", "There were problems unpacking 'cut.zip'")


def test_corrupt_tar_header_in_the_middle(tmp_path: Path, run: Run) -> None:
    data = bytearray(
        make_tar(tmp_path / "a.tar", [("a.txt", b"a\n"), ("b.txt", b"b\n")], "w").read_bytes()
    )
    data[1024 + 148 : 1024 + 156] = b"9999999\0"  # wrong checksum of the second header
    source = tmp_path / "bad.tar"
    source.write_bytes(bytes(data))
    result = run(source)
    assert "invalid tar header" in one(result, "fatal", "There were problems unpacking").message


def test_zip_traversal(corpus: Corpus, run: Run) -> None:
    result = run(corpus("zip_traversal"))
    refused = find(result, "fatal", "parent directory ('..') components are not allowed")
    assert [f.message.split("'")[1] for f in refused] == [
        "../evil.txt",
        "a/../../evil2.txt",
        "..\\evil3.txt",
    ]
    assert all(f.public_path is None for f in refused)
    assert paths(result) == ["ok.txt"]


def test_absolute_names(corpus: Corpus, run: Run) -> None:
    result = run(corpus("absolute_names"))
    one(result, "fatal", "Refused '/tmp/cairn-evil-abs.txt': absolute paths are not allowed.")
    one(result, "fatal", "Refused '//x.txt': absolute paths are not allowed.")
    assert paths(result) == ["ok.txt"]


def test_drive_letters(corpus: Corpus, run: Run) -> None:
    """A drive prefix is stripped to the last component, as arXiv does (issue #13, section 2);
    a UNC path stays refused: it names another machine."""
    result = run(corpus("drive_letters"))
    one(result, "warn", "Renamed 'C:\\Windows\\evil.txt' to 'evil.txt'.")
    one(result, "warn", "Renamed 'd:/evil.txt' to 'evil.txt'.")
    one(result, "fatal", "Refused '\\\\server\\share\\evil.txt': absolute paths are not allowed.")
    assert not any("drive letters" in f.message for f in result.findings)


def test_symlinks_pointing_outside(corpus: Corpus, run: Run, tmp_path: Path) -> None:
    result = run(corpus("symlink_outside"))
    one(result, "warn", "Symbolic links are not allowed. Removing 'passwd'")
    one(result, "warn", "Symbolic links are not allowed. Removing 'outside'")
    assert result.removed == ["passwd", "outside"]
    # The file "behind" the link lands in a plain folder inside staging.
    staged = {f.public_path: f for f in result.files}
    assert set(staged) == {"ok.txt", "outside/cairn-evil-link.txt"}
    [folder] = tmp_path.glob("box*/staging/outside")
    assert folder.is_dir() and not folder.is_symlink()


def test_zip_symlink(corpus: Corpus, run: Run) -> None:
    result = run(corpus("zip_symlink"))
    one(result, "warn", "Symbolic links are not allowed. Removing 'passwd'")
    assert paths(result) == ["ok.txt"]


def test_hard_links(corpus: Corpus, run: Run) -> None:
    result = run(corpus("hard_link"))
    one(result, "warn", "Hard links are not allowed. Removing 'shadow'")
    one(result, "warn", "Hard links are not allowed. Removing 'ok-again.txt'")
    assert paths(result) == ["ok.txt"]


def test_device_files(corpus: Corpus, run: Run) -> None:
    result = run(corpus("device_file"))
    one(result, "warn", "Character devices are not allowed. Removing 'null'")
    one(result, "warn", "Block devices are not allowed. Removing 'sda'")
    one(result, "warn", "FIFO devices are not allowed. Removing 'pipe'")
    assert paths(result) == ["ok.txt"]


def test_ten_thousand_tiny_files(corpus: Corpus, run: Run) -> None:
    # How long this takes against tar: bench/unpack_bombs.py.
    result = run(corpus("tiny_files"))
    assert len(result.files) == 10_000
    assert result.findings == []
    assert result.files[0].public_path == "d00/f00000.txt"
    assert result.files[0].file_type == ft.TEXT


def test_file_count_limit(corpus: Corpus, run: Run) -> None:
    limits = replace(DEFAULT_LIMITS, max_files=5_000)
    result = run(corpus("tiny_files"), limits=limits)
    one(result, "fatal", "Upload exceeds the limit of 5000 files for archive 'default'.")
    assert len(result.files) == 5_000


def test_file_count_limit_counts_existing_files(corpus: Corpus, run: Run) -> None:
    result = run(corpus("tiny_files"), existing_count=15_000)
    one(result, "fatal", "Upload exceeds the limit of 20000 files")


# --- bombs -------------------------------------------------------------------------------------
def run_budgeted(
    source: Path, staging: Path, limits: Limits = DEFAULT_LIMITS
) -> tuple[str, Budget]:
    """Run the member pipeline with a budget the test can read: what stopped it, and the budget.

    The budget counts every byte decompressed and written, so a test can tell that a bomb was
    stopped early and pulled in bounded pieces (the seconds and peak RSS these bound are
    measured by bench/unpack_bombs.py, against tar, gzip and unzip).
    """
    staging.mkdir()
    budget = Budget(limits, source.stat().st_size, existing_total=0, existing_count=0)
    log = FindingLog()
    upload = Upload(StagingFolder(staging, budget, log), budget, log, ancillary=False)
    with pytest.raises(Abort) as caught:
        upload.run(source, source.name)
    return caught.value.finding.message, budget


@pytest.mark.parametrize(
    ("name", "label", "expanded"),
    [
        ("flat_zip_bomb", "flat-bomb.zip", 1024 * MiB),
        ("zip_bomb", "layer-0.zip", 10 * 1024 * MiB),
        ("gzip_bomb", "zeros.csv.gz", 1024 * MiB),
        ("tar_bomb", "tar-bomb.tar.gz", 1024 * MiB),
        ("hidden_bomb", "hidden-bomb.tar.gz", 1024 * MiB),
    ],
)
def test_bombs_stop_right_after_the_grace(
    name: str, label: str, expanded: int, corpus: Corpus, run: Run, tmp_path: Path
) -> None:
    source = corpus(name)
    assert source.stat().st_size < 2 * MiB
    result = run(source)
    finding = one(result, "fatal", "times its compressed size (possible archive bomb)")
    assert finding.message == (
        f"Archive '{label}' expands more than 200 times its compressed size "
        "(possible archive bomb); unpacking stopped."
    )
    assert result.total_size < 20 * MiB
    assert all(f.public_path != "zeros.bin" for f in result.files)
    # Stopped right after the 16 MiB grace: what was decompressed (written or skipped) and
    # written stays near it, far below what the bomb holds.
    message, budget = run_budgeted(source, tmp_path / "staging")
    assert message == finding.message
    grace = DEFAULT_LIMITS.ratio_grace_bytes
    assert grace < max(budget.produced_total, budget.expanded_total) < 2 * grace < expanded


def test_bomb_under_a_lower_grace_stops_sooner(corpus: Corpus, run: Run) -> None:
    limits = replace(DEFAULT_LIMITS, ratio_grace_bytes=MiB)
    result = run(corpus("flat_zip_bomb"), limits=limits)
    one(result, "fatal", "possible archive bomb")


def test_high_ratio_below_the_grace_is_fine(tmp_path: Path, run: Run) -> None:
    source = make_tar(tmp_path / "sparse.tar.gz", [("zeros.dat", bytes(8 * MiB))])
    assert source.stat().st_size < 100_000  # ratio > 800
    result = run(source)
    assert result.findings == [] and result.total_size == 8 * MiB


def test_per_file_size_limit(tmp_path: Path, run: Run) -> None:
    limits = replace(DEFAULT_LIMITS, max_file_bytes=1000)
    members = [("small.txt", b"x" * 10), ("big.bin", os.urandom(5000))]
    result = run(make_tar(tmp_path / "big.tar", members, "w"), limits=limits)
    message = (
        "File 'big.bin' is larger than the limit of 1000 bytes per file for archive 'default'."
    )
    assert one(result, "fatal", message).public_path == "big.bin"
    assert paths(result) == ["small.txt"]  # the partial big.bin was removed


def test_total_size_limit_counts_existing_bytes(tmp_path: Path, run: Run) -> None:
    limits = replace(DEFAULT_LIMITS, max_total_bytes=10_000)
    source = make_tar(tmp_path / "t.tar.gz", [("a.bin", os.urandom(3000))])
    assert not run(source, limits=limits).fatal
    result = run(source, limits=limits, existing_total=8_000)
    one(result, "fatal", "Upload exceeds the limit of 9.77 KiB in total for archive 'default'.")


# --- nesting -----------------------------------------------------------------------------------
def test_nested_20_levels_stops_at_max_depth(corpus: Corpus, run: Run) -> None:
    result = run(corpus("nested_20"))
    finding = one(result, "fatal", "is nested more than 5 levels deep; not unpacked.")
    assert finding.public_path == "nested-14.tar.gz"
    assert len(find(result, "info", "Unpacked archive")) == 4


def test_nested_20_levels_within_a_higher_limit(corpus: Corpus, run: Run) -> None:
    result = run(corpus("nested_20"), limits=replace(DEFAULT_LIMITS, max_depth=20))
    assert not result.fatal
    assert paths(result) == [f"level-{i:02d}.txt" for i in range(20)]


def test_nested_archives_unpack_in_place(tmp_path: Path, run: Run) -> None:
    inner_zip = make_zip(tmp_path / "figs.zip", [("a.png", png_bytes()), ("b.png", png_bytes(1))])
    inner_tar = make_tar(tmp_path / "data.tar.xz", [("t.csv", b"a,b\n")], "w:xz")
    source = make_tar(
        tmp_path / "paper.tar.bz2",
        [
            ("main.tex", LATEX_MAIN),
            ("figs/figs.zip", inner_zip.read_bytes()),
            ("data/data.tar.xz", inner_tar.read_bytes()),
            ("data/keep.csv.gz", gzip.compress(b"x,y\n")),
        ],
        "w:bz2",
    )
    result = run(source)
    assert types(result) == {
        "data/keep.csv.gz": ft.GZIPPED,  # a compressed single file is data, kept as it is
        "data/t.csv": ft.TEXT,
        "figs/a.png": ft.IMAGE,
        "figs/b.png": ft.IMAGE,
        "main.tex": ft.LATEX2E,
    }
    one(result, "info", "Unpacked archive 'figs/figs.zip'.")
    one(result, "info", "Unpacked archive 'data/data.tar.xz'.")
    assert worst(result) == "clean"


def test_docx_is_a_document_not_an_archive(corpus: Corpus, run: Run) -> None:
    result = run(corpus("docx"))
    assert types(result) == {"paper.docx": ft.DOCX}
    assert result.source_format == "invalid"


def test_docx_inside_an_archive_is_kept(tmp_path: Path, run: Run, corpus: Corpus) -> None:
    source = make_tar(
        tmp_path / "a.tar.gz", [("x/paper.docx", corpus("docx").read_bytes()), ("y.txt", b"y\n")]
    )
    assert types(run(source)) == {"x/paper.docx": ft.DOCX, "y.txt": ft.TEXT}


# --- names -------------------------------------------------------------------------------------
def test_non_utf8_and_odd_names(corpus: Corpus, run: Run) -> None:
    result = run(corpus("non_utf8_names"))
    legal = "We only accept file names containing the characters: a-z A-Z 0-9 _ + - . =. "
    one(result, "warn", legal + "Renamed 'caf\\xe9.tex' to 'cafe.tex'")
    one(result, "warn", legal + "Renamed 'new\\x0aline.txt' to 'new_line.txt'")
    one(result, "warn", legal + "Renamed 'r\u00e9sum\u00e9 final.txt' to 'resume_final.txt'")
    one(result, "warn", legal + "Renamed 'evil\\u202etxt.exe' to 'evil_txt.exe'")
    one(result, "warn", "We do not accept files starting with a hyphen. Renamed '-rf' to '_rf'")
    one(result, "warn", "Renamed '\u2025' to '__'")
    assert set(paths(result)) == {
        "cafe.tex",
        "y_.txt",
        "new_line.txt",
        "resume_final.txt",
        "evil_txt.exe",
        "_rf",
        "__",
    }


def test_cp437_zip_name(tmp_path: Path, run: Run) -> None:
    data = make_zip(tmp_path / "x.zip", [("cafX.tex", b"x\n")]).read_bytes()
    source = tmp_path / "legacy.zip"
    source.write_bytes(data.replace(b"cafX.tex", b"caf\x82.tex"))  # cp437 0x82 is an e-acute
    assert paths(run(source)) == ["cafe.tex"]


def test_long_names(corpus: Corpus, run: Run) -> None:
    result = run(corpus("long_names"))
    renamed = one(result, "warn", "File name is longer than 255 bytes. Renamed 'aaaa")
    assert renamed.public_path is not None
    assert len(renamed.public_path) == 255 and renamed.public_path.endswith(".tex")
    assert renamed.public_path in paths(result)
    assert any(p.endswith("/leaf.txt") for p in paths(result))


def test_too_long_path(corpus: Corpus, run: Run) -> None:
    one(run(corpus("too_long_path")), "fatal", "the path is longer than 1024 bytes.")


def test_case_duplicates_are_kept_for_the_workspace_check(corpus: Corpus, run: Run) -> None:
    result = run(corpus("case_duplicates"))
    # The service runs case_duplicates over the merged workspace; warning here too would
    # report every pair twice.
    assert find(result, "warn", "differ only in case") == []
    assert paths(result) == ["FIGURE.PNG", "Figure.png", "figure.png", "other.txt"]
    warned = case_duplicates(paths(result))
    assert [f.public_path for f in warned] == ["Figure.png", "figure.png"]
    assert warned[0].message == (
        "Files 'FIGURE.PNG' and 'Figure.png' differ only in case; they would overwrite each "
        "other on case-insensitive systems."
    )


def test_hidden_files_and_junk(corpus: Corpus, run: Run) -> None:
    result = run(corpus("hidden_junk"))
    assert [(f.level, f.public_path, f.message) for f in result.findings] == [
        ("warn", ".DS_Store", "Hidden file are not allowed."),
        ("warn", "__MACOSX", "Removed '__MACOSX' directory."),
        ("warn", "Thumbs.db", "Removed file 'Thumbs.db' [File not allowed]."),
        ("warn", "desktop.ini", "Removed file 'desktop.ini' [File not allowed]."),
        ("warn", "main.tex_", "Removed file 'main.tex~' [File not allowed]."),
        ("warn", "_main.tex_", "Removed file '#main.tex#' [File not allowed]."),
        ("warn", ".main.tex.swp", "Hidden file are not allowed."),
        ("warn", ".git", "Hidden file are not allowed."),
    ]
    assert result.removed == [
        ".DS_Store",
        "__MACOSX",
        "Thumbs.db",
        "desktop.ini",
        "main.tex_",
        "_main.tex_",
        ".main.tex.swp",
        ".git",
    ]
    assert paths(result) == ["main.tex"]


def test_same_name_twice_keeps_the_last(tmp_path: Path, run: Run) -> None:
    source = make_tar(tmp_path / "a.tar", [("a.txt", b"first\n"), ("a.txt", b"second\n")], "w")
    result = run(source)
    one(result, "warn", "File 'a.txt' appears more than once; the last copy was kept.")
    assert result.files[0].read_bytes() == b"second\n"


def test_names_that_sanitize_alike_are_both_kept(tmp_path: Path, run: Run) -> None:
    source = make_zip(tmp_path / "a.zip", [("a_b.txt", b"1\n"), ("a b.txt", b"2\n")])
    result = run(source)
    one(result, "warn", "Renamed 'a b.txt' to 'a_b_1.txt' [the name 'a_b.txt' is already used].")
    assert {f.public_path: f.read_bytes() for f in result.files} == {
        "a_b.txt": b"1\n",
        "a_b_1.txt": b"2\n",
    }


def test_file_in_the_way_of_a_folder(tmp_path: Path, run: Run) -> None:
    source = make_tar(tmp_path / "a.tar", [("x", b"file\n"), ("x/y.txt", b"y\n")], "w")
    one(run(source), "fatal", "Refused 'x/y.txt': a file named 'x' is in the way of its folder.")


def test_folder_in_the_way_of_a_file(tmp_path: Path, run: Run) -> None:
    source = make_tar(tmp_path / "a.tar", [("x/y.txt", b"y\n"), ("x", b"file\n")], "w")
    one(run(source), "fatal", "Refused 'x': a folder named 'x' exists.")


def test_folder_names_are_sanitized_once(tmp_path: Path, run: Run) -> None:
    source = make_zip(
        tmp_path / "a.zip", [("my dir/a.txt", b"a\n"), ("my dir/b.txt", b"b\n"), ("c.txt", b"c\n")]
    )
    result = run(source)
    one(result, "warn", "Renamed 'my dir' to 'my_dir'")
    assert paths(result) == ["c.txt", "my_dir/a.txt", "my_dir/b.txt"]


def test_backslash_separators(tmp_path: Path, run: Run) -> None:
    source = make_zip(tmp_path / "win.zip", [("sub\\a.txt", b"a\n"), ("b.txt", b"b\n")])
    result = run(source)
    one(result, "warn", "Backslashes in names were taken as folder separators: 'sub\\a.txt'.")
    assert paths(result) == ["b.txt", "sub/a.txt"]


def test_zip_members_without_a_name(corpus: Corpus, run: Run) -> None:
    # zipfile's ZipInfo.is_dir() indexes the name: an empty one (or one cut at a NUL) was a 500.
    result = run(corpus("zip_nameless"))
    assert [(f.level, f.public_path, f.message) for f in result.findings] == [
        ("fatal", None, "Refused member 2 of 'nameless.zip': the name is empty."),
        ("fatal", None, "Refused member 3 of 'nameless.zip': the name is empty."),
    ]
    assert paths(result) == ["ok.txt"]


def test_zip_names_of_only_dots_and_slashes(corpus: Corpus, run: Run) -> None:
    result = run(corpus("zip_dot_names"))
    # Names ending in "/" are folders in a zip, whatever their mode says: nothing to write.
    assert [f.message for f in result.findings] == [
        "Refused '.': the name is empty.",
        "Refused './.': the name is empty.",
        "Refused '..': parent directory ('..') components are not allowed.",
        "Refused 'C:': Windows drive letters are not allowed.",
        "Refused 'C:\\': Windows drive letters are not allowed.",
    ]
    assert all(f.level == "fatal" for f in result.findings)
    assert paths(result) == ["ok.txt"]


def test_tar_names_that_normalise_to_nothing(corpus: Corpus, run: Run) -> None:
    result = run(corpus("tar_nameless"))
    assert [f.message for f in result.findings] == [
        "Refused member 2 of 'nameless.tar': the name is empty.",
        "Refused member 3 of 'nameless.tar': the name is empty.",  # "\0evil.txt"
        "Refused './': the name is empty.",
        "Refused '.': the name is empty.",
        "Refused './.': the name is empty.",
        "Refused '..': parent directory ('..') components are not allowed.",
        "Refused '../': parent directory ('..') components are not allowed.",
        "Refused '/': absolute paths are not allowed.",
        "Refused '//': absolute paths are not allowed.",
        "Refused '/./': absolute paths are not allowed.",
        "Refused 'C:': Windows drive letters are not allowed.",
        "Refused 'C:\\': Windows drive letters are not allowed.",
    ]
    assert all(f.level == "fatal" and f.public_path is None for f in result.findings)
    assert paths(result) == ["ok.txt"]


def test_nameless_member_of_a_nested_archive_names_that_archive(
    tmp_path: Path, run: Run, corpus: Corpus
) -> None:
    inner = corpus("zip_nameless").read_bytes()
    result = run(make_tar(tmp_path / "outer.tar", [("sub/in.zip", inner), ("x.txt", b"x\n")], "w"))
    one(result, "fatal", "Refused member 2 of 'sub/in.zip': the name is empty.")
    assert paths(result) == ["sub/ok.txt", "x.txt"]


# --- single files, uploaded names, formats -----------------------------------------------------
def test_latex_paper(corpus: Corpus, run: Run) -> None:
    result = run(corpus("latex_paper"))
    assert result.findings == [] and result.removed == []
    assert types(result) == {
        "fig.png": ft.IMAGE,
        "figs/plot.pdf": ft.PDF,
        "main.tex": ft.LATEX2E,
        "refs.bib": ft.BIBTEX,
    }
    assert result.source_format == "tex"


def test_ancillary_files_go_under_anc(corpus: Corpus, run: Run) -> None:
    result = run(corpus("latex_paper"), ancillary=True)
    assert paths(result) == ["anc/fig.png", "anc/figs/plot.pdf", "anc/main.tex", "anc/refs.bib"]
    assert result.source_format == "invalid"  # only ancillary files


def test_top_level_folder_is_removed(tmp_path: Path, run: Run) -> None:
    source = make_tar(
        tmp_path / "p.tar.gz", [("paper/main.tex", LATEX_MAIN), ("paper/my fig.pdf", PDF)]
    )
    result = run(source)
    assert paths(result) == ["main.tex", "my_fig.pdf"]
    one(result, "warn", "Removed top level directory 'paper'.")
    # Findings made before the move point at the new paths.
    assert one(result, "warn", "Renamed 'paper/my fig.pdf'").public_path == "my_fig.pdf"
    assert result.files[0].read_bytes() == LATEX_MAIN


def test_top_level_folder_is_kept_when_the_workspace_has_files(tmp_path: Path, run: Run) -> None:
    source = make_tar(tmp_path / "p.tar.gz", [("paper/main.tex", LATEX_MAIN)])
    assert paths(run(source, existing_count=3)) == ["paper/main.tex"]


def test_windows_upload_filename(tmp_path: Path, run: Run) -> None:
    source = tmp_path / "upload.bin"
    source.write_bytes(b"hello\n")
    result = run(source, "c:\\data\\windows.txt")
    one(result, "warn", "Renamed 'c:\\data\\windows.txt' to 'windows.txt'.")
    assert paths(result) == ["windows.txt"]


@pytest.mark.parametrize("filename", ["../../etc/passwd", "/etc/passwd", "..", ""])
def test_upload_filename_cannot_escape(tmp_path: Path, run: Run, filename: str) -> None:
    source = tmp_path / "upload.bin"
    source.write_bytes(b"hello\n")
    result = run(source, filename)
    assert len(result.files) == 1 and "/" not in result.files[0].public_path


def test_single_file_with_illegal_name(tmp_path: Path, run: Run) -> None:
    source = tmp_path / "x"
    source.write_bytes(LATEX_MAIN)
    result = run(source, "my paper (v2).tex")
    one(result, "warn", "Renamed 'my paper (v2).tex' to 'my_paper__v2_.tex'")
    assert types(result) == {"my_paper__v2_.tex": ft.LATEX2E}
    assert result.source_format == "tex"


def test_single_pdf(tmp_path: Path, run: Run) -> None:
    source = tmp_path / "paper.pdf"
    source.write_bytes(PDF)
    result = run(source)
    assert types(result) == {"paper.pdf": ft.PDF} and result.source_format == "pdf"


def test_gzipped_single_file(corpus: Corpus, run: Run) -> None:
    result = run(corpus("data_gz"))
    assert types(result) == {"data.csv": ft.TEXT}
    assert result.files[0].size == 800


def test_gzip_embedded_name_is_not_used(corpus: Corpus, run: Run) -> None:
    result = run(corpus("gzip_embedded_name"))  # its header says '../../etc/passwd'
    assert result.findings == [] and paths(result) == ["notes.txt"]
    assert result.files[0].read_bytes() == b"notes\n"


def test_gzip_header_longer_than_the_head(corpus: Corpus, run: Run) -> None:
    # The data starts after 165 KB of header: the 64 KiB head alone does not decompress.
    result = run(corpus("gzip_long_header"))
    assert result.findings == [] and types(result) == {"main.tex": ft.LATEX2E}


def test_nested_gzip_with_a_long_header_is_unpacked(
    tmp_path: Path, run: Run, corpus: Corpus
) -> None:
    inner = corpus("gzip_long_header").read_bytes()
    source = make_tar(tmp_path / "outer.tar", [("in.tar.gz", inner), ("x.txt", b"x\n")], "w")
    result = run(source)
    one(result, "info", "Unpacked archive 'in.tar.gz'.")
    assert paths(result) == ["main.tex", "x.txt"]


@pytest.mark.parametrize("filename", ["..gz", "...gz", "..bz2", "..xz"])
def test_compressed_file_named_only_dots(tmp_path: Path, run: Run, filename: str) -> None:
    # Without its suffix the name would be '.' or '..': the upload's own name is kept instead.
    compress = {"gz": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress}
    source = tmp_path / "upload"
    source.write_bytes(compress[filename.rsplit(".", 1)[1]](b"data\n"))
    result = run(source, filename)
    assert [(f.level, f.public_path, f.message) for f in result.findings] == [
        ("warn", filename, "Hidden file are not allowed.")
    ]
    assert result.files == [] and result.removed == [filename]


def test_gzip_without_compression_suffix_is_kept(tmp_path: Path, run: Run) -> None:
    source = tmp_path / "figure.svgz"
    source.write_bytes(gzip.compress(b"<svg/>"))
    assert types(run(source)) == {"figure.svgz": ft.GZIPPED}


def test_archive_named_as_another_kind(tmp_path: Path, run: Run) -> None:
    zipped = make_zip(tmp_path / "a.zip", [("a.txt", b"a\n")])
    source = tmp_path / "really-a-zip.tar.gz"
    source.write_bytes(zipped.read_bytes())
    result = run(source)
    one(result, "warn", "is a zip archive, not what its name says; unpacked as zip.")
    assert paths(result) == ["a.txt"]


def test_gzipped_tar_named_tar(tmp_path: Path, run: Run) -> None:
    source = make_tar(tmp_path / "x.tar", [("a.txt", b"a\n")], "w:gz")
    result = run(source)
    assert result.findings == [] and paths(result) == ["a.txt"]


def test_rar_is_refused(tmp_path: Path, run: Run) -> None:
    source = tmp_path / "paper.rar"
    source.write_bytes(b"Rar!\x1a\x07\x00" + bytes(100))
    one(run(source), "fatal", "We do not support 'rar' files. Please use 'zip' or 'tar' instead.")


def test_accepted_types_of_the_target_archive(corpus: Corpus, run: Run) -> None:
    paper = replace(limits_for("math"), rules="general", accepted_types=PAPER_TYPES)
    result = run(corpus("docx"), limits=paper)
    one(result, "fatal", "File 'paper.docx' has type DOCX, which archive 'math' does not accept.")
    assert not run(corpus("docx"), limits=paper, ancillary=True).fatal  # anc/ takes anything
    assert not run(corpus("latex_paper"), limits=paper).fatal
    # The arXiv targets list no types: a lone Word file is an invalid source of the workspace
    # (tests/workspaces/test_rules_service.py), not a refused upload.
    assert not run(corpus("docx"), limits=limits_for("math")).fatal


def test_zip_with_unsupported_compression(tmp_path: Path, run: Run) -> None:
    source = tmp_path / "bz.zip"
    with zipfile.ZipFile(source, "w", zipfile.ZIP_BZIP2) as zf:
        zf.writestr("a.txt", b"a\n")
    one(run(source), "fatal", "Compression method 12 of 'a.txt' in 'bz.zip' is not supported")


def test_encrypted_zip_member(tmp_path: Path, run: Run) -> None:
    source = make_zip(tmp_path / "enc.zip", [("a.txt", b"a\n")])
    data = bytearray(source.read_bytes())
    data[6] |= 1  # local header flag
    data[data.rfind(b"PK\x01\x02") + 8] |= 1  # central directory flag
    source.write_bytes(bytes(data))
    one(run(source), "fatal", "Encrypted files are not supported: 'a.txt' in 'enc.zip'.")


def test_huge_gnu_long_name_header(tmp_path: Path, run: Run) -> None:
    info = tarfile.TarInfo("././@LongLink")
    info.type = tarfile.GNUTYPE_LONGNAME
    info.size = 50 * MiB
    source = tmp_path / "longname.tar"
    source.write_bytes(info.tobuf(tarfile.USTAR_FORMAT) + bytes(1024))
    finding = one(run(source), "fatal", "There were problems unpacking 'longname.tar'")
    assert "extended header of 52428800 bytes" in finding.message


def test_staging_must_be_empty(tmp_path: Path, corpus: Corpus) -> None:
    staging = tmp_path / "staging"
    staging.mkdir()
    (staging / "leftover").write_text("x")
    with pytest.raises(ValueError, match="not empty"):
        process_upload(corpus("latex_paper"), "p.tar.gz", staging=staging, limits=DEFAULT_LIMITS)


def test_gzip_checksum_is_verified(tmp_path: Path, run: Run) -> None:
    data = bytearray(make_tar(tmp_path / "a.tar.gz", [("a.txt", b"hello\n" * 10)]).read_bytes())
    data[-8] ^= 0xFF  # the CRC-32 in the gzip trailer
    source = tmp_path / "crc.tar.gz"
    source.write_bytes(bytes(data))
    assert "CRC check failed" in one(run(source), "fatal", "There were problems unpacking").message


@pytest.mark.parametrize(("kind", "size"), [("bz2", 256 * MiB), ("xz", 64 * MiB)])
def test_bzip2_and_xz_bombs(
    tmp_path: Path, run: Run, kind: Literal["bz2", "xz"], size: int
) -> None:
    # bzip2 packs 256 MiB of zeros into ~200 bytes: decompressing in one call would be fatal.
    source = build_compressed_tar_bomb(tmp_path, kind, size)
    limits = replace(DEFAULT_LIMITS, ratio_grace_bytes=MiB)
    result = run(source, limits=limits)
    one(result, "fatal", "(possible archive bomb)")
    # Pulled in pieces of at most BUFFER and stopped at the first past the grace: one call
    # decompressing everything would count the whole bomb here.
    message, budget = run_budgeted(source, tmp_path / "staging", limits)
    assert "(possible archive bomb)" in message
    assert budget.expanded_total <= MiB + BUFFER


def test_zip_declaring_too_many_entries(tmp_path: Path, run: Run) -> None:
    data = bytearray(make_zip(tmp_path / "a.zip", [("a.txt", b"a")]).read_bytes())
    eocd = data.rfind(b"PK\x05\x06")
    data[eocd + 8 : eocd + 12] = (60_000).to_bytes(2, "little") * 2  # entries on disk, total
    source = tmp_path / "many.zip"
    source.write_bytes(bytes(data))
    result = run(source, limits=replace(DEFAULT_LIMITS, max_files=100))
    one(result, "fatal", "Upload exceeds the limit of 100 files")


SEEDS = ("latex_paper", "hidden_junk", "non_utf8_names", "case_duplicates", "docx", "data_gz")


@settings(max_examples=150, deadline=None)
@given(
    seed=st.sampled_from(SEEDS),
    edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=8),
    cut=st.one_of(st.none(), st.floats(0, 1)),
)
def test_damaged_archives_never_raise(
    corpus: Corpus, seed: str, edits: list[tuple[float, int]], cut: float | None
) -> None:
    original = corpus(seed)
    data = bytearray(original.read_bytes())
    for where, value in edits:
        data[int(where * len(data))] = value
    if cut is not None:
        data = data[: int(cut * len(data))]
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder, "upload")
        source.write_bytes(bytes(data))
        result = process_upload(
            source, original.name, staging=Path(folder, "staging"), limits=DEFAULT_LIMITS
        )
        for staged in result.files:
            if staged.local_path is not None:
                assert Path(folder, "staging") in staged.local_path.parents
        for finding in result.findings:
            assert finding.message.isprintable()


MAIN_TEX = b"\\documentclass{article}\n\\begin{document}Hi\\end{document}\n"


def test_a_truncated_tar_inside_an_upload_is_warned_and_the_rest_kept(
    tmp_path: Path, run: Run
) -> None:
    """arXiv warns and goes on (issue #13, section 2): the inner archive's readable members
    stay, the one it broke in is named, and the upload's other files are untouched."""
    inner = make_tar(
        tmp_path / "inner.tar",
        [("first.txt", b"first\n"), ("second.bin", os.urandom(40_000))],
        "w",
    ).read_bytes()
    cut = inner[: 512 + 1024 + 512 + 10_000]  # first whole, second's header, part of its data
    source = make_tar(tmp_path / "up.tar.gz", [("main.tex", MAIN_TEX), ("data.tar", cut)])
    result = run(source)
    assert not result.fatal, result.findings
    warning = one(result, "warn", "There were problems unpacking 'data.tar'.")
    assert "'second.bin' could not be read and was left out" in warning.message
    assert paths(result) == ["first.txt", "main.tex"]


def test_a_corrupt_zip_inside_an_upload_is_warned_and_the_rest_kept(
    tmp_path: Path, run: Run
) -> None:
    good = make_zip(tmp_path / "inner.zip", [("a.txt", b"a\n" * 100), ("b.txt", b"b\n" * 100)])
    data = bytearray(good.read_bytes())
    second = data.rfind(b"PK\x03\x04")  # the local header of b.txt
    data[second + 30 + len("b.txt") + 2] ^= 0xFF  # a byte of its compressed data: bad CRC
    source = make_tar(tmp_path / "up.tar.gz", [("main.tex", MAIN_TEX), ("figs.zip", bytes(data))])
    result = run(source)
    assert not result.fatal, result.findings
    warning = one(result, "warn", "There were problems unpacking 'figs.zip'.")
    assert "'b.txt' could not be read" in warning.message
    assert paths(result) == ["a.txt", "main.tex"]
