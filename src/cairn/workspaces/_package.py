"""The workspace content package: a deterministic .tar.gz built from blobs.

Deterministic (sorted members, fixed owner and mode, gzip header without name or time), so the
package is a function of the workspace's manifest and the manifest checksum is its ETag.
"""

from __future__ import annotations

import gzip
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cairn.blobs import BlobStore
from cairn.tempfiles import scratch_file

__all__ = ["PackageFile", "build_package"]


@dataclass(frozen=True)
class PackageFile:
    public_path: str
    sha256: str
    size: int
    mtime: int


def build_package(
    blobs: BlobStore, files: Sequence[PackageFile], *, work_dir: Path
) -> tuple[str, int]:
    """A deterministic .tar.gz of ``files`` in the blob store: sorted members, fixed owner and
    mode, gzip header without time or name. Returns (sha256, size)."""
    fd, path = scratch_file(work_dir, "package-", suffix=".tar.gz")
    try:
        with (
            open(fd, "wb") as raw,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz,
            tarfile.open(fileobj=gz, mode="w|", format=tarfile.PAX_FORMAT) as tar,
        ):
            for item in sorted(files, key=lambda f: f.public_path):
                info = tarfile.TarInfo(item.public_path)
                info.size, info.mtime, info.mode = item.size, item.mtime, 0o644
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                with blobs.open(item.sha256) as content:
                    tar.addfile(info, content)
        ref = blobs.put_file(path)
    finally:
        path.unlink(missing_ok=True)
    return ref.sha256, ref.size
