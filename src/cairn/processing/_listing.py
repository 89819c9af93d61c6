"""Finding and paging: ``filter[field__modifier]``, ``search`` and cursor paging over records.

The Fusion contract filters on any field with eq, ne, le, lt, ge, gt, begins_with, contains,
not_contains, null, not_null, in and between, and pages with a cursor (``last``). Records are
the rendered dictionaries, so every field a client sees can be filtered on the same way.

Where a list is a query over stored rows, ``filter_query`` hands the filters on fields that are
columns (``columns``: record field -> column) to the database, and ``page_query`` the order,
cursor and limit too when nothing is left for Python; fields that exist only in the rendered
record (and ``search``, whose case folding must match Python's for any alphabet) are evaluated
over the records, as before, after the database has narrowed the rows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, DateTime, Float, Integer, Select, and_, func, or_
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import TypeDecorator, TypeEngine

from cairn.errors import Invalid

__all__ = [
    "MODIFIERS",
    "Filter",
    "Page",
    "filter_query",
    "find",
    "matching",
    "page_query",
    "parse_filters",
]

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
        "eq": lambda: _compare(value, wanted) == 0,  # numbers as numbers: 14 is 14.0
        "ne": lambda: _compare(value, wanted) != 0,
        "le": lambda: _compare(value, wanted) <= 0,
        "lt": lambda: _compare(value, wanted) < 0,
        "ge": lambda: _compare(value, wanted) >= 0,
        "gt": lambda: _compare(value, wanted) > 0,
        "begins_with": lambda: text.startswith(wanted),
        "contains": lambda: wanted in text,
        "not_contains": lambda: wanted not in text,
        "in": lambda: any(_compare(value, part) == 0 for part in _parts(wanted)),
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


# --- in the database ---------------------------------------------------------------------------

Filter = tuple[str, str, str]


def _kind(column: ColumnElement[Any]) -> TypeEngine[Any]:
    """The column's type, under any decorator (``UtcDateTime`` is a ``DateTime``)."""
    kind = column.type
    while isinstance(kind, TypeDecorator):
        kind = kind.impl_instance
    return kind


def _typed(column: ColumnElement[Any], name: str, text: str) -> Any:
    """``text`` as a value of the column's type; ``Invalid`` says what the field takes."""
    kind = _kind(column)
    if isinstance(kind, Boolean):
        lowered = text.strip().lower()
        if lowered not in ("true", "false", "1", "0"):
            raise Invalid(f"Filter on '{name}' takes True or False, not {text[:50]!r}.")
        return lowered in ("true", "1")
    if isinstance(kind, Integer | Float):
        try:
            number = float(text)
        except ValueError:
            raise Invalid(f"Filter on '{name}' takes a number, not {text[:50]!r}.") from None
        return int(number) if isinstance(kind, Integer) and number.is_integer() else number
    if isinstance(kind, DateTime):
        try:
            moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        except ValueError:
            raise Invalid(
                f"Filter on '{name}' takes an ISO 8601 date and time, not {text[:50]!r}."
            ) from None
        return moment if moment.tzinfo else moment.astimezone()
    return text


def _clause(column: ColumnElement[Any], name: str, modifier: str, wanted: str) -> Any:
    """The SQL of one filter, meaning what ``_matches`` means for the rendered value."""
    if modifier == "null":
        return column.is_(None)
    if modifier == "not_null":
        return column.is_not(None)
    texty = not isinstance(_kind(column), Boolean | Integer | Float | DateTime)
    if modifier in ("begins_with", "contains", "not_contains"):
        if not texty:
            raise Invalid(f"Filter '{name}__{modifier}' applies to text fields only.")
        if not wanted:
            return column.is_not(None) if modifier != "not_contains" else column.is_(None)
        if modifier == "begins_with":  # substr, not LIKE: case-sensitive on SQLite too
            return func.substr(column, 1, len(wanted)) == wanted
        holds = func.replace(column, wanted, "") != column  # case-sensitive everywhere
        return holds if modifier == "contains" else or_(column.is_(None), ~holds)
    if modifier in ("in", "between"):
        values = [_typed(column, name, part) for part in _parts(wanted)]
        if modifier == "in":
            return column.in_(values)
        if len(values) != 2:
            raise Invalid("A 'between' filter takes two comma-separated values.")
        return column.between(values[0], values[1])
    value = _typed(column, name, wanted)
    if modifier == "eq":
        return column == value
    if modifier == "ne":
        return or_(column.is_(None), column != value)
    operators: dict[str, Callable[[Any], Any]] = {
        "le": column.__le__,
        "lt": column.__lt__,
        "ge": column.__ge__,
        "gt": column.__gt__,
    }
    return operators[modifier](value)


def filter_query(
    query: Select[Any], columns: Mapping[str, ColumnElement[Any]], filters: Sequence[Filter]
) -> tuple[Select[Any], list[Filter]]:
    """``query`` with the filters on ``columns`` in its WHERE; the others, left for Python."""
    left = []
    for name, modifier, wanted in filters:
        column = columns.get(name)
        if column is None:
            left.append((name, modifier, wanted))
        else:
            query = query.where(_clause(column, name, modifier, wanted))
    return query, left


def page_query(
    session: Session,
    query: Select[Any],
    *,
    order: ColumnElement[Any],
    identity: ColumnElement[Any],
    limit: int,
    reverse: bool = False,
    last: Mapping[str, str] | None = None,
    order_name: str = "created_at",
) -> tuple[list[Any], dict[str, str] | None]:
    """One page of rows in (``order``, ``identity``) order, the cursor continuing after
    ``last``, all in SQL; the rows and the next cursor (None on the last page)."""
    if limit < 1 or limit > MAX_LIMIT:
        raise Invalid(f"limit must be between 1 and {MAX_LIMIT}.")
    if last and last.get("id"):
        after = _typed(order, f"last[{order_name}]", last.get(order_name, ""))
        beyond = (order < after) if reverse else (order > after)
        step = (identity < last["id"]) if reverse else (identity > last["id"])
        query = query.where(or_(beyond, and_(order == after, step)))
    ordering = (order.desc(), identity.desc()) if reverse else (order.asc(), identity.asc())
    rows = list(session.scalars(query.order_by(None).order_by(*ordering).limit(limit + 1)))
    page = rows[:limit]
    cursor = None
    if len(rows) > limit and page:
        stamp = getattr(page[-1], order_name)
        cursor = {"id": str(page[-1].id), order_name: stamp.isoformat()}
    return page, cursor
