"""Small archives built in memory for tests."""

from __future__ import annotations

import io
import json
import tarfile
import tempfile
import zipfile
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


def published_zip(output: bytes = b"result\n", *, names: tuple[str, ...] = ()) -> bytes:
    """A minimal published-run package (RO-Crate in a BagIt bag, zipped as ``cairn runs
    publish`` does): one run that generated ``outputs/result.txt`` (and, as its inputs, the
    crate entities ``names``, which the bag does not hold)."""
    import bagit

    crate = {
        "@context": "https://w3id.org/ro/crate/1.1/context",
        "@graph": [
            {"@id": "ro-crate-metadata.json", "@type": "CreativeWork", "about": {"@id": "./"}},
            {"@id": "./", "@type": "Dataset", "name": "A result", "license": "CC0-1.0"},
            {"@id": "outputs/result.txt", "@type": "File", "name": "result.txt"},
            {
                "@id": "#run",
                "@type": "CreateAction",
                "object": [{"@id": name} for name in names],
                "result": [{"@id": "outputs/result.txt"}],
            },
        ],
    }
    with tempfile.TemporaryDirectory() as folder:
        bag_dir = Path(folder) / "run-1-v1"
        (bag_dir / "outputs").mkdir(parents=True)
        (bag_dir / "outputs" / "result.txt").write_bytes(output)
        (bag_dir / "ro-crate-metadata.json").write_text(json.dumps(crate))
        bagit.make_bag(str(bag_dir), checksums=["sha256"])
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for path in sorted(bag_dir.rglob("*")):
                if path.is_file():
                    archive.write(path, path.relative_to(Path(folder)).as_posix())
        return buffer.getvalue()
