"""Benchmark a workspace checkpoint saved and restored against arXiv's way: ``tar -czf`` of the
source folder into a checkpoint, then ``tar -xzf`` of it back over an emptied folder.

cairn's side runs the service in-process on SQLite (the embedded default): ``save_checkpoint``
copies the file rows (the blobs are shared, no byte is copied), then ``restore_checkpoint``
makes the workspace exactly that file set again, each in its own committed transaction. The
workspace is filled once beforehand through the normal upload path (not timed).
"""

from __future__ import annotations

import argparse
import io
import itertools
import os
import shutil
import tarfile
import time
from pathlib import Path

import _common
from _common import best_alternating, detail, report, run, scratch_dir

_common.use_source_tree()

from cairn.accounts import service as accounts  # noqa: E402
from cairn.blobs import open_blob_store  # noqa: E402
from cairn.config import Settings  # noqa: E402
from cairn.db import UnitOfWork, make_engine, make_sessionmaker, migrate  # noqa: E402
from cairn.workspaces import service  # noqa: E402


def make_archive(path: Path, source: Path, *, files: int, size: int) -> None:
    """The same files twice: as a .tar.gz to upload and as a folder for the baseline."""
    words = [b"alpha", b"beta", b"theorem", b"proof", b"lemma", b"\n"]
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        for i in range(files):
            if i % 2:
                data = os.urandom(size)
            else:
                data = b" ".join(words[(i + k) % len(words)] for k in range(size // 6))[:size]
            name = f"part{i % 20}/file{i:05d}.{'bin' if i % 2 else 'txt'}"
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
            target = source / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=5000, help="files in the workspace")
    parser.add_argument("--size-kb", type=int, default=8, help="size of each file in KiB")
    parser.add_argument("--rounds", type=int, default=3, help="runs per side (best is kept)")
    args = parser.parse_args()

    with scratch_dir() as tmp:
        source = tmp / "src"
        archive = tmp / "upload.tar.gz"
        make_archive(archive, source, files=args.files, size=args.size_kb * 1024)
        settings = Settings(data_dir=tmp / "data")
        engine = make_engine(settings)
        migrate(engine)
        uow = UnitOfWork(make_sessionmaker(engine))
        blobs = open_blob_store(settings.blob_url)
        with uow.transaction() as session:
            org = accounts.create_organisation(session, name="Bench Lab")
            user = accounts.create_user(
                session, email="bench@example.org", password="Bench-pass-2026!"
            )
            accounts.add_member(session, user=user, organisation=org, privilege="manage")
            actor = accounts.authenticate_user(session, user)
        view = service.upload(
            uow, blobs, actor, service.uploaded_file(archive), work_dir=settings.work_dir
        )
        wid = view.workspace.id
        detail(f"{view.workspace.file_count} files, {view.workspace.total_size >> 20} MiB")
        counter = itertools.count()

        def baseline() -> float:
            checkpoint = tmp / f"checkpoint-{next(counter)}.tar.gz"
            restored = tmp / "restored"
            shutil.copytree(source, restored)
            start = time.perf_counter()
            run(["tar", "-czf", checkpoint, "-C", restored, "."])
            shutil.rmtree(restored)  # the workspace emptied, then restored from the checkpoint
            restored.mkdir()
            run(["tar", "-xzf", checkpoint, "-C", restored])
            seconds = time.perf_counter() - start
            shutil.rmtree(restored)
            checkpoint.unlink()
            return seconds

        def cairn() -> float:
            start = time.perf_counter()
            with uow.transaction() as session:
                saved = service.save_checkpoint(session, actor, wid).checkpoint.id
            with uow.transaction() as session:
                service.restore_checkpoint(session, actor, wid, saved)
            seconds = time.perf_counter() - start
            with uow.transaction() as session:  # untimed: the next round saves anew
                service.delete_all_checkpoints(session, actor, wid)
            return seconds

        best_cairn, best_baseline = best_alternating(cairn, baseline, rounds=args.rounds)
        engine.dispose()
    report("checkpoints", best_cairn, best_baseline)


if __name__ == "__main__":
    main()
