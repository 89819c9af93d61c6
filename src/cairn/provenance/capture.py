"""Capture of a Python run's file I/O through ``sys.addaudithook`` (no change to the script).

The hook sees CPython's ``open`` (``builtins.open``, ``io.open``, ``os.open``), ``os.rename`` /
``os.replace``, ``os.remove``, ``shutil.copyfile`` (its opens) and ``shutil.rmtree``. An input
is hashed and copied to the run's staging folder when first opened, so a script that later
overwrites or deletes it still leaves the version it read; outputs are hashed at the end. I/O
done by C code itself (sqlite3, h5py, netCDF4) never passes the hook: ``--syscalls`` sees it.

Audit hooks cannot be removed, so one hook is installed per process and does nothing unless a
capture is active; a thread-local guard keeps the capture's own file access out of the record.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import site
import stat
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cairn.blobs import BlobRef, BlobStore, StagedBlob
from cairn.provenance._paths import NON_UTF8, absolute, stored_path

__all__ = [
    "DEFAULT_MAX_ARCHIVE_BYTES",
    "Capture",
    "CaptureOptions",
    "CapturedFile",
    "archive_files",
    "default_excluded_roots",
    "discard_staged",
    "snapshot",
]

DEFAULT_MAX_ARCHIVE_BYTES = 256 * 1024 * 1024
_CHUNK = 1 << 20
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
_EVENTS = frozenset({"open", "os.rename", "os.remove", "shutil.rmtree"})


def default_excluded_roots() -> list[str]:
    """The interpreter's own files and installed packages, and the kernel's pseudo files."""
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, "/proc", "/sys", "/dev"}
    roots.update(site.getsitepackages())
    user_site = site.getusersitepackages()
    if isinstance(user_site, str):
        roots.add(user_site)
    return sorted(os.path.normpath(r) for r in roots if r)


@dataclass
class CaptureOptions:
    """What to capture and keep. Patterns are ``fnmatch`` globs on the absolute path."""

    max_archive_bytes: int = DEFAULT_MAX_ARCHIVE_BYTES
    include: Sequence[str] = ()
    exclude: Sequence[str] = ("*/__pycache__/*", "*.pyc")
    excluded_roots: Sequence[str] = field(default_factory=default_excluded_roots)
    archive: bool = True

    def wanted(self, path: str) -> bool:
        for root in self.excluded_roots:
            if path == root or path.startswith(root.rstrip("/") + "/"):
                return False
        if any(fnmatch.fnmatchcase(path, pattern) for pattern in self.exclude):
            return False
        return not self.include or any(fnmatch.fnmatchcase(path, p) for p in self.include)


@dataclass
class CapturedFile:
    """One version of one file as a run saw it; ``staged`` holds a copy waiting for the store."""

    path: str
    access: str
    sha256: str | None = None
    size: int | None = None
    modified_at: datetime | None = None
    created_at: datetime | None = None
    staged: str | None = None
    flagged: str | None = None
    known: bool = False  # its content was in the blob store already
    data: bytes | None = field(default=None, repr=False)  # or its bytes, held in memory


def _stamp(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


_SMALL = 1 << 20
MEMORY_BUDGET = 64 * 1024 * 1024
"""Bytes of small files one capture holds in memory for the blob store to pack; past it,
small files are staged as files like large ones."""


@dataclass
class MemoryBudget:
    """What is left of a capture's ``MEMORY_BUDGET``."""

    left: int = MEMORY_BUDGET

    def take(self, size: int) -> bool:
        if size > self.left:
            return False
        self.left -= size
        return True


def snapshot(
    path: str,
    access: str,
    *,
    stage_dir: Path | None,
    max_archive_bytes: int,
    known: Callable[[str], bool] | None = None,
    memory: MemoryBudget | None = None,
) -> CapturedFile:
    """Hash ``path`` now and copy it into ``stage_dir`` when small enough to archive.

    A small file is read once into memory and kept only when ``known`` (the blob store's
    ``exists``) says its content is not stored yet: re-runs over the same inputs then cost one
    read per file, not a read and a write. Within ``memory`` it is kept as bytes, which the
    blob store packs with the run's other small files (creating a file is the expensive step
    on these disks, issue #13 section 8); past it, as a staged file."""
    shown, escaped = stored_path(path)
    record = CapturedFile(path=shown, access=access, flagged=NON_UTF8 if escaped else None)
    try:
        info = os.stat(path)
    except OSError:
        record.flagged = "gone before it could be hashed"
        return record
    if not stat.S_ISREG(info.st_mode):
        record.flagged = "not a regular file"
        return record
    record.size = info.st_size
    record.modified_at = _stamp(info.st_mtime)
    record.created_at = _stamp(info.st_ctime)
    keep = stage_dir is not None and info.st_size <= max_archive_bytes
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as source:
            if keep and info.st_size <= _SMALL:
                data = source.read()
                record.sha256 = hashlib.sha256(data).hexdigest()
                record.size = len(data)
                if known is not None and known(record.sha256):
                    record.known = True  # stored already: nothing to keep
                elif memory is not None and memory.take(len(data)):
                    record.data = data
                else:
                    assert stage_dir is not None
                    staged = stage_dir / f"{os.getpid()}-{threading.get_ident()}-{id(record)}"
                    with open(staged, "wb") as copy:
                        copy.write(data)
                    record.staged = str(staged)
                return record
            if keep:
                assert stage_dir is not None
                staged = stage_dir / f"{os.getpid()}-{threading.get_ident()}-{id(record)}"
                with open(staged, "wb") as copy:
                    while chunk := source.read(_CHUNK):
                        digest.update(chunk)
                        copy.write(chunk)
                record.staged = str(staged)
            else:
                while chunk := source.read(_CHUNK):
                    digest.update(chunk)
    except OSError as exc:
        record.flagged = f"unreadable: {exc.strerror or exc}"
        return record
    record.sha256 = digest.hexdigest()
    if stage_dir is not None and not keep:
        reason = f"too large to archive ({info.st_size} > {max_archive_bytes} bytes)"
        record.flagged = f"{record.flagged}; {reason}" if record.flagged else reason
    return record


class Capture:
    """The files one run reads and writes, collected by the process's audit hook.

    ``start()`` turns collection on, ``stop()`` turns it off and returns the used and generated
    versions (outputs hashed then). Only one capture is active per process at a time.
    """

    _active: Capture | None = None
    _installed = False
    _guard = threading.local()

    def __init__(
        self,
        options: CaptureOptions,
        *,
        stage_dir: Path | None,
        known: Callable[[str], bool] | None = None,
    ) -> None:
        self.options = options
        self.stage_dir = stage_dir
        self.known = known
        self.used: dict[str, CapturedFile] = {}
        self.written: dict[str, None] = {}
        self._wanted: dict[str, bool] = {}
        self.memory = MemoryBudget()

    # --- the hook ---------------------------------------------------------------------------

    @classmethod
    def _hook(cls, event: str, args: tuple[Any, ...]) -> None:
        capture = cls._active
        if capture is None or event not in _EVENTS or getattr(cls._guard, "busy", False):
            return
        cls._guard.busy = True
        try:
            capture._event(event, args)
        except Exception:  # the script must never fail because of its recorder
            pass
        finally:
            cls._guard.busy = False

    def _path(self, value: Any) -> str | None:
        if not isinstance(value, str | bytes | os.PathLike):
            return None  # a file descriptor
        path = absolute(value)
        wanted = self._wanted.get(path)
        if wanted is None:
            wanted = self._wanted[path] = self.options.wanted(path)
        return path if wanted else None

    def _event(self, event: str, args: tuple[Any, ...]) -> None:
        if event == "open":
            path = self._path(args[0])
            if path is None:
                return
            mode, flags = args[1], args[2] if len(args) > 2 else 0
            writes = (isinstance(flags, int) and flags & _WRITE_FLAGS) or (
                isinstance(mode, str) and any(c in mode for c in "wax+")
            )
            reads = not writes or (isinstance(flags, int) and flags & os.O_RDWR)
            if reads:
                self._read(path)
            if writes:
                self.written[path] = None
        elif event == "os.rename":
            source, target = self._path(args[0]), self._path(args[1])
            if source is not None:
                if source in self.written:
                    del self.written[source]  # a temporary name: its content moves on
                else:
                    self._read(source)
            if target is not None:
                self.written[target] = None
        elif event == "os.remove":
            path = self._path(args[0])
            if path is not None:
                self.written.pop(path, None)
        elif event == "shutil.rmtree":
            root = self._path(args[0])
            if root is not None:
                for path in [p for p in self.written if p.startswith(root + "/")]:
                    del self.written[path]

    def _read(self, path: str) -> None:
        if path in self.used or path in self.written or not os.path.isfile(path):
            return  # already kept, reading back the run's own output, or a folder
        self.used[path] = snapshot(
            path,
            "read",
            stage_dir=self.stage_dir,
            max_archive_bytes=self.options.max_archive_bytes,
            known=self.known,
            memory=self.memory,
        )

    # --- start and stop ---------------------------------------------------------------------

    def start(self) -> None:
        if Capture._active is not None:
            from cairn.provenance.errors import RecordingActive

            raise RecordingActive("A recording is already active in this process.")
        if not Capture._installed:
            sys.addaudithook(Capture._hook)
            Capture._installed = True
        Capture._active = self

    def stop(self) -> tuple[list[CapturedFile], list[CapturedFile]]:
        """Stop collecting; return ``(used, generated)`` with the outputs hashed now."""
        if Capture._active is self:
            Capture._active = None
        generated = [self._final(path) for path in self.written]
        return list(self.used.values()), generated

    def _final(self, path: str) -> CapturedFile:
        if not os.path.lexists(path):
            shown, _ = stored_path(path)
            return CapturedFile(path=shown, access="write", flagged="removed before the run ended")
        return snapshot(
            path,
            "write",
            stage_dir=self.stage_dir,
            max_archive_bytes=self.options.max_archive_bytes,
            known=self.known,
            memory=self.memory,
        )


def discard_staged(files: Iterable[CapturedFile]) -> None:
    """Remove staged copies that were not handed to the blob store."""
    for item in files:
        if item.staged and os.path.exists(item.staged):
            os.unlink(item.staged)


def archive_files(blobs: BlobStore, files: Iterable[CapturedFile]) -> dict[str, bool]:
    """Hand the staged copies and held bytes to the blob store, one per content (deduplicated
    by hash), as one batch: small contents are packed, files moved in, one sync.

    Runs outside any transaction (it is slow); returns which hashes are now stored.
    """
    kept: dict[str, bool] = {}
    batch: list[StagedBlob] = []
    leftovers: list[CapturedFile] = []
    for item in files:
        if item.sha256 is not None and item.known:
            kept[item.sha256] = True
        if item.sha256 is None or (item.staged is None and item.data is None):
            continue
        if item.sha256 in kept or blobs.exists(item.sha256):
            kept[item.sha256] = True
            leftovers.append(item)
            item.data = None
            continue
        kept[item.sha256] = True
        ref = BlobRef(item.sha256, item.size or 0)
        batch.append(StagedBlob(ref, path=item.staged, data=item.data))
        item.staged, item.data = None, None
    if batch:
        blobs.ingest(batch)
    discard_staged(leftovers)
    return kept
