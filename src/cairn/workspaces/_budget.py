"""The limits budget of one upload: bytes and members counted, and the findings for crossing."""

from __future__ import annotations

from dataclasses import dataclass

from cairn.workspaces._checks import Finding
from cairn.workspaces._filetypes import ZipDirectory
from cairn.workspaces._findings import Abort
from cairn.workspaces._limits import Limits
from cairn.workspaces._streams import Meter

__all__ = ["MAX_ZIP_DIRECTORY_BYTES", "Budget", "human"]

# zipfile reads the whole central directory into memory; 64 MiB is ~500,000 ordinary entries.
MAX_ZIP_DIRECTORY_BYTES = 64 * 1024 * 1024


def human(n: float) -> str:
    """A byte count for messages: ``1000 bytes``, ``9.77 KiB``, ``4 GiB``."""
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:g} {unit}" if unit == "bytes" else f"{n:.3g} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


@dataclass
class Budget:
    """What one upload has used of its limits.

    Every ``count_*`` and ``check_*`` method raises ``Abort`` as soon as a limit is crossed.
    """

    limits: Limits
    source_size: int  # size of the uploaded file, for the ratio of the whole upload
    existing_total: int  # bytes the workspace already holds
    existing_count: int  # files the workspace already holds
    produced_total: int = 0  # bytes written to staging, all archives together
    expanded_total: int = 0  # bytes decompressed, all archives together
    members_seen: int = 0  # archive members of any kind, all archives together

    def fatal(self, message: str, path: str | None = None) -> Abort:
        return Abort(Finding("fatal", path, message))

    # --- counting ---
    def count_expanded(self, meter: Meter, n: int) -> None:
        """``n`` more bytes decompressed from ``meter``'s archive, written or skipped."""
        meter.expanded += n
        self.expanded_total += n
        self.check_ratio(meter)
        # Skipped members cost decompression too: bound the stream by the size limit.
        slack = max(64 * 1024 * 1024, self.limits.max_total_bytes // 10)
        if meter.expanded > self.limits.max_total_bytes + slack:
            raise self.total_abort()

    def count_written(self, meter: Meter, public: str, size: int, staged: int, n: int) -> None:
        """``n`` more bytes written to ``public`` (now ``size``), next to ``staged`` bytes."""
        meter.produced += n
        self.produced_total += n
        lim = self.limits
        if size > lim.max_file_bytes:
            raise self.fatal(
                f"File '{public}' is larger than the limit of "
                f"{human(lim.max_file_bytes)} per file for archive '{lim.name}'.",
                public,
            )
        if self.existing_total + staged + size > lim.max_total_bytes:
            raise self.total_abort()
        self.check_ratio(meter)

    def count_removed(self, meter: Meter, public: str, size: int, staged: int, n: int) -> None:
        """``n`` more bytes of a removed file kept for the quarantine: they count toward the
        bomb checks, not toward the size limits of the files kept (before the quarantine such
        a file was skipped unread, and a large hidden one must not now fail the upload)."""
        del public, size, staged
        meter.produced += n
        self.produced_total += n
        self.check_ratio(meter)

    def count_member(self) -> None:
        """One more archive member, of any kind."""
        # Directories, links and junk cost work too; bound them with the file limit.
        self.members_seen += 1
        if self.members_seen > self.max_members:
            raise self.count_abort()

    # --- checks ---
    @property
    def max_members(self) -> int:
        return 4 * self.limits.max_files + 1000

    def check_ratio(self, meter: Meter) -> None:
        lim = self.limits
        out = max(meter.expanded, meter.produced)
        if out > lim.ratio_grace_bytes and out > lim.max_ratio * max(meter.consumed(), 1):
            raise self.ratio_abort(meter.label)
        overall = max(self.produced_total, self.expanded_total)
        if overall > lim.ratio_grace_bytes and overall > lim.max_ratio * max(self.source_size, 1):
            raise self.ratio_abort(meter.label)

    def check_file_count(self, staged: int) -> None:
        """Room for one more file next to ``staged`` files."""
        if self.existing_count + staged + 1 > self.limits.max_files:
            raise self.count_abort()

    def check_zip_directory(self, directory: ZipDirectory) -> None:
        """The central directory zipfile is about to read whole is of a bounded size."""
        if directory.size > MAX_ZIP_DIRECTORY_BYTES or directory.entries > self.max_members:
            raise self.count_abort()

    # --- the findings ---
    def ratio_abort(self, label: str) -> Abort:
        return self.fatal(
            f"Archive '{label}' expands more than {self.limits.max_ratio:g} times its "
            "compressed size (possible archive bomb); unpacking stopped."
        )

    def total_abort(self) -> Abort:
        return self.fatal(
            f"Upload exceeds the limit of {human(self.limits.max_total_bytes)} in total "
            f"for archive '{self.limits.name}'."
        )

    def count_abort(self) -> Abort:
        return self.fatal(
            f"Upload exceeds the limit of {self.limits.max_files} files "
            f"for archive '{self.limits.name}'."
        )
