"""Benchmark ``process_upload`` on archive bombs and 10,000 tiny files against tar, gzip, unzip.

Each input of the hostile corpus (``tests/workspaces/hostile.py``) is unpacked by cairn in a
child process and by the usual command-line tool, each to a fresh folder or to /dev/null. cairn
stops a bomb right after the 16 MiB ratio grace; the tools expand all of it, so for the bombs
the ratio shows how early cairn stops, and the peak RSS that it streams. Seconds on the cairn
side are those of ``process_upload`` alone (no interpreter start or imports); peak RSS is that
of the whole child, both sides measured by GNU time.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections.abc import Callable
from pathlib import Path

import _common
from _common import MIB, detail, report, scratch_dir
from _peak import Measured, child_report, own_peak, run_measured

_common.use_source_tree()
sys.path.insert(0, str(_common.ROOT))  # the corpus builders live with the tests

from tests.workspaces.hostile import CORPUS, build_compressed_tar_bomb  # noqa: E402

from cairn.workspaces._limits import DEFAULT_LIMITS  # noqa: E402
from cairn.workspaces._unpack import process_upload  # noqa: E402

Build = Callable[[Path], Path]
Baseline = Callable[[Path, Path], list[str]]  # (input, empty output folder) -> command

# name: how to build the input, the baseline command, and what cairn must report.
CASES: dict[str, tuple[Build, Baseline, str]] = {
    "flat_zip_bomb": (CORPUS["flat_zip_bomb"], lambda p, _: ["unzip", "-p", str(p)], "bomb"),
    "zip_bomb": (CORPUS["zip_bomb"], lambda p, _: ["unzip", "-p", str(p)], "bomb"),
    "gzip_bomb": (CORPUS["gzip_bomb"], lambda p, _: ["gzip", "-dc", str(p)], "bomb"),
    "tar_bomb": (CORPUS["tar_bomb"], lambda p, _: ["tar", "-xzOf", str(p)], "bomb"),
    "hidden_bomb": (CORPUS["hidden_bomb"], lambda p, _: ["tar", "-xzOf", str(p)], "bomb"),
    "bzip2_bomb": (
        lambda d: build_compressed_tar_bomb(d, "bz2", 256 * MIB),
        lambda p, _: ["tar", "-xjOf", str(p)],
        "bomb",
    ),
    "xz_bomb": (
        lambda d: build_compressed_tar_bomb(d, "xz", 64 * MIB),
        lambda p, _: ["tar", "-xJOf", str(p)],
        "bomb",
    ),
    "tiny_files": (
        CORPUS["tiny_files"],
        lambda p, out: ["tar", "-xzf", str(p), "-C", str(out)],
        "10000 files",
    ),
}


def child(source: Path, staging: Path, expect: str) -> None:
    """The cairn side, in its own process: one ``process_upload``, checked, then reported."""
    idle = own_peak()
    start = time.perf_counter()
    result = process_upload(source, source.name, staging=staging, limits=DEFAULT_LIMITS)
    seconds = time.perf_counter() - start
    if expect == "bomb":
        assert any("(possible archive bomb)" in f.message for f in result.findings), result
    else:
        assert not result.fatal and f"{len(result.files)} files" == expect, result.findings[:5]
    child_report(seconds, idle)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=2, help="runs per side (best is kept)")
    parser.add_argument("--only", nargs="*", choices=sorted(CASES), help="inputs to run")
    parser.add_argument(
        "--child", nargs=3, metavar=("SOURCE", "STAGING", "EXPECT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        source, staging, expect = args.child
        child(Path(source), Path(staging), expect)
        return

    # Nothing is deleted until the end (see bench/workspaces.py: creating files right after
    # deleting many is slow on this VM, which would charge one side for the other's clean-up).
    with scratch_dir() as tmp:
        folders = (tmp / f"out-{i}" for i in itertools.count())
        total_cairn = total_baseline = 0.0
        for name in args.only or CASES:
            build, baseline_cmd, expect = CASES[name]
            (tmp / name).mkdir()
            source = build(tmp / name)
            best: dict[str, Measured] = {}
            for _ in range(args.rounds):
                out = next(folders)
                out.mkdir()
                child_cmd = [sys.executable, __file__, "--child", source, out / "staging", expect]
                measured = {
                    "baseline": run_measured(baseline_cmd(source, out)),
                    "cairn": run_measured(child_cmd, capture=True),
                }
                for side, run in measured.items():
                    if side not in best or run.seconds < best[side].seconds:
                        best[side] = run
            cairn, baseline = best["cairn"], best["baseline"]
            idle = cairn.report.get("idle_peak", 0)
            detail(
                f"{name} ({source.stat().st_size / MIB:.1f} MiB): cairn {cairn.seconds:.2f}s "
                f"peak {cairn.peak / MIB:.1f} MiB ({idle / MIB:.1f} before unpacking), "
                f"baseline {' '.join(baseline_cmd(source, tmp)[:2])} "
                f"{baseline.seconds:.2f}s peak {baseline.peak / MIB:.1f} MiB, "
                f"ratio {cairn.seconds / baseline.seconds:.2f}"
            )
            total_cairn += cairn.seconds
            total_baseline += baseline.seconds
        report("unpack_bombs", total_cairn, total_baseline)


if __name__ == "__main__":
    main()
