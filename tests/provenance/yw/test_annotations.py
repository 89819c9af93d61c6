"""The comment scanner and tag parser: languages, strings, continuation lines, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cairn.errors import Invalid
from cairn.provenance.yw import (
    AnnotationError,
    UnknownLanguage,
    build_model,
    extract_files,
    extract_text,
    load_model,
)


def tags(text: str, path: str, language: str | None = None) -> list[tuple[int, str, str | None]]:
    found = extract_text(text, path=path, language=language).annotations
    return [(a.line, a.tag, a.value) for a in found]


BLOCK = ["@begin b", "@in x", "@end b"]


@pytest.mark.parametrize(
    ("path", "lines"),
    [
        ("s.py", [f"# {t}" for t in BLOCK]),
        ("s.R", [f"# {t}" for t in BLOCK]),
        ("s.sh", [f"# {t}" for t in BLOCK]),
        ("s.m", [f"% {t}" for t in BLOCK]),
        ("s.sql", [f"-- {t}" for t in BLOCK]),
        ("s.c", [f"// {t}" for t in BLOCK]),
        ("s.java", ["/*", *(f" * {t}" for t in BLOCK), " */"]),
        ("s.py", ['"""', *BLOCK, '"""']),
        ("s.m", ["%{", *BLOCK, "%}"]),
    ],
)
def test_each_language_comment_syntax(path: str, lines: list[str]) -> None:
    found = [(tag, value) for _, tag, value in tags("\n".join(lines), path)]
    assert found == [("begin", "b"), ("in", "x"), ("end", "b")]


def test_markers_inside_strings_start_no_comment() -> None:
    text = "x = \"not # @begin a\"\ny = '@in z'  # @begin real\n# @end real\n"
    assert tags(text, "s.py") == [(2, "begin", "real"), (3, "end", "real")]
    matlab = "a = b'; % @begin m\nc = 'it''s % no'; % @end m\n"
    assert tags(matlab, "s.m") == [(1, "begin", "m"), (2, "end", "m")]
    shell = 'echo $# "#x" # @begin s\n# @end s\n'
    assert tags(shell, "s.sh") == [(1, "begin", "s"), (2, "end", "s")]


def test_code_after_a_closed_block_comment_is_scanned() -> None:
    text = "/* @begin c */ int x; // @in y\n/* @end\n c */\n"
    assert tags(text, "s.c") == [(1, "begin", "c"), (1, "in", "y"), (2, "end", None)]


def test_tags_are_case_insensitive_and_keep_the_keyword_as_written() -> None:
    found = extract_text("# @BEGIN a\n# @In b @AS c\n# @End a\n", path="s.py").annotations
    assert [(a.tag, a.keyword, a.value) for a in found] == [
        ("begin", "@BEGIN", "a"),
        ("in", "@In", "b"),
        ("as", "@AS", "c"),
        ("end", "@End", "a"),
    ]
    assert found[2].qualifies == found[1].id


def test_several_annotations_on_one_line_and_extra_tokens() -> None:
    text = "# @begin a\n# @in x extra words @as y @uri file:{d}/y.csv\n# @end a\n"
    assert tags(text, "s.py")[1:4] == [(2, "in", "x"), (2, "as", "y"), (2, "uri", "file:{d}/y.csv")]


def test_desc_and_log_take_the_rest_of_the_text() -> None:
    text = "# @begin a @desc Does  two things.\n# @out f @log {t} wrote {n} rows\n# @end a\n"
    assert tags(text, "s.py")[1] == (1, "desc", "Does  two things.")
    assert tags(text, "s.py")[3] == (2, "log", "{t} wrote {n} rows")


def test_an_email_or_a_java_annotation_is_no_keyword() -> None:
    text = "// @begin a\n// mail me@example.com @Override @interface\n// @end a\n"
    assert [t for _, t, _ in tags(text, "s.java")] == ["begin", "end"]


def test_roxygen_lines_in_r_are_not_yesworkflow() -> None:
    text = "#' @param x roxygen's own\n# @begin a\n# @end a\n"
    assert [t for _, t, _ in tags(text, "s.R")] == ["begin", "end"]


@pytest.mark.parametrize(
    ("wrapped", "one_line"),
    [("c3c4_listing1.m", "c3c4_oneline.m"), ("ohibc_listing2.R", "ohibc_oneline.R")],
)
def test_wrapped_listing_gives_the_model_of_its_one_line_original(
    fixtures: Path, wrapped: str, one_line: str
) -> None:
    printed = load_model([fixtures / wrapped]).to_dict()
    original = load_model([fixtures / one_line]).to_dict()
    printed.pop("sources")
    original.pop("sources")
    assert printed == original
    assert any(p["uri_template"] for p in printed["ports"])


def test_the_c3c4_template_is_joined_without_a_space(fixtures: Path) -> None:
    model = load_model([fixtures / "c3c4_listing1.m"])
    assert model.ports[1].uri == (
        "file:inputs/narr_apcp_rescaled_monthly/apcp_monthly_{start_year}_{end_year}_mean.{month}.nc"
    )
    uri = next(a for a in model.extraction.annotations if a.tag == "uri")
    assert uri.line == 3  # the line of @URI, not of its continuation


def test_continuation_stops_at_a_blank_comment_line_or_code() -> None:
    text = "# @begin a\n# @out f @uri file:dir/\n#\n# later.csv\n# @end a\n"
    assert tags(text, "s.py")[2] == (2, "uri", "file:dir/")
    closed = "# @begin a\n# @out f\n# an ordinary remark\n# @end a\n"
    assert tags(closed, "s.py")[1] == (2, "out", "f")


def test_desc_continues_over_following_comment_lines() -> None:
    text = "# @begin a\n# @desc First line\n# and second.\n\n# not this\n# @end a\n"
    assert tags(text, "s.py")[1] == (2, "desc", "First line\nand second.")


def test_language_option_overrides_the_extension() -> None:
    assert tags("% @begin a\n% @end a\n", "script.txt", language="octave")[0] == (1, "begin", "a")
    with pytest.raises(UnknownLanguage, match="--language"):
        extract_text("# @begin a", path="script.txt")
    with pytest.raises(UnknownLanguage, match="cobol"):
        extract_text("", path="s.py", language="cobol")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("# @begin a\n# @in\n# @end a\n", "s.py:2: @in needs a value"),
        ("# @as y\n", "s.py:1: @as must follow @in/@out/@param/@return, not nothing"),
        ("# @begin a\n# @log x\n# @end a\n", "s.py:2: @log must follow @out/@return, not @begin"),
        ("# @begin a\n# @in x\n# @log {v}\n# @end a\n", "s.py:3: @log must follow"),
        ("# @begin a\n# @end a\n# @desc late\n", "s.py:3: @desc must follow"),
    ],
)
def test_misplaced_or_empty_tags_name_file_and_line(text: str, message: str) -> None:
    with pytest.raises(AnnotationError) as caught:
        extract_text(text, path="s.py")
    assert message in caught.value.message


def test_every_error_is_listed(tmp_path: Path) -> None:
    script = tmp_path / "many.py"
    script.write_text("# @as a\n# @uri b\n")
    with pytest.raises(AnnotationError) as caught:
        extract_files([script])
    assert caught.value.message == "2 YesWorkflow annotation errors"
    assert [d.split(": ")[0] for d in caught.value.detail] == [f"{script}:1", f"{script}:2"]


def test_an_unreadable_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(Invalid, match="cannot read"):
        extract_files([tmp_path / "absent.py"])


WORDS = ["#", "%", "//", "/*", "*/", "--", "'", '"', '"""', "\\", "%{", "%}", "\n", " ", "x"]
WORDS += ["@begin", "@end", "@in", "@out", "@as", "@uri", "@log", "@desc", "{v}", "file:d/"]


@given(st.lists(st.sampled_from(WORDS), max_size=40).map("".join))
def test_any_text_builds_a_model_or_fails_with_a_clear_error(text: str) -> None:
    for path in ("s.py", "s.m", "s.c", "s.sql", "s.sh"):
        try:
            build_model(extract_text(text, path=path))
        except AnnotationError as exc:
            assert exc.message.startswith(f"{path}:") or exc.detail


TEMPLATE = (
    "file:inputs/narr_apcp_rescaled_monthly/apcp_monthly_{start_year}_{end_year}_mean.{month}.nc"
)


@given(st.sets(st.sampled_from([i + 1 for i, c in enumerate(TEMPLATE) if c == "/"])))
def test_a_template_wrapped_after_any_of_its_slashes_reads_as_one_line(cuts: set[int]) -> None:
    pieces, last = [], 0
    for cut in sorted(cuts):
        pieces.append(TEMPLATE[last:cut])
        last = cut
    pieces.append(TEMPLATE[last:])
    wrapped = "% @begin f\n% @in p @URI\n" + "".join(f"% {p}\n" for p in pieces) + "% @end f\n"
    model = build_model(extract_text(wrapped, path="f.m"))
    assert model.ports[1].uri == TEMPLATE


def test_calls_are_recorded_on_their_block() -> None:
    model = build_model(
        extract_text("# @begin a\n# @call helper\n# @in x\n# @end a\n", path="s.py")
    )
    assert model.programs[1].calls == ["helper"]
    assert model.ports[1].name == "x"


def test_a_folder_or_binary_file_is_handled(tmp_path: Path) -> None:
    folder = tmp_path / "dir.py"
    folder.mkdir()
    with pytest.raises(Invalid, match="cannot read"):
        extract_files([folder])
    binary = tmp_path / "blob.py"
    binary.write_bytes(b"\xff\xfe# @begin \x00a\n\x80# @end a\n")
    assert [a.tag for a in extract_files([binary]).annotations] == ["begin", "end"]
