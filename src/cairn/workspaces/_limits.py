"""Per-archive upload limits: sizes, counts, bomb ratio, nesting depth and accepted file types.

The "archive" an upload targets (arXiv's term: the subject archive such as ``math`` or ``hep-th``,
not the file format) chooses its limits. ``ARCHIVE_LIMITS`` is a plain dict so it can later move
into ``Settings`` unchanged; ``limits_for`` looks a name up in it (or in a table passed in).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal

from cairn.workspaces import _filetypes as ft

__all__ = [
    "ARCHIVE_ALIASES",
    "ARCHIVE_LIMITS",
    "ARXIV_TARGET",
    "DEFAULT_LIMITS",
    "PAPER_TYPES",
    "Limits",
    "RuleSet",
    "find_limits",
    "known_targets",
    "limits_for",
]

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

RuleSet = Literal["general", "arxiv"]
"""Which sanitizing rules apply: cairn's for research data, or arXiv's 31 ordered checks."""

# The target /filemanager/api gives a workspace when the upload names no subject archive:
# arXiv's rules and paper limits, as the arXiv service applies them to every submission.
ARXIV_TARGET = "arxiv"


@dataclass(frozen=True)
class Limits:
    """Limits applied to one upload, for one target archive.

    Sizes are in bytes. ``max_total_bytes`` and ``max_files`` include what the workspace already
    holds (``existing_total``/``existing_count`` of ``process_upload``). Crossing any limit is a
    ``fatal`` finding and stops processing at once.

    ``max_ratio`` bounds bytes produced by decompression over compressed bytes consumed, once more
    than ``ratio_grace_bytes`` have been produced (so small, very compressible files still pass).
    ``max_depth`` is the number of archive layers opened: a ``.tar.gz`` upload is 1, a zip inside
    it 2. ``accepted_types`` lists the file types (``_filetypes`` names) accepted outside ``anc/``;
    ``None`` accepts everything. Ancillary files are never type-checked. ``rules`` picks the
    sanitizing rules (``docs/arxiv-rules.md``): the arXiv targets decide what a paper may hold
    by arXiv's own checks, so they list no accepted types.
    """

    max_total_bytes: int
    max_file_bytes: int
    max_files: int
    max_ratio: float
    max_depth: int
    accepted_types: frozenset[str] | None
    name: str = "default"
    ratio_grace_bytes: int = 16 * MiB
    rules: RuleSet = "general"


# Types a paper submission may contain outside anc/, for a target that lists accepted types
# (the arXiv targets use arXiv's own rules instead: DVI, .doc and RAR fatal, a lone Word file
# an invalid source ...).
PAPER_TYPES: frozenset[str] = frozenset(
    {
        *ft.TEX_TYPES,
        ft.TEXAUX,
        ft.BIBTEX,
        ft.PDF,
        ft.POSTSCRIPT,
        ft.PS_FONT,
        ft.DOS_EPS,
        ft.IMAGE,
        ft.HTML,
        ft.TEXT,
        ft.README,
    }
)

DEFAULT_LIMITS = Limits(
    max_total_bytes=8 * GiB,
    max_file_bytes=4 * GiB,
    max_files=20_000,
    max_ratio=200.0,
    max_depth=5,
    accepted_types=None,
    name="default",
)

_PAPER_LIMITS = Limits(
    max_total_bytes=100 * MiB,
    max_file_bytes=50 * MiB,
    max_files=2_000,
    max_ratio=200.0,
    max_depth=3,
    accepted_types=None,
    name="paper",
    rules="arxiv",
)

_DATA_LIMITS = Limits(
    max_total_bytes=64 * GiB,
    max_file_bytes=32 * GiB,
    max_files=100_000,
    max_ratio=1000.0,
    max_depth=3,
    accepted_types=None,
    name="data",
)

ARCHIVE_LIMITS: dict[str, Limits] = {
    "default": DEFAULT_LIMITS,
    ARXIV_TARGET: _PAPER_LIMITS,
    "physics": _PAPER_LIMITS,
    "math": _PAPER_LIMITS,
    "cs": _PAPER_LIMITS,
    "stat": _PAPER_LIMITS,
    "q-bio": _PAPER_LIMITS,
    "q-fin": _PAPER_LIMITS,
    "eess": _PAPER_LIMITS,
    "econ": _PAPER_LIMITS,
    "data": _DATA_LIMITS,
}

# arXiv archives that share the physics limits.
ARCHIVE_ALIASES: dict[str, str] = {
    name: "physics"
    for name in (
        "astro-ph",
        "cond-mat",
        "gr-qc",
        "hep-ex",
        "hep-lat",
        "hep-ph",
        "hep-th",
        "math-ph",
        "nlin",
        "nucl-ex",
        "nucl-th",
        "quant-ph",
    )
}


def known_targets() -> list[str]:
    """Every target archive name cairn knows, aliases included, sorted."""
    return sorted({*ARCHIVE_LIMITS, *ARCHIVE_ALIASES})


def find_limits(
    archive: str | None,
    *,
    table: Mapping[str, Limits] | None = None,
    aliases: Mapping[str, str] | None = None,
) -> Limits | None:
    """The limits for a target archive; the defaults for ``None``; ``None`` for an unknown name.

    A category such as ``math.AG`` or ``hep-th`` resolves to its archive (``math``, ``physics``).
    The returned ``Limits.name`` is the name asked for, so messages quote what the client sent.
    """
    table = ARCHIVE_LIMITS if table is None else table
    aliases = ARCHIVE_ALIASES if aliases is None else aliases
    if archive is None or not archive.strip():
        return table.get("default", DEFAULT_LIMITS)
    asked = archive.strip()
    key = asked.lower()
    for candidate in (key, key.split(".", 1)[0]):
        candidate = aliases.get(candidate, candidate)
        if candidate in table:
            return replace(table[candidate], name=asked)
    return None


def limits_for(
    archive: str | None,
    *,
    table: Mapping[str, Limits] | None = None,
    aliases: Mapping[str, str] | None = None,
) -> Limits:
    """Like ``find_limits``, but an unknown name gets the defaults."""
    found = find_limits(archive, table=table, aliases=aliases)
    if found is None:
        table = ARCHIVE_LIMITS if table is None else table
        return table.get("default", DEFAULT_LIMITS)
    return found
