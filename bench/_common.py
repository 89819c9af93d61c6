"""Shared helpers for the benchmarks: import path, test data, timing and the result line.

Every ``bench/<name>.py`` measures cairn and a baseline in the same run and ends by printing
exactly one line ``<name>: cairn X.XXs, baseline Y.YYs, ratio Z.ZZ`` via ``report``; any detail
lines come before it via ``detail``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MIB = 1 << 20


def use_source_tree() -> None:
    """Make ``import cairn`` work from a checkout that is not pip-installed."""
    src = str(ROOT / "src")
    if src not in sys.path:
        sys.path.insert(0, src)


@contextlib.contextmanager
def scratch_dir(prefix: str = "cairn-bench-") -> Iterator[Path]:
    """A temporary folder (``$CAIRN_BENCH_TMP`` or the system temp dir), removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=os.environ.get("CAIRN_BENCH_TMP")))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def make_random_files(folder: Path, *, total_bytes: int, count: int) -> list[Path]:
    """Write ``count`` files of random bytes summing to ``total_bytes`` (sizes differ by <= 1)."""
    folder.mkdir(parents=True, exist_ok=True)
    base, extra = divmod(total_bytes, count)
    paths = []
    for i in range(count):
        path = folder / f"file-{i:06d}.bin"
        size = base + (1 if i < extra else 0)
        with open(path, "wb") as f:
            remaining = size
            while remaining:
                step = min(remaining, 8 * MIB)
                f.write(os.urandom(step))
                remaining -= step
        paths.append(path)
    return paths


def run(cmd: Sequence[str | os.PathLike[str]]) -> None:
    """Run a baseline command, discarding its output; fail loudly if it fails."""
    subprocess.run([os.fspath(c) for c in cmd], check=True, stdout=subprocess.DEVNULL)


def timed(fn: Callable[[], object]) -> float:
    """Wall-clock seconds one call of ``fn`` takes."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def best_alternating(
    cairn: Callable[[], float],
    baseline: Callable[[], float],
    *,
    rounds: int = 2,
    settle: Callable[[], None] | None = None,
) -> tuple[float, float]:
    """Run baseline and cairn alternately ``rounds`` times each; return the best of each.

    Each callable returns its own measured seconds, so it can leave set-up and clean-up out of
    the figure. ``settle`` (untimed) runs before every measurement, e.g. to flush the previous
    run's dirty pages so no side pays for the other's writeback.
    """
    best_cairn = best_baseline = float("inf")
    for i in range(rounds):
        for name, fn in (("baseline", baseline), ("cairn", cairn)):
            if settle is not None:
                settle()
            seconds = fn()
            detail(f"round {i + 1} {name}: {seconds:.2f}s")
            if name == "cairn":
                best_cairn = min(best_cairn, seconds)
            else:
                best_baseline = min(best_baseline, seconds)
    return best_cairn, best_baseline


def detail(message: str) -> None:
    """A detail line (printed before the result line)."""
    print(f"  {message}", flush=True)


def report(name: str, cairn_seconds: float, baseline_seconds: float) -> None:
    """Print the benchmark's one result line."""
    ratio = cairn_seconds / baseline_seconds
    print(
        f"{name}: cairn {cairn_seconds:.2f}s, baseline {baseline_seconds:.2f}s, ratio {ratio:.2f}",
        flush=True,
    )
