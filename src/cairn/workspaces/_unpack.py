"""Process one upload into a staging folder: unpack, sanitize, type and check every file.

``process_upload`` is pure and database-free. It streams: members are copied in chunks while
they are hashed and counted, nothing is held whole in memory, and sizes declared in headers are
never trusted. Every limit is checked on bytes actually produced, so an archive bomb stops after
at most about ``Limits.ratio_grace_bytes`` (or the first limit crossed). Nothing is written
outside ``staging``: names are sanitized component by component, parents are created by us and
verified, files are opened with ``O_NOFOLLOW | O_EXCL``, and links and devices are never made.
A thread decompresses a few steps ahead (``_streams.Prefetch``); everything else, the limit
checks included, happens in the calling thread.

This module is the entry point; the parts live next to it: ``_pipeline`` takes the members in
order, ``_streams`` decompresses and counts bytes, ``_tarheader`` parses tar headers, ``_budget``
checks the limits, ``_staging`` writes the folder and ``_findings`` records what was found.

The caller stores every ``StagedFile`` in the blob store and merges them into the workspace in
one transaction, or discards everything when ``ProcessedUpload.fatal`` (issue 3: "An upload that
fails fatally changes nothing already in the workspace").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cairn.blobs import Spool, StagedBlob
from cairn.workspaces._budget import Budget
from cairn.workspaces._checks import Finding, infer_source_format
from cairn.workspaces._findings import Abort, FindingLog
from cairn.workspaces._limits import ARCHIVE_LIMITS, DEFAULT_LIMITS, Limits, limits_for
from cairn.workspaces._pipeline import Upload
from cairn.workspaces._staging import StagingFolder

__all__ = [
    "ARCHIVE_LIMITS",
    "DEFAULT_LIMITS",
    "Finding",
    "Limits",
    "ProcessedUpload",
    "StagedFile",
    "infer_source_format",
    "limits_for",
    "process_upload",
]


@dataclass(frozen=True)
class StagedFile:
    """One sanitized file: a large one in the staging folder at ``staging / public_path``,
    a small one held in memory or the staging spool (``local_path`` None); ``blob`` is what the
    blob store ingests either way."""

    public_path: str
    local_path: Path | None
    size: int
    file_type: str
    sha256: str
    blob: StagedBlob
    mtime: int | None = None  # the archive member's modification time (None: a lone file)
    quarantine: tuple[str, str] | None = None  # (rule, reason) of a file a rule removed

    def read_bytes(self) -> bytes:
        if self.blob.data is not None:
            return self.blob.content()
        assert self.local_path is not None
        return self.local_path.read_bytes()


@dataclass
class ProcessedUpload:
    """What ``process_upload`` produced: the staged files and every finding, in order."""

    files: list[StagedFile]
    findings: list[Finding]
    removed: list[str]  # public paths removed by sanitizing (junk, hidden, empty, links ...)
    source_format: str  # tex, pdf, ps, html, unknown or invalid (of this upload's files alone)
    compressed_size: int  # size of the uploaded file
    total_size: int  # sum of the staged files' sizes
    quarantined: list[StagedFile] = field(default_factory=list)  # removed, kept aside

    @property
    def fatal(self) -> bool:
        """Whether any finding is fatal: the caller must then discard the whole upload."""
        return any(f.level == "fatal" for f in self.findings)


def process_upload(
    source: Path,
    filename: str,
    *,
    staging: Path,
    limits: Limits,
    ancillary: bool = False,
    existing_total: int = 0,
    existing_count: int = 0,
    folder: tuple[str, ...] = (),
    spool: Spool | None = None,
) -> ProcessedUpload:
    """Unpack and check one uploaded file into ``staging`` (an empty folder).

    Args:
        source: the uploaded bytes, already saved to a file.
        filename: the name the client gave; only its last component is used.
        staging: an empty folder that receives the sanitized tree (created if missing).
        limits: the limits of the target archive (see ``limits_for``).
        ancillary: put every file under ``anc/``.
        existing_total: bytes the workspace already holds (counts toward ``max_total_bytes``).
        existing_count: files the workspace already holds (counts toward ``max_files``).
        folder: the folder a lone file goes to (a restore from the quarantine).
        spool: where small members past the memory budget go (``BlobStore.spool``); by
            default a file in ``staging``.

    Returns:
        The staged files (sorted by public path) and findings. Bad input never raises: it shows
        as a ``fatal`` finding. Only server trouble (disk full, staging not empty) raises.
    """
    staging.mkdir(parents=True, exist_ok=True)
    staging = staging.resolve()
    if any(staging.iterdir()):
        raise ValueError(f"staging folder {staging} is not empty")
    source_size = source.stat().st_size
    budget = Budget(limits, source_size, existing_total, existing_count)
    log = FindingLog()
    tree = StagingFolder(staging, budget, log, spool=spool)
    upload = Upload(tree, budget, log, ancillary, folder)
    try:
        upload.run(source, filename)
    except Abort as abort:
        log.findings.append(abort.finding)
    upload.finish()
    upload.staging.close()
    files = [
        StagedFile(public, e.local_path, e.size, e.file_type, e.sha256, e.blob(), e.mtime)
        for public, e in sorted(upload.staging.entries.items())
    ]
    # Kept and removed files are staged alike; only here do they part (issue #13, section 3).
    quarantined = [
        StagedFile(
            public, e.local_path, e.size, e.file_type, e.sha256, e.blob(), e.mtime, e.quarantine
        )
        for public, e in upload.staging.removed
    ]
    source_format, _ = infer_source_format((f.public_path, f.file_type) for f in files)
    return ProcessedUpload(
        files=files,
        findings=log.findings,
        removed=log.removed,
        source_format=source_format,
        compressed_size=source_size,
        total_size=sum(f.size for f in files),
        quarantined=quarantined,
    )
