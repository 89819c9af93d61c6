"""Benchmark ``LocalBlobStore.put_file`` against ``cp`` + ``sha256sum`` of the same files.

Both sides read the same (page-cached) source files, write a full copy to a fresh folder and
hash it. cairn also fsyncs every blob and its directory before the rename (its durability
contract); ``cp`` does not, which the ``baseline + sync`` detail line shows for comparison.
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import time

import _common
from _common import MIB, best_alternating, detail, make_random_files, report, run, scratch_dir

_common.use_source_tree()

from cairn.blobs import LocalBlobStore  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--total-mb", type=int, default=1024, help="total data in MiB")
    parser.add_argument("--files", type=int, default=1000, help="number of files")
    parser.add_argument("--rounds", type=int, default=2, help="runs per side (best is kept)")
    args = parser.parse_args()

    with scratch_dir() as tmp:
        sources = make_random_files(tmp / "src", total_bytes=args.total_mb * MIB, count=args.files)
        detail(f"{args.files} files, {args.total_mb} MiB, in {tmp}")
        counter = itertools.count()

        def baseline() -> float:
            dest = tmp / f"cp-{next(counter)}"
            dest.mkdir()
            copies = [dest / p.name for p in sources]
            start = time.perf_counter()
            run(["cp", "--", *sources, dest])
            run(["sha256sum", "--", *copies])
            seconds = time.perf_counter() - start
            shutil.rmtree(dest)
            return seconds

        def cairn() -> float:
            root = tmp / f"store-{next(counter)}"
            start = time.perf_counter()
            store = LocalBlobStore(root)
            for path in sources:
                store.put_file(path)
            seconds = time.perf_counter() - start
            shutil.rmtree(root)
            return seconds

        best_cairn, best_baseline = best_alternating(
            cairn, baseline, rounds=args.rounds, settle=os.sync
        )

        # For context only: the baseline made as durable as cairn's puts.
        dest = tmp / "cp-durable"
        dest.mkdir()
        os.sync()
        start = time.perf_counter()
        run(["cp", "--", *sources, dest])
        os.sync()
        run(["sha256sum", "--", *(dest / p.name for p in sources)])
        detail(f"baseline + sync (not the headline figure): {time.perf_counter() - start:.2f}s")

    report("blobs", best_cairn, best_baseline)


if __name__ == "__main__":
    main()
