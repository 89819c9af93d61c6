"""Schedules: the SDK's schedule fields parsed leniently, cron expressions, and when runs fall due.

A process runs once (``run_once``: now, or at ``repeat_start`` when that is in the future) or
on a schedule (``run_schedule``): the first run at ``repeat_start`` plus ``repeat_offset``, then
every ``repeat_gap`` (a ``dateutil.relativedelta``, so "every month" keeps the day of the month)
or at every time a ``cron`` expression names (cairn's own API and CLI), until ``repeat_end`` or
until ``repeat_count`` runs have started (0: no limit).

The SDK sends ``repeat_gap``/``repeat_offset`` as JSON text (``'{"days": 1}'``) when it creates
a process and echoes them back as Python text (``relativedelta(days=+1)``,
``datetime.timedelta(seconds=3600)``) when it updates one (fusion-platform-notes.md §3); both
forms, a mapping and a number of seconds are accepted here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from croniter import croniter
from dateutil.relativedelta import relativedelta

from cairn.errors import Invalid

__all__ = [
    "MIN_GAP",
    "RUN_TYPES",
    "TOLERANCE",
    "first_due",
    "gap_delta",
    "next_due",
    "parse_cron",
    "parse_gap",
    "parse_offset",
    "parse_time",
]

RUN_TYPES = ("run_once", "run_schedule")
GAP_UNITS = ("years", "months", "weeks", "days", "hours", "minutes", "seconds")
OFFSET_UNITS = ("weeks", "days", "hours", "minutes", "seconds")
# A schedule cannot fire more often than this: a tighter one would start runs faster than
# the scheduler looks (and charge for each).
MIN_GAP = timedelta(minutes=1)
# How far in the past a start may lie and still count as "now" (the SDK sends back the
# template's time, made moments before the create).
TOLERANCE = timedelta(minutes=5)
# Far enough to skip a long outage's missed runs; bounds the loop over a tiny gap.
_MAX_STEPS = 1_000_000

_PYTHON_CALL = re.compile(r"^\s*(?:[\w.]*\.)?(?:relativedelta|timedelta)\((?P<args>.*)\)\s*$")
_ARG = re.compile(r"^\s*(?P<name>\w+)\s*=\s*(?P<value>[+-]?\d+(?:\.\d+)?)\s*$")
_CLOCK = re.compile(r"^\s*(?:(?P<days>-?\d+) days?, )?(?P<h>\d+):(?P<m>\d\d):(?P<s>\d\d)\s*$")


def _fields(value: Any, units: tuple[str, ...], what: str) -> dict[str, float]:
    """A mapping of units to numbers from a mapping, JSON text, Python call text or seconds."""
    if isinstance(value, bool):
        raise Invalid(f'{what} is a duration such as {{"days": 1}}.')
    if isinstance(value, int | float):
        return {"seconds": float(value)}
    if isinstance(value, str):
        text = value.strip()
        call = _PYTHON_CALL.match(text)
        clock = _CLOCK.match(text)
        if call is not None:
            found: dict[str, Any] = {}
            args = call.group("args").strip()
            for part in args.split(",") if args else []:
                arg = _ARG.match(part)
                if arg is None:
                    raise Invalid(f"{what}: cannot read {part.strip()!r}.")
                found[arg.group("name")] = float(arg.group("value"))
            value = found
        elif clock is not None:  # str(timedelta): "1 day, 2:00:00"
            seconds = int(clock["h"]) * 3600 + int(clock["m"]) * 60 + int(clock["s"])
            return {"days": float(clock["days"] or 0), "seconds": float(seconds)}
        else:
            try:
                value = json.loads(text)
            except ValueError:
                raise Invalid(f'{what} is a duration such as {{"days": 1}}.') from None
            if isinstance(value, int | float) and not isinstance(value, bool):
                return {"seconds": float(value)}
    if not isinstance(value, Mapping):
        raise Invalid(f'{what} is a duration such as {{"days": 1}}.')
    # relativedelta's repr has "microseconds" and plural units; a singular unit is an absolute
    # value there (day=1: the first of the month), which a gap cannot be.
    unknown = set(value) - set(units) - {"microseconds"}
    if unknown:
        names = ", ".join(sorted(unknown))
        raise Invalid(f"{what}: unknown unit(s) {names}; use {', '.join(units)}.")
    fields: dict[str, float] = {}
    for unit, amount in value.items():
        if isinstance(amount, bool) or not isinstance(amount, int | float):
            raise Invalid(f"{what}: {unit} is a number.")
        if unit == "microseconds":
            continue
        if amount:
            fields[str(unit)] = float(amount)
    return fields


def parse_gap(value: Any) -> dict[str, int] | None:
    """``repeat_gap`` as stored: whole relativedelta units, or None for no gap."""
    if value is None or value == "" or value == {}:
        return None
    fields = _fields(value, GAP_UNITS, "repeat_gap")
    if any(amount != int(amount) for amount in fields.values()):
        raise Invalid("repeat_gap counts whole units (days, hours ...).")
    whole = {unit: int(amount) for unit, amount in fields.items()}
    if not whole:
        return None
    if any(amount < 0 for amount in whole.values()):
        raise Invalid("repeat_gap must be positive.")
    start = datetime(2000, 1, 1)
    if start + relativedelta(**whole) - start < MIN_GAP:
        raise Invalid(f"repeat_gap must be at least {int(MIN_GAP.total_seconds() // 60)} minute.")
    return whole


def parse_offset(value: Any) -> int | None:
    """``repeat_offset`` as stored: whole seconds after ``repeat_start``, or None."""
    if value is None or value == "" or value == {}:
        return None
    fields = _fields(value, OFFSET_UNITS, "repeat_offset")
    seconds = int(timedelta(**fields).total_seconds())
    if seconds < 0:
        raise Invalid("repeat_offset must not be negative.")
    return seconds or None


def parse_cron(value: Any) -> str | None:
    """A cron expression (five fields, as croniter reads them), or None."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 200 or not croniter.is_valid(value):
        raise Invalid(
            f"{value!r} is not a cron expression (five fields: minute hour day month weekday)."
        )
    return value.strip()


def parse_time(value: Any, what: str) -> datetime | None:
    """An ISO 8601 time (naive ones are local time), or None."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise Invalid(f"{what} must be an ISO 8601 date and time.") from None
    if not isinstance(value, datetime):
        raise Invalid(f"{what} must be an ISO 8601 date and time.")
    return value if value.tzinfo is not None else value.astimezone()


def gap_delta(gap: Mapping[str, int]) -> relativedelta:
    return relativedelta(**gap)


def _cron_after(expression: str, moment: datetime) -> datetime:
    found = croniter(expression, moment).get_next(datetime)
    assert isinstance(found, datetime)
    return found


def first_due(
    *,
    run_type: str,
    start: datetime,
    offset: int | None,
    gap: Mapping[str, int] | None,
    cron: str | None,
    now: datetime,
) -> datetime:
    """When an armed process's first run falls due: never before ``now`` minus the tolerance
    (a start further back skips to the schedule's next time at or after now)."""
    due = start + timedelta(seconds=offset or 0)
    floor = now - TOLERANCE
    if run_type == "run_once":
        return max(due, now) if due >= floor else now
    if cron:
        return _cron_after(cron, max(due, floor) - timedelta(seconds=1))
    assert gap is not None
    step = gap_delta(gap)
    for count in range(_MAX_STEPS):
        candidate = due + step * count if count else due
        if candidate >= floor:
            return candidate
    raise Invalid("repeat_start is too far in the past for so short a repeat_gap.")


def next_due(
    *,
    run_type: str,
    due: datetime,
    gap: Mapping[str, int] | None,
    cron: str | None,
    end: datetime | None,
    count: int,
    runs_done: int,
    now: datetime,
) -> datetime | None:
    """The run after the one due at ``due`` (``runs_done`` counts it), or None when the
    schedule has ended. Runs missed while no server ran are merged into one, run now."""
    if run_type != "run_schedule" or (count and runs_done >= count):
        return None
    if cron:
        following = _cron_after(cron, max(due, now - timedelta(seconds=1)))
    else:
        assert gap is not None
        step = gap_delta(gap)
        following = due + step
        for _ in range(_MAX_STEPS):
            if following > now - MIN_GAP:
                break
            following = following + step
    if end is not None and following > end:
        return None
    return following
