"""Leftovers of interrupted work: temporary files and folders older than a grace period."""

from __future__ import annotations

import os
import shutil
import time
from datetime import timedelta
from pathlib import Path

__all__ = ["remove_stale"]


def remove_stale(folder: Path, *, older_than: timedelta, dry_run: bool = False) -> list[str]:
    """Remove the entries of ``folder`` last modified before ``now - older_than``.

    A crashed put or upload leaves its temporary file or staging folder behind; live ones are
    younger than any sensible grace period. Returns the names removed (or, on a dry run, that
    would be). A missing folder holds nothing stale.
    """
    cutoff = time.time() - older_than.total_seconds()
    removed = []
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return []
    for entry in sorted(entries, key=lambda e: e.name):
        try:
            if entry.stat(follow_symlinks=False).st_mtime >= cutoff:
                continue
            if not dry_run:
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)
        except FileNotFoundError:  # finished (or removed) meanwhile
            continue
        removed.append(entry.name)
    return removed
