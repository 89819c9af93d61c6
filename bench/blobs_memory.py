"""Benchmark a streamed 512 MiB ``LocalBlobStore.put`` and verified read against plain file I/O.

Both sides run in a child process fed by the same generator of 1 MiB chunks: cairn puts it into
a fresh store and reads it back through ``open`` (hashing, verifying); the baseline writes it to
a plain file with SHA-256 and fsync, and reads it back hashing. Peak RSS of each child shows
that a put streams (it used to be a test asserting < 100 MB; a test now checks that each chunk
is written before the next is taken). Seconds are those of the put and read alone.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import _common
from _common import MIB, detail, report, scratch_dir
from _peak import Measured, child_report, own_peak, run_measured

_common.use_source_tree()

from cairn.blobs import LocalBlobStore  # noqa: E402


def generate(chunks: int) -> Iterator[bytes]:
    block = hashlib.sha256(b"seed").digest() * (MIB // 32)
    for i in range(chunks):  # a fresh bytes object per chunk, never the whole blob
        yield i.to_bytes(8, "big") + block[8:]


def put_and_read_cairn(folder: Path, chunks: int) -> None:
    store = LocalBlobStore(folder)
    ref = store.put(generate(chunks))
    with store.open(ref.sha256) as f:
        while f.read(MIB):
            pass


def put_and_read_plain(folder: Path, chunks: int) -> None:
    folder.mkdir()
    path = folder / "blob"
    digest = hashlib.sha256()
    with open(path, "wb", buffering=0) as f:
        for chunk in generate(chunks):
            digest.update(chunk)
            f.write(chunk)
        os.fsync(f.fileno())
    check = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        while data := f.read(MIB):
            check.update(data)
    assert check.digest() == digest.digest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--total-mb", type=int, default=512, help="blob size in MiB")
    parser.add_argument("--rounds", type=int, default=2, help="runs per side (best is kept)")
    parser.add_argument("--child", nargs=2, metavar=("SIDE", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        side, folder = args.child
        idle = own_peak()
        start = time.perf_counter()
        work = put_and_read_cairn if side == "cairn" else put_and_read_plain
        work(Path(folder), args.total_mb)
        child_report(time.perf_counter() - start, idle)
        return

    with scratch_dir() as tmp:
        folders = (tmp / f"out-{i}" for i in itertools.count())
        best: dict[str, Measured] = {}
        for _ in range(args.rounds):
            for side in ("baseline", "cairn"):
                cmd = [sys.executable, __file__, "--total-mb", str(args.total_mb)]
                measured = run_measured([*cmd, "--child", side, next(folders)], capture=True)
                if side not in best or measured.seconds < best[side].seconds:
                    best[side] = measured
        for side, measured in best.items():
            idle = measured.report.get("idle_peak", 0)
            detail(
                f"{side}: {measured.seconds:.2f}s, peak RSS {measured.peak / MIB:.1f} MiB "
                f"({idle / MIB:.1f} MiB before the put)"
            )
        cairn, baseline = best["cairn"], best["baseline"]
        detail(f"peak RSS ratio {cairn.peak / baseline.peak:.2f}")
        report("blobs_memory", cairn.seconds, baseline.seconds)


if __name__ == "__main__":
    main()
