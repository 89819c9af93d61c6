"""Finding and paging: ``filter[field__modifier]``, ``search`` and cursor paging over records.

The Fusion contract filters on any field with eq, ne, le, lt, ge, gt, begins_with, contains,
not_contains, null, not_null, in and between, and pages with a cursor (``last``). Records are
the rendered dictionaries, so every field a client sees can be filtered on the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cairn.errors import Invalid

__all__ = ["MODIFIERS", "Page", "find", "matching", "parse_filters"]

MODIFIERS = (
    "eq",
    "ne",
    "le",
    "lt",
    "ge",
    "gt",
    "begins_with",
    "contains",
    "not_contains",
    "null",
    "not_null",
    "in",
    "between",
)
MAX_LIMIT = 1000


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    last: dict[str, str] | None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    return "" if value is None else str(value)


def _compare(value: Any, wanted: str) -> int:
    """-1, 0 or 1: numbers as numbers when both are, else as text."""
    try:
        left, right = float(value), float(wanted)
        return (left > right) - (left < right)
    except (TypeError, ValueError):
        text = _text(value)
        return (text > wanted) - (text < wanted)


def _parts(wanted: str) -> list[str]:
    return [part.strip() for part in wanted.split(",")]


def _matches(value: Any, modifier: str, wanted: str) -> bool:
    if modifier == "null":
        return value is None
    if modifier == "not_null":
        return value is not None
    if isinstance(value, list | tuple):
        texts = [_text(v) for v in value]
        if modifier == "contains":
            return wanted in texts
        if modifier == "not_contains":
            return wanted not in texts
        if modifier == "eq":
            return wanted in texts
        return False
    if value is None:
        return modifier in ("ne", "not_contains")
    text = _text(value)
    checks = {
        "eq": lambda: text == wanted,
        "ne": lambda: text != wanted,
        "le": lambda: _compare(value, wanted) <= 0,
        "lt": lambda: _compare(value, wanted) < 0,
        "ge": lambda: _compare(value, wanted) >= 0,
        "gt": lambda: _compare(value, wanted) > 0,
        "begins_with": lambda: text.startswith(wanted),
        "contains": lambda: wanted in text,
        "not_contains": lambda: wanted not in text,
        "in": lambda: text in _parts(wanted),
    }
    if modifier == "between":
        bounds = _parts(wanted)
        if len(bounds) != 2:
            raise Invalid("A 'between' filter takes two comma-separated values.")
        return _compare(value, bounds[0]) >= 0 and _compare(value, bounds[1]) <= 0
    return checks[modifier]()


def parse_filters(query: Mapping[str, str]) -> list[tuple[str, str, str]]:
    """``filter[name__modifier]=value`` query parameters as (name, modifier, value)."""
    found = []
    for key, value in query.items():
        if not (key.startswith("filter[") and key.endswith("]")):
            continue
        name, _, modifier = key[7:-1].rpartition("__")
        if not name or modifier not in MODIFIERS:
            raise Invalid(f"Unknown filter {key!r}: use filter[field__modifier].")
        found.append((name, modifier, value))
    return found


def find(
    records: Sequence[dict[str, Any]],
    *,
    filters: Sequence[tuple[str, str, str]] = (),
    search: str | None = None,
    search_fields: Sequence[str] = ("name",),
    limit: int = 24,
    reverse: bool = False,
    last: Mapping[str, str] | None = None,
    order: str = "created_at",
) -> Page:
    """One page of ``records`` matching every filter and (any case) ``search``, in ``order``
    then id, newest first if ``reverse``; ``last`` continues after the previous page."""
    if limit < 1 or limit > MAX_LIMIT:
        raise Invalid(f"limit must be between 1 and {MAX_LIMIT}.")
    chosen = [
        r
        for r in records
        if all(_matches(r.get(name), modifier, value) for name, modifier, value in filters)
        and (
            not search
            or any(search.lower() in _text(r.get(field)).lower() for field in search_fields)
        )
    ]

    def key(record: dict[str, Any]) -> tuple[str, str]:
        return (_text(record.get(order)), _text(record.get("id")))

    chosen.sort(key=key, reverse=reverse)
    if last and last.get("id"):
        after = (last.get(order, ""), last["id"])
        chosen = [r for r in chosen if (key(r) < after if reverse else key(r) > after)]
    page = chosen[:limit]
    more = len(chosen) > limit
    cursor = {"id": _text(page[-1].get("id")), order: key(page[-1])[0]} if more and page else None
    return Page(page, cursor)


def matching(
    records: Sequence[dict[str, Any]],
    *,
    name: str | None = None,
    search: str | None = None,
    search_fields: Sequence[str] = ("name",),
) -> list[dict[str, Any]]:
    """The records whose name begins with ``name`` (case-sensitive) and that hold ``search``
    in any of ``search_fields`` (any case), oldest first: the native API's find."""
    found = [
        r
        for r in records
        if (name is None or _text(r.get("name")).startswith(name))
        and (
            not search
            or any(search.lower() in _text(r.get(field)).lower() for field in search_fields)
        )
    ]
    return sorted(found, key=lambda r: (_text(r.get("created_at")), _text(r.get("id"))))
