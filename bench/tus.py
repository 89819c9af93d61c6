"""Benchmark a resumable (tus 1.0) upload against a plain multipart upload of the same file.

A real ``cairn serve`` process (a fresh one, with its own data folder, for every measurement,
so no upload dedupes against another) receives one large file of random bytes into a new
workspace through the SDK: once by ``POST …/upload`` (the baseline), once by tus in 32 MiB
PATCHes, each with its SHA-256, fsynced before the offset moves. Both end with the same
processing of the complete file. Peak server RSS during the tus upload is reported too.
"""

from __future__ import annotations

import argparse
import itertools
import os
import time

import _common
from _common import MIB, best_alternating, detail, make_random_files, report, scratch_dir

from workspaces import PeakRss, start_server

_common.use_source_tree()

from cairn import client  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mib", type=int, default=512, help="size of the file in MiB")
    parser.add_argument("--rounds", type=int, default=2, help="runs per side (best is kept)")
    args = parser.parse_args()

    with scratch_dir() as tmp:
        [source] = make_random_files(tmp / "src", total_bytes=args.mib * MIB, count=1)
        detail(f"one file of {args.mib} MiB")
        rounds = itertools.count()
        peaks: list[int] = []

        def upload(resumable: bool) -> float:
            server, url, _ = start_server(tmp / f"cairn-{next(rounds)}")
            try:
                with (
                    client.login(
                        email="bench@example.org", password="Bench-mark-2026!", api_url=url
                    ) as me,
                    PeakRss(server.pid) as rss,
                ):
                    start = time.perf_counter()
                    workspace = me.workspaces.upload(source, resumable=resumable)
                    seconds = time.perf_counter() - start
                if resumable:
                    peaks.append(rss.peak)
                assert workspace.total_size == source.stat().st_size, workspace.findings[:5]
                return seconds
            finally:
                server.terminate()
                server.wait(timeout=600)  # shutdown waits for the background package build

        def settle() -> None:
            os.sync()

        best_tus, best_plain = best_alternating(
            lambda: upload(True), lambda: upload(False), rounds=args.rounds, settle=settle
        )
        detail(f"server peak RSS during the tus upload {max(peaks) / MIB:.0f} MiB")
        detail(f"tus {args.mib / best_tus:.0f} MiB/s, plain {args.mib / best_plain:.0f} MiB/s")
        report("tus", best_tus, best_plain)


if __name__ == "__main__":
    main()
