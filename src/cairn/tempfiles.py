"""Scratch files and folders that name their owning process, and the leftovers of interrupted
work: found (``cairn check``), removed when their owner has stopped (``cairn serve`` at start)
or when old (``cairn admin gc``).

A scratch name is ``<prefix><pid>-<start>-<random>``, e.g. ``upload-4711-912345-k2j3h4``, where
``start`` is the process's start time in clock ticks since boot (``/proc/<pid>/stat``), so a
process id reused by another program does not keep a dead process's files alive. Without
``/proc`` the start is 0 and the process id alone decides.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from pathlib import Path

__all__ = [
    "Leftover",
    "find_leftovers",
    "owner_alive",
    "remove_orphans",
    "remove_stale",
    "scratch_dir",
    "scratch_file",
]

_PREFIX = re.compile(r"[a-z]+-")
_OWNED = re.compile(r"[a-z]+-(?P<pid>\d+)-(?P<start>\d+)-")
_PROC = Path("/proc")


def _start_ticks(pid: int) -> int | None:
    """When process ``pid`` started, in clock ticks since boot; None if no such process."""
    try:
        stat = (_PROC / str(pid) / "stat").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may hold spaces and parentheses: count fields after the last
    # ")". Field 3 (state) is then the first, field 22 (starttime) the twentieth.
    return int(stat[stat.rindex(b")") + 2 :].split()[19])


@lru_cache(maxsize=4)
def _owner_tag(pid: int) -> str:
    # Keyed by pid so that a forked child tags its own files.
    return f"{pid}-{_start_ticks(pid) or 0}"


def _check_prefix(prefix: str) -> None:
    if not _PREFIX.fullmatch(prefix):
        raise ValueError(f"scratch prefix must be lowercase letters and a dash, not {prefix!r}")


def scratch_file(work_dir: Path, prefix: str, suffix: str = "") -> tuple[int, Path]:
    """Create a scratch file in ``work_dir`` owned by this process, like ``tempfile.mkstemp``.

    Args:
        work_dir: the scratch folder (``Settings.work_dir``); created if missing.
        prefix: what the file is for, lowercase letters and a dash (``"upload-"``).
        suffix: appended to the name (``".tar.gz"``).

    Returns:
        An open file descriptor (the caller closes it) and the file's path.
    """
    _check_prefix(prefix)
    work_dir.mkdir(parents=True, exist_ok=True)
    owner = _owner_tag(os.getpid())
    fd, name = tempfile.mkstemp(prefix=f"{prefix}{owner}-", suffix=suffix, dir=work_dir)
    return fd, Path(name)


def scratch_dir(work_dir: Path, prefix: str) -> Path:
    """Create a scratch folder in ``work_dir`` owned by this process, like ``tempfile.mkdtemp``."""
    _check_prefix(prefix)
    work_dir.mkdir(parents=True, exist_ok=True)
    owner = _owner_tag(os.getpid())
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{owner}-", dir=work_dir))


def owner_alive(pid: int, start: int) -> bool:
    """Whether the process that started as (``pid``, ``start``) still runs."""
    ticks = _start_ticks(pid)
    if ticks is not None:
        return ticks == start
    if (_PROC / "self" / "stat").exists():
        return False  # /proc works and lists no such process
    if os.name == "nt":
        return True  # os.kill(pid, 0) would signal it; never judge a Windows process dead
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


@dataclass(frozen=True)
class Leftover:
    """An entry of a scratch folder that no running process owns."""

    name: str
    bytes: int
    """Size; for a folder, of everything in it."""
    age_seconds: float
    """Since it was last modified."""
    owner_pid: int | None
    """The stopped process that made it; None for a name not made by :func:`scratch_file` or
    :func:`scratch_dir` (an older cairn, or by hand), whose owner is unknown."""


def _owner(name: str) -> tuple[int, int] | None:
    match = _OWNED.match(name)
    return (int(match["pid"]), int(match["start"])) if match else None


def _size(entry: os.DirEntry[str]) -> int:
    if not entry.is_dir(follow_symlinks=False):
        return entry.stat(follow_symlinks=False).st_size
    total = 0
    for root, dirs, files in os.walk(entry.path):
        for name in dirs + files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except FileNotFoundError:
                continue
    return total


def _entries(folder: Path) -> list[os.DirEntry[str]]:
    try:
        return sorted(os.scandir(folder), key=lambda e: e.name)
    except FileNotFoundError:
        return []


def find_leftovers(work_dir: Path) -> list[Leftover]:
    """The entries of ``work_dir`` that no running process owns, by name; deletes nothing."""
    now = time.time()
    found = []
    for entry in _entries(work_dir):
        owner = _owner(entry.name)
        if owner is not None and owner_alive(*owner):
            continue
        try:
            modified = entry.stat(follow_symlinks=False).st_mtime
            size = _size(entry)
        except FileNotFoundError:
            continue  # finished meanwhile
        found.append(
            Leftover(
                name=entry.name,
                bytes=size,
                age_seconds=max(0.0, now - modified),
                owner_pid=owner[0] if owner else None,
            )
        )
    return found


def _remove(entry: os.DirEntry[str]) -> bool:
    """Remove ``entry``; False if it was gone already."""
    try:
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path)
        else:
            os.unlink(entry.path)
    except FileNotFoundError:
        return False
    return True


def _stale(entry: os.DirEntry[str], cutoff: float | None) -> bool:
    """Owned by a stopped process, or (owner unknown) modified before ``cutoff`` if given."""
    owner = _owner(entry.name)
    if owner is not None:
        return not owner_alive(*owner)
    return cutoff is not None and entry.stat(follow_symlinks=False).st_mtime < cutoff


def _remove_stale_entries(folder: Path, cutoff: float | None, dry_run: bool) -> list[str]:
    removed = []
    for entry in _entries(folder):
        try:
            if not _stale(entry, cutoff):
                continue
        except FileNotFoundError:  # finished (or removed) meanwhile
            continue
        if dry_run or _remove(entry):
            removed.append(entry.name)
    return removed


def remove_orphans(work_dir: Path, *, dry_run: bool = False) -> list[str]:
    """Remove the scratch entries of ``work_dir`` whose owning process has stopped.

    Safe while other cairn processes work in the same folder: their entries name a running
    owner and stay. Entries without an owner in their name are left to :func:`remove_stale`.
    Returns the names removed (on a dry run, that would be).
    """
    return _remove_stale_entries(work_dir, None, dry_run)


def remove_stale(folder: Path, *, older_than: timedelta, dry_run: bool = False) -> list[str]:
    """Remove the entries of ``folder`` that are stale: owned by a stopped process, or (owner
    unknown) last modified before ``now - older_than``; never one a running process owns.

    A crashed put or upload leaves its temporary file or staging folder behind; live ones are
    younger than any sensible grace period, or name their running owner. Returns the names
    removed (or, on a dry run, that would be). A missing folder holds nothing stale.
    """
    return _remove_stale_entries(folder, time.time() - older_than.total_seconds(), dry_run)
