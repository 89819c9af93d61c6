"""Provenance errors, each a kind from ``cairn.errors`` (so the API and CLI map them)."""

from __future__ import annotations

from cairn.errors import Conflict, Invalid, NotFound

__all__ = [
    "NoSelector",
    "NotArchived",
    "NotPublished",
    "NotRecording",
    "RecordingActive",
    "RunNotFound",
]


class RunNotFound(NotFound):
    code = "run-not-found"
    title = "Run not found"


class NotArchived(NotFound):
    """The version is recorded by hash only (too large, excluded or unreadable)."""

    code = "not-archived"
    title = "Version not archived"


class NoSelector(Invalid):
    """Deleting with no selector would delete every run: refused, as RunManager does."""

    code = "no-selector"
    title = "No selector given"


class NotPublished(Invalid):
    """The run has no published package (sealing one needs it)."""

    code = "not-published"
    title = "Run not published"


class RecordingActive(Conflict):
    code = "recording-active"
    title = "A recording is already active"


class NotRecording(Conflict):
    code = "not-recording"
    title = "No recording is active"
