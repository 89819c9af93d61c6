"""Name sanitizing, junk rules, case duplicates and the source format (pure functions)."""

from __future__ import annotations

import os

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from cairn.workspaces import _checks as ck
from cairn.workspaces import _filetypes as ft
from cairn.workspaces._checks import (
    MAX_NAME_BYTES,
    MAX_PATH_BYTES,
    SAFE_NAME,
    SAFE_PATH,
    Finding,
    MemberPath,
    case_duplicates,
    clean_upload_filename,
    display_name,
    infer_source_format,
    junk_kind,
    sanitize_name,
    split_member_path,
)

# Any code point, lone surrogates included (tar keeps undecodable bytes as surrogate escapes).
any_char = st.characters(codec=None, exclude_categories=())
any_text = st.text(any_char, max_size=600)
# Names biased toward separators, dots, drive letters and long components.
path_like = st.lists(
    st.one_of(
        st.sampled_from(["..", ".", "", "/", "\\", "C:", "a", "-x", ".hidden", "\u2025", "é"]),
        st.text(any_char, min_size=1, max_size=300),
    ),
    max_size=12,
).map("/".join)


@given(any_text)
@example("")
@example(".")
@example("..")
@example("\u2025")  # two-dot leader: ".." after NFKD
@example("\u0301")  # a lone combining accent: nothing after NFKD
@example("-rf")
@example("a" * 1000 + ".tex")
@example("\udce9t\u00e9")
@example("/etc/passwd")
def test_sanitize_name_is_always_safe(name: str) -> None:
    safe = sanitize_name(name)
    assert SAFE_NAME.fullmatch(safe)
    assert safe not in ("", ".", "..")
    assert "/" not in safe and not safe.startswith("-")
    assert len(safe.encode()) <= MAX_NAME_BYTES
    assert sanitize_name(safe) == safe  # idempotent
    plain = SAFE_NAME.fullmatch(name) and name not in (".", "..") and not name.startswith("-")
    if plain and len(name) <= MAX_NAME_BYTES:
        assert safe == name  # safe names are left alone


@given(st.one_of(any_text, path_like))
@example("../x")
@example("a/../../x")
@example("..\\x")
@example("C:\\Windows\\x")
@example("c:x")
@example("\\\\server\\share")
@example("/abs")
@example("./././")
@example("\u2025/\u2025/x")
def test_split_member_path_never_escapes(name: str) -> None:
    member = split_member_path(name)
    if isinstance(member, str):
        assert member in (
            ck.REFUSE_ABSOLUTE,
            ck.REFUSE_DRIVE,
            ck.REFUSE_PARENT,
            ck.REFUSE_EMPTY,
            ck.REFUSE_LONG,
        )
        return
    public = member.public
    assert SAFE_PATH.fullmatch(public)
    assert not public.startswith("/") and not public.endswith("/")
    assert all(part not in ("", ".", "..") for part in public.split("/"))
    assert all(len(part) <= MAX_NAME_BYTES for part in public.split("/"))
    assert len(public) <= MAX_PATH_BYTES
    root = "/srv/staging"
    assert os.path.normpath(os.path.join(root, public)).startswith(root + "/")


def test_a_windows_drive_prefix_leaves_the_last_component() -> None:
    """arXiv's FixWindowsFileNames: c:\\data\\windows.txt becomes windows.txt (warned)."""
    for name in ("c:\\data\\windows.txt", "D:/data/windows.txt", "c:windows.txt"):
        member = split_member_path(name)
        assert not isinstance(member, str)
        assert member.public == "windows.txt" and member.windows_name == name
    plain = split_member_path("data/windows.txt")
    assert not isinstance(plain, str) and plain.windows_name is None


def test_split_member_path_refusals() -> None:
    assert split_member_path("/etc/passwd") == ck.REFUSE_ABSOLUTE
    assert split_member_path("\\\\srv\\x") == ck.REFUSE_ABSOLUTE
    assert split_member_path("C:") == split_member_path("C:\\") == ck.REFUSE_DRIVE
    assert split_member_path("c:\\data\\..") == ck.REFUSE_DRIVE
    assert split_member_path("a/../b") == ck.REFUSE_PARENT
    assert split_member_path("a\\..\\b") == ck.REFUSE_PARENT
    assert split_member_path("./") == ck.REFUSE_EMPTY
    assert split_member_path("/".join(["x" * 255] * 5)) == ck.REFUSE_LONG


def test_split_member_path_sanitizes_each_component() -> None:
    member = split_member_path("./my dir//sub\\-x (1).tex", prefix=("anc",))
    assert isinstance(member, MemberPath)
    assert member.parts == ("anc", "my_dir", "sub", "_x__1_.tex")
    assert member.original == ("anc", "my dir", "sub", "-x (1).tex")
    assert member.reasons == (None, "illegal", None, "illegal")
    assert member.backslashes


@given(any_text)
def test_display_name_is_printable_utf8(name: str) -> None:
    shown = display_name(name)
    assert shown.isprintable()
    shown.encode("utf-8")
    assert len(shown) <= 200


def test_display_name_escapes() -> None:
    assert display_name("caf\udce9\n.tex") == "caf\\xe9\\x0a.tex"
    assert display_name("r\u00e9sum\u00e9") == "r\u00e9sum\u00e9"
    assert display_name("x" * 500).endswith("\u2026") and len(display_name("x" * 500)) == 200


@pytest.mark.parametrize(
    ("filename", "name", "message"),
    [
        ("paper.tex", "paper.tex", None),
        (
            "c:\\data\\windows.txt",
            "windows.txt",
            "Renamed 'c:\\data\\windows.txt' to 'windows.txt'.",
        ),
        ("C:windows.txt", "windows.txt", "Renamed 'C:windows.txt' to 'windows.txt'."),
        ("../../etc/passwd", "passwd", "Renamed '../../etc/passwd' to 'passwd'."),
        ("..", "upload", "Renamed '..' to 'upload'."),
        ("", "upload", "Renamed '' to 'upload'."),
    ],
)
def test_clean_upload_filename(filename: str, name: str, message: str | None) -> None:
    cleaned, findings = clean_upload_filename(filename)
    assert cleaned == name
    assert findings == ([] if message is None else [Finding("warn", None, message)])


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("main.tex", None),
        ("__MACOSX/._main.tex", ("macosx", 0)),
        ("paper/__MACOSX/x", ("macosx", 1)),
        (".DS_Store", ("hidden", 0)),
        ("a/.git/config", ("hidden", 1)),
        ("a/._x.tex", ("hidden", 1)),
        ("Thumbs.db", ("not_allowed", 0)),
        ("sub/DESKTOP.INI", ("not_allowed", 1)),
        ("main.tex~", ("not_allowed", 0)),
        ("#main.tex#", ("not_allowed", 0)),
        ("core", ("not_allowed", 0)),
        ("missfont.log", ("not_allowed", 0)),
        ("main.synctex.gz", ("not_allowed", 0)),
        ("xxx.rsrc", ("not_allowed", 0)),
        ("core/main.tex", None),  # only a *file* named core is a core dump
        ("main.tex.bak", None),  # warned about, not removed
    ],
)
def test_junk_kind(name: str, expected: tuple[str, int] | None) -> None:
    member = split_member_path(name)
    assert isinstance(member, MemberPath)
    assert junk_kind(member) == expected


def test_tex_backup_names() -> None:
    assert ck.is_tex_backup("a/main.tex.bak") and ck.is_tex_backup("main.TEX_")
    assert not ck.is_tex_backup("main.tex")
    assert "may be a backup file" in ck.msg_backup("main.tex.bak")


def test_rename_messages_keep_arxiv_wording() -> None:
    assert ck.rename_message("10-1-1(63).png", "10-1-1_63_.png", "illegal") == (
        "We only accept file names containing the characters: a-z A-Z 0-9 _ + - . =. "
        "Renamed '10-1-1(63).png' to '10-1-1_63_.png'"
    )
    assert ck.rename_message("-a", "_a", "hyphen") == (
        "We do not accept files starting with a hyphen. Renamed '-a' to '_a'"
    )


def test_case_duplicates() -> None:
    assert case_duplicates(["a.tex", "b.tex"]) == []
    found = case_duplicates(["fig.png", "Fig.png", "x/A", "x/a"])
    assert [f.public_path for f in found] == ["fig.png", "x/a"]
    assert all(f.level == "warn" and "differ only in case" in f.message for f in found)


@pytest.mark.parametrize(
    ("files", "source_format", "message"),
    [
        ([], "invalid", None),
        ([("main.tex", ft.LATEX2E)], "tex", None),
        ([("main.tex", ft.TEX)], "tex", None),
        ([("paper.pdf", ft.PDF)], "pdf", None),
        ([("paper.ps", ft.POSTSCRIPT)], "ps", None),
        ([("index.html", ft.HTML)], "html", None),
        ([("paper.docx", ft.DOCX)], "invalid", "Submissions in docx are no longer supported"),
        ([("paper.odt", ft.ODT)], "invalid", "Submissions in odf are no longer supported"),
        ([("blob", ft.BINARY)], "invalid", "Could not determine file type."),
        ([("x.sty", ft.TEXAUX)], "invalid", "Found single TeX auxiliary file"),
        ([("x.eps", ft.DOS_EPS)], "invalid", "Found single DOS EPS file"),
        ([("x.txt", ft.README)], "invalid", "Unsupported submission type"),
        ([("anc/x.csv", ft.TEXT)], "invalid", "Found single ancillary file. Invalid submission."),
        ([("anc/x", ft.TEXT), ("anc/y", ft.TEXT)], "invalid", None),
        ([("i.html", ft.HTML), ("a.png", ft.IMAGE), ("b.pdf", ft.PDF)], "html", None),
        ([("p.ps", ft.POSTSCRIPT), ("a.png", ft.IMAGE)], "ps", None),
        ([("p.ps", ft.POSTSCRIPT), ("m.tex", ft.LATEX2E)], "tex", None),
        ([("m.tex", ft.LATEX2E), ("anc/data.csv", ft.TEXT)], "tex", None),
    ],
)
def test_infer_source_format(
    files: list[tuple[str, str]], source_format: str, message: str | None
) -> None:
    result, findings = infer_source_format(files)
    assert result == source_format
    if message is None:
        assert findings == []
    else:
        assert len(findings) == 1 and findings[0].level == "warn"
        assert message in findings[0].message
