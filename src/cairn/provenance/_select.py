"""RunManager's run selectors (``run_id``, ``script``, ``start``/``end``, ``tag``, ``error``,
``seq``, ``order_by``) turned into one SQL query, scoped to a store or organisations."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, or_, select
from sqlalchemy.orm import InstrumentedAttribute

from cairn.errors import Invalid
from cairn.provenance.models import Run, RunTag

__all__ = ["ORDER_COLUMNS", "RunSelector", "Scope", "period", "select_runs_query"]

ORDER_COLUMNS = {
    "seq": Run.seq,
    "run_id": Run.id,
    "runid": Run.id,
    "script": Run.script,
    "start_time": Run.started_at,
    "starttime": Run.started_at,
    "end_time": Run.ended_at,
    "endtime": Run.ended_at,
    "error_message": Run.error_message,
    "errormessage": Run.error_message,
    "status": Run.status,
}
"""``order_by`` names: cairn's snake_case and RunManager's camelCase (``startTime``)."""

_DATE = re.compile(
    r"(?P<y>\d{4})(?:-(?P<m>\d{1,2})(?:-(?P<d>\d{1,2})"
    r"(?:[ T](?P<H>\d{1,2})(?::(?P<M>\d{1,2})(?::(?P<S>\d{1,2}))?)?)?)?)?"
)


@dataclass(frozen=True)
class Scope:
    """Whose runs: the local store's (``organisations`` None) or these organisations'."""

    organisations: tuple[str, ...] | None = None

    def clause(self, column: InstrumentedAttribute[str | None]) -> ColumnElement[bool]:
        if self.organisations is None:
            return column.is_(None)
        return column.in_(self.organisations)

    def sql(self, alias: str) -> tuple[str, dict[str, object]]:
        """The same test as SQL text on ``alias.organisation_id``, and its parameters
        (``:orgs``, to bind with ``expanding=True``)."""
        if self.organisations is None:
            return f"{alias}.organisation_id IS NULL", {}
        return f"{alias}.organisation_id IN :orgs", {"orgs": list(self.organisations)}


LOCAL = Scope()


@dataclass(frozen=True)
class RunSelector:
    """Which runs. Every given field must match; ``tag`` values are OR-ed substrings."""

    run_id: str | None = None
    script: str | None = None
    start: str | None = None
    end: str | None = None
    tag: tuple[str, ...] = ()
    error: str | None = None
    seq: str | None = None
    order_by: str = "-start_time"

    def is_empty(self) -> bool:
        return not any(
            (self.run_id, self.script, self.start, self.end, self.tag, self.error, self.seq)
        )


def period(text: str) -> tuple[datetime, datetime]:
    """The UTC period a possibly truncated date names: ``2026`` is the whole year,
    ``2026-11-05 14`` one hour. Returns ``(first instant, first instant after)``."""
    match = _DATE.fullmatch(text.strip())
    if match is None:
        raise Invalid(
            f"not a date: {text!r} (use YYYY, YYYY-MM, YYYY-MM-DD or 'YYYY-MM-DD HH:MM:SS')"
        )
    parts = [int(v) if v else None for v in match.group("y", "m", "d", "H", "M", "S")]
    given = [p for p in parts if p is not None]
    fields = [*given, *[1, 1, 0, 0, 0][len(given) - 1 :]][:6]
    try:
        first = datetime(
            fields[0], fields[1], fields[2], fields[3], fields[4], fields[5], tzinfo=UTC
        )
        after = _next(first, len(given))
    except ValueError as exc:
        raise Invalid(f"not a date: {text!r} ({exc})") from exc
    return first, after


def _next(first: datetime, depth: int) -> datetime:
    from datetime import timedelta

    if depth == 1:
        return first.replace(year=first.year + 1)
    if depth == 2:
        return (
            first.replace(year=first.year + 1, month=1)
            if first.month == 12
            else first.replace(month=first.month + 1)
        )
    step = {3: timedelta(days=1), 4: timedelta(hours=1), 5: timedelta(minutes=1)}
    return first + step.get(depth, timedelta(seconds=1))


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _seq_clause(text: str) -> ColumnElement[bool]:
    match = re.fullmatch(r"\s*(\d{1,9})\s*(?::\s*(\d{1,9})\s*)?", text)
    if match is None:
        raise Invalid(f"not a run number or range: {text!r} (use 3 or 1:10)")
    low = int(match.group(1))
    high = int(match.group(2)) if match.group(2) else low
    if high < low:
        raise Invalid(f"empty run number range: {text!r}")
    return Run.seq.between(low, high)


def _order(text: str) -> list[Any]:
    name = text.strip()
    descending = name.startswith("-")
    name = name.lstrip("+-").lower()
    column = ORDER_COLUMNS.get(name)
    if column is None:
        raise Invalid(
            f"cannot order by {text!r}; use one of {', '.join(sorted(set(ORDER_COLUMNS)))}"
        )
    return [column.desc() if descending else column.asc(), Run.seq.desc()]


def select_runs_query(selector: RunSelector, scope: Scope) -> Select[Any]:
    clauses: list[ColumnElement[bool]] = [scope.clause(Run.organisation_id)]
    if selector.run_id:
        if "*" in selector.run_id:
            pattern = _like(selector.run_id).replace("*", "%")
            clauses.append(Run.id.like(pattern, escape="\\"))
        else:
            clauses.append(Run.id == selector.run_id.strip())
    if selector.script:
        clauses.append(Run.script.like(f"%{_like(selector.script)}%", escape="\\"))
    if selector.start:
        clauses.append(Run.started_at >= period(selector.start)[0])
    if selector.end:
        clauses.append(Run.started_at < period(selector.end)[1])
    if selector.tag:
        matches = [RunTag.tag.like(f"%{_like(t)}%", escape="\\") for t in selector.tag]
        clauses.append(exists().where(and_(RunTag.run_seq == Run.seq, or_(*matches))))
    if selector.error:
        clauses.append(Run.error_message.like(f"%{_like(selector.error)}%", escape="\\"))
    if selector.seq:
        clauses.append(_seq_clause(selector.seq))
    return select(Run).where(*clauses).order_by(*_order(selector.order_by))


def as_tuple(values: Sequence[str] | str | None) -> tuple[str, ...]:
    if values is None:
        return ()
    if isinstance(values, str):
        return (values,)
    return tuple(values)
