"""Small archives built in memory for tests."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path


def tar_gz(files: dict[str, bytes]) -> bytes:
    """A .tar.gz of regular files, in the order given."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def write_tar_gz(path: Path, files: dict[str, bytes]) -> Path:
    path.write_bytes(tar_gz(files))
    return path
