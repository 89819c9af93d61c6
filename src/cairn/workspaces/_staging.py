"""The staging area of one upload: target paths, name clashes, writing, pruning, the top level.

Creating a file is the most expensive step of an upload on these disks (issue #13 section 8),
so a small member (up to ``SMALL_MAX``) is not given a file: it is kept in memory while the
upload's in-memory bytes stay within ``MEMORY_BUDGET``, and appended to one spool file in the
staging folder after that, or to the blob store's own spool when it has one (the local store:
a pack that ``ingest`` adopts, so those bytes are written once, not spooled and then packed).
Only large members are streamed to files of their own, as are archives to unpack (zip, tar and
the compressors need a file). Folders are still created for every member, so that names and
folders clash exactly as on disk.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from cairn.blobs import BlobRef, StagedBlob
from cairn.blobs import Spool as BlobSpool
from cairn.workspaces import _checks as ck
from cairn.workspaces import _filetypes as ft
from cairn.workspaces._budget import Budget
from cairn.workspaces._findings import FindingLog
from cairn.workspaces._streams import Meter, Reader, map_read_errors

__all__ = ["MEMORY_BUDGET", "SMALL_MAX", "Entry", "Spool", "StagingFolder"]

SMALL_MAX = 1024 * 1024
"""Members up to this size get no staging file of their own (and are packed as blobs)."""
MEMORY_BUDGET = 8 * 1024 * 1024
"""Bytes of small members one upload keeps in memory; the rest go to the spool file."""


class Spool:
    """One append-only file in staging holding small members' bytes, by offset (a
    ``cairn.blobs.Spool`` for a blob store without one of its own)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = -1
        self._size = 0

    def append(self, sha256: str, data: bytes) -> int:
        del sha256  # a plain file: only the bytes
        if self._fd < 0:
            flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            self._fd = os.open(self.path, flags, 0o600)
        offset = position = self._size
        view = memoryview(data)
        while view:
            written = os.pwrite(self._fd, view, position)
            view, position = view[written:], position + written
        self._size = position
        return offset

    def read(self, offset: int, size: int) -> bytes:
        if self._fd >= 0:
            return os.pread(self._fd, size, offset)
        fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            return os.pread(fd, size, offset)
        finally:
            os.close(fd)

    def close(self) -> None:
        """Close the writing descriptor; reads open the file each time from then on."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def discard(self) -> None:
        """Nothing to do: the file goes with the staging folder."""


@dataclass
class Entry:
    """One staged file: its bytes are in its own file, in memory, or in the spool.

    Whatever holds them, an entry can be read and ingested into the blob store the same way
    (``read_bytes``, ``blob``), so files set aside (quarantine) can take the same path.
    """

    local_path: Path | None  # its own file in staging (a large member), else None
    size: int
    sha256: str
    file_type: str
    origin: tuple[str, ...]  # original member path, to tell duplicates from name clashes
    mtime: int | None = None  # the member's own modification time, if it had one
    data: bytes | None = None  # in memory
    spool: BlobSpool | None = None  # or in the spool, at ``offset``
    offset: int = 0

    def read_bytes(self) -> bytes:
        if self.data is not None:
            return self.data
        if self.spool is not None:
            return self.spool.read(self.offset, self.size)
        assert self.local_path is not None
        return self.local_path.read_bytes()

    def blob(self) -> StagedBlob:
        """What the blob store ingests: the file (moved in) or the bytes (packed)."""
        ref = BlobRef(self.sha256, self.size)
        if self.local_path is not None:
            return StagedBlob(ref, path=str(self.local_path))
        if self.data is not None:
            return StagedBlob(ref, data=self.data)
        assert self.spool is not None
        return StagedBlob(ref, data=self.read_bytes, spooled=(self.spool, self.offset))

    # A removed file kept for the quarantine (issue #13, section 3): (rule, reason).
    quarantine: tuple[str, str] | None = None


@dataclass
class StagingFolder:
    """The files and folders written so far under ``root``, by public path.

    Nothing is written outside ``root``: folders are created here and verified, files are opened
    with ``O_NOFOLLOW | O_EXCL``, and no link is ever made.
    """

    root: Path
    budget: Budget
    log: FindingLog
    entries: dict[str, Entry] = field(default_factory=dict)
    removed: list[tuple[str, Entry]] = field(default_factory=list)  # quarantined, kept aside
    dirs: set[str] = field(default_factory=set)
    total: int = 0  # sum of the entries' sizes
    in_memory: int = 0  # bytes of entries held in memory
    spool: BlobSpool | None = None  # the blob store's, else a file here made when needed
    _temp_counter: int = 0

    def add(self, public: str, entry: Entry) -> None:
        self.entries[public] = entry
        self.total += entry.size

    def forget(self, public: str) -> None:
        entry = self.entries.pop(public)
        self.total -= entry.size

    def discard(self, entry: Entry) -> None:
        """Drop an entry's bytes (not added, or forgotten): its file, or its memory."""
        if entry.local_path is not None:
            entry.local_path.unlink()
        elif entry.data is not None:
            self.in_memory -= len(entry.data)
        entry.data = None

    def hold(self, entry: Entry, data: bytes) -> None:
        """Keep ``data`` as the content of ``entry`` (no file of its own): in memory while
        the budget allows, else in the spool. ``entry.sha256`` must be the hash of ``data``."""
        if entry.data is not None:
            self.in_memory -= len(entry.data)
        entry.local_path, entry.data, entry.spool = None, None, None
        if self.in_memory + len(data) <= MEMORY_BUDGET:
            entry.data = data
            self.in_memory += len(data)
            return
        if self.spool is None:
            self.spool = Spool(self.root / ".cairn-spool")
        entry.spool, entry.offset = self.spool, self.spool.append(entry.sha256, data)

    def materialize(self, public: str, entry: Entry) -> None:
        """Give an entry held in memory or the spool a file of its own at ``public``."""
        if entry.local_path is not None:
            return
        data = entry.read_bytes()
        target = self.target(public)
        _write_new(target, data)
        self.discard(entry)
        entry.local_path, entry.spool = Path(target), None

    def close(self) -> None:
        if self.spool is not None:
            self.spool.close()

    def set_aside(self, public: str) -> Path:
        """Move a file out of the public namespace (hidden names are never staged) and forget it.

        Its folder stays, so the members of a nested archive may reuse its name.
        """
        self._temp_counter += 1
        temp = self.root / f".cairn-unpack-{self._temp_counter}"
        entry = self.entries[public]
        if entry.local_path is not None:
            os.rename(entry.local_path, temp)
        else:
            _write_new(str(temp), entry.read_bytes())
            self.discard(entry)
        self.forget(public)
        return temp

    def aside_path(self) -> Path:
        """A fresh name outside the public namespace (hidden names are never staged)."""
        self._temp_counter += 1
        return self.root / f".cairn-removed-{self._temp_counter}"

    def quarantine(self, public: str, entry: Entry, rule: str, reason: str) -> None:
        """Keep a file a rule removed, written aside (``write(aside=True)``), for the quarantine."""
        self.removed.append((public, replace(entry, quarantine=(rule, reason))))

    def remove_staged(self, public: str, rule: str, reason: str) -> None:
        """Take a staged file out of the upload and keep it for the quarantine."""
        entry = self.entries[public]
        self.forget(public)
        if entry.local_path is not None:  # its own file: moved out of the public namespace
            aside = self.aside_path()
            os.rename(entry.local_path, aside)
            entry = replace(entry, local_path=aside)
        self.quarantine(public, entry, rule, reason)  # in memory or the spool: stays there

    def keep_original(
        self, public: str, entry: Entry, data: bytes | Path, rule: str, reason: str
    ) -> None:
        """Keep the bytes a repair is about to replace, for the quarantine: ``data`` is the
        original moved aside (a file), or the entry's own staged bytes, whose hash is known.

        Bytes in memory or in the spool stay where they are, shared with the entry until the
        repair replaces its content: no copy, no second hash, no second spool record."""
        if isinstance(data, Path):
            kept = replace(entry, local_path=data, data=None, spool=None)
        elif len(data) != entry.size:
            raise ValueError("keep_original takes the entry's own bytes")
        elif entry.local_path is None:
            kept = replace(entry)
            if kept.data is not None:
                self.in_memory += len(kept.data)  # held twice until the entry lets go
        else:  # its file is about to be rewritten: the original is held like a small member
            kept = replace(entry, local_path=None, data=None, spool=None)
            self.hold(kept, data)
        self.quarantine(public, kept, rule, reason)

    def resolve_clash(self, member: ck.MemberPath, name: str) -> str | None:
        """The public path to write, after handling clashes with files already staged."""
        log = self.log
        parts = member.parts
        for index in range(1, len(parts)):
            prefix = "/".join(parts[:index])
            if prefix in self.entries:
                log.add(
                    "fatal",
                    None,
                    ck.msg_refused(
                        ck.display_name(name),
                        f"a file named '{prefix}' is in the way of its folder",
                    ),
                )
                return None
        public = member.public
        if public in self.dirs:
            shown = ck.display_name(name)
            log.add("fatal", None, ck.msg_refused(shown, f"a folder named '{public}' exists"))
            return None
        existing = self.entries.get(public)
        if existing is None:
            return public
        if existing.origin == member.original:
            # The same name twice (tar appends): like tar, the last copy wins.
            log.once(
                ("duplicate", public),
                "warn",
                public,
                f"File '{public}' appears more than once; the last copy was kept.",
            )
            self.remove_staged(public, "duplicate", f"An earlier copy of '{public}' in the upload.")
            return public
        # Two different names sanitized to the same one: keep both, renaming this one.
        shown = ck.display_name(name)
        stem, dot, ext = parts[-1].rpartition(".")
        if not stem:
            stem, dot, ext = parts[-1], "", ""
        for number in range(1, len(self.entries) + 2):
            candidate_name = ck.sanitize_name(f"{stem}_{number}{dot}{ext}")
            candidate = "/".join((*parts[:-1], candidate_name))
            if candidate not in self.entries and candidate not in self.dirs:
                log.add(
                    "warn",
                    candidate,
                    f"Renamed '{shown}' to '{candidate}' [the name '{public}' is already used].",
                )
                return candidate
        raise AssertionError("unreachable: a free name always exists")

    def target(self, public: str) -> str:
        """Create the parents of ``public`` inside staging and return its path, verified."""
        root = str(self.root)
        parent, _, _ = public.rpartition("/")
        if parent and parent not in self.dirs:  # else known: created and verified before
            parts = public.split("/")
            for index in range(1, len(parts)):
                key = "/".join(parts[:index])
                if key in self.dirs:
                    continue
                folder = os.path.join(root, key)
                with contextlib.suppress(FileExistsError):
                    os.mkdir(folder)
                # We never create links, but verify anyway: nothing may land outside staging.
                if os.path.realpath(folder) != folder or not folder.startswith(root + os.sep):
                    raise self.budget.fatal(
                        ck.msg_refused(public, "it resolves outside the workspace")
                    )
                self.dirs.add(key)
        return os.path.join(root, public)

    def write(
        self,
        public: str,
        origin: tuple[str, ...],
        reader: Reader,
        meter: Meter,
        *,
        aside: bool = False,
    ) -> tuple[Entry, bytes]:
        """Copy ``reader`` to ``public`` while hashing and counting it; the entry and its head.

        Up to ``SMALL_MAX`` bytes are kept (``hold``); the first chunk past it opens a file of
        its own. The entry is not added: the caller decides (an empty file is dropped). With
        ``aside`` a file is written outside the public namespace: a removed member kept for the
        quarantine goes through the same copy, hashing and limits as a kept one.
        """
        target = str(self.aside_path()) if aside else self.target(public)
        digest = hashlib.sha256()
        size = 0
        count_written = self.budget.count_removed if aside else self.budget.count_written
        step = meter.step
        small: list[bytes] | None = []
        pending: Sequence[bytes | memoryview]
        fd = -1
        try:
            try:
                while True:
                    with map_read_errors():
                        chunk = reader.read(step)
                    if not chunk:
                        break
                    size += len(chunk)
                    count_written(meter, public, size, self.total, len(chunk))
                    digest.update(chunk)
                    if small is not None:
                        # A memoryview is only valid until the next read: keep a copy.
                        small.append(chunk if isinstance(chunk, bytes) else bytes(chunk))
                        if size <= SMALL_MAX:
                            continue
                        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
                        fd = os.open(target, flags, 0o644)
                        pending, small = small, None
                    else:
                        pending = (chunk,)
                    for piece in pending:
                        view = memoryview(piece)
                        while view:
                            view = view[os.write(fd, view) :]
            finally:
                if fd >= 0:
                    os.close(fd)
        except BaseException:
            if fd >= 0:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(target)
            raise
        sha256 = digest.hexdigest()
        if small is None:
            with open(target, "rb") as f:
                head = f.read(ft.HEAD_BYTES)
            return Entry(Path(target), size, sha256, ft.BINARY, origin), head
        data = small[0] if len(small) == 1 else b"".join(small)
        entry = Entry(None, size, sha256, ft.BINARY, origin)
        self.hold(entry, data)
        return entry, data[: ft.HEAD_BYTES]

    def prune_empty_dirs(self) -> None:
        """Remove folders no entry is in (left by a nested archive or an aborted file).

        Entries held in memory have no file in their folder, so the entries say which
        folders are in use, not the disk."""
        needed: set[str] = set()
        for public in self.entries:
            parts = public.split("/")
            needed.update("/".join(parts[:index]) for index in range(1, len(parts)))
        root = str(self.root)
        for folder, subdirs, files in os.walk(root, topdown=False):
            key = os.path.relpath(folder, root).replace(os.sep, "/")
            if folder != root and key not in needed and not files and not os.listdir(folder):
                os.rmdir(folder)
            del subdirs
        self.dirs &= needed

    def flatten_top_level(self) -> None:
        """arXiv's RemoveTopLevelDirectory: ``paper/main.tex`` becomes ``main.tex``."""
        while self.entries:
            tops = {p.split("/", 1)[0] for p in self.entries}
            if len(tops) != 1:
                return
            top = tops.pop()
            if top == "anc" or top in self.entries:
                return
            temp = self.root / ".cairn-flatten"
            os.rename(self.root / top, temp)
            for child in os.listdir(temp):
                os.rename(temp / child, self.root / child)
            os.rmdir(temp)
            cut = len(top) + 1

            def move(path: str | None, top: str = top, cut: int = cut) -> str | None:
                if path is None or path == top:
                    return None
                return path[cut:] if path.startswith(top + "/") else path

            self.entries = {
                p[cut:]: e if e.local_path is None else replace(e, local_path=self.root / p[cut:])
                for p, e in self.entries.items()
            }
            self.removed = [(move(p) or p, e) for p, e in self.removed]
            self.dirs = {d[cut:] for d in self.dirs if d.startswith(top + "/")}
            self.log.move_paths(move)
            self.log.add("warn", None, f"{ck.MSG_TOP_LEVEL} '{top}'.")


def _write_new(target: str, data: bytes) -> None:
    """Write ``data`` to a file that must not exist yet (never through a link)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(target, flags, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
