"""The member pipeline of one upload: a single file, tar and zip members, nested archives."""

from __future__ import annotations

import contextlib
import hashlib
import io
import itertools
import os
import re
import stat
import tarfile
import zipfile
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from cairn.workspaces import _arxiv_rules as ar
from cairn.workspaces import _checks as ck
from cairn.workspaces import _filetypes as ft
from cairn.workspaces import _quarantine as qu
from cairn.workspaces._budget import Budget
from cairn.workspaces._findings import FindingLog
from cairn.workspaces._postscript import MAX_CLEAN_BYTES, clean_postscript, has_sections
from cairn.workspaces._staging import Entry, StagingFolder
from cairn.workspaces._streams import (
    BUFFER,
    CHUNK,
    Corrupt,
    CountingRaw,
    MemberReader,
    Meter,
    Reader,
    map_read_errors,
    open_decompressed,
)
from cairn.workspaces._tarheader import SafeTarInfo
from cairn.workspaces._text_repair import repair_bytes, repair_text, write_over

__all__ = ["MemberKind", "Upload"]

MemberKind = Literal["file", "dir", "symlink", "hardlink", "chardev", "blockdev", "fifo", "other"]
_KIND_LABEL = {
    "symlink": "Symbolic links",
    "hardlink": "Hard links",
    "chardev": "Character devices",
    "blockdev": "Block devices",
    "fifo": "FIFO devices",
    "other": "Special files",
}
_CLAIMS = (
    (".tar.gz", "tar"),
    (".tgz", "tar"),
    (".tar.bz2", "tar"),
    (".tbz2", "tar"),
    (".tbz", "tar"),
    (".tar.xz", "tar"),
    (".txz", "tar"),
    (".tar", "tar"),
    (".zip", "zip"),
    (".gz", "gzip"),
    (".gzip", "gzip"),
    (".bz2", "bzip2"),
    (".xz", "xz"),
)
_COMPRESSION_SUFFIX = re.compile(r"(\.gz|\.gzip|-gz|\.bz2|\.xz)$", re.IGNORECASE)
# A gzip header's name, comment and extra field have no length limit (the extra field alone may
# take 64 KiB), so the head may end before any data: look that much further.
MAX_GZIP_HEADER_BYTES = 1024 * 1024


def _compressed_tar(head: bytes, kind: ft.ArchiveKind, path: Path) -> bool | None:
    """``ft.compressed_tar``, reading further into ``path`` when a gzip header fills ``head``."""
    inner = ft.compressed_tar(head, kind)
    if inner is None and kind == "gzip" and len(head) == ft.HEAD_BYTES:
        with path.open("rb") as f:
            inner = ft.compressed_tar(f.read(MAX_GZIP_HEADER_BYTES + ft.HEAD_BYTES), kind)
    return inner


def _claimed_kind(name: str) -> str | None:
    lower = name.lower()
    for suffix, kind in _CLAIMS:
        if lower.endswith(suffix):
            return kind
    return None


@dataclass
class Upload:
    """One upload on its way through, member by member; ``Abort`` from any step ends it.

    What it unpacks goes to ``staging``, what it finds to ``log``, what it costs to ``budget``.
    """

    staging: StagingFolder
    budget: Budget
    log: FindingLog
    ancillary: bool
    folder: tuple[str, ...] = ()  # where a lone file goes (a quarantined file's restore)
    queue: deque[tuple[str, Entry, ft.ArchiveKind, int]] = field(default_factory=deque)
    was_archive: bool = False
    reading: str | None = None  # the member being copied now (named if its archive breaks)

    @property
    def arxiv(self) -> bool:
        """Whether the target applies arXiv's rules (docs/arxiv-rules.md)."""
        return self.budget.limits.rules == "arxiv"

    @property
    def quiet(self) -> ck.Level:
        """The level of a harmless removal: info as in arXiv, warn in cairn's own rules."""
        return "info" if self.arxiv else "warn"

    # --- top level ---
    def run(self, source: Path, filename: str) -> None:
        name, notes = ck.clean_upload_filename(filename)
        self.log.findings.extend(notes)
        base: tuple[str, ...] = (*(("anc",) if self.ancillary else ()), *self.folder)
        shown = ck.display_name(name)
        with source.open("rb") as f:
            head = f.read(ft.HEAD_BYTES)
        kind = ft.archive_kind(head)
        claimed = _claimed_kind(name)
        source_size = self.budget.source_size
        try:
            if kind == "zip" and claimed != "zip" and ft.zip_subtype(source, head) != ft.ZIP:
                kind = None  # DOCX, ODT, JAR ...: a document, not an archive to unpack
            if kind is not None and source_size > 0:
                compressed = kind in ("gzip", "bzip2", "xz")
                inner = _compressed_tar(head, kind, source) if compressed else None
                if kind in ("gzip", "bzip2", "xz") and inner is None:
                    raise Corrupt(f"cannot decompress {kind} data")
                if kind in ("tar", "zip") or inner:
                    actual = "tar" if kind != "zip" else "zip"
                    if claimed is not None and claimed != actual and claimed != kind:
                        self.log.add(
                            "warn",
                            None,
                            f"File '{shown}' is a {actual} archive, not what its name says; "
                            f"unpacked as {actual}.",
                        )
                    self.was_archive = True
                    self._unpack(source, kind, shown, base, depth=1)
                    self._drain_queue()
                    return
                if claimed == "tar":
                    self.log.add("fatal", None, f"Unable to read tar '{shown}': not a tar file")
                    return
                if (claimed is not None or _COMPRESSION_SUFFIX.search(name)) and not (
                    self.arxiv and kind in ("gzip", "bzip2")
                ):
                    # arXiv targets: no tar inside is fatal, via the file rules (rule 29).
                    self._decompress_single(source, kind, name, base, shown)
                    self._drain_queue()
                    return
            elif claimed is not None and source_size > 0:
                self.log.add(
                    "fatal", None, f"Unable to read {claimed} '{shown}': not a {claimed} file"
                )
                return
            self._single_file(source, name, base, head)
        except Corrupt as exc:
            self.log.corrupt(shown, None, exc)

    def _single_file(self, source: Path, name: str, base: tuple[str, ...], head: bytes) -> None:
        file_type = ft.detect_type(name, head, self.budget.source_size, source)
        if file_type in (ft.RAR, ft.SEVENZIP):
            label = "rar" if file_type == ft.RAR else "7z"
            self.log.add(
                "fatal",
                None,
                f"We do not support '{label}' files. Please use 'zip' or 'tar' instead.",
            )
            return
        if file_type == ft.COMPRESSED:
            self.log.add(
                "warn",
                None,
                f"File '{ck.display_name(name)}' is compressed with Unix compress (.Z), which "
                "is not unpacked; it was kept as it is.",
            )
        with source.open("rb", buffering=0) as raw:
            meter = Meter(name, lambda: meter.produced, step=BUFFER)
            self._add_member(name, "file", lambda: raw, base, meter, depth=0)

    def _decompress_single(
        self, source: Path, kind: ft.ArchiveKind, name: str, base: tuple[str, ...], shown: str
    ) -> None:
        inner = _COMPRESSION_SUFFIX.sub("", name)
        if inner.strip(".") == "":  # "..gz" would become "." ("...gz" "..")
            inner = name
        count = self.budget.count_expanded
        with open_decompressed(source, kind, shown, count) as (stream, meter):
            self._add_member(
                inner, "file", lambda: MemberReader(stream, None), base, meter, depth=1
            )

    # --- archives ---
    def _unpack(
        self, path: Path, kind: ft.ArchiveKind, label: str, base: tuple[str, ...], depth: int
    ) -> None:
        if kind == "zip":
            self._unpack_zip(path, label, base, depth)
        else:
            self._unpack_tar(path, kind, label, base, depth)

    def _unpack_tar(
        self, path: Path, kind: ft.ArchiveKind, label: str, base: tuple[str, ...], depth: int
    ) -> None:
        count = self.budget.count_expanded
        with contextlib.ExitStack() as stack:
            stream, meter = stack.enter_context(open_decompressed(path, kind, label, count))
            with map_read_errors():
                tf = stack.enter_context(
                    tarfile.TarFile(
                        fileobj=stream,
                        mode="r",
                        tarinfo=SafeTarInfo,
                        encoding="utf-8",
                        errors="surrogateescape",
                    )
                )
            for index in itertools.count(1):
                with map_read_errors():
                    info = tf.next()
                if info is None:
                    # tarfile stops at the end-of-archive blocks; read on to the end of the
                    # compressed stream so its checksum (gzip CRC, xz check) is verified.
                    stream.drain()
                    return
                # TarFile keeps every TarInfo otherwise (not in typeshed).
                tf.members.clear()  # type: ignore[attr-defined]
                self.budget.count_member()
                member = info

                def opener(member: tarfile.TarInfo = member) -> Reader | None:
                    if member.sparse is None and member.offset_data == stream.tell():
                        return MemberReader(stream, member.size)  # the data follows its header
                    return tf.extractfile(member)  # sparse: holes are filled by tarfile

                self._add_member(
                    member.name,
                    _tar_kind(member),
                    opener,
                    base,
                    meter,
                    depth,
                    index=index,
                    mtime=member.mtime,
                )

    def _unpack_zip(self, path: Path, label: str, base: tuple[str, ...], depth: int) -> None:
        directory = ft.read_zip_directory(path)
        if directory is None:
            raise Corrupt("File is not a zip file")
        self.budget.check_zip_directory(directory)
        with path.open("rb", buffering=0) as raw_file:
            counting = CountingRaw(raw_file)
            buffered = io.BufferedReader(counting, CHUNK)
            meter = Meter(label, lambda: counting.count)
            with map_read_errors():
                zf = zipfile.ZipFile(buffered)
            with zf:
                for index, info in enumerate(zf.infolist(), 1):
                    self.budget.count_member()
                    if info.flag_bits & 0x1:
                        self.log.add(
                            "fatal",
                            None,
                            f"Encrypted files are not supported: "
                            f"'{ck.display_name(info.filename)}' in '{label}'.",
                        )
                        continue
                    kind = _zip_kind(info)
                    if kind == "file" and info.compress_type not in (
                        zipfile.ZIP_STORED,
                        zipfile.ZIP_DEFLATED,
                    ):
                        # zipfile decompresses bzip2/lzma members without an output bound.
                        self.log.add(
                            "fatal",
                            None,
                            f"Compression method {info.compress_type} of "
                            f"'{ck.display_name(info.filename)}' in '{label}' is not supported; "
                            "please use deflate.",
                        )
                        continue

                    def opener(info: zipfile.ZipInfo = info) -> Reader | None:
                        return zf.open(info)

                    self._add_member(
                        info.filename,
                        kind,
                        opener,
                        base,
                        meter,
                        depth,
                        index=index,
                        mtime=_zip_mtime(info),
                    )

    def _drain_queue(self) -> None:
        """Unpack archives found inside archives, in place, breadth first, up to max_depth."""
        limits = self.budget.limits
        while self.queue:
            public, entry, kind, depth = self.queue.popleft()
            if self.staging.entries.get(public) is not entry:  # replaced by a later member
                continue
            if depth > limits.max_depth:
                self.log.add(
                    "fatal",
                    public,
                    f"Archive '{public}' is nested more than {limits.max_depth} levels "
                    "deep; not unpacked.",
                )
                continue
            # Unpack next to where the archive was; its members may reuse its name.
            temp = self.staging.set_aside(public)
            self.log.add("info", public, f"Unpacked archive '{public}'.")
            try:
                self._unpack(temp, kind, public, tuple(public.split("/")[:-1]), depth)
            except Corrupt as exc:
                # arXiv warns and goes on: what was readable is kept, the rest named.
                self.log.corrupt_inner(public, exc, lost=self.reading)
            finally:
                self.reading = None
                temp.unlink()

    # --- one member ---
    def _add_member(
        self,
        name: str,
        kind: MemberKind,
        opener: Callable[[], Reader | None],
        base: tuple[str, ...],
        meter: Meter,
        depth: int,
        *,
        index: int = 1,
        mtime: float | None = None,
    ) -> None:
        """Sanitize, check and stage the ``index``-th member of an archive (1 for a file);
        ``mtime`` is the member's own modification time (none for a lone file)."""
        if kind == "dir":
            return
        log = self.log
        member = ck.split_member_path(name, base)
        if isinstance(member, str):
            shown = ck.display_name(name)
            if shown:
                log.add("fatal", None, ck.msg_refused(shown, member))
            else:  # nothing to quote (an empty name, or one cut at a NUL): say where it is
                log.add("fatal", None, f"Refused member {index} of '{meter.label}': {member}.")
            return
        arxiv = self.arxiv
        public = member.public
        junk = ar.junk_kind(member) if arxiv else ck.junk_kind(member)
        if junk is not None:
            what, index = junk
            where = "/".join(member.parts[: index + 1])
            if what == "macosx":
                reason = ck.MSG_MACOSX
                if log.once(("macosx", meter.label), "warn", where, reason):
                    log.removed.append(where)
            elif what == "hidden":
                # arXiv's RemoveFilesWithLeadingDot says so as info; cairn's own rules warn.
                reason = ck.MSG_HIDDEN
                if log.once(("hidden", where), self.quiet, where, reason):
                    log.removed.append(where)
            else:
                reason = ck.msg_not_allowed(ck.display_name(name))
                log.add("warn", public, reason)
                log.removed.append(public)
            if kind == "file":
                junk_rule = qu.junk_rule(what, arxiv=arxiv)
                self._keep_removed(public, member, opener, meter, junk_rule, reason, mtime)
            return
        if kind != "file":
            log.add("warn", public, ck.msg_link(_KIND_LABEL[kind], ck.display_name(name)))
            log.removed.append(public)
            return
        if arxiv:
            # arXiv's order: processed (4), drive prefix (5), backups (7), renames (8, 9),
            # then the files removed by name (10-15) and the last guard (16).
            self._report_processed(member)
            if not self.ancillary and not public.startswith("anc/"):
                original = "/".join(member.original)
                if ar.is_backup(original):
                    shown = ck.display_name(original)
                    log.add("warn", public, ck.msg_backup(shown))
            self._report_renames(member, meter.label, name)
            rule = ar.name_rule(member.parts[-1])
            if rule is not None:
                log.add(rule.level, public, rule.message)
                if rule.remove:
                    log.removed.append(public)
                    self._keep_removed(
                        public, member, opener, meter, rule.rule, rule.message, mtime
                    )
                    return
            if not ck.SAFE_PATH.fullmatch(public):  # PanicOnIllegalCharacters: unreachable
                log.add("fatal", public, f"File '{public}' has an illegal character in its name.")
                return
        else:
            self._report_renames(member, meter.label, name)
            self._report_processed(member)
        staging = self.staging
        resolved = staging.resolve_clash(member, name)
        if resolved is None:
            return
        public = resolved
        if (
            not arxiv
            and not self.ancillary
            and not public.startswith("anc/")
            and ck.is_tex_backup(public)
        ):
            log.add("warn", public, ck.msg_backup(public))
        self.budget.check_file_count(len(staging.entries))
        self.reading = public
        with map_read_errors():
            reader = opener()
        if reader is None:
            return
        entry, head = staging.write(public, member.original, reader, meter)
        self.reading = None
        if entry.size == 0:
            staging.discard(entry)
            log.add(self.quiet, public, ck.msg_empty(public))
            log.removed.append(public)
            return
        if ft.archive_kind(head) is not None:
            staging.materialize(public, entry)  # archives and zip documents are read as files
        entry.file_type = ft.detect_type(public, head, entry.size, entry.local_path)
        entry.mtime = _sane_mtime(mtime)
        staging.add(public, entry)
        archive = ft.unpackable_kind(head, entry.file_type)
        if archive is None and entry.file_type == ft.GZIPPED:
            assert entry.local_path is not None  # an archive kind: materialized above
            archive = "gzip" if _compressed_tar(head, "gzip", entry.local_path) else None
        if archive is not None:
            self.queue.append((public, entry, archive, depth + 1))
        elif arxiv:
            self._arxiv_file_rules(public, entry, head)

    def _keep_removed(
        self,
        public: str,
        member: ck.MemberPath,
        opener: Callable[[], Reader | None],
        meter: Meter,
        rule: str,
        reason: str,
        mtime: float | None,
    ) -> None:
        """Stage a member a rule removed, aside and marked, so it reaches the quarantine: the
        same reading, hashing and limits as a kept member, but no checks and no unpacking."""
        with map_read_errors():
            reader = opener()
        if reader is None:
            return
        entry, head = self.staging.write(public, member.original, reader, meter, aside=True)
        if entry.size == 0:  # nothing to keep
            self.staging.discard(entry)
            return
        entry.file_type = ft.detect_type(public, head, entry.size, entry.local_path)
        entry.mtime = _sane_mtime(mtime)
        self.staging.quarantine(public, entry, rule, reason)

    def _report_processed(self, member: ck.MemberPath) -> None:
        for index, part in enumerate(member.parts[:-1]):
            if part == "processed":
                where = "/".join(member.parts[: index + 1])
                self.log.once(("processed", where), "warn", where, ck.MSG_PROCESSED)

    def _arxiv_file_rules(self, public: str, entry: Entry, head: bytes) -> None:
        """arXiv's rules 20-26 and 29 for one staged file that is not an archive to unpack."""
        log = self.log
        if entry.file_type in (ft.GZIPPED, ft.BZIP2):
            # UnpackCompressedTarFiles: a compressed file that holds no tar cannot be read.
            fixed = ar.fixed_tgz_name(public)
            log.add("fatal", public, f"Unable to read tar '{fixed}': not a tar file")
            return
        if public.startswith("anc/"):
            return  # arXiv's file rules leave ancillary files alone
        log.findings.extend(ar.type_findings(public, entry.file_type))
        renamed = ar.fixed_extension(public, entry.file_type)
        if renamed is not None:
            public = self._rename_staged(public, renamed)
        if entry.file_type in ft.TEX_TYPES or entry.file_type in (ft.HTML, ft.TEXT):
            self._repair_text(public, entry, head)
        elif entry.file_type in (ft.POSTSCRIPT, ft.DOS_EPS):
            self._clean_postscript(public, entry, head)

    def _rename_staged(self, public: str, wanted: str) -> str:
        """FixFileExtensions (22): give ``public`` its type's extension, never over a file."""
        staging = self.staging
        target = wanted
        stem, _, ext = wanted.rpartition(".")
        number = 0
        while target in staging.entries or target in staging.dirs:
            number += 1
            target = f"{stem}_{number}.{ext}"
        entry = staging.entries[public]
        local = Path(staging.target(target))
        if entry.local_path is not None:
            os.rename(entry.local_path, local)
            entry = replace(entry, local_path=local)
        staging.forget(public)
        staging.add(target, entry)
        self.log.add("warn", target, ck.msg_renamed(public, target))
        return target

    def _replace_content(
        self, public: str, entry: Entry, size: int, sha256: str, data: bytes | None
    ) -> None:
        """The entry's content was changed: on disk already, or to ``data`` (not on disk)."""
        staging = self.staging
        staging.forget(public)
        entry = replace(entry, size=size, sha256=sha256)
        if data is not None:
            staging.hold(entry, data)  # under its new hash (a spool record names it)
        staging.add(public, entry)

    def _repair_text(self, public: str, entry: Entry, head: bytes) -> None:
        """UnMacify (23) for TeX and HTML, and for other text with CR line ends (arXiv's PC
        and MAC types): plain LF text is left alone, so its end is not checked either."""
        staging = self.staging
        entry = staging.entries[public]
        need_cr = entry.file_type == ft.TEXT
        # The original bytes go to the quarantine if the repair changes them: the bytes of a
        # small file; a large one is rewritten and leaves its original at an aside name.
        original: bytes | Path
        if entry.local_path is None:
            original = head if entry.size <= len(head) else entry.read_bytes()
            repair, repaired = repair_bytes(original, need_cr=need_cr)
        else:
            whole = head if entry.size <= len(head) else None
            original = whole if whole is not None else staging.aside_path()
            repair = repair_text(
                entry.local_path,
                entry.size,
                whole=whole,
                need_cr=need_cr,
                keep=original if isinstance(original, Path) else None,
            )
            repaired = None
        if repair.skipped:
            return
        if repair.sha256 is not None:
            reason = f"The text of '{public}' before its repair (line endings, trailing bytes)."
            staging.keep_original(public, entry, original, qu.RULE_TEXT_REPAIR, reason)
            self._replace_content(public, entry, repair.size, repair.sha256, repaired)
        if repair.line_endings:
            self.log.add("info", public, f"Line endings of '{public}' were changed to LF (\\n).")
        for what in repair.stripped:
            self.log.add("warn", public, f"Trailing {what} stripped from {public}.")
        if not repair.final_newline:
            self.log.add(
                "warn", public, f"File '{public}' does not end with newline (\\n), TRUNCATED?"
            )

    def _clean_postscript(self, public: str, entry: Entry, head: bytes) -> None:
        """CleanupPostScript and RepairDOSEPSFiles (24)."""
        entry = self.staging.entries[public]
        if entry.size > MAX_CLEAN_BYTES:
            return
        data = head if entry.size <= len(head) else entry.read_bytes()
        if not has_sections(data):
            return
        cleaned, messages = clean_postscript(data, public)
        for message in messages:
            self.log.add("warn", public, message)
        if cleaned != data:
            reason = f"'{public}' before its PostScript clean-up."
            self.staging.keep_original(public, entry, data, qu.RULE_POSTSCRIPT, reason)
            sha256 = hashlib.sha256(cleaned).hexdigest()
            if entry.local_path is not None:
                write_over(entry.local_path, cleaned)
                self._replace_content(public, entry, len(cleaned), sha256, None)
            else:
                self._replace_content(public, entry, len(cleaned), sha256, cleaned)

    def _report_renames(self, member: ck.MemberPath, label: str, name: str) -> None:
        log = self.log
        if member.windows_name is not None:
            shown = ck.display_name(member.windows_name)
            log.add("warn", member.public, ck.msg_renamed(shown, member.public))
        if member.backslashes:
            shown = ck.display_name(name)
            log.once(("backslash", label), "warn", None, f"{ck.MSG_BACKSLASH}: '{shown}'.")
        for index, reason in enumerate(member.reasons):
            if reason is None:
                continue
            parents = "/".join(member.parts[:index])
            old = ck.display_name(member.original[index])
            old = f"{parents}/{old}" if parents else old
            new = "/".join(member.parts[: index + 1])
            key = ("rename", "\0".join(member.original[: index + 1]))
            log.once(key, "warn", new, ck.rename_message(old, new, reason))

    # --- finish ---
    def finish(self) -> None:
        """Tidy the staging folder and check the file types the target archive accepts."""
        staging = self.staging
        fatal = any(f.level == "fatal" for f in self.log.findings)
        staging.prune_empty_dirs()
        if (
            not fatal
            and self.was_archive
            and not self.ancillary
            and self.budget.existing_count == 0
        ):
            staging.flatten_top_level()
        limits = self.budget.limits
        accepted = limits.accepted_types
        if accepted is not None:
            for public, entry in staging.entries.items():
                if not public.startswith("anc/") and entry.file_type not in accepted:
                    self.log.add(
                        "fatal",
                        public,
                        f"File '{public}' has type {entry.file_type}, which archive "
                        f"'{limits.name}' does not accept.",
                    )


_TAR_KINDS: dict[bytes, MemberKind] = {
    **dict.fromkeys(tarfile.REGULAR_TYPES, "file"),
    tarfile.DIRTYPE: "dir",
    tarfile.SYMTYPE: "symlink",
    tarfile.LNKTYPE: "hardlink",
    tarfile.CHRTYPE: "chardev",
    tarfile.BLKTYPE: "blockdev",
    tarfile.FIFOTYPE: "fifo",
}
# By the file type bits of a zip member's Unix mode; 0 is a zip made elsewhere (a file).
_ZIP_KINDS: dict[int, MemberKind] = {
    0: "file",
    stat.S_IFREG: "file",
    stat.S_IFDIR: "dir",
    stat.S_IFLNK: "symlink",
    stat.S_IFCHR: "chardev",
    stat.S_IFBLK: "blockdev",
    stat.S_IFIFO: "fifo",
}


def _tar_kind(info: tarfile.TarInfo) -> MemberKind:
    return _TAR_KINDS.get(info.type, "other")


def _zip_kind(info: zipfile.ZipInfo) -> MemberKind:
    # Not ZipInfo.is_dir(): it indexes the name, which may be empty (or cut to nothing at a NUL).
    if info.filename.endswith("/"):
        return "dir"
    return _ZIP_KINDS.get(stat.S_IFMT(info.external_attr >> 16), "other")


_LATEST_MTIME = 253_402_300_799  # 9999-12-31T23:59:59Z, the last second a datetime can hold


def _sane_mtime(mtime: float | None) -> int | None:
    """A member's time as whole seconds, or None (the upload's time is used) when it has none
    or one no date can hold (tar and pax allow negative and huge values)."""
    if mtime is None or not 0 <= mtime <= _LATEST_MTIME:
        return None
    return int(mtime)


def _zip_mtime(info: zipfile.ZipInfo) -> float | None:
    """A zip member's time: zip stores a local date and time without a zone; read it as UTC,
    so the same archive gives the same times on every server."""
    try:
        return datetime(*info.date_time, tzinfo=UTC).timestamp()
    except ValueError:  # a field out of range (month 0, second 60 …)
        return None
