"""A run being recorded (``RunDraft``) and the values of its ``prov_runs`` row.

Kept apart from ``service`` so that recording imports no SQLAlchemy: the ORM service and the
SQLite writer (``_sqlite``) both store a draft through :func:`run_values` (issue #14).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cairn.provenance._environment import Environment, environment
from cairn.provenance.capture import CapturedFile

__all__ = ["RunDraft", "run_values", "utcnow"]


def utcnow() -> datetime:
    """``cairn.db.utcnow``, without importing ``cairn.db``'s SQLAlchemy modules."""
    return datetime.now(UTC)


@dataclass
class RunDraft:
    """A run being recorded, before (or while) it is stored."""

    kind: str = "script"
    script: str | None = None
    script_sha256: str | None = None
    arguments: list[str] = field(default_factory=list)
    cwd: str | None = None
    tags: list[str] = field(default_factory=list)
    started_at: datetime = field(default_factory=utcnow)
    ended_at: datetime | None = None
    status: str = "running"
    exit_code: int | None = None
    error_message: str | None = None
    traceback: str | None = None
    console_log: str | None = None
    env: Environment | None = None
    used: list[CapturedFile] = field(default_factory=list)
    generated: list[CapturedFile] = field(default_factory=list)
    archived: dict[str, bool] = field(default_factory=dict)  # sha256 -> kept in the store


def run_values(draft: RunDraft) -> dict[str, object]:
    """The run's columns (all but ``seq``, ``id``, ``organisation_id``, ``science_metadata``)."""
    env = draft.env or environment()
    return {
        "kind": draft.kind,
        "script": draft.script,
        "script_sha256": draft.script_sha256,
        "arguments": json.dumps(draft.arguments),
        "cwd": draft.cwd,
        "started_at": draft.started_at,
        "ended_at": draft.ended_at,
        "status": draft.status,
        "exit_code": draft.exit_code,
        "error_message": draft.error_message,
        "traceback": draft.traceback,
        "username": env.user,
        "host": env.host,
        "os": env.os,
        "interpreter": env.interpreter,
        "interpreter_version": env.interpreter_version,
        "packages": env.packages,
        "console_log": draft.console_log,
    }
