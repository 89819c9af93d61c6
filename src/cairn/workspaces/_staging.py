"""The staging folder of one upload: target paths, name clashes, writing, pruning, the top level."""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from cairn.workspaces import _checks as ck
from cairn.workspaces import _filetypes as ft
from cairn.workspaces._budget import Budget
from cairn.workspaces._findings import FindingLog
from cairn.workspaces._streams import Meter, Reader, map_read_errors

__all__ = ["Entry", "StagingFolder"]


@dataclass
class Entry:
    """One file written to the staging folder."""

    local_path: Path
    size: int
    sha256: str
    file_type: str
    origin: tuple[str, ...]  # original member path, to tell duplicates from name clashes
    mtime: int | None = None  # the member's own modification time, if it had one
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
    _temp_counter: int = 0

    def add(self, public: str, entry: Entry) -> None:
        self.entries[public] = entry
        self.total += entry.size

    def forget(self, public: str) -> None:
        entry = self.entries.pop(public)
        self.total -= entry.size

    def set_aside(self, public: str) -> Path:
        """Move a file out of the public namespace (hidden names are never staged) and forget it.

        Its folder stays, so the members of a nested archive may reuse its name.
        """
        self._temp_counter += 1
        temp = self.root / f".cairn-unpack-{self._temp_counter}"
        os.rename(self.entries[public].local_path, temp)
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
        aside = self.aside_path()
        os.rename(entry.local_path, aside)
        self.forget(public)
        self.quarantine(public, replace(entry, local_path=aside), rule, reason)

    def keep_original(
        self, public: str, entry: Entry, data: bytes | Path, rule: str, reason: str
    ) -> None:
        """Keep the bytes a repair replaced (``data``, or a link to them) for the quarantine."""
        if isinstance(data, Path):
            size, sha256, aside = entry.size, entry.sha256, data
        else:
            aside = self.aside_path()
            with aside.open("xb") as f:
                f.write(data)
            size, sha256 = len(data), hashlib.sha256(data).hexdigest()
        kept = replace(entry, local_path=aside, size=size, sha256=sha256)
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

        The entry is not added: the caller decides (an empty file is removed instead). With
        ``aside`` the file is written outside the public namespace: a removed member kept for
        the quarantine goes through the same copy, hashing and limits as a kept one.
        """
        target = str(self.aside_path()) if aside else self.target(public)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(target, flags, 0o644)
        digest = hashlib.sha256()
        head = b""
        size = 0
        count_written = self.budget.count_removed if aside else self.budget.count_written
        step = meter.step
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
                    if len(head) < ft.HEAD_BYTES:  # a copy: chunks are not to be kept
                        head += chunk[: ft.HEAD_BYTES - len(head)]
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(target)
            raise
        entry = Entry(Path(target), size, digest.hexdigest(), ft.BINARY, origin)
        return entry, head

    def prune_empty_dirs(self) -> None:
        """Remove folders left empty (by an unpacked nested archive or an aborted file)."""
        root = self.root
        for folder, subdirs, files in os.walk(root, topdown=False):
            if folder != str(root) and not files and not os.listdir(folder):
                os.rmdir(folder)
            del subdirs

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
                p[cut:]: replace(e, local_path=self.root / p[cut:]) for p, e in self.entries.items()
            }
            self.removed = [(move(p) or p, e) for p, e in self.removed]
            self.dirs = {d[cut:] for d in self.dirs if d.startswith(top + "/")}
            self.log.move_paths(move)
            self.log.add("warn", None, f"{ck.MSG_TOP_LEVEL} '{top}'.")
