"""Per-archive limits and their lookup."""

from __future__ import annotations

from dataclasses import replace

import pytest

from cairn.workspaces import _filetypes as ft
from cairn.workspaces._limits import (
    ARCHIVE_LIMITS,
    DEFAULT_LIMITS,
    PAPER_TYPES,
    Limits,
    limits_for,
)


def test_defaults() -> None:
    assert limits_for(None) is DEFAULT_LIMITS
    assert limits_for("") is DEFAULT_LIMITS
    assert limits_for("no-such-archive") is DEFAULT_LIMITS
    assert DEFAULT_LIMITS.max_files == 20_000
    assert DEFAULT_LIMITS.accepted_types is None
    assert DEFAULT_LIMITS.max_depth == 5
    assert DEFAULT_LIMITS.max_ratio == 200


@pytest.mark.parametrize(
    ("archive", "key"),
    [
        ("math", "math"),
        ("MATH", "math"),
        ("math.AG", "math"),
        ("cs.LG", "cs"),
        ("hep-th", "physics"),
        ("astro-ph.CO", "physics"),
        ("data", "data"),
    ],
)
def test_lookup(archive: str, key: str) -> None:
    limits = limits_for(archive)
    assert limits == replace(ARCHIVE_LIMITS[key], name=archive)


def test_paper_archives_take_arxiv_rules_not_a_type_list() -> None:
    # arXiv decides by its own rules (DVI and RAR fatal, a lone Word file invalid ...), and
    # accepts any other file beside a paper: no accepted-types list on the arXiv targets.
    for target in ("arxiv", "math", "hep-th", "cs.LG"):
        assert limits_for(target).rules == "arxiv"
        assert limits_for(target).accepted_types is None
    assert DEFAULT_LIMITS.rules == limits_for("data").rules == "general"
    # PAPER_TYPES stays for a custom target that wants a type list.
    assert {ft.LATEX2E, ft.BIBTEX, ft.PDF, ft.IMAGE, ft.POSTSCRIPT} <= PAPER_TYPES
    assert not {ft.DOCX, ft.ODT, ft.DVI, ft.RAR, ft.BINARY} & PAPER_TYPES


def test_custom_table() -> None:
    tiny = Limits(10, 10, 1, 2.0, 1, frozenset({ft.TEXT}), name="tiny")
    assert limits_for("tiny", table={"tiny": tiny}) == tiny
    assert limits_for("x", table={"default": tiny}) is tiny
    assert limits_for("x", table={}) is DEFAULT_LIMITS
