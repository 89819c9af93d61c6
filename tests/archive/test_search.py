"""Search on both databases: the name filter's trigram index (FTS5 on SQLite, pg_trgm on
PostgreSQL) must give exactly what a plain case-insensitive substring scan gives."""

from __future__ import annotations

import pytest
from sqlalchemy import delete
from sqlalchemy.orm import Session

from cairn.archive import service
from cairn.archive.models import ArchiveContainer
from tests.archive.helpers import make_containers

NAMES = [
    "Invoice 4242",
    "invoice 42420",
    "INVOICE 1",
    'Contract "Alpha" 7',
    "100% done_now",
    "100x done-now",
    "Счёт 12",
    "ab",
]


def _org_with_containers(session: Session, names: list[str]) -> service.Caller:
    return make_containers(session, names).caller


def _names(session: Session, caller: service.Caller, query: str) -> tuple[list[str], int]:
    found, total = service.search_containers(
        session, caller, service.SearchFilters(name=query), page_size=100
    )
    return [c.name for c in found], total


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("voice 4242", ["Invoice 4242", "invoice 42420"]),  # substring, any case
        ("INVOICE", ["Invoice 4242", "invoice 42420", "INVOICE 1"]),
        ('"alpha"', ['Contract "Alpha" 7']),  # quotes are not FTS syntax
        ("0% d", ["100% done_now"]),  # % and _ are literal, not wildcards
        ("e_n", ["100% done_now"]),
        ("чёт", ["Счёт 12"]),
        ("ab", ["ab"]),  # shorter than a trigram: a plain scan
        ("nothing like it", []),
    ],
)
def test_name_filter_is_a_case_insensitive_substring(
    session: Session, query: str, expected: list[str]
) -> None:
    caller = _org_with_containers(session, NAMES)
    _org_with_containers(session, NAMES)  # the same names in another organisation: not found
    assert _names(session, caller, query) == (expected, len(expected))


def test_name_index_follows_deletes_and_renames(session: Session) -> None:
    caller = _org_with_containers(session, ["Quarterly report", "Annual report"])
    session.execute(delete(ArchiveContainer).where(ArchiveContainer.name == "Annual report"))
    quarterly = session.query(ArchiveContainer).filter_by(name="Quarterly report").one()
    quarterly.name = "Monthly summary"
    session.flush()
    assert _names(session, caller, "report") == ([], 0)
    assert _names(session, caller, "monthly") == (["Monthly summary"], 1)


def test_total_counts_every_match_not_only_the_page(session: Session) -> None:
    caller = _org_with_containers(session, [f"Batch {i}" for i in range(25)])
    found, total = service.search_containers(
        session, caller, service.SearchFilters(status=4), page=3, page_size=10
    )
    assert total == 25
    assert [c.name for c in found] == [f"Batch {i}" for i in range(20, 25)]
